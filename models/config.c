// config.c: the model configuration from "key = value" parameters, with the
// defaults of the paper each mixer comes from (lra.md 1.7, 5; models.md 1).
#include "block.h"

#include <math.h>
#include <string.h>

const char *const lra_stage_names[LRA_STAGE_COUNT + 1] = { "none", "gelu", "glu", "half_glu1", "half_glu2", "full_glu", NULL };
const char *const lra_pool_names[LRA_POOL_COUNT + 1] = { "mean", "mean_all", "cls", "last", NULL };
const char *const lra_pos_names[LRA_POS_COUNT + 1] = { "none", "sinusoidal", "learned", NULL };
const char *const lra_combine_names[LRA_COMBINE_COUNT + 1] = { "concat", "nli", NULL };

const char *const lra_model_keys[] = {
    "mixer", "n_layers", "d_model", "norm", "norm_eps", "bn_momentum", "prenorm", "final_norm", "stage", "d_ffn",
    "ffn_act", "gelu", "dropout", "input_dropout", "tie_dropout", "pos", "pool", "combine", "head_hidden",
    "head_act", "linear_init", "head_init", "embed_std", NULL
};

// Defaults of the LRA Transformer (lra.md 1.7, 1.9: pre-LN, FFN, CLS,
// sinusoidal positions, Flax LayerNorm eps 1e-6 and tanh GELU, Xavier MLP)
// or of the S4 block (models.md 1, lra.md 5.1: BatchNorm, GELU -> Linear ->
// GLU stage, masked mean pooling, PyTorch inits, tied dropout), or of the
// S5 block (lra.md 5.3, models.md 1, 0.5: BatchNorm prenorm with Flax
// momentum 0.95 and biased running variance, half_glu1 stage, tanh GELU,
// no final norm, Flax inits).
static void config_defaults(lra_model_config *c, int attention, int s5, int D) {
    c->n_layers = 4;
    c->d_model = D;
    c->prenorm = 1;
    c->final_norm = 1;
    c->norm.momentum = 0.1f;
    c->norm.unbiased_running = 1;
    c->embed_std = 1.0f;
    c->n_head_hidden = -1;  // resolved at build time: depends on the number of inputs
    if (attention) {
        c->norm.kind = LRA_NORM_LAYER;
        c->norm.eps = 1e-6f;
        c->stage = LRA_STAGE_NONE;
        c->d_ffn = 4 * D;
        c->ffn_act = c->gelu = LRA_ACT_GELU_TANH;
        c->dropout = c->input_dropout = 0.1f;
        c->pos = LRA_POS_SINUSOIDAL;
        c->pool = LRA_POOL_CLS;
        c->combine = LRA_COMBINE_CONCAT;
        c->head_act = LRA_ACT_RELU;
        c->linear_init = LRA_LINEAR_XAVIER;
        c->head_init = LRA_LINEAR_FLAX;
    } else {
        c->norm.kind = LRA_NORM_BATCH;
        c->norm.eps = 1e-5f;
        c->stage = LRA_STAGE_GLU;
        c->ffn_act = c->gelu = LRA_ACT_GELU_ERF;
        c->tie_dropout = 1;
        c->pos = LRA_POS_NONE;
        c->pool = LRA_POOL_MEAN;
        c->combine = LRA_COMBINE_NLI;
        c->head_act = LRA_ACT_GELU_ERF;
        c->linear_init = c->head_init = LRA_LINEAR_TORCH;
    }
    if (s5) {
        c->final_norm = 0;
        c->norm.momentum = 0.05f;  // Flax running = 0.95 running + 0.05 batch
        c->norm.unbiased_running = 0;
        c->stage = LRA_STAGE_HALF_GLU1;
        c->ffn_act = c->gelu = c->head_act = LRA_ACT_GELU_TANH;
        c->linear_init = c->head_init = LRA_LINEAR_FLAX;
    }
}

// The LRU block (lra.md 5.4, models.md 1; the official JAX code): the S4
// block's BatchNorm prenorm and GLU stage with Flax conventions (running
// statistics m running + (1 - m) batch with m = 0.99 and the biased
// variance, tanh GELU, lecun-normal Dense layers) and no final norm.
static void lru_defaults(lra_model_config *c) {
    c->norm.momentum = 0.01f;
    c->norm.unbiased_running = 0;
    c->final_norm = 0;
    c->ffn_act = c->gelu = c->head_act = LRA_ACT_GELU_TANH;
    c->linear_init = c->head_init = LRA_LINEAR_FLAX;
}

