// s4d.c: S4D, the diagonal state space layer (Gu et al. 2022, "On the
// Parameterization and Initialization of Diagonal State Space Models";
// models.md 3). Per channel h of D:
//   A_n = -exp(A_real) - i A_imag,  dt = softplus(inv_dt) (or exp(log_dt)),
//   K[l] = 2 Re sum_n C_n B_n (e^{dt A_n} - 1)/A_n e^{l dt A_n}   (ZOH; bilinear optional)
//   y = K * u + D u          (causal, or two kernels in S4's two-sided layout)
// The block around it (GELU, Linear, GLU, residual) is the model's stage.
//
// Parameters (names and shapes of state-spaces/s4 SSMKernelDiag inside
// FFTConv, so weights load into the official modules; Nc = d_state / 2
// complex modes, S = n_ssm, CH = 2 when bidirectional else 1):
//   name             shape            meaning                              group
//   kernel.inv_dt    (D, 1)           softplus^-1(dt), or log(dt) with     ssm_dt
//                                     dt_transform=exp (the name is the same)
//   kernel.A_real    (S, Nc)          log(-Re A)                           ssm
//   kernel.A_imag    (S, Nc)          -Im A                                ssm
//   kernel.B         (1, S, Nc, 2)    B as a real view                     ssm
//   kernel.C         (CH, D, Nc, 2)   C as a real view                     decay
//   D                (1, D)           skip                                 decay
// Channel h uses the (A, B) copy h % S (the reference repeats the S copies
// over D; n_ssm = 1 by default, null for one copy per channel). Initialisation (models.md 3): dt log-uniform in [dt_min, dt_max];
// A_real = log 1/2; A_imag: lin pi n, inv (N/pi)(N/(2n+1) - 1), legs the
// HiPPO-LegS frequencies (B then V* B_LegS with Im clipped to [-2, 2], else
// B = 1); C complex normal (each part variance 1/2); D standard normal.
#include "hippo.h"
#include "nn.h"
#include "ssm.h"

#include <math.h>
#include <string.h>

typedef enum { S4D_LIN = 0, S4D_INV, S4D_LEGS } s4d_init_kind;

typedef struct {
    int    N, Nc, S, CH, bilinear, dt_exp, init;
    double dt_min, dt_max;
    // step mode (step_prepare): z = e^w and coef for channel c = 0, (D, Nc)c
    lra_real *z, *coef;
} s4d_hp;

enum { P_DT, P_AR, P_AI, P_B, P_C, P_D, P_COUNT };

static const char *const s4d_keys[] = { "d_state", "init", "disc", "dt_min", "dt_max", "dt_transform", "n_ssm",
                                        "bidirectional", NULL };

static int s4d_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    const char *who = "mixer.s4d";
    static const char *const inits[] = { "lin", "inv", "legs", NULL }, *const discs[] = { "zoh", "bilinear", NULL };
    int64_t N;
    double dt_min, dt_max;
    int init, disc, dt_exp, S, bidir, rc;
    if ((rc = lra_kv_check_known(kv, n, who, s4d_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "d_state", 64, 2, 1 << 16, &N, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "init", S4D_LIN, inits, &init, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "disc", 0, discs, &disc, err))) return rc;
    if ((rc = lra_ssm_parse_dt(kv, n, who, &dt_min, &dt_max, &dt_exp, err))) return rc;
    if ((rc = lra_ssm_parse_n_ssm(kv, n, who, m->D, &S, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "bidirectional", 0, &bidir, err))) return rc;
    if (N % 2)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.d_state: must be even (N/2 conjugate pairs), got %lld",
                           lra_kv_where(lra_kv_find(kv, n, "d_state")), who, (long long)N);
    s4d_hp *hp = calloc(1, sizeof *hp);
    if (!hp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", who);
    *hp = (s4d_hp){ .N = (int)N, .Nc = (int)N / 2, .S = S, .CH = bidir ? 2 : 1, .bilinear = disc,
                    .dt_exp = dt_exp, .init = init, .dt_min = dt_min, .dt_max = dt_max };
    m->hp = hp;
    return LRA_OK;
}

static int s4d_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const s4d_hp *hp = m->hp;
    int n = 0, D = m->D, S = hp->S, Nc = hp->Nc;
    n = lra_spec_set(out, n, "kernel.inv_dt", LRA_GROUP_SSM_DT, 2, LRA_SHAPE(D, 1));
    n = lra_spec_set(out, n, "kernel.A_real", LRA_GROUP_SSM, 2, LRA_SHAPE(S, Nc));
    n = lra_spec_set(out, n, "kernel.A_imag", LRA_GROUP_SSM, 2, LRA_SHAPE(S, Nc));
    n = lra_spec_set(out, n, "kernel.B", LRA_GROUP_SSM, 4, LRA_SHAPE(1, S, Nc, 2));
    n = lra_spec_set(out, n, "kernel.C", LRA_GROUP_DECAY, 4, LRA_SHAPE(hp->CH, D, Nc, 2));
    n = lra_spec_set(out, n, "D", LRA_GROUP_DECAY, 2, LRA_SHAPE(1, D));
    return n;
}

