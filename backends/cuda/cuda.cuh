// cuda.cuh: private to the CUDA backend. The state behind be->ctx, the
// checking macros, launch helpers shared by the kernel files, and the
// functions that fill the op table (one file per family: cuda_<family>.cu,
// mirroring backends/cpu/).
//
// Conventions of the kernels
// - Everything runs on the legacy default stream, so ops are ordered among
//   themselves and with cudaMemcpy; the ops of one backend are issued from one
//   host thread (alloc/free/mem_stats are also safe from several).
// - Elementwise kernels use grid-stride loops with int64_t indices and a
//   grid capped at CU_MAX_GRID blocks, so any n works with the same launch.
// - Reductions accumulate in double and combine partial sums in a fixed
//   order (no atomics): results are bit-identical from run to run.
// - A failing CUDA or cuBLAS call inside an op (which cannot return a code) is
//   an internal invariant: file:line and the error string go to stderr, then
//   abort(), like LRA_ASSERT. Init and alloc return codes instead.
#ifndef LRA_CUDA_CUH
#define LRA_CUDA_CUH

#include "../backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <math.h>
#include <pthread.h>

static_assert(sizeof(lra_real) == 4, "the CUDA backend is built in float only (no -DLRA_F64)");

// ---- checks ---------------------------------------------------------------------

// Prints "file:line: cuda backend: <what> failed: <msg>" and aborts.
[[noreturn]] void lra_cuda_fail(const char *file, int line, const char *what, const char *msg);

