// demo.c: a small long-range experiment built only from backend ops, to show
// the whole compute path working end to end until the full model and harness
// exist: a one-layer long-convolution classifier learns a task whose label is
// decided by the first token of a sequence of length L.
//
// Task ("first token"): vocabulary V = 8; position 0 holds the class token
// c in {0..3}; positions 1..n-1 are noise tokens from {4..7}; the length n is
// uniform in [L/2, L], the rest is padding (mask 0). K = 4 classes. Example i
// of split s is a pure function of (seed, s, i).
//
// Model: x = Embed(tokens) (B, L, D) -> permute (B, D, L) -> y = k * x, a
// causal FFT convolution with one learned length-L kernel per channel ->
// permute (B, L, D) -> GELU -> masked mean over L -> logits = W h + b ->
// softmax cross-entropy; AdamW with global-norm clipping.
#include "demo.h"
#include "progress.h"

#include <math.h>
#include <string.h>

#define DEMO_V 8
#define DEMO_K 4

typedef struct {
    lra_backend *be;
    int B, L, D;
    // parameters, gradients and AdamW state: one flat buffer each
    int64_t n_params;
    lra_real *params, *grads, *adam_m, *adam_v;
    lra_real *emb, *kern, *W, *bias;       // views into params
    lra_real *demb, *dkern, *dW, *dbias;   // views into grads
    // activations and their gradients, (B, L, D) unless noted
    lra_real *x, *xt, *yt, *y, *a, *h, *logits, *probs, *lpe;
    lra_real *da, *dyt, *dxt, *dx, *dh, *dlogits;
    int32_t *tokens, *labels;  // backend memory
    uint8_t *mask;
} demo_model;

// One example: tokens (L), mask (L), label.
static void demo_example(uint64_t seed, int split, int64_t index, int L, int32_t *tok, uint8_t *mask,
                         int32_t *label) {
    uint64_t s = lra_mix64(seed ^ lra_mix64(((uint64_t)split << 56) ^ (uint64_t)index));
    int n = L / 2 + (int)(lra_rand_bits(s, 0) % (uint64_t)(L - L / 2 + 1));
    if (n < 1) n = 1;
    *label = (int32_t)(lra_rand_bits(s, 1) % DEMO_K);
    for (int t = 0; t < L; t++) {
        tok[t] = t == 0 ? *label : t < n ? 4 + (int32_t)(lra_rand_bits(s, 2 + (uint64_t)t) % 4) : 0;
        mask[t] = t < n;
    }
}

static void *demo_alloc(demo_model *m, size_t bytes, int *failed, lra_err *err) {
    if (*failed) return NULL;
    void *p = m->be->alloc(m->be, bytes, err);
    if (!p) *failed = 1;
    return p;
}

static void demo_free(demo_model *m) {
    void *bufs[] = { m->params, m->grads, m->adam_m, m->adam_v, m->x, m->xt, m->yt, m->y, m->a, m->h,
                     m->logits, m->probs, m->lpe, m->da, m->dyt, m->dxt, m->dx, m->dh, m->dlogits,
                     m->tokens, m->labels, m->mask };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) m->be->free(m->be, bufs[i]);
}

