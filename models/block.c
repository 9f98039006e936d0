// block.c: the residual block (models.md 1). With prenorm:
//   x1  = x  + drop(stage(mixer(norm1(x))))
//   out = x1 + drop(W2 drop(act(W1 norm2(x1) + b1)) + b2)     (when d_ffn > 0)
// with postnorm the norm follows the residual sum instead:
//   x1 = norm1(x + drop(stage(mixer(x)))),  out = norm2(x1 + drop(ffn(x1))).
// Stages (what follows the mixer inside the residual branch):
//   none       s = y                                        (Transformer)
//   gelu       s = drop(GELU(y))                            (S5 "gelu")
//   glu        a = drop(GELU(y)), s = GLU(a W^T + b), W (2D, D)   (S4 output_linear + GLU)
//   half_glu1  g = drop(GELU(y)), s = g * sigmoid(g W^T + b)      (S5)
//   half_glu2  g = drop(GELU(y)), s = y * sigmoid(g W^T + b)      (S5)
//   full_glu   g = drop(GELU(y)), s = (g W1^T + b1) * sigmoid(g W2^T + b2)   (S5; the glu stage with
//              W = [W1; W2] (2D, D): S5's out1 and out2 stacked)
// Dropout sites: after the stage's GELU, on the residual branch, after the
// FFN activation and on the FFN branch; each site has its own random stream,
// masks tied over L when cfg.tie_dropout.
// A mixer with residual_inside (MEGA) is the whole first sub-block:
//   x1 = mixer(x)   (its own norm, gates and residual; no norm1, stage or
//                    dropout here), then the FFN sub-block as above.
#include "block.h"

#include <string.h>

enum { SITE_STAGE = 1, SITE_RESID = 2, SITE_FFN_ACT = 3, SITE_FFN_RESID = 4 };

// What forward keeps for backward (pointers into b->act).
typedef struct {
    lra_real *h1, *st1, *xmid, *mo, *sa, *sz;     // mixer sub-block
    lra_real *x1, *h2, *st2, *xmid2, *f1, *a1;    // FFN sub-block
} block_acts;

// Temporaries of one call (scratch), each allocated only when used:
// gx1 d x1, gn d norm input (postnorm), gb a branch gradient before dropout
// (width max(D, F)), gf/gf2 FFN gradients, gh d norm output (also the
// forward's branch buffer), gmo d mixer output, gz d stage linear output,
// gs half-GLU products, gg d stage GELU output, gd its dropout.
typedef struct { lra_real *gx1, *gn, *gb, *gf, *gf2, *gh, *gmo, *gz, *gs, *gg, *gd; } block_tmp;

static int has_norm(const lra_model *m) { return m->cfg.norm.kind != LRA_NORM_NONE; }
static int is_glu(lra_stage st) { return st == LRA_STAGE_GLU || st == LRA_STAGE_FULL_GLU; }
static int is_half_glu(lra_stage st) { return st == LRA_STAGE_HALF_GLU1 || st == LRA_STAGE_HALF_GLU2; }
// The mixer is the whole first sub-block (lra_mixer_vtable.residual_inside).
static int inside(const lra_model *m) {
    const lra_mixer_vtable *vt = m->cfg.n_layers > 0 ? m->blocks[0].mixer.vt : NULL;
    return vt && vt->residual_inside;
}
// norm1 exists: not around a mixer that brings its own.
static int has_norm1(const lra_model *m) { return has_norm(m) && !inside(m); }
static int stage_width(const lra_model *m) {
    int D = m->cfg.d_model;
    if (inside(m)) return 0;
    return is_glu(m->cfg.stage) ? 2 * D : is_half_glu(m->cfg.stage) ? D : 0;
}

