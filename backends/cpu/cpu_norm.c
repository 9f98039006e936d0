// cpu_norm.c: LayerNorm, BatchNorm and ScaleNorm, forward and backward.
// Statistics and reductions are accumulated in double. Reductions over rows
// (parameter gradients, batch statistics) use per-thread partial sums added in
// thread order, so results do not depend on scheduling for a fixed thread count.
#include "cpu.h"

#include <math.h>
#include <string.h>

// ---- per-thread partial sums -------------------------------------------------

static int norm_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int norm_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Zeroed scratch of n doubles for each of nt threads.
static double *norm_partials(int nt, int64_t n) {
    double *p = calloc((size_t)nt * (size_t)n, sizeof(double));
    LRA_ASSERT(p != NULL);
    return p;
}

// acc (n) = sum over threads of part (nt, n), in thread order.
static void norm_reduce(double *acc, const double *part, int nt, int64_t n) {
    for (int64_t i = 0; i < n; i++) acc[i] = 0;
    for (int t = 0; t < nt; t++)
        for (int64_t i = 0; i < n; i++) acc[i] += part[(int64_t)t * n + i];
}

// Column sums over the rows of (R, C) tensors, rows outside and channels
// inside (rows are contiguous):
//   s1[c] = sum_r y[r][c]
//   s2[c] = sum_r (y[r][c] - ym[c]) (x[r][c] - xm[c])   (when s2 != NULL)
// ym may be NULL (no shift). s1 and s2 are (C).
static void norm_colsums(double *s1, double *s2, const lra_real *y, const double *ym,
                         const lra_real *x, const double *xm, int64_t R, int C) {
    int nt = norm_max_threads();
    int64_t K = 2 * (int64_t)C;
    double *part = norm_partials(nt, K);
#pragma omp parallel
    {
        double *p1 = part + (int64_t)norm_thread_id() * K, *p2 = p1 + C;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const lra_real *yr = y + r * C;
            for (int c = 0; c < C; c++) p1[c] += yr[c];
            if (s2) {
                const lra_real *xr = x + r * C;
                for (int c = 0; c < C; c++)
                    p2[c] += ((double)yr[c] - (ym ? ym[c] : 0.0)) * ((double)xr[c] - xm[c]);
            }
        }
    }
    double *acc = malloc(sizeof(double) * (size_t)K);
    LRA_ASSERT(acc != NULL);
    norm_reduce(acc, part, nt, K);
    memcpy(s1, acc, sizeof(double) * (size_t)C);
    if (s2) memcpy(s2, acc + C, sizeof(double) * (size_t)C);
    free(acc);
    free(part);
}

// ---- LayerNorm ---------------------------------------------------------------

// out (R, C) = (inp - mean) rstd w + b per row, mean and rstd (R) saved;
// biased variance (PyTorch nn.LayerNorm), two passes in double.
void cpu_layernorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd,
                       const lra_real *inp, const lra_real *w, const lra_real *b,
                       int64_t R, int C, lra_real eps) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const lra_real *x = inp + r * C;  // (C)
        lra_real *y = out + r * C;        // (C)
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += ((double)x[c] - m) * ((double)x[c] - m);
        v /= C;
        double s = 1.0 / sqrt(v + (double)eps);
        for (int c = 0; c < C; c++) {
            double n = ((double)x[c] - m) * s;
            y[c] = (lra_real)(n * (w ? (double)w[c] : 1.0) + (b ? (double)b[c] : 0.0));
        }
        mean[r] = (lra_real)m;
        rstd[r] = (lra_real)s;
    }
}

