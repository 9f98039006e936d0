// cpu_s4.c: the convolution kernel of S4's DPLR state space model and its
// gradients (models.md 4; the contract is in backend.h at s4_kernel_fwd).
//
// Per channel h (shared row s = h % S), dt = softplus or exp of inv_dt[h],
// Lambda = -exp(A_real) - i A_imag, w = dt Lambda, Q = conj(P). At the nodes
// omega_m = e^{-2 pi i m / Lk}, m = 0..Lk/2, with a = 1 - omega and
// t = (1 + omega) / 2, the Cauchy sums over the Nc stored modes and their
// conjugates (which make the kernel real)
//   k_x = dt sum_n [v_xn / (a - t w_n) + conj(v_xn) / (a - t conj(w_n))]
// are taken for the NX = 2 CH + 2 products v_x = x1 x2:
//   x = c          C_c B     (c < CH)
//   x = CH + c     C_c P
//   x = 2 CH       Q B
//   x = 2 CH + 1   Q P
// and the rank-1 Woodbury identity gives the kernel's spectrum
//   Khat_c = k_{C_c B} - t k_{QB} k_{C_c P} / (1 + t k_{QP}),
// which is S4's 2/(1+omega) [k00 - k01 k10 / (1 + k11)] (Cauchy nodes
// z = 2(1-omega)/(1+omega) = a/t) with the factor t folded into the sums:
// every term stays finite at omega = -1 (z = inf). K = irfft(Khat, Lk)[0:L].
//
// Backward (models.md 4, steps 1-5; complex gradients as in models.md 0.1):
// 1. irfft adjoint (models.md 0.2): grad Khat_m = (2/Lk) rfft(dK)_m inside,
//    (1/Lk) Re rfft(dK)_m at m = 0 and m = Lk/2 (Lk even);
// 2-3. Woodbury, sigma = 1/(1 + t k_QP), all holomorphic (grad += conj(d) g):
//    d/dk_CB = 1, d/dk_CP = -t sigma k_QB, d/dk_QB = -t sigma k_CP,
//    d/dk_QP = t^2 sigma^2 k_QB k_CP (the last two summed over c);
// 4. Cauchy sums with conjugate pairs, r1 = 1/(a - t w), r2 = 1/(a - t conj w):
//    grad v += conj(r1) G + conj(G) r2,
//    grad w += conj(t r1^2) sum_x conj(v_x) G_x + t r2^2 conj(sum_x v_x G_x);
// 5. v_x = dt x1 x2, w = dt Lambda, Q = conj(P) (grad P += conj(grad Q)), the
//    dt transform and Lambda = -exp(A_real) - i A_imag.
//
// All sums are in double. Each channel is computed by one thread, in a fixed
// order; the gradients of the S shared rows are summed over their channels in
// increasing h after the parallel loop, so results do not depend on the
// thread count. The transforms use the backend's FFTW plans of size Lk.
#include "cpu.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef double complex cplx;

// below this much work (H Nc (Lk/2+1)) one thread does it
#define S4_PAR_MIN (1 << 14)

static inline cplx mk(double re, double im) { return re + im * I; }
static inline cplx ld(const lra_real *p, int64_t i) { return mk((double)p[2 * i], (double)p[2 * i + 1]); }
// 1/z by conj(z)/|z|^2 (the library's complex division checks for inf/nan)
static inline cplx recip(cplx z) {
    double r = creal(z), i = cimag(z), d = r * r + i * i;
    return mk(r / d, -i / d);
}

// dt and d dt / d inv_dt
static void s4_dt(double *dt, double *ddt, double x, int dt_exp) {
    if (dt_exp) {
        *dt = *ddt = exp(x);
    } else {
        *dt = log1p(exp(-fabs(x))) + (x > 0 ? x : 0);  // softplus, stable
        *ddt = 1 / (1 + exp(-x));                       // sigmoid
    }
}

// ---- one channel ---------------------------------------------------------------

// The parameters of channel h in double, and the products v (NX, Nc).
typedef struct {
    int    Nc, CH, NX;
    double dt, ddt;
    cplx  *lam, *w, *b, *p, *c, *v;  // (Nc), (Nc), (Nc), (Nc), (CH, Nc), (NX, Nc)
} s4_chan;