// MEGA (lra.md 5.5, models.md 1, 7): the mixer is the whole attention
// sub-layer with its own norm; the block's FFN with SiLU and d_ffn = 2D is
// MEGA's normalised FFN; LayerNorm postnorm (Table 8, ListOps), masked mean
// pooling, [u, v] for two inputs, token embedding N(0, 1/D).
static void mega_defaults(lra_model_config *c, int D) {
    c->norm.kind = LRA_NORM_LAYER;
    c->prenorm = 0;
    c->stage = LRA_STAGE_NONE;
    c->d_ffn = 2 * D;
    c->ffn_act = LRA_ACT_SILU;
    c->combine = LRA_COMBINE_CONCAT;
    c->embed_std = (float)(1.0 / sqrt((double)D));
}

// The mixer's own norm and its place follow the model's norm and prenorm
// keys unless "mixer.norm" / "mixer.prenorm" are given.
static int mega_mixer_norm(lra_model_config *c) {
    static const char *const flags[] = { "false", "true" };
    const char *keys[2] = { "norm", "prenorm" }, *vals[2] = { lra_norm_names[c->norm.kind], flags[c->prenorm != 0] };
    for (int k = 0; k < 2; k++) {
        if (lra_kv_find(c->mixer_kv, c->n_mixer_kv, keys[k])) continue;
        if (c->n_mixer_kv == LRA_MAX_MIXER_KV) return LRA_EINVAL;
        c->mixer_kv[c->n_mixer_kv++] = (lra_kv){ keys[k], vals[k], "model default" };
    }
    return LRA_OK;
}

static int parse_head_hidden(lra_model_config *c, const lra_kv *kv, lra_err *err) {
    c->n_head_hidden = 0;
    if (!strcmp(kv->value, "none") || !kv->value[0]) return LRA_OK;
    if (!strcmp(kv->value, "auto")) {  // resolved at build time from the number of inputs
        c->n_head_hidden = -1;
        return LRA_OK;
    }
    const char *s = kv->value;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > (1 << 20) || (*end && *end != ',') || c->n_head_hidden == LRA_MAX_HEAD_LAYERS)
            return lra_err_set(err, LRA_EINVAL,
                               "%s: model.head_hidden: expected 'none' or up to %d comma-separated widths, got '%s'",
                               lra_kv_where(kv), LRA_MAX_HEAD_LAYERS, kv->value);
        c->head_hidden[c->n_head_hidden++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return LRA_OK;
}

static int parse_act(const lra_kv *kv, int n, const char *key, lra_act def, int allow_identity, lra_act *out,
                     lra_err *err) {
    static const char *const names[] = { "relu", "gelu", "gelu_tanh", "silu", "identity", NULL };
    static const lra_act acts[] = { LRA_ACT_RELU, LRA_ACT_GELU_ERF, LRA_ACT_GELU_TANH, LRA_ACT_SILU,
                                    LRA_ACT_IDENTITY };
    int i, rc = lra_kv_choice(kv, n, "model", key, -1, names, &i, err);
    if (rc) return rc;
    if (i == 4 && !allow_identity) {
        const lra_kv *at = lra_kv_find(kv, n, key);
        return lra_err_set(err, LRA_EINVAL, "%s: model.%s: identity is not allowed here", lra_kv_where(at), key);
    }
    *out = i < 0 ? def : acts[i];
    return LRA_OK;
}

// Collects the "mixer.<key>" entries, checks the rest against the model keys.
static int split_mixer_keys(lra_model_config *c, const lra_kv *kv, int n, lra_err *err) {
    for (int i = 0; i < n; i++) {
        if (strncmp(kv[i].key, "mixer.", 6)) continue;
        if (c->n_mixer_kv == LRA_MAX_MIXER_KV)
            return lra_err_set(err, LRA_EINVAL, "%s: model: more than %d mixer parameters", lra_kv_where(&kv[i]),
                               LRA_MAX_MIXER_KV);
        c->mixer_kv[c->n_mixer_kv++] = (lra_kv){ kv[i].key + 6, kv[i].value, kv[i].where };
    }
    for (int i = 0; i < n; i++) {
        if (!strncmp(kv[i].key, "mixer.", 6)) continue;
        int rc = lra_kv_check_known(&kv[i], 1, "model", lra_model_keys, err);
        if (rc) return rc;
    }
    return LRA_OK;
}

