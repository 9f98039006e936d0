// lru.c: the Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting
// Recurrent Neural Networks for Long Sequences"; models.md 6, lra.md 5.4).
// N complex modes, width H = D:
//   lambda = exp(-exp(nu_log) + i exp(theta_log))       (|lambda| < 1 always)
//   B_norm = (B_re + i B_im) diag-scaled by exp(gamma_log) per row
//   x_k = lambda x_{k-1} + B_norm u_k,   x_{-1} = 0      (models.md 0.3)
//   y_k = Re(C x_k) + D u_k,             C = C_re + i C_im
// u is the input with padded positions zeroed. Bidirectional (S5's layout,
// models.md 0.2): a second scan runs in reverse time over the same B_norm u
// with its own C; y = Re(C_fwd x_fwd + C_bwd x_bwd) + D u, both directions
// counting the current input. The block around it (GELU, GLU, residual) is
// the model's stage.
//
// Parameters (the names and shapes of the official LRU; CH = 2 when
// bidirectional, else 1):
//   name        shape        meaning                                    group
//   nu_log      (N)          log nu, |lambda| = exp(-nu)                ssm
//   theta_log   (N)          log of the phase of lambda                 ssm
//   gamma_log   (N)          log of the input normalisation gamma       ssm
//   B_re, B_im  (N, D)       input matrix                               ssm
//   C_re, C_im  (D, CH N)    output matrix; columns [N, 2N) read the    decay
//                            reverse scan
//   D           (D)          skip                                       decay
// Initialisation (models.md 6): |lambda| uniform on the ring [r_min, r_max]:
// nu = -log(u1 (r_max^2 - r_min^2) + r_min^2) / 2; theta = max_phase u2;
// gamma = sqrt(1 - |lambda|^2); B_re, B_im ~ N(0, 1/(2D)); C_re, C_im ~
// N(0, 1/N); D ~ N(0, 1).
//
// The projections are GEMMs on the real views (lru_params_fwd lays out B_norm
// as (2N, D) rows re/im and C as (D, 2N) columns (re, -im)); the recurrence
// is the backend's time-invariant scan; backward runs the adjoint scan
// (grad lambda = sum_k conj(x_{k-1}) a_k, models.md 0.3).
#include "layer.h"

#include <math.h>
#include <string.h>

typedef struct {
    int    N, CH;
    double r_min, r_max, max_phase;
    // step mode (step_prepare): lambda (N)c, Bw (N, 2, D), Cw (D, 2N)
    lra_real *lam, *Bw, *Cw;
} lru_hp;

enum { P_NU, P_THETA, P_GAMMA, P_BRE, P_BIM, P_CRE, P_CIM, P_D, P_COUNT };

static const char *const lru_keys[] = { "d_state", "r_min", "r_max", "max_phase", "bidirectional", NULL };

static int lru_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    const char *who = "mixer.lru";
    int64_t N;
    double r_min, r_max, phase;
    int bidir, rc;
    if ((rc = lra_kv_check_known(kv, n, who, lru_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "d_state", 256, 1, 1 << 16, &N, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "r_min", 0.0, 0.0, 1.0, &r_min, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "r_max", 1.0, 0.0, 1.0, &r_max, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "max_phase", 6.28, 1e-12, 1e3, &phase, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "bidirectional", 0, &bidir, err))) return rc;
    if (r_min > r_max)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.r_min: %g is above r_max = %g",
                           lra_kv_where(lra_kv_find(kv, n, "r_min")), who, r_min, r_max);
    lru_hp *hp = calloc(1, sizeof *hp);
    if (!hp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", who);
    *hp = (lru_hp){ .N = (int)N, .CH = bidir ? 2 : 1, .r_min = r_min, .r_max = r_max, .max_phase = phase };
    m->hp = hp;
    return LRA_OK;
}

