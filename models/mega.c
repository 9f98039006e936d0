// mega.c: MEGA, moving-average equipped gated attention (Ma et al., ICLR
// 2023; models.md 7), the MovingAverageGatedAttention sub-layer of the
// official fairseq code, its own norm, gates and residual included:
//   Xn  = norm(X) (prenorm) or X
//   V   = SiLU(Xn Wv^T + bv)                                        (L, v)
//   X'  = drop(SiLU(EMA(Xn) + omega * Xn))                          (eq. 3-5)
//   [u | z | r | hx] = X' Wmx^T + bmx, widths D, z, v, D
//   phi = sigmoid(u), Z = SiLU(z), R = SiLU(r)                      (eq. 6-12)
//   Q = kappa_0 * Z + mu_0,  K = kappa_1 * Z + mu_1
//   A = softmax(Q K^T / sqrt(z) + b_rel)  or  laplace(Q K^T / n + b_rel)
//       within blocks of c positions (MEGA-chunk) or over all of L
//   H'  = drop(SiLU(hx + (A V * R) Wh^T + bh))                      (eq. 13-14)
//   out = X + phi * (H' - X)                                        (eq. 15)
//   Y   = norm(out) (postnorm) or out.
// The EMA is a convolution with the damped kernel
//   k[l] = (1/sqrt(h)) sum_n gamma_n beta_n p_n q_n^l,  p = sigmoid(delta),
//   q = 1 - p sigmoid(alpha)   (ema_kernel_fwd),
// two-sided in encoder mode (bidirectional, lag 0 counted by both halves as
// the fairseq code does), applied by FFT (fftconv); padded positions are
// zeroed before it and are masked keys of the attention.
// The mixer's output is the whole sub-layer (residual_inside): the block adds
// no norm, stage or residual around it, and its FFN sub-block with SiLU is
// MEGA's normalised FFN (models.md 1).
//
// Parameters (names and shapes of fairseq's MovingAverageGatedAttention, so
// weights load into the official module; CH = 2 when bidirectional, N = ndim,
// M = chunk size, or max_positions when not chunked):
//   move.delta   (CH D, N, 1)   p = sigmoid(delta) (the paper's alpha)   decay
//   move.alpha   (CH D, N, 1)   damping sigmoid(alpha) (paper's delta)   decay
//   move.beta    (CH D, N, 1)   expansion beta                           decay
//   move.gamma   (CH D, N)      projection (paper's eta)                 decay
//   move.omega   (D)            residual scale of the EMA                decay
//   v_proj.weight (v, D), v_proj.bias (v)                                decay / no_decay
//   mx_proj.weight (2D + z + v, D), mx_proj.bias                         decay / no_decay
//   h_proj.weight (D, v), h_proj.bias (D)                                decay / no_decay
//   gamma        (2, z)         query/key scales kappa                   decay
//   beta         (2, z)         query/key offsets mu                     no_decay
//   rel_pos_bias.rel_pos_bias (2M - 1)  b_rel[i][j] = w[M - 1 + j - i]   no_decay
//   norm.norm.*  weight, bias (layer); scalar (scale); weight, bias,
//                running_mean, running_var (batch)                       no_decay / buffer
#include "nn.h"

#include <math.h>
#include <string.h>

typedef struct {
    int   N, CH, z, v, chunk, M, trunc, kind, prenorm;
    float dropout;
    lra_norm_cfg norm;
} mega_hp;

enum { P_DELTA, P_ALPHA, P_BETA, P_GAMMA, P_OMEGA, P_VW, P_VB, P_MXW, P_MXB, P_HW, P_HB, P_KAPPA, P_MU, P_REL,
       P_NORM };

static const char *const mega_keys[] = { "ndim", "z_dim", "v_dim", "attn", "chunk", "bidirectional", "truncation",
                                         "max_positions", "dropout", "norm", "prenorm", "norm_eps", "bn_momentum",
                                         NULL };
static const char *const mega_attn_names[] = { "softmax", "laplace", NULL };

