// cuda_backend.cu: the CUDA op table and the backend's lifetime. Every entry
// of the table is filled (lra_backend_missing would name one left NULL).
#include "cuda.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static_assert(sizeof(lra_real) == 4, "lra_real must be float in the CUDA build");

static void cuda_free_backend(lra_backend *be);

static lra_backend cuda_table(void) {
    lra_backend t;
    memset(&t, 0, sizeof t);
    t.api_version    = LRA_BACKEND_API_VERSION;
    t.name           = "cuda";
    t.free_backend   = cuda_free_backend;
    t.alloc          = cuda_alloc;
    t.free           = cuda_free;
    t.zero           = cuda_zero;
    t.upload         = cuda_upload;
    t.download       = cuda_download;
    t.copy           = cuda_copy;
    t.sync           = cuda_sync;
    t.mem_stats      = cuda_mem_stats;
    t.mem_reset_peak = cuda_mem_reset_peak;
    t.fill           = cuda_fill;
    t.axpby          = cuda_axpby;
    t.add            = cuda_add;
    t.mul            = cuda_mul;
    t.mul_cols       = cuda_mul_cols;
    t.mul_cols_bwd   = cuda_mul_cols_bwd;
    t.mul_rows       = cuda_mul_rows;
    t.sum_rows       = cuda_sum_rows;
    t.sum            = cuda_sum;
    t.sumsq          = cuda_sumsq;
    t.permute_0213   = cuda_permute_0213;
    t.gemm           = cuda_gemm;
    t.bias_add       = cuda_bias_add;
    t.act_fwd        = cuda_act_fwd;
    t.act_bwd        = cuda_act_bwd;
    t.xent_fwd       = cuda_xent_fwd;
    t.xent_bwd       = cuda_xent_bwd;
    t.adamw_step     = cuda_adamw_step;
    t.clip_grad_norm = cuda_clip_grad_norm;
    t.fftconv_fwd    = cuda_fftconv_fwd;
    t.fftconv_bwd    = cuda_fftconv_bwd;
    t.scan_fwd       = cuda_scan_fwd;
    t.scan_bwd       = cuda_scan_bwd;
    t.vandermonde_fwd = cuda_vandermonde_fwd;
    t.vandermonde_bwd = cuda_vandermonde_bwd;
    t.cexp           = cuda_cexp;
    t.cexp_bwd       = cuda_cexp_bwd;
    t.cmul           = cuda_cmul;
    t.cmul_bwd       = cuda_cmul_bwd;
    t.attention_fwd  = cuda_attention_fwd;
    t.attention_bwd  = cuda_attention_bwd;
    t.layernorm_fwd  = cuda_layernorm_fwd;
    t.layernorm_bwd  = cuda_layernorm_bwd;
    t.batchnorm_fwd  = cuda_batchnorm_fwd;
    t.batchnorm_bwd  = cuda_batchnorm_bwd;
    t.scalenorm_fwd  = cuda_scalenorm_fwd;
    t.scalenorm_bwd  = cuda_scalenorm_bwd;
    t.glu_fwd        = cuda_glu_fwd;
    t.glu_bwd        = cuda_glu_bwd;
    t.dropout_fwd    = cuda_dropout_fwd;
    t.dropout_bwd    = cuda_dropout_bwd;
    t.embedding_fwd  = cuda_embedding_fwd;
    t.embedding_bwd  = cuda_embedding_bwd;
    t.meanpool_fwd   = cuda_meanpool_fwd;
    t.meanpool_bwd   = cuda_meanpool_bwd;
    t.s4d_discretize_fwd = cuda_s4d_discretize_fwd;
    t.s4d_discretize_bwd = cuda_s4d_discretize_bwd;
    t.diag_ssm_step  = cuda_diag_ssm_step;
    t.s4_kernel_fwd  = cuda_s4_kernel_fwd;
    t.s4_kernel_bwd  = cuda_s4_kernel_bwd;
    t.lru_params_fwd = cuda_lru_params_fwd;
    t.lru_params_bwd = cuda_lru_params_bwd;
    t.dwconv_fwd     = cuda_dwconv_fwd;
    t.dwconv_bwd     = cuda_dwconv_bwd;
    t.s5_discretize_fwd = cuda_s5_discretize_fwd;
    t.s5_discretize_bwd = cuda_s5_discretize_bwd;
    t.ema_kernel_fwd = cuda_ema_kernel_fwd;
    t.ema_kernel_bwd = cuda_ema_kernel_bwd;
    t.mega_attn_fwd  = cuda_mega_attn_fwd;
    t.mega_attn_bwd  = cuda_mega_attn_bwd;
    return t;
}

