// cpu_complex.c: complex helpers of the diagonal SSMs: the Vandermonde kernel
// of S4D (models.md 3) and elementwise complex exp and product.
//
// Complex numbers are interleaved (re, im); the gradient of a real loss with
// respect to a complex z is dl/dRe z + i dl/dIm z (models.md 0.1). For a
// holomorphic w = f(v) that gives grad v += conj(f'(v)) grad w (R1), and for
// y = Re w with real grad y, grad w += grad y (R4). Hence
//   K[l] = Re sum_n c_n e^{l w_n}:   grad c_n = sum_l dK[l] conj(e^{l w_n})
//                                    grad w_n = sum_l dK[l] l conj(c_n e^{l w_n})
//   out = e^z:                       grad z   = conj(e^z) dout
//   out = a b:                       grad a   = conj(b) dout, grad b = conj(a) dout
//
// Numerics (models.md 0.4): e^{l w} is never formed by repeated multiplication,
// whose error grows with l. Instead l = s VDM_S + k VDM_B + j (superblock s,
// block k < VDM_NB, 0 <= j < VDM_B, VDM_S = VDM_NB VDM_B) and
//   e^{l w} = e^{s VDM_S w} e^{k VDM_B w} e^{j w},
// two complex products in double of three factors that are each evaluated
// directly, as e^{m Re w} (cos p + i sin p) with the phase p = m Im w formed in
// double and reduced to [-pi, pi] in double (three-part Cody-Waite), so that a
// float phase error of ~1e-7 |p| never enters (p reaches 1e7 rad for
// L = 16384, Im w = 1000). In the float build m Im w is exact in double
// (24-bit times 24-bit significands); the reduced argument also keeps cos and
// sin on their fast path. Beyond the rounding of the phases m Im w (none in
// the float build), each power is thus off by a few double ulps whatever l
// is. The factors e^{j w} and e^{k VDM_B w} are tabled once per mode and
// e^{s VDM_S w} is made once per superblock, so exp, cos and sin run about
// VDM_B + VDM_NB + L / VDM_S times per mode instead of L times (68 for
// L = 4096); the rest is multiply-adds over j in double, which vectorise. Sums
// over n and l are done in double, each in a fixed order whatever the thread
// count, and every output is computed by one thread.
#include "cpu.h"

#include <math.h>
#include <stdlib.h>

// 2 pi = P1 + P2 + P3; P1 and P2 have 24-bit significands, so k P1 and k P2
// are exact for |k| < 2^29 (|p| < 3.3e9 rad) and the reduction loses nothing.
#define VDM_2PI_P1 0x1.921fb6p+2
#define VDM_2PI_P2 (-0x1.777a5cp-23)
#define VDM_2PI_P3 (-6.8604979977715316e-15)
#define VDM_INV_2PI 0.15915494309189535

// the split l = s VDM_S + k VDM_B + j: blocks of 32 powers, superblocks of 1024
#define VDM_B 32
#define VDM_NB 32
#define VDM_S (VDM_B * VDM_NB)
// partial sums per dot product over j in the backward (then added in order)
#define VDM_LANES 4

// below this many elements (or complex exponentials) one thread does the work
#define CPLX_PAR_MIN (1 << 14)

// p mod 2 pi, in [-pi, pi] (up to rounding); k is p / 2 pi rounded half away
// from zero by an inline conversion (nearbyint is a library call on baseline x86-64)
static inline double vdm_reduce(double p) {
    double q = p * VDM_INV_2PI;
    double k = (double)(int64_t)(q + (q >= 0 ? 0.5 : -0.5));
    return ((p - k * VDM_2PI_P1) - k * VDM_2PI_P2) - k * VDM_2PI_P3;
}

// (er, ei) = e^{l (wr + i wi)}, evaluated directly
static inline void vdm_pow(double *er, double *ei, double wr, double wi, int l) {
    double mag = exp((double)l * wr), p = vdm_reduce((double)l * wi);
    *er = mag * cos(p);
    *ei = mag * sin(p);
}