static int lru_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const lru_hp *hp = m->hp;
    int n = 0, D = m->D, N = hp->N;
    n = lra_spec_set(out, n, "nu_log", LRA_GROUP_SSM, 1, LRA_SHAPE(N));
    n = lra_spec_set(out, n, "theta_log", LRA_GROUP_SSM, 1, LRA_SHAPE(N));
    n = lra_spec_set(out, n, "gamma_log", LRA_GROUP_SSM, 1, LRA_SHAPE(N));
    n = lra_spec_set(out, n, "B_re", LRA_GROUP_SSM, 2, LRA_SHAPE(N, D));
    n = lra_spec_set(out, n, "B_im", LRA_GROUP_SSM, 2, LRA_SHAPE(N, D));
    n = lra_spec_set(out, n, "C_re", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, hp->CH * N));
    n = lra_spec_set(out, n, "C_im", LRA_GROUP_DECAY, 2, LRA_SHAPE(D, hp->CH * N));
    n = lra_spec_set(out, n, "D", LRA_GROUP_DECAY, 1, LRA_SHAPE(D));
    return n;
}

static void lru_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const lru_hp *hp = m->hp;
    int D = m->D, N = hp->N;
    lra_init_rng r = lra_init_rng_new(seed, 0x1B0);
    double r2min = hp->r_min * hp->r_min, r2max = hp->r_max * hp->r_max;
    for (int n = 0; n < N; n++) {
        double u1 = lra_init_uniform01(&r), u2 = lra_init_uniform01(&r);
        // |lambda|^2 uniform in [r_min^2, r_max^2]: uniform density on the ring (LRU Lemma 2)
        double nu = fmax(-0.5 * log(fmax(u1 * (r2max - r2min) + r2min, 1e-300)), 1e-300);
        host[P_NU][n] = (lra_real)log(nu);
        host[P_THETA][n] = (lra_real)log(fmax(hp->max_phase * u2, 1e-300));
        host[P_GAMMA][n] = (lra_real)(0.5 * log(-expm1(-2 * nu)));  // log sqrt(1 - |lambda|^2)
    }
    int64_t nb = (int64_t)N * D, nc = (int64_t)D * hp->CH * N;
    lra_init_normal(host[P_BRE], nb, &r, 1 / sqrt(2.0 * D));
    lra_init_normal(host[P_BIM], nb, &r, 1 / sqrt(2.0 * D));
    lra_init_normal(host[P_CRE], nc, &r, 1 / sqrt((double)N));
    lra_init_normal(host[P_CIM], nc, &r, 1 / sqrt((double)N));
    lra_init_normal(host[P_D], D, &r, 1.0);
}

// Saved by forward: lambda (N)c, Bw (N, 2, D), Cw (D, CH, N, 2), the masked
// input u (B, L, D) (unused without a mask), the states X (CH, B, L, N)c.
typedef struct { lra_real *lam, *Bw, *Cw, *u, *X; } lru_acts;
// Temporaries: b (B, L, N)c (db in backward), dX (B, L, N)c, two (B, L, D)
// buffers, dlambda, dBw, dCw.
typedef struct { lra_real *b, *dX, *t1, *t2, *dlam, *dBw, *dCw; } lru_tmp;

static lru_acts lru_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L) {
    const lru_hp *hp = m->hp;
    int64_t nx = 2 * (int64_t)B * L * hp->N;
    lru_acts a;
    a.lam = lra_carve_take(c, 2 * (int64_t)hp->N);
    a.Bw = lra_carve_take(c, 2 * (int64_t)hp->N * m->D);
    a.Cw = lra_carve_take(c, 2 * (int64_t)m->D * hp->CH * hp->N);
    a.u = lra_carve_take(c, (int64_t)B * L * m->D);
    a.X = lra_carve_take(c, hp->CH * nx);
    return a;
}

static lru_tmp lru_carve_tmp(const lra_mixer *m, lra_carve *c, int B, int L) {
    const lru_hp *hp = m->hp;
    int64_t nx = 2 * (int64_t)B * L * hp->N, n = (int64_t)B * L * m->D;
    lru_tmp t;
    t.b = lra_carve_take(c, nx);
    t.dX = lra_carve_take(c, nx);
    t.t1 = lra_carve_take(c, n);
    t.t2 = lra_carve_take(c, n);
    t.dlam = lra_carve_take(c, 2 * (int64_t)hp->N);
    t.dBw = lra_carve_take(c, 2 * (int64_t)hp->N * m->D);
    t.dCw = lra_carve_take(c, 2 * (int64_t)m->D * hp->CH * hp->N);
    return t;
}

static int64_t lru_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    lru_carve_acts(m, &c, B, L);
    return c.used;
}

static int64_t lru_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    lru_carve_tmp(m, &c, B, L);
    return c.used;
}

