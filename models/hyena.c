// hyena.c: the Hyena operator (Poli et al. 2023, "Hyena Hierarchy: Towards
// Larger Convolutional Language Models"; models.md 8), in the operator form of
// the reference code: order N, N-1 implicit long filters, each gate applied
// before its convolution. With u (B, L, D):
//   z = in_proj(u) (B, L, (N+1)D),  z <- short_filter(z) (depthwise, causal),
//   split channels into x_0 .. x_{N-1}, v_0 = v;
//   for o = 0 .. N-2:  w_o = Dropout(v_o * x_{N-1-o}),
//                      v_{o+1} = h_o * w_o + bias_o w_o      (long FFT convolution)
//   y = out_proj(v_{N-1} * x_0).
// The implicit filters (paper eq. 7), for positions l < L of a layer built for L_max:
//   t_l = l / (L_max - 1) (buffer pos_emb.t),  z_l = pos_emb.z[l] (trainable),
//   h_l = Wout Sin(W_k .. Sin(W_0 z_l + b_0) ..),  Sin(a) = sin(freq * a),
//   h_o[d][l] = h_l[c] (exp(-t_l |deltas_c|) + shift),  c = o D + d.
// The bias term is added to lag 0 of the kernel, which is the same as the
// reference's "y + u D" of its fftconv.
//
// Bidirectional variant (LRA encoder; no Hyena config has one): every long
// filter becomes a two-sided kernel in S4's layout (models.md 0.2): the filter
// FFN's last Linear has 2 (N-1) D outputs, row c = 2 (o D + d) + r holds
// direction r (0: causal taps k_fwd[j] on u[t-j], 1: anti-causal taps k_bwd[i]
// on u[t+1+i]), both directions of a channel share its decay rate, and lag 0
// (with the bias) is counted once. The short filter stays causal. Padded
// positions (ctx->mask) are zeroed after the short filter, so no gate or
// convolution input carries them into real positions; their outputs are
// out_proj.bias.
//
// Parameters (names and shapes of HazyResearch/safari standalone_hyena.py;
// Df = (N-1) D, C = Df (causal) or 2 Df (bidirectional), F = filter_order,
// E = emb_dim, k = num_inner_mlps):
//   name                                   shape            group
//   in_proj.weight, in_proj.bias           ((N+1)D, D), ((N+1)D)   decay, no_decay
//   out_proj.weight, out_proj.bias         (D, D), (D)             decay, no_decay
//   short_filter.weight, short_filter.bias ((N+1)D, 1, 3), ((N+1)D) decay, no_decay
//   filter_fn.bias                         (Df)                    decay
//   filter_fn.pos_emb.z                    (1, L_max, E)           ssm_dt (safari: lr_pos_emb 1e-5, wd 0)
//   filter_fn.pos_emb.t                    (1, L_max, 1)           buffer
//   filter_fn.modulation.deltas            (1, 1, C)               buffer (modulation_lr = 0)
//   filter_fn.implicit_filter.1.freq       (1, F)                  ssm (one Sin module at 1, 3, .. 2k+1)
//   filter_fn.implicit_filter.0.weight/bias (F, E), (F)            ssm (filter lr 1e-3, wd 0)
//   filter_fn.implicit_filter.{2i+2}.weight/bias (F, F), (F), i < k  ssm
//   filter_fn.implicit_filter.{2k+2}.weight (C, F)                 ssm
#include "nn.h"

#include <math.h>
#include <string.h>

typedef struct {
    int    N, F, E, NI, Ks, CH;
    double w, dropout, fast, slow, target, shift;
} hyena_hp;

enum { P_IN_W, P_IN_B, P_OUT_W, P_OUT_B, P_SF_W, P_SF_B, P_FB, P_Z, P_T, P_DELTA, P_FREQ, P_FFN };

static const char *const hyena_keys[] = { "order", "filter_order", "emb_dim", "num_inner_mlps", "w",
                                          "short_filter_order", "dropout", "bidirectional", "fast_decay_pct",
                                          "slow_decay_pct", "target", "shift", NULL };

