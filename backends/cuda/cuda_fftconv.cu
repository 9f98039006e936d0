// cuda_fftconv.cu: long convolution along L through cuFFT (models.md 0.2), and
// the backend's cache of cuFFT plans.
//
// The layout and the algebra are those of backends/cpu/cpu_fftconv.c: every
// row is zero-padded to n = lra_fft_good_size(2L) >= 2L and the kernel laid
// out as a length-n circular filter kk,
//   causal         kk = [k[0..L-1], 0 ...]
//   bidirectional  kk = [k_fwd[0..L-1], 0 ..., k_bwd[L-1], ..., k_bwd[0]],
// so that the circular products never wrap onto t in [0, L):
//   forward   y    = irfft(K̂ Û)[0:L] / n
//   backward  du  += irfft(conj(K̂) Ĝ)[0:L] / n
//             dkk += irfft(sum_b conj(Û_b) Ĝ_b) / n   (the batch sum in double)
// All rows of a call go through one batched R2C or C2R plan; cuFFT is
// unnormalised, the 1/n is applied once, on output. Plans are made without
// their own work area (cufftSetAutoAllocation 0): the work area is carved
// from the backend's scratch at each execution, so cached plans hold no
// device memory beyond cuFFT's small descriptors.
#include "cuda.cuh"

const char *lra_cufft_string(cufftResult r) {
    switch (r) {
    case CUFFT_SUCCESS: return "success";
    case CUFFT_INVALID_PLAN: return "invalid plan";
    case CUFFT_ALLOC_FAILED: return "allocation failed";
    case CUFFT_INVALID_VALUE: return "invalid value";
    case CUFFT_INTERNAL_ERROR: return "internal error";
    case CUFFT_EXEC_FAILED: return "execution failed";
    case CUFFT_SETUP_FAILED: return "setup failed";
    case CUFFT_INVALID_SIZE: return "invalid size";
    default: return "cuFFT error";
    }
}


// ---- plan cache ---------------------------------------------------------------------

cufftHandle lra_cuda_fft_plan_get(lra_backend *be, int n, int batch, int inverse) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    ctx->plan_clock++;
    for (int i = 0; i < ctx->n_plans; i++) {
        lra_cuda_fft_plan *p = &ctx->plans[i];
        if (p->n == n && p->batch == batch && p->inverse == inverse) {
            p->used = ctx->plan_clock;
            return p->plan;
        }
    }
    int slot = ctx->n_plans;
    if (slot == LRA_CUDA_MAX_PLANS) {  // evict the least recently used
        slot = 0;
        for (int i = 1; i < ctx->n_plans; i++)
            if (ctx->plans[i].used < ctx->plans[slot].used) slot = i;
        CU_CHECK(cudaDeviceSynchronize());
        CUFFT_CHECK(cufftDestroy(ctx->plans[slot].plan));
    } else {
        ctx->n_plans++;
    }
    lra_cuda_fft_plan *p = &ctx->plans[slot];
    size_t work = 0;
    int dims[1] = { n };
    CUFFT_CHECK(cufftCreate(&p->plan));
    CUFFT_CHECK(cufftSetAutoAllocation(p->plan, 0));
    CUFFT_CHECK(cufftMakePlanMany(p->plan, 1, dims, NULL, 1, 0, NULL, 1, 0, inverse ? CUFFT_C2R : CUFFT_R2C, batch,
                                  &work));
    p->n = n;
    p->batch = batch;
    p->inverse = inverse;
    p->used = ctx->plan_clock;
    return p->plan;
}

void lra_cuda_fft_plans_free(lra_cuda_ctx *ctx) {
    for (int i = 0; i < ctx->n_plans; i++) cufftDestroy(ctx->plans[i].plan);
    ctx->n_plans = 0;
}

// Work area bytes of a plan (queried; cuFFT keeps it in the plan).
static size_t cu_fft_work(cufftHandle plan) {
    size_t w = 0;
    CUFFT_CHECK(cufftGetSize(plan, &w));
    return w;
}

