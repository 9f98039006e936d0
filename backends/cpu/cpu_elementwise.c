// cpu_elementwise.c: elementwise ops, reductions and permutes.
#include "cpu.h"

#include <string.h>

void cpu_fill(lra_backend *be, lra_real *x, lra_real value, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = value;
}

void cpu_axpby(lra_backend *be, lra_real *y, lra_real alpha, const lra_real *x, lra_real beta, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];
}

void cpu_add(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void cpu_mul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void cpu_mul_cols(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++) out[r * C + c] = inp[r * C + c] * v[c];
}

void cpu_mul_rows(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        lra_real s = v[r];
        for (int c = 0; c < C; c++) out[r * C + c] = inp[r * C + c] * s;
    }
}

// Reductions are summed in fixed blocks, each block in double by one thread,
// then the block sums are added in block order: the result is bit-identical
// for any thread count and schedule (training runs are reproducible).
#define CPU_SUM_BLOCK 4096   // elements per block of sum/sumsq
#define CPU_ROW_BLOCK 256    // rows per block of column sums

// acc (C) = column sums of x (R, C), or of x * y elementwise when y != NULL
static void cpu_colsum_d(double *acc, const lra_real *x, const lra_real *y, int64_t R, int C) {
    int64_t nb = (R + CPU_ROW_BLOCK - 1) / CPU_ROW_BLOCK;
    double *part = calloc((size_t)(nb > 0 ? nb : 1) * (size_t)C, sizeof(double));
    LRA_ASSERT(part != NULL);
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        double *p = part + blk * C;
        int64_t r1 = (blk + 1) * CPU_ROW_BLOCK < R ? (blk + 1) * CPU_ROW_BLOCK : R;
        for (int64_t r = blk * CPU_ROW_BLOCK; r < r1; r++) {
            const lra_real *xr = x + r * C, *yr = y ? y + r * C : NULL;
            if (yr)
                for (int c = 0; c < C; c++) p[c] += (double)xr[c] * yr[c];
            else
                for (int c = 0; c < C; c++) p[c] += xr[c];
        }
    }
    memset(acc, 0, sizeof(double) * (size_t)C);
    for (int64_t blk = 0; blk < nb; blk++)
        for (int c = 0; c < C; c++) acc[c] += part[blk * C + c];
    free(part);
}

void cpu_mul_cols_bwd(lra_backend *be, lra_real *dinp, lra_real *dv, const lra_real *dout, const lra_real *inp,
                      const lra_real *v, int64_t R, int C) {
    (void)be;
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < R; r++)
            for (int c = 0; c < C; c++) dinp[r * C + c] += dout[r * C + c] * v[c];
    }
    if (dv) {
        double *acc = malloc(sizeof(double) * (size_t)C);
        LRA_ASSERT(acc != NULL);
        cpu_colsum_d(acc, dout, inp, R, C);
        for (int c = 0; c < C; c++) dv[c] += (lra_real)acc[c];
        free(acc);
    }
}

void cpu_sum_rows(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C) {
    (void)be;
    double *acc = malloc(sizeof(double) * (size_t)C);
    LRA_ASSERT(acc != NULL);
    cpu_colsum_d(acc, inp, NULL, R, C);
    for (int c = 0; c < C; c++) out[c] += (lra_real)acc[c];
    free(acc);
}

// sum of x (squared when sq) in fixed blocks (see CPU_SUM_BLOCK)
static double cpu_block_sum(const lra_real *x, int64_t n, int sq) {
    int64_t nb = (n + CPU_SUM_BLOCK - 1) / CPU_SUM_BLOCK;
    if (nb <= 1) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += sq ? (double)x[i] * x[i] : (double)x[i];
        return s;
    }
    double *part = malloc(sizeof(double) * (size_t)nb);
    LRA_ASSERT(part != NULL);
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t i1 = (blk + 1) * CPU_SUM_BLOCK < n ? (blk + 1) * CPU_SUM_BLOCK : n;
        double s = 0;
        for (int64_t i = blk * CPU_SUM_BLOCK; i < i1; i++) s += sq ? (double)x[i] * x[i] : (double)x[i];
        part[blk] = s;
    }
    double s = 0;
    for (int64_t blk = 0; blk < nb; blk++) s += part[blk];
    free(part);
    return s;
}

double cpu_sum(lra_backend *be, const lra_real *x, int64_t n) {
    (void)be;
    return cpu_block_sum(x, n, 0);
}

double cpu_sumsq(lra_backend *be, const lra_real *x, int64_t n) {
    (void)be;
    return cpu_block_sum(x, n, 1);
}

void cpu_permute_0213(lra_backend *be, lra_real *out, const lra_real *inp, int64_t A, int64_t Bd, int64_t Cd,
                      int64_t Dd) {
    (void)be;
    // out[a][c][b][:] = inp[a][b][c][:]; blocks of 32 x 32 (b, c) keep both
    // sides in cache for the Dd = 1 transpose.
    const int64_t T = 32;
#pragma omp parallel for collapse(3) schedule(static)
    for (int64_t a = 0; a < A; a++)
        for (int64_t b0 = 0; b0 < Bd; b0 += T)
            for (int64_t c0 = 0; c0 < Cd; c0 += T) {
                int64_t b1 = b0 + T < Bd ? b0 + T : Bd, c1 = c0 + T < Cd ? c0 + T : Cd;
                for (int64_t c = c0; c < c1; c++)
                    for (int64_t b = b0; b < b1; b++) {
                        const lra_real *src = inp + ((a * Bd + b) * Cd + c) * Dd;
                        lra_real *dst = out + ((a * Cd + c) * Bd + b) * Dd;
                        for (int64_t d = 0; d < Dd; d++) dst[d] = src[d];
                    }
            }
}