static int hyena_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    const char *who = "mixer.hyena";
    int64_t N, F, E, NI, Ks;
    double w, p, fast, slow, target, shift;
    int bidir, rc;
    if ((rc = lra_kv_check_known(kv, n, who, hyena_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "order", 2, 2, 16, &N, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "filter_order", 64, 1, 1 << 14, &F, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "emb_dim", 3, 3, 1 << 10, &E, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "num_inner_mlps", 2, 0, 64, &NI, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "short_filter_order", 3, 1, 64, &Ks, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "w", 1.0, -1e6, 1e6, &w, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dropout", 0.0, 0.0, 0.99, &p, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "bidirectional", 0, &bidir, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "fast_decay_pct", 0.3, 1e-6, 1e6, &fast, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "slow_decay_pct", 1.5, 1e-6, 1e6, &slow, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "target", 1e-2, 1e-30, 1 - 1e-12, &target, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "shift", 0.0, -1e6, 1e6, &shift, err))) return rc;
    if (E % 2 == 0)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.emb_dim: must be odd (time, then cosine and sine bands), got %lld",
                           lra_kv_where(lra_kv_find(kv, n, "emb_dim")), who, (long long)E);
    hyena_hp *hp = calloc(1, sizeof *hp);
    if (!hp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", who);
    *hp = (hyena_hp){ .N = (int)N, .F = (int)F, .E = (int)E, .NI = (int)NI, .Ks = (int)Ks, .CH = bidir ? 2 : 1,
                      .w = w, .dropout = p, .fast = fast, .slow = slow, .target = target, .shift = shift };
    m->hp = hp;
    return LRA_OK;
}

static int hyena_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const hyena_hp *hp = m->hp;
    int n = 0, D = m->D, W = (hp->N + 1) * D, Df = (hp->N - 1) * D, C = hp->CH * Df, F = hp->F;
    char name[LRA_PARAM_NAME_MAX];
    n = lra_spec_set(out, n, "in_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(W, D));
    n = lra_spec_set(out, n, "in_proj.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(W));
    n = lra_spec_set(out, n, "out_proj.weight", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, D));
    n = lra_spec_set(out, n, "out_proj.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(D));
    n = lra_spec_set(out, n, "short_filter.weight", LRA_GROUP_DECAY, 3, LRA_SHAPE(W, 1, hp->Ks));
    n = lra_spec_set(out, n, "short_filter.bias", LRA_GROUP_NO_DECAY, 1, LRA_SHAPE(W));
    n = lra_spec_set(out, n, "filter_fn.bias", LRA_GROUP_DECAY, 1, LRA_SHAPE(Df));
    n = lra_spec_set(out, n, "filter_fn.pos_emb.z", LRA_GROUP_SSM_DT, 3, LRA_SHAPE(1, m->L_max, hp->E));
    n = lra_spec_set(out, n, "filter_fn.pos_emb.t", LRA_GROUP_BUFFER, 3, LRA_SHAPE(1, m->L_max, 1));
    n = lra_spec_set(out, n, "filter_fn.modulation.deltas", LRA_GROUP_BUFFER, 3, LRA_SHAPE(1, 1, C));
    n = lra_spec_set(out, n, "filter_fn.implicit_filter.1.freq", LRA_GROUP_SSM, 2, LRA_SHAPE(1, F));
    for (int j = 0; j <= hp->NI; j++) {  // Linear 2j (index 0, then 2i + 2) with bias
        snprintf(name, sizeof name, "filter_fn.implicit_filter.%d.weight", 2 * j);
        n = lra_spec_set(out, n, name, LRA_GROUP_SSM, 2, LRA_SHAPE(F, j ? F : hp->E));
        snprintf(name, sizeof name, "filter_fn.implicit_filter.%d.bias", 2 * j);
        n = lra_spec_set(out, n, name, LRA_GROUP_SSM, 1, LRA_SHAPE(F));
    }
    snprintf(name, sizeof name, "filter_fn.implicit_filter.%d.weight", 2 * hp->NI + 2);
    n = lra_spec_set(out, n, name, LRA_GROUP_SSM, 2, LRA_SHAPE(C, F));
    return n;
}

static void hyena_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const hyena_hp *hp = m->hp;
    int D = m->D, W = (hp->N + 1) * D, Df = (hp->N - 1) * D, C = hp->CH * Df, F = hp->F, E = hp->E;
    int Lm = m->L_max, bands = (E - 1) / 2;
    lra_init_rng r = lra_init_rng_new(seed, 0x4E7A);
    lra_linear_init_fill(host[P_IN_W], host[P_IN_B], D, W, LRA_LINEAR_TORCH, &r);
    lra_linear_init_fill(host[P_OUT_W], host[P_OUT_B], D, D, LRA_LINEAR_TORCH, &r);
    // Conv1d default: U(+-1/sqrt(fan_in)), fan_in = (in / groups) * kernel = Ks
    lra_init_torch_linear(host[P_SF_W], (int64_t)W * hp->Ks, &r, hp->Ks);
    lra_init_torch_linear(host[P_SF_B], W, &r, hp->Ks);
    lra_init_normal(host[P_FB], Df, &r, 1.0);
    // z_l = [t_l, cos(f_b w_l).., -sin(f_b w_l)..], w_l = 2 pi l / L_max,
    // f_b = linspace(1e-4, bands - 1, bands) (models.md 8)
    for (int l = 0; l < Lm; l++) {
        double t = Lm > 1 ? (double)l / (Lm - 1) : 0.0, wl = 2 * M_PI * l / Lm;
        lra_real *z = host[P_Z] + (int64_t)l * E;
        z[0] = (lra_real)t;
        for (int b = 0; b < bands; b++) {
            double f = bands > 1 ? 1e-4 + (bands - 1 - 1e-4) * b / (bands - 1) : 1e-4;
            z[1 + b] = (lra_real)cos(f * wl);
            z[1 + bands + b] = (lra_real)-sin(f * wl);
        }
        host[P_T][l] = (lra_real)t;
    }
    // decay rates linspace(log(target)/slow, log(target)/fast, Df), shared by the CH directions
    double lo = log(hp->target) / hp->slow, hi = log(hp->target) / hp->fast;
    for (int c = 0; c < C; c++) {
        int k = c / hp->CH;
        host[P_DELTA][c] = (lra_real)(Df > 1 ? lo + (hi - lo) * k / (Df - 1) : lo);
    }
    lra_init_const(host[P_FREQ], F, hp->w);
    for (int j = 0; j <= hp->NI; j++)
        lra_linear_init_fill(host[P_FFN + 2 * j], host[P_FFN + 2 * j + 1], j ? F : E, F, LRA_LINEAR_TORCH, &r);
    lra_linear_init_fill(host[P_FFN + 2 * hp->NI + 2], NULL, F, C, LRA_LINEAR_TORCH, &r);
}

// Saved by forward. Filter (B-independent): a_j, s_j (k+1, L, F) the Sin
// inputs and outputs, win (L, C) the modulation window, K (C, L) the long
// kernels with the bias at lag 0, one ((N+1)D) ones. Operator: xp
// (B, L, (N+1)D) the in_proj output, U (N+1, B, D, L) the short-filtered
// (masked) streams x_0 .. x_{N-1}, v, then w (N-1, B, D, L) the gated
// convolution inputs, v (N-1, B, D, L) the convolution outputs, og (B, L, D).
typedef struct { lra_real *a, *s, *win, *K, *one, *xp, *U, *w, *v, *og; } hyena_acts;
// Temporaries: t1, t2 ((N+1) B L D), t3, t4 (B L D); filter side: f1, f2, f3
// (L, F), k1 (2 L C), k2 (L, C), z2 (2 L C), cc (2 C).
typedef struct { lra_real *t1, *t2, *t3, *t4, *f1, *f2, *f3, *k1, *k2, *z2, *cc; } hyena_tmp;

static int64_t hyena_C(const lra_mixer *m) {
    const hyena_hp *hp = m->hp;
    return (int64_t)hp->CH * (hp->N - 1) * m->D;
}

static hyena_acts hyena_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L) {
    const hyena_hp *hp = m->hp;
    int64_t n = (int64_t)B * L * m->D, lf = (int64_t)(hp->NI + 1) * L * hp->F, lc = hyena_C(m) * L;
    hyena_acts a;
    a.a = lra_carve_take(c, lf);
    a.s = lra_carve_take(c, lf);
    a.win = lra_carve_take(c, lc);
    a.K = lra_carve_take(c, lc);
    a.one = lra_carve_take(c, (hp->N + 1) * m->D);
    a.xp = lra_carve_take(c, (hp->N + 1) * n);
    a.U = lra_carve_take(c, (hp->N + 1) * n);
    a.w = lra_carve_take(c, (hp->N - 1) * n);
    a.v = lra_carve_take(c, (hp->N - 1) * n);
    a.og = lra_carve_take(c, n);
    return a;
}

static hyena_tmp hyena_carve_tmp(const lra_mixer *m, lra_carve *c, int B, int L) {
    const hyena_hp *hp = m->hp;
    int64_t n = (int64_t)B * L * m->D, lf = (int64_t)L * hp->F, lc = hyena_C(m) * L;
    hyena_tmp t;
    t.t1 = lra_carve_take(c, (hp->N + 1) * n);
    t.t2 = lra_carve_take(c, (hp->N + 1) * n);
    t.t3 = lra_carve_take(c, n);
    t.t4 = lra_carve_take(c, n);
    t.f1 = lra_carve_take(c, lf);
    t.f2 = lra_carve_take(c, lf);
    t.f3 = lra_carve_take(c, lf);
    t.k1 = lra_carve_take(c, 2 * lc);
    t.k2 = lra_carve_take(c, lc);
    t.z2 = lra_carve_take(c, 2 * lc);
    t.cc = lra_carve_take(c, 2 * hyena_C(m));
    return t;
}

static int64_t hyena_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    hyena_carve_acts(m, &c, B, L);
    return c.used;
}

