// cuda_complex.cu: the Vandermonde kernel of S4D (models.md 3) and elementwise
// complex exp and product, with the gradients of backends/cpu/cpu_complex.c:
//   K[l] = Re sum_n c_n e^{l w_n}:  grad c_n = conj(sum_l dK[l] e^{l w_n}),
//                                   grad w_n = conj(c_n sum_l l dK[l] e^{l w_n})
//   out = e^z:                      grad z   = conj(e^z) dout
//   out = a b:                      grad a   = conj(b) dout, grad b = conj(a) dout
// Every power e^{l w} is evaluated directly, e^{l Re w} (cos p + i sin p)
// with the phase p = l Im w formed exactly in double (a 24-bit float times an
// integer below 2^29) and reduced in double, so its error does not grow with
// l (models.md 0.4). Sums run in double.
#include "cuda.cuh"

// 2 pi = P1 + P2 + P3 with 24-bit P1, P2: k P1 and k P2 are exact in double
// for |k| < 2^29, so the reduction of p = l Im w loses nothing (cpu_complex.c)
#define CU_VDM_2PI_P1 0x1.921fb6p+2
#define CU_VDM_2PI_P2 (-0x1.777a5cp-23)
#define CU_VDM_2PI_P3 (-6.8604979977715316e-15)
#define CU_VDM_INV_2PI 0.15915494309189535

// e^{l w} for w = (wr, wi): the phase l wi formed and reduced to [-pi, pi] in
// double, then the float exp and sincos of the reduced arguments (their fast
// paths: the library's double sincos of a phase up to 1e7 rad would take the
// slow Payne-Hanek reduction). Relative error a few float ulps for any l.
__device__ __forceinline__ cu_cd cu_vdm_pow(double wr, double wi, int l) {
    double p = (double)l * wi, k = rint(p * CU_VDM_INV_2PI);
    double r = ((p - k * CU_VDM_2PI_P1) - k * CU_VDM_2PI_P2) - k * CU_VDM_2PI_P3;
    float s, c, m = expf((float)((double)l * wr));
    sincosf((float)r, &s, &c);
    return cd((double)(m * c), (double)(m * s));
}

// K (H, L): one thread per (h, l), the sum over n in order (c and w rows are
// read by every thread of the channel and stay in L1).
__global__ static void cu_vdm_fwd_kernel(lra_real *K, const lra_real *c, const lra_real *w, int H, int N, int L) {
    CU_FOR(i, (int64_t)H * L) {
        int64_t h = i / L;
        int l = (int)(i % L);
        const lra_real *ch = c + h * N * 2, *wh = w + h * N * 2;
        double acc = 0;
        for (int n = 0; n < N; n++) {
            cu_cd e = cu_vdm_pow(wh[2 * n], wh[2 * n + 1], l);
            acc += ch[2 * n] * e.re - ch[2 * n + 1] * e.im;  // Re(c e^{l w})
        }
        K[i] = (lra_real)acc;
    }
}

void cuda_vandermonde_fwd(lra_backend *be, lra_real *K, const lra_real *c, const lra_real *w, int H, int N, int L) {
    (void)be;
    if (H <= 0 || L <= 0) return;
    CU_LAUNCH(cu_vdm_fwd_kernel, cu_grid((int64_t)H * L, CU_BLOCK), CU_BLOCK, K, c, w, H, N, L);
}

// One block per mode (h, n): S = sum_l dK[l] e^{l w}, T = sum_l l dK[l] e^{l w}
// over the block's threads, then dc += conj(S), dw += conj(c T).
__global__ static void cu_vdm_bwd_kernel(lra_real *dc, lra_real *dw, const lra_real *dK, const lra_real *c,
                                         const lra_real *w, int H, int N, int L) {
    for (int64_t m = blockIdx.x; m < (int64_t)H * N; m += gridDim.x) {
        int64_t h = m / N;
        double wr = w[2 * m], wi = w[2 * m + 1];
        const lra_real *g = dK + h * L;
        double sr = 0, si = 0, tr = 0, ti = 0;
        for (int l = threadIdx.x; l < L; l += blockDim.x) {
            cu_cd e = cu_vdm_pow(wr, wi, l);
            double gl = g[l];
            sr += gl * e.re;
            si += gl * e.im;
            tr += gl * l * e.re;
            ti += gl * l * e.im;
        }
        sr = cu_block_sum(sr);
        si = cu_block_sum(si);
        tr = cu_block_sum(tr);
        ti = cu_block_sum(ti);
        if (threadIdx.x == 0) {
            double cr = c[2 * m], ci = c[2 * m + 1];
            if (dc) {
                dc[2 * m] += (lra_real)sr;
                dc[2 * m + 1] += (lra_real)-si;
            }
            if (dw) {
                dw[2 * m] += (lra_real)(cr * tr - ci * ti);
                dw[2 * m + 1] += (lra_real)-(cr * ti + ci * tr);
            }
        }
    }
}

void cuda_vandermonde_bwd(lra_backend *be, lra_real *dc, lra_real *dw, const lra_real *dK, const lra_real *c,
                          const lra_real *w, int H, int N, int L) {
    (void)be;
    if (H <= 0 || N <= 0 || L <= 0 || (!dc && !dw)) return;
    CU_LAUNCH(cu_vdm_bwd_kernel, cu_grid((int64_t)H * N, 1), CU_BLOCK, dc, dw, dK, c, w, H, N, L);
}

// ---- elementwise complex ---------------------------------------------------------------

__global__ static void cu_cexp_kernel(lra_real *out, const lra_real *z, int64_t n) {
    CU_FOR(i, n) {
        cu_cd e = cd_exp(cd_ld(z, i));  // read before the write (out may alias z)
        cd_st(out, i, e);
    }
}

__global__ static void cu_cexp_bwd_kernel(lra_real *dz, const lra_real *dout, const lra_real *z, int64_t n) {
    CU_FOR(i, n) cd_acc(dz, i, conj(cd_exp(cd_ld(z, i))) * cd_ld(dout, i));
}

__global__ static void cu_cmul_kernel(lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    CU_FOR(i, n) {
        cu_cd v = cd_ld(a, i) * cd_ld(b, i);
        cd_st(out, i, v);
    }
}

__global__ static void cu_cmul_bwd_kernel(lra_real *da, lra_real *db, const lra_real *dout, const lra_real *a,
                                          const lra_real *b, int64_t n) {
    CU_FOR(i, n) {
        cu_cd g = cd_ld(dout, i);
        if (da) cd_acc(da, i, conj(cd_ld(b, i)) * g);
        if (db) cd_acc(db, i, conj(cd_ld(a, i)) * g);
    }
}

void cuda_cexp(lra_backend *be, lra_real *out, const lra_real *z, int64_t n) {
    (void)be;
    if (n > 0) CU_LAUNCH(cu_cexp_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, z, n);
}

void cuda_cexp_bwd(lra_backend *be, lra_real *dz, const lra_real *dout, const lra_real *z, int64_t n) {
    (void)be;
    if (n > 0 && dz) CU_LAUNCH(cu_cexp_bwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dz, dout, z, n);
}

void cuda_cmul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
    if (n > 0) CU_LAUNCH(cu_cmul_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, a, b, n);
}

void cuda_cmul_bwd(lra_backend *be, lra_real *da, lra_real *db, const lra_real *dout, const lra_real *a,
                   const lra_real *b, int64_t n) {
    (void)be;
    if (n > 0 && (da || db)) CU_LAUNCH(cu_cmul_bwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, da, db, dout, a, b, n);
}