#define CU_CHECK(call)                                                                   \
    do {                                                                                 \
        cudaError_t cu_e_ = (call);                                                      \
        if (cu_e_ != cudaSuccess) lra_cuda_fail(__FILE__, __LINE__, #call, cudaGetErrorString(cu_e_)); \
    } while (0)

#define CUBLAS_CHECK(call)                                                                      \
    do {                                                                                        \
        cublasStatus_t cu_s_ = (call);                                                          \
        if (cu_s_ != CUBLAS_STATUS_SUCCESS)                                                     \
            lra_cuda_fail(__FILE__, __LINE__, #call, cublasGetStatusString(cu_s_));             \
    } while (0)

// Launches kernel<<<grid, block>>>(args...) and checks the launch (bad
// configuration, missing kernel image, or an earlier asynchronous fault).
#define CUFFT_CHECK(call)                                                                       \
    do {                                                                                        \
        cufftResult cu_f_ = (call);                                                             \
        if (cu_f_ != CUFFT_SUCCESS) lra_cuda_fail(__FILE__, __LINE__, #call, lra_cufft_string(cu_f_)); \
    } while (0)

const char *lra_cufft_string(cufftResult r);

#define CU_LAUNCH(kernel, grid, block, ...)                                                    \
    do {                                                                                       \
        kernel<<<(grid), (block)>>>(__VA_ARGS__);                                              \
        cudaError_t cu_e_ = cudaGetLastError();                                                \
        if (cu_e_ != cudaSuccess) lra_cuda_fail(__FILE__, __LINE__, "launch of " #kernel, cudaGetErrorString(cu_e_)); \
    } while (0)

// The same with `shmem` bytes of dynamic shared memory.
#define CU_LAUNCH_SHM(kernel, grid, block, shmem, ...)                                         \
    do {                                                                                       \
        kernel<<<(grid), (block), (shmem)>>>(__VA_ARGS__);                                     \
        cudaError_t cu_e_ = cudaGetLastError();                                                \
        if (cu_e_ != cudaSuccess) lra_cuda_fail(__FILE__, __LINE__, "launch of " #kernel, cudaGetErrorString(cu_e_)); \
    } while (0)

// ---- launch geometry ------------------------------------------------------------

#define CU_BLOCK    256   // threads per block of the 1-D kernels
#define CU_MAX_GRID 4096  // enough blocks to fill any current GPU; loops cover the rest

// Blocks for n items at `per_block` items per block, in [1, CU_MAX_GRID].
static inline unsigned cu_grid(int64_t n, int per_block) {
    int64_t g = (n + per_block - 1) / per_block;
    return (unsigned)(g < 1 ? 1 : g > CU_MAX_GRID ? CU_MAX_GRID : g);
}

// for (i = global thread index; i < n; i += total threads), int64_t indices
#define CU_FOR(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// ---- block reductions (blockDim.x a multiple of 32, at most 1024) ----------------
// Every thread of the block must call them; every thread gets the result.
// The order of the additions is fixed, so the result is deterministic.

__device__ __forceinline__ double cu_warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ double cu_block_sum(double v) {
    __shared__ double part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = cu_warp_sum(v);
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    return cu_warp_sum(lane < n_warps ? part[lane] : 0.0);
}

__device__ __forceinline__ float cu_block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = cu_warp_max(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    return cu_warp_max(lane < n_warps ? part[lane] : -INFINITY);
}

// ---- backend state -------------------------------------------------------------------

// One live allocation in the open-addressing table (ptr NULL: empty slot).
typedef struct {
    void  *ptr;
    size_t bytes;
} lra_cuda_block;

// One cached cuFFT plan: n-point real transforms, `batch` contiguous rows
// (real rows of n, complex rows of n/2 + 1), R2C or C2R.
typedef struct {
    cufftHandle plan;
    int         n, batch, inverse;
    uint64_t    used;  // clock of the last use (least recently used is evicted)
} lra_cuda_fft_plan;

#define LRA_CUDA_MAX_PLANS 24

typedef struct {
    int            device;      // the CUDA device this backend runs on
    cublasHandle_t blas;        // FP32 math mode (no TF32), default stream
    // device scratch of the ops (reduction partials, FFT buffers and work
    // areas, attention blocks), grown on demand; not in bytes_in_use (the
    // backend's own), but each request counts towards bytes_peak as
    // bytes_in_use + request, the memory the op needs
    void          *scratch;
    size_t         scratch_bytes;
    // allocation table keyed by pointer (sizes live on the host: nothing is
    // ever read back from device memory to free a block)
    pthread_mutex_t lock;       // guards the table and the byte counters
    lra_cuda_block *blocks;     // cap slots, cap a power of two, at most half full
    size_t          cap, count;
    int64_t         bytes_in_use, bytes_peak;
    // cuFFT plans per (n, batch, direction), created on first use
    lra_cuda_fft_plan plans[LRA_CUDA_MAX_PLANS];
    int               n_plans;
    uint64_t          plan_clock;
} lra_cuda_ctx;

static inline lra_cuda_ctx *lra_cuda(lra_backend *be) { return (lra_cuda_ctx *)be->ctx; }

// Device scratch of at least `bytes` (valid until the next call); aborts when
// the device is out of memory.
void *lra_cuda_scratch(lra_backend *be, size_t bytes);
// Releases the allocation table, freeing blocks still live.
void lra_cuda_blocks_free(lra_cuda_ctx *ctx);

// The cached plan of `batch` real n-point transforms (forward R2C or
// inverse C2R), unnormalised; aborts when cuFFT cannot make it.
cufftHandle lra_cuda_fft_plan_get(lra_backend *be, int n, int batch, int inverse);
void lra_cuda_fft_plans_free(lra_cuda_ctx *ctx);

// Carves consecutive 256-byte aligned pieces out of one scratch block.
typedef struct {
    char  *base;
    size_t off;
} lra_cuda_carve;
static inline void *lra_cuda_take(lra_cuda_carve *c, size_t bytes) {
    void *p = c->base + c->off;
    c->off += (bytes + 255) & ~(size_t)255;
    return p;
}
#define LRA_CUDA_ROUND(b) ((((size_t)(b)) + 255) & ~(size_t)255)

// Column sums of x (R, C), or of x * y when y is not NULL, accumulated in
// double and added into out (C) as out[c] += (lra_real)sum (cuda_elementwise.cu).
void lra_cuda_colsum_add(lra_backend *be, lra_real *out, const lra_real *x, const lra_real *y, int64_t R, int C);

// ---- the ops (C linkage: they fill the C op table) -----------------------------
extern "C" {

// cuda_memory.cu
void *cuda_alloc(lra_backend *be, size_t bytes, lra_err *err);
void cuda_free(lra_backend *be, void *p);
void cuda_zero(lra_backend *be, void *p, size_t bytes);
void cuda_upload(lra_backend *be, void *dst, const void *src_host, size_t bytes);
void cuda_download(lra_backend *be, void *dst_host, const void *src, size_t bytes);
void cuda_copy(lra_backend *be, void *dst, const void *src, size_t bytes);
void cuda_sync(lra_backend *be);
void cuda_mem_stats(lra_backend *be, lra_mem_stats *out);
void cuda_mem_reset_peak(lra_backend *be);

// cuda_elementwise.cu
void cuda_fill(lra_backend *be, lra_real *x, lra_real value, int64_t n);
void cuda_axpby(lra_backend *be, lra_real *y, lra_real alpha, const lra_real *x, lra_real beta, int64_t n);
void cuda_add(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
void cuda_mul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
void cuda_mul_cols(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);
void cuda_mul_rows(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);
void cuda_mul_cols_bwd(lra_backend *be, lra_real *dinp, lra_real *dv, const lra_real *dout,
                       const lra_real *inp, const lra_real *v, int64_t R, int C);
void cuda_sum_rows(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C);
double cuda_sum(lra_backend *be, const lra_real *x, int64_t n);
double cuda_sumsq(lra_backend *be, const lra_real *x, int64_t n);
void cuda_permute_0213(lra_backend *be, lra_real *out, const lra_real *inp,
                       int64_t A, int64_t Bd, int64_t Cd, int64_t Dd);

// cuda_dense.cu
void cuda_gemm(lra_backend *be, int transA, int transB, int M, int N, int K,
               lra_real alpha, const lra_real *A, int lda, int64_t strideA,
               const lra_real *B, int ldb, int64_t strideB,
               lra_real beta, lra_real *C, int ldc, int64_t strideC, int batch);
void cuda_bias_add(lra_backend *be, lra_real *out, const lra_real *bias, int64_t R, int C);

// cuda_activation.cu
void cuda_act_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t n, lra_act act);
void cuda_act_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                  int64_t n, lra_act act);

// cuda_loss.cu
double cuda_xent_fwd(lra_backend *be, lra_real *probs, lra_real *loss_per_example,
                     const lra_real *logits, const int32_t *labels, int B, int K);
void cuda_xent_bwd(lra_backend *be, lra_real *dlogits, const lra_real *probs,
                   const int32_t *labels, int B, int K, lra_real dloss);

// cuda_optim.cu
void cuda_adamw_step(lra_backend *be, lra_real *params, const lra_real *grads,
                     lra_real *m, lra_real *v, const lra_param_group *groups, int n_groups,
                     float beta1, float beta2, float eps, int64_t t);
double cuda_clip_grad_norm(lra_backend *be, lra_real *grads, int64_t n, double max_norm);

// cuda_fftconv.cu
void cuda_fftconv_fwd(lra_backend *be, lra_real *y, const lra_real *u, const lra_real *k, int B, int H, int L,
                      lra_conv_mode mode);
void cuda_fftconv_bwd(lra_backend *be, lra_real *du, lra_real *dk, const lra_real *dy, const lra_real *u,
                      const lra_real *k, int B, int H, int L, lra_conv_mode mode);

// cuda_scan.cu
void cuda_scan_fwd(lra_backend *be, lra_real *x, const lra_real *a, const lra_real *b, const lra_real *x0, int B,
                   int L, int N, int flags);
void cuda_scan_bwd(lra_backend *be, lra_real *da, lra_real *db, lra_real *dx0, const lra_real *dx,
                   const lra_real *x, const lra_real *a, const lra_real *x0, int B, int L, int N, int flags);

// cuda_complex.cu
void cuda_vandermonde_fwd(lra_backend *be, lra_real *K, const lra_real *c, const lra_real *w, int H, int N, int L);
void cuda_vandermonde_bwd(lra_backend *be, lra_real *dc, lra_real *dw, const lra_real *dK, const lra_real *c,
                          const lra_real *w, int H, int N, int L);
void cuda_cexp(lra_backend *be, lra_real *out, const lra_real *z, int64_t n);
void cuda_cexp_bwd(lra_backend *be, lra_real *dz, const lra_real *dout, const lra_real *z, int64_t n);
void cuda_cmul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
void cuda_cmul_bwd(lra_backend *be, lra_real *da, lra_real *db, const lra_real *dout, const lra_real *a,
                   const lra_real *b, int64_t n);

// cuda_attention.cu
void cuda_attention_fwd(lra_backend *be, lra_real *out, lra_real *lse, const lra_real *q, const lra_real *k,
                        const lra_real *v, const uint8_t *mask, int B, int NH, int L, int Dh, lra_real scale,
                        int causal, lra_real dropout_p, uint64_t seed);
void cuda_attention_bwd(lra_backend *be, lra_real *dq, lra_real *dk, lra_real *dv, const lra_real *dout,
                        const lra_real *out, const lra_real *lse, const lra_real *q, const lra_real *k,
                        const lra_real *v, const uint8_t *mask, int B, int NH, int L, int Dh, lra_real scale,
                        int causal, lra_real dropout_p, uint64_t seed);

// cuda_norm.cu
void cuda_layernorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd, const lra_real *inp,
                        const lra_real *w, const lra_real *b, int64_t R, int C, lra_real eps);
void cuda_layernorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db, const lra_real *dout,
                        const lra_real *inp, const lra_real *w, const lra_real *mean, const lra_real *rstd,
                        int64_t R, int C);
void cuda_batchnorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd, lra_real *running_mean,
                        lra_real *running_var, const lra_real *inp, const lra_real *w, const lra_real *b, int64_t R,
                        int C, lra_real eps, lra_real momentum, int unbiased_running, int training);
void cuda_batchnorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db, const lra_real *dout,
                        const lra_real *inp, const lra_real *w, const lra_real *mean, const lra_real *rstd,
                        int64_t R, int C, int training);
void cuda_scalenorm_fwd(lra_backend *be, lra_real *out, lra_real *rstd, const lra_real *inp, const lra_real *g,
                        int64_t R, int C, lra_real eps);
void cuda_scalenorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dg, const lra_real *dout, const lra_real *inp,
                        const lra_real *g, const lra_real *rstd, int64_t R, int C);