// blocks of VDM_B covering 0 .. L-1, and the length of the one starting at l0
static int vdm_blocks(int L) { return (int)(((int64_t)L + VDM_B - 1) / VDM_B); }
static int vdm_len(int L, int l0) { return L - l0 < VDM_B ? L - l0 : VDM_B; }

// The tabled factors of one mode; entries for powers >= L are never used and
// are left 0 (not evaluated, so finite whatever Re w).
typedef struct {
    double zr[VDM_B], zi[VDM_B];    // e^{j w}
    double br[VDM_NB], bi[VDM_NB];  // e^{k VDM_B w}
} vdm_tables;

static void vdm_tables_make(vdm_tables *t, double wr, double wi, int L) {
    for (int j = 0; j < VDM_B; j++) {
        t->zr[j] = t->zi[j] = 0;
        if (j < L) vdm_pow(t->zr + j, t->zi + j, wr, wi, j);
    }
    for (int k = 0; k < VDM_NB; k++) {
        t->br[k] = t->bi[k] = 0;
        if (k < vdm_blocks(L)) vdm_pow(t->br + k, t->bi + k, wr, wi, k * VDM_B);
    }
}

// (er, ei) = e^{l0 w} = e^{s VDM_S w} e^{k VDM_B w} for the block l0 = s VDM_S + k VDM_B,
// from (sr, si) = e^{s VDM_S w} (or c e^{s VDM_S w}: then c e^{l0 w})
static inline void vdm_block_factor(double *er, double *ei, double sr, double si, const vdm_tables *t, int k) {
    *er = sr * t->br[k] - si * t->bi[k];
    *ei = sr * t->bi[k] + si * t->br[k];
}

// ---- forward ------------------------------------------------------------------

// A thread's state: the tables of channel h's N modes and cs_n = c_n e^{s VDM_S w_n}
// for superblock s; remade when h or s changes.
typedef struct {
    vdm_tables *t;  // (N)
    double *cs;     // (N)c
    int h, s;       // -1: none yet
} vdm_fwd_ws;

static void vdm_fwd_ws_at(vdm_fwd_ws *ws, const lra_real *ch, const lra_real *wh, int N, int L, int h, int s) {
    if (h != ws->h) {
        for (int n = 0; n < N; n++) vdm_tables_make(ws->t + n, wh[2 * n], wh[2 * n + 1], L);
        ws->h = h;
        ws->s = -1;
    }
    if (s != ws->s) {
        for (int n = 0; n < N; n++) {
            double er, ei, cr = ch[2 * n], ci = ch[2 * n + 1];
            vdm_pow(&er, &ei, wh[2 * n], wh[2 * n + 1], s * VDM_S);
            ws->cs[2 * n] = cr * er - ci * ei;
            ws->cs[2 * n + 1] = cr * ei + ci * er;
        }
        ws->s = s;
    }
}

// acc[j] = Re sum_n a_n e^{j w_n}, a_n = c_n e^{l0 w_n}, for block k of the
// superblock ws holds and the whole block j < VDM_B (the caller keeps
// l0 + j < L); each acc[j] sums over n in order.
static void vdm_fwd_block(double *acc, const vdm_fwd_ws *ws, int N, int k) {
    for (int j = 0; j < VDM_B; j++) acc[j] = 0;
    for (int n = 0; n < N; n++) {
        const vdm_tables *t = ws->t + n;
        double ar, ai;
        vdm_block_factor(&ar, &ai, ws->cs[2 * n], ws->cs[2 * n + 1], t, k);
        for (int j = 0; j < VDM_B; j++) acc[j] += ar * t->zr[j] - ai * t->zi[j];  // Re(a e^{j w})
    }
}

