// cpu_dwconv.c: depthwise causal convolution with short filters along L, in
// the (B, L, C) layout (Hyena's short_filter, models.md 8). Arithmetic in
// double, rounded once; the weight and bias gradients are reduced in fixed
// row blocks in block order, so they are bit-identical for any thread count.
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

#define DW_ROW_BLOCK 256  // rows (b, t) per block of the weight-gradient reduction

void cpu_dwconv_fwd(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *w, const lra_real *bias,
                    int B, int L, int C, int K) {
    (void)be;
    int64_t R = (int64_t)B * L;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        int t = (int)(r % L);
        lra_real *yr = y + r * C;
        for (int c = 0; c < C; c++) {
            double s = bias ? (double)bias[c] : 0.0;
            for (int j = 0; j < K; j++) {
                int lag = K - 1 - j;  // tap j multiplies x[t - lag]
                if (lag <= t) s += (double)w[(int64_t)c * K + j] * x[(r - lag) * C + c];
            }
            yr[c] = (lra_real)s;
        }
    }
}

// dx[t] += sum_j w[j] dy[t + K-1-j] (the correlation with the same taps)
static void dwconv_dx(lra_real *dx, const lra_real *dy, const lra_real *w, int B, int L, int C, int K) {
    int64_t R = (int64_t)B * L;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        int t = (int)(r % L);
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int j = 0; j < K; j++) {
                int lag = K - 1 - j;
                if (t + lag < L) s += (double)w[(int64_t)c * K + j] * dy[(r + lag) * C + c];
            }
            dx[r * C + c] += (lra_real)s;
        }
    }
}

// dw[c][j] += sum_{b,t} dy[b][t][c] x[b][t-(K-1)+j][c];  dbias[c] += sum dy[b][t][c]
static void dwconv_dw(lra_real *dw, lra_real *dbias, const lra_real *dy, const lra_real *x, int B, int L, int C,
                      int K) {
    int64_t R = (int64_t)B * L, nb = (R + DW_ROW_BLOCK - 1) / DW_ROW_BLOCK, per = (int64_t)C * (K + 1);
    double *part = calloc((size_t)(nb > 0 ? nb : 1) * (size_t)per, sizeof(double));
    LRA_ASSERT(part != NULL);
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        double *pw = part + blk * per, *pb = pw + (int64_t)C * K;
        int64_t r1 = (blk + 1) * DW_ROW_BLOCK < R ? (blk + 1) * DW_ROW_BLOCK : R;
        for (int64_t r = blk * DW_ROW_BLOCK; r < r1; r++) {
            int t = (int)(r % L);
            const lra_real *g = dy + r * C;
            for (int c = 0; c < C; c++) pb[c] += g[c];
            for (int j = 0; j < K; j++) {
                int lag = K - 1 - j;
                if (lag > t) continue;
                const lra_real *xs = x + (r - lag) * C;
                for (int c = 0; c < C; c++) pw[(int64_t)c * K + j] += (double)g[c] * xs[c];
            }
        }
    }
    for (int64_t blk = 1; blk < nb; blk++)
        for (int64_t i = 0; i < per; i++) part[i] += part[blk * per + i];
    if (dw)
        for (int64_t i = 0; i < (int64_t)C * K; i++) dw[i] += (lra_real)part[i];
    if (dbias)
        for (int c = 0; c < C; c++) dbias[c] += (lra_real)part[(int64_t)C * K + c];
    free(part);
}

void cpu_dwconv_bwd(lra_backend *be, lra_real *dx, lra_real *dw, lra_real *dbias, const lra_real *dy,
                    const lra_real *x, const lra_real *w, int B, int L, int C, int K) {
    (void)be;
    if (dx) dwconv_dx(dx, dy, w, B, L, C, K);
    if (dw || dbias) dwconv_dw(dw, dbias, dy, x, B, L, C, K);
}