int lra_model_config_parse(lra_model_config *c, const lra_kv *kv, int n, lra_err *err) {
    memset(c, 0, sizeof *c);
    const char *mixer;
    lra_kv_string(kv, n, "mixer", "s4d", &mixer);
    if (!lra_mixer_find(mixer, err)) {
        const lra_kv *at = lra_kv_find(kv, n, "mixer");
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return lra_err_set(err, LRA_EINVAL, "%s: model.mixer: %s", lra_kv_where(at), msg);
    }
    if (strlen(mixer) >= sizeof c->mixer) return lra_err_set(err, LRA_EINVAL, "model.mixer: name too long");
    int64_t D, v;
    int rc;
    if ((rc = lra_kv_int(kv, n, "model", "d_model", 128, 1, 1 << 16, &D, err))) return rc;
    config_defaults(c, !strcmp(mixer, "attention"), !strcmp(mixer, "s5"), (int)D);
    if (!strcmp(mixer, "lru")) lru_defaults(c);
    if (!strcmp(mixer, "mega")) mega_defaults(c, (int)D);
    strcpy(c->mixer, mixer);
    if ((rc = split_mixer_keys(c, kv, n, err))) return rc;
    if ((rc = lra_kv_int(kv, n, "model", "n_layers", c->n_layers, 0, 1024, &v, err))) return rc;
    c->n_layers = (int)v;
    int i;
    if ((rc = lra_kv_choice(kv, n, "model", "norm", c->norm.kind, lra_norm_names, &i, err))) return rc;
    if (i != (int)c->norm.kind) c->norm.eps = 1e-5f;  // PyTorch default when the kind is changed
    c->norm.kind = (lra_norm_kind)i;
    double d;
    if ((rc = lra_kv_double(kv, n, "model", "norm_eps", c->norm.eps, 0, 1, &d, err))) return rc;
    c->norm.eps = (float)d;
    if ((rc = lra_kv_double(kv, n, "model", "bn_momentum", c->norm.momentum, 0, 1, &d, err))) return rc;
    c->norm.momentum = (float)d;
    if ((rc = lra_kv_bool(kv, n, "model", "prenorm", c->prenorm, &c->prenorm, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, "model", "final_norm", c->prenorm && c->final_norm, &c->final_norm, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, "model", "stage", c->stage, lra_stage_names, &i, err))) return rc;
    c->stage = (lra_stage)i;
    if ((rc = lra_kv_int(kv, n, "model", "d_ffn", c->d_ffn, 0, 1 << 20, &v, err))) return rc;
    c->d_ffn = (int)v;
    if ((rc = parse_act(kv, n, "ffn_act", c->ffn_act, 0, &c->ffn_act, err))) return rc;
    static const char *const gelus[] = { "erf", "tanh", NULL };
    if ((rc = lra_kv_choice(kv, n, "model", "gelu", c->gelu == LRA_ACT_GELU_TANH, gelus, &i, err))) return rc;
    c->gelu = i ? LRA_ACT_GELU_TANH : LRA_ACT_GELU_ERF;
    if ((rc = lra_kv_double(kv, n, "model", "dropout", c->dropout, 0, 0.99, &d, err))) return rc;
    c->dropout = (float)d;
    int input_def = lra_kv_find(kv, n, "input_dropout") || strcmp(mixer, "attention") ? 0 : 1;
    if ((rc = lra_kv_double(kv, n, "model", "input_dropout", input_def ? c->dropout : c->input_dropout, 0, 0.99, &d,
                            err)))
        return rc;
    c->input_dropout = (float)d;
    if ((rc = lra_kv_bool(kv, n, "model", "tie_dropout", c->tie_dropout, &c->tie_dropout, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, "model", "pos", c->pos, lra_pos_names, &i, err))) return rc;
    c->pos = (lra_pos)i;
    if ((rc = lra_kv_choice(kv, n, "model", "pool", c->pool, lra_pool_names, &i, err))) return rc;
    c->pool = (lra_pool)i;
    if ((rc = lra_kv_choice(kv, n, "model", "combine", c->combine, lra_combine_names, &i, err))) return rc;
    c->combine = (lra_combine)i;
    const lra_kv *hh = lra_kv_find(kv, n, "head_hidden");
    if (hh && (rc = parse_head_hidden(c, hh, err))) return rc;
    if ((rc = parse_act(kv, n, "head_act", c->head_act, 0, &c->head_act, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, "model", "linear_init", c->linear_init, lra_linear_init_names, &i, err)))
        return rc;
    c->linear_init = (lra_linear_init)i;
    if ((rc = lra_kv_choice(kv, n, "model", "head_init", c->head_init, lra_linear_init_names, &i, err))) return rc;
    c->head_init = (lra_linear_init)i;
    if ((rc = lra_kv_double(kv, n, "model", "embed_std", c->embed_std, 0, 100, &d, err))) return rc;
    c->embed_std = (float)d;
    if (!strcmp(mixer, "mega") && mega_mixer_norm(c))
        return lra_err_set(err, LRA_EINVAL, "model: more than %d mixer parameters", LRA_MAX_MIXER_KV);
    return LRA_OK;
}