// y (R, D) (=, or += when accumulate) = Re(C_c X) for direction c, X (R, N)c.
static void lru_out(lra_backend *be, const lru_hp *hp, lra_real *y, const lra_real *X, const lra_real *Cw, int c,
                    int64_t R, int D, int accumulate) {
    int N2 = 2 * hp->N;
    be->gemm(be, 0, 1, (int)R, D, N2, 1, X, N2, 0, Cw + (int64_t)c * N2, hp->CH * N2, 0, accumulate ? 1 : 0, y, D, 0,
             1);
}

static int lru_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    (void)err;
    const lru_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, D = m->D, N = hp->N;
    int64_t R = (int64_t)B * L, nx = 2 * R * N;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    lru_acts a = lru_carve_acts(m, &c, B, L);
    lru_tmp t = lru_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p;
    be->lru_params_fwd(be, a.lam, a.Bw, a.Cw, p[P_NU], p[P_THETA], p[P_GAMMA], p[P_BRE], p[P_BIM], p[P_CRE],
                       p[P_CIM], N, D, hp->CH);
    const lra_real *u = x;
    if (ctx->maskf) {
        be->mul_rows(be, a.u, x, ctx->maskf, R, D);  // padded positions zeroed
        u = a.u;
    }
    be->gemm(be, 0, 1, (int)R, 2 * N, D, 1, u, D, 0, a.Bw, D, 0, 0, t.b, 2 * N, 0, 1);  // b = B_norm u
    for (int ch = 0; ch < hp->CH; ch++) {
        int flags = LRA_SCAN_TIME_INVARIANT | (ch ? LRA_SCAN_REVERSE : 0);
        be->scan_fwd(be, a.X + ch * nx, a.lam, t.b, NULL, B, L, N, flags);  // x_k = lambda x_{k-1} + b_k
        lru_out(be, hp, y, a.X + ch * nx, a.Cw, ch, R, D, ch);
    }
    be->mul_cols_bwd(be, y, NULL, u, NULL, p[P_D], R, D);  // y += u D (the op's dinp += dout v)
    return LRA_OK;
}

static int lru_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                        lra_err *err) {
    (void)err;
    const lru_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, D = m->D, N = hp->N, N2 = 2 * N;
    int64_t R = (int64_t)B * L, nx = 2 * R * N;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    lru_acts a = lru_carve_acts(m, &c, B, L);
    lru_tmp t = lru_carve_tmp(m, &cs, B, L);
    lra_real *const *p = m->p, *const *g = m->g;
    const lra_real *u = ctx->maskf ? a.u : x;
    // du: straight into dx, or into t2 when the padded rows must be zeroed first
    lra_real *du = ctx->maskf ? t.t2 : dx, *db = t.b;
    if (ctx->maskf) be->zero(be, du, (size_t)(R * D) * sizeof(lra_real));
    be->mul_cols_bwd(be, du, g[P_D], dy, u, p[P_D], R, D);  // d(D u): du = dy D, dD += sum dy u
    be->zero(be, db, (size_t)nx * sizeof(lra_real));
    be->zero(be, t.dlam, (size_t)N2 * sizeof(lra_real));
    for (int ch = 0; ch < hp->CH; ch++) {
        int flags = LRA_SCAN_TIME_INVARIANT | (ch ? LRA_SCAN_REVERSE : 0);
        const lra_real *Xc = a.X + ch * nx, *Cc = a.Cw + (int64_t)ch * N2;
        // y = Re(C x): grad x = C^H dy (models.md 0.1 R4, R5), grad C = dy x^H (as real views)
        be->gemm(be, 0, 0, (int)R, N2, D, 1, dy, D, 0, Cc, hp->CH * N2, 0, 0, t.dX, N2, 0, 1);
        be->gemm(be, 1, 0, D, N2, (int)R, 1, dy, D, 0, Xc, N2, 0, 0, t.dCw + (int64_t)ch * N2, hp->CH * N2, 0, 1);
        be->scan_bwd(be, t.dlam, db, NULL, t.dX, Xc, a.lam, NULL, B, L, N, flags);
    }
    be->gemm(be, 1, 0, N2, D, (int)R, 1, db, N2, 0, u, D, 0, 0, t.dBw, D, 0, 1);  // grad B_norm = db u^T
    be->gemm(be, 0, 0, (int)R, D, N2, 1, db, N2, 0, a.Bw, D, 0, 1, du, D, 0, 1);   // du += Re(B_norm^H db)
    if (ctx->maskf) {
        be->mul_rows(be, du, du, ctx->maskf, R, D);
        be->axpby(be, dx, 1, du, 1, R * D);
    }
    be->lru_params_bwd(be, g[P_NU], g[P_THETA], g[P_GAMMA], g[P_BRE], g[P_BIM], g[P_CRE], g[P_CIM], t.dlam, t.dBw,
                       t.dCw, p[P_NU], p[P_THETA], p[P_GAMMA], p[P_BRE], p[P_BIM], N, D, hp->CH);
    return LRA_OK;
}

