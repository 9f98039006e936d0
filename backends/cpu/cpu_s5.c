// cpu_s5.c: S5 discretisation (parameters -> conjugated Lbar and B-bar, and
// its adjoint; models.md 5, 0.4).
//
// Gradient conventions (models.md 0.1): grad z = dl/dRe z + i dl/dIm z. The
// outputs are conjugates, so grad Lbar = conj(dabar), grad Bbar[n][h] =
// conj(dbbar[h][n]). With Bbar = phi B (R5): grad B += conj(phi) grad Bbar,
// grad phi = sum_h conj(B) grad Bbar. Through x = dt Lambda (R1, R3):
//   ZOH:      dLbar/dLambda = dt Lbar,  dLbar/ddt = Lambda Lbar,
//             dphi/dLambda = (dt Lbar Lambda - (Lbar - 1))/Lambda^2,  dphi/ddt = Lbar
//   bilinear: with den = 1 - x/2: dLbar/dLambda = dt/den^2,  dLbar/ddt = Lambda/den^2,
//             dphi/dLambda = dt^2/(2 den^2),  dphi/ddt = 1/den^2
//   grad Lambda = conj(dLbar/dLambda) grad Lbar + conj(dphi/dLambda) grad phi,
//   dl/ddt = Re(conj(grad Lbar) dLbar/ddt) + Re(conj(grad phi) dphi/ddt),
//   dl/dlog_step = dt dl/ddt, dl/dLambda_re = Re grad Lambda (0 where clipped),
//   dl/dLambda_im = Im grad Lambda.
#include "cpu.h"
#include "cpu_cplx.h"

#define S5_CLIP (-1e-4)  // clip_eigs: Re Lambda <= -1e-4

static cplx lambda_of(const lra_real *re, const lra_real *im, int n, int clip) {
    double r = re[n];
    return (clip && r > S5_CLIP ? S5_CLIP : r) + I * (double)im[n];
}

// Lbar and phi of one mode (bilinear or ZOH), in double.
static void mode_disc(cplx Lam, double dt, int bilinear, cplx *Lbar, cplx *phi) {
    cplx x = dt * Lam;
    if (bilinear) {
        *Lbar = (1 + x / 2) / (1 - x / 2);
        *phi = dt / (1 - x / 2);
    } else {
        cplx em1 = cexpm1(x);
        *Lbar = em1 + 1;
        *phi = em1 / Lam;
    }
}

void cpu_s5_discretize_fwd(lra_backend *be, lra_real *abar, lra_real *bbar, const lra_real *Lambda_re,
                           const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                           int bilinear, int clip) {
    (void)be;
#pragma omp parallel for schedule(static) if ((int64_t)Pc * H > 4096)
    for (int n = 0; n < Pc; n++) {
        cplx Lbar, phi;
        mode_disc(lambda_of(Lambda_re, Lambda_im, n, clip), exp((double)log_step[n]), bilinear, &Lbar, &phi);
        st(abar, n, conj(Lbar));
        for (int h = 0; h < H; h++) st(bbar, (int64_t)h * Pc + n, conj(phi * ld(B, (int64_t)n * H + h)));
    }
}

// The thread owning mode n writes every gradient of n: no races.
void cpu_s5_discretize_bwd(lra_backend *be, lra_real *dLambda_re, lra_real *dLambda_im, lra_real *dlog_step,
                           lra_real *dB, const lra_real *dabar, const lra_real *dbbar, const lra_real *Lambda_re,
                           const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                           int bilinear, int clip) {
    (void)be;
#pragma omp parallel for schedule(static) if ((int64_t)Pc * H > 4096)
    for (int n = 0; n < Pc; n++) {
        cplx Lam = lambda_of(Lambda_re, Lambda_im, n, clip), Lbar, phi;
        double dt = exp((double)log_step[n]);
        mode_disc(Lam, dt, bilinear, &Lbar, &phi);
        cplx gL = dabar ? conj(ld(dabar, n)) : 0, gphi = 0;
        if (dbbar)
            for (int h = 0; h < H; h++) {
                int64_t nh = (int64_t)n * H + h;
                cplx gBbar = conj(ld(dbbar, (int64_t)h * Pc + n));
                gphi += conj(ld(B, nh)) * gBbar;
                if (dB) acc(dB, nh, conj(phi) * gBbar);
            }
        cplx dL_dLam, dL_ddt, dphi_dLam, dphi_ddt;
        if (bilinear) {
            cplx den2 = (1 - dt * Lam / 2) * (1 - dt * Lam / 2);
            dL_dLam = dt / den2, dL_ddt = Lam / den2;
            dphi_dLam = dt * dt / (2 * den2), dphi_ddt = 1 / den2;
        } else {
            dL_dLam = dt * Lbar, dL_ddt = Lam * Lbar;
            dphi_dLam = (dt * Lbar * Lam - (Lbar - 1)) / (Lam * Lam), dphi_ddt = Lbar;
        }
        cplx gLam = conj(dL_dLam) * gL + conj(dphi_dLam) * gphi;
        double gdt = creal(conj(gL) * dL_ddt) + creal(conj(gphi) * dphi_ddt);
        if (dLambda_re && !(clip && (double)Lambda_re[n] > S5_CLIP)) dLambda_re[n] += (lra_real)creal(gLam);
        if (dLambda_im) dLambda_im[n] += (lra_real)cimag(gLam);
        if (dlog_step) dlog_step[n] += (lra_real)(dt * gdt);
    }
}