// One thread writes one value: proves that this build has kernels the device
// can run (the binary holds SASS for sm_80 and sm_90 only, no PTX to JIT).
__global__ static void cuda_probe_kernel(double *out) {
    if (threadIdx.x == 0) *out = 1.0;
}

// Releases what init created so far (any field may still be empty).
static void cuda_release(lra_backend *be) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    if (ctx) {
        lra_cuda_fft_plans_free(ctx);
        if (ctx->blas) cublasDestroy(ctx->blas);
        if (ctx->scratch) cudaFree(ctx->scratch);
        lra_cuda_blocks_free(ctx);
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
    }
    free(be);
}

// "cuda": FP32 GEMMs. "cuda-tf32": cuBLAS may run the GEMMs on TF32 tensor
// cores (inputs rounded to a 10-bit mantissa, FP32 accumulation: about 1e-3
// relative error against FP32, test_cuda's TF32_TOL); every other op is the same.
static lra_backend *cuda_init(int tf32, lra_err *err) {
    int count = 0, dev = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        (void)cudaGetLastError();
        lra_err_set(err, LRA_EUNSUPPORTED, "backend 'cuda': no CUDA device available (cudaGetDeviceCount: %s)",
                    e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return NULL;
    }
    cudaDeviceProp prop;
    e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        lra_err_set(err, LRA_EUNSUPPORTED, "backend 'cuda': cannot query device properties: %s",
                    cudaGetErrorString(e));
        return NULL;
    }

    lra_backend *be = (lra_backend *)malloc(sizeof *be);
    lra_cuda_ctx *ctx = (lra_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        lra_err_set(err, LRA_ENOMEM, "backend 'cuda': out of host memory");
        return NULL;
    }
    *be = cuda_table();
    be->ctx = ctx;
    be->n_threads = 0;
    snprintf(be->device, sizeof be->device, "%.*s", (int)sizeof be->device - 1, prop.name);
    ctx->device = dev;
    pthread_mutex_init(&ctx->lock, NULL);

    cublasStatus_t bs = cublasCreate(&ctx->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        ctx->blas = NULL;
        lra_err_set(err, LRA_EUNSUPPORTED, "backend 'cuda': cublasCreate failed on %s: %s", prop.name,
                    cublasGetStatusString(bs));
        cuda_release(be);
        return NULL;
    }
    if (tf32) be->name = "cuda-tf32";
    bs = cublasSetMathMode(ctx->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        lra_err_set(err, LRA_EUNSUPPORTED, "backend 'cuda': cublasSetMathMode failed: %s", cublasGetStatusString(bs));
        cuda_release(be);
        return NULL;
    }

    size_t scratch = 64 * 1024;
    e = cudaMalloc(&ctx->scratch, scratch);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        ctx->scratch = NULL;
        lra_err_set(err, LRA_ENOMEM, "backend 'cuda': cannot allocate %zu bytes of scratch on %s: %s", scratch,
                    prop.name, cudaGetErrorString(e));
        cuda_release(be);
        return NULL;
    }
    ctx->scratch_bytes = scratch;

    cuda_probe_kernel<<<1, 32>>>((double *)ctx->scratch);
    e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        lra_err_set(err, LRA_EUNSUPPORTED,
                    "backend 'cuda': cannot run kernels on %s (compute capability %d.%d; this build has "
                    "kernels for sm_80 and sm_90): %s",
                    prop.name, prop.major, prop.minor, cudaGetErrorString(e));
        cuda_release(be);
        return NULL;
    }
    return be;
}

static void cuda_free_backend(lra_backend *be) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    CU_CHECK(cudaDeviceSynchronize());
    CUBLAS_CHECK(cublasDestroy(ctx->blas));
    ctx->blas = NULL;
    CU_CHECK(cudaFree(ctx->scratch));
    ctx->scratch = NULL;
    cuda_release(be);  // also frees blocks the caller never freed
}

extern "C" lra_backend *lra_backend_cuda_init(int n_threads, lra_err *err) {
    (void)n_threads;  // GPU backends have no worker threads
    return cuda_init(0, err);
}

extern "C" lra_backend *lra_backend_cuda_tf32_init(int n_threads, lra_err *err) {
    (void)n_threads;
    return cuda_init(1, err);
}