static void chan_alloc(s4_chan *ch, int Nc, int CH) {
    ch->Nc = Nc;
    ch->CH = CH;
    ch->NX = 2 * CH + 2;
    ch->lam = malloc(sizeof(cplx) * (size_t)Nc * (4 + CH + ch->NX));
    LRA_ASSERT(ch->lam != NULL);
    ch->w = ch->lam + Nc;
    ch->b = ch->w + Nc;
    ch->p = ch->b + Nc;
    ch->c = ch->p + Nc;
    ch->v = ch->c + (int64_t)CH * Nc;
}

static void chan_load(s4_chan *ch, int h, const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                      const lra_real *P, const lra_real *B, const lra_real *C, int H, int S, int dt_exp) {
    int Nc = ch->Nc, CH = ch->CH, s = h % S;
    s4_dt(&ch->dt, &ch->ddt, (double)inv_dt[h], dt_exp);
    for (int n = 0; n < Nc; n++) {
        int64_t i = (int64_t)s * Nc + n;
        ch->lam[n] = mk(-exp((double)A_real[i]), -(double)A_imag[i]);
        ch->w[n] = ch->dt * ch->lam[n];
        ch->b[n] = ld(B, i);
        ch->p[n] = ld(P, i);
        cplx q = conj(ch->p[n]);
        for (int c = 0; c < CH; c++) {
            cplx cc = ch->c[(int64_t)c * Nc + n] = ld(C, ((int64_t)c * H + h) * Nc + n);
            ch->v[(int64_t)c * Nc + n] = cc * ch->b[n];
            ch->v[(int64_t)(CH + c) * Nc + n] = cc * ch->p[n];
        }
        ch->v[(int64_t)(2 * CH) * Nc + n] = q * ch->b[n];
        ch->v[(int64_t)(2 * CH + 1) * Nc + n] = q * ch->p[n];
    }
}

// The node m of Lk: a = 1 - omega = 2 sin^2(th/2) + i sin th and
// t = (1 + omega)/2 = cos^2(th/2) - (i/2) sin th, th = 2 pi m / Lk, written
// without the cancellation of 1 - cos th near th = 0.
typedef struct { cplx a, t; } s4_node;

static s4_node *s4_nodes(int Lk, int M) {
    s4_node *z = malloc(sizeof(s4_node) * (size_t)M);
    LRA_ASSERT(z != NULL);
    for (int m = 0; m < M; m++) {
        double th = 2 * M_PI * (double)m / Lk, sh = sin(th / 2), chh = cos(th / 2), s = sin(th);
        z[m].a = mk(2 * sh * sh, s);
        z[m].t = mk(chh * chh, -s / 2);
    }
    return z;
}

// k (NX) = the Cauchy sums at node z (file header)
static void chan_sums(cplx *k, const s4_chan *ch, s4_node z) {
    int Nc = ch->Nc;
    for (int x = 0; x < ch->NX; x++) k[x] = 0;
    for (int n = 0; n < Nc; n++) {
        cplx r1 = recip(z.a - z.t * ch->w[n]), r2 = recip(z.a - z.t * conj(ch->w[n]));
        for (int x = 0; x < ch->NX; x++) {
            cplx v = ch->v[(int64_t)x * Nc + n];
            k[x] += v * r1 + conj(v) * r2;
        }
    }
    for (int x = 0; x < ch->NX; x++) k[x] *= ch->dt;
}

// Khat_c = k_CB - t k_QB k_CP / (1 + t k_QP); also sigma = 1 / (1 + t k_QP)
static cplx woodbury(const cplx *k, int CH, int c, cplx t, cplx *sigma) {
    *sigma = recip(1 + t * k[2 * CH + 1]);
    return k[c] - t * k[2 * CH] * k[CH + c] * *sigma;
}

static void *fft_buf(size_t bytes) {
    void *p = LRA_FFTW(malloc)(bytes);
    LRA_ASSERT(p != NULL);
    return p;
}

static const lra_fft_plans *s4_plans(lra_backend *be, int Lk) {
    const lra_fft_plans *p = lra_cpu_fft_plans(be, Lk);
    LRA_ASSERT(p != NULL);
    return p;
}

