// model.c: builds the LRA model (encoder, blocks, head; model.h), lays out
// parameters, gradients, AdamW moments and activations in a few arenas, and
// runs forward, backward and the optimiser step.
#include "block.h"

#include <math.h>
#include <string.h>

enum { SITE_INPUT = 11 };

static void zero(lra_backend *be, void *x, int64_t n) { be->zero(be, x, (size_t)n * sizeof(lra_real)); }

static int n_parts(const lra_model *m) {
    return m->task.n_inputs == 1 ? 1 : m->cfg.combine == LRA_COMBINE_NLI ? 4 : 2;
}
static int has_cls(const lra_model *m) { return m->cfg.pool == LRA_POOL_CLS; }

// ---- parameter specs ---------------------------------------------------------------

static int top_spec(lra_param_spec *out, int n, const char *name, lra_group g, int ndim, const int64_t *shape) {
    return lra_spec_set(out, n, name, g, ndim, shape);
}

// Every spec in order: encoder, positions, CLS, blocks, final norm, head.
static int model_specs(lra_model *m, lra_param_spec *out) {
    const lra_model_config *c = &m->cfg;
    int D = c->d_model, n = 0;
    m->p_encoder = n;
    if (m->task.scalar_input) {
        n = top_spec(out, n, "encoder.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, 1));
        n = top_spec(out, n, "encoder.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(D));
    } else {
        n = top_spec(out, n, "encoder.weight", LRA_GROUP_NO_DECAY, 2, LRA_SHAPE(m->task.vocab, D));
    }
    m->p_pos = c->pos == LRA_POS_LEARNED ? n : -1;
    if (c->pos == LRA_POS_LEARNED) n = top_spec(out, n, "pos_embedding", LRA_GROUP_NO_DECAY, 2, LRA_SHAPE(m->L, D));
    m->p_cls = has_cls(m) ? n : -1;
    if (has_cls(m)) n = top_spec(out, n, "cls", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(D));
    for (int i = 0; i < c->n_layers; i++) n = lra_block_specs(m, &m->blocks[i], out, n);
    m->p_final = c->final_norm && c->norm.kind != LRA_NORM_NONE ? n : -1;
    if (m->p_final >= 0) n = lra_norm_specs(&c->norm, D, "final_norm.", out, n);
    m->p_head = n;
    int in = n_parts(m) * D;
    for (int j = 0; j <= c->n_head_hidden; j++) {
        int o = j < c->n_head_hidden ? c->head_hidden[j] : m->task.n_classes;
        char name[LRA_PARAM_NAME_MAX];
        snprintf(name, sizeof name, "head.%d.weight", j);
        n = top_spec(out, n, name, LRA_GROUP_DECAY, 2, LRA_SHAPE(o, in));
        snprintf(name, sizeof name, "head.%d.bias", j);
        n = top_spec(out, n, name, LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(o));
        in = o;
    }
    return n;
}

static void sinusoid_table(lra_real *pe, int L, int D) {
    // pe[p, 2i] = sin(p / 10000^(2i/D)), pe[p, 2i+1] = cos(...)  (lra.md 1.7)
    for (int p = 0; p < L; p++)
        for (int i = 0; i < D; i++) {
            double freq = pow(10000.0, -(double)(i / 2 * 2) / D);
            pe[(int64_t)p * D + i] = (lra_real)(i % 2 ? cos(p * freq) : sin(p * freq));
        }
}

static void model_init(const lra_model *m, lra_real *const *host, uint64_t seed) {
    const lra_model_config *c = &m->cfg;
    int D = c->d_model;
    lra_init_rng r = lra_init_rng_new(seed, 0xE4C0);
    if (m->task.scalar_input) lra_linear_init_fill(host[m->p_encoder], host[m->p_encoder + 1], 1, D, LRA_LINEAR_TORCH, &r);
    else lra_init_normal(host[m->p_encoder], (int64_t)m->task.vocab * D, &r, c->embed_std);
    if (m->p_pos >= 0) lra_init_normal(host[m->p_pos], (int64_t)m->L * D, &r, 0.02);
    if (m->p_cls >= 0) lra_init_const(host[m->p_cls], D, 0);
    for (int i = 0; i < c->n_layers; i++) lra_block_init(m, &m->blocks[i], host, seed);
    if (m->p_final >= 0) lra_norm_init(&c->norm, D, host + m->p_final);
    lra_init_rng rh = lra_init_rng_new(seed, 0x4EAD);
    int in = n_parts(m) * D;
    for (int j = 0; j <= c->n_head_hidden; j++) {
        int o = j < c->n_head_hidden ? c->head_hidden[j] : m->task.n_classes;
        lra_linear_init_fill(host[m->p_head + 2 * j], host[m->p_head + 2 * j + 1], in, o, c->head_init, &rh);
        in = o;
    }
}

// ---- build -------------------------------------------------------------------------

static int alloc_real(lra_model *m, lra_real **p, int64_t n, lra_err *err) {
    *p = m->be->alloc(m->be, (size_t)(n > 0 ? n : 1) * sizeof(lra_real), err);
    if (!*p) return err && err->code ? err->code : LRA_ENOMEM;
    zero(m->be, *p, n > 0 ? n : 1);
    return LRA_OK;
}

// Head widths when head_hidden was left to the default (lra.md 1.9, models.md 1):
// Transformer: Dense(d_ffn) ReLU (two inputs: d_ffn, d_ffn/2); SSMs: none
// (two inputs: one hidden layer of width D with GELU).
static void resolve_head(lra_model_config *c, int n_inputs) {
    if (c->n_head_hidden >= 0) return;
    int attention = !strcmp(c->mixer, "attention"), F = c->d_ffn > 0 ? c->d_ffn : c->d_model;
    c->n_head_hidden = 0;
    if (attention) {
        c->head_hidden[c->n_head_hidden++] = F;
        if (n_inputs == 2) c->head_hidden[c->n_head_hidden++] = F / 2 > 0 ? F / 2 : 1;
    } else if (n_inputs == 2) {
        c->head_hidden[c->n_head_hidden++] = c->d_model;
    }
}

static int configure_mixers(lra_model *m, lra_err *err) {
    const lra_mixer_vtable *vt = lra_mixer_find(m->cfg.mixer, err);
    if (!vt) return err->code;
    for (int i = 0; i < m->cfg.n_layers; i++) {
        lra_block *b = &m->blocks[i];
        b->index = i;
        b->mixer.D = m->cfg.d_model;
        b->mixer.L_max = m->L;
        int rc = vt->configure(&b->mixer, m->cfg.mixer_kv, m->cfg.n_mixer_kv, err);
        if (rc) return rc;
        b->mixer.vt = vt;
    }
    return LRA_OK;
}

static int layout_params(lra_model *m, uint64_t seed, lra_err *err) {
    int n = model_specs(m, NULL);
    m->specs = calloc((size_t)n, sizeof *m->specs);
    m->p = calloc((size_t)n, sizeof *m->p);
    m->g = calloc((size_t)n, sizeof *m->g);
    lra_real **host = calloc((size_t)n, sizeof *host);
    if (!m->specs || !m->p || !m->g || !host) {
        free(host);
        return lra_err_set(err, LRA_ENOMEM, "model: out of host memory");
    }
    m->n_params = model_specs(m, m->specs);
    int64_t total = 0, trainable = 0;
    for (int i = 0; i < n; i++) {
        int64_t k = lra_spec_numel(&m->specs[i]);
        total += k;
        if (m->specs[i].group != LRA_GROUP_BUFFER) trainable += k;
    }
    m->n_real = total;
    m->n_trainable = trainable;
    lra_real *flat = calloc((size_t)(total > 0 ? total : 1), sizeof *flat);
    int rc = flat ? LRA_OK : lra_err_set(err, LRA_ENOMEM, "model: out of host memory");
    if (!rc) rc = alloc_real(m, &m->params, total, err);
    if (!rc) rc = alloc_real(m, &m->grads, total, err);
    if (!rc) rc = alloc_real(m, &m->adam_m, total, err);
    if (!rc) rc = alloc_real(m, &m->adam_v, total, err);
    if (!rc) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            host[i] = flat + off;
            m->p[i] = m->params + off;
            m->g[i] = m->specs[i].group == LRA_GROUP_BUFFER ? NULL : m->grads + off;
            off += lra_spec_numel(&m->specs[i]);
        }
        for (int i = 0; i < m->cfg.n_layers; i++) {  // mixers see their own slice of the tables
            lra_block *b = &m->blocks[i];
            int first = b->p_mixer;
            b->mixer.p = m->p + first;
            b->mixer.g = m->g + first;
            b->mixer.n_params = b->mixer.vt->param_specs(&b->mixer, NULL);
        }
        model_init(m, host, seed);
        m->be->upload(m->be, m->params, flat, (size_t)total * sizeof(lra_real));
    }
    free(flat);
    free(host);
    return rc;
}

