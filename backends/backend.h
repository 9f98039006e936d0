// backend.h: the compute interface. The only way models and the harness touch
// tensor memory and math. One table of typed function pointers per backend
// ("cpu", "cuda"), found by name; entries a backend lacks are NULL and are
// reported by name (lra_backend_missing) before anything runs.
//
// Conventions for every op
// - Pointers are backend memory (device pointers for CUDA): never dereference
//   them on the host; move data only through upload/download.
// - Tensors are contiguous, row-major, PyTorch dimension order; the shape of
//   each pointer is written beside it, e.g. // (B, L, D).
// - Outputs come first, then inputs, then sizes (llm.c order).
// - Forward ops overwrite their outputs (=).
// - Backward ops ACCUMULATE (+=) into every gradient they write, for inputs and
//   parameters alike, so residual branches and shared weights add up; callers
//   zero gradient buffers once per step. A NULL gradient pointer means "not
//   wanted" and is skipped.
// - Complex numbers are stored interleaved (re, im) as two lra_real; a shape
//   written (.., N)c holds N complex numbers = 2N reals. The gradient of a
//   real loss w.r.t. a complex z is stored as dl/dRe z + i dl/dIm z (PyTorch's
//   convention, models.md section 0.1).
// - Sizes are int64_t where a product of dimensions can pass 2^31.
//
// The api_version is bumped when fields are appended; fields are never
// reordered or removed.
#ifndef LRA_BACKEND_H
#define LRA_BACKEND_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LRA_BACKEND_API_VERSION 2

typedef struct lra_backend lra_backend;

// activation functions for act_fwd / act_bwd
typedef enum {
    LRA_ACT_IDENTITY = 0,
    LRA_ACT_RELU,
    LRA_ACT_GELU_TANH,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), JAX default
    LRA_ACT_GELU_ERF,   // 0.5 x (1 + erf(x / sqrt(2))), PyTorch nn.GELU default
    LRA_ACT_SILU,       // x sigmoid(x)
    LRA_ACT_SIGMOID,
    LRA_ACT_SOFTPLUS,   // log(1 + exp(x)), computed stably
    LRA_ACT_TANH,
    LRA_ACT_SIN,        // sin(x): Hyena's filter FFN (its frequency is a mul_cols before)
    LRA_ACT_COUNT
} lra_act;
extern const char *const lra_act_names[LRA_ACT_COUNT];

// long convolution layouts for fftconv_fwd / fftconv_bwd
typedef enum {
    // k (H, L): y[t] = sum_{j<=t} k[j] u[t-j]
    LRA_CONV_CAUSAL = 0,
    // k (H, 2, L) = (k_fwd, k_bwd), the bidirectional S4 layout (models.md 0.2):
    // y[t] = sum_{j<=t} k_fwd[j] u[t-j] + sum_{i>=0} k_bwd[i] u[t+1+i]
    // (lag 0 is counted once, by k_fwd).
    LRA_CONV_BIDIRECTIONAL,
    LRA_CONV_COUNT
} lra_conv_mode;

// flags for scan_fwd / scan_bwd
enum {
    LRA_SCAN_REVERSE        = 1, // run t = L-1 .. 0: x_t = a_t x_{t+1} + b_t
    LRA_SCAN_TIME_INVARIANT = 2, // a has shape (N)c instead of (B, L, N)c
};

// one AdamW parameter group: a contiguous range of the flat parameter buffer
typedef struct {
    int64_t offset;        // first element of the group
    int64_t count;         // number of elements
    float   lr;            // learning rate for this step (schedule applied)
    float   weight_decay;  // decoupled weight decay (0 for SSM and no-decay groups)
} lra_param_group;

typedef struct {
    int64_t bytes_in_use;   // backend allocations live now
    int64_t bytes_peak;     // most bytes_in_use since init or reset_peak
    int64_t host_rss_peak;  // process peak resident set (CPU backend), else 0
} lra_mem_stats;