static void s4d_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const s4d_hp *hp = m->hp;
    int D = m->D, Nc = hp->Nc;
    lra_init_rng r = lra_init_rng_new(seed, 0x54D);
    lra_ssm_init_dt(host[P_DT], D, hp->dt_min, hp->dt_max, hp->dt_exp, &r);
    double *Lam = NULL, *P = NULL, *Bl = NULL;
    if (hp->init == S4D_LEGS) {
        Lam = malloc(sizeof(double) * 6 * Nc), P = Lam + 2 * Nc, Bl = P + 2 * Nc;
        LRA_ASSERT(Lam && lra_hippo_legs_nplr(hp->N, Lam, P, Bl, NULL) == LRA_OK);
    }
    for (int s = 0; s < hp->S; s++)
        for (int n = 0; n < Nc; n++) {
            int64_t i = (int64_t)s * Nc + n;
            double im = hp->init == S4D_LIN ? M_PI * n
                      : hp->init == S4D_INV ? hp->N / M_PI * (hp->N / (2.0 * n + 1) - 1)
                                            : -Lam[2 * n + 1];
            host[P_AR][i] = (lra_real)log(0.5);
            host[P_AI][i] = (lra_real)im;
            host[P_B][2 * i] = (lra_real)(Bl ? Bl[2 * n] : 1.0);
            host[P_B][2 * i + 1] = (lra_real)(Bl ? fmin(2.0, fmax(-2.0, Bl[2 * n + 1])) : 0.0);
        }
    free(Lam);
    lra_init_normal(host[P_C], 2 * (int64_t)hp->CH * D * Nc, &r, sqrt(0.5));
    lra_init_normal(host[P_D], D, &r, 1.0);
}

// Saved by forward: w, coef (D, CH, Nc)c; the kernel K (D, CH, L); the
// (masked) input u (B, D, L).
typedef struct { lra_real *w, *coef, *K, *u; } s4d_acts;
// Temporaries: three (B, L, D) buffers, dK, dw, dcoef.
typedef struct { lra_real *t1, *t2, *t3, *dK, *dw, *dcoef; } s4d_tmp;

static s4d_acts s4d_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L) {
    const s4d_hp *hp = m->hp;
    int64_t nk = 2 * (int64_t)m->D * hp->CH * hp->Nc, n = (int64_t)B * L * m->D;
    s4d_acts a;
    a.w = lra_carve_take(c, nk);
    a.coef = lra_carve_take(c, nk);
    a.K = lra_carve_take(c, (int64_t)m->D * hp->CH * L);
    a.u = lra_carve_take(c, n);
    return a;
}

static s4d_tmp s4d_carve_tmp(const lra_mixer *m, lra_carve *c, int B, int L) {
    const s4d_hp *hp = m->hp;
    int64_t nk = 2 * (int64_t)m->D * hp->CH * hp->Nc, n = (int64_t)B * L * m->D;
    s4d_tmp t;
    t.t1 = lra_carve_take(c, n);
    t.t2 = lra_carve_take(c, n);
    t.t3 = lra_carve_take(c, n);
    t.dK = lra_carve_take(c, (int64_t)m->D * hp->CH * L);
    t.dw = lra_carve_take(c, nk);
    t.dcoef = lra_carve_take(c, nk);
    return t;
}

static int64_t s4d_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    s4d_carve_acts(m, &c, B, L);
    return c.used;
}

static int64_t s4d_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    s4d_carve_tmp(m, &c, B, L);
    return c.used;
}

static lra_conv_mode s4d_mode(const s4d_hp *hp) { return hp->CH == 2 ? LRA_CONV_BIDIRECTIONAL : LRA_CONV_CAUSAL; }

static int s4d_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    (void)err;
    const s4d_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, D = m->D, R = D * hp->CH;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    s4d_acts a = s4d_carve_acts(m, &c, B, L);
    s4d_tmp t = s4d_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p;
    be->s4d_discretize_fwd(be, a.w, a.coef, p[P_DT], p[P_AR], p[P_AI], p[P_B], p[P_C], D, hp->S, hp->Nc, hp->CH,
                           hp->bilinear, hp->dt_exp);
    be->vandermonde_fwd(be, a.K, a.coef, a.w, R, hp->Nc, L);
    lra_ssm_conv_fwd(be, ctx, y, a.u, x, a.K, p[P_D], D, s4d_mode(hp), t.t1, t.t2);
    return LRA_OK;
}

