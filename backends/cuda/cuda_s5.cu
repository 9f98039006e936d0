// cuda_s5.cu: S5 discretisation (parameters -> conjugated Lbar and B-bar, and
// its adjoint; models.md 5, 0.4) in double, with the formulas and gradient
// conventions of backends/cpu/cpu_s5.c. The adjoint is one block per mode:
// its threads stride over h (dB directly, grad phi by a fixed-order block
// sum), then thread 0 writes the mode's Lambda and log_step gradients.
#include "cuda.cuh"

#define S5_CLIP (-1e-4)  // clip_eigs: Re Lambda <= -1e-4

__device__ __forceinline__ cu_cd s5_lambda(const lra_real *re, const lra_real *im, int n, int clip) {
    double r = re[n];
    return cd(clip && r > S5_CLIP ? S5_CLIP : r, (double)im[n]);
}

// Lbar and phi of one mode (bilinear or ZOH)
__device__ __forceinline__ void s5_mode(cu_cd Lam, double dt, int bilinear, cu_cd *Lbar, cu_cd *phi) {
    cu_cd x = dt * Lam;
    if (bilinear) {
        cu_cd den = 1.0 - x * 0.5;
        *Lbar = (1.0 + x * 0.5) / den;
        *phi = cd(dt, 0) / den;
    } else {
        cu_cd em1 = cu_cexpm1(x);
        *Lbar = em1 + cd(1, 0);
        *phi = em1 / Lam;
    }
}

// bbar[h][n] = conj(phi_n B[n][h]) per (h, n); abar[n] = conj(Lbar_n) per n
__global__ static void cu_s5_disc_fwd_kernel(lra_real *abar, lra_real *bbar, const lra_real *Lambda_re,
                                             const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B,
                                             int Pc, int H, int bilinear, int clip) {
    CU_FOR(i, (int64_t)H * Pc) {
        int h = (int)(i / Pc), n = (int)(i % Pc);
        cu_cd Lbar, phi;
        s5_mode(s5_lambda(Lambda_re, Lambda_im, n, clip), exp((double)log_step[n]), bilinear, &Lbar, &phi);
        cd_st(bbar, i, conj(phi * cd_ld(B, (int64_t)n * H + h)));
    }
    CU_FOR(n, (int64_t)Pc) {
        cu_cd Lbar, phi;
        s5_mode(s5_lambda(Lambda_re, Lambda_im, (int)n, clip), exp((double)log_step[n]), bilinear, &Lbar, &phi);
        cd_st(abar, n, conj(Lbar));
    }
}

void cuda_s5_discretize_fwd(lra_backend *be, lra_real *abar, lra_real *bbar, const lra_real *Lambda_re,
                            const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                            int bilinear, int clip) {
    (void)be;
    if (Pc <= 0) return;
    int64_t n = (int64_t)(H > 1 ? H : 1) * Pc;
    CU_LAUNCH(cu_s5_disc_fwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, abar, bbar, Lambda_re, Lambda_im, log_step, B,
              Pc, H, bilinear, clip);
}

__global__ static void cu_s5_disc_bwd_kernel(lra_real *dLambda_re, lra_real *dLambda_im, lra_real *dlog_step,
                                             lra_real *dB, const lra_real *dabar, const lra_real *dbbar,
                                             const lra_real *Lambda_re, const lra_real *Lambda_im,
                                             const lra_real *log_step, const lra_real *B, int Pc, int H, int bilinear,
                                             int clip) {
    int n = blockIdx.x;
    cu_cd Lam = s5_lambda(Lambda_re, Lambda_im, n, clip), Lbar, phi;
    double dt = exp((double)log_step[n]);
    s5_mode(Lam, dt, bilinear, &Lbar, &phi);
    cu_cd gphi = cd(0, 0);
    if (dbbar) {  // uniform over the block
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
            int64_t nh = (int64_t)n * H + h;
            cu_cd gBbar = conj(cd_ld(dbbar, (int64_t)h * Pc + n));
            gphi += conj(cd_ld(B, nh)) * gBbar;  // grad phi = sum_h conj(B) grad Bbar
            if (dB) cd_acc(dB, nh, conj(phi) * gBbar);
        }
        gphi.re = cu_block_sum(gphi.re);
        gphi.im = cu_block_sum(gphi.im);
    }
    if (threadIdx.x != 0) return;
    cu_cd gL = dabar ? conj(cd_ld(dabar, n)) : cd(0, 0);
    cu_cd dL_dLam, dL_ddt, dphi_dLam, dphi_ddt;
    if (bilinear) {
        cu_cd den = 1.0 - dt * Lam * 0.5, den2 = den * den;
        dL_dLam = cd(dt, 0) / den2, dL_ddt = Lam / den2;
        dphi_dLam = cd(dt * dt / 2, 0) / den2, dphi_ddt = recip(den2);
    } else {
        dL_dLam = dt * Lbar, dL_ddt = Lam * Lbar;
        dphi_dLam = (dt * Lbar * Lam - (Lbar - cd(1, 0))) / (Lam * Lam), dphi_ddt = Lbar;
    }
    cu_cd gLam = conj(dL_dLam) * gL + conj(dphi_dLam) * gphi;
    double gdt = (conj(gL) * dL_ddt).re + (conj(gphi) * dphi_ddt).re;
    if (dLambda_re && !(clip && (double)Lambda_re[n] > S5_CLIP)) dLambda_re[n] += (lra_real)gLam.re;
    if (dLambda_im) dLambda_im[n] += (lra_real)gLam.im;
    if (dlog_step) dlog_step[n] += (lra_real)(dt * gdt);
}

void cuda_s5_discretize_bwd(lra_backend *be, lra_real *dLambda_re, lra_real *dLambda_im, lra_real *dlog_step,
                            lra_real *dB, const lra_real *dabar, const lra_real *dbbar, const lra_real *Lambda_re,
                            const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                            int bilinear, int clip) {
    (void)be;
    if (Pc <= 0) return;
    CU_LAUNCH(cu_s5_disc_bwd_kernel, (unsigned)Pc, CU_BLOCK, dLambda_re, dLambda_im, dlog_step, dB, dabar, dbbar,
              Lambda_re, Lambda_im, log_step, B, Pc, H, bilinear, clip);
}