static int64_t hyena_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    hyena_carve_tmp(m, &c, B, L);
    return c.used;
}

// win (L, C) = exp(-t_l |deltas_c|) + shift. |d| = relu(d) + relu(-d); the
// exponential of the real outer product through cexp on (re, 0) pairs,
// interleaved and split again by permute_0213.
static void hyena_window(lra_backend *be, const hyena_hp *hp, lra_real *win, const lra_real *t, const lra_real *delta,
                         int L, int C, hyena_tmp *s) {
    int64_t lc = (int64_t)L * C;
    lra_real *ad = s->cc, *neg = s->cc + C;
    be->act_fwd(be, ad, delta, C, LRA_ACT_RELU);
    be->axpby(be, neg, -1, delta, 0, C);
    be->act_fwd(be, neg, neg, C, LRA_ACT_RELU);
    be->add(be, ad, ad, neg, C);
    be->zero(be, s->z2, (size_t)(2 * lc) * sizeof(lra_real));
    be->gemm(be, 0, 0, L, C, 1, -1, t, 1, 0, ad, C, 0, 0, s->z2, C, 0, 1);  // rows 0: -t_l |d_c|; rows 1: 0
    be->permute_0213(be, s->k1, s->z2, 1, 2, lc, 1);                       // (L C) complex (re, 0)
    be->cexp(be, s->k1, s->k1, lc);
    be->permute_0213(be, s->z2, s->k1, 1, lc, 2, 1);                       // back to (2, L C): re = exp
    be->copy(be, win, s->z2, (size_t)lc * sizeof(lra_real));
    if (hp->shift != 0) {
        be->fill(be, s->k1, (lra_real)hp->shift, lc);
        be->add(be, win, win, s->k1, lc);
    }
}