// Spectrum spec (M)c in double -> out (L) = irfft(spec, Lk)[0:L], through the
// FFTW buffers X (M)c and r (Lk). irfft reads only the real part at m = 0 and
// m = Lk/2 (Lk even).
static void irfft_head(lra_real *out, const cplx *spec, const lra_fft_plans *pl, lra_fft_complex *X, lra_real *r,
                       int Lk, int L) {
    int M = Lk / 2 + 1;
    lra_real *x = (lra_real *)X;
    for (int m = 0; m < M; m++) {
        x[2 * m] = (lra_real)creal(spec[m]);
        x[2 * m + 1] = (lra_real)cimag(spec[m]);
    }
    x[1] = 0;
    if (Lk % 2 == 0) x[2 * (M - 1) + 1] = 0;
    LRA_FFTW(execute_dft_c2r)(pl->c2r, X, r);
    for (int t = 0; t < L; t++) out[t] = (lra_real)((double)r[t] / Lk);
}

void cpu_s4_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *inv_dt, const lra_real *A_real,
                       const lra_real *A_imag, const lra_real *P, const lra_real *B, const lra_real *C, int H,
                       int S, int Nc, int CH, int Lk, int L, int dt_exp) {
    // K (H, CH, L), inv_dt (H), A_real, A_imag (S, Nc), P, B (S, Nc)c, C (CH, H, Nc)c
    LRA_ASSERT(S > 0 && H % S == 0 && Lk >= 1 && L >= 0 && L <= Lk && CH >= 1 && Nc >= 0);
    if (H <= 0 || L == 0) return;
    const lra_fft_plans *pl = s4_plans(be, Lk);
    const int M = Lk / 2 + 1;
    s4_node *z = s4_nodes(Lk, M);
#pragma omp parallel if ((int64_t)H * (Nc + 1) * M >= S4_PAR_MIN)
    {
        s4_chan ch;
        chan_alloc(&ch, Nc, CH);
        cplx *k = malloc(sizeof(cplx) * (size_t)ch.NX);             // (NX)
        cplx *spec = malloc(sizeof(cplx) * (size_t)CH * (size_t)M);  // (CH, M)
        LRA_ASSERT(k != NULL && spec != NULL);
        lra_real *r = fft_buf(sizeof(lra_real) * (size_t)Lk);
        lra_fft_complex *X = fft_buf(sizeof(lra_fft_complex) * (size_t)M);
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            chan_load(&ch, h, inv_dt, A_real, A_imag, P, B, C, H, S, dt_exp);
            for (int m = 0; m < M; m++) {
                chan_sums(k, &ch, z[m]);
                for (int c = 0; c < CH; c++) {
                    cplx sigma;
                    spec[(int64_t)c * M + m] = woodbury(k, CH, c, z[m].t, &sigma);
                }
            }
            for (int c = 0; c < CH; c++)
                irfft_head(K + ((int64_t)h * CH + c) * L, spec + (int64_t)c * M, pl, X, r, Lk, L);
        }
        LRA_FFTW(free)(r);
        LRA_FFTW(free)(X);
        free(spec);
        free(k);
        free(ch.lam);
    }
    free(z);
}

// ---- backward -------------------------------------------------------------------

// gk (M)c = grad Khat from the head g (L) of a length-Lk kernel's gradient
// (models.md 0.2, irfft adjoint); X, r are FFTW buffers.
static void irfft_adjoint(cplx *gk, const lra_real *g, const lra_fft_plans *pl, lra_fft_complex *X, lra_real *r,
                          int Lk, int L) {
    int M = Lk / 2 + 1;
    memcpy(r, g, sizeof(lra_real) * (size_t)L);
    memset(r + L, 0, sizeof(lra_real) * (size_t)(Lk - L));
    LRA_FFTW(execute_dft_r2c)(pl->r2c, r, X);
    const lra_real *x = (const lra_real *)X;
    for (int m = 0; m < M; m++) gk[m] = mk(2.0 * x[2 * m] / Lk, 2.0 * x[2 * m + 1] / Lk);
    gk[0] = mk((double)x[0] / Lk, 0);
    if (Lk % 2 == 0) gk[M - 1] = mk((double)x[2 * (M - 1)] / Lk, 0);
}

