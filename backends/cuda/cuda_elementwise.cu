// cuda_elementwise.cu: elementwise ops, reductions and permutes.
#include "cuda.cuh"

// ---- elementwise ------------------------------------------------------------------

__global__ static void cu_fill_kernel(lra_real *x, lra_real value, int64_t n) {
    CU_FOR(i, n) x[i] = value;
}

__global__ static void cu_axpby_kernel(lra_real *y, lra_real alpha, const lra_real *x, lra_real beta, int64_t n) {
    CU_FOR(i, n) y[i] = alpha * x[i] + beta * y[i];
}

__global__ static void cu_add_kernel(lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    CU_FOR(i, n) out[i] = a[i] + b[i];
}

__global__ static void cu_mul_kernel(lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    CU_FOR(i, n) out[i] = a[i] * b[i];
}

void cuda_fill(lra_backend *be, lra_real *x, lra_real value, int64_t n) {
    (void)be;
    if (n > 0) CU_LAUNCH(cu_fill_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, x, value, n);
}

void cuda_axpby(lra_backend *be, lra_real *y, lra_real alpha, const lra_real *x, lra_real beta, int64_t n) {
    (void)be;
    if (n > 0) CU_LAUNCH(cu_axpby_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, y, alpha, x, beta, n);
}

void cuda_add(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
    if (n > 0) CU_LAUNCH(cu_add_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, a, b, n);
}

void cuda_mul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n) {
    (void)be;
    if (n > 0) CU_LAUNCH(cu_mul_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, a, b, n);
}

// ---- broadcasts over rows -----------------------------------------------------------

// out (R, C) = inp (R, C) * v (C)
__global__ static void cu_mul_cols_kernel(lra_real *out, const lra_real *inp, const lra_real *v, int64_t n, int C) {
    CU_FOR(i, n) out[i] = inp[i] * v[i % C];
}

// dinp (R, C) += dout (R, C) * v (C)
__global__ static void cu_mul_cols_dinp_kernel(lra_real *dinp, const lra_real *dout, const lra_real *v, int64_t n,
                                               int C) {
    CU_FOR(i, n) dinp[i] += dout[i] * v[i % C];
}

// out (R, C) = inp (R, C) * v (R)
__global__ static void cu_mul_rows_kernel(lra_real *out, const lra_real *inp, const lra_real *v, int64_t n, int C) {
    CU_FOR(i, n) out[i] = inp[i] * v[i / C];
}

void cuda_mul_rows(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C) {
    (void)be;
    int64_t n = R * C;
    if (n > 0) CU_LAUNCH(cu_mul_rows_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, inp, v, n, C);
}

void cuda_mul_cols(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C) {
    (void)be;
    int64_t n = R * C;
    if (n > 0) CU_LAUNCH(cu_mul_cols_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, inp, v, n, C);
}

void cuda_mul_cols_bwd(lra_backend *be, lra_real *dinp, lra_real *dv, const lra_real *dout, const lra_real *inp,
                       const lra_real *v, int64_t R, int C) {
    int64_t n = R * C;
    if (n <= 0) return;
    if (dinp) CU_LAUNCH(cu_mul_cols_dinp_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dinp, dout, v, n, C);
    if (dv) lra_cuda_colsum_add(be, dv, dout, inp, R, C);  // dv[c] += sum_r dout[r][c] inp[r][c]
}

// ---- column sums ----------------------------------------------------------------------
// Two passes, no atomics: blocks of 32 columns x 8 row lanes sum one chunk of
// rows each into partial (G, C) in double; then each column adds its G
// partials in chunk order.

#define CU_COLSUM_ROWS 8   // row lanes per block (blockDim.y)
#define CU_COLSUM_MAX_G 1024

__global__ static void cu_colsum_partial_kernel(double *partial, const lra_real *x, const lra_real *y, int64_t R,
                                                int C, int64_t rows_per_chunk) {
    __shared__ double acc[CU_COLSUM_ROWS][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * rows_per_chunk;
    int64_t r1 = r0 + rows_per_chunk < R ? r0 + rows_per_chunk : R;
    double s = 0;
    if (c < C) {
        for (int64_t r = r0 + threadIdx.y; r < r1; r += CU_COLSUM_ROWS) {
            int64_t i = r * C + c;
            s += y ? (double)x[i] * y[i] : (double)x[i];
        }
    }
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int j = 1; j < CU_COLSUM_ROWS; j++) s += acc[j][threadIdx.x];
        partial[(int64_t)blockIdx.y * C + c] = s;
    }
}

__global__ static void cu_colsum_finish_kernel(lra_real *out, const double *partial, int G, int C) {
    CU_FOR(c, C) {
        double s = 0;
        for (int g = 0; g < G; g++) s += partial[(int64_t)g * C + c];
        out[c] += (lra_real)s;
    }
}

