// cuda_s4.cu: the convolution kernel of S4's DPLR state space model and its
// gradients (models.md 4; contract at s4_kernel_fwd in backend.h). The
// algebra, node formulas and the backward steps 1-5 are those of
// backends/cpu/cpu_s4.c, in double:
//   forward   one thread per (h, node m): the NX = 2 CH + 2 Cauchy sums and
//             the Woodbury spectra Khat_c(m); one batched C2R of length Lk
//             over the H CH rows; K = irfft[0:L] / Lk.
//   backward  one batched R2C of the zero-padded dK rows (the irfft adjoint);
//             per (h, m) the gradients G (H, M, NX) of the Cauchy sums; per
//             (h, n) the parameter gradients of the mode (a loop over the M
//             nodes); then the S shared rows summed over h = s, s + S, ...
//             and dinv_dt summed over n, each output by one thread in order.
#include "cuda.cuh"

#define CU_S4_MAX_CH 4
#define CU_S4_MAX_NX (2 * CU_S4_MAX_CH + 2)

struct cu_s4_par {
    const lra_real *inv_dt, *A_real, *A_imag, *P, *B, *C;
    int H, S, Nc, CH, Lk, L, dt_exp;
};

__device__ __forceinline__ void cu_s4_dt(double *dt, double *ddt, double x, int dt_exp) {
    if (dt_exp) {
        *dt = *ddt = exp(x);
    } else {
        *dt = log1p(exp(-fabs(x))) + (x > 0 ? x : 0);
        *ddt = 1 / (1 + exp(-x));
    }
}

// node m: a = 1 - omega, t = (1 + omega)/2 without cancellation
__device__ __forceinline__ void cu_s4_node(cu_cd *a, cu_cd *t, int m, int Lk) {
    double th = 2 * M_PI * (double)m / Lk, sh = sin(th / 2), chh = cos(th / 2), s = sin(th);
    *a = cd(2 * sh * sh, s);
    *t = cd(chh * chh, -s / 2);
}

// mode n of channel h: Lambda, w = dt Lambda and the products v (NX)
__device__ __forceinline__ void cu_s4_mode(const cu_s4_par &p, int h, int n, double dt, cu_cd *lam, cu_cd *w,
                                           cu_cd *v) {
    int s = h % p.S, CH = p.CH;
    int64_t i = (int64_t)s * p.Nc + n;
    *lam = cd(-exp((double)p.A_real[i]), -(double)p.A_imag[i]);
    *w = dt * *lam;
    cu_cd b = cd_ld(p.B, i), pp = cd_ld(p.P, i), q = conj(pp);
    for (int c = 0; c < CH; c++) {
        cu_cd cc = cd_ld(p.C, ((int64_t)c * p.H + h) * p.Nc + n);
        v[c] = cc * b;
        v[CH + c] = cc * pp;
    }
    v[2 * CH] = q * b;
    v[2 * CH + 1] = q * pp;
}

// k (NX) = dt sum_n [v / (a - t w) + conj(v) / (a - t conj(w))]
__device__ static void cu_s4_sums(cu_cd *k, const cu_s4_par &p, int h, double dt, cu_cd a, cu_cd t) {
    int NX = 2 * p.CH + 2;
    for (int x = 0; x < NX; x++) k[x] = cd(0, 0);
    for (int n = 0; n < p.Nc; n++) {
        cu_cd lam, w, v[CU_S4_MAX_NX];
        cu_s4_mode(p, h, n, dt, &lam, &w, v);
        cu_cd r1 = recip(a - t * w), r2 = recip(a - t * conj(w));
        for (int x = 0; x < NX; x++) k[x] += v[x] * r1 + conj(v[x]) * r2;
    }
    for (int x = 0; x < NX; x++) k[x] = dt * k[x];
}

// spec (H CH, M)c in float: Khat_c(m), imaginary parts of m = 0 and m = Lk/2 dropped
__global__ static void cu_s4_spec_kernel(float2 *spec, cu_s4_par p) {
    int M = p.Lk / 2 + 1, CH = p.CH;
    CU_FOR(i, (int64_t)p.H * M) {
        int h = (int)(i / M), m = (int)(i % M);
        double dt, ddt;
        cu_s4_dt(&dt, &ddt, (double)p.inv_dt[h], p.dt_exp);
        cu_cd a, t, k[CU_S4_MAX_NX];
        cu_s4_node(&a, &t, m, p.Lk);
        cu_s4_sums(k, p, h, dt, a, t);
        cu_cd sigma = recip(1.0 + t * k[2 * CH + 1]);
        for (int c = 0; c < CH; c++) {
            cu_cd kh = k[c] - t * k[2 * CH] * k[CH + c] * sigma;
            if (m == 0 || (p.Lk % 2 == 0 && m == M - 1)) kh.im = 0;
            spec[((int64_t)h * CH + c) * M + m] = make_float2((float)kh.re, (float)kh.im);
        }
    }
}