static block_acts block_carve(const lra_model *m, lra_carve *c, int Bs, int L) {
    const lra_model_config *cfg = &m->cfg;
    int64_t R = (int64_t)Bs * L, RD = R * cfg->d_model;
    int pre = cfg->prenorm && has_norm(m), post = !cfg->prenorm && has_norm(m), sw = stage_width(m);
    int pre1 = pre && has_norm1(m), post1 = post && has_norm1(m);
    block_acts a = { 0 };
    a.h1 = pre1 ? lra_carve_take(c, RD) : NULL;
    a.st1 = has_norm1(m) ? lra_carve_take(c, lra_norm_stats_size(&cfg->norm, R, cfg->d_model)) : NULL;
    a.xmid = post1 ? lra_carve_take(c, RD) : NULL;
    a.mo = lra_carve_take(c, RD);
    a.sa = sw ? lra_carve_take(c, RD) : NULL;
    a.sz = sw ? lra_carve_take(c, R * sw) : NULL;
    if (cfg->d_ffn > 0) {
        a.x1 = lra_carve_take(c, RD);
        a.h2 = pre ? lra_carve_take(c, RD) : NULL;
        a.st2 = lra_carve_take(c, lra_norm_stats_size(&cfg->norm, R, cfg->d_model));
        a.xmid2 = post ? lra_carve_take(c, RD) : NULL;
        a.f1 = lra_carve_take(c, R * cfg->d_ffn);
        a.a1 = lra_carve_take(c, R * cfg->d_ffn);
    }
    return a;
}

static block_tmp block_carve_tmp(const lra_model *m, lra_carve *c, int Bs, int L) {
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model, F = cfg->d_ffn, sw = stage_width(m);
    int64_t R = (int64_t)Bs * L, RD = R * D;
    block_tmp t = { 0 };
    t.gx1 = F > 0 ? lra_carve_take(c, RD) : NULL;
    t.gn = !cfg->prenorm && has_norm(m) ? lra_carve_take(c, RD) : NULL;
    t.gb = cfg->dropout > 0 ? lra_carve_take(c, R * (F > D ? F : D)) : NULL;
    t.gf = F > 0 ? lra_carve_take(c, R * F) : NULL;
    t.gf2 = F > 0 ? lra_carve_take(c, R * F) : NULL;
    t.gh = lra_carve_take(c, RD);
    t.gmo = lra_carve_take(c, RD);
    t.gz = sw ? lra_carve_take(c, R * sw) : NULL;
    t.gs = is_half_glu(cfg->stage) ? lra_carve_take(c, RD) : NULL;
    t.gg = sw ? lra_carve_take(c, RD) : NULL;
    t.gd = cfg->stage != LRA_STAGE_NONE && cfg->dropout > 0 ? lra_carve_take(c, RD) : NULL;
    return t;
}

int64_t lra_block_act_size(const lra_model *m, int Bs, int L) {
    lra_carve c = { 0 };
    block_carve(m, &c, Bs, L);
    return c.used;
}

int64_t lra_block_scratch_size(const lra_model *m, int Bs, int L) {
    lra_carve c = { 0 };
    block_carve_tmp(m, &c, Bs, L);
    return c.used;
}

// ---- parameters ----------------------------------------------------------------

static int named(lra_param_spec *out, int n, const lra_block *b, const char *name, lra_group g, int ndim,
                 const int64_t *shape) {
    char full[LRA_PARAM_NAME_MAX];
    snprintf(full, sizeof full, "blocks.%d.%s", b->index, name);
    return lra_spec_set(out, n, full, g, ndim, shape);
}