// cuda_activation.cu (GLU, dropout)
void cuda_glu_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C);
void cuda_glu_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp, int64_t R, int C);
void cuda_dropout_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t A, int64_t M, int64_t C,
                      lra_real p, uint64_t seed, int tied);
void cuda_dropout_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, int64_t A, int64_t M, int64_t C,
                      lra_real p, uint64_t seed, int tied);

// cuda_loss.cu (embedding, pooling)
void cuda_embedding_fwd(lra_backend *be, lra_real *out, const int32_t *tokens, const lra_real *table, int64_t n,
                        int C);
void cuda_embedding_bwd(lra_backend *be, lra_real *dtable, const lra_real *dout, const int32_t *tokens, int64_t n,
                        int C, int V);
void cuda_meanpool_fwd(lra_backend *be, lra_real *out, const lra_real *inp, const uint8_t *mask, int B, int L,
                       int C);
void cuda_meanpool_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const uint8_t *mask, int B, int L,
                       int C);

// cuda_ssm.cu
void cuda_s4d_discretize_fwd(lra_backend *be, lra_real *w, lra_real *coef, const lra_real *inv_dt,
                             const lra_real *A_real, const lra_real *A_imag, const lra_real *B, const lra_real *C,
                             int H, int S, int Nc, int CH, int bilinear, int dt_exp);
