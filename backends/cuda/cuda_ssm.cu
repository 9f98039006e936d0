// cuda_ssm.cu: S4D discretisation (parameters -> Vandermonde inputs, and its
// adjoint) and the step of diagonal SSMs (models.md 3, 0.4), in double, with
// the formulas and gradient conventions of backends/cpu/cpu_ssm.c.
//
// The adjoint runs in three kernels so that every output is written by one
// thread in a fixed order: per (h, n) the channel's contributions (dC
// directly; the shares of the shared rows and of dt to scratch), then per
// (s, n) the shared rows summed over h = s, s + S, ..., and per h dinv_dt
// summed over n.
#include "cuda.cuh"

__device__ __forceinline__ double cu_dt_of(double p, int dt_exp) { return dt_exp ? exp(p) : (p > 30 ? p : log1p(exp(p))); }
__device__ __forceinline__ double cu_ddt_dp(double p, int dt_exp) { return dt_exp ? exp(p) : 1 / (1 + exp(-p)); }

__global__ static void cu_s4d_disc_fwd_kernel(lra_real *w, lra_real *coef, const lra_real *inv_dt,
                                              const lra_real *A_real, const lra_real *A_imag, const lra_real *B,
                                              const lra_real *C, int H, int S, int Nc, int CH, int bilinear, int dt_exp) {
    CU_FOR(i, (int64_t)H * Nc) {
        int h = (int)(i / Nc), n = (int)(i % Nc), s = h % S;
        int64_t sn = (int64_t)s * Nc + n;
        double dt = cu_dt_of(inv_dt[h], dt_exp);
        cu_cd A = cd(-exp((double)A_real[sn]), -(double)A_imag[sn]), x = dt * A, Bn = cd_ld(B, sn), E, wv;
        if (bilinear) {
            cu_cd d = 1.0 - x * 0.5;
            E = Bn * dt / d;
            wv = cd_log((1.0 + x * 0.5) / d);
        } else {
            E = Bn * cu_cexpm1(x) / A;
            wv = x;
        }
        for (int c = 0; c < CH; c++) {
            int64_t o = ((int64_t)h * CH + c) * Nc + n;
            cd_st(w, o, wv);
            cd_st(coef, o, 2.0 * cd_ld(C, ((int64_t)c * H + h) * Nc + n) * E);
        }
    }
}

void cuda_s4d_discretize_fwd(lra_backend *be, lra_real *w, lra_real *coef, const lra_real *inv_dt,
                             const lra_real *A_real, const lra_real *A_imag, const lra_real *B, const lra_real *C,
                             int H, int S, int Nc, int CH, int bilinear, int dt_exp) {
    (void)be;
    if (H <= 0 || Nc <= 0 || CH <= 0) return;
    CU_LAUNCH(cu_s4d_disc_fwd_kernel, cu_grid((int64_t)H * Nc, CU_BLOCK), CU_BLOCK, w, coef, inv_dt, A_real, A_imag,
              B, C, H, S, Nc, CH, bilinear, dt_exp);
}

// per (h, n): dC, and gA, gB (H, Nc)c, gdt (H, Nc) to scratch
__global__ static void cu_s4d_disc_bwd_kernel(cu_cd *gA, cu_cd *gB, double *gdt, lra_real *dC, const lra_real *dw,
                                              const lra_real *dcoef, const lra_real *inv_dt, const lra_real *A_real,
                                              const lra_real *A_imag, const lra_real *B, const lra_real *C, int H,
                                              int S, int Nc, int CH, int bilinear, int dt_exp) {
    CU_FOR(i, (int64_t)H * Nc) {
        int h = (int)(i / Nc), n = (int)(i % Nc), s = h % S;
        int64_t sn = (int64_t)s * Nc + n;
        double dt = cu_dt_of(inv_dt[h], dt_exp), g_dt = 0;
        cu_cd A = cd(-exp((double)A_real[sn]), -(double)A_imag[sn]), x = dt * A, Bn = cd_ld(B, sn);
        cu_cd em1 = cu_cexpm1(x), F = bilinear ? cd(dt, 0) / (1.0 - x * 0.5) : em1 / A;  // E = B F
        cu_cd gE = cd(0, 0), gw = cd(0, 0);
        for (int c = 0; c < CH; c++) {
            int64_t o = ((int64_t)h * CH + c) * Nc + n, co = ((int64_t)c * H + h) * Nc + n;
            cu_cd g = dcoef ? cd_ld(dcoef, o) : cd(0, 0);
            if (dC) cd_acc(dC, co, conj(2.0 * Bn * F) * g);
            gE += conj(2.0 * cd_ld(C, co)) * g;
            if (dw) gw += cd_ld(dw, o);
        }
        cu_cd gx, gAn;
        if (bilinear) {
            cu_cd d = 1.0 - x * 0.5;
            gx = conj(Bn * dt / (2.0 * d * d)) * gE + conj(recip(1.0 - x * x * 0.25)) * gw;
            g_dt += (conj(gE) * Bn / d).re;
            gAn = cd(0, 0);
        } else {
            gx = conj(Bn * (em1 + cd(1, 0)) / A) * gE + gw;
            gAn = -(conj(Bn * em1 / (A * A)) * gE);
        }
        gAn += dt * gx;
        g_dt += (conj(gx) * A).re;
        gA[i] = gAn;
        gB[i] = conj(F) * gE;
        gdt[i] = g_dt;
    }
}