// Activations: residual streams, per-block buffers, mixer buffers, head
// buffers; scratch: the largest temporaries of any layer.
static int layout_acts(lra_model *m, lra_err *err) {
    const lra_model_config *c = &m->cfg;
    int D = c->d_model, Bs = m->Bs_max, L = m->L, B = m->B_max, K = m->task.n_classes;
    int64_t RD = (int64_t)Bs * L * D;
    int widest = n_parts(m) * D;
    for (int j = 0; j < c->n_head_hidden; j++) widest = c->head_hidden[j] > widest ? c->head_hidden[j] : widest;
    for (int pass = 0; pass < 2; pass++) {
        lra_carve a = { pass ? m->arena : NULL, 0, pass ? m->arena_size : 0 };
        for (int i = 0; i <= c->n_layers; i++) {
            lra_real *x = lra_carve_take(&a, RD);
            if (pass) m->xs[i] = x;
        }
        for (int i = 0; i < c->n_layers; i++) {
            lra_block *b = &m->blocks[i];
            lra_real *ba = lra_carve_take(&a, lra_block_act_size(m, Bs, L));
            lra_real *ma = lra_carve_take(&a, b->mixer.vt->act_size(&b->mixer, Bs, L));
            if (pass) { b->act = ba; b->mixer.act = ma; }
        }
        lra_real *fo = m->p_final >= 0 ? lra_carve_take(&a, RD) : NULL;
        lra_real *fs = lra_carve_take(&a, lra_norm_stats_size(&c->norm, (int64_t)Bs * L, D));
        lra_real *pooled = lra_carve_take(&a, (int64_t)Bs * D);
        lra_real *feat = lra_carve_take(&a, (int64_t)n_parts(m) * B * D);
        lra_real *hb = lra_carve_take(&a, (int64_t)2 * LRA_MAX_HEAD_LAYERS * B * widest);
        lra_real *logits = lra_carve_take(&a, (int64_t)B * K), *probs = lra_carve_take(&a, (int64_t)B * K);
        lra_real *loss_ex = lra_carve_take(&a, B);
        lra_real *maskf = lra_carve_take(&a, (int64_t)Bs * L), *pmf = lra_carve_take(&a, (int64_t)Bs * L);
        lra_real *xin = m->task.scalar_input ? lra_carve_take(&a, (int64_t)Bs * L) : NULL;
        lra_real *pe = c->pos == LRA_POS_SINUSOIDAL ? lra_carve_take(&a, (int64_t)L * D) : NULL;
        if (!pass) {
            m->arena_size = a.used;
            int rc = alloc_real(m, &m->arena, a.used, err);
            if (rc) return rc;
            continue;
        }
        m->final_out = fo ? fo : m->xs[c->n_layers];
        m->final_stats = fs;
        m->pooled = pooled;
        m->feat = feat;
        m->head_act_buf = hb;
        m->logits = logits;
        m->probs = probs;
        m->loss_ex = loss_ex;
        m->maskf = maskf;
        m->poolmaskf = pmf;
        m->xin = xin;
        m->pe = pe;
    }
    // scratch: block temporaries, then the mixer's; head and stream gradients
    int64_t bs = lra_block_scratch_size(m, Bs, L), ms = 0;
    for (int i = 0; i < c->n_layers; i++) {
        int64_t s = m->blocks[i].mixer.vt->scratch_size(&m->blocks[i].mixer, Bs, L);
        ms = s > ms ? s : ms;
    }
    int64_t head = 2 * (int64_t)Bs * D + (int64_t)n_parts(m) * B * D + 2 * LRA_MAX_HEAD_LAYERS * (int64_t)B * widest +
                   (int64_t)B * K + 64 * 16;
    int64_t total = bs + ms + 2 * RD + head;
    int rc = alloc_real(m, &m->scratch, total, err);
    if (rc) return rc;
    for (int i = 0; i < c->n_layers; i++) m->blocks[i].mixer.scratch = m->scratch + bs;
    return LRA_OK;
}

