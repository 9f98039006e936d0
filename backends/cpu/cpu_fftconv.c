// cpu_fftconv.c: long convolution along L through the FFT (models.md 0.2).
//
// Per channel h every signal is zero-padded to n = lra_fft_good_size(2L) >= 2L
// and the kernel is laid out as a length-n circular filter kk:
//   causal         kk = [k[0..L-1], 0 ...]
//   bidirectional  kk = [k_fwd[0..L-1], 0 ..., k_bwd[L-1], ..., k_bwd[0]]:
//                  k_bwd[i] sits at lag -(i+1), position n-1-i (S4's two-sided
//                  layout; lag 0 is counted once, by k_fwd).
// Since n >= 2L the circular products below never wrap onto t in [0, L):
//   forward   y        = irfft(K̂ Û)[0:L] / n
//   backward  du      += irfft(conj(K̂) Ĝ)[0:L] / n          du_s = sum_t g_t kk[t-s]
//             dkk     += irfft(sum_b conj(Û_b) Ĝ_b) / n     dkk_p = sum_b sum_s u_s g_{s+p}
//             dk is read back from dkk at the positions kk was built from.
// FFTW is unnormalised (c2r(r2c(x)) = n x): the 1/n is applied once, on output.
//
// Plans come from the backend's cache and run through the new-array interface
// on per-thread scratch from fftw_malloc (the alignment they were planned
// with). Each output row (and each channel's dk) is computed by one thread with
// the same plan and the same operations, so results are bit-identical for any
// thread count and from call to call.
#include "cpu.h"

#include <string.h>

// Plans of the padded size for length L. The cache holds LRA_FFT_MAX_PLANS
// distinct sizes per backend, an internal limit (a model uses a handful of
// lengths), so a full cache, like a failed fftw_malloc at planning, is a broken
// invariant and not an error return (the op table's convolutions return void).
static const lra_fft_plans *fftconv_plans(lra_backend *be, int L) {
    LRA_ASSERT(L <= (1 << 29));  // 2L and its fast size stay in int
    const lra_fft_plans *p = lra_cpu_fft_plans(be, lra_fft_good_size(2 * L));
    LRA_ASSERT(p != NULL);
    return p;
}

static int64_t fftconv_klen(int L, lra_conv_mode mode) {
    LRA_ASSERT(mode == LRA_CONV_CAUSAL || mode == LRA_CONV_BIDIRECTIONAL);
    return mode == LRA_CONV_BIDIRECTIONAL ? 2 * (int64_t)L : L;
}

static void *fftconv_scratch(size_t bytes) {
    void *p = LRA_FFTW(malloc)(bytes);
    LRA_ASSERT(p != NULL);
    return p;
}

// r (n) = x (L) followed by zeros
static void fftconv_pad(lra_real *r, const lra_real *x, int L, int n) {
    memcpy(r, x, sizeof(lra_real) * (size_t)L);
    memset(r + L, 0, sizeof(lra_real) * (size_t)(n - L));
}

// kk (n): the circular filter of one channel, kh (L) or (2, L) (file header).
static void fftconv_pack_kernel(lra_real *kk, const lra_real *kh, int L, int n, lra_conv_mode mode) {
    fftconv_pad(kk, kh, L, n);
    if (mode == LRA_CONV_BIDIRECTIONAL)
        for (int i = 0; i < L; i++) kk[n - 1 - i] = kh[L + i];
}

// z (nc)c = a b, or conj(a) b with conj_a; z may alias b. Spectra are read as
// interleaved (re, im) reals, the layout of fftw_complex.
static void fftconv_spec_mul(lra_real *z, const lra_real *a, const lra_real *b, int nc, int conj_a) {
    lra_real s = conj_a ? -1 : 1;
    for (int f = 0; f < nc; f++) {
        lra_real ar = a[2 * f], ai = s * a[2 * f + 1], br = b[2 * f], bi = b[2 * f + 1];
        z[2 * f]     = ar * br - ai * bi;
        z[2 * f + 1] = ar * bi + ai * br;
    }
}

void cpu_fftconv_fwd(lra_backend *be, lra_real *y, const lra_real *u, const lra_real *k, int B, int H, int L,
                     lra_conv_mode mode) {
    // y (B, H, L), u (B, H, L), k (H, L) or (H, 2, L)
    if (B <= 0 || H <= 0 || L <= 0) return;
    const lra_fft_plans *p = fftconv_plans(be, L);
    const int n = p->n, nc = n / 2 + 1;
    const int64_t klen = fftconv_klen(L, mode);
    // K̂ (H, cs)c: rows padded to 8 complex numbers (64 bytes or more) so that
    // every row keeps fftw_malloc's alignment and r2c can write it in place.
    const int64_t cs = ((int64_t)nc + 7) & ~(int64_t)7;
    lra_fft_complex *Khat = fftconv_scratch(sizeof(lra_fft_complex) * (size_t)(cs * H));
    const lra_real scale = (lra_real)(1.0 / n);
#pragma omp parallel
    {
        lra_real *r = fftconv_scratch(sizeof(lra_real) * (size_t)n);                // (n)
        lra_fft_complex *c = fftconv_scratch(sizeof(lra_fft_complex) * (size_t)nc); // (nc)c
        // K̂ once per channel, shared by the batch
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            fftconv_pack_kernel(r, k + h * klen, L, n, mode);
            LRA_FFTW(execute_dft_r2c)(p->r2c, r, Khat + h * cs);
        }
        // one (b, h) row per iteration: y = irfft(K̂ Û) / n
#pragma omp for schedule(static)
        for (int64_t bh = 0; bh < (int64_t)B * H; bh++) {
            const int64_t h = bh % H;
            fftconv_pad(r, u + bh * L, L, n);
            LRA_FFTW(execute_dft_r2c)(p->r2c, r, c);
            fftconv_spec_mul((lra_real *)c, (const lra_real *)(Khat + h * cs), (const lra_real *)c, nc, 0);
            LRA_FFTW(execute_dft_c2r)(p->c2r, c, r);
            lra_real *yr = y + bh * L;
            for (int t = 0; t < L; t++) yr[t] = r[t] * scale;
        }
        LRA_FFTW(free)(r);
        LRA_FFTW(free)(c);
    }
    LRA_FFTW(free)(Khat);
}