// ---- kernels ------------------------------------------------------------------------
// Row-wise kernels run on 2-D grids: blockIdx.y (and its stride) walks the
// rows, x the columns, so no element index is divided by a row length.

#define CU_ROW_GRID_Y 2048  // row blocks; the rows loop over them

static dim3 cu_row_grid(int64_t rows, int64_t cols) {
    unsigned gx = (unsigned)((cols + CU_BLOCK - 1) / CU_BLOCK);
    if (gx > 64) gx = 64;
    int64_t gy = rows < CU_ROW_GRID_Y ? rows : CU_ROW_GRID_Y;
    return dim3(gx, (unsigned)(gy < 1 ? 1 : gy));
}

#define CU_ROWS_FOR(row, rows) for (int64_t row = blockIdx.y; row < (rows); row += gridDim.y)
#define CU_COLS_FOR(t, cols) for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < (cols); t += gridDim.x * blockDim.x)

// r (rows, n) = x (rows, L) followed by zeros
__global__ static void cu_pad_kernel(lra_real *r, const lra_real *x, int64_t rows, int L, int n) {
    CU_ROWS_FOR(row, rows) {
        const lra_real *xr = x + row * L;
        lra_real *rr = r + row * n;
        CU_COLS_FOR(t, n) rr[t] = t < L ? xr[t] : 0.0f;
    }
}

// kk (H, n): the circular filters (file header)
__global__ static void cu_pack_kernel(lra_real *kk, const lra_real *k, int H, int L, int n, int bidir) {
    int64_t klen = bidir ? 2 * (int64_t)L : L;
    CU_ROWS_FOR(h, (int64_t)H) {
        const lra_real *kh = k + h * klen;
        CU_COLS_FOR(t, n) {
            lra_real v = 0;
            if (t < L) v = kh[t];
            else if (bidir && t >= n - L) v = kh[L + (n - 1 - t)];
            kk[h * n + t] = v;
        }
    }
}

// Z (rows, nc) = K (rows % H) times Z, or conj(K) Z
__global__ static void cu_spec_mul_kernel(cufftComplex *Z, const cufftComplex *K, int64_t rows, int H, int nc,
                                          int conj_k) {
    CU_ROWS_FOR(row, rows) {
        const cufftComplex *Kh = K + (row % H) * nc;
        cufftComplex *Zr = Z + row * nc;
        CU_COLS_FOR(f, nc) {
            cufftComplex a = Kh[f], b = Zr[f];
            float ai = conj_k ? -a.y : a.y;
            Zr[f] = make_cuFloatComplex(a.x * b.x - ai * b.y, a.x * b.y + ai * b.x);
        }
    }
}

// Kacc (H, nc) = sum_b conj(U_b) G_b in double, rounded to float
__global__ static void cu_dk_spec_kernel(cufftComplex *Kacc, const cufftComplex *U, const cufftComplex *G, int B,
                                         int H, int nc) {
    CU_ROWS_FOR(h, (int64_t)H) {
        CU_COLS_FOR(f, nc) {
            double re = 0, im = 0;
            for (int b = 0; b < B; b++) {
                int64_t j = ((int64_t)b * H + h) * nc + f;
                double ur = U[j].x, ui = U[j].y, gr = G[j].x, gi = G[j].y;
                re += ur * gr + ui * gi;
                im += ur * gi - ui * gr;
            }
            Kacc[h * nc + f] = make_cuFloatComplex((float)re, (float)im);
        }
    }
}

// y (rows, L) = (or +=) r (rows, n)[0:L] scale
__global__ static void cu_unpad_kernel(lra_real *y, const lra_real *r, int64_t rows, int L, int n, lra_real scale,
                                       int accumulate) {
    CU_ROWS_FOR(row, rows) {
        const lra_real *rr = r + row * n;
        lra_real *yr = y + row * L;
        CU_COLS_FOR(t, L) {
            lra_real v = rr[t] * scale;
            yr[t] = accumulate ? yr[t] + v : v;
        }
    }
}