static int alloc_inputs(lra_model *m, lra_err *err) {
    int64_t n = (int64_t)m->Bs_max * m->L;
    lra_backend *be = m->be;
    m->tokens = be->alloc(be, (size_t)n * sizeof(int32_t), err);
    m->labels = be->alloc(be, (size_t)m->B_max * sizeof(int32_t), err);
    m->mask = be->alloc(be, (size_t)n, err);
    m->poolmask = be->alloc(be, (size_t)n, err);
    if (!m->tokens || !m->labels || !m->mask || !m->poolmask)
        return err && err->code ? err->code : lra_err_set(err, LRA_ENOMEM, "model: out of memory");
    return LRA_OK;
}

static int check_task(const lra_model_config *c, const lra_model_task *t, int B_max, lra_err *err) {
    if (t->n_inputs < 1 || t->n_inputs > 2 || t->n_classes < 1 || t->seq_len < 1 || (!t->scalar_input && t->vocab < 1))
        return lra_err_set(err, LRA_EINVAL, "model: bad task shape (inputs %d, classes %d, length %d, vocab %d)",
                           t->n_inputs, t->n_classes, t->seq_len, t->vocab);
    if (B_max < 1) return lra_err_set(err, LRA_EINVAL, "model: batch size must be >= 1, got %d", B_max);
    if (c->n_layers > 0 && c->d_model < 1) return lra_err_set(err, LRA_EINVAL, "model: d_model must be >= 1");
    return LRA_OK;
}