// With xhat = (x - mean) rstd and g = dout w (dout when w is NULL):
//   dinp += rstd (g - mean_c(g) - xhat mean_c(g xhat))
//   dw += sum_r dout xhat;  db += sum_r dout
void cpu_layernorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db,
                       const lra_real *dout, const lra_real *inp, const lra_real *w,
                       const lra_real *mean, const lra_real *rstd, int64_t R, int C) {
    (void)be;
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const lra_real *x = inp + r * C, *dy = dout + r * C;  // (C)
            lra_real *dx = dinp + r * C;
            double m = mean[r], s = rstd[r], gm = 0, gxm = 0;
            for (int c = 0; c < C; c++) {
                double g = (double)dy[c] * (w ? (double)w[c] : 1.0);
                gm += g;
                gxm += g * ((double)x[c] - m) * s;
            }
            gm /= C;
            gxm /= C;
            for (int c = 0; c < C; c++) {
                double g = (double)dy[c] * (w ? (double)w[c] : 1.0);
                double xh = ((double)x[c] - m) * s;
                dx[c] += (lra_real)(s * (g - gm - xh * gxm));
            }
        }
    }
    if (!dw && !db) return;
    int nt = norm_max_threads();
    int64_t K = 2 * (int64_t)C;
    double *part = norm_partials(nt, K);
#pragma omp parallel
    {
        double *pw = part + (int64_t)norm_thread_id() * K, *pb = pw + C;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const lra_real *x = inp + r * C, *dy = dout + r * C;
            double m = mean[r], s = rstd[r];
            for (int c = 0; c < C; c++) {
                pw[c] += (double)dy[c] * ((double)x[c] - m) * s;
                pb[c] += dy[c];
            }
        }
    }
    double *acc = malloc(sizeof(double) * (size_t)K);
    LRA_ASSERT(acc != NULL);
    norm_reduce(acc, part, nt, K);
    for (int c = 0; c < C; c++) {
        if (dw) dw[c] += (lra_real)acc[c];
        if (db) db[c] += (lra_real)acc[C + c];
    }
    free(acc);
    free(part);
}

// ---- BatchNorm ---------------------------------------------------------------

// out (R, C) = (inp - mean[c]) rstd[c] w[c] + b[c], rows outside, channels inside.
static void bn_apply(lra_real *out, const lra_real *inp, const double *m, const double *s,
                     const lra_real *w, const lra_real *b, int64_t R, int C) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const lra_real *x = inp + r * C;
        lra_real *y = out + r * C;
        for (int c = 0; c < C; c++)
            y[c] = (lra_real)(((double)x[c] - m[c]) * s[c] * (w ? (double)w[c] : 1.0) +
                              (b ? (double)b[c] : 0.0));
    }
}

// training: batch mean and biased variance per channel over the R rows (two
// passes in double); running stats (when given) move towards the batch ones:
//   running = (1 - momentum) running + momentum batch,
// the batch variance scaled by R/(R-1) when unbiased_running (PyTorch; with
// R = 1 the biased one is used, PyTorch refuses that case). eval: normalise
// with the running statistics, writing mean = running_mean and
// rstd = 1/sqrt(running_var + eps) for the backward pass.
void cpu_batchnorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd,
                       lra_real *running_mean, lra_real *running_var,
                       const lra_real *inp, const lra_real *w, const lra_real *b,
                       int64_t R, int C, lra_real eps, lra_real momentum,
                       int unbiased_running, int training) {
    (void)be;
    double *m = calloc(3 * (size_t)C, sizeof(double));
    LRA_ASSERT(m != NULL);
    double *s = m + C, *v = m + 2 * C;
    if (training) {
        norm_colsums(m, NULL, inp, NULL, NULL, NULL, R, C);
        for (int c = 0; c < C; c++) m[c] /= (double)R;
        norm_colsums(s, v, inp, m, inp, m, R, C);  // s: scratch, v: sum (x - m)^2
        double mom = momentum, unb = (unbiased_running && R > 1) ? (double)R / (double)(R - 1) : 1.0;
        for (int c = 0; c < C; c++) {
            v[c] /= (double)R;
            s[c] = 1.0 / sqrt(v[c] + (double)eps);
            if (running_mean) running_mean[c] = (lra_real)((1 - mom) * running_mean[c] + mom * m[c]);
            if (running_var) running_var[c] = (lra_real)((1 - mom) * running_var[c] + mom * v[c] * unb);
        }
    } else {
        for (int c = 0; c < C; c++) {
            m[c] = running_mean[c];
            s[c] = 1.0 / sqrt((double)running_var[c] + (double)eps);
        }
    }
    bn_apply(out, inp, m, s, w, b, R, C);
    for (int c = 0; c < C; c++) {
        mean[c] = (lra_real)m[c];
        rstd[c] = (lra_real)s[c];
    }
    free(m);
}