struct lra_backend {
    int         api_version;  // LRA_BACKEND_API_VERSION the table was built for
    const char *name;         // "cpu", "cuda"
    char        device[128];  // e.g. "AMD EPYC 9R14 (2 threads)", "NVIDIA H100 80GB HBM3"
    int         n_threads;    // CPU worker threads (OpenMP); 0 for GPU backends
    void       *ctx;          // backend-private state (plan caches, counters, handles)

    // ---- lifetime ---------------------------------------------------------
    void (*free_backend)(lra_backend *be);  // releases ctx and the table itself

    // ---- memory -----------------------------------------------------------
    // Returns NULL and fills err when out of memory. Memory is 64-byte aligned.
    void *(*alloc)(lra_backend *be, size_t bytes, lra_err *err);
    void  (*free)(lra_backend *be, void *p);                     // p may be NULL
    void  (*zero)(lra_backend *be, void *p, size_t bytes);
    void  (*upload)(lra_backend *be, void *dst, const void *src_host, size_t bytes);
    void  (*download)(lra_backend *be, void *dst_host, const void *src, size_t bytes);
    void  (*copy)(lra_backend *be, void *dst, const void *src, size_t bytes);
    void  (*sync)(lra_backend *be);                               // wait for queued work
    void  (*mem_stats)(lra_backend *be, lra_mem_stats *out);
    void  (*mem_reset_peak)(lra_backend *be);