int lra_model_build(lra_model *m, const lra_model_config *cfg, const lra_model_task *task, lra_backend *be,
                    int B_max, uint64_t seed, lra_err *err) {
    memset(m, 0, sizeof *m);
    int rc = check_task(cfg, task, B_max, err);
    if (rc) return rc;
    m->cfg = *cfg;
    m->task = *task;
    if (!task->scalar_input) {  // token inputs: the scalar normalisation is unused
        m->task.scalar_mean = 0;
        m->task.scalar_std = 1;
    }
    m->be = be;
    resolve_head(&m->cfg, task->n_inputs);
    m->B_max = B_max;
    m->Bs_max = B_max * task->n_inputs;
    m->L = task->seq_len + (cfg->pool == LRA_POOL_CLS);
    m->blocks = calloc((size_t)(cfg->n_layers > 0 ? cfg->n_layers : 1), sizeof *m->blocks);
    m->xs = calloc((size_t)cfg->n_layers + 1, sizeof *m->xs);
    if (!m->blocks || !m->xs) rc = lra_err_set(err, LRA_ENOMEM, "model: out of host memory");
    if (!rc) rc = configure_mixers(m, err);
    if (!rc) rc = layout_params(m, seed, err);
    if (!rc) rc = layout_acts(m, err);
    if (!rc) rc = alloc_inputs(m, err);
    if (!rc && m->pe) {
        lra_real *pe = malloc((size_t)m->L * m->cfg.d_model * sizeof *pe);
        if (!pe) rc = lra_err_set(err, LRA_ENOMEM, "model: out of host memory");
        else {
            sinusoid_table(pe, m->L, m->cfg.d_model);
            be->upload(be, m->pe, pe, (size_t)m->L * m->cfg.d_model * sizeof *pe);
            free(pe);
        }
    }
    if (rc) lra_model_free(m);
    return rc;
}

void lra_model_free(lra_model *m) {
    if (!m->be) return;
    lra_backend *be = m->be;
    for (int i = 0; m->blocks && i < m->cfg.n_layers; i++)
        if (m->blocks[i].mixer.vt && m->blocks[i].mixer.vt->free) m->blocks[i].mixer.vt->free(&m->blocks[i].mixer, be);
    void *dev[] = { m->params, m->grads, m->adam_m, m->adam_v, m->arena, m->scratch, m->tokens, m->labels, m->mask,
                    m->poolmask };
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) be->free(be, dev[i]);
    free(m->blocks);
    free(m->xs);
    free(m->specs);
    free(m->p);
    free(m->g);
    memset(m, 0, sizeof *m);
}

int lra_model_find_param(const lra_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->specs[i].name, name)) return i;
    return -1;
}

// ---- inputs --------------------------------------------------------------------------

// Host arrays of one batch in the model's layout: sequences (Bs = B n_inputs)
// ordered input-major (all first documents, then all second ones, as S4's
// retrieval decoder splits the batch), a CLS slot at position 0 when pooling
// by CLS; masks of real positions and of pooled positions.
static int upload_batch(lra_model *m, const lra_batch *b, lra_err *err) {
    int B = b->B, n_in = m->task.n_inputs, Ls = m->task.seq_len, L = m->L, off = has_cls(m);
    int Bs = B * n_in;
    int64_t n = (int64_t)Bs * L;
    int32_t *tok = calloc((size_t)n, sizeof *tok);
    uint8_t *mask = calloc((size_t)n, 1), *pmask = calloc((size_t)n, 1);
    lra_real *maskf = calloc((size_t)n, sizeof *maskf), *pmaskf = calloc((size_t)n, sizeof *pmaskf);
    lra_real *xin = m->xin ? calloc((size_t)n, sizeof *xin) : NULL;
    int rc = tok && mask && pmask && maskf && pmaskf && (xin || !m->xin) ? LRA_OK
                                                                       : lra_err_set(err, LRA_ENOMEM, "model: out of host memory");
    for (int e = 0; !rc && e < B; e++)
        for (int k = 0; k < n_in && !rc; k++) {
            int s = k * B + e, len = b->lengths[e * n_in + k];
            const int32_t *src = b->tokens + ((int64_t)e * n_in + k) * Ls;
            if (len < 0 || len > Ls) {
                rc = lra_err_set(err, LRA_EINVAL, "batch example %d input %d: length %d outside [0, %d]", e, k, len, Ls);
                break;
            }
            for (int l = 0; l < Ls; l++) {
                int32_t t = src[l];
                if (!m->task.scalar_input && (t < 0 || t >= m->task.vocab)) {
                    rc = lra_err_set(err, LRA_EINVAL, "batch example %d input %d position %d: token %d outside [0, %d)",
                                     e, k, l, t, m->task.vocab);
                    break;
                }
                int64_t at = (int64_t)s * L + off + l;
                tok[at] = t;
                if (xin) xin[at] = (lra_real)((t / 255.0 - m->task.scalar_mean) / m->task.scalar_std);
                mask[at] = l < len;
            }
            if (off) mask[(int64_t)s * L] = 1;
            for (int l = 0; l < L; l++) {
                int64_t at = (int64_t)s * L + l;
                switch (m->cfg.pool) {
                case LRA_POOL_MEAN: pmask[at] = mask[at]; break;
                case LRA_POOL_MEAN_ALL: pmask[at] = 1; break;
                case LRA_POOL_CLS: pmask[at] = l == 0; break;
                default: pmask[at] = len > 0 ? l == off + len - 1 : l == off; break;
                }
                maskf[at] = mask[at];
                pmaskf[at] = pmask[at];
            }
        }
    if (!rc) {
        lra_backend *be = m->be;
        m->padded = 0;
        for (int64_t i = 0; i < n; i++) m->padded |= !mask[i];
        be->upload(be, m->tokens, tok, (size_t)n * sizeof *tok);
        be->upload(be, m->mask, mask, (size_t)n);
        be->upload(be, m->poolmask, pmask, (size_t)n);
        be->upload(be, m->maskf, maskf, (size_t)n * sizeof *maskf);
        be->upload(be, m->poolmaskf, pmaskf, (size_t)n * sizeof *pmaskf);
        if (xin) be->upload(be, m->xin, xin, (size_t)n * sizeof *xin);
        if (b->labels) {
            for (int e = 0; e < B && !rc; e++)
                if (b->labels[e] < 0 || b->labels[e] >= m->task.n_classes)
                    rc = lra_err_set(err, LRA_EINVAL, "batch example %d: label %d outside [0, %d)", e, b->labels[e],
                                     m->task.n_classes);
            if (!rc) be->upload(be, m->labels, b->labels, (size_t)B * sizeof(int32_t));
        }
    }
    free(tok); free(mask); free(pmask); free(maskf); free(pmaskf); free(xin);
    return rc;
}