// The filters: K (C, L) = transpose(FFN(z[0:L]) * win), bias added at lag 0.
static void hyena_filter_fwd(lra_mixer *m, lra_backend *be, int L, hyena_acts *a, hyena_tmp *s) {
    const hyena_hp *hp = m->hp;
    lra_real *const *p = m->p;
    int F = hp->F, C = (int)hyena_C(m), Df = C / hp->CH;
    int64_t lf = (int64_t)L * F;
    for (int j = 0; j <= hp->NI; j++) {  // a_j = in W_j^T + b_j, s_j = sin(freq a_j)
        const lra_real *in = j ? a->s + (j - 1) * lf : p[P_Z];
        lra_linear_fwd(be, a->a + j * lf, in, p[P_FFN + 2 * j], p[P_FFN + 2 * j + 1], L, j ? F : hp->E, F);
        be->mul_cols(be, s->f1, a->a + j * lf, p[P_FREQ], L, F);
        be->act_fwd(be, a->s + j * lf, s->f1, lf, LRA_ACT_SIN);
    }
    lra_linear_fwd(be, s->k2, a->s + hp->NI * lf, p[P_FFN + 2 * hp->NI + 2], NULL, L, F, C);  // h (L, C)
    hyena_window(be, hp, a->win, p[P_T], p[P_DELTA], L, C, s);
    be->mul(be, s->k2, s->k2, a->win, (int64_t)L * C);
    be->permute_0213(be, a->K, s->k2, 1, L, C, 1);  // (C, L) = (N-1, D, CH, L)
    be->fill(be, a->one, 1, (hp->N + 1) * m->D);
    // K[o D + d][0][0] += bias[o D + d]: a (Df, 1) column of row stride CH L
    be->gemm(be, 0, 0, Df, 1, 1, 1, p[P_FB], 1, 0, a->one, 1, 0, 1, a->K, hp->CH * L, 0, 1);
}