// dk (H, L) or (H, 2, L) += dkk (H, n) read at the kernel's positions
__global__ static void cu_dk_unpack_kernel(lra_real *dk, const lra_real *r, int H, int L, int n, lra_real scale,
                                           int bidir) {
    int klen = bidir ? 2 * L : L;
    CU_ROWS_FOR(h, (int64_t)H) {
        CU_COLS_FOR(j, klen) {
            int t = j < L ? j : n - 1 - (j - L);
            dk[h * klen + j] += r[h * n + t] * scale;
        }
    }
}

// ---- the ops -----------------------------------------------------------------------------

static void cu_r2c(lra_backend *be, cufftHandle plan, lra_real *in, cufftComplex *out, void *work) {
    (void)be;
    CUFFT_CHECK(cufftSetWorkArea(plan, work));
    CUFFT_CHECK(cufftExecR2C(plan, in, out));
}

static void cu_c2r(lra_backend *be, cufftHandle plan, cufftComplex *in, lra_real *out, void *work) {
    (void)be;
    CUFFT_CHECK(cufftSetWorkArea(plan, work));
    CUFFT_CHECK(cufftExecC2R(plan, in, out));
}

void cuda_fftconv_fwd(lra_backend *be, lra_real *y, const lra_real *u, const lra_real *k, int B, int H, int L,
                      lra_conv_mode mode) {
    if (B <= 0 || H <= 0 || L <= 0) return;
    LRA_ASSERT(mode == LRA_CONV_CAUSAL || mode == LRA_CONV_BIDIRECTIONAL);
    LRA_ASSERT(L <= (1 << 29));
    const int n = lra_fft_good_size(2 * L), nc = n / 2 + 1, bidir = mode == LRA_CONV_BIDIRECTIONAL;
    const int64_t rows = (int64_t)B * H;
    LRA_ASSERT(rows <= INT32_MAX);
    cufftHandle pk = lra_cuda_fft_plan_get(be, n, H, 0);
    cufftHandle pu = lra_cuda_fft_plan_get(be, n, (int)rows, 0);
    cufftHandle pi = lra_cuda_fft_plan_get(be, n, (int)rows, 1);
    size_t work = cu_fft_work(pk);
    if (cu_fft_work(pu) > work) work = cu_fft_work(pu);
    if (cu_fft_work(pi) > work) work = cu_fft_work(pi);
    size_t bk = LRA_CUDA_ROUND(sizeof(lra_real) * H * (size_t)n), bK = LRA_CUDA_ROUND(sizeof(cufftComplex) * H * (size_t)nc);
    size_t br = LRA_CUDA_ROUND(sizeof(lra_real) * rows * n), bU = LRA_CUDA_ROUND(sizeof(cufftComplex) * rows * nc);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, bk + bK + br + bU + LRA_CUDA_ROUND(work) + 256), 0 };
    lra_real *kk = (lra_real *)lra_cuda_take(&cv, bk);
    cufftComplex *Khat = (cufftComplex *)lra_cuda_take(&cv, bK);
    lra_real *r = (lra_real *)lra_cuda_take(&cv, br);
    cufftComplex *U = (cufftComplex *)lra_cuda_take(&cv, bU);
    void *wa = lra_cuda_take(&cv, work ? work : 1);

    CU_LAUNCH(cu_pack_kernel, cu_row_grid(H, n), CU_BLOCK, kk, k, H, L, n, bidir);
    cu_r2c(be, pk, kk, Khat, wa);
    CU_LAUNCH(cu_pad_kernel, cu_row_grid(rows, n), CU_BLOCK, r, u, rows, L, n);
    cu_r2c(be, pu, r, U, wa);
    CU_LAUNCH(cu_spec_mul_kernel, cu_row_grid(rows, nc), CU_BLOCK, U, Khat, rows, H, nc, 0);
    cu_c2r(be, pi, U, r, wa);
    CU_LAUNCH(cu_unpad_kernel, cu_row_grid(rows, L), CU_BLOCK, y, r, rows, L, n, (lra_real)(1.0 / n), 0);
}