// A batch without padding passes no mask: multiplying by ones changes nothing,
// and the mixers skip the masking passes.
static lra_ctx model_ctx(const lra_model *m) {
    return (lra_ctx){ .be = m->be, .B = m->B * m->task.n_inputs, .L = m->L, .training = m->training,
                      .seed = m->seed, .mask = m->padded ? m->mask : NULL, .maskf = m->padded ? m->maskf : NULL };
}

static lra_ctx block_ctx(const lra_model *m, int i) {
    lra_ctx c = model_ctx(m);
    c.seed = lra_mix64(m->seed ^ lra_mix64(0xB10C + (uint64_t)i));
    return c;
}

// ---- encoder -------------------------------------------------------------------------

static void encoder_fwd(lra_model *m) {
    lra_backend *be = m->be;
    int D = m->cfg.d_model, L = m->L, Bs = m->B * m->task.n_inputs, off = has_cls(m);
    lra_real *x = m->xs[0];
    const lra_real *W = m->p[m->p_encoder];
    if (m->task.scalar_input) {
        lra_linear_fwd(be, x, m->xin, W, m->p[m->p_encoder + 1], (int64_t)Bs * L, 1, D);
    } else if (!off) {
        be->embedding_fwd(be, x, m->tokens, W, (int64_t)Bs * L, D);
    } else {
        for (int s = 0; s < Bs; s++)
            be->embedding_fwd(be, x + ((int64_t)s * L + 1) * D, m->tokens + (int64_t)s * L + 1, W, L - 1, D);
    }
    if (off)
        for (int s = 0; s < Bs; s++) be->copy(be, x + (int64_t)s * L * D, m->p[m->p_cls], (size_t)D * sizeof(lra_real));
    if (m->pe) be->bias_add(be, x, m->pe, Bs, L * D);
    if (m->p_pos >= 0) be->bias_add(be, x, m->p[m->p_pos], Bs, L * D);
    if (m->training && m->cfg.input_dropout > 0)
        be->dropout_fwd(be, x, x, Bs, L, D, m->cfg.input_dropout, lra_mix64(m->seed ^ SITE_INPUT), 0);
}