    // ---- elementwise and reductions ----------------------------------------
    void (*fill)(lra_backend *be, lra_real *x, lra_real value, int64_t n);
    // y = alpha x + beta y
    void (*axpby)(lra_backend *be, lra_real *y, lra_real alpha, const lra_real *x, lra_real beta, int64_t n);
    // out = a + b, out = a * b (out may alias a or b)
    void (*add)(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
    void (*mul)(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
    // out (R, C) = inp (R, C) * v (C) broadcast over rows (D skip, gates, scales)
    void (*mul_cols)(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);
    // out (R, C) = inp (R, C) * v (R) broadcast over columns: row r scaled by
    // v[r] (padding masks on (B L, H) activations); out may alias inp
    void (*mul_rows)(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);
    // dinp += dout * v; dv += sum_r dout * inp   (backward of mul_cols)
    void (*mul_cols_bwd)(lra_backend *be, lra_real *dinp, lra_real *dv, const lra_real *dout,
                         const lra_real *inp, const lra_real *v, int64_t R, int C);
    // out (C) += sum over rows of inp (R, C)  (bias gradient, column sums)
    void (*sum_rows)(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C);
    // sum x and sum x^2, accumulated in double, returned on the host
    double (*sum)(lra_backend *be, const lra_real *x, int64_t n);
    double (*sumsq)(lra_backend *be, const lra_real *x, int64_t n);
    // out[a][c][b][d] = inp[a][b][c][d] (A, Bd, Cd, Dd): head split/merge with
    // Dd = head width, and (B, L, H) <-> (B, H, L) transposes with Dd = 1.
    void (*permute_0213)(lra_backend *be, lra_real *out, const lra_real *inp,
                         int64_t A, int64_t Bd, int64_t Cd, int64_t Dd);

    // ---- dense ------------------------------------------------------------
    // Row-major strided batched GEMM, for i < batch:
    //   C_i (M, N) = alpha op(A_i) op(B_i) + beta C_i,  op(X) = X or X^T,
    //   A_i = A + i strideA (op(A_i) is (M, K)), likewise B_i (K, N), C_i.
    // lda/ldb/ldc are row strides of the stored (untransposed) matrices. As in
    // BLAS, C is not read when beta = 0 (K = 0 gives C = beta C).
    void (*gemm)(lra_backend *be, int transA, int transB, int M, int N, int K,
                 lra_real alpha, const lra_real *A, int lda, int64_t strideA,
                 const lra_real *B, int ldb, int64_t strideB,
                 lra_real beta, lra_real *C, int ldc, int64_t strideC, int batch);
    // out (R, C) += bias (C)
    void (*bias_add)(lra_backend *be, lra_real *out, const lra_real *bias, int64_t R, int C);

    // ---- long convolution along L via FFT ------------------------------------
    // y (B, H, L) = k * u per channel (see lra_conv_mode for k's layout).
    // Any L; transforms are zero-padded to a fast size >= 2L, so no wrap-around.
    void (*fftconv_fwd)(lra_backend *be, lra_real *y, const lra_real *u, const lra_real *k,
                        int B, int H, int L, lra_conv_mode mode);
    // du (B, H, L) += dL/du, dk (H, L) or (H, 2, L) += dL/dk (summed over batch)
    void (*fftconv_bwd)(lra_backend *be, lra_real *du, lra_real *dk, const lra_real *dy,
                        const lra_real *u, const lra_real *k, int B, int H, int L, lra_conv_mode mode);

    // ---- diagonal linear recurrence (models.md 0.3) ---------------------------
    // x (B, L, N)c:  x_t = a_t * x_{t-1} + b_t  (complex, elementwise over N),
    // x_{-1} = x0 (B, N)c or 0 when x0 is NULL. With LRA_SCAN_REVERSE time runs
    // backwards (x_t = a_t x_{t+1} + b_t, x_L = x0). a is (B, L, N)c, or (N)c
    // with LRA_SCAN_TIME_INVARIANT. b (B, L, N)c.
    void (*scan_fwd)(lra_backend *be, lra_real *x, const lra_real *a, const lra_real *b,
                     const lra_real *x0, int B, int L, int N, int flags);
    // Adjoint scan (reverse of the forward direction): g_t = dx_t + conj(a_{t+1}) g_{t+1};
    // db_t += g_t; da_t += conj(x_{t-1}) g_t (summed over B and t when time
    // invariant); dx0 += conj(a_0) g_0. x is the forward output.
    void (*scan_bwd)(lra_backend *be, lra_real *da, lra_real *db, lra_real *dx0,
                     const lra_real *dx, const lra_real *x, const lra_real *a, const lra_real *x0,
                     int B, int L, int N, int flags);

    // ---- SSM kernel helpers -------------------------------------------------
    // Vandermonde kernel of diagonal SSMs (S4D, models.md 3):
    //   K (H, L): K[h][l] = Re sum_n c[h][n] exp(l w[h][n]),  c, w (H, N)c.
    // The phase l Im(w) is reduced in double precision.
    void (*vandermonde_fwd)(lra_backend *be, lra_real *K, const lra_real *c, const lra_real *w,
                            int H, int N, int L);
    // dc += sum_l dK[h][l] conj(exp(l w));  dw += sum_l dK[h][l] l conj(c exp(l w))
    void (*vandermonde_bwd)(lra_backend *be, lra_real *dc, lra_real *dw, const lra_real *dK,
                            const lra_real *c, const lra_real *w, int H, int N, int L);
    // complex exp and product over n complex numbers (out may alias inputs)
    void (*cexp)(lra_backend *be, lra_real *out, const lra_real *z, int64_t n);
    // dz += conj(exp(z)) dout
    void (*cexp_bwd)(lra_backend *be, lra_real *dz, const lra_real *dout, const lra_real *z, int64_t n);
    void (*cmul)(lra_backend *be, lra_real *out, const lra_real *a, const lra_real *b, int64_t n);
    // da += conj(b) dout; db += conj(a) dout
    void (*cmul_bwd)(lra_backend *be, lra_real *da, lra_real *db, const lra_real *dout,
                     const lra_real *a, const lra_real *b, int64_t n);

    // ---- softmax attention ----------------------------------------------------
    // out (B, NH, L, Dh) = softmax(scale q k^T + mask) v per head, q/k/v (B, NH, L, Dh).
    // mask (B, L) uint8, 1 = real token, 0 = padding key (NULL: none); causal
    // hides keys j > i. Saves lse (B, NH, L), the log-sum-exp of each score row,
    // so that backward recomputes probabilities row block by row block: no
    // (B, NH, L, L) buffer is ever allocated. Dropout with probability p on the
    // probabilities, mask from (seed, b, h, i, j) through lra_rand_uniform. A
    // row whose keys are all masked outputs 0.
    void (*attention_fwd)(lra_backend *be, lra_real *out, lra_real *lse,
                          const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                          int B, int NH, int L, int Dh, lra_real scale, int causal,
                          lra_real dropout_p, uint64_t seed);
    void (*attention_bwd)(lra_backend *be, lra_real *dq, lra_real *dk, lra_real *dv,
                          const lra_real *dout, const lra_real *out, const lra_real *lse,
                          const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                          int B, int NH, int L, int Dh, lra_real scale, int causal,
                          lra_real dropout_p, uint64_t seed);

    // ---- normalisation --------------------------------------------------------
    // LayerNorm over the last dim: out (R, C) = (inp - mean) rstd w + b; saves
    // mean, rstd (R). w, b (C) may be NULL (no affine).
    void (*layernorm_fwd)(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd,
                          const lra_real *inp, const lra_real *w, const lra_real *b,
                          int64_t R, int C, lra_real eps);
    void (*layernorm_bwd)(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db,
                          const lra_real *dout, const lra_real *inp, const lra_real *w,
                          const lra_real *mean, const lra_real *rstd, int64_t R, int C);
    // BatchNorm per channel over R = B*L rows (padded positions included, as
    // the references do). training: normalise with batch statistics (biased
    // variance), save mean, rstd (C) and update running_mean/var (C) as
    // running = (1 - momentum) running + momentum batch, with the unbiased batch
    // variance when unbiased_running (PyTorch) or the biased one (Flax).
    // running_mean/var may be NULL in training (not tracked); eval requires them.
    // Eval: normalise with the running statistics (mean, rstd still written).
    void (*batchnorm_fwd)(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd,
                          lra_real *running_mean, lra_real *running_var,
                          const lra_real *inp, const lra_real *w, const lra_real *b,
                          int64_t R, int C, lra_real eps, lra_real momentum,
                          int unbiased_running, int training);
    void (*batchnorm_bwd)(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db,
                          const lra_real *dout, const lra_real *inp, const lra_real *w,
                          const lra_real *mean, const lra_real *rstd, int64_t R, int C, int training);
    // ScaleNorm (MEGA): out (R, C) = g inp / sqrt(mean(inp^2) + eps), g a scalar
    // parameter (1 value); saves rstd (R) = 1/sqrt(mean(inp^2) + eps).
    void (*scalenorm_fwd)(lra_backend *be, lra_real *out, lra_real *rstd,
                          const lra_real *inp, const lra_real *g, int64_t R, int C, lra_real eps);
    void (*scalenorm_bwd)(lra_backend *be, lra_real *dinp, lra_real *dg, const lra_real *dout,
                          const lra_real *inp, const lra_real *g, const lra_real *rstd, int64_t R, int C);

    // ---- activations ----------------------------------------------------------
    void (*act_fwd)(lra_backend *be, lra_real *out, const lra_real *inp, int64_t n, lra_act act);
    void (*act_bwd)(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                    int64_t n, lra_act act);
    // GLU over the last dim: inp (R, 2C) = [a | g], out (R, C) = a * sigmoid(g)
    void (*glu_fwd)(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C);
    void (*glu_bwd)(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                    int64_t R, int C);
    // Inverted dropout on x viewed as (A, M, C): keep with probability 1-p and
    // scale by 1/(1-p). The mask of element (a, m, c) is
    // lra_rand_uniform(seed, a*C + c) >= p when tied (one mask per (a, c), shared
    // over M: S4's DropoutNd, S5/LRU broadcast dropout), else
    // lra_rand_uniform(seed, (a*M + m)*C + c) >= p. out may alias inp. The
    // backward regenerates the mask: nothing is stored.
    void (*dropout_fwd)(lra_backend *be, lra_real *out, const lra_real *inp,
                        int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied);
    void (*dropout_bwd)(lra_backend *be, lra_real *dinp, const lra_real *dout,
                        int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied);

    // ---- embedding, pooling, loss -------------------------------------------
    // out (n, C) = table[tokens[i]] (V, C); tokens outside [0, V) are an error
    // the caller checks on the host (tasks validate their data).
    void (*embedding_fwd)(lra_backend *be, lra_real *out, const int32_t *tokens,
                          const lra_real *table, int64_t n, int C);
    void (*embedding_bwd)(lra_backend *be, lra_real *dtable, const lra_real *dout,
                          const int32_t *tokens, int64_t n, int C, int V);
    // out (B, C) = mean over the unmasked positions of inp (B, L, C); mask (B, L)
    // uint8 or NULL (all real). A row with no real position pools to 0.
    void (*meanpool_fwd)(lra_backend *be, lra_real *out, const lra_real *inp, const uint8_t *mask,
                         int B, int L, int C);
    void (*meanpool_bwd)(lra_backend *be, lra_real *dinp, const lra_real *dout, const uint8_t *mask,
                         int B, int L, int C);
    // Softmax cross-entropy with integer labels, mean over the batch.
    // Writes probs (B, K) and loss_per_example (B); returns the mean loss on the host.
    double (*xent_fwd)(lra_backend *be, lra_real *probs, lra_real *loss_per_example,
                       const lra_real *logits, const int32_t *labels, int B, int K);
    // dlogits (B, K) += dloss (probs - onehot(labels)) / B
    void (*xent_bwd)(lra_backend *be, lra_real *dlogits, const lra_real *probs,
                     const int32_t *labels, int B, int K, lra_real dloss);

    // ---- optimiser ------------------------------------------------------------
    // AdamW (Loshchilov & Hutter, Alg. 2) over params/grads/m/v (n), group by
    // group; t is the 1-based step for bias correction:
    //   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
    //   p -= lr (m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd p)
    // Elements in no group are left unchanged.
    void (*adamw_step)(lra_backend *be, lra_real *params, const lra_real *grads,
                       lra_real *m, lra_real *v, const lra_param_group *groups, int n_groups,
                       float beta1, float beta2, float eps, int64_t t);
    // Global-norm clipping: returns ||grads||_2 (before clipping); when it
    // exceeds max_norm > 0 the grads are scaled by max_norm / (norm + 1e-6).
    double (*clip_grad_norm)(lra_backend *be, lra_real *grads, int64_t n, double max_norm);

    // ---- S4D discretisation and diagonal SSM step (models.md 3, 0.4) ------------
    // From the S4D parameters to the inputs of vandermonde_fwd. Per channel h,
    // with s = h % S (S4's repeat of S shared copies over H) and c < CH:
    //   dt = softplus(inv_dt[h]) (exp(inv_dt[h]) when dt_exp),
    //   A_n = -exp(A_real[s][n]) - i A_imag[s][n], x_n = dt A_n,
    //   ZOH:      w = x,                             E = B[s][n] (e^x - 1) / A_n
    //   bilinear: w = log((1 + x/2) / (1 - x/2)),   E = B[s][n] dt / (1 - x/2)
    //   w_out[h][c][n] = w,  coef[h][c][n] = 2 C[c][h][n] E,
    // so K[h][c][l] = Re sum_n coef e^{l w} = 2 Re sum_n C E z^l with z = e^w
    // is the S4D kernel, and (H, CH) rows are the fftconv layout (CH = 2:
    // bidirectional). e^x - 1 in the expm1 form; all in double.
    void (*s4d_discretize_fwd)(lra_backend *be, lra_real *w, lra_real *coef,  // (H, CH, Nc)c each
                               const lra_real *inv_dt,  // (H)
                               const lra_real *A_real,  // (S, Nc)
                               const lra_real *A_imag,  // (S, Nc)
                               const lra_real *B,       // (S, Nc)c
                               const lra_real *C,       // (CH, H, Nc)c
                               int H, int S, int Nc, int CH, int bilinear, int dt_exp);
    // Gradients from dw, dcoef (H, CH, Nc)c (either may be NULL), accumulated;
    // the (S, ..) gradients sum over the channels sharing the row. Any output
    // gradient may be NULL.
    void (*s4d_discretize_bwd)(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                               lra_real *dB, lra_real *dC, const lra_real *dw, const lra_real *dcoef,
                               const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                               const lra_real *B, const lra_real *C,
                               int H, int S, int Nc, int CH, int bilinear, int dt_exp);
    // One recurrent step of R independent diagonal systems of N complex modes
    // (B examples): state (B, R, N)c <- z (R, N)c * state + u[b][r] (real,
    // every mode), then y (B, R) = Re sum_n coef[r][n] state[b][r][n]. With
    // z = e^w and coef from s4d_discretize_fwd this is S4D's step mode.
    void (*diag_ssm_step)(lra_backend *be, lra_real *y, lra_real *state, const lra_real *u, const lra_real *z,
                          const lra_real *coef, int B, int R, int N);
    // ---- S4 DPLR kernel (models.md 4) -------------------------------------------
    // K (H, CH, L) = the first L <= Lk taps of the length-Lk kernels of the
    // bilinear discretisation (step dt) of x' = (Lambda - P P^*) x + B u,
    // y_c = C~_c x, each system conjugate-extended (the Nc stored modes and their
    // conjugates: real kernels), rank 1. Per channel h, with s = h % S (S4's
    // repeat of the S shared copies over H; S divides H):
    //   dt = softplus(inv_dt[h]) (exp(inv_dt[h]) when dt_exp),
    //   Lambda_n = -exp(A_real[s][n]) - i A_imag[s][n], w_n = dt Lambda_n,
    //   at omega_m = e^{-2 pi i m / Lk}, m = 0..Lk/2, with a = 1 - omega, t = (1 + omega)/2,
    //   k_{xy} = dt sum_n [x_n y_n / (a - t w_n) + conj(x_n y_n) / (a - t conj(w_n))],
    //   Khat_c = k_{C_c B} - t k_{Q B} k_{C_c P} / (1 + t k_{Q P}),  Q = conj(P),
    //   K[h][c] = irfft(Khat_c, Lk)[0:L].
    // This is S4's 2/(1+omega) [k00 - k01 k10 / (1 + k11)] at z = 2(1-omega)/(1+omega)
    // with the factor t = (1+omega)/2 folded in, finite at omega = -1. Since
    // omega^Lk = 1, K[l] = C Abar^l Bbar for l < Lk with C = C~ (I - Abar^Lk)^-1:
    // C~ is S4's "C tilde" for the kernel length Lk. Sums in double.
    void (*s4_kernel_fwd)(lra_backend *be, lra_real *K,
                          const lra_real *inv_dt,  // (H)
                          const lra_real *A_real,  // (S, Nc)
                          const lra_real *A_imag,  // (S, Nc)
                          const lra_real *P,       // (S, Nc)c
                          const lra_real *B,       // (S, Nc)c
                          const lra_real *C,       // (CH, H, Nc)c
                          int H, int S, int Nc, int CH, int Lk, int L, int dt_exp);
    // Gradients of all parameters from dK (H, CH, L) (taps >= L have gradient
    // 0), accumulated (+=); the (S, ..) gradients sum over the H/S channels that
    // share the row. Any gradient may be NULL.
    void (*s4_kernel_bwd)(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                          lra_real *dP, lra_real *dB, lra_real *dC, const lra_real *dK,
                          const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                          const lra_real *P, const lra_real *B, const lra_real *C,
                          int H, int S, int Nc, int CH, int Lk, int L, int dt_exp);
    // ---- LRU parameterisation (models.md 6) ---------------------------------------
    // From the LRU parameters to the operands of its projections and scan
    // (N complex modes, width H, CH = 1 or 2 directions):
    //   lambda (N)c:       lambda_n = exp(-exp(nu_log_n) + i exp(theta_log_n))
    //   Bw (N, 2, H):      Bw[n][0] = exp(gamma_log_n) B_re[n],  Bw[n][1] = exp(gamma_log_n) B_im[n]
    //   Cw (H, CH, N, 2):  Cw[h][c][n] = (C_re[h][c N + n], -C_im[h][c N + n])
    // so that, for real u (R, H), u Bw^T (as (2N, H)) is b (R, N)c = B_norm u,
    // and for states x (R, N)c of direction c, x Cw[:, c]^T (as (H, 2N) rows,
    // row stride 2 CH N) is Re(C_c x). C_re, C_im are (H, CH N): the second
    // direction's N columns follow the first's.
    void (*lru_params_fwd)(lra_backend *be, lra_real *lambda, lra_real *Bw, lra_real *Cw,
                           const lra_real *nu_log, const lra_real *theta_log,  // (N) each
                           const lra_real *gamma_log,                          // (N)
                           const lra_real *B_re, const lra_real *B_im,         // (N, H) each
                           const lra_real *C_re, const lra_real *C_im,         // (H, CH N) each
                           int N, int H, int CH);
    // Gradients from dlambda (N)c, dBw (N, 2, H), dCw (H, CH, N, 2) (any may be
    // NULL), accumulated (+=); any output gradient may be NULL.
    void (*lru_params_bwd)(lra_backend *be, lra_real *dnu_log, lra_real *dtheta_log, lra_real *dgamma_log,
                           lra_real *dB_re, lra_real *dB_im, lra_real *dC_re, lra_real *dC_im,
                           const lra_real *dlambda, const lra_real *dBw, const lra_real *dCw,
                           const lra_real *nu_log, const lra_real *theta_log, const lra_real *gamma_log,
                           const lra_real *B_re, const lra_real *B_im, int N, int H, int CH);
    // ---- depthwise causal convolution with short filters (Hyena, models.md 8) ----
    // y (B, L, C): y[b][t][c] = bias[c] + sum_{j<K} w[c][j] x[b][t-(K-1)+j][c],
    // x = 0 before t = 0: PyTorch Conv1d(C, C, K, groups=C, padding=K-1) on the
    // (B, C, L) view with the output truncated to its first L samples; w (C, K)
    // is its weight (C, 1, K), bias (C) may be NULL.
    void (*dwconv_fwd)(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *w, const lra_real *bias,
                       int B, int L, int C, int K);
    // dx (B, L, C) += dL/dx, dw (C, K) += sum_{b,t} dy[b][t][c] x[b][t-(K-1)+j][c],
    // dbias (C) += sum_{b,t} dy; any gradient may be NULL.
    void (*dwconv_bwd)(lra_backend *be, lra_real *dx, lra_real *dw, lra_real *dbias, const lra_real *dy,
                       const lra_real *x, const lra_real *w, int B, int L, int C, int K);
    // ---- S5 discretisation (models.md 5, 0.4) ------------------------------------
    // Per mode n < Pc: Lambda = Re + i Lambda_im[n] with Re = Lambda_re[n], or
    // min(Lambda_re[n], -1e-4) when clip (zero gradient where clipped);
    // dt = exp(log_step[n]), x = dt Lambda;
    //   ZOH:      Lbar = e^x,                   phi = (e^x - 1)/Lambda
    //   bilinear: Lbar = (1 + x/2)/(1 - x/2),   phi = dt/(1 - x/2)
    //   abar[n] = conj(Lbar),  bbar[h][n] = conj(phi B[n][h]).
    // The conjugates make the S5 layer real GEMMs of real views: the state
    // xc = conj(x) of xc_t = abar xc_{t-1} + bbar^T u_t (b = u (B L, H) times
    // bbar (H, 2 Pc)) gives Re(C x) = sum over the real view of C (H, Pc)c
    // times the real view of xc. e^x - 1 in the expm1 form; all in double.
    void (*s5_discretize_fwd)(lra_backend *be, lra_real *abar,  // (Pc)c
                              lra_real *bbar,                   // (H, Pc)c
                              const lra_real *Lambda_re,        // (Pc)
                              const lra_real *Lambda_im,        // (Pc)
                              const lra_real *log_step,         // (Pc)
                              const lra_real *B,                // (Pc, H)c
                              int Pc, int H, int bilinear, int clip);
    // Gradients from dabar (Pc)c and dbbar (H, Pc)c (the gradients of the
    // conjugated outputs; either may be NULL), accumulated (+=); any output
    // gradient may be NULL.
    void (*s5_discretize_bwd)(lra_backend *be, lra_real *dLambda_re, lra_real *dLambda_im, lra_real *dlog_step,
                              lra_real *dB, const lra_real *dabar, const lra_real *dbbar,
                              const lra_real *Lambda_re, const lra_real *Lambda_im, const lra_real *log_step,
                              const lra_real *B, int Pc, int H, int bilinear, int clip);
    // ---- MEGA (models.md 7) ---------------------------------------------------------
    // Damped EMA kernel of R = CH*H rows of N dims (row r = c*H + h: c = 0 the
    // forward, c = 1 the backward direction, MEGA's `move` parameters of shape
    // (R, N, 1) and (R, N)). p = sigmoid(delta), q = 1 - p sigmoid(alpha),
    //   k_r[l] = scale sum_n gamma[r][n] beta[r][n] p q^l   for l < Lk (0 for Lk <= l < L),
    // written as the fftconv kernel: CH = 1: K (H, L) = k_h; CH = 2: the
    // two-sided LRA_CONV_BIDIRECTIONAL layout K (H, 2, L) of MEGA's
    //   y_t = sum_{j<=t} k_h[j] u_{t-j} + sum_{s>=0} k_{H+h}[s] u_{t+s}
    // (lag 0 counted by both halves): K[h][0][l] = k_h[l] + [l = 0] k_{H+h}[0],
    // K[h][1][i] = k_{H+h}[i+1] (K[h][1][L-1] = 0). Powers and sums in double.
    void (*ema_kernel_fwd)(lra_backend *be, lra_real *K, const lra_real *delta, const lra_real *alpha,
                           const lra_real *beta, const lra_real *gamma,  // (R, N) each
                           int H, int N, int CH, int Lk, int L, lra_real scale);
    // Gradients of the four parameter tensors from dK (layout of the forward),
    // accumulated (+=); any gradient may be NULL.
    void (*ema_kernel_bwd)(lra_backend *be, lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma,
                           const lra_real *dK, const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                           const lra_real *gamma, int H, int N, int CH, int Lk, int L, lra_real scale);
    // MEGA's single-head attention weights over B*NK blocks of C positions
    // (sequence position k*C + i of block k), from the raw scores S = Q K^T
    // (B, NK, C, C), the relative bias w (2M - 1), b_ij = w[M - 1 + j - i]
    // (C <= M), and the key mask (B, NK*C) uint8 (1 = real; NULL = all real):
    //   kind 0 softmax: A_i = softmax_j(scale S_ij + b_ij) over the real keys of
    //                   the block (over all of its keys when none is real);
    //   kind 1 laplace: A_ij = m_j f(S_ij / n + b_ij), n = max(1, real keys of
    //                   the block), f(x) = (1 + erf((x - mu) / (sigma sqrt 2))) / 2,
    //                   mu = sqrt(1/2), sigma = sqrt(1/(4 pi)) (MEGA's 0.707107, 0.282095).
    // A (B, NK, C, C) is written (=).
    void (*mega_attn_fwd)(lra_backend *be, lra_real *A, const lra_real *S, const lra_real *w, const uint8_t *mask,
                          int B, int NK, int C, int M, lra_real scale, int kind);
    // dS (B, NK, C, C) += dL/dS and dw (2M - 1) += dL/dw from dA, with A and S
    // of the forward. Either gradient may be NULL.
    void (*mega_attn_bwd)(lra_backend *be, lra_real *dS, lra_real *dw, const lra_real *dA, const lra_real *A,
                          const lra_real *S, const lra_real *w, const uint8_t *mask,
                          int B, int NK, int C, int M, lra_real scale, int kind);
};

// ---- registry ----------------------------------------------------------------

// Creates the backend called `name` ("cpu", "cuda"). n_threads <= 0 means all
// cores (CPU). On failure returns NULL and says why in err: an unknown name
// lists the known ones; "cuda" in a build without CUDA says how to build it.
lra_backend *lra_backend_init(const char *name, int n_threads, lra_err *err);
void         lra_backend_free(lra_backend *be);

// Names of the backends this binary knows, and whether each was compiled in.
int          lra_backend_count(void);
const char  *lra_backend_name(int i);
int          lra_backend_available(const char *name);

// Ops of the table, by name, for "missing op" reports.
int          lra_backend_op_count(void);
const char  *lra_backend_op_name(int i);
int          lra_backend_has_op(const lra_backend *be, const char *op);
// Writes the names of NULL entries into names (up to cap); returns how many.
int          lra_backend_missing(const lra_backend *be, const char **names, int cap);

#ifdef __cplusplus
}
#endif
#endif // LRA_BACKEND_H
