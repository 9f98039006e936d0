// cpu.h: private to the CPU backend. The state behind be->ctx and the kernel
// functions that fill the op table (one file per family: cpu_<family>.c).
// The CPU backend is the numerical reference of lra: plain C11, OpenMP over
// batch and channels, OpenBLAS for GEMMs, FFTW for transforms. It compiles in
// float, and in double for the gradient-check build (-DLRA_F64).
#ifndef LRA_CPU_H
#define LRA_CPU_H

#include "../backend.h"

#include <pthread.h>
#include <stdatomic.h>

#ifdef _OPENMP
#include <omp.h>
#endif

// FFTW in the build's precision: fftwf_* for float, fftw_* for double.
#include <fftw3.h>
#ifdef LRA_F64
#define LRA_FFTW(name) fftw_##name
#else
#define LRA_FFTW(name) fftwf_##name
#endif
typedef LRA_FFTW(plan) lra_fft_plan;
typedef LRA_FFTW(complex) lra_fft_complex;

#define LRA_FFT_MAX_PLANS 64

// One cached pair of real transforms of size n (r2c: n reals -> n/2+1 complex,
// c2r back). Created once under the cache lock with FFTW_ESTIMATE, which is
// deterministic (the same plan, hence bit-identical results, in every run),
// then executed concurrently through the new-array interface on per-thread
// buffers allocated with fftw_malloc (same alignment as at planning time).
typedef struct {
    int          n;
    lra_fft_plan r2c;
    lra_fft_plan c2r;
} lra_fft_plans;

typedef struct {
    atomic_llong    bytes_in_use;
    atomic_llong    bytes_peak;
    int             n_fft_plans;         // guarded by the process-wide FFTW lock (cpu_fft.c)
    lra_fft_plans   fft_plans[LRA_FFT_MAX_PLANS];
} lra_cpu_ctx;

static inline lra_cpu_ctx *lra_cpu(lra_backend *be) { return (lra_cpu_ctx *)be->ctx; }