// Parallel over (h, block); the static schedule gives each thread a
// contiguous range, so it remakes its tables about once per channel.
void cpu_vandermonde_fwd(lra_backend *be,
                         lra_real *K,        // (H, L)
                         const lra_real *c,  // (H, N)c
                         const lra_real *w,  // (H, N)c
                         int H, int N, int L) {
    (void)be;
    if (H <= 0 || L <= 0) return;
    if (N <= 0) {  // the empty sum
        for (int64_t i = 0; i < (int64_t)H * L; i++) K[i] = 0;
        return;
    }
    int nb = vdm_blocks(L);
#pragma omp parallel if ((int64_t)H * N * L >= CPLX_PAR_MIN)
    {
        vdm_fwd_ws ws = { malloc(sizeof(vdm_tables) * (size_t)N), malloc(sizeof(double) * 2 * (size_t)N), -1, -1 };
        LRA_ASSERT(ws.t != NULL && ws.cs != NULL);
        double acc[VDM_B];
#pragma omp for schedule(static)
        for (int64_t i = 0; i < (int64_t)H * nb; i++) {
            int h = (int)(i / nb), q = (int)(i % nb), l0 = q * VDM_B, m = vdm_len(L, l0);
            vdm_fwd_ws_at(&ws, c + (int64_t)h * N * 2, w + (int64_t)h * N * 2, N, L, h, q / VDM_NB);
            vdm_fwd_block(acc, &ws, N, q % VDM_NB);
            for (int j = 0; j < m; j++) K[(int64_t)h * L + l0 + j] = (lra_real)acc[j];
        }
        free(ws.t);
        free(ws.cs);
    }
}

// ---- backward -----------------------------------------------------------------

// d = (sum_j g_j e^{j w}, sum_j j g_j e^{j w}) over j < m, as (re, im, re, im),
// from z = e^{j w} and jz = j e^{j w}. Up to the last multiple of VDM_LANES,
// j goes to lane j mod VDM_LANES and the lanes are added in order (they stay
// in registers and vectorise); the rest is added after, in order.
static void vdm_bwd_dots(double d[4], const lra_real *g, const double *zr, const double *zi, const double *jzr,
                         const double *jzi, int m) {
    double a0[VDM_LANES] = { 0 }, a1[VDM_LANES] = { 0 }, a2[VDM_LANES] = { 0 }, a3[VDM_LANES] = { 0 };
    int j = 0;
    for (; j + VDM_LANES <= m; j += VDM_LANES)
        for (int k = 0; k < VDM_LANES; k++) {
            double gj = g[j + k];
            a0[k] += gj * zr[j + k];
            a1[k] += gj * zi[j + k];
            a2[k] += gj * jzr[j + k];
            a3[k] += gj * jzi[j + k];
        }
    d[0] = a0[0];
    d[1] = a1[0];
    d[2] = a2[0];
    d[3] = a3[0];
    for (int k = 1; k < VDM_LANES; k++) {
        d[0] += a0[k];
        d[1] += a1[k];
        d[2] += a2[k];
        d[3] += a3[k];
    }
    for (; j < m; j++) {
        d[0] += g[j] * zr[j];
        d[1] += g[j] * zi[j];
        d[2] += g[j] * jzr[j];
        d[3] += g[j] * jzi[j];
    }
}

// One mode: S = sum_l g_l e^{l w} and T = sum_l l g_l e^{l w} over l < L, as
// sums over blocks l = l0 + j of e^{l0 w} sigma and e^{l0 w} (l0 sigma + tau),
// sigma = sum_j g_l e^{j w}, tau = sum_j j g_l e^{j w}.
static void vdm_bwd_mode(double S[2], double T[2], const lra_real *g, double wr, double wi, int L) {
    vdm_tables t;
    double jzr[VDM_B], jzi[VDM_B], sr = 1, si = 0;  // j e^{j w}; e^{s VDM_S w}
    vdm_tables_make(&t, wr, wi, L);
    for (int j = 0; j < VDM_B; j++) {
        jzr[j] = j * t.zr[j];
        jzi[j] = j * t.zi[j];
    }
    S[0] = S[1] = T[0] = T[1] = 0;
    for (int q = 0, nb = vdm_blocks(L); q < nb; q++) {
        int k = q % VDM_NB, l0 = q * VDM_B;
        double d[4], er, ei;
        if (k == 0) vdm_pow(&sr, &si, wr, wi, l0);
        vdm_block_factor(&er, &ei, sr, si, &t, k);
        vdm_bwd_dots(d, g + l0, t.zr, t.zi, jzr, jzi, vdm_len(L, l0));
        double ur = l0 * d[0] + d[2], ui = l0 * d[1] + d[3];  // l0 sigma + tau
        S[0] += er * d[0] - ei * d[1];
        S[1] += er * d[1] + ei * d[0];
        T[0] += er * ur - ei * ui;
        T[1] += er * ui + ei * ur;
    }
}