static int mega_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    const char *who = "mixer.mega";
    int64_t N, z, v, chunk, trunc, maxpos;
    int kind, bidir, norm, prenorm, rc;
    double p, eps, mom;
    if ((rc = lra_kv_check_known(kv, n, who, mega_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "ndim", 16, 1, 4096, &N, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "z_dim", 64, 1, 1 << 16, &z, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "v_dim", 2 * (int64_t)m->D, 1, 1 << 20, &v, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "attn", 0, mega_attn_names, &kind, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "chunk", -1, -1, 1 << 24, &chunk, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "bidirectional", 1, &bidir, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "truncation", 0, 0, 1 << 30, &trunc, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "max_positions", m->L_max, 1, 1 << 24, &maxpos, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dropout", 0.0, 0.0, 0.99, &p, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "norm", LRA_NORM_LAYER, lra_norm_names, &norm, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "prenorm", 0, &prenorm, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "norm_eps", 1e-5, 0, 1, &eps, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "bn_momentum", 0.1, 0, 1, &mom, err))) return rc;
    if (chunk == 0) chunk = -1;
    if (chunk < 0 && maxpos < m->L_max)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.max_positions: %lld is below the sequence length %d",
                           lra_kv_where(lra_kv_find(kv, n, "max_positions")), who, (long long)maxpos, m->L_max);
    mega_hp *hp = calloc(1, sizeof *hp);
    if (!hp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", who);
    *hp = (mega_hp){ .N = (int)N, .CH = bidir ? 2 : 1, .z = (int)z, .v = (int)v, .chunk = (int)chunk,
                     .M = chunk > 0 ? (int)chunk : (int)maxpos, .trunc = (int)trunc, .kind = kind,
                     .prenorm = prenorm, .dropout = (float)p,
                     .norm = { (lra_norm_kind)norm, (float)eps, (float)mom, 1 } };
    m->hp = hp;
    return LRA_OK;
}

static int mega_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const mega_hp *hp = m->hp;
    int n = 0, D = m->D, R = hp->CH * D, N = hp->N, z = hp->z, v = hp->v, X = 2 * D + z + v;
    n = lra_spec_set(out, n, "move.delta", LRA_GROUP_DECAY, 3, LRA_SHAPE(R, N, 1));
    n = lra_spec_set(out, n, "move.alpha", LRA_GROUP_DECAY, 3, LRA_SHAPE(R, N, 1));
    n = lra_spec_set(out, n, "move.beta", LRA_GROUP_DECAY, 3, LRA_SHAPE(R, N, 1));
    n = lra_spec_set(out, n, "move.gamma", LRA_GROUP_DECAY, 2, LRA_SHAPE(R, N));
    n = lra_spec_set(out, n, "move.omega", LRA_GROUP_DECAY, 1, LRA_SHAPE(D));
    n = lra_spec_set(out, n, "v_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(v, D));
    n = lra_spec_set(out, n, "v_proj.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(v));
    n = lra_spec_set(out, n, "mx_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(X, D));
    n = lra_spec_set(out, n, "mx_proj.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(X));
    n = lra_spec_set(out, n, "h_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, v));
    n = lra_spec_set(out, n, "h_proj.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(D));
    n = lra_spec_set(out, n, "gamma", LRA_GROUP_DECAY, 2, LRA_SHAPE(2, z));
    n = lra_spec_set(out, n, "beta", LRA_GROUP_NO_DECAY, 2, LRA_SHAPE(2, z));
    n = lra_spec_set(out, n, "rel_pos_bias.rel_pos_bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(2 * (int64_t)hp->M - 1));
    return lra_norm_specs(&hp->norm, D, "norm.norm.", out, n);
}

// fairseq's reset_parameters (models.md 7).
static void mega_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const mega_hp *hp = m->hp;
    int D = m->D, N = hp->N, z = hp->z, v = hp->v, X = 2 * D + z + v;
    int64_t RN = (int64_t)hp->CH * D * N;
    lra_init_rng r = lra_init_rng_new(seed, 0x3E6A);
    lra_init_normal(host[P_DELTA], RN, &r, 0.2);
    lra_init_normal(host[P_ALPHA], RN, &r, 0.2);
    lra_init_normal(host[P_BETA], RN, &r, 0.02);
    for (int64_t i = 0; i < RN; i++) host[P_BETA][i] += (lra_real)(i % N % 2 ? -1.0 : 1.0);  // +1, -1, +1, ...
    lra_init_normal(host[P_GAMMA], RN, &r, 1.0);
    lra_init_normal(host[P_OMEGA], D, &r, 1.0);
    lra_init_normal(host[P_VW], (int64_t)v * D, &r, 0.02);
    lra_init_const(host[P_VB], v, 0);
    lra_init_normal(host[P_MXW], (int64_t)X * D, &r, 0.02);
    lra_init_const(host[P_MXB], X, 0);
    lra_init_normal(host[P_HW], (int64_t)D * v, &r, 0.02);
    lra_init_const(host[P_HB], D, 0);
    lra_init_normal(host[P_KAPPA], 2 * (int64_t)z, &r, 0.02);
    lra_init_const(host[P_MU], 2 * (int64_t)z, 0);
    lra_init_normal(host[P_REL], 2 * (int64_t)hp->M - 1, &r, 0.02);
    lra_norm_init(&hp->norm, D, host + P_NORM);
}

// Block length of a call: c when chunked and L > c, else L (fairseq
// attends over the whole of a sequence shorter than one chunk).
static int mega_block(const mega_hp *hp, int L) { return hp->chunk > 0 && L > hp->chunk ? hp->chunk : L; }

// Saved by forward (R = B L rows): xn normalised input (prenorm), nst norm
// statistics, vp pre-SiLU values, u masked input (B, D, L), K EMA kernel,
// ep pre-SiLU EMA output, mx dropped-out EMA output, gu pre-sigmoid update
// gate, zp, rp pre-SiLU shared representation and reset gate, hx, q, k,
// S raw scores and A weights (B, L, C), O = A V, hp pre-SiLU output, hd
// dropped-out H', out before the postnorm.
typedef struct { lra_real *xn, *nst, *vp, *u, *K, *ep, *mx, *gu, *zp, *rp, *hx, *q, *k, *S, *A, *O, *hp, *hd, *out; } mega_acts;
// Temporaries of one call.
typedef struct {
    lra_real *c1, *c2, *dK;                 // (B, D, L) x2, kernel gradient
    lra_real *d1, *d2, *d3, *d4, *d5, *d6;  // (R, D)
    lra_real *v1, *v2, *v3, *v4;            // (R, v)
    lra_real *z1, *z2, *z3, *z4;            // (R, z)
    lra_real *s1, *s2;                      // (B, L, C)
} mega_tmp;

static mega_acts mega_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L) {
    const mega_hp *hp = m->hp;
    int64_t R = (int64_t)B * L, RD = R * m->D, Rv = R * hp->v, Rz = R * hp->z, RC = R * mega_block(hp, L);
    mega_acts a;
    a.xn = hp->prenorm ? lra_carve_take(c, RD) : NULL;
    a.nst = lra_carve_take(c, lra_norm_stats_size(&hp->norm, R, m->D));
    a.vp = lra_carve_take(c, Rv);
    a.u = lra_carve_take(c, RD);
    a.K = lra_carve_take(c, (int64_t)m->D * hp->CH * L);
    a.ep = lra_carve_take(c, RD);
    a.mx = lra_carve_take(c, RD);
    a.gu = lra_carve_take(c, RD);
    a.zp = lra_carve_take(c, Rz);
    a.rp = lra_carve_take(c, Rv);
    a.hx = lra_carve_take(c, RD);
    a.q = lra_carve_take(c, Rz);
    a.k = lra_carve_take(c, Rz);
    a.S = lra_carve_take(c, RC);
    a.A = lra_carve_take(c, RC);
    a.O = lra_carve_take(c, Rv);
    a.hp = lra_carve_take(c, RD);
    a.hd = lra_carve_take(c, RD);
    a.out = hp->prenorm ? NULL : lra_carve_take(c, RD);
    return a;
}

static mega_tmp mega_carve_tmp(const lra_mixer *m, lra_carve *c, int B, int L) {
    const mega_hp *hp = m->hp;
    int64_t R = (int64_t)B * L, RD = R * m->D, Rv = R * hp->v, Rz = R * hp->z, RC = R * mega_block(hp, L);
    mega_tmp t;
    t.c1 = lra_carve_take(c, RD);
    t.c2 = lra_carve_take(c, RD);
    t.dK = lra_carve_take(c, (int64_t)m->D * hp->CH * L);
    lra_real **d[] = { &t.d1, &t.d2, &t.d3, &t.d4, &t.d5, &t.d6 };
    for (int i = 0; i < 6; i++) *d[i] = lra_carve_take(c, RD);
    lra_real **vv[] = { &t.v1, &t.v2, &t.v3, &t.v4 };
    for (int i = 0; i < 4; i++) *vv[i] = lra_carve_take(c, Rv);
    t.z1 = lra_carve_take(c, Rz);
    t.z2 = lra_carve_take(c, Rz);
    t.z3 = lra_carve_take(c, Rz);
    t.z4 = lra_carve_take(c, Rz);
    t.s1 = lra_carve_take(c, RC);
    t.s2 = lra_carve_take(c, RC);
    return t;
}

static int64_t mega_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    mega_carve_acts(m, &c, B, L);
    return c.used;
}

static int64_t mega_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    mega_carve_tmp(m, &c, B, L);
    return c.used;
}

static void zero(lra_backend *be, lra_real *x, int64_t n) { be->zero(be, x, (size_t)n * sizeof(lra_real)); }

// u (B, H, L) *= mask (B, L), row by row.
static void mask_channels(lra_backend *be, lra_real *u, const lra_real *maskf, int B, int H, int L) {
    for (int b = 0; b < B; b++)
        be->mul_cols(be, u + (int64_t)b * H * L, u + (int64_t)b * H * L, maskf + (int64_t)b * L, H, L);
}

static lra_conv_mode mega_mode(const mega_hp *hp) { return hp->CH == 2 ? LRA_CONV_BIDIRECTIONAL : LRA_CONV_CAUSAL; }
static int mega_taps(const mega_hp *hp, int L) { return hp->trunc > 0 && hp->trunc < L ? hp->trunc : L; }
static lra_real mega_scale(const mega_hp *hp) { return hp->kind == 0 ? (lra_real)(1.0 / sqrt(hp->z)) : 1; }
static int drop_on(const lra_ctx *ctx, const mega_hp *hp) { return ctx->training && hp->dropout > 0; }
enum { SITE_MX = 0x3E6A1, SITE_H = 0x3E6A2 };

static int mega_check_len(const lra_mixer *m, int L, lra_err *err) {
    const mega_hp *hp = m->hp;
    int C = mega_block(hp, L);
    if (L % C)
        return lra_err_set(err, LRA_EINVAL, "mixer.mega: length %d is not a multiple of the chunk size %d", L, C);
    if (C > hp->M)
        return lra_err_set(err, LRA_EINVAL, "mixer.mega: length %d exceeds max_positions %d", C, hp->M);
    return LRA_OK;
}

// EMA sub-layer: a.ep = conv(mask Xn) + omega Xn, a.mx = drop(SiLU(a.ep)).
static void ema_fwd(lra_mixer *m, const lra_ctx *ctx, const mega_acts *a, const mega_tmp *t, const lra_real *xn) {
    const mega_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    lra_real *const *p = m->p;
    int B = ctx->B, L = ctx->L, D = m->D;
    int64_t R = (int64_t)B * L;
    be->ema_kernel_fwd(be, a->K, p[P_DELTA], p[P_ALPHA], p[P_BETA], p[P_GAMMA], D, hp->N, hp->CH, mega_taps(hp, L), L,
                       (lra_real)(1.0 / sqrt(hp->N)));
    be->permute_0213(be, a->u, xn, B, L, D, 1);
    if (ctx->maskf) mask_channels(be, a->u, ctx->maskf, B, D, L);
    be->fftconv_fwd(be, t->c1, a->u, a->K, B, D, L, mega_mode(hp));
    be->permute_0213(be, a->ep, t->c1, B, D, L, 1);
    be->mul_cols(be, t->d1, xn, p[P_OMEGA], R, D);
    be->add(be, a->ep, a->ep, t->d1, R * D);
    be->act_fwd(be, a->mx, a->ep, R * D, LRA_ACT_SILU);
    if (drop_on(ctx, hp))
        be->dropout_fwd(be, a->mx, a->mx, B, L, D, hp->dropout, lra_ctx_stream(ctx, SITE_MX), 0);
}

// One slice of mx_proj: rows [off, off + O) of the weight.
static void mx_slice_fwd(lra_mixer *m, lra_backend *be, lra_real *y, const lra_real *mx, int64_t R, int off, int O) {
    int D = m->D;
    lra_linear_fwd(be, y, mx, m->p[P_MXW] + (int64_t)off * D, m->p[P_MXB] + off, R, D, O);
}

static void mx_slice_bwd(lra_mixer *m, lra_backend *be, lra_real *dmx, const lra_real *dy, const lra_real *mx,
                         int64_t R, int off, int O) {
    int D = m->D;
    lra_linear_bwd(be, dmx, m->g[P_MXW] + (int64_t)off * D, m->g[P_MXB] + off, dy, mx, m->p[P_MXW] + (int64_t)off * D,
                   R, D, O);
}

// Attention within blocks of C: a.S = Q K^T, a.A = weights, a.O = A V.
static void attn_fwd(lra_mixer *m, const lra_ctx *ctx, const mega_acts *a, const lra_real *V) {
    const mega_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int L = ctx->L, C = mega_block(hp, L), NK = ctx->B * (L / C), z = hp->z, v = hp->v;
    int64_t CC = (int64_t)C * C;
    be->gemm(be, 0, 1, C, C, z, 1, a->q, z, (int64_t)C * z, a->k, z, (int64_t)C * z, 0, a->S, C, CC, NK);
    be->mega_attn_fwd(be, a->A, a->S, m->p[P_REL], ctx->mask, ctx->B, L / C, C, hp->M, mega_scale(hp), hp->kind);
    be->gemm(be, 0, 0, C, v, C, 1, a->A, C, CC, V, v, (int64_t)C * v, 0, a->O, v, (int64_t)C * v, NK);
}

static int mega_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    const mega_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int rc = mega_check_len(m, ctx->L, err);
    if (rc) return rc;
    int B = ctx->B, L = ctx->L, D = m->D, z = hp->z, v = hp->v;
    int64_t R = (int64_t)B * L, RD = R * D;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    mega_acts a = mega_carve_acts(m, &c, B, L);
    mega_tmp t = mega_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p;
    const lra_real *xn = x;
    if (hp->prenorm) {
        lra_norm_fwd(be, &hp->norm, p + P_NORM, a.xn, a.nst, x, R, D, ctx->training);
        xn = a.xn;
    }
    lra_linear_fwd(be, a.vp, xn, p[P_VW], p[P_VB], R, D, v);
    ema_fwd(m, ctx, &a, &t, xn);
    mx_slice_fwd(m, be, a.gu, a.mx, R, 0, D);
    mx_slice_fwd(m, be, a.zp, a.mx, R, D, z);
    mx_slice_fwd(m, be, a.rp, a.mx, R, D + z, v);
    mx_slice_fwd(m, be, a.hx, a.mx, R, D + z + v, D);
    be->act_fwd(be, t.z1, a.zp, R * z, LRA_ACT_SILU);  // Z
    be->mul_cols(be, a.q, t.z1, p[P_KAPPA], R, z);
    be->bias_add(be, a.q, p[P_MU], R, z);
    be->mul_cols(be, a.k, t.z1, p[P_KAPPA] + z, R, z);
    be->bias_add(be, a.k, p[P_MU] + z, R, z);
    be->act_fwd(be, t.v1, a.vp, R * v, LRA_ACT_SILU);  // V
    attn_fwd(m, ctx, &a, t.v1);
    be->act_fwd(be, t.v2, a.rp, R * v, LRA_ACT_SILU);  // reset gate
    be->mul(be, t.v2, t.v2, a.O, R * v);
    lra_linear_fwd(be, a.hp, t.v2, p[P_HW], p[P_HB], R, v, D);
    be->add(be, a.hp, a.hp, a.hx, RD);
    be->act_fwd(be, a.hd, a.hp, RD, LRA_ACT_SILU);
    if (drop_on(ctx, hp)) be->dropout_fwd(be, a.hd, a.hd, B, L, D, hp->dropout, lra_ctx_stream(ctx, SITE_H), 0);
    be->act_fwd(be, t.d1, a.gu, RD, LRA_ACT_SIGMOID);  // phi
    be->copy(be, t.d2, a.hd, (size_t)RD * sizeof(lra_real));
    be->axpby(be, t.d2, -1, x, 1, RD);                 // H' - X
    be->mul(be, t.d2, t.d2, t.d1, RD);
    lra_real *out = hp->prenorm ? y : a.out;
    be->add(be, out, x, t.d2, RD);                     // eq. 15
    if (!hp->prenorm) lra_norm_fwd(be, &hp->norm, p + P_NORM, y, a.nst, a.out, R, D, ctx->training);
    return LRA_OK;
}

// Gradient before the dropout at `site`: into tmp when dropout is on.
static const lra_real *drop_bwd(const lra_ctx *ctx, const mega_hp *hp, uint64_t site, lra_real *tmp,
                                const lra_real *dy, int D) {
    if (!drop_on(ctx, hp)) return dy;
    zero(ctx->be, tmp, (int64_t)ctx->B * ctx->L * D);
    ctx->be->dropout_bwd(ctx->be, tmp, dy, ctx->B, ctx->L, D, hp->dropout, lra_ctx_stream(ctx, site), 0);
    return tmp;
}

// Attention backward from dO (t.v1): dQ (t.z1), dK (t.z2), dV (t.v4), and the
// relative bias gradient. t.v3 holds V.
static void attn_bwd(lra_mixer *m, const lra_ctx *ctx, const mega_acts *a, const mega_tmp *t) {
    const mega_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int L = ctx->L, C = mega_block(hp, L), NK = ctx->B * (L / C), z = hp->z, v = hp->v;
    int64_t CC = (int64_t)C * C, Cz = (int64_t)C * z, Cv = (int64_t)C * v;
    be->gemm(be, 0, 1, C, C, v, 1, t->v1, v, Cv, t->v3, v, Cv, 0, t->s1, C, CC, NK);   // dA = dO V^T
    be->gemm(be, 1, 0, C, v, C, 1, a->A, C, CC, t->v1, v, Cv, 0, t->v4, v, Cv, NK);    // dV = A^T dO
    zero(be, t->s2, (int64_t)NK * CC);
    be->mega_attn_bwd(be, t->s2, m->g[P_REL], t->s1, a->A, a->S, m->p[P_REL], ctx->mask, ctx->B, L / C, C, hp->M,
                      mega_scale(hp), hp->kind);
    be->gemm(be, 0, 0, C, z, C, 1, t->s2, C, CC, a->k, z, Cz, 0, t->z1, z, Cz, NK);    // dQ = dS K
    be->gemm(be, 1, 0, C, z, C, 1, t->s2, C, CC, a->q, z, Cz, 0, t->z2, z, Cz, NK);    // dK = dS^T Q
}

// EMA backward: dxn (t.d6) += d/dXn of a.mx applied to dmx; EMA parameters.
static void ema_bwd(lra_mixer *m, const lra_ctx *ctx, const mega_acts *a, const mega_tmp *t, const lra_real *dmx,
                    const lra_real *xn) {
    const mega_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    lra_real *const *p = m->p, *const *g = m->g;
    int B = ctx->B, L = ctx->L, D = m->D;
    int64_t R = (int64_t)B * L, RD = R * D;
    const lra_real *dsilu = drop_bwd(ctx, hp, SITE_MX, t->d3, dmx, D);
    zero(be, t->d4, RD);
    be->act_bwd(be, t->d4, dsilu, a->ep, RD, LRA_ACT_SILU);                // d ep
    be->mul_cols_bwd(be, t->d6, g[P_OMEGA], t->d4, xn, p[P_OMEGA], R, D);
    be->permute_0213(be, t->c1, t->d4, B, L, D, 1);
    zero(be, t->c2, RD);
    zero(be, t->dK, (int64_t)D * hp->CH * L);
    be->fftconv_bwd(be, t->c2, t->dK, t->c1, a->u, a->K, B, D, L, mega_mode(hp));
    if (ctx->maskf) mask_channels(be, t->c2, ctx->maskf, B, D, L);
    be->permute_0213(be, t->d3, t->c2, B, D, L, 1);
    be->add(be, t->d6, t->d6, t->d3, RD);
    be->ema_kernel_bwd(be, g[P_DELTA], g[P_ALPHA], g[P_BETA], g[P_GAMMA], t->dK, p[P_DELTA], p[P_ALPHA], p[P_BETA],
                       p[P_GAMMA], D, hp->N, hp->CH, mega_taps(hp, L), L, (lra_real)(1.0 / sqrt(hp->N)));
}

static int mega_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                         lra_err *err) {
    const mega_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int rc = mega_check_len(m, ctx->L, err);
    if (rc) return rc;
    int B = ctx->B, L = ctx->L, D = m->D, z = hp->z, v = hp->v;
    int64_t R = (int64_t)B * L, RD = R * D;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    mega_acts a = mega_carve_acts(m, &c, B, L);
    mega_tmp t = mega_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p, *const *g = m->g;
    const lra_real *xn = hp->prenorm ? a.xn : x, *dout = dy;
    if (!hp->prenorm) {
        zero(be, t.d5, RD);
        lra_norm_bwd(be, &hp->norm, p + P_NORM, g + P_NORM, t.d5, dy, a.out, a.nst, R, D, ctx->training);
        dout = t.d5;
    }
    // eq. 15: out = X + phi (H' - X)
    be->act_fwd(be, t.d1, a.gu, RD, LRA_ACT_SIGMOID);
    be->mul(be, t.d2, dout, t.d1, RD);             // d H' = dout phi
    be->axpby(be, dx, 1, dout, 1, RD);
    be->axpby(be, dx, -1, t.d2, 1, RD);            // dX += dout (1 - phi)
    be->copy(be, t.d3, a.hd, (size_t)RD * sizeof(lra_real));
    be->axpby(be, t.d3, -1, x, 1, RD);
    be->mul(be, t.d3, t.d3, dout, RD);             // d phi = dout (H' - X)
    zero(be, t.d1, RD);
    be->act_bwd(be, t.d1, t.d3, a.gu, RD, LRA_ACT_SIGMOID);  // d gu
    const lra_real *dh = drop_bwd(ctx, hp, SITE_H, t.d3, t.d2, D);
    zero(be, t.d4, RD);
    be->act_bwd(be, t.d4, dh, a.hp, RD, LRA_ACT_SILU);       // d hp = d hx
    // H' = SiLU(hx + (O R) Wh^T + bh)
    be->act_fwd(be, t.v2, a.rp, R * v, LRA_ACT_SILU);         // R
    be->mul(be, t.v3, t.v2, a.O, R * v);                      // O R
    zero(be, t.v4, R * v);
    lra_linear_bwd(be, t.v4, g[P_HW], g[P_HB], t.d4, t.v3, p[P_HW], R, v, D);
    be->mul(be, t.v1, t.v4, t.v2, R * v);                     // dO
    be->mul(be, t.v4, t.v4, a.O, R * v);                      // d R
    zero(be, t.v2, R * v);
    be->act_bwd(be, t.v2, t.v4, a.rp, R * v, LRA_ACT_SILU);   // d rp
    be->act_fwd(be, t.v3, a.vp, R * v, LRA_ACT_SILU);         // V
    attn_bwd(m, ctx, &a, &t);                                 // dQ z1, dK z2, dV v4
    be->act_fwd(be, t.z3, a.zp, R * z, LRA_ACT_SILU);         // Z
    zero(be, t.z4, R * z);                                    // d Z
    be->mul_cols_bwd(be, t.z4, g[P_KAPPA], t.z1, t.z3, p[P_KAPPA], R, z);
    be->sum_rows(be, g[P_MU], t.z1, R, z);
    be->mul_cols_bwd(be, t.z4, g[P_KAPPA] + z, t.z2, t.z3, p[P_KAPPA] + z, R, z);
    be->sum_rows(be, g[P_MU] + z, t.z2, R, z);
    zero(be, t.z3, R * z);
    be->act_bwd(be, t.z3, t.z4, a.zp, R * z, LRA_ACT_SILU);   // d zp
    zero(be, t.d5, RD);                                       // d mx
    mx_slice_bwd(m, be, t.d5, t.d1, a.mx, R, 0, D);
    mx_slice_bwd(m, be, t.d5, t.z3, a.mx, R, D, z);
    mx_slice_bwd(m, be, t.d5, t.v2, a.mx, R, D + z, v);
    mx_slice_bwd(m, be, t.d5, t.d4, a.mx, R, D + z + v, D);
    zero(be, t.d6, RD);                                       // d Xn
    ema_bwd(m, ctx, &a, &t, t.d5, xn);
    zero(be, t.v1, R * v);
    be->act_bwd(be, t.v1, t.v4, a.vp, R * v, LRA_ACT_SILU);   // d vp
    lra_linear_bwd(be, t.d6, g[P_VW], g[P_VB], t.v1, xn, p[P_VW], R, D, v);
    if (hp->prenorm) lra_norm_bwd(be, &hp->norm, p + P_NORM, g + P_NORM, dx, t.d6, x, a.nst, R, D, ctx->training);
    else be->axpby(be, dx, 1, t.d6, 1, RD);
    return LRA_OK;
}

static int mega_describe(const lra_mixer *m, char *out, size_t cap) {
    const mega_hp *hp = m->hp;
    int w = snprintf(out, cap,
                     "ndim=%d;z_dim=%d;v_dim=%d;attn=%s;chunk=%d;bidirectional=%s;truncation=%d;max_positions=%d;"
                     "dropout=%.9g;norm=%s;prenorm=%s;norm_eps=%.9g;bn_momentum=%.9g",
                     hp->N, hp->z, hp->v, mega_attn_names[hp->kind], hp->chunk, hp->CH == 2 ? "true" : "false",
                     hp->trunc, hp->chunk > 0 ? m->L_max : hp->M, hp->dropout, lra_norm_names[hp->norm.kind],
                     hp->prenorm ? "true" : "false", hp->norm.eps, hp->norm.momentum);
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void mega_free(lra_mixer *m, lra_backend *be) {
    (void)be;
    free(m->hp);
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_mega = {
    .name = "mega",
    .summary = "MEGA: damped EMA (FFT) + single-head gated attention (softmax/laplace, chunked), own norm and gated residual",
    .configure = mega_configure,
    .param_specs = mega_param_specs,
    .init = mega_init,
    .act_size = mega_act_size,
    .scratch_size = mega_scratch_size,
    .forward = mega_forward,
    .backward = mega_backward,
    .free = mega_free,
    .describe = mega_describe,
    .residual_inside = 1,
};