// per (s, n): the shared rows, summed over h = s, s + S, ... in order
__global__ static void cu_s4d_disc_rows_kernel(lra_real *dA_real, lra_real *dA_imag, lra_real *dB, const cu_cd *gA,
                                               const cu_cd *gB, const lra_real *A_real, int H, int S, int Nc) {
    CU_FOR(i, (int64_t)S * Nc) {
        int s = (int)(i / Nc), n = (int)(i % Nc);
        cu_cd a = cd(0, 0), b = cd(0, 0);
        for (int h = s; h < H; h += S) {
            a += gA[(int64_t)h * Nc + n];
            b += gB[(int64_t)h * Nc + n];
        }
        if (dA_real) dA_real[i] += (lra_real)(-exp((double)A_real[i]) * a.re);
        if (dA_imag) dA_imag[i] += (lra_real)(-a.im);
        if (dB) cd_acc(dB, i, b);
    }
}

// per h: dinv_dt += ddt/dp sum_n gdt
__global__ static void cu_s4d_disc_dt_kernel(lra_real *dinv_dt, const double *gdt, const lra_real *inv_dt, int H,
                                             int Nc, int dt_exp) {
    CU_FOR(h, (int64_t)H) {
        double s = 0;
        for (int n = 0; n < Nc; n++) s += gdt[h * Nc + n];
        dinv_dt[h] += (lra_real)(cu_ddt_dp(inv_dt[h], dt_exp) * s);
    }
}

void cuda_s4d_discretize_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                             lra_real *dB, lra_real *dC, const lra_real *dw, const lra_real *dcoef,
                             const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                             const lra_real *B, const lra_real *C, int H, int S, int Nc, int CH, int bilinear,
                             int dt_exp) {
    if (H <= 0 || Nc <= 0 || CH <= 0) return;
    int64_t hn = (int64_t)H * Nc;
    size_t bc = LRA_CUDA_ROUND(sizeof(cu_cd) * hn), bd = LRA_CUDA_ROUND(sizeof(double) * hn);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, 2 * bc + bd), 0 };
    cu_cd *gA = (cu_cd *)lra_cuda_take(&cv, bc), *gB = (cu_cd *)lra_cuda_take(&cv, bc);
    double *gdt = (double *)lra_cuda_take(&cv, bd);
    CU_LAUNCH(cu_s4d_disc_bwd_kernel, cu_grid(hn, CU_BLOCK), CU_BLOCK, gA, gB, gdt, dC, dw, dcoef, inv_dt, A_real,
              A_imag, B, C, H, S, Nc, CH, bilinear, dt_exp);
    if (dA_real || dA_imag || dB)
        CU_LAUNCH(cu_s4d_disc_rows_kernel, cu_grid((int64_t)S * Nc, CU_BLOCK), CU_BLOCK, dA_real, dA_imag, dB, gA, gB,
                  A_real, H, S, Nc);
    if (dinv_dt) CU_LAUNCH(cu_s4d_disc_dt_kernel, cu_grid(H, CU_BLOCK), CU_BLOCK, dinv_dt, gdt, inv_dt, H, Nc, dt_exp);
}

// ---- diagonal SSM step ---------------------------------------------------------------------

__global__ static void cu_diag_step_kernel(lra_real *y, lra_real *state, const lra_real *u, const lra_real *z,
                                           const lra_real *coef, int B, int R, int N) {
    CU_FOR(br, (int64_t)B * R) {
        int64_t r = br % R;
        double uu = u[br], sum = 0;
        for (int n = 0; n < N; n++) {
            int64_t o = br * N + n, rn = r * N + n;
            cu_cd sv = cd_ld(z, rn) * cd_ld(state, o) + cd(uu, 0);
            cd_st(state, o, sv);
            sum += (cd_ld(coef, rn) * sv).re;
        }
        y[br] = (lra_real)sum;
    }
}

void cuda_diag_ssm_step(lra_backend *be, lra_real *y, lra_real *state, const lra_real *u, const lra_real *z,
                        const lra_real *coef, int B, int R, int N) {
    (void)be;
    if (B <= 0 || R <= 0) return;
    CU_LAUNCH(cu_diag_step_kernel, cu_grid((int64_t)B * R, CU_BLOCK), CU_BLOCK, y, state, u, z, coef, B, R, N);
}