// G (M, NX)c: the gradients of the Cauchy sums at every node, from
// gk (CH, M)c = grad Khat (steps 2-3 of the file header); k (NX) is scratch.
static void chan_sum_grads(cplx *G, cplx *k, const s4_chan *ch, const cplx *gk, const s4_node *z, int M) {
    int CH = ch->CH, NX = ch->NX;
    for (int m = 0; m < M; m++) {
        cplx *Gm = G + (int64_t)m * NX, t = z[m].t;
        chan_sums(k, ch, z[m]);
        Gm[2 * CH] = Gm[2 * CH + 1] = 0;
        for (int c = 0; c < CH; c++) {
            cplx sigma, g = gk[(int64_t)c * M + m];
            woodbury(k, CH, c, t, &sigma);
            Gm[c] = g;
            Gm[CH + c] = conj(-t * sigma * k[2 * CH]) * g;
            Gm[2 * CH] += conj(-t * sigma * k[CH + c]) * g;
            Gm[2 * CH + 1] += conj(t * t * sigma * sigma * k[2 * CH] * k[CH + c]) * g;
        }
    }
}

// Gradients of channel h: dC rows of h (+=, in build precision; NULL: none) and the
// channel's shares of the shared rows, written (=) to gA_re, gA_im (Nc),
// gP, gB (Nc)c in double; returns dl/d inv_dt[h]. gv (NX) is scratch.
static double chan_param_grads(const s4_chan *ch, const cplx *G, const s4_node *z, int M, cplx *gv, lra_real *dC,
                               int64_t c_stride, double *gA_re, double *gA_im, cplx *gP, cplx *gB) {
    int Nc = ch->Nc, CH = ch->CH, NX = ch->NX;
    double dt = ch->dt, gdt = 0;
    for (int n = 0; n < Nc; n++) {
        const cplx *vn = ch->v + n;  // v_x at vn[x Nc]
        cplx w = ch->w[n], gw = 0;
        for (int x = 0; x < NX; x++) gv[x] = 0;
        for (int m = 0; m < M; m++) {  // step 4
            const cplx *Gm = G + (int64_t)m * NX;
            cplx r1 = recip(z[m].a - z[m].t * w), r2 = recip(z[m].a - z[m].t * conj(w)), U = 0, W = 0;
            cplx cr1 = conj(r1);
            for (int x = 0; x < NX; x++) {
                cplx g = Gm[x], v = vn[(int64_t)x * Nc];
                gv[x] += cr1 * g + conj(g) * r2;
                U += conj(v) * g;
                W += v * g;
            }
            gw += conj(z[m].t * r1 * r1) * U + z[m].t * r2 * r2 * conj(W);
        }
        gw *= dt;  // the sums' factor dt
        // step 5: the sums are dt sum v / (...): grad of the unscaled v_x is dt gv_x
        cplx b = ch->b[n], p = ch->p[n], q = conj(p), gb = 0, gp = 0, gq = 0;
        for (int x = 0; x < NX; x++) gdt += creal(conj(gv[x]) * vn[(int64_t)x * Nc]);
        for (int c = 0; c < CH; c++) {
            cplx cc = ch->c[(int64_t)c * Nc + n], g1 = dt * gv[c], g2 = dt * gv[CH + c];
            cplx gc = conj(b) * g1 + conj(p) * g2;
            gb += conj(cc) * g1;
            gp += conj(cc) * g2;
            if (dC) {
                dC[c * c_stride + 2 * n] += (lra_real)creal(gc);
                dC[c * c_stride + 2 * n + 1] += (lra_real)cimag(gc);
            }
        }
        cplx g3 = dt * gv[2 * CH], g4 = dt * gv[2 * CH + 1];
        gq += conj(b) * g3 + conj(p) * g4;
        gb += conj(q) * g3;
        gp += conj(q) * g4 + conj(gq);  // Q = conj(P)
        // w = dt Lambda and the sums' factor dt: dl/ddt = Re(conj(gw) Lambda) + sum_x Re(conj(gv_x) v_x)
        gdt += creal(conj(gw) * ch->lam[n]);
        cplx glam = dt * gw;
        gA_re[n] = creal(ch->lam[n]) * creal(glam);  // d Re Lambda / d A_real = -exp(A_real) = Re Lambda
        gA_im[n] = -cimag(glam);
        gP[n] = gp;
        gB[n] = gb;
    }
    return gdt * ch->ddt;
}