static int demo_build(demo_model *m, const lra_demo_config *cfg, lra_err *err) {
    int B = m->B = cfg->batch, L = m->L = cfg->length, D = m->D = cfg->width;
    int64_t n_emb = (int64_t)DEMO_V * D, n_kern = (int64_t)D * L, n_W = (int64_t)DEMO_K * D;
    m->n_params = n_emb + n_kern + n_W + DEMO_K;
    size_t P = sizeof(lra_real) * (size_t)m->n_params, A = sizeof(lra_real) * (size_t)B * L * D;
    int failed = 0;
    m->params = demo_alloc(m, P, &failed, err);
    m->grads = demo_alloc(m, P, &failed, err);
    m->adam_m = demo_alloc(m, P, &failed, err);
    m->adam_v = demo_alloc(m, P, &failed, err);
    lra_real **acts[] = { &m->x, &m->xt, &m->yt, &m->y, &m->a, &m->da, &m->dyt, &m->dxt, &m->dx };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) *acts[i] = demo_alloc(m, A, &failed, err);
    size_t BD = sizeof(lra_real) * (size_t)B * D, BK = sizeof(lra_real) * (size_t)B * DEMO_K;
    m->h = demo_alloc(m, BD, &failed, err);
    m->dh = demo_alloc(m, BD, &failed, err);
    m->logits = demo_alloc(m, BK, &failed, err);
    m->probs = demo_alloc(m, BK, &failed, err);
    m->dlogits = demo_alloc(m, BK, &failed, err);
    m->lpe = demo_alloc(m, sizeof(lra_real) * (size_t)B, &failed, err);
    m->tokens = demo_alloc(m, sizeof(int32_t) * (size_t)B * L, &failed, err);
    m->labels = demo_alloc(m, sizeof(int32_t) * (size_t)B, &failed, err);
    m->mask = demo_alloc(m, (size_t)B * L, &failed, err);
    if (failed) return err->code;
    m->emb = m->params; m->kern = m->emb + n_emb; m->W = m->kern + n_kern; m->bias = m->W + n_W;
    m->demb = m->grads; m->dkern = m->demb + n_emb; m->dW = m->dkern + n_kern; m->dbias = m->dW + n_W;

    // init on the host, then upload: embedding N(0,1)-like uniform, kernel
    // decaying along the lag, W uniform(+-1/sqrt(D)), bias 0
    lra_real *host = malloc(P);
    if (!host) return lra_err_set(err, LRA_ENOMEM, "demo: out of host memory");
    for (int64_t i = 0; i < n_emb; i++) host[i] = (lra_real)(2 * lra_rand_uniform(cfg->seed, (uint64_t)i) - 1);
    for (int d = 0; d < D; d++)
        for (int l = 0; l < L; l++) {
            double u = 2 * lra_rand_uniform(cfg->seed + 1, (uint64_t)(d * L + l)) - 1;
            host[n_emb + (int64_t)d * L + l] = (lra_real)(u * exp(-l / (0.1 * L + 1)) / sqrt(1 + l));
        }
    for (int64_t i = 0; i < n_W; i++)
        host[n_emb + n_kern + i] = (lra_real)((2 * lra_rand_uniform(cfg->seed + 2, (uint64_t)i) - 1) / sqrt(D));
    for (int k = 0; k < DEMO_K; k++) host[n_emb + n_kern + n_W + k] = 0;
    m->be->upload(m->be, m->params, host, P);
    free(host);
    m->be->zero(m->be, m->adam_m, P);
    m->be->zero(m->be, m->adam_v, P);
    return LRA_OK;
}

// Loads examples [first, first + B) of a split into backend memory.
static void demo_load_batch(demo_model *m, uint64_t seed, int split, int64_t first, int32_t *h_labels) {
    int B = m->B, L = m->L;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)B * L);
    uint8_t *mask = malloc((size_t)B * L);
    LRA_ASSERT(tok && mask);
    for (int b = 0; b < B; b++) demo_example(seed, split, first + b, L, tok + (int64_t)b * L, mask + (int64_t)b * L, &h_labels[b]);
    m->be->upload(m->be, m->tokens, tok, sizeof(int32_t) * (size_t)B * L);
    m->be->upload(m->be, m->mask, mask, (size_t)B * L);
    m->be->upload(m->be, m->labels, h_labels, sizeof(int32_t) * (size_t)B);
    free(tok);
    free(mask);
}

