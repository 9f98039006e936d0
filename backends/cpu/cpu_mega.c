// cpu_mega.c: the two MEGA ops (models.md 7): the damped EMA kernel and the
// attention weights of MEGA's single-head gated attention (softmax or
// laplace, relative bias, key mask, blocks of C positions).
//
// EMA kernel: per row r and dim n, a_n = scale gamma beta p and the powers
// q^l by repeated multiplication in double. Backward with G = dL/dk_r
// (models.md 7): E = sum_l G[l] q^l, F = sum_l l G[l] q^(l-1),
//   dgamma = scale beta p E,  dbeta = scale gamma p E,
//   dp = scale gamma beta E,  dq = scale gamma beta p F,
//   ddelta = p (1 - p) (dp - sigmoid(alpha) dq),
//   dalpha = -p sigmoid(alpha) (1 - sigmoid(alpha)) dq.
// One thread per channel h (both directions): no shared writes.
//
// Attention weights: rows of RB queries per task, each task writes its own
// rows of A or dS. The bias gradient of a task goes to its own slot of
// partial sums (2C - 1 offsets), which are added in task order afterwards:
// results do not depend on the number of threads.
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EMA_PAR_MIN 4096  // rows * taps below which one thread is faster
#define MEGA_RB 32         // query rows per attention task

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

// k (Lk) = scale sum_n gamma beta p q^l for row r.
static void ema_row(double *k, const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                    const lra_real *gamma, int64_t r, int N, int Lk, double scale) {
    memset(k, 0, (size_t)Lk * sizeof *k);
    for (int n = 0; n < N; n++) {
        int64_t i = r * N + n;
        double p = sigm(delta[i]), q = 1.0 - p * sigm(alpha[i]), a = scale * gamma[i] * beta[i] * p, ql = 1.0;
        for (int l = 0; l < Lk; l++, ql *= q) k[l] += a * ql;
    }
}

void cpu_ema_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *delta, const lra_real *alpha,
                        const lra_real *beta, const lra_real *gamma, int H, int N, int CH, int Lk, int L,
                        lra_real scale) {
    (void)be;
    int Lt = Lk < L ? Lk : L;
#pragma omp parallel if ((int64_t)H * N * Lt >= EMA_PAR_MIN)
    {
        double *k = malloc(sizeof(double) * (size_t)(Lt > 0 ? Lt : 1));
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            lra_real *K0 = K + (int64_t)h * CH * L;
            ema_row(k, delta, alpha, beta, gamma, h, N, Lt, scale);
            for (int l = 0; l < L; l++) K0[l] = (lra_real)(l < Lt ? k[l] : 0.0);
            if (CH == 1) continue;
            lra_real *K1 = K0 + L;
            ema_row(k, delta, alpha, beta, gamma, (int64_t)H + h, N, Lt, scale);
            K0[0] = (lra_real)((double)K0[0] + k[0]);  // lag 0 counted by both halves
            for (int i = 0; i < L; i++) K1[i] = (lra_real)(i + 1 < Lt ? k[i + 1] : 0.0);
        }
        free(k);
    }
}

// Gradients of row r from G (Lt taps).
static void ema_row_bwd(lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma, const double *G,
                        const lra_real *delta, const lra_real *alpha, const lra_real *beta, const lra_real *gamma,
                        int64_t r, int N, int Lt, double scale) {
    for (int n = 0; n < N; n++) {
        int64_t i = r * N + n;
        double sa = sigm(alpha[i]), p = sigm(delta[i]), q = 1.0 - p * sa;
        double E = 0, F = 0, ql = 1.0, qm = 0.0;  // q^l and q^(l-1)
        for (int l = 0; l < Lt; l++) {
            E += G[l] * ql;
            F += l * G[l] * qm;
            qm = ql;
            ql *= q;
        }
        double gb = scale * gamma[i] * beta[i];
        double dp = gb * E, dq = gb * p * F;
        if (dgamma) dgamma[i] += (lra_real)(scale * beta[i] * p * E);
        if (dbeta) dbeta[i] += (lra_real)(scale * gamma[i] * p * E);
        if (ddelta) ddelta[i] += (lra_real)(p * (1 - p) * (dp - sa * dq));
        if (dalpha) dalpha[i] += (lra_real)(-p * sa * (1 - sa) * dq);
    }
}

void cpu_ema_kernel_bwd(lra_backend *be, lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma,
                        const lra_real *dK, const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                        const lra_real *gamma, int H, int N, int CH, int Lk, int L, lra_real scale) {
    (void)be;
    int Lt = Lk < L ? Lk : L;
#pragma omp parallel if ((int64_t)H * N * Lt >= EMA_PAR_MIN)
    {
        double *G = malloc(sizeof(double) * (size_t)(Lt > 0 ? Lt : 1));
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
            const lra_real *G0 = dK + (int64_t)h * CH * L;
            for (int l = 0; l < Lt; l++) G[l] = G0[l];
            ema_row_bwd(ddelta, dalpha, dbeta, dgamma, G, delta, alpha, beta, gamma, h, N, Lt, scale);
            if (CH == 1) continue;
            for (int s = 0; s < Lt; s++) G[s] = s == 0 ? G0[0] : G0[L + s - 1];
            ema_row_bwd(ddelta, dalpha, dbeta, dgamma, G, delta, alpha, beta, gamma, (int64_t)H + h, N, Lt, scale);
        }
        free(G);
    }
}

// ---- attention weights ---------------------------------------------------------------