// Threads of the current parallel region (1 outside OpenMP builds).
static inline int lra_omp_threads(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// Plans for size n from the cache (created on first use); NULL if the cache is full.
const lra_fft_plans *lra_cpu_fft_plans(lra_backend *be, int n);
void lra_cpu_fft_free(lra_cpu_ctx *ctx);

// ---- cpu_memory.c / cpu_elementwise.c --------------------------------------
void *cpu_alloc(lra_backend *be, size_t bytes, lra_err *err);
void cpu_free(lra_backend *be, void *p);
void cpu_zero(lra_backend *be, void *p, size_t bytes);
void cpu_upload(lra_backend *be, void *dst, const void *src_host, size_t bytes);
void cpu_download(lra_backend *be, void *dst_host, const void *src, size_t bytes);
void cpu_copy(lra_backend *be, void *dst, const void *src, size_t bytes);
void cpu_sync(lra_backend *be);
void cpu_mem_stats(lra_backend *be, lra_mem_stats *out);
void cpu_mem_reset_peak(lra_backend *be);

void cpu_fill(lra_backend *be, lra_real *x, lra_real value, int64_t n);
void cpu_axpby(lra_backend *be, lra_real *y, lra_real alpha, const lra_real *x, lra_real beta, int64_t n);
void cpu_add(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
void cpu_mul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
void cpu_mul_cols(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);
void cpu_mul_rows(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);
void cpu_mul_cols_bwd(lra_backend *be, lra_real *dinp, lra_real *dv, const lra_real *dout,
                      const lra_real *inp, const lra_real *v, int64_t R, int C);
void cpu_sum_rows(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C);
double cpu_sum(lra_backend *be, const lra_real *x, int64_t n);
double cpu_sumsq(lra_backend *be, const lra_real *x, int64_t n);
void cpu_permute_0213(lra_backend *be, lra_real *out, const lra_real *inp,
                      int64_t A, int64_t Bd, int64_t Cd, int64_t Dd);

// ---- cpu_dense.c ----------------------------------------------------------
void cpu_gemm(lra_backend *be, int transA, int transB, int M, int N, int K,
              lra_real alpha, const lra_real *A, int lda, int64_t strideA,
              const lra_real *B, int ldb, int64_t strideB,
              lra_real beta, lra_real *C, int ldc, int64_t strideC, int batch);
void cpu_bias_add(lra_backend *be, lra_real *out, const lra_real *bias, int64_t R, int C);

// ---- cpu_fftconv.c ----------------------------------------------------------
void cpu_fftconv_fwd(lra_backend *be, lra_real *y, const lra_real *u, const lra_real *k,
                     int B, int H, int L, lra_conv_mode mode);
void cpu_fftconv_bwd(lra_backend *be, lra_real *du, lra_real *dk, const lra_real *dy,
                     const lra_real *u, const lra_real *k, int B, int H, int L, lra_conv_mode mode);

// ---- cpu_scan.c -------------------------------------------------------------
void cpu_scan_fwd(lra_backend *be, lra_real *x, const lra_real *a, const lra_real *b,
                  const lra_real *x0, int B, int L, int N, int flags);
void cpu_scan_bwd(lra_backend *be, lra_real *da, lra_real *db, lra_real *dx0,
                  const lra_real *dx, const lra_real *x, const lra_real *a, const lra_real *x0,
                  int B, int L, int N, int flags);

// ---- cpu_complex.c ----------------------------------------------------------
void cpu_vandermonde_fwd(lra_backend *be, lra_real *K, const lra_real *c, const lra_real *w,
                         int H, int N, int L);
void cpu_vandermonde_bwd(lra_backend *be, lra_real *dc, lra_real *dw, const lra_real *dK,
                         const lra_real *c, const lra_real *w, int H, int N, int L);
void cpu_cexp(lra_backend *be, lra_real *out, const lra_real *z, int64_t n);
void cpu_cexp_bwd(lra_backend *be, lra_real *dz, const lra_real *dout, const lra_real *z, int64_t n);
void cpu_cmul(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
void cpu_cmul_bwd(lra_backend *be, lra_real *da, lra_real *db, const lra_real *dout,
                  const lra_real *a, const lra_real *b, int64_t n);

// ---- cpu_attention.c ----------------------------------------------------------
void cpu_attention_fwd(lra_backend *be, lra_real *out, lra_real *lse,
                       const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                       int B, int NH, int L, int Dh, lra_real scale, int causal,
                       lra_real dropout_p, uint64_t seed);
void cpu_attention_bwd(lra_backend *be, lra_real *dq, lra_real *dk, lra_real *dv,
                       const lra_real *dout, const lra_real *out, const lra_real *lse,
                       const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                       int B, int NH, int L, int Dh, lra_real scale, int causal,
                       lra_real dropout_p, uint64_t seed);

// ---- cpu_norm.c ---------------------------------------------------------------
void cpu_layernorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd,
                       const lra_real *inp, const lra_real *w, const lra_real *b,
                       int64_t R, int C, lra_real eps);
void cpu_layernorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db,
                       const lra_real *dout, const lra_real *inp, const lra_real *w,
                       const lra_real *mean, const lra_real *rstd, int64_t R, int C);
void cpu_batchnorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd,
                       lra_real *running_mean, lra_real *running_var,
                       const lra_real *inp, const lra_real *w, const lra_real *b,
                       int64_t R, int C, lra_real eps, lra_real momentum,
                       int unbiased_running, int training);
void cpu_batchnorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db,
                       const lra_real *dout, const lra_real *inp, const lra_real *w,
                       const lra_real *mean, const lra_real *rstd, int64_t R, int C, int training);
void cpu_scalenorm_fwd(lra_backend *be, lra_real *out, lra_real *rstd,
                       const lra_real *inp, const lra_real *g, int64_t R, int C, lra_real eps);
void cpu_scalenorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dg, const lra_real *dout,
                       const lra_real *inp, const lra_real *g, const lra_real *rstd, int64_t R, int C);

// ---- cpu_activation.c -----------------------------------------------------------
void cpu_act_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t n, lra_act act);
void cpu_act_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                 int64_t n, lra_act act);
void cpu_glu_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C);
void cpu_glu_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                 int64_t R, int C);
void cpu_dropout_fwd(lra_backend *be, lra_real *out, const lra_real *inp,
                     int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied);
void cpu_dropout_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout,
                     int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied);

// ---- cpu_loss.c (embedding, pooling, cross-entropy) ---------------------------
void cpu_embedding_fwd(lra_backend *be, lra_real *out, const int32_t *tokens,
                       const lra_real *table, int64_t n, int C);
void cpu_embedding_bwd(lra_backend *be, lra_real *dtable, const lra_real *dout,
                       const int32_t *tokens, int64_t n, int C, int V);
void cpu_meanpool_fwd(lra_backend *be, lra_real *out, const lra_real *inp, const uint8_t *mask,
                      int B, int L, int C);
void cpu_meanpool_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const uint8_t *mask,
                      int B, int L, int C);
double cpu_xent_fwd(lra_backend *be, lra_real *probs, lra_real *loss_per_example,
                    const lra_real *logits, const int32_t *labels, int B, int K);
void cpu_xent_bwd(lra_backend *be, lra_real *dlogits, const lra_real *probs,
                  const int32_t *labels, int B, int K, lra_real dloss);