static lra_conv_mode hyena_mode(const hyena_hp *hp) { return hp->CH == 2 ? LRA_CONV_BIDIRECTIONAL : LRA_CONV_CAUSAL; }

static uint64_t hyena_seed(const lra_ctx *ctx, int o) { return lra_ctx_stream(ctx, 0x4E7A00 + (uint64_t)o); }

// x (B, W, L) times mask (B, L) broadcast over W: padded positions zeroed, in
// place. tmp (B, W, L) receives the broadcast mask (ones (W) outer mask[b]).
static void hyena_mask(lra_backend *be, const lra_ctx *ctx, lra_real *x, int W, lra_real *tmp, const lra_real *ones) {
    if (!ctx->maskf) return;
    int L = ctx->L;
    be->gemm(be, 0, 0, W, L, 1, 1, ones, 1, 0, ctx->maskf, L, L, 0, tmp, L, (int64_t)W * L, ctx->B);
    be->mul(be, x, x, tmp, (int64_t)ctx->B * W * L);
}

static int hyena_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    (void)err;
    const hyena_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, D = m->D, N = hp->N, W = (N + 1) * D;
    int64_t R = (int64_t)B * L, n = R * D, kl = (int64_t)D * hp->CH * L;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    hyena_acts a = hyena_carve_acts(m, &c, B, L);
    hyena_tmp s = hyena_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p;
    lra_real drop = ctx->training ? (lra_real)hp->dropout : 0;
    hyena_filter_fwd(m, be, L, &a, &s);
    lra_linear_fwd(be, a.xp, x, p[P_IN_W], p[P_IN_B], R, D, W);
    be->dwconv_fwd(be, s.t1, a.xp, p[P_SF_W], p[P_SF_B], B, L, W, hp->Ks);
    be->permute_0213(be, s.t2, s.t1, B, L, W, 1);  // (B, (N+1) D, L)
    hyena_mask(be, ctx, s.t2, W, s.t1, a.one);
    be->permute_0213(be, a.U, s.t2, 1, B, N + 1, (int64_t)D * L);  // (N+1, B, D, L)
    const lra_real *v = a.U + N * n;
    for (int o = 0; o < N - 1; o++) {
        lra_real *w = a.w + o * n, *vo = a.v + o * n;
        be->mul(be, w, v, a.U + (N - 1 - o) * n, n);
        if (drop > 0) be->dropout_fwd(be, w, w, 1, 1, n, drop, hyena_seed(ctx, o), 0);
        be->fftconv_fwd(be, vo, w, a.K + o * kl, B, D, L, hyena_mode(hp));
        v = vo;
    }
    be->mul(be, s.t3, v, a.U, n);
    be->permute_0213(be, a.og, s.t3, B, D, L, 1);  // (B, L, D)
    lra_linear_fwd(be, y, a.og, p[P_OUT_W], p[P_OUT_B], R, D, D);
    return LRA_OK;
}