void cuda_s4d_discretize_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                             lra_real *dB, lra_real *dC, const lra_real *dw, const lra_real *dcoef,
                             const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                             const lra_real *B, const lra_real *C, int H, int S, int Nc, int CH, int bilinear,
                             int dt_exp);
void cuda_diag_ssm_step(lra_backend *be, lra_real *y, lra_real *state, const lra_real *u, const lra_real *z,
                        const lra_real *coef, int B, int R, int N);

// cuda_s4.cu
void cuda_s4_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *inv_dt, const lra_real *A_real,
                        const lra_real *A_imag, const lra_real *P, const lra_real *B, const lra_real *C, int H,
                        int S, int Nc, int CH, int Lk, int L, int dt_exp);
void cuda_s4_kernel_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag, lra_real *dP,
                        lra_real *dB, lra_real *dC, const lra_real *dK, const lra_real *inv_dt,
                        const lra_real *A_real, const lra_real *A_imag, const lra_real *P, const lra_real *B,
                        const lra_real *C, int H, int S, int Nc, int CH, int Lk, int L, int dt_exp);

// cuda_lru.cu
void cuda_lru_params_fwd(lra_backend *be, lra_real *lambda, lra_real *Bw, lra_real *Cw, const lra_real *nu_log,
                         const lra_real *theta_log, const lra_real *gamma_log, const lra_real *B_re,
                         const lra_real *B_im, const lra_real *C_re, const lra_real *C_im, int N, int H, int CH);
void cuda_lru_params_bwd(lra_backend *be, lra_real *dnu_log, lra_real *dtheta_log, lra_real *dgamma_log,
                         lra_real *dB_re, lra_real *dB_im, lra_real *dC_re, lra_real *dC_im, const lra_real *dlambda,
                         const lra_real *dBw, const lra_real *dCw, const lra_real *nu_log, const lra_real *theta_log,
                         const lra_real *gamma_log, const lra_real *B_re, const lra_real *B_im, int N, int H, int CH);

// cuda_dwconv.cu
void cuda_dwconv_fwd(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *w, const lra_real *bias,
                     int B, int L, int C, int K);
void cuda_dwconv_bwd(lra_backend *be, lra_real *dx, lra_real *dw, lra_real *dbias, const lra_real *dy,
                     const lra_real *x, const lra_real *w, int B, int L, int C, int K);

// cuda_s5.cu
void cuda_s5_discretize_fwd(lra_backend *be, lra_real *abar, lra_real *bbar, const lra_real *Lambda_re,
                            const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                            int bilinear, int clip);