// xhat = (x - mean) rstd; db += sum_r dout, dw += sum_r dout xhat. dinp:
//   training (statistics depend on x): w rstd (dout - mean_r(dout) - xhat mean_r(dout xhat))
//   eval (fixed affine map):            w rstd dout
void cpu_batchnorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db,
                       const lra_real *dout, const lra_real *inp, const lra_real *w,
                       const lra_real *mean, const lra_real *rstd, int64_t R, int C, int training) {
    (void)be;
    if (!dinp && !dw && !db) return;
    double *m = calloc(4 * (size_t)C, sizeof(double));
    LRA_ASSERT(m != NULL);
    double *sdy = m + C, *sdyx = m + 2 * C, *k = m + 3 * C;
    for (int c = 0; c < C; c++) m[c] = mean[c];
    // sdy = sum dout, sdyx = sum dout (x - mean), so sum dout xhat = rstd sdyx
    norm_colsums(sdy, sdyx, dout, NULL, inp, m, R, C);
    for (int c = 0; c < C; c++) {
        double s = rstd[c];
        if (dw) dw[c] += (lra_real)(sdyx[c] * s);
        if (db) db[c] += (lra_real)sdy[c];
        k[c] = (w ? (double)w[c] : 1.0) * s;  // w rstd
        sdy[c] /= (double)R;                  // mean_r(dout)
        sdyx[c] *= s * s / (double)R;         // mean_r(dout xhat) rstd
    }
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const lra_real *x = inp + r * C, *dy = dout + r * C;
            lra_real *dx = dinp + r * C;
            if (training)
                for (int c = 0; c < C; c++)
                    dx[c] += (lra_real)(k[c] * ((double)dy[c] - sdy[c] - ((double)x[c] - m[c]) * sdyx[c]));
            else
                for (int c = 0; c < C; c++) dx[c] += (lra_real)(k[c] * (double)dy[c]);
        }
    }
    free(m);
}

// ---- ScaleNorm (MEGA) --------------------------------------------------------

// out (R, C) = g inp rstd, rstd (R) = 1/sqrt(mean_c(inp^2) + eps).
void cpu_scalenorm_fwd(lra_backend *be, lra_real *out, lra_real *rstd,
                       const lra_real *inp, const lra_real *g, int64_t R, int C, lra_real eps) {
    (void)be;
    double gg = g[0];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const lra_real *x = inp + r * C;
        lra_real *y = out + r * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double s = 1.0 / sqrt(ss / C + (double)eps);
        for (int c = 0; c < C; c++) y[c] = (lra_real)(gg * x[c] * s);
        rstd[r] = (lra_real)s;
    }
}

// d rstd / d x_j = -rstd^3 x_j / C, hence
//   dinp_j += g rstd (dout_j - x_j rstd^2 mean_c(dout x));  dg += sum dout x rstd
void cpu_scalenorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dg, const lra_real *dout,
                       const lra_real *inp, const lra_real *g, const lra_real *rstd, int64_t R, int C) {
    (void)be;
    if (!dinp && !dg) return;
    double gg = g[0];
    int nt = norm_max_threads();
    double *part = norm_partials(nt, 1);
#pragma omp parallel
    {
        double pg = 0;  // this thread's share of dg
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const lra_real *x = inp + r * C, *dy = dout + r * C;
            double s = rstd[r], dyx = 0;
            for (int c = 0; c < C; c++) dyx += (double)dy[c] * x[c];
            pg += dyx * s;
            if (dinp) {
                lra_real *dx = dinp + r * C;
                double k = s * s * dyx / C;
                for (int c = 0; c < C; c++) dx[c] += (lra_real)(gg * s * ((double)dy[c] - x[c] * k));
            }
        }
        part[norm_thread_id()] = pg;
    }
    double acc;
    norm_reduce(&acc, part, nt, 1);
    if (dg) dg[0] += (lra_real)acc;
    free(part);
}