// Per-thread scratch of the backward pass.
typedef struct {
    lra_real        *r;    // (n) real signal
    lra_fft_complex *K;    // (nc)c K̂ of the channel
    lra_fft_complex *G;    // (nc)c Ĝ of one row
    lra_fft_complex *U;    // (nc)c Û of one row, then the du spectrum
    double          *acc;  // (nc)c sum_b conj(Û_b) Ĝ_b, in double
} fftconv_bwd_scratch;

// dk of one channel from acc: dkh (L) or (2, L) += dkk / n read at the kernel's
// positions (file header).
static void fftconv_dk_channel(lra_real *dkh, const fftconv_bwd_scratch *s, const lra_fft_plans *p, int L,
                               lra_conv_mode mode) {
    const int n = p->n, nc = n / 2 + 1;
    lra_real *c = (lra_real *)s->U;
    for (int f = 0; f < 2 * nc; f++) c[f] = (lra_real)s->acc[f];
    LRA_FFTW(execute_dft_c2r)(p->c2r, s->U, s->r);
    const lra_real scale = (lra_real)(1.0 / n);
    for (int j = 0; j < L; j++) dkh[j] += s->r[j] * scale;
    if (mode == LRA_CONV_BIDIRECTIONAL)
        for (int i = 0; i < L; i++) dkh[L + i] += s->r[n - 1 - i] * scale;
}

// Channel h over the whole batch: du rows of h and the channel's dk. One
// thread owns the channel, so the batch sum into dk has no race.
static void fftconv_bwd_channel(lra_real *du, lra_real *dk, const lra_real *dy, const lra_real *u,
                                const lra_real *k, const fftconv_bwd_scratch *s, const lra_fft_plans *p,
                                int B, int H, int L, int h, lra_conv_mode mode) {
    const int n = p->n, nc = n / 2 + 1;
    const int64_t klen = fftconv_klen(L, mode);
    const lra_real scale = (lra_real)(1.0 / n);
    if (du) {
        fftconv_pack_kernel(s->r, k + h * klen, L, n, mode);
        LRA_FFTW(execute_dft_r2c)(p->r2c, s->r, s->K);
    }
    if (dk) memset(s->acc, 0, sizeof(double) * 2 * (size_t)nc);
    for (int b = 0; b < B; b++) {
        const int64_t row = ((int64_t)b * H + h) * L;
        fftconv_pad(s->r, dy + row, L, n);
        LRA_FFTW(execute_dft_r2c)(p->r2c, s->r, s->G);
        const lra_real *G = (const lra_real *)s->G;
        if (dk) {
            fftconv_pad(s->r, u + row, L, n);
            LRA_FFTW(execute_dft_r2c)(p->r2c, s->r, s->U);
            const lra_real *U = (const lra_real *)s->U;
            for (int f = 0; f < nc; f++) {  // acc += conj(Û) Ĝ
                double ur = U[2 * f], ui = U[2 * f + 1], gr = G[2 * f], gi = G[2 * f + 1];
                s->acc[2 * f]     += ur * gr + ui * gi;
                s->acc[2 * f + 1] += ur * gi - ui * gr;
            }
        }
        if (du) {
            fftconv_spec_mul((lra_real *)s->U, (const lra_real *)s->K, G, nc, 1);
            LRA_FFTW(execute_dft_c2r)(p->c2r, s->U, s->r);
            lra_real *dur = du + row;
            for (int t = 0; t < L; t++) dur[t] += s->r[t] * scale;
        }
    }
    if (dk) fftconv_dk_channel(dk + h * klen, s, p, L, mode);
}

void cpu_fftconv_bwd(lra_backend *be, lra_real *du, lra_real *dk, const lra_real *dy, const lra_real *u,
                     const lra_real *k, int B, int H, int L, lra_conv_mode mode) {
    // du (B, H, L), dk (H, L) or (H, 2, L), dy (B, H, L), u (B, H, L), k like dk
    if ((!du && !dk) || B <= 0 || H <= 0 || L <= 0) return;
    const lra_fft_plans *p = fftconv_plans(be, L);
    const int n = p->n, nc = n / 2 + 1;
#pragma omp parallel
    {
        fftconv_bwd_scratch s = {
            .r   = fftconv_scratch(sizeof(lra_real) * (size_t)n),
            .K   = fftconv_scratch(sizeof(lra_fft_complex) * (size_t)nc),
            .G   = fftconv_scratch(sizeof(lra_fft_complex) * (size_t)nc),
            .U   = fftconv_scratch(sizeof(lra_fft_complex) * (size_t)nc),
            .acc = fftconv_scratch(sizeof(double) * 2 * (size_t)nc),
        };
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) fftconv_bwd_channel(du, dk, dy, u, k, &s, p, B, H, L, h, mode);
        LRA_FFTW(free)(s.r);
        LRA_FFTW(free)(s.K);
        LRA_FFTW(free)(s.G);
        LRA_FFTW(free)(s.U);
        LRA_FFTW(free)(s.acc);
    }
}
