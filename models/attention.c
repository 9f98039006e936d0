// attention.c: multi-head softmax self-attention, the mixer of the LRA
// Transformer (models.md 2): Q, K, V = x Wq^T, x Wk^T, x Wv^T split into NH
// heads of Dh = d_qkv / NH, O = softmax(Q K^T / sqrt(Dh) + mask) V with
// attention dropout, y = concat_h(O) Wo^T. No biases, Xavier-uniform weights
// (LRA transformer.py). Padding keys are masked (ctx->mask); causal option.
// The backend op recomputes probabilities in backward (no L x L buffer).
#include "nn.h"

#include <math.h>
#include <string.h>

typedef struct {
    int   NH, d_qkv, causal;
    float dropout;   // attention dropout on the probabilities
} attn_hp;

enum { P_Q, P_K, P_V, P_O, P_COUNT };

static const char *const attn_keys[] = { "heads", "d_qkv", "causal", "dropout", NULL };

static int attn_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    const char *who = "mixer.attention";
    int64_t heads, d_qkv;
    double p;
    int causal, rc;
    if ((rc = lra_kv_check_known(kv, n, who, attn_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "heads", 4, 1, 4096, &heads, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "d_qkv", m->D, 1, 1 << 20, &d_qkv, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "causal", 0, &causal, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dropout", 0.0, 0.0, 0.99, &p, err))) return rc;
    if (d_qkv % heads) {
        const lra_kv *at = lra_kv_find(kv, n, "heads");
        return lra_err_set(err, LRA_EINVAL, "%s: %s.heads: %lld heads do not divide d_qkv = %lld",
                           lra_kv_where(at), who, (long long)heads, (long long)d_qkv);
    }
    attn_hp *hp = calloc(1, sizeof *hp);
    if (!hp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", who);
    hp->NH = (int)heads;
    hp->d_qkv = (int)d_qkv;
    hp->causal = causal;
    hp->dropout = (float)p;
    m->hp = hp;
    return LRA_OK;
}

static int attn_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const attn_hp *hp = m->hp;
    int n = 0, D = m->D, E = hp->d_qkv;
    n = lra_spec_set(out, n, "q_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(E, D));
    n = lra_spec_set(out, n, "k_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(E, D));
    n = lra_spec_set(out, n, "v_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(E, D));
    n = lra_spec_set(out, n, "out_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, E));
    return n;
}

// Flax DenseGeneral flattens its kernel to (in, out) before Xavier init, so
// fan_in = D and fan_out = d_qkv for every projection.
static void attn_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const attn_hp *hp = m->hp;
    int64_t n = (int64_t)m->D * hp->d_qkv;
    for (int i = 0; i < P_COUNT; i++) {
        lra_init_rng r = lra_init_rng_new(seed, 0xA77E0 + i);
        lra_init_xavier_uniform(host[i], n, &r, m->D, hp->d_qkv);
    }
}

// Saved by forward: q, k, v, o in head layout (B, NH, L, Dh), o merged back
// to (B, L, d_qkv) and the row log-sum-exp (B, NH, L).
typedef struct { lra_real *q, *k, *v, *o, *om, *lse; } attn_acts;
// Backward temporaries: dq, dk, dv (heads), and two (B, L, d_qkv) buffers.
typedef struct { lra_real *dq, *dk, *dv, *t1, *t2; } attn_scratch;

static attn_acts attn_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L) {
    const attn_hp *hp = m->hp;
    int64_t n = (int64_t)B * L * hp->d_qkv;
    attn_acts a;
    a.q = lra_carve_take(c, n);
    a.k = lra_carve_take(c, n);
    a.v = lra_carve_take(c, n);
    a.o = lra_carve_take(c, n);
    a.om = lra_carve_take(c, n);
    a.lse = lra_carve_take(c, (int64_t)B * hp->NH * L);
    return a;
}

static attn_scratch attn_carve_scratch(const lra_mixer *m, lra_carve *c, int B, int L) {
    int64_t n = (int64_t)B * L * ((const attn_hp *)m->hp)->d_qkv;
    attn_scratch s;
    s.dq = lra_carve_take(c, n);
    s.dk = lra_carve_take(c, n);
    s.dv = lra_carve_take(c, n);
    s.t1 = lra_carve_take(c, n);
    s.t2 = lra_carve_take(c, n);
    return s;
}

static int64_t attn_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    attn_carve_acts(m, &c, B, L);
    return c.used;
}

static int64_t attn_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    attn_carve_scratch(m, &c, B, L);
    return c.used;
}

static uint64_t attn_seed(const lra_ctx *ctx) { return lra_ctx_stream(ctx, 0xA77E); }

static int attn_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    (void)err;
    const attn_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, E = hp->d_qkv, NH = hp->NH, Dh = E / NH;
    int64_t R = (int64_t)B * L;
    lra_carve c = { m->act, 0, INT64_MAX };
    attn_acts a = attn_carve_acts(m, &c, B, L);
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    attn_scratch s = attn_carve_scratch(m, &cs, B, L);
    lra_real *heads[3] = { a.q, a.k, a.v };
    for (int i = 0; i < 3; i++) {  // (B, L, NH, Dh) -> (B, NH, L, Dh)
        lra_linear_fwd(be, s.t1, x, m->p[P_Q + i], NULL, R, m->D, E);
        be->permute_0213(be, heads[i], s.t1, B, L, NH, Dh);
    }
    lra_real p = ctx->training ? (lra_real)hp->dropout : 0;
    be->attention_fwd(be, a.o, a.lse, a.q, a.k, a.v, ctx->mask, B, NH, L, Dh, (lra_real)(1.0 / sqrt(Dh)),
                      hp->causal, p, attn_seed(ctx));
    be->permute_0213(be, a.om, a.o, B, NH, L, Dh);
    lra_linear_fwd(be, y, a.om, m->p[P_O], NULL, R, E, m->D);
    return LRA_OK;
}

static int attn_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                         lra_err *err) {
    (void)err;
    const attn_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, E = hp->d_qkv, NH = hp->NH, Dh = E / NH;
    int64_t R = (int64_t)B * L, n = R * E;
    lra_carve c = { m->act, 0, INT64_MAX };
    attn_acts a = attn_carve_acts(m, &c, B, L);
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    attn_scratch s = attn_carve_scratch(m, &cs, B, L);
    be->zero(be, s.t1, (size_t)n * sizeof(lra_real));
    lra_linear_bwd(be, s.t1, m->g[P_O], NULL, dy, a.om, m->p[P_O], R, E, m->D);  // d om (B, L, NH, Dh)
    be->permute_0213(be, s.t2, s.t1, B, L, NH, Dh);                    // d o (B, NH, L, Dh)
    lra_real *dheads[3] = { s.dq, s.dk, s.dv };
    for (int i = 0; i < 3; i++) be->zero(be, dheads[i], (size_t)n * sizeof(lra_real));
    lra_real p = ctx->training ? (lra_real)hp->dropout : 0;
    be->attention_bwd(be, s.dq, s.dk, s.dv, s.t2, a.o, a.lse, a.q, a.k, a.v, ctx->mask, B, NH, L, Dh,
                      (lra_real)(1.0 / sqrt(Dh)), hp->causal, p, attn_seed(ctx));
    for (int i = 0; i < 3; i++) {
        be->permute_0213(be, s.t1, dheads[i], B, NH, L, Dh);
        lra_linear_bwd(be, dx, m->g[P_Q + i], NULL, s.t1, x, m->p[P_Q + i], R, m->D, E);
    }
    return LRA_OK;
}

static int attn_describe(const lra_mixer *m, char *out, size_t cap) {
    const attn_hp *hp = m->hp;
    int w = snprintf(out, cap, "heads=%d;d_qkv=%d;causal=%s;dropout=%.9g", hp->NH, hp->d_qkv,
                     hp->causal ? "true" : "false", hp->dropout);
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void attn_free(lra_mixer *m, lra_backend *be) {
    (void)be;
    free(m->hp);
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_attention = {
    .name = "attention",
    .summary = "multi-head softmax self-attention (LRA Transformer)",
    .configure = attn_configure,
    .param_specs = attn_param_specs,
    .init = attn_init,
    .act_size = attn_act_size,
    .scratch_size = attn_scratch_size,
    .forward = attn_forward,
    .backward = attn_backward,
    .free = attn_free,
    .describe = attn_describe,
};