// ---- cpu_optim.c ----------------------------------------------------------------
void cpu_adamw_step(lra_backend *be, lra_real *params, const lra_real *grads,
                    lra_real *m, lra_real *v, const lra_param_group *groups, int n_groups,
                    float beta1, float beta2, float eps, int64_t t);
double cpu_clip_grad_norm(lra_backend *be, lra_real *grads, int64_t n, double max_norm);

// cpu_ssm.c
void cpu_s4d_discretize_fwd(lra_backend *be, lra_real *w, lra_real *coef, const lra_real *inv_dt,
                            const lra_real *A_real, const lra_real *A_imag, const lra_real *B, const lra_real *C,
                            int H, int S, int Nc, int CH, int bilinear, int dt_exp);
void cpu_s4d_discretize_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                            lra_real *dB, lra_real *dC, const lra_real *dw, const lra_real *dcoef,
                            const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                            const lra_real *B, const lra_real *C, int H, int S, int Nc, int CH, int bilinear,
                            int dt_exp);
void cpu_diag_ssm_step(lra_backend *be, lra_real *y, lra_real *state, const lra_real *u, const lra_real *z,
                       const lra_real *coef, int B, int R, int N);
// ---- cpu_s4.c ---------------------------------------------------------------------
void cpu_s4_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *inv_dt, const lra_real *A_real,
                       const lra_real *A_imag, const lra_real *P, const lra_real *B, const lra_real *C,
                       int H, int S, int Nc, int CH, int Lk, int L, int dt_exp);
void cpu_s4_kernel_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                       lra_real *dP, lra_real *dB, lra_real *dC, const lra_real *dK,
                       const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                       const lra_real *P, const lra_real *B, const lra_real *C,
                       int H, int S, int Nc, int CH, int Lk, int L, int dt_exp);
// ---- cpu_lru.c --------------------------------------------------------------------
void cpu_lru_params_fwd(lra_backend *be, lra_real *lambda, lra_real *Bw, lra_real *Cw, const lra_real *nu_log,
                        const lra_real *theta_log, const lra_real *gamma_log, const lra_real *B_re,
                        const lra_real *B_im, const lra_real *C_re, const lra_real *C_im, int N, int H, int CH);
void cpu_lru_params_bwd(lra_backend *be, lra_real *dnu_log, lra_real *dtheta_log, lra_real *dgamma_log,
                        lra_real *dB_re, lra_real *dB_im, lra_real *dC_re, lra_real *dC_im, const lra_real *dlambda,
                        const lra_real *dBw, const lra_real *dCw, const lra_real *nu_log, const lra_real *theta_log,
                        const lra_real *gamma_log, const lra_real *B_re, const lra_real *B_im, int N, int H, int CH);
// ---- cpu_dwconv.c -----------------------------------------------------------------
void cpu_dwconv_fwd(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *w, const lra_real *bias,
                    int B, int L, int C, int K);
void cpu_dwconv_bwd(lra_backend *be, lra_real *dx, lra_real *dw, lra_real *dbias, const lra_real *dy,
                    const lra_real *x, const lra_real *w, int B, int L, int C, int K);

// ---- cpu_s5.c ---------------------------------------------------------------------
void cpu_s5_discretize_fwd(lra_backend *be, lra_real *abar, lra_real *bbar, const lra_real *Lambda_re,
                           const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                           int bilinear, int clip);
void cpu_s5_discretize_bwd(lra_backend *be, lra_real *dLambda_re, lra_real *dLambda_im, lra_real *dlog_step,
                           lra_real *dB, const lra_real *dabar, const lra_real *dbbar, const lra_real *Lambda_re,
                           const lra_real *Lambda_im, const lra_real *log_step, const lra_real *B, int Pc, int H,
                           int bilinear, int clip);
// ---- cpu_mega.c -------------------------------------------------------------------
void cpu_ema_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *delta, const lra_real *alpha,
                        const lra_real *beta, const lra_real *gamma, int H, int N, int CH, int Lk, int L,
                        lra_real scale);
void cpu_ema_kernel_bwd(lra_backend *be, lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma,
                        const lra_real *dK, const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                        const lra_real *gamma, int H, int N, int CH, int Lk, int L, lra_real scale);
void cpu_mega_attn_fwd(lra_backend *be, lra_real *A, const lra_real *S, const lra_real *w, const uint8_t *mask,
                       int B, int NK, int C, int M, lra_real scale, int kind);
void cpu_mega_attn_bwd(lra_backend *be, lra_real *dS, lra_real *dw, const lra_real *dA, const lra_real *A,
                       const lra_real *S, const lra_real *w, const uint8_t *mask, int B, int NK, int C, int M,
                       lra_real scale, int kind);

#endif // LRA_CPU_H
