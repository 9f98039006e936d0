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
// Numerics (models.md 0.4): e^{l w} is evaluated directly for every l, never
// by repeated multiplication, as e^{l Re w} (cos p + i sin p) with the phase
// p = l Im w formed in double and reduced to [-pi, pi] in double (three-part
// Cody-Waite), so that a float phase error of ~1e-7 |p| never enters (p reaches
// 1e7 rad for L = 16384, Im w = 1000). In the float build l Im w is exact in
// double (24-bit times 24-bit significands). The reduced argument also keeps
// cos and sin on their fast path. Sums over n and l are done in double.
#include "cpu.h"

#include <math.h>

// 2 pi = P1 + P2 + P3; P1 and P2 have 24-bit significands, so k P1 and k P2
// are exact for |k| < 2^29 (|p| < 3.3e9 rad) and the reduction loses nothing.
#define VDM_2PI_P1 0x1.921fb6p+2
#define VDM_2PI_P2 (-0x1.777a5cp-23)
#define VDM_2PI_P3 (-6.8604979977715316e-15)
#define VDM_INV_2PI 0.15915494309189535

// below this many elements (or complex exponentials) one thread does the work
#define CPLX_PAR_MIN (1 << 14)

// p mod 2 pi, in [-pi, pi] (up to rounding); k is p / 2 pi rounded half away
// from zero by an inline conversion (nearbyint is a library call on baseline x86-64)
static inline double vdm_reduce(double p) {
    double q = p * VDM_INV_2PI;
    double k = (double)(int64_t)(q + (q >= 0 ? 0.5 : -0.5));
    return ((p - k * VDM_2PI_P1) - k * VDM_2PI_P2) - k * VDM_2PI_P3;
}

// (er, ei) = e^{l (wr + i wi)}
static inline void vdm_pow(double *er, double *ei, double wr, double wi, int l) {
    double mag = exp((double)l * wr), p = vdm_reduce((double)l * wi);
    *er = mag * cos(p);
    *ei = mag * sin(p);
}

void cpu_vandermonde_fwd(lra_backend *be,
                         lra_real *K,        // (H, L)
                         const lra_real *c,  // (H, N)c
                         const lra_real *w,  // (H, N)c
                         int H, int N, int L) {
    (void)be;
    if (H <= 0 || L <= 0) return;
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)H * N * L >= CPLX_PAR_MIN / 16)
    for (int h = 0; h < H; h++) {
        for (int l = 0; l < L; l++) {
            const lra_real *ch = c + (int64_t)h * N * 2, *wh = w + (int64_t)h * N * 2;
            double s = 0;
            for (int n = 0; n < N; n++) {  // Re(c e^{l w}) = cr er - ci ei
                double er, ei;
                vdm_pow(&er, &ei, wh[2 * n], wh[2 * n + 1], l);
                s += ch[2 * n] * er - ch[2 * n + 1] * ei;
            }
            K[(int64_t)h * L + l] = (lra_real)s;
        }
    }
}

void cpu_vandermonde_bwd(lra_backend *be,
                         lra_real *dc,       // (H, N)c or NULL
                         lra_real *dw,       // (H, N)c or NULL
                         const lra_real *dK, // (H, L)
                         const lra_real *c,  // (H, N)c
                         const lra_real *w,  // (H, N)c
                         int H, int N, int L) {
    (void)be;
    if (H <= 0 || N <= 0 || (!dc && !dw)) return;
#pragma omp parallel for collapse(2) schedule(static) if ((int64_t)H * N * L >= CPLX_PAR_MIN / 16)
    for (int h = 0; h < H; h++) {
        for (int n = 0; n < N; n++) {
            int64_t i = ((int64_t)h * N + n) * 2;
            double wr = w[i], wi = w[i + 1], cr = c[i], ci = c[i + 1];
            const lra_real *dKh = dK + (int64_t)h * L;
            // S = sum_l dK[l] conj(e^{l w}),  T = sum_l dK[l] l conj(e^{l w})
            double sr = 0, si = 0, tr = 0, ti = 0;
            for (int l = 0; l < L; l++) {
                double er, ei;
                vdm_pow(&er, &ei, wr, wi, l);
                double g = dKh[l], gl = g * l;
                sr += g * er;
                si -= g * ei;
                tr += gl * er;
                ti -= gl * ei;
            }
            if (dc) {
                dc[i] += (lra_real)sr;
                dc[i + 1] += (lra_real)si;
            }
            if (dw) {  // grad w = conj(c) T
                dw[i] += (lra_real)(cr * tr + ci * ti);
                dw[i + 1] += (lra_real)(cr * ti - ci * tr);
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