// K (rows, L) = r (rows, Lk)[0:L] / Lk
__global__ static void cu_s4_head_kernel(lra_real *K, const lra_real *r, int64_t rows, int Lk, int L) {
    CU_FOR(i, rows * L) {
        int64_t row = i / L;
        int t = (int)(i % L);
        K[i] = (lra_real)((double)r[row * Lk + t] / Lk);
    }
}

// r (rows, Lk) = g (rows, L) followed by zeros
__global__ static void cu_s4_pad_kernel(lra_real *r, const lra_real *g, int64_t rows, int L, int Lk) {
    CU_FOR(i, rows * Lk) {
        int64_t row = i / Lk;
        int t = (int)(i % Lk);
        r[i] = t < L ? g[row * L + t] : 0.0f;
    }
}

static void cu_s4_check(int H, int S, int Nc, int CH, int Lk, int L) {
    LRA_ASSERT(S > 0 && H % S == 0 && Lk >= 1 && L >= 0 && L <= Lk && CH >= 1 && Nc >= 0);
    LRA_ASSERT(CH <= CU_S4_MAX_CH);
}

void cuda_s4_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *inv_dt, const lra_real *A_real,
                        const lra_real *A_imag, const lra_real *P, const lra_real *B, const lra_real *C, int H,
                        int S, int Nc, int CH, int Lk, int L, int dt_exp) {
    cu_s4_check(H, S, Nc, CH, Lk, L);
    if (H <= 0 || L == 0) return;
    cu_s4_par p = { inv_dt, A_real, A_imag, P, B, C, H, S, Nc, CH, Lk, L, dt_exp };
    const int M = Lk / 2 + 1;
    const int64_t rows = (int64_t)H * CH;
    cufftHandle plan = lra_cuda_fft_plan_get(be, Lk, (int)rows, 1);
    size_t work = 0;
    CUFFT_CHECK(cufftGetSize(plan, &work));
    size_t bs = LRA_CUDA_ROUND(sizeof(float2) * rows * M), br = LRA_CUDA_ROUND(sizeof(lra_real) * rows * Lk);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, bs + br + LRA_CUDA_ROUND(work) + 256), 0 };
    float2 *spec = (float2 *)lra_cuda_take(&cv, bs);
    lra_real *r = (lra_real *)lra_cuda_take(&cv, br);
    void *wa = lra_cuda_take(&cv, work ? work : 1);
    CU_LAUNCH(cu_s4_spec_kernel, cu_grid((int64_t)H * M, 128), 128, spec, p);
    CUFFT_CHECK(cufftSetWorkArea(plan, wa));
    CUFFT_CHECK(cufftExecC2R(plan, (cufftComplex *)spec, r));
    CU_LAUNCH(cu_s4_head_kernel, cu_grid(rows * L, CU_BLOCK), CU_BLOCK, K, r, rows, Lk, L);
}

// ---- backward ---------------------------------------------------------------------------

// G (H, M, NX): gradients of the Cauchy sums at every node from X = rfft of the
// padded dK rows (H CH, M) (steps 1-3 of cpu_s4.c)
__global__ static void cu_s4_sum_grads_kernel(cu_cd *G, const float2 *X, cu_s4_par p) {
    int M = p.Lk / 2 + 1, CH = p.CH, NX = 2 * CH + 2;
    CU_FOR(i, (int64_t)p.H * M) {
        int h = (int)(i / M), m = (int)(i % M);
        double dt, ddt;
        cu_s4_dt(&dt, &ddt, (double)p.inv_dt[h], p.dt_exp);
        cu_cd a, t, k[CU_S4_MAX_NX];
        cu_s4_node(&a, &t, m, p.Lk);
        cu_s4_sums(k, p, h, dt, a, t);
        cu_cd sigma = recip(1.0 + t * k[2 * CH + 1]);
        cu_cd *Gm = G + i * NX;
        cu_cd g2 = cd(0, 0), g3 = cd(0, 0);
        for (int c = 0; c < CH; c++) {
            float2 xv = X[((int64_t)h * CH + c) * M + m];
            cu_cd g;  // grad Khat (irfft adjoint)
            if (m == 0 || (p.Lk % 2 == 0 && m == M - 1)) g = cd((double)xv.x / p.Lk, 0);
            else g = cd(2.0 * xv.x / p.Lk, 2.0 * xv.y / p.Lk);
            Gm[c] = g;
            Gm[CH + c] = conj(-(t * sigma * k[2 * CH])) * g;
            g2 += conj(-(t * sigma * k[CH + c])) * g;
            g3 += conj(t * t * sigma * sigma * k[2 * CH] * k[CH + c]) * g;
        }
        Gm[2 * CH] = g2;
        Gm[2 * CH + 1] = g3;
    }
}