static void encoder_bwd(lra_model *m, const lra_real *dx, lra_real *tmp) {
    lra_backend *be = m->be;
    int D = m->cfg.d_model, L = m->L, Bs = m->B * m->task.n_inputs, off = has_cls(m);
    int64_t R = (int64_t)Bs * L;
    if (m->training && m->cfg.input_dropout > 0) {
        zero(be, tmp, R * D);
        be->dropout_bwd(be, tmp, dx, Bs, L, D, m->cfg.input_dropout, lra_mix64(m->seed ^ SITE_INPUT), 0);
        dx = tmp;
    }
    if (m->p_pos >= 0) be->sum_rows(be, m->g[m->p_pos], dx, Bs, L * D);
    if (off)
        for (int s = 0; s < Bs; s++) be->axpby(be, m->g[m->p_cls], 1, dx + (int64_t)s * L * D, 1, D);
    lra_real *dW = m->g[m->p_encoder];
    if (m->task.scalar_input && !off) {
        lra_linear_bwd(be, NULL, dW, m->g[m->p_encoder + 1], dx, m->xin, m->p[m->p_encoder], R, 1, D);
    } else if (m->task.scalar_input) {  // the CLS slot was overwritten: no encoder gradient there
        for (int s = 0; s < Bs; s++)
            lra_linear_bwd(be, NULL, dW, m->g[m->p_encoder + 1], dx + ((int64_t)s * L + 1) * D,
                           m->xin + (int64_t)s * L + 1, m->p[m->p_encoder], L - 1, 1, D);
    } else if (!off) {
        be->embedding_bwd(be, dW, dx, m->tokens, R, D, m->task.vocab);
    } else {
        for (int s = 0; s < Bs; s++)
            be->embedding_bwd(be, dW, dx + ((int64_t)s * L + 1) * D, m->tokens + (int64_t)s * L + 1, L - 1, D,
                              m->task.vocab);
    }
}

// ---- head ----------------------------------------------------------------------------

// Buffers of head layer j: pre-activation and activation (B, width).
static lra_real *head_pre(const lra_model *m, int j) {
    int w = n_parts(m) * m->cfg.d_model;
    for (int k = 0; k < m->cfg.n_head_hidden; k++) w = m->cfg.head_hidden[k] > w ? m->cfg.head_hidden[k] : w;
    return m->head_act_buf + (int64_t)2 * j * m->B_max * w;
}
static lra_real *head_post(const lra_model *m, int j) {
    int w = n_parts(m) * m->cfg.d_model;
    for (int k = 0; k < m->cfg.n_head_hidden; k++) w = m->cfg.head_hidden[k] > w ? m->cfg.head_hidden[k] : w;
    return m->head_act_buf + (int64_t)(2 * j + 1) * m->B_max * w;
}

// First head layer over the P parts (B, D) of feat: out = sum_p part_p W_p^T + b,
// W_p the columns [p D, (p+1) D) of W (O, P D). Equivalent to a Linear on the
// concatenation [part_0, ..., part_{P-1}] without building it.
static void head_first_fwd(lra_model *m, lra_real *out, int O) {
    lra_backend *be = m->be;
    int D = m->cfg.d_model, P = n_parts(m), B = m->B;
    const lra_real *W = m->p[m->p_head];
    for (int p = 0; p < P; p++)
        be->gemm(be, 0, 1, B, O, D, 1, m->feat + (int64_t)p * B * D, D, 0, W + (int64_t)p * D, P * D, 0, p ? 1 : 0,
                 out, O, 0, 1);
    be->bias_add(be, out, m->p[m->p_head + 1], B, O);
}

static void head_first_bwd(lra_model *m, lra_real *dfeat, const lra_real *dout, int O) {
    lra_backend *be = m->be;
    int D = m->cfg.d_model, P = n_parts(m), B = m->B;
    const lra_real *W = m->p[m->p_head];
    for (int p = 0; p < P; p++) {
        be->gemm(be, 1, 0, O, D, B, 1, dout, O, 0, m->feat + (int64_t)p * B * D, D, 0, 1, m->g[m->p_head] + (int64_t)p * D,
                 P * D, 0, 1);
        be->gemm(be, 0, 0, B, D, O, 1, dout, O, 0, W + (int64_t)p * D, P * D, 0, 1, dfeat + (int64_t)p * B * D, D, 0, 1);
    }
    be->sum_rows(be, m->g[m->p_head + 1], dout, B, O);
}

// feat parts from pooled (Bs, D): one input: [u]; two: [u, v] or [u, v, u - v, u * v].
static void combine_fwd(lra_model *m) {
    lra_backend *be = m->be;
    int64_t BD = (int64_t)m->B * m->cfg.d_model;
    const lra_real *u = m->pooled, *v = m->pooled + BD;
    be->copy(be, m->feat, m->pooled, (size_t)(m->task.n_inputs * BD) * sizeof(lra_real));
    if (n_parts(m) == 4) {
        be->copy(be, m->feat + 2 * BD, u, (size_t)BD * sizeof(lra_real));
        be->axpby(be, m->feat + 2 * BD, -1, v, 1, BD);
        be->mul(be, m->feat + 3 * BD, u, v, BD);
    }
}

