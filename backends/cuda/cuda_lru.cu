// cuda_lru.cu: the LRU parameterisation (models.md 6) and its adjoint, in
// double, with the formulas of backends/cpu/cpu_lru.c. The gamma gradient
// (a sum over H per mode) is one block per mode with a fixed-order block sum.
#include "cuda.cuh"

// Bw (N, 2, H) per (n, h), then lambda (N)c per n
__global__ static void cu_lru_fwd_kernel(lra_real *lambda, lra_real *Bw, const lra_real *nu_log,
                                         const lra_real *theta_log, const lra_real *gamma_log, const lra_real *B_re,
                                         const lra_real *B_im, int N, int H) {
    CU_FOR(n, (int64_t)N) {
        double mod = exp(-exp((double)nu_log[n])), ph = exp((double)theta_log[n]), s, c;
        sincos(ph, &s, &c);
        lambda[2 * n] = (lra_real)(mod * c);
        lambda[2 * n + 1] = (lra_real)(mod * s);
    }
    CU_FOR(i, (int64_t)N * H) {
        int n = (int)(i / H), h = (int)(i % H);
        double g = exp((double)gamma_log[n]);
        lra_real *o = Bw + (int64_t)n * 2 * H;
        o[h] = (lra_real)(g * B_re[i]);
        o[H + h] = (lra_real)(g * B_im[i]);
    }
}

// Cw (H, CH N, 2) = (C_re, -C_im)
__global__ static void cu_lru_cw_kernel(lra_real *Cw, const lra_real *C_re, const lra_real *C_im, int64_t n) {
    CU_FOR(i, n) {
        Cw[2 * i] = C_re[i];
        Cw[2 * i + 1] = -C_im[i];
    }
}

void cuda_lru_params_fwd(lra_backend *be, lra_real *lambda, lra_real *Bw, lra_real *Cw, const lra_real *nu_log,
                         const lra_real *theta_log, const lra_real *gamma_log, const lra_real *B_re,
                         const lra_real *B_im, const lra_real *C_re, const lra_real *C_im, int N, int H, int CH) {
    (void)be;
    if (N <= 0) return;
    CU_LAUNCH(cu_lru_fwd_kernel, cu_grid((int64_t)N * (H > 1 ? H : 1), CU_BLOCK), CU_BLOCK, lambda, Bw, nu_log,
              theta_log, gamma_log, B_re, B_im, N, H);
    int64_t hm = (int64_t)H * CH * N;
    if (hm > 0) CU_LAUNCH(cu_lru_cw_kernel, cu_grid(hm, CU_BLOCK), CU_BLOCK, Cw, C_re, C_im, hm);
}

// one block per mode n: dnu_log, dtheta_log from dlambda; dB_re, dB_im per h;
// dgamma_log = exp(gamma_log) sum_h (dBw_re B_re + dBw_im B_im)
__global__ static void cu_lru_bwd_kernel(lra_real *dnu_log, lra_real *dtheta_log, lra_real *dgamma_log,
                                         lra_real *dB_re, lra_real *dB_im, const lra_real *dlambda,
                                         const lra_real *dBw, const lra_real *nu_log, const lra_real *theta_log,
                                         const lra_real *gamma_log, const lra_real *B_re, const lra_real *B_im,
                                         int N, int H) {
    int n = blockIdx.x;
    if (dlambda && threadIdx.x == 0) {
        double en = exp((double)nu_log[n]), et = exp((double)theta_log[n]), mod = exp(-en), s, c;
        sincos(et, &s, &c);
        double lr = mod * c, li = mod * s, gr = dlambda[2 * n], gi = dlambda[2 * n + 1];
        double zr = lr * gr + li * gi, zi = lr * gi - li * gr;  // grad z = conj(lambda) grad lambda
        if (dnu_log) dnu_log[n] += (lra_real)(-en * zr);
        if (dtheta_log) dtheta_log[n] += (lra_real)(et * zi);
    }
    if (!dBw) return;  // uniform over the block
    double g = exp((double)gamma_log[n]), s = 0;
    const lra_real *dre = dBw + (int64_t)n * 2 * H, *dim = dre + H;
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        int64_t nh = (int64_t)n * H + h;
        s += (double)dre[h] * B_re[nh] + (double)dim[h] * B_im[nh];
        if (dB_re) dB_re[nh] += (lra_real)(g * dre[h]);
        if (dB_im) dB_im[nh] += (lra_real)(g * dim[h]);
    }
    s = cu_block_sum(s);
    if (dgamma_log && threadIdx.x == 0) dgamma_log[n] += (lra_real)(g * s);
}

// dC_re += dCw_re, dC_im -= dCw_im
__global__ static void cu_lru_dcw_kernel(lra_real *dC_re, lra_real *dC_im, const lra_real *dCw, int64_t n) {
    CU_FOR(i, n) {
        if (dC_re) dC_re[i] += dCw[2 * i];
        if (dC_im) dC_im[i] -= dCw[2 * i + 1];
    }
}

void cuda_lru_params_bwd(lra_backend *be, lra_real *dnu_log, lra_real *dtheta_log, lra_real *dgamma_log,
                         lra_real *dB_re, lra_real *dB_im, lra_real *dC_re, lra_real *dC_im, const lra_real *dlambda,
                         const lra_real *dBw, const lra_real *dCw, const lra_real *nu_log, const lra_real *theta_log,
                         const lra_real *gamma_log, const lra_real *B_re, const lra_real *B_im, int N, int H, int CH) {
    (void)be;
    if (N <= 0) return;
    if (dlambda || dBw)
        CU_LAUNCH(cu_lru_bwd_kernel, (unsigned)N, CU_BLOCK, dnu_log, dtheta_log, dgamma_log, dB_re, dB_im, dlambda,
                  dBw, nu_log, theta_log, gamma_log, B_re, B_im, N, H);
    int64_t hm = (int64_t)H * CH * N;
    if (dCw && (dC_re || dC_im) && hm > 0)
        CU_LAUNCH(cu_lru_dcw_kernel, cu_grid(hm, CU_BLOCK), CU_BLOCK, dC_re, dC_im, dCw, hm);
}