// Filter backward from dK (C, L): the bias, the window (constant), the FFN
// (Sin: d a = freq cos(freq a) ds, d freq = sum a cos(freq a) ds) and rows
// 0..L-1 of pos_emb.z.
static void hyena_filter_bwd(lra_mixer *m, lra_backend *be, int L, const hyena_acts *a, hyena_tmp *s) {
    const hyena_hp *hp = m->hp;
    lra_real *const *p = m->p, *const *g = m->g;
    int F = hp->F, C = (int)hyena_C(m), Df = C / hp->CH;
    int64_t lf = (int64_t)L * F, lc = (int64_t)L * C;
    be->gemm(be, 0, 0, Df, 1, 1, 1, s->k1, hp->CH * L, 0, a->one, 1, 0, 1, g[P_FB], 1, 0, 1);  // dbias = dK[.][0][0]
    be->permute_0213(be, s->k2, s->k1, 1, C, L, 1);  // (L, C)
    be->mul(be, s->k2, s->k2, a->win, lc);
    lra_real *ds = s->f2, *da = s->f3;
    be->zero(be, ds, (size_t)lf * sizeof(lra_real));
    lra_linear_bwd(be, ds, g[P_FFN + 2 * hp->NI + 2], NULL, s->k2, a->s + hp->NI * lf, p[P_FFN + 2 * hp->NI + 2], L, F, C);
    for (int j = hp->NI; j >= 0; j--) {
        be->mul_cols(be, s->f1, a->a + j * lf, p[P_FREQ], L, F);  // freq a_j, recomputed
        be->zero(be, da, (size_t)lf * sizeof(lra_real));
        be->act_bwd(be, da, ds, s->f1, lf, LRA_ACT_SIN);           // d(freq a)
        be->zero(be, s->f1, (size_t)lf * sizeof(lra_real));
        be->mul_cols_bwd(be, s->f1, g[P_FREQ], da, a->a + j * lf, p[P_FREQ], L, F);  // d a_j
        if (j) {
            be->zero(be, ds, (size_t)lf * sizeof(lra_real));
            lra_linear_bwd(be, ds, g[P_FFN + 2 * j], g[P_FFN + 2 * j + 1], s->f1, a->s + (j - 1) * lf, p[P_FFN + 2 * j], L,
                           F, F);
        } else {
            lra_linear_bwd(be, g[P_Z], g[P_FFN], g[P_FFN + 1], s->f1, p[P_Z], p[P_FFN], L, hp->E, F);
        }
    }
}