#define LAP_MU    0.707107
#define LAP_SIGMA 0.282095

static double laplace_f(double x) { return 0.5 * (1.0 + erf((x - LAP_MU) / (LAP_SIGMA * sqrt(2.0)))); }
static double laplace_df(double x) {
    double z = (x - LAP_MU) / LAP_SIGMA;
    return exp(-0.5 * z * z) / (LAP_SIGMA * sqrt(2.0 * M_PI));
}

// Keys of block (b, k) that attention sees: sets m (C) to 0/1 and returns
// their count; a block without mask has all C real, and softmax (kind 0)
// over a block that is all padding sees every key.
static int block_keys(uint8_t *m, const uint8_t *mask, int64_t blk, int C, int kind) {
    int n = 0;
    for (int j = 0; j < C; j++) {
        m[j] = mask ? mask[blk * C + j] != 0 : 1;
        n += m[j];
    }
    if (kind == 0 && n == 0) {  // softmax over an all-padding block: every key, as the unmasked formula
        for (int j = 0; j < C; j++) m[j] = 1;
        n = C;
    }
    return n;
}

void cpu_mega_attn_fwd(lra_backend *be, lra_real *A, const lra_real *S, const lra_real *w, const uint8_t *mask,
                       int B, int NK, int C, int M, lra_real scale, int kind) {
    (void)be;
    int nrb = (C + MEGA_RB - 1) / MEGA_RB;
    int64_t tasks = (int64_t)B * NK * nrb;
    const lra_real *bias0 = w + (M - 1);  // b_ij = bias0[j - i]
#pragma omp parallel if ((int64_t)B * NK * C * C >= 16384)
    {
        uint8_t *m = malloc((size_t)C);
        double *s = malloc(sizeof(double) * (size_t)C);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t blk = t / nrb;
            int i0 = (int)(t % nrb) * MEGA_RB, i1 = i0 + MEGA_RB < C ? i0 + MEGA_RB : C;
            int nv = block_keys(m, mask, blk, C, kind);
            double inv_n = 1.0 / (nv > 0 ? nv : 1);
            for (int i = i0; i < i1; i++) {
                const lra_real *Si = S + (blk * C + i) * C;
                lra_real *Ai = A + (blk * C + i) * C;
                if (kind == 1) {
                    for (int j = 0; j < C; j++)
                        Ai[j] = m[j] ? (lra_real)laplace_f(Si[j] * inv_n + bias0[j - i]) : 0;
                    continue;
                }
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < C; j++) {
                    s[j] = (double)scale * Si[j] + bias0[j - i];
                    if (m[j] && s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < C; j++) {
                    s[j] = m[j] ? exp(s[j] - mx) : 0.0;
                    sum += s[j];
                }
                for (int j = 0; j < C; j++) Ai[j] = (lra_real)(s[j] / sum);
            }
        }
        free(m);
        free(s);
    }
}

void cpu_mega_attn_bwd(lra_backend *be, lra_real *dS, lra_real *dw, const lra_real *dA, const lra_real *A,
                       const lra_real *S, const lra_real *w, const uint8_t *mask, int B, int NK, int C, int M,
                       lra_real scale, int kind) {
    (void)be;
    int nrb = (C + MEGA_RB - 1) / MEGA_RB, W = 2 * C - 1;
    int64_t tasks = (int64_t)B * NK * nrb;
    const lra_real *bias0 = w + (M - 1);
    double *part = dw ? calloc((size_t)(tasks * W), sizeof(double)) : NULL;  // per task, offset j - i + C - 1
#pragma omp parallel if ((int64_t)B * NK * C * C >= 16384)
    {
        uint8_t *m = malloc((size_t)C);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t blk = t / nrb;
            int i0 = (int)(t % nrb) * MEGA_RB, i1 = i0 + MEGA_RB < C ? i0 + MEGA_RB : C;
            int nv = block_keys(m, mask, blk, C, kind);
            double inv_n = 1.0 / (nv > 0 ? nv : 1);
            double *pt = part ? part + t * W + (C - 1) : NULL;  // pt[j - i]
            for (int i = i0; i < i1; i++) {
                int64_t row = (blk * C + i) * C;
                const lra_real *Ai = A + row, *dAi = dA + row, *Si = S + row;
                if (kind == 1) {  // g = m f'(x) dA, x = S / n + b
                    for (int j = 0; j < C; j++) {
                        if (!m[j]) continue;
                        double g = laplace_df(Si[j] * inv_n + bias0[j - i]) * dAi[j];
                        if (dS) dS[row + j] += (lra_real)(g * inv_n);
                        if (pt) pt[j - i] += g;
                    }
                    continue;
                }
                double Dsum = 0;  // softmax: g = A (dA - sum_j A dA)
                for (int j = 0; j < C; j++) Dsum += (double)Ai[j] * dAi[j];
                for (int j = 0; j < C; j++) {
                    double g = (double)Ai[j] * ((double)dAi[j] - Dsum);
                    if (dS) dS[row + j] += (lra_real)(scale * g);
                    if (pt) pt[j - i] += g;
                }
            }
        }
        free(m);
    }
    if (!part) return;
#pragma omp parallel for schedule(static) if ((int64_t)tasks * W >= 16384)
    for (int o = 0; o < W; o++) {
        double acc = 0;
        for (int64_t t = 0; t < tasks; t++) acc += part[t * W + o];
        dw[M - C + o] += (lra_real)acc;  // offset o - (C - 1) -> index M - 1 + o - (C - 1)
    }
    free(part);
}