void cpu_s4_kernel_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag, lra_real *dP,
                       lra_real *dB, lra_real *dC, const lra_real *dK, const lra_real *inv_dt,
                       const lra_real *A_real, const lra_real *A_imag, const lra_real *P, const lra_real *B,
                       const lra_real *C, int H, int S, int Nc, int CH, int Lk, int L, int dt_exp) {
    // dinv_dt (H), dA_real, dA_imag (S, Nc), dP, dB (S, Nc)c, dC (CH, H, Nc)c, dK (H, CH, L)
    LRA_ASSERT(S > 0 && H % S == 0 && Lk >= 1 && L >= 0 && L <= Lk && CH >= 1 && Nc >= 0);
    if (H <= 0 || L == 0 || (!dinv_dt && !dA_real && !dA_imag && !dP && !dB && !dC)) return;
    const lra_fft_plans *pl = s4_plans(be, Lk);
    const int M = Lk / 2 + 1;
    const int64_t hn = (int64_t)H * Nc;
    s4_node *z = s4_nodes(Lk, M);
    // per channel: gradients of the shared rows (summed over channels below) and dinv_dt
    size_t nw = (size_t)(hn > 0 ? hn : 1);
    double *gre = malloc(sizeof(double) * nw), *gim = malloc(sizeof(double) * nw);
    cplx *gp = malloc(sizeof(cplx) * nw), *gb = malloc(sizeof(cplx) * nw);
    double *gdt = malloc(sizeof(double) * (size_t)H);
    LRA_ASSERT(gre && gim && gp && gb && gdt);
#pragma omp parallel if ((int64_t)H * (Nc + 1) * M >= S4_PAR_MIN)
    {
        s4_chan ch;
        chan_alloc(&ch, Nc, CH);
        cplx *k = malloc(sizeof(cplx) * (size_t)ch.NX * 2);             // (NX) sums, (NX) gv
        cplx *gk = malloc(sizeof(cplx) * (size_t)CH * (size_t)M);       // (CH, M)
        cplx *G = malloc(sizeof(cplx) * (size_t)ch.NX * (size_t)M);     // (M, NX)
        LRA_ASSERT(k != NULL && gk != NULL && G != NULL);
        lra_real *r = fft_buf(sizeof(lra_real) * (size_t)Lk);
        lra_fft_complex *X = fft_buf(sizeof(lra_fft_complex) * (size_t)M);
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            chan_load(&ch, h, inv_dt, A_real, A_imag, P, B, C, H, S, dt_exp);
            for (int c = 0; c < CH; c++)
                irfft_adjoint(gk + (int64_t)c * M, dK + ((int64_t)h * CH + c) * L, pl, X, r, Lk, L);
            chan_sum_grads(G, k, &ch, gk, z, M);
            gdt[h] = chan_param_grads(&ch, G, z, M, k + ch.NX, dC ? dC + (int64_t)h * Nc * 2 : NULL, hn * 2,
                                      gre + (int64_t)h * Nc, gim + (int64_t)h * Nc, gp + (int64_t)h * Nc,
                                      gb + (int64_t)h * Nc);
        }
        LRA_FFTW(free)(r);
        LRA_FFTW(free)(X);
        free(G);
        free(gk);
        free(k);
        free(ch.lam);
    }
    // the shared rows: row s sums channels h = s, s + S, ... in order
    for (int64_t i = 0; i < (int64_t)S * Nc; i++) {
        int64_t s = i / Nc, n = i % Nc;
        double are = 0, aim = 0;
        cplx sp = 0, sb = 0;
        for (int64_t h = s; h < H; h += S) {
            int64_t j = h * Nc + n;
            are += gre[j];
            aim += gim[j];
            sp += gp[j];
            sb += gb[j];
        }
        if (dA_real) dA_real[i] += (lra_real)are;
        if (dA_imag) dA_imag[i] += (lra_real)aim;
        if (dP) { dP[2 * i] += (lra_real)creal(sp); dP[2 * i + 1] += (lra_real)cimag(sp); }
        if (dB) { dB[2 * i] += (lra_real)creal(sb); dB[2 * i + 1] += (lra_real)cimag(sb); }
    }
    if (dinv_dt)
        for (int h = 0; h < H; h++) dinv_dt[h] += (lra_real)gdt[h];
    free(gre);
    free(gim);
    free(gp);
    free(gb);
    free(gdt);
    free(z);
}