// ---- recurrent step (causal): state (B, N)c <- lambda state + B_norm u; y = Re(C state) + D u.

static int64_t lru_state_size(const lra_mixer *m, int B) { return 2 * (int64_t)B * ((const lru_hp *)m->hp)->N; }

static void lru_free_step(lru_hp *hp, lra_backend *be) {
    if (hp->lam) be->free(be, hp->lam);
    hp->lam = hp->Bw = hp->Cw = NULL;
}

static int lru_step_prepare(lra_mixer *m, lra_backend *be, lra_err *err) {
    lru_hp *hp = m->hp;
    if (hp->CH != 1)
        return lra_err_set(err, LRA_EUNSUPPORTED, "mixer.lru: the recurrent step needs a causal layer (bidirectional = false)");
    lru_free_step(hp, be);
    int64_t nl = 2 * (int64_t)hp->N, nw = 2 * (int64_t)hp->N * m->D;
    hp->lam = be->alloc(be, (size_t)(nl + 2 * nw) * sizeof(lra_real), err);
    if (!hp->lam) return err->code;
    hp->Bw = hp->lam + nl;
    hp->Cw = hp->Bw + nw;
    lra_real *const *p = m->p;
    be->lru_params_fwd(be, hp->lam, hp->Bw, hp->Cw, p[P_NU], p[P_THETA], p[P_GAMMA], p[P_BRE], p[P_BIM], p[P_CRE],
                       p[P_CIM], hp->N, m->D, 1);
    return LRA_OK;
}

static int lru_step(lra_mixer *m, const lra_ctx *ctx, lra_real *state, lra_real *y, const lra_real *x, lra_err *err) {
    lru_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    if (!hp->lam) return lra_err_set(err, LRA_EINVAL, "mixer.lru: step before step_prepare");
    int B = ctx->B, D = m->D, N2 = 2 * hp->N;
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    lru_tmp t = lru_carve_tmp(m, &cs, B, 1);
    be->gemm(be, 0, 1, B, N2, D, 1, x, D, 0, hp->Bw, D, 0, 0, t.b, N2, 0, 1);   // b = B_norm u
    be->scan_fwd(be, t.dX, hp->lam, t.b, state, B, 1, hp->N, LRA_SCAN_TIME_INVARIANT);
    be->copy(be, state, t.dX, (size_t)B * N2 * sizeof(lra_real));
    lru_out(be, hp, y, state, hp->Cw, 0, B, D, 0);
    be->mul_cols(be, t.t1, x, m->p[P_D], B, D);
    be->add(be, y, y, t.t1, (int64_t)B * D);
    return LRA_OK;
}

static int lru_describe(const lra_mixer *m, char *out, size_t cap) {
    const lru_hp *hp = m->hp;
    int w = snprintf(out, cap, "d_state=%d;r_min=%.17g;r_max=%.17g;max_phase=%.17g;bidirectional=%s", hp->N, hp->r_min,
                     hp->r_max, hp->max_phase, hp->CH == 2 ? "true" : "false");
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void lru_free(lra_mixer *m, lra_backend *be) {
    if (!m->hp) return;
    lru_free_step(m->hp, be);
    free(m->hp);
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_lru = {
    .name = "lru",
    .summary = "LRU: complex diagonal recurrence (exponential parameterisation, ring init, gamma normalisation), scan",
    .configure = lru_configure,
    .param_specs = lru_param_specs,
    .init = lru_init,
    .act_size = lru_act_size,
    .scratch_size = lru_scratch_size,
    .forward = lru_forward,
    .backward = lru_backward,
    .state_size = lru_state_size,
    .step_prepare = lru_step_prepare,
    .step = lru_step,
    .free = lru_free,
    .describe = lru_describe,
};