static int s4d_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                        lra_err *err) {
    (void)err;
    const s4d_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, D = m->D, R = D * hp->CH;
    int64_t nk = 2 * (int64_t)R * hp->Nc;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    s4d_acts a = s4d_carve_acts(m, &c, B, L);
    s4d_tmp t = s4d_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p, *const *g = m->g;
    be->zero(be, t.dK, (size_t)R * L * sizeof(lra_real));
    lra_ssm_conv_bwd(be, ctx, dx, g[P_D], t.dK, dy, a.u, x, a.K, p[P_D], D, s4d_mode(hp), t.t1, t.t2, t.t3);
    be->zero(be, t.dw, (size_t)nk * sizeof(lra_real));
    be->zero(be, t.dcoef, (size_t)nk * sizeof(lra_real));
    be->vandermonde_bwd(be, t.dcoef, t.dw, t.dK, a.coef, a.w, R, hp->Nc, L);
    be->s4d_discretize_bwd(be, g[P_DT], g[P_AR], g[P_AI], g[P_B], g[P_C], t.dw, t.dcoef, p[P_DT], p[P_AR], p[P_AI],
                           p[P_B], p[P_C], D, hp->S, hp->Nc, hp->CH, hp->bilinear, hp->dt_exp);
    return LRA_OK;
}

// ---- recurrent step (causal): state s (B, D, Nc)c, s <- z s + u, y = Re sum coef s + D u
// (coef already holds 2 C B-bar, so K[l] = Re sum coef z^l: the step reproduces the convolution).

static int64_t s4d_state_size(const lra_mixer *m, int B) {
    return 2 * (int64_t)B * m->D * ((const s4d_hp *)m->hp)->Nc;
}

static void s4d_free_step(s4d_hp *hp, lra_backend *be) {
    if (hp->z) be->free(be, hp->z);
    hp->z = hp->coef = NULL;
}

static int s4d_step_prepare(lra_mixer *m, lra_backend *be, lra_err *err) {
    s4d_hp *hp = m->hp;
    if (hp->CH != 1)
        return lra_err_set(err, LRA_EUNSUPPORTED, "mixer.s4d: the recurrent step needs a causal layer (bidirectional = false)");
    s4d_free_step(hp, be);
    int64_t nk = 2 * (int64_t)m->D * hp->Nc;
    hp->z = be->alloc(be, (size_t)(2 * nk) * sizeof(lra_real), err);
    if (!hp->z) return err->code;
    hp->coef = hp->z + nk;
    lra_real *const *p = m->p;
    be->s4d_discretize_fwd(be, hp->z, hp->coef, p[P_DT], p[P_AR], p[P_AI], p[P_B], p[P_C], m->D, hp->S, hp->Nc, 1,
                           hp->bilinear, hp->dt_exp);
    be->cexp(be, hp->z, hp->z, nk / 2);
    return LRA_OK;
}

static int s4d_step(lra_mixer *m, const lra_ctx *ctx, lra_real *state, lra_real *y, const lra_real *x, lra_err *err) {
    s4d_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    if (!hp->z) return lra_err_set(err, LRA_EINVAL, "mixer.s4d: step before step_prepare");
    // Positions are real tokens: a caller stepping through a padded batch stops
    // each sequence at its length (convolution mode zeroes padded inputs).
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    s4d_tmp t = s4d_carve_tmp(m, &cs, ctx->B, 1);
    be->diag_ssm_step(be, y, state, x, hp->z, hp->coef, ctx->B, m->D, hp->Nc);
    be->mul_cols(be, t.t1, x, m->p[P_D], ctx->B, m->D);
    be->add(be, y, y, t.t1, (int64_t)ctx->B * m->D);
    return LRA_OK;
}

static int s4d_describe(const lra_mixer *m, char *out, size_t cap) {
    static const char *const inits[] = { "lin", "inv", "legs" };
    const s4d_hp *hp = m->hp;
    int w = snprintf(out, cap,
                     "d_state=%d;init=%s;disc=%s;dt_min=%.17g;dt_max=%.17g;dt_transform=%s;n_ssm=%d;bidirectional=%s",
                     hp->N, inits[hp->init], hp->bilinear ? "bilinear" : "zoh", hp->dt_min, hp->dt_max,
                     hp->dt_exp ? "exp" : "softplus", hp->S, hp->CH == 2 ? "true" : "false");
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void s4d_free(lra_mixer *m, lra_backend *be) {
    if (!m->hp) return;
    s4d_free_step(m->hp, be);
    free(m->hp);
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_s4d = {
    .name = "s4d",
    .summary = "S4D: diagonal SSM (Lin/Inv/LegS init, ZOH/bilinear), FFT convolution, recurrent step",
    .configure = s4d_configure,
    .param_specs = s4d_param_specs,
    .init = s4d_init,
    .act_size = s4d_act_size,
    .scratch_size = s4d_scratch_size,
    .forward = s4d_forward,
    .backward = s4d_backward,
    .state_size = s4d_state_size,
    .step_prepare = s4d_step_prepare,
    .step = s4d_step,
    .free = s4d_free,
    .describe = s4d_describe,
};
