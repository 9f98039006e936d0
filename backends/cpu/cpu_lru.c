// cpu_lru.c: the LRU parameterisation (models.md 6) and its adjoint.
//
// lambda = exp(z), z = -exp(nu_log) + i exp(theta_log) (holomorphic, R1 of
// models.md 0.1): grad z = conj(lambda) grad lambda; then (R3)
//   dl/dnu_log    = Re(conj(grad z) (-exp(nu_log)))   = -exp(nu_log) Re grad z
//   dl/dtheta_log = Re(conj(grad z) (i exp(theta_log))) = exp(theta_log) Im grad z.
// Bw = exp(gamma_log) (B_re, B_im): dB_re = exp(gamma_log) dBw_re, likewise
// B_im, and dl/dgamma_log = sum_h (dBw_re Bw_re + dBw_im Bw_im).
// Cw = (C_re, -C_im): dC_re = dCw_re, dC_im = -dCw_im.
#include "cpu.h"

#include <math.h>

void cpu_lru_params_fwd(lra_backend *be, lra_real *lambda, lra_real *Bw, lra_real *Cw, const lra_real *nu_log,
                        const lra_real *theta_log, const lra_real *gamma_log, const lra_real *B_re,
                        const lra_real *B_im, const lra_real *C_re, const lra_real *C_im, int N, int H, int CH) {
    (void)be;
    for (int n = 0; n < N; n++) {
        double mod = exp(-exp((double)nu_log[n])), ph = exp((double)theta_log[n]);
        lambda[2 * n] = (lra_real)(mod * cos(ph));
        lambda[2 * n + 1] = (lra_real)(mod * sin(ph));
        double g = exp((double)gamma_log[n]);
        const lra_real *re = B_re + (int64_t)n * H, *im = B_im + (int64_t)n * H;
        lra_real *o = Bw + (int64_t)n * 2 * H;
        for (int h = 0; h < H; h++) {
            o[h] = (lra_real)(g * re[h]);
            o[H + h] = (lra_real)(g * im[h]);
        }
    }
    int64_t M = (int64_t)CH * N;  // columns of C_re, C_im
    for (int64_t hm = 0; hm < (int64_t)H * M; hm++) {
        Cw[2 * hm] = C_re[hm];
        Cw[2 * hm + 1] = -C_im[hm];
    }
}

void cpu_lru_params_bwd(lra_backend *be, lra_real *dnu_log, lra_real *dtheta_log, lra_real *dgamma_log,
                        lra_real *dB_re, lra_real *dB_im, lra_real *dC_re, lra_real *dC_im, const lra_real *dlambda,
                        const lra_real *dBw, const lra_real *dCw, const lra_real *nu_log, const lra_real *theta_log,
                        const lra_real *gamma_log, const lra_real *B_re, const lra_real *B_im, int N, int H, int CH) {
    (void)be;
    for (int n = 0; n < N; n++) {
        if (dlambda) {
            double en = exp((double)nu_log[n]), et = exp((double)theta_log[n]), mod = exp(-en);
            double lr = mod * cos(et), li = mod * sin(et), gr = dlambda[2 * n], gi = dlambda[2 * n + 1];
            double zr = lr * gr + li * gi, zi = lr * gi - li * gr;  // grad z = conj(lambda) grad lambda
            if (dnu_log) dnu_log[n] += (lra_real)(-en * zr);
            if (dtheta_log) dtheta_log[n] += (lra_real)(et * zi);
        }
        if (!dBw) continue;
        double g = exp((double)gamma_log[n]), s = 0;
        const lra_real *re = B_re + (int64_t)n * H, *im = B_im + (int64_t)n * H;
        const lra_real *dre = dBw + (int64_t)n * 2 * H, *dim = dre + H;
        for (int h = 0; h < H; h++) {
            s += (double)dre[h] * re[h] + (double)dim[h] * im[h];
            if (dB_re) dB_re[(int64_t)n * H + h] += (lra_real)(g * dre[h]);
            if (dB_im) dB_im[(int64_t)n * H + h] += (lra_real)(g * dim[h]);
        }
        if (dgamma_log) dgamma_log[n] += (lra_real)(g * s);
    }
    if (!dCw) return;
    int64_t M = (int64_t)CH * N;
    for (int64_t hm = 0; hm < (int64_t)H * M; hm++) {
        if (dC_re) dC_re[hm] += dCw[2 * hm];
        if (dC_im) dC_im[hm] -= dCw[2 * hm + 1];
    }
}
