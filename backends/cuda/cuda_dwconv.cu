// cuda_dwconv.cu: depthwise causal convolution with short filters along L in
// the (B, L, C) layout (Hyena's short_filter, models.md 8), as in
// backends/cpu/cpu_dwconv.c. y and dx: one thread per (row, channel), sums
// in double. dw and dbias: the column-sum scheme of cuda_elementwise.cu over
// the K + 1 "columns" (j, c) (j = K: the bias), two passes, no atomics.
#include "cuda.cuh"

__global__ static void cu_dwconv_fwd_kernel(lra_real *y, const lra_real *x, const lra_real *w, const lra_real *bias,
                                            int L, int C, int K, int64_t n) {
    CU_FOR(i, n) {
        int64_t r = i / C;
        int c = (int)(i % C), t = (int)(r % L);
        double s = bias ? (double)bias[c] : 0.0;
        for (int j = 0; j < K; j++) {
            int lag = K - 1 - j;  // tap j multiplies x[t - lag]
            if (lag <= t) s += (double)w[(int64_t)c * K + j] * x[i - (int64_t)lag * C];
        }
        y[i] = (lra_real)s;
    }
}

void cuda_dwconv_fwd(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *w, const lra_real *bias,
                     int B, int L, int C, int K) {
    (void)be;
    int64_t n = (int64_t)B * L * C;
    if (n <= 0) return;
    CU_LAUNCH(cu_dwconv_fwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, y, x, w, bias, L, C, K, n);
}

// dx[t] += sum_j w[j] dy[t + K-1-j] (the correlation with the same taps)
__global__ static void cu_dwconv_dx_kernel(lra_real *dx, const lra_real *dy, const lra_real *w, int L, int C, int K,
                                           int64_t n) {
    CU_FOR(i, n) {
        int64_t r = i / C;
        int c = (int)(i % C), t = (int)(r % L);
        double s = 0;
        for (int j = 0; j < K; j++) {
            int lag = K - 1 - j;
            if (t + lag < L) s += (double)w[(int64_t)c * K + j] * dy[i + (int64_t)lag * C];
        }
        dx[i] += (lra_real)s;
    }
}

#define CU_DW_ROWS 8      // row lanes per block (blockDim.y)
#define CU_DW_MAX_G 1024  // row chunks at most

// partial[g][q], q = j C + c: sum over the rows of chunk g of dy[r][c] x[r - (K-1-j)][c]
// (0 where t < K-1-j), q = K C + c: of dy[r][c]
__global__ static void cu_dwconv_dw_partial_kernel(double *partial, const lra_real *dy, const lra_real *x, int64_t R,
                                                   int L, int C, int K, int64_t rows_per_chunk) {
    __shared__ double acc[CU_DW_ROWS][33];
    int64_t Q = (int64_t)(K + 1) * C;
    int64_t q = (int64_t)blockIdx.x * 32 + threadIdx.x;
    int j = (int)(q / C), c = (int)(q % C), lag = K - 1 - j;
    int64_t r0 = (int64_t)blockIdx.y * rows_per_chunk;
    int64_t r1 = r0 + rows_per_chunk < R ? r0 + rows_per_chunk : R;
    double s = 0;
    if (q < Q) {
        for (int64_t r = r0 + threadIdx.y; r < r1; r += CU_DW_ROWS) {
            double g = dy[r * C + c];
            if (j == K) s += g;
            else if (lag <= (int)(r % L)) s += g * x[(r - lag) * C + c];
        }
    }
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && q < Q) {
        for (int k = 1; k < CU_DW_ROWS; k++) s += acc[k][threadIdx.x];
        partial[(int64_t)blockIdx.y * Q + q] = s;
    }
}

// each (j, c) adds its G partials in chunk order
__global__ static void cu_dwconv_dw_finish_kernel(lra_real *dw, lra_real *dbias, const double *partial, int G, int C,
                                                  int K) {
    int64_t Q = (int64_t)(K + 1) * C;
    CU_FOR(q, Q) {
        int j = (int)(q / C), c = (int)(q % C);
        double s = 0;
        for (int g = 0; g < G; g++) s += partial[(int64_t)g * Q + q];
        if (j < K) {
            if (dw) dw[(int64_t)c * K + j] += (lra_real)s;
        } else if (dbias) {
            dbias[c] += (lra_real)s;
        }
    }
}

static void dwconv_dw(lra_backend *be, lra_real *dw, lra_real *dbias, const lra_real *dy, const lra_real *x, int B,
                      int L, int C, int K) {
    int64_t R = (int64_t)B * L, Q = (int64_t)(K + 1) * C;
    int tiles = (int)((Q + 31) / 32);
    int64_t G = (2048 + tiles - 1) / tiles;  // about 2048 blocks in all, at least 8 rows per chunk
    if (G > CU_DW_MAX_G) G = CU_DW_MAX_G;
    if (G > (R + CU_DW_ROWS - 1) / CU_DW_ROWS) G = (R + CU_DW_ROWS - 1) / CU_DW_ROWS;
    int64_t rows_per_chunk = (R + G - 1) / G;
    G = (R + rows_per_chunk - 1) / rows_per_chunk;  // no empty chunk
    double *partial = (double *)lra_cuda_scratch(be, sizeof(double) * (size_t)G * (size_t)Q);
    dim3 grid((unsigned)tiles, (unsigned)G), block(32, CU_DW_ROWS);
    CU_LAUNCH(cu_dwconv_dw_partial_kernel, grid, block, partial, dy, x, R, L, C, K, rows_per_chunk);
    CU_LAUNCH(cu_dwconv_dw_finish_kernel, cu_grid(Q, CU_BLOCK), CU_BLOCK, dw, dbias, partial, (int)G, C, K);
}

void cuda_dwconv_bwd(lra_backend *be, lra_real *dx, lra_real *dw, lra_real *dbias, const lra_real *dy,
                     const lra_real *x, const lra_real *w, int B, int L, int C, int K) {
    int64_t n = (int64_t)B * L * C;
    if (n <= 0) return;
    if (dx) CU_LAUNCH(cu_dwconv_dx_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dx, dy, w, L, C, K, n);
    if (dw || dbias) dwconv_dw(be, dw, dbias, dy, x, B, L, C, K);
}