static double demo_forward(demo_model *m) {
    lra_backend *be = m->be;
    int B = m->B, L = m->L, D = m->D;
    be->embedding_fwd(be, m->x, m->tokens, m->emb, (int64_t)B * L, D);
    be->permute_0213(be, m->xt, m->x, B, L, D, 1);                  // (B, D, L)
    be->fftconv_fwd(be, m->yt, m->xt, m->kern, B, D, L, LRA_CONV_CAUSAL);
    be->permute_0213(be, m->y, m->yt, B, D, L, 1);                  // (B, L, D)
    be->act_fwd(be, m->a, m->y, (int64_t)B * L * D, LRA_ACT_GELU_TANH);
    be->meanpool_fwd(be, m->h, m->a, m->mask, B, L, D);
    be->gemm(be, 0, 1, B, DEMO_K, D, 1, m->h, D, 0, m->W, D, 0, 0, m->logits, DEMO_K, 0, 1);
    be->bias_add(be, m->logits, m->bias, B, DEMO_K);
    return be->xent_fwd(be, m->probs, m->lpe, m->logits, m->labels, B, DEMO_K);
}

static void demo_backward(demo_model *m) {
    lra_backend *be = m->be;
    int B = m->B, L = m->L, D = m->D;
    int64_t A = (int64_t)B * L * D;
    be->zero(be, m->grads, sizeof(lra_real) * (size_t)m->n_params);
    lra_real *zero_bufs[] = { m->dlogits, m->dh, m->da, m->dyt, m->dxt, m->dx };
    size_t sizes[] = { (size_t)B * DEMO_K, (size_t)B * D, (size_t)A, (size_t)A, (size_t)A, (size_t)A };
    for (int i = 0; i < 6; i++) be->zero(be, zero_bufs[i], sizeof(lra_real) * sizes[i]);
    be->xent_bwd(be, m->dlogits, m->probs, m->labels, B, DEMO_K, 1);
    // logits = h W^T + b: dW += dlogits^T h, dh += dlogits W, db += colsum
    be->gemm(be, 1, 0, DEMO_K, D, B, 1, m->dlogits, DEMO_K, 0, m->h, D, 0, 1, m->dW, D, 0, 1);
    be->gemm(be, 0, 0, B, D, DEMO_K, 1, m->dlogits, DEMO_K, 0, m->W, D, 0, 1, m->dh, D, 0, 1);
    be->sum_rows(be, m->dbias, m->dlogits, B, DEMO_K);
    be->meanpool_bwd(be, m->da, m->dh, m->mask, B, L, D);
    be->act_bwd(be, m->dx, m->da, m->y, A, LRA_ACT_GELU_TANH);      // dx holds dy (B, L, D) here
    be->permute_0213(be, m->dyt, m->dx, B, L, D, 1);
    be->fftconv_bwd(be, m->dxt, m->dkern, m->dyt, m->xt, m->kern, B, D, L, LRA_CONV_CAUSAL);
    be->permute_0213(be, m->dx, m->dxt, B, D, L, 1);
    be->embedding_bwd(be, m->demb, m->dx, m->tokens, (int64_t)B * L, D, DEMO_V);
}

static int demo_argmax(const lra_real *p, int K) {
    int best = 0;
    for (int k = 1; k < K; k++) best = p[k] > p[best] ? k : best;
    return best;
}

// Accuracy of the current parameters on n examples of a split.
static double demo_evaluate(demo_model *m, uint64_t seed, int split, int n) {
    int correct = 0, seen = 0, B = m->B;
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)B);
    lra_real *probs = malloc(sizeof(lra_real) * (size_t)B * DEMO_K);
    LRA_ASSERT(labels && probs);
    for (int64_t first = 0; seen < n; first += B) {
        demo_load_batch(m, seed, split, first, labels);
        demo_forward(m);
        m->be->download(m->be, probs, m->probs, sizeof(lra_real) * (size_t)B * DEMO_K);
        for (int b = 0; b < B && seen < n; b++, seen++) correct += demo_argmax(probs + b * DEMO_K, DEMO_K) == labels[b];
    }
    free(labels);
    free(probs);
    return (double)correct / n;
}

void lra_demo_defaults(lra_demo_config *cfg) {
    *cfg = (lra_demo_config){ .backend = "cpu", .threads = 0, .steps = 400, .batch = 16, .length = 1024,
                              .width = 16, .eval_size = 512, .lr = 2e-2f, .seed = 1 };
}