int lra_block_specs(const lra_model *m, lra_block *b, lra_param_spec *out, int n) {
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model, F = cfg->d_ffn, sw = stage_width(m);
    char prefix[LRA_PARAM_NAME_MAX];
    snprintf(prefix, sizeof prefix, "blocks.%d.norm1.", b->index);
    b->p_norm1 = n;
    if (has_norm1(m)) n = lra_norm_specs(&cfg->norm, D, prefix, out, n);
    b->p_mixer = n;
    int nm = b->mixer.vt->param_specs(&b->mixer, out ? out + n : NULL);
    for (int i = 0; out && i < nm; i++) {
        char full[LRA_PARAM_NAME_MAX + 32];
        snprintf(full, sizeof full, "blocks.%d.mixer.%s", b->index, out[n + i].name);
        LRA_ASSERT(strlen(full) < LRA_PARAM_NAME_MAX);
        strcpy(out[n + i].name, full);
    }
    n += nm;
    b->p_stage = sw ? n : -1;
    if (sw) {
        n = named(out, n, b, "stage.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(sw, D));
        n = named(out, n, b, "stage.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(sw));
    }
    b->p_norm2 = b->p_ffn = -1;
    if (F > 0) {
        snprintf(prefix, sizeof prefix, "blocks.%d.norm2.", b->index);
        b->p_norm2 = n;
        n = lra_norm_specs(&cfg->norm, D, prefix, out, n);
        b->p_ffn = n;
        n = named(out, n, b, "ffn.fc1.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(F, D));
        n = named(out, n, b, "ffn.fc1.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(F));
        n = named(out, n, b, "ffn.fc2.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, F));
        n = named(out, n, b, "ffn.fc2.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(D));
    }
    return n;
}

void lra_block_init(const lra_model *m, const lra_block *b, lra_real *const *host, uint64_t seed) {
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model, F = cfg->d_ffn;
    uint64_t bseed = lra_mix64(seed ^ lra_mix64(0xB10C + (uint64_t)b->index));
    if (has_norm1(m)) lra_norm_init(&cfg->norm, D, host + b->p_norm1);
    b->mixer.vt->init(&b->mixer, host + b->p_mixer, lra_mix64(bseed ^ 1));
    lra_init_rng r = lra_init_rng_new(bseed, 2);
    if (b->p_stage >= 0) lra_linear_init_fill(host[b->p_stage], host[b->p_stage + 1], D, stage_width(m), cfg->linear_init, &r);
    if (F > 0) {
        lra_norm_init(&cfg->norm, D, host + b->p_norm2);
        lra_linear_init_fill(host[b->p_ffn], host[b->p_ffn + 1], D, F, cfg->linear_init, &r);
        lra_linear_init_fill(host[b->p_ffn + 2], host[b->p_ffn + 3], F, D, cfg->linear_init, &r);
    }
}

// ---- dropout helpers -------------------------------------------------------------

static int drop_on(const lra_ctx *ctx, float p) { return ctx->training && p > 0; }

// In place on x viewed as (Bs, L, C).
static void drop_fwd(const lra_model *m, const lra_ctx *ctx, int site, float p, lra_real *x, int C) {
    if (!drop_on(ctx, p)) return;
    ctx->be->dropout_fwd(ctx->be, x, x, ctx->B, ctx->L, C, p, lra_ctx_stream(ctx, (uint64_t)site), m->cfg.tie_dropout);
}

// The gradient before the dropout at `site`: tmp (zeroed and filled) when
// dropout is on, else dy itself.
static const lra_real *drop_bwd(const lra_model *m, const lra_ctx *ctx, int site, float p, lra_real *tmp,
                                const lra_real *dy, int C) {
    if (!drop_on(ctx, p)) return dy;
    int64_t n = (int64_t)ctx->B * ctx->L * C;
    ctx->be->zero(ctx->be, tmp, (size_t)n * sizeof(lra_real));
    ctx->be->dropout_bwd(ctx->be, tmp, dy, ctx->B, ctx->L, C, p, lra_ctx_stream(ctx, (uint64_t)site), m->cfg.tie_dropout);
    return tmp;
}

// ---- forward -------------------------------------------------------------------------

static lra_real *const *P(const lra_model *m, int i) { return (lra_real *const *)m->p + i; }
static lra_real *const *G(const lra_model *m, int i) { return (lra_real *const *)m->g + i; }
static void zero(lra_backend *be, lra_real *x, int64_t n) { be->zero(be, x, (size_t)n * sizeof(lra_real)); }

// s = stage(mo) into t (R, D); sa (dropped-out GELU output) and sz (stage
// linear output) are kept for backward.
static void stage_fwd(lra_model *m, lra_block *b, const lra_ctx *ctx, const block_acts *a, lra_real *t) {
    lra_backend *be = ctx->be;
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model;
    int64_t R = (int64_t)ctx->B * ctx->L;
    lra_stage st = cfg->stage;
    if (st == LRA_STAGE_NONE) {
        be->copy(be, t, a->mo, (size_t)(R * D) * sizeof(lra_real));
        return;
    }
    lra_real *g = st == LRA_STAGE_GELU ? t : a->sa;
    be->act_fwd(be, g, a->mo, R * D, cfg->gelu);
    drop_fwd(m, ctx, SITE_STAGE, cfg->dropout, g, D);
    if (st == LRA_STAGE_GELU) return;
    lra_linear_fwd(be, a->sz, g, m->p[b->p_stage], m->p[b->p_stage + 1], R, D, stage_width(m));
    if (is_glu(st)) {
        be->glu_fwd(be, t, a->sz, R, D);
    } else {
        be->act_fwd(be, t, a->sz, R * D, LRA_ACT_SIGMOID);
        be->mul(be, t, t, st == LRA_STAGE_HALF_GLU1 ? a->sa : a->mo, R * D);
    }
}

// out = resid + drop(branch) (prenorm), or out = norm(xmid = resid + drop(branch)).
static void residual_fwd(lra_model *m, const lra_ctx *ctx, int site, int p_norm, lra_real *xmid, lra_real *stats,
                         lra_real *out, const lra_real *resid, lra_real *branch) {
    lra_backend *be = ctx->be;
    int D = m->cfg.d_model;
    int64_t R = (int64_t)ctx->B * ctx->L;
    drop_fwd(m, ctx, site, m->cfg.dropout, branch, D);
    if (!xmid) {
        be->add(be, out, resid, branch, R * D);
        return;
    }
    be->add(be, xmid, resid, branch, R * D);
    lra_norm_fwd(be, &m->cfg.norm, P(m, p_norm), out, stats, xmid, R, D, ctx->training);
}

// x1 = the first sub-block of x: the residual around the mixer, or the
// mixer itself when it has its residual inside.
static int mixer_sub_fwd(lra_model *m, lra_block *b, const lra_ctx *ctx, const block_acts *a,
                         const block_tmp *t, lra_real *x1, const lra_real *x, lra_err *err) {
    if (inside(m)) return b->mixer.vt->forward(&b->mixer, ctx, x1, x, err);
    const lra_real *h1 = x;
    if (a->h1) {
        lra_norm_fwd(ctx->be, &m->cfg.norm, P(m, b->p_norm1), a->h1, a->st1, x, (int64_t)ctx->B * ctx->L,
                     m->cfg.d_model, ctx->training);
        h1 = a->h1;
    }
    int rc = b->mixer.vt->forward(&b->mixer, ctx, a->mo, h1, err);
    if (rc) return rc;
    stage_fwd(m, b, ctx, a, t->gh);
    residual_fwd(m, ctx, SITE_RESID, b->p_norm1, a->xmid, a->st1, x1, x, t->gh);
    return LRA_OK;
}

int lra_block_forward(lra_model *m, lra_block *b, const lra_ctx *ctx, lra_real *out, const lra_real *x,
                      lra_err *err) {
    lra_backend *be = ctx->be;
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model, F = cfg->d_ffn;
    int64_t R = (int64_t)ctx->B * ctx->L;
    lra_carve c = { b->act, 0, INT64_MAX }, ct = { m->scratch, 0, INT64_MAX };
    block_acts a = block_carve(m, &c, ctx->B, ctx->L);
    block_tmp t = block_carve_tmp(m, &ct, ctx->B, ctx->L);
    lra_real *x1 = F > 0 ? a.x1 : out;
    int rc = mixer_sub_fwd(m, b, ctx, &a, &t, x1, x, err);
    if (rc || F <= 0) return rc;
    const lra_real *h2 = x1;
    if (a.h2) {
        lra_norm_fwd(be, &cfg->norm, P(m, b->p_norm2), a.h2, a.st2, x1, R, D, ctx->training);
        h2 = a.h2;
    }
    lra_linear_fwd(be, a.f1, h2, m->p[b->p_ffn], m->p[b->p_ffn + 1], R, D, F);
    be->act_fwd(be, a.a1, a.f1, R * F, cfg->ffn_act);
    drop_fwd(m, ctx, SITE_FFN_ACT, cfg->dropout, a.a1, F);
    lra_linear_fwd(be, t.gh, a.a1, m->p[b->p_ffn + 2], m->p[b->p_ffn + 3], R, F, D);
    residual_fwd(m, ctx, SITE_FFN_RESID, b->p_norm2, a.xmid2, a.st2, out, x1, t.gh);
    return LRA_OK;
}

// ---- backward ------------------------------------------------------------------------

// dmo += d stage(mo) / d mo applied to ds.
static void stage_bwd(lra_model *m, lra_block *b, const lra_ctx *ctx, const block_acts *a, const block_tmp *t,
                      lra_real *dmo, const lra_real *ds) {
    lra_backend *be = ctx->be;
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model, sw = stage_width(m);
    int64_t R = (int64_t)ctx->B * ctx->L, RD = R * D;
    lra_stage st = cfg->stage;
    if (st == LRA_STAGE_NONE) {
        be->axpby(be, dmo, 1, ds, 1, RD);
        return;
    }
    const lra_real *dg = ds;  // gradient w.r.t. g, the dropped-out GELU output
    if (st != LRA_STAGE_GELU) {
        zero(be, t->gz, R * sw);
        zero(be, t->gg, RD);
        if (is_glu(st)) {
            be->glu_bwd(be, t->gz, ds, a->sz, R, D);
        } else {  // s = u * sigmoid(z) with u = g (half_glu1) or mo (half_glu2)
            be->act_fwd(be, t->gs, a->sz, RD, LRA_ACT_SIGMOID);
            be->mul(be, t->gs, ds, t->gs, RD);  // ds * sigmoid(z) = d u
            be->axpby(be, st == LRA_STAGE_HALF_GLU1 ? t->gg : dmo, 1, t->gs, 1, RD);
            be->mul(be, t->gs, ds, st == LRA_STAGE_HALF_GLU1 ? a->sa : a->mo, RD);  // d sigmoid(z)
            be->act_bwd(be, t->gz, t->gs, a->sz, RD, LRA_ACT_SIGMOID);
        }
        lra_linear_bwd(be, t->gg, m->g[b->p_stage], m->g[b->p_stage + 1], t->gz, a->sa, m->p[b->p_stage], R, D, sw);
        dg = t->gg;
    }
    const lra_real *dgelu = drop_bwd(m, ctx, SITE_STAGE, cfg->dropout, t->gd, dg, D);
    be->act_bwd(be, dmo, dgelu, a->mo, RD, cfg->gelu);
}

// Backward of residual_fwd: dresid += d out / d resid; returns the gradient
// of the branch before its dropout (in t->gb, or a gradient already there).
static const lra_real *residual_bwd(lra_model *m, const lra_ctx *ctx, const block_tmp *t, int site, int p_norm,
                                    const lra_real *xmid, const lra_real *stats, lra_real *dresid,
                                    const lra_real *dout) {
    lra_backend *be = ctx->be;
    int D = m->cfg.d_model;
    int64_t R = (int64_t)ctx->B * ctx->L;
    const lra_real *dsum = dout;
    if (xmid) {
        zero(be, t->gn, R * D);
        lra_norm_bwd(be, &m->cfg.norm, P(m, p_norm), G(m, p_norm), t->gn, dout, xmid, stats, R, D, ctx->training);
        dsum = t->gn;
    }
    be->axpby(be, dresid, 1, dsum, 1, R * D);
    return drop_bwd(m, ctx, site, m->cfg.dropout, t->gb, dsum, D);
}

// Backward of the FFN sub-block: gx1 = d out / d x1 applied to dout.
static void ffn_bwd(lra_model *m, lra_block *b, const lra_ctx *ctx, const block_acts *a, const block_tmp *t,
                    const lra_real *dout) {
    lra_backend *be = ctx->be;
    const lra_model_config *cfg = &m->cfg;
    int D = cfg->d_model, F = cfg->d_ffn;
    int64_t R = (int64_t)ctx->B * ctx->L;
    zero(be, t->gx1, R * D);
    const lra_real *dbr = residual_bwd(m, ctx, t, SITE_FFN_RESID, b->p_norm2, a->xmid2, a->st2, t->gx1, dout);
    zero(be, t->gf, R * F);
    lra_linear_bwd(be, t->gf, m->g[b->p_ffn + 2], m->g[b->p_ffn + 3], dbr, a->a1, m->p[b->p_ffn + 2], R, F, D);
    const lra_real *da = drop_bwd(m, ctx, SITE_FFN_ACT, cfg->dropout, t->gb, t->gf, F);
    zero(be, t->gf2, R * F);
    be->act_bwd(be, t->gf2, da, a->f1, R * F, cfg->ffn_act);
    if (!a->h2) {
        lra_linear_bwd(be, t->gx1, m->g[b->p_ffn], m->g[b->p_ffn + 1], t->gf2, a->x1, m->p[b->p_ffn], R, D, F);
        return;
    }
    zero(be, t->gh, R * D);
    lra_linear_bwd(be, t->gh, m->g[b->p_ffn], m->g[b->p_ffn + 1], t->gf2, a->h2, m->p[b->p_ffn], R, D, F);
    lra_norm_bwd(be, &cfg->norm, P(m, b->p_norm2), G(m, b->p_norm2), t->gx1, t->gh, a->x1, a->st2, R, D,
                 ctx->training);
}

int lra_block_backward(lra_model *m, lra_block *b, const lra_ctx *ctx, lra_real *dx, const lra_real *dout,
                       const lra_real *x, lra_err *err) {
    lra_backend *be = ctx->be;
    const lra_model_config *cfg = &m->cfg;
    int64_t R = (int64_t)ctx->B * ctx->L, RD = R * cfg->d_model;
    lra_carve c = { b->act, 0, INT64_MAX }, ct = { m->scratch, 0, INT64_MAX };
    block_acts a = block_carve(m, &c, ctx->B, ctx->L);
    block_tmp t = block_carve_tmp(m, &ct, ctx->B, ctx->L);
    const lra_real *g = dout;
    if (cfg->d_ffn > 0) {
        ffn_bwd(m, b, ctx, &a, &t, dout);
        g = t.gx1;
    }
    if (inside(m)) return b->mixer.vt->backward(&b->mixer, ctx, dx, g, x, err);
    const lra_real *ds = residual_bwd(m, ctx, &t, SITE_RESID, b->p_norm1, a.xmid, a.st1, dx, g);
    zero(be, t.gmo, RD);
    stage_bwd(m, b, ctx, &a, &t, t.gmo, ds);
    if (!a.h1) return b->mixer.vt->backward(&b->mixer, ctx, dx, t.gmo, x, err);
    zero(be, t.gh, RD);
    int rc = b->mixer.vt->backward(&b->mixer, ctx, t.gh, t.gmo, a.h1, err);
    if (rc) return rc;
    lra_norm_bwd(be, &cfg->norm, P(m, b->p_norm1), G(m, b->p_norm1), dx, t.gh, x, a.st1, R, cfg->d_model,
                 ctx->training);
    return LRA_OK;
}