void lra_cuda_colsum_add(lra_backend *be, lra_real *out, const lra_real *x, const lra_real *y, int64_t R, int C) {
    if (R <= 0 || C <= 0) return;
    // about 2048 blocks in all, at least 8 rows per chunk
    int col_tiles = (C + 31) / 32;
    int64_t G = (2048 + col_tiles - 1) / col_tiles;
    if (G > CU_COLSUM_MAX_G) G = CU_COLSUM_MAX_G;
    if (G > (R + CU_COLSUM_ROWS - 1) / CU_COLSUM_ROWS) G = (R + CU_COLSUM_ROWS - 1) / CU_COLSUM_ROWS;
    int64_t rows_per_chunk = (R + G - 1) / G;
    G = (R + rows_per_chunk - 1) / rows_per_chunk;  // no empty chunk
    double *partial = (double *)lra_cuda_scratch(be, sizeof(double) * (size_t)G * (size_t)C);
    dim3 grid((unsigned)col_tiles, (unsigned)G), block(32, CU_COLSUM_ROWS);
    CU_LAUNCH(cu_colsum_partial_kernel, grid, block, partial, x, y, R, C, rows_per_chunk);
    CU_LAUNCH(cu_colsum_finish_kernel, cu_grid(C, CU_BLOCK), CU_BLOCK, out, partial, (int)G, C);
}

void cuda_sum_rows(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C) {
    lra_cuda_colsum_add(be, out, inp, NULL, R, C);
}

// ---- full sums ----------------------------------------------------------------------------
// Each block sums a grid-stride share in double into partial[block]; the host
// adds the partials in block order.

#define CU_SUM_MAX_GRID 1024

__global__ static void cu_sum_kernel(double *partial, const lra_real *x, int64_t n, int square) {
    double s = 0;
    CU_FOR(i, n) {
        double v = x[i];
        s += square ? v * v : v;
    }
    s = cu_block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

static double cu_sum(lra_backend *be, const lra_real *x, int64_t n, int square) {
    if (n <= 0) return 0;
    unsigned grid = cu_grid(n, CU_BLOCK);
    if (grid > CU_SUM_MAX_GRID) grid = CU_SUM_MAX_GRID;
    double *partial = (double *)lra_cuda_scratch(be, sizeof(double) * grid);
    CU_LAUNCH(cu_sum_kernel, grid, CU_BLOCK, partial, x, n, square);
    double host[CU_SUM_MAX_GRID];
    CU_CHECK(cudaMemcpy(host, partial, sizeof(double) * grid, cudaMemcpyDeviceToHost));
    double s = 0;
    for (unsigned g = 0; g < grid; g++) s += host[g];
    return s;
}

double cuda_sum(lra_backend *be, const lra_real *x, int64_t n) { return cu_sum(be, x, n, 0); }

double cuda_sumsq(lra_backend *be, const lra_real *x, int64_t n) { return cu_sum(be, x, n, 1); }

// ---- permute ---------------------------------------------------------------------------------
// out[a][c][b][d] = inp[a][b][c][d], inp (A, Bd, Cd, Dd).

// General Dd: one thread per output element; reads are contiguous runs of Dd.
__global__ static void cu_permute_0213_kernel(lra_real *out, const lra_real *inp, int64_t A, int64_t Bd, int64_t Cd,
                                              int64_t Dd) {
    int64_t n = A * Bd * Cd * Dd;
    CU_FOR(o, n) {
        int64_t d = o % Dd, t = o / Dd;
        int64_t b = t % Bd;
        t /= Bd;
        int64_t c = t % Cd, a = t / Cd;
        out[o] = inp[((a * Bd + b) * Cd + c) * Dd + d];
    }
}

// Dd = 1: A transposes of (Bd, Cd) matrices through 32 x 32 shared tiles, so
// that both the reads and the writes are coalesced. Blocks loop over tiles.
__global__ static void cu_transpose_kernel(lra_real *out, const lra_real *inp, int64_t A, int64_t Bd, int64_t Cd) {
    __shared__ lra_real tile[32][33];  // +1 column: no bank conflicts on the transposed read
    int64_t nbt = (Bd + 31) / 32, nct = (Cd + 31) / 32, n_tiles = A * nbt * nct;
    for (int64_t t = blockIdx.x; t < n_tiles; t += gridDim.x) {
        int64_t ct = t % nct, bt = (t / nct) % nbt, a = t / (nct * nbt);
        int64_t b0 = bt * 32, c0 = ct * 32;
        const lra_real *src = inp + a * Bd * Cd;  // (Bd, Cd)
        lra_real *dst = out + a * Bd * Cd;        // (Cd, Bd)
        for (int j = threadIdx.y; j < 32; j += blockDim.y) {
            int64_t b = b0 + j, c = c0 + threadIdx.x;
            if (b < Bd && c < Cd) tile[j][threadIdx.x] = src[b * Cd + c];
        }
        __syncthreads();
        for (int j = threadIdx.y; j < 32; j += blockDim.y) {
            int64_t c = c0 + j, b = b0 + threadIdx.x;
            if (c < Cd && b < Bd) dst[c * Bd + b] = tile[threadIdx.x][j];
        }
        __syncthreads();  // the tile is rewritten by the next iteration
    }
}

void cuda_permute_0213(lra_backend *be, lra_real *out, const lra_real *inp, int64_t A, int64_t Bd, int64_t Cd,
                       int64_t Dd) {
    (void)be;
    int64_t n = A * Bd * Cd * Dd;
    if (n <= 0) return;
    if (Dd == 1) {
        int64_t n_tiles = A * ((Bd + 31) / 32) * ((Cd + 31) / 32);
        CU_LAUNCH(cu_transpose_kernel, cu_grid(n_tiles, 1), dim3(32, 8), out, inp, A, Bd, Cd);
    } else {
        CU_LAUNCH(cu_permute_0213_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, inp, A, Bd, Cd, Dd);
    }
}