static const char *act_name(lra_act a) {
    switch (a) {
    case LRA_ACT_RELU: return "relu";
    case LRA_ACT_GELU_ERF: return "gelu";
    case LRA_ACT_GELU_TANH: return "gelu_tanh";
    case LRA_ACT_SILU: return "silu";
    default: return "identity";
    }
}

static int config_string(const lra_model_config *c, int with_mixer_kv, char *out, size_t cap) {
    char head[64] = "";
    if (c->n_head_hidden < 0) snprintf(head, sizeof head, "auto");
    else if (c->n_head_hidden == 0) snprintf(head, sizeof head, "none");
    for (int i = 0; i < c->n_head_hidden; i++)
        snprintf(head + strlen(head), sizeof head - strlen(head), "%s%d", i ? "," : "", c->head_hidden[i]);
    int w = snprintf(out, cap,
                     "mixer=%s;n_layers=%d;d_model=%d;norm=%s;norm_eps=%g;bn_momentum=%g;prenorm=%d;final_norm=%d;"
                     "stage=%s;d_ffn=%d;ffn_act=%s;gelu=%s;dropout=%g;input_dropout=%g;tie_dropout=%d;pos=%s;"
                     "pool=%s;combine=%s;head_hidden=%s;head_act=%s;linear_init=%s;head_init=%s;embed_std=%g",
                     c->mixer, c->n_layers, c->d_model, lra_norm_names[c->norm.kind], c->norm.eps, c->norm.momentum,
                     c->prenorm, c->final_norm, lra_stage_names[c->stage], c->d_ffn, act_name(c->ffn_act),
                     c->gelu == LRA_ACT_GELU_TANH ? "tanh" : "erf", c->dropout, c->input_dropout, c->tie_dropout,
                     lra_pos_names[c->pos], lra_pool_names[c->pool], lra_combine_names[c->combine], head,
                     act_name(c->head_act), lra_linear_init_names[c->linear_init],
                     lra_linear_init_names[c->head_init], c->embed_std);
    for (int i = 0; with_mixer_kv && i < c->n_mixer_kv && w >= 0 && (size_t)w < cap; i++)
        w += snprintf(out + w, cap - (size_t)w, ";mixer.%s=%s", c->mixer_kv[i].key, c->mixer_kv[i].value);
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

int lra_model_config_string(const lra_model_config *c, char *out, size_t cap) {
    return config_string(c, 1, out, cap);
}

// Appends the mixer's resolved hyperparameters as ";mixer.<key>=<value>".
static int append_mixer(const lra_mixer *x, char *out, size_t cap) {
    char mix[1024];
    int rc = x->vt->describe(x, mix, sizeof mix);
    if (rc) return rc;
    size_t len = strlen(out);
    char *save = NULL;
    for (char *kv = strtok_r(mix, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        int w = snprintf(out + len, cap - len, ";mixer.%s", kv);
        if (w < 0 || (size_t)w >= cap - len) return LRA_EINVAL;
        len += (size_t)w;
    }
    return LRA_OK;
}

int lra_model_describe(const lra_model *m, char *out, size_t cap) {
    int rc = config_string(&m->cfg, 0, out, cap);
    if (rc || m->cfg.n_layers < 1) return rc;
    return append_mixer(&m->blocks[0].mixer, out, cap);
}

int lra_model_config_describe(const lra_model_config *c, const lra_model_task *task, char *out, size_t cap,
                              lra_err *err) {
    const lra_mixer_vtable *vt = lra_mixer_find(c->mixer, err);
    if (!vt) return err->code;
    if (config_string(c, 0, out, cap))
        return lra_err_set(err, LRA_EINVAL, "model: the resolved configuration exceeds %zu bytes", cap);
    if (c->n_layers < 1) return LRA_OK;
    lra_mixer x = { .D = c->d_model, .L_max = task->seq_len + (c->pool == LRA_POOL_CLS) };
    int rc = vt->configure(&x, c->mixer_kv, c->n_mixer_kv, err);
    x.vt = vt;
    if (!rc && append_mixer(&x, out, cap))
        rc = lra_err_set(err, LRA_EINVAL, "model: the resolved configuration exceeds %zu bytes", cap);
    if (vt->free) vt->free(&x, NULL);
    return rc;
}

void lra_optim_defaults(lra_optim_config *o) {
    memset(o, 0, sizeof *o);
    o->lr = 1e-3f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->schedule.kind = LRA_SCHED_CONSTANT;
}