// dK is real, so sum_l dK[l] conj(e^{l w}) = conj(S) and
// sum_l dK[l] l conj(c e^{l w}) = conj(c T). Parallel over (h, n).
void cpu_vandermonde_bwd(lra_backend *be,
                         lra_real *dc,       // (H, N)c or NULL
                         lra_real *dw,       // (H, N)c or NULL
                         const lra_real *dK, // (H, L)
                         const lra_real *c,  // (H, N)c
                         const lra_real *w,  // (H, N)c
                         int H, int N, int L) {
    (void)be;
    if (H <= 0 || N <= 0 || (!dc && !dw)) return;
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)H * N * L >= CPLX_PAR_MIN)
    for (int h = 0; h < H; h++) {
        for (int n = 0; n < N; n++) {
            int64_t i = ((int64_t)h * N + n) * 2;
            double cr = c[i], ci = c[i + 1], S[2], T[2];
            vdm_bwd_mode(S, T, dK + (int64_t)h * L, w[i], w[i + 1], L);
            if (dc) {
                dc[i] += (lra_real)S[0];
                dc[i + 1] += (lra_real)-S[1];
            }
            if (dw) {
                dw[i] += (lra_real)(cr * T[0] - ci * T[1]);
                dw[i + 1] += (lra_real)-(cr * T[1] + ci * T[0]);
            }
        }
    }
}

// out (n)c = exp(z (n)c)
void cpu_cexp(lra_backend *be, lra_real *out, const lra_real *z, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPLX_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double zr = z[2 * i], zi = z[2 * i + 1], mag = exp(zr);  // read before out (may alias z)
        out[2 * i] = (lra_real)(mag * cos(zi));
        out[2 * i + 1] = (lra_real)(mag * sin(zi));
    }
}

// dz (n)c += conj(exp z) dout
void cpu_cexp_bwd(lra_backend *be, lra_real *dz, const lra_real *dout, const lra_real *z, int64_t n) {
    (void)be;
    if (!dz) return;
#pragma omp parallel for schedule(static) if (n >= CPLX_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double mag = exp((double)z[2 * i]), er = mag * cos((double)z[2 * i + 1]), ei = mag * sin((double)z[2 * i + 1]);
        double gr = dout[2 * i], gi = dout[2 * i + 1];
        dz[2 * i] += (lra_real)(er * gr + ei * gi);  // conj(e) g
        dz[2 * i + 1] += (lra_real)(er * gi - ei * gr);
    }
}

// out (n)c = a (n)c * b (n)c
void cpu_cmul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static) if (n >= CPLX_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1];  // out may alias a, b
        out[2 * i] = (lra_real)(ar * br - ai * bi);
        out[2 * i + 1] = (lra_real)(ar * bi + ai * br);
    }
}

// da (n)c += conj(b) dout, db (n)c += conj(a) dout (either may be NULL)
void cpu_cmul_bwd(lra_backend *be, lra_real *da, lra_real *db, const lra_real *dout,
                  const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
    if (!da && !db) return;
#pragma omp parallel for schedule(static) if (n >= CPLX_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        double ar = a[2 * i], ai = a[2 * i + 1], br = b[2 * i], bi = b[2 * i + 1];
        double gr = dout[2 * i], gi = dout[2 * i + 1];
        if (da) {  // conj(b) g
            da[2 * i] += (lra_real)(br * gr + bi * gi);
            da[2 * i + 1] += (lra_real)(br * gi - bi * gr);
        }
        if (db) {  // conj(a) g
            db[2 * i] += (lra_real)(ar * gr + ai * gi);
            db[2 * i + 1] += (lra_real)(ar * gi - ai * gr);
        }
    }
}