void cuda_s5_discretize_bwd(lra_backend *be, lra_real *dLambda_re, lra_real *dLambda_im, lra_real *dlog_step,
                            lra_real *dB, const lra_real *dabar, const lra_real *dbbar, const lra_real *Lambda_re,
                            const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                            int bilinear, int clip);

// cuda_mega.cu
void cuda_ema_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *delta, const lra_real *alpha,
                         const lra_real *beta, const lra_real *gamma, int H, int N, int CH, int Lk, int L,
                         lra_real scale);
void cuda_ema_kernel_bwd(lra_backend *be, lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma,
                         const lra_real *dK, const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                         const lra_real *gamma, int H, int N, int CH, int Lk, int L, lra_real scale);
void cuda_mega_attn_fwd(lra_backend *be, lra_real *A, const lra_real *S, const lra_real *w, const uint8_t *mask,
                        int B, int NK, int C, int M, lra_real scale, int kind);
void cuda_mega_attn_bwd(lra_backend *be, lra_real *dS, lra_real *dw, const lra_real *dA, const lra_real *A,
                        const lra_real *S, const lra_real *w, const uint8_t *mask, int B, int NK, int C, int M,
                        lra_real scale, int kind);

}  // extern "C"

// ---- complex numbers in double on the device (interleaved (re, im) storage) ----

struct cu_cd {
    double re, im;
};
__host__ __device__ __forceinline__ cu_cd cd(double re, double im) { return cu_cd{ re, im }; }
__host__ __device__ __forceinline__ cu_cd operator+(cu_cd a, cu_cd b) { return cd(a.re + b.re, a.im + b.im); }
__host__ __device__ __forceinline__ cu_cd operator-(cu_cd a, cu_cd b) { return cd(a.re - b.re, a.im - b.im); }
__host__ __device__ __forceinline__ cu_cd operator-(cu_cd a) { return cd(-a.re, -a.im); }
__host__ __device__ __forceinline__ cu_cd operator*(cu_cd a, cu_cd b) {
    return cd(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
}
__host__ __device__ __forceinline__ cu_cd operator*(double s, cu_cd a) { return cd(s * a.re, s * a.im); }
__host__ __device__ __forceinline__ cu_cd operator*(cu_cd a, double s) { return cd(s * a.re, s * a.im); }
__host__ __device__ __forceinline__ cu_cd operator+(double s, cu_cd a) { return cd(s + a.re, a.im); }
__host__ __device__ __forceinline__ cu_cd operator-(double s, cu_cd a) { return cd(s - a.re, -a.im); }
__host__ __device__ __forceinline__ cu_cd operator+=(cu_cd &a, cu_cd b) { return a = a + b; }
__host__ __device__ __forceinline__ cu_cd conj(cu_cd a) { return cd(a.re, -a.im); }
// 1/z by conj(z)/|z|^2
__host__ __device__ __forceinline__ cu_cd recip(cu_cd z) {
    double d = z.re * z.re + z.im * z.im;
    return cd(z.re / d, -z.im / d);
}
__host__ __device__ __forceinline__ cu_cd operator/(cu_cd a, cu_cd b) { return a * recip(b); }
__host__ __device__ __forceinline__ cu_cd operator/(cu_cd a, double s) { return cd(a.re / s, a.im / s); }
__device__ __forceinline__ cu_cd cd_ld(const lra_real *p, int64_t i) { return cd(p[2 * i], p[2 * i + 1]); }
__device__ __forceinline__ void cd_st(lra_real *p, int64_t i, cu_cd v) {
    p[2 * i] = (lra_real)v.re;
    p[2 * i + 1] = (lra_real)v.im;
}
__device__ __forceinline__ void cd_acc(lra_real *p, int64_t i, cu_cd v) {
    p[2 * i] += (lra_real)v.re;
    p[2 * i + 1] += (lra_real)v.im;
}
__device__ __forceinline__ cu_cd cd_exp(cu_cd z) {
    double m = exp(z.re), s, c;
    sincos(z.im, &s, &c);
    return cd(m * c, m * s);
}
__device__ __forceinline__ cu_cd cd_log(cu_cd z) { return cd(log(hypot(z.re, z.im)), atan2(z.im, z.re)); }
// e^x - 1 without cancellation for small |x|: expm1(a) cos b - 2 sin^2(b/2) + i e^a sin b
__device__ __forceinline__ cu_cd cu_cexpm1(cu_cd x) {
    double s = sin(x.im / 2);
    return cd(expm1(x.re) * cos(x.im) - 2 * s * s, exp(x.re) * sin(x.im));
}

#endif  // LRA_CUDA_CUH