void cuda_fftconv_bwd(lra_backend *be, lra_real *du, lra_real *dk, const lra_real *dy, const lra_real *u,
                      const lra_real *k, int B, int H, int L, lra_conv_mode mode) {
    if ((!du && !dk) || B <= 0 || H <= 0 || L <= 0) return;
    LRA_ASSERT(mode == LRA_CONV_CAUSAL || mode == LRA_CONV_BIDIRECTIONAL);
    LRA_ASSERT(L <= (1 << 29));
    const int n = lra_fft_good_size(2 * L), nc = n / 2 + 1, bidir = mode == LRA_CONV_BIDIRECTIONAL;
    const int64_t rows = (int64_t)B * H;
    LRA_ASSERT(rows <= INT32_MAX);
    cufftHandle pkf = lra_cuda_fft_plan_get(be, n, H, 0), pki = lra_cuda_fft_plan_get(be, n, H, 1);
    cufftHandle pu = lra_cuda_fft_plan_get(be, n, (int)rows, 0), pi = lra_cuda_fft_plan_get(be, n, (int)rows, 1);
    size_t work = 0;
    cufftHandle all[4] = { pkf, pki, pu, pi };
    for (int i = 0; i < 4; i++)
        if (cu_fft_work(all[i]) > work) work = cu_fft_work(all[i]);
    size_t bk = LRA_CUDA_ROUND(sizeof(lra_real) * H * (size_t)n), bK = LRA_CUDA_ROUND(sizeof(cufftComplex) * H * (size_t)nc);
    size_t br = LRA_CUDA_ROUND(sizeof(lra_real) * rows * n), bU = LRA_CUDA_ROUND(sizeof(cufftComplex) * rows * nc);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, bk + bK + br + 2 * bU + LRA_CUDA_ROUND(work) + 256), 0 };
    lra_real *kk = (lra_real *)lra_cuda_take(&cv, bk);
    cufftComplex *Khat = (cufftComplex *)lra_cuda_take(&cv, bK);
    lra_real *r = (lra_real *)lra_cuda_take(&cv, br);
    cufftComplex *G = (cufftComplex *)lra_cuda_take(&cv, bU);
    cufftComplex *U = (cufftComplex *)lra_cuda_take(&cv, bU);
    void *wa = lra_cuda_take(&cv, work ? work : 1);
    const lra_real scale = (lra_real)(1.0 / n);

    CU_LAUNCH(cu_pad_kernel, cu_row_grid(rows, n), CU_BLOCK, r, dy, rows, L, n);
    cu_r2c(be, pu, r, G, wa);
    if (dk) {
        CU_LAUNCH(cu_pad_kernel, cu_row_grid(rows, n), CU_BLOCK, r, u, rows, L, n);
        cu_r2c(be, pu, r, U, wa);
        CU_LAUNCH(cu_dk_spec_kernel, cu_row_grid(H, nc), CU_BLOCK, Khat, U, G, B, H, nc);
        cu_c2r(be, pki, Khat, kk, wa);
        CU_LAUNCH(cu_dk_unpack_kernel, cu_row_grid(H, (int64_t)L * (bidir ? 2 : 1)), CU_BLOCK, dk, kk, H, L,
                  n, scale, bidir);
    }
    if (du) {
        CU_LAUNCH(cu_pack_kernel, cu_row_grid(H, n), CU_BLOCK, kk, k, H, L, n, bidir);
        cu_r2c(be, pkf, kk, Khat, wa);
        CU_LAUNCH(cu_spec_mul_kernel, cu_row_grid(rows, nc), CU_BLOCK, G, Khat, rows, H, nc, 1);
        cu_c2r(be, pi, G, r, wa);
        CU_LAUNCH(cu_unpad_kernel, cu_row_grid(rows, L), CU_BLOCK, du, r, rows, L, n, scale, 1);
    }
}