static int hyena_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                          lra_err *err) {
    (void)err;
    const hyena_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, D = m->D, N = hp->N, W = (N + 1) * D;
    int64_t R = (int64_t)B * L, n = R * D, kl = (int64_t)D * hp->CH * L;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    hyena_acts a = hyena_carve_acts(m, &c, B, L);
    hyena_tmp s = hyena_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p, *const *g = m->g;
    lra_real drop = ctx->training ? (lra_real)hp->dropout : 0;
    // out_proj, then d(v_{N-1} x_0) in (B, D, L)
    be->zero(be, s.t4, (size_t)n * sizeof(lra_real));
    lra_linear_bwd(be, s.t4, g[P_OUT_W], g[P_OUT_B], dy, a.og, p[P_OUT_W], R, D, D);
    be->permute_0213(be, s.t3, s.t4, B, L, D, 1);
    lra_real *dU = s.t1, *dv = s.t4;  // dU (N+1, B, D, L); dv: gradient of the current v
    const lra_real *vlast = N > 1 ? a.v + (N - 2) * n : a.U + N * n;
    be->mul(be, dU, s.t3, vlast, n);          // d x_0
    be->mul(be, dv, s.t3, a.U, n);            // d v_{N-1}
    be->zero(be, s.k1, (size_t)hyena_C(m) * L * sizeof(lra_real));  // dK (C, L)
    for (int o = N - 2; o >= 0; o--) {
        lra_real *dw = s.t3;
        const lra_real *vo = o ? a.v + (o - 1) * n : a.U + N * n, *xg = a.U + (N - 1 - o) * n;
        be->zero(be, dw, (size_t)n * sizeof(lra_real));
        be->fftconv_bwd(be, dw, s.k1 + o * kl, dv, a.w + o * n, a.K + o * kl, B, D, L, hyena_mode(hp));
        if (drop > 0) {  // d(v_o x) through the same mask, into dv's buffer (dv is spent)
            be->zero(be, dv, (size_t)n * sizeof(lra_real));
            be->dropout_bwd(be, dv, dw, 1, 1, n, drop, hyena_seed(ctx, o), 0);
            be->copy(be, dw, dv, (size_t)n * sizeof(lra_real));
        }
        be->mul(be, dU + (N - 1 - o) * n, dw, vo, n);  // d x_{N-1-o}
        be->mul(be, dv, dw, xg, n);                    // d v_o
    }
    be->copy(be, dU + N * n, dv, (size_t)n * sizeof(lra_real));  // d v_0 = d v
    // back through the split, the mask, the transpose and the short filter
    be->permute_0213(be, s.t2, dU, 1, N + 1, B, (int64_t)D * L);  // (B, (N+1) D, L)
    hyena_mask(be, ctx, s.t2, W, s.t1, a.one);
    be->permute_0213(be, s.t1, s.t2, B, W, L, 1);  // (B, L, (N+1) D)
    be->zero(be, s.t2, (size_t)(N + 1) * n * sizeof(lra_real));
    be->dwconv_bwd(be, s.t2, g[P_SF_W], g[P_SF_B], s.t1, a.xp, p[P_SF_W], B, L, W, hp->Ks);
    lra_linear_bwd(be, dx, g[P_IN_W], g[P_IN_B], s.t2, x, p[P_IN_W], R, D, W);
    hyena_filter_bwd(m, be, L, &a, &s);
    return LRA_OK;
}

static int hyena_describe(const lra_mixer *m, char *out, size_t cap) {
    const hyena_hp *hp = m->hp;
    int w = snprintf(out, cap,
                     "order=%d;filter_order=%d;emb_dim=%d;num_inner_mlps=%d;w=%.17g;short_filter_order=%d;"
                     "dropout=%.9g;bidirectional=%s;fast_decay_pct=%.17g;slow_decay_pct=%.17g;target=%.17g;shift=%.17g",
                     hp->N, hp->F, hp->E, hp->NI, hp->w, hp->Ks, hp->dropout, hp->CH == 2 ? "true" : "false", hp->fast,
                     hp->slow, hp->target, hp->shift);
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void hyena_free(lra_mixer *m, lra_backend *be) {
    (void)be;
    free(m->hp);
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_hyena = {
    .name = "hyena",
    .summary = "Hyena: gated implicit long convolutions (Sin FFN filters, decay window), causal or bidirectional",
    .configure = hyena_configure,
    .param_specs = hyena_param_specs,
    .init = hyena_init,
    .act_size = hyena_act_size,
    .scratch_size = hyena_scratch_size,
    .forward = hyena_forward,
    .backward = hyena_backward,
    .free = hyena_free,
    .describe = hyena_describe,
};