int lra_demo_run(const lra_demo_config *cfg, lra_err *err) {
    lra_backend *be = lra_backend_init(cfg->backend, cfg->threads, err);
    if (!be) return err->code;
    static const char *const needed[] = { "embedding_fwd", "embedding_bwd", "permute_0213", "fftconv_fwd",
                                          "fftconv_bwd", "act_fwd", "act_bwd", "meanpool_fwd", "meanpool_bwd",
                                          "gemm", "bias_add", "sum_rows", "xent_fwd", "xent_bwd", "adamw_step",
                                          "clip_grad_norm" };
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        if (!lra_backend_has_op(be, needed[i])) {
            lra_err_set(err, LRA_EUNSUPPORTED, "backend '%s' lacks op %s (needed by the demo)", be->name, needed[i]);
            lra_backend_free(be);
            return err->code;
        }
    }
    demo_model m = { .be = be };
    printf("lra demo: first-token task, L=%d, V=%d, K=%d; model: embedding -> causal FFT long conv -> GELU -> "
           "masked mean -> linear, D=%d\n", cfg->length, DEMO_V, DEMO_K, cfg->width);
    printf("backend %s on %s, precision %s, batch %d, %d steps, AdamW lr %g\n", be->name, be->device,
           LRA_REAL_NAME, cfg->batch, cfg->steps, (double)cfg->lr);
    int rc = demo_build(&m, cfg, err);
    if (rc == LRA_OK) {
        be->mem_reset_peak(be);
        double acc0 = demo_evaluate(&m, cfg->seed, 1, cfg->eval_size);
        printf("step %4d  val acc %.3f (chance %.3f)\n", 0, acc0, 1.0 / DEMO_K);
        int32_t *labels = malloc(sizeof(int32_t) * (size_t)cfg->batch);
        lra_param_group group = { 0, m.n_params, cfg->lr, 0.0f };
        double t0 = lra_now(), loss_avg = 0;
        for (int step = 1; step <= cfg->steps; step++) {
            demo_load_batch(&m, cfg->seed, 0, (int64_t)(step - 1) * cfg->batch, labels);
            double loss = demo_forward(&m);
            if (!isfinite(loss)) {
                rc = lra_err_set(err, LRA_EINVAL, "demo: loss is %g at step %d", loss, step);
                break;
            }
            demo_backward(&m);
            be->clip_grad_norm(be, m.grads, m.n_params, 1.0);
            be->adamw_step(be, m.params, m.grads, m.adam_m, m.adam_v, &group, 1, 0.9f, 0.999f, 1e-8f, step);
            loss_avg += loss;
            if (step % 25 == 0 || step == cfg->steps) {
                be->sync(be);
                double dt = lra_now() - t0;
                printf("step %4d  train loss %.4f  %.0f tokens/s", step, loss_avg / (step % 25 ? step % 25 : 25),
                       (double)step * cfg->batch * cfg->length / dt);
                if (step % 100 == 0 && step < cfg->steps) {  // evaluation time is not counted in tokens/s
                    double te = lra_now();
                    printf("  val acc %.3f", demo_evaluate(&m, cfg->seed, 1, cfg->eval_size));
                    t0 += lra_now() - te;
                }
                printf("\n");
                fflush(stdout);
                loss_avg = 0;
            }
        }
        free(labels);
        if (rc == LRA_OK) {
            double wall = lra_now() - t0;
            double val = demo_evaluate(&m, cfg->seed, 1, cfg->eval_size);
            double test = demo_evaluate(&m, cfg->seed, 2, cfg->eval_size);
            lra_mem_stats ms;
            be->mem_stats(be, &ms);
            printf("final val accuracy %.3f, final test accuracy %.3f (%d examples each)\n", val, test,
                   cfg->eval_size);
            printf("training time %.2f s, %.0f tokens/s, peak backend memory %.2f MiB, peak RSS %.1f MiB\n", wall,
                   (double)cfg->steps * cfg->batch * cfg->length / wall, ms.bytes_peak / 1048576.0,
                   ms.host_rss_peak / 1048576.0);
        }
    }
    demo_free(&m);
    lra_backend_free(be);
    return rc;
}