// dpooled (zeroed) from dfeat; tmp holds B D reals.
static void combine_bwd(lra_model *m, lra_real *dpooled, const lra_real *dfeat, lra_real *tmp) {
    lra_backend *be = m->be;
    int64_t BD = (int64_t)m->B * m->cfg.d_model;
    const lra_real *u = m->pooled, *v = m->pooled + BD;
    be->axpby(be, dpooled, 1, dfeat, 1, m->task.n_inputs * BD);
    if (n_parts(m) == 4) {
        be->axpby(be, dpooled, 1, dfeat + 2 * BD, 1, BD);       // d(u - v)/du
        be->axpby(be, dpooled + BD, -1, dfeat + 2 * BD, 1, BD);  // d(u - v)/dv
        be->mul(be, tmp, dfeat + 3 * BD, v, BD);
        be->axpby(be, dpooled, 1, tmp, 1, BD);
        be->mul(be, tmp, dfeat + 3 * BD, u, BD);
        be->axpby(be, dpooled + BD, 1, tmp, 1, BD);
    }
}

static void head_fwd(lra_model *m) {
    lra_backend *be = m->be;
    const lra_model_config *c = &m->cfg;
    int nh = c->n_head_hidden, B = m->B;
    be->meanpool_fwd(be, m->pooled, m->final_out, m->poolmask, B * m->task.n_inputs, m->L, c->d_model);
    combine_fwd(m);
    const lra_real *in = NULL;
    int I = 0;
    for (int j = 0; j <= nh; j++) {
        int O = j < nh ? c->head_hidden[j] : m->task.n_classes;
        lra_real *out = j < nh ? head_pre(m, j) : m->logits;
        if (j == 0) head_first_fwd(m, out, O);
        else lra_linear_fwd(be, out, in, m->p[m->p_head + 2 * j], m->p[m->p_head + 2 * j + 1], B, I, O);
        if (j < nh) {
            be->act_fwd(be, head_post(m, j), out, (int64_t)B * O, c->head_act);
            in = head_post(m, j);
            I = O;
        }
    }
}

// Gradient of the stream after the last block (zeroed by the caller) from
// dlogits; tmp: head temporaries.
static void head_bwd(lra_model *m, lra_real *dfinal, const lra_real *dlogits, lra_real *tmp) {
    lra_backend *be = m->be;
    const lra_model_config *c = &m->cfg;
    int nh = c->n_head_hidden, B = m->B, D = c->d_model, Bs = B * m->task.n_inputs;
    int w = n_parts(m) * D;
    for (int k = 0; k < nh; k++) w = c->head_hidden[k] > w ? c->head_hidden[k] : w;
    lra_real *da = tmp, *dz = tmp + (int64_t)B * w, *dfeat = tmp + 2 * (int64_t)B * w;
    lra_real *dpooled = dfeat + (int64_t)n_parts(m) * B * D, *t = dpooled + (int64_t)Bs * D;
    const lra_real *dout = dlogits;
    for (int j = nh; j >= 0; j--) {
        int O = j < nh ? c->head_hidden[j] : m->task.n_classes;
        if (j < nh) {  // dz = act'(pre) * da
            zero(be, dz, (int64_t)B * O);
            be->act_bwd(be, dz, dout, head_pre(m, j), (int64_t)B * O, c->head_act);
            dout = dz;
        }
        if (j == 0) break;
        int I = c->head_hidden[j - 1];
        zero(be, da, (int64_t)B * I);
        lra_linear_bwd(be, da, m->g[m->p_head + 2 * j], m->g[m->p_head + 2 * j + 1], dout, head_post(m, j - 1),
                       m->p[m->p_head + 2 * j], B, I, O);
        dout = da;
    }
    int O0 = nh ? c->head_hidden[0] : m->task.n_classes;
    zero(be, dfeat, (int64_t)n_parts(m) * B * D);
    head_first_bwd(m, dfeat, dout, O0);
    zero(be, dpooled, (int64_t)Bs * D);
    combine_bwd(m, dpooled, dfeat, t);
    be->meanpool_bwd(be, dfinal, dpooled, m->poolmask, Bs, m->L, D);
}

// ---- forward, backward, step -----------------------------------------------------------

int lra_model_forward(lra_model *m, const lra_batch *b, int training, uint64_t seed, lra_err *err) {
    if (b->B < 1 || b->B > m->B_max)
        return lra_err_set(err, LRA_EINVAL, "model: batch of %d examples, built for 1..%d", b->B, m->B_max);
    int rc = upload_batch(m, b, err);
    if (rc) return rc;
    m->B = b->B;
    m->training = training;
    m->seed = seed;
    m->have_labels = b->labels != NULL;
    encoder_fwd(m);
    for (int i = 0; i < m->cfg.n_layers; i++) {
        lra_ctx ctx = block_ctx(m, i);
        rc = lra_block_forward(m, &m->blocks[i], &ctx, m->xs[i + 1], m->xs[i], err);
        if (rc) return rc;
    }
    lra_ctx ctx = model_ctx(m);
    int64_t R = (int64_t)ctx.B * m->L;
    if (m->p_final >= 0)
        lra_norm_fwd(m->be, &m->cfg.norm, m->p + m->p_final, m->final_out, m->final_stats, m->xs[m->cfg.n_layers], R,
                     m->cfg.d_model, training);
    head_fwd(m);
    m->loss = 0;
    if (b->labels)
        m->loss = m->be->xent_fwd(m->be, m->probs, m->loss_ex, m->logits, m->labels, m->B, m->task.n_classes);
    return LRA_OK;
}