// per (h, n): dC (+=), and the mode's shares gre, gim (H, Nc), gp, gb (H, Nc)c,
// gdt (H, Nc) (steps 4-5 of cpu_s4.c)
__global__ static void cu_s4_param_grads_kernel(double *gre, double *gim, cu_cd *gp, cu_cd *gb, double *gdt,
                                                lra_real *dC, const cu_cd *G, cu_s4_par p) {
    int M = p.Lk / 2 + 1, CH = p.CH, NX = 2 * CH + 2;
    CU_FOR(i, (int64_t)p.H * p.Nc) {
        int h = (int)(i / p.Nc), n = (int)(i % p.Nc);
        double dt, ddt;
        cu_s4_dt(&dt, &ddt, (double)p.inv_dt[h], p.dt_exp);
        cu_cd lam, w, v[CU_S4_MAX_NX], gv[CU_S4_MAX_NX], gw = cd(0, 0);
        cu_s4_mode(p, h, n, dt, &lam, &w, v);
        for (int x = 0; x < NX; x++) gv[x] = cd(0, 0);
        const cu_cd *Gh = G + (int64_t)h * M * NX;
        for (int m = 0; m < M; m++) {
            cu_cd a, t;
            cu_s4_node(&a, &t, m, p.Lk);
            const cu_cd *Gm = Gh + (int64_t)m * NX;
            cu_cd r1 = recip(a - t * w), r2 = recip(a - t * conj(w)), U = cd(0, 0), W = cd(0, 0), cr1 = conj(r1);
            for (int x = 0; x < NX; x++) {
                cu_cd g = Gm[x];
                gv[x] += cr1 * g + conj(g) * r2;
                U += conj(v[x]) * g;
                W += v[x] * g;
            }
            gw += conj(t * r1 * r1) * U + t * r2 * r2 * conj(W);
        }
        gw = dt * gw;
        int s = h % p.S;
        int64_t si = (int64_t)s * p.Nc + n;
        cu_cd b = cd_ld(p.B, si), pp = cd_ld(p.P, si), q = conj(pp), gbv = cd(0, 0), gpv = cd(0, 0), gq = cd(0, 0);
        double g_dt = 0;
        for (int x = 0; x < NX; x++) g_dt += (conj(gv[x]) * v[x]).re;
        for (int c = 0; c < CH; c++) {
            cu_cd cc = cd_ld(p.C, ((int64_t)c * p.H + h) * p.Nc + n), g1 = dt * gv[c], g2 = dt * gv[CH + c];
            gbv += conj(cc) * g1;
            gpv += conj(cc) * g2;
            if (dC) cd_acc(dC, ((int64_t)c * p.H + h) * p.Nc + n, conj(b) * g1 + conj(pp) * g2);
        }
        cu_cd g3 = dt * gv[2 * CH], g4 = dt * gv[2 * CH + 1];
        gq += conj(b) * g3 + conj(pp) * g4;
        gbv += conj(q) * g3;
        gpv += conj(q) * g4 + conj(gq);  // Q = conj(P)
        g_dt += (conj(gw) * lam).re;
        cu_cd glam = dt * gw;
        gre[i] = lam.re * glam.re;
        gim[i] = -glam.im;
        gp[i] = gpv;
        gb[i] = gbv;
        gdt[i] = g_dt;
    }
}

__global__ static void cu_s4_rows_kernel(lra_real *dA_real, lra_real *dA_imag, lra_real *dP, lra_real *dB,
                                         const double *gre, const double *gim, const cu_cd *gp, const cu_cd *gb,
                                         int H, int S, int Nc) {
    CU_FOR(i, (int64_t)S * Nc) {
        int s = (int)(i / Nc), n = (int)(i % Nc);
        double are = 0, aim = 0;
        cu_cd sp = cd(0, 0), sb = cd(0, 0);
        for (int h = s; h < H; h += S) {
            int64_t j = (int64_t)h * Nc + n;
            are += gre[j];
            aim += gim[j];
            sp += gp[j];
            sb += gb[j];
        }
        if (dA_real) dA_real[i] += (lra_real)are;
        if (dA_imag) dA_imag[i] += (lra_real)aim;
        if (dP) cd_acc(dP, i, sp);
        if (dB) cd_acc(dB, i, sb);
    }
}