void lra_model_zero_grad(lra_model *m) { zero(m->be, m->grads, m->n_real); }

int lra_model_backward(lra_model *m, lra_err *err) {
    if (!m->have_labels) return lra_err_set(err, LRA_EINVAL, "model: backward needs a forward pass with labels");
    lra_backend *be = m->be;
    const lra_model_config *c = &m->cfg;
    int D = c->d_model, K = m->task.n_classes;
    lra_ctx ctx = model_ctx(m);
    int64_t R = (int64_t)ctx.B * m->L, RD = R * D;
    // stream gradients and head temporaries live after the layers' scratch
    int64_t bs = lra_block_scratch_size(m, m->Bs_max, m->L), ms = 0;
    for (int i = 0; i < c->n_layers; i++) {
        int64_t s = m->blocks[i].mixer.vt->scratch_size(&m->blocks[i].mixer, m->Bs_max, m->L);
        ms = s > ms ? s : ms;
    }
    lra_real *gA = m->scratch + bs + ms, *gB = gA + (int64_t)m->Bs_max * m->L * D, *htmp = gB + (int64_t)m->Bs_max * m->L * D;
    lra_real *dlogits = htmp;
    htmp += ((int64_t)m->B_max * K + 15) / 16 * 16;
    zero(be, dlogits, (int64_t)m->B * K);
    be->xent_bwd(be, dlogits, m->probs, m->labels, m->B, K, 1);
    lra_real *dfinal = m->p_final >= 0 ? gB : gA;
    zero(be, dfinal, RD);
    head_bwd(m, dfinal, dlogits, htmp);
    if (m->p_final >= 0) {
        zero(be, gA, RD);
        lra_norm_bwd(be, &c->norm, m->p + m->p_final, m->g + m->p_final, gA, gB, m->xs[c->n_layers], m->final_stats, R,
                     D, m->training);
    }
    for (int i = c->n_layers - 1; i >= 0; i--) {
        lra_ctx bctx = block_ctx(m, i);
        zero(be, gB, RD);
        int rc = lra_block_backward(m, &m->blocks[i], &bctx, gB, gA, m->xs[i], err);
        if (rc) return rc;
        lra_real *s = gA; gA = gB; gB = s;
    }
    encoder_bwd(m, gA, gB);
    return LRA_OK;
}

static void group_of(const lra_optim_config *o, lra_group g, double f, float *lr, float *wd) {
    double base = o->lr, ssm = o->ssm_lr > 0 ? o->ssm_lr : o->lr;
    *wd = 0;
    switch (g) {
    case LRA_GROUP_DECAY: *wd = o->weight_decay; break;
    case LRA_GROUP_SSM: base = ssm; break;
    case LRA_GROUP_SSM_DECAY: base = ssm, *wd = o->weight_decay; break;
    case LRA_GROUP_SSM_DT: base = o->dt_global ? o->lr : o->dt_lr > 0 ? o->dt_lr : ssm; break;
    default: break;
    }
    *lr = (float)(base * f);
}

int lra_model_param_groups(const lra_model *m, const lra_optim_config *o, int64_t step, lra_param_group *out) {
    double f = lra_schedule_factor(&o->schedule, step);
    int n = 0;
    int64_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        int64_t k = lra_spec_numel(&m->specs[i]);
        lra_group g = m->specs[i].group;
        if (g != LRA_GROUP_BUFFER) {
            float lr, wd;
            group_of(o, g, f, &lr, &wd);
            if (n && out[n - 1].offset + out[n - 1].count == off && out[n - 1].lr == lr && out[n - 1].weight_decay == wd)
                out[n - 1].count += k;
            else
                out[n++] = (lra_param_group){ off, k, lr, wd };
        }
        off += k;
    }
    return n;
}

int lra_model_step(lra_model *m, const lra_optim_config *o, int64_t step, double *grad_norm, lra_err *err) {
    lra_backend *be = m->be;
    double norm = be->clip_grad_norm(be, m->grads, m->n_real, o->clip);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return lra_err_set(err, LRA_EINVAL, "step %lld: gradient norm is %g; parameters left unchanged",
                           (long long)step, norm);
    lra_param_group *groups = malloc(sizeof *groups * (size_t)(m->n_params + 1));
    if (!groups) return lra_err_set(err, LRA_ENOMEM, "model: out of host memory");
    int n = lra_model_param_groups(m, o, step, groups);
    m->opt_step++;
    be->adamw_step(be, m->params, m->grads, m->adam_m, m->adam_v, groups, n, o->beta1, o->beta2, o->eps, m->opt_step);
    free(groups);
    return LRA_OK;
}