__global__ static void cu_s4_dt_kernel(lra_real *dinv_dt, const double *gdt, const lra_real *inv_dt, int H, int Nc,
                                       int dt_exp) {
    CU_FOR(h, (int64_t)H) {
        double dt, ddt, s = 0;
        cu_s4_dt(&dt, &ddt, (double)inv_dt[h], dt_exp);
        for (int n = 0; n < Nc; n++) s += gdt[h * Nc + n];
        dinv_dt[h] += (lra_real)(s * ddt);
    }
}

void cuda_s4_kernel_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag, lra_real *dP,
                        lra_real *dB, lra_real *dC, const lra_real *dK, const lra_real *inv_dt,
                        const lra_real *A_real, const lra_real *A_imag, const lra_real *P, const lra_real *B,
                        const lra_real *C, int H, int S, int Nc, int CH, int Lk, int L, int dt_exp) {
    cu_s4_check(H, S, Nc, CH, Lk, L);
    if (H <= 0 || L == 0 || (!dinv_dt && !dA_real && !dA_imag && !dP && !dB && !dC)) return;
    cu_s4_par p = { inv_dt, A_real, A_imag, P, B, C, H, S, Nc, CH, Lk, L, dt_exp };
    const int M = Lk / 2 + 1, NX = 2 * CH + 2;
    const int64_t rows = (int64_t)H * CH, hn = (int64_t)H * Nc;
    cufftHandle plan = lra_cuda_fft_plan_get(be, Lk, (int)rows, 0);
    size_t work = 0;
    CUFFT_CHECK(cufftGetSize(plan, &work));
    size_t br = LRA_CUDA_ROUND(sizeof(lra_real) * rows * Lk), bX = LRA_CUDA_ROUND(sizeof(float2) * rows * M);
    size_t bG = LRA_CUDA_ROUND(sizeof(cu_cd) * (size_t)H * M * NX);
    size_t bd = LRA_CUDA_ROUND(sizeof(double) * (hn > 0 ? hn : 1)), bc = LRA_CUDA_ROUND(sizeof(cu_cd) * (hn > 0 ? hn : 1));
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, br + bX + bG + 3 * bd + 2 * bc + LRA_CUDA_ROUND(work) + 256), 0 };
    lra_real *r = (lra_real *)lra_cuda_take(&cv, br);
    float2 *X = (float2 *)lra_cuda_take(&cv, bX);
    cu_cd *G = (cu_cd *)lra_cuda_take(&cv, bG);
    double *gre = (double *)lra_cuda_take(&cv, bd), *gim = (double *)lra_cuda_take(&cv, bd);
    double *gdt = (double *)lra_cuda_take(&cv, bd);
    cu_cd *gp = (cu_cd *)lra_cuda_take(&cv, bc), *gb = (cu_cd *)lra_cuda_take(&cv, bc);
    void *wa = lra_cuda_take(&cv, work ? work : 1);
    CU_LAUNCH(cu_s4_pad_kernel, cu_grid(rows * Lk, CU_BLOCK), CU_BLOCK, r, dK, rows, L, Lk);
    CUFFT_CHECK(cufftSetWorkArea(plan, wa));
    CUFFT_CHECK(cufftExecR2C(plan, r, (cufftComplex *)X));
    CU_LAUNCH(cu_s4_sum_grads_kernel, cu_grid((int64_t)H * M, 128), 128, G, X, p);
    if (hn == 0) return;
    CU_LAUNCH(cu_s4_param_grads_kernel, cu_grid(hn, 64), 64, gre, gim, gp, gb, gdt, dC, G, p);
    if (dA_real || dA_imag || dP || dB)
        CU_LAUNCH(cu_s4_rows_kernel, cu_grid((int64_t)S * Nc, CU_BLOCK), CU_BLOCK, dA_real, dA_imag, dP, dB, gre, gim,
                  gp, gb, H, S, Nc);
    if (dinv_dt) CU_LAUNCH(cu_s4_dt_kernel, cu_grid(H, CU_BLOCK), CU_BLOCK, dinv_dt, gdt, inv_dt, H, Nc, dt_exp);
}
