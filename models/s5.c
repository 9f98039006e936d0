// s5.c: S5, the MIMO diagonal state space layer (Smith, Warrington,
// Linderman 2023, "Simplified State Space Layers for Sequence Modeling";
// models.md 5). With Pc complex modes (P/2 with conj_sym), u (B, L, H):
//   Lambda = Lambda_re + i Lambda_im (Re clipped to <= -1e-4 with clip_eigs),
//   dt = exp(log_step) per mode, Lbar, Bbar = phi B by ZOH or bilinear (models.md 0.4),
//   x_k = Lbar x_{k-1} + Bbar u_k                    (x_{-1} = 0; models.md 0.3)
//   y_k = 2 Re(C x_k) + D u_k                        (factor 1 without conj_sym)
// Bidirectional: a second scan in reverse time on the same Bbar u,
//   y_k = 2 Re(C1 x_k + C2 x^rev_k) + D u_k.
// Padded positions (ctx mask) are zeroed in u first, as in the S4 layers
// (the official S5 leaves them in; it masks only the pooling).
//
// Computation (all through backend ops): s5_discretize_fwd writes conj(Lbar)
// and conj(Bbar) as (H, Pc)c, so with xc = conj(x) everything is real
// arithmetic on real views: b = u (B L, H) bbar (H, 2 Pc) (one GEMM),
// xc = scan(conj Lbar, b) (time-invariant diagonal scan), and since
// Re(C x) = C_re xc_re + C_im xc_im, y = 2 xc (B L, 2 Pc) C^T (one GEMM with
// C's stored (H, Pc, 2) layout). The backward is the transposed GEMMs, the
// adjoint scan, and s5_discretize_bwd.
//
// Parameters (the names and shapes of the official lindermanlab/S5 S5SSM;
// complex tensors as real views ending in 2):
//   name        shape           meaning                               group (opt_config standard)
//   Lambda_re   (Pc)            Re Lambda                             ssm
//   Lambda_im   (Pc)            Im Lambda                             ssm
//   B           (Pc, H, 2)      B~ = V^-1 B                           ssm
//   log_step    (Pc, 1)         log dt per mode                       ssm_dt
//   D           (H)             skip                                  decay
//   C           (H, Pc, 2)      C~ = C V (causal)                     decay
//   C1, C2      (H, Pc, 2)      the two directions (bidirectional)    decay
//   C           (H, 2 Pc, 2)    [C1 | C2] (bidirectional, C_init = complex_normal)
// opt_config (S5's train_helpers): standard (B ssm, C D decay), BandCdecay
// (B at the SSM lr with weight decay: ssm_decay), BfastandCdecay (B, C, D
// decay), noBCdecay (B, C, D in the ssm group).
// Initialisation (models.md 5): Lambda and V from the normal part of
// HiPPO-LegS of size P/J on each of J blocks (V block diagonal); B ~
// lecun_normal (P, H) (fan_in P); C by C_init: trunc_standard_normal (each row
// lecun_normal (1, P, 2), fan_in P), lecun_normal ((H, P, 2), fan_in P H), both
// then C~ = C V, or complex_normal (C~ directly, each part N(0, 1/2));
// D ~ N(0, 1); log_step uniform in [log dt_min, log dt_max].
#include "hippo.h"
#include "nn.h"
#include "ssm.h"

#include <complex.h>
#include <math.h>
#include <string.h>

typedef double complex cplx;

typedef enum { C_TRUNC = 0, C_LECUN, C_COMPLEX } s5_c_init;
typedef enum { OPT_STANDARD = 0, OPT_BANDC, OPT_BFAST, OPT_NOBC } s5_opt;

typedef struct {
    int    P, J, Pc, conj_sym, bilinear, bidir, clip, c_init, opt;
    double dt_min, dt_max;
    lra_real *sa, *sb;  // step mode (step_prepare): abar (Pc)c, bbar (H, Pc)c
} s5_hp;

enum { P_LRE, P_LIM, P_B, P_STEP, P_D, P_C, P_C2 };

static const char *const s5_keys[] = { "ssm_size", "blocks", "C_init", "disc", "dt_min", "dt_max", "conj_sym",
                                       "bidirectional", "clip_eigs", "opt_config", NULL };
static const char *const c_inits[] = { "trunc_standard_normal", "lecun_normal", "complex_normal", NULL };
static const char *const opts[] = { "standard", "BandCdecay", "BfastandCdecay", "noBCdecay", NULL };
static const char *const discs[] = { "zoh", "bilinear", NULL };

static int s5_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    const char *who = "mixer.s5";
    int64_t P, J;
    double dt_min, dt_max;
    int c_init, disc, conj, bidir, clip, opt, rc;
    if ((rc = lra_kv_check_known(kv, n, who, s5_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "ssm_size", 256, 1, 1 << 14, &P, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "blocks", 8, 1, 1 << 14, &J, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "C_init", C_TRUNC, c_inits, &c_init, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "disc", 0, discs, &disc, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dt_min", 1e-3, 1e-12, 1e3, &dt_min, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dt_max", 1e-1, 1e-12, 1e3, &dt_max, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "conj_sym", 1, &conj, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "bidirectional", 0, &bidir, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "clip_eigs", 0, &clip, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, who, "opt_config", OPT_STANDARD, opts, &opt, err))) return rc;
    if (dt_min > dt_max)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.dt_min: %g is above dt_max = %g",
                           lra_kv_where(lra_kv_find(kv, n, "dt_min")), who, dt_min, dt_max);
    if (P % J || (P / J) % 2)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.blocks: ssm_size %lld must split into %lld blocks of even size",
                           lra_kv_where(lra_kv_find(kv, n, "blocks")), who, (long long)P, (long long)J);
    s5_hp *hp = calloc(1, sizeof *hp);
    if (!hp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", who);
    *hp = (s5_hp){ .P = (int)P, .J = (int)J, .Pc = conj ? (int)P / 2 : (int)P, .conj_sym = conj, .bilinear = disc,
                   .bidir = bidir, .clip = clip, .c_init = c_init, .opt = opt, .dt_min = dt_min, .dt_max = dt_max };
    m->hp = hp;
    return LRA_OK;
}

static int two_c(const s5_hp *hp) { return hp->bidir && hp->c_init != C_COMPLEX; }

static int s5_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const s5_hp *hp = m->hp;
    int n = 0, H = m->D, Pc = hp->Pc;
    lra_group gB = hp->opt == OPT_BANDC ? LRA_GROUP_SSM_DECAY : hp->opt == OPT_BFAST ? LRA_GROUP_DECAY : LRA_GROUP_SSM;
    lra_group gC = hp->opt == OPT_NOBC ? LRA_GROUP_SSM : LRA_GROUP_DECAY;
    n = lra_spec_set(out, n, "Lambda_re", LRA_GROUP_SSM, 1, LRA_SHAPE(Pc));
    n = lra_spec_set(out, n, "Lambda_im", LRA_GROUP_SSM, 1, LRA_SHAPE(Pc));
    n = lra_spec_set(out, n, "B", gB, 3, LRA_SHAPE(Pc, H, 2));
    n = lra_spec_set(out, n, "log_step", LRA_GROUP_SSM_DT, 2, LRA_SHAPE(Pc, 1));
    n = lra_spec_set(out, n, "D", gC, 1, LRA_SHAPE(H));
    if (two_c(hp)) {
        n = lra_spec_set(out, n, "C1", gC, 3, LRA_SHAPE(H, Pc, 2));
        n = lra_spec_set(out, n, "C2", gC, 3, LRA_SHAPE(H, Pc, 2));
    } else {
        n = lra_spec_set(out, n, "C", gC, 3, LRA_SHAPE(H, (hp->bidir ? 2 : 1) * Pc, 2));
    }
    return n;
}

// ---- initialisation --------------------------------------------------------------

// Eigenvalues lam (Pb)c and eigenvectors V (bs, Pb)c of one block of size bs
// (the LegS normal part): the negative-imaginary half (ascending), then with
// conj_sym off their conjugates in reverse order (the ascending order of the
// Hermitian solver).
static void s5_block_basis(int bs, int conj_sym, cplx *lam, cplx *V) {
    int h = bs / 2;
    double *buf = malloc(sizeof(double) * (6 * (size_t)h + 2 * (size_t)bs * h));
    LRA_ASSERT(buf && lra_hippo_legs_nplr_basis(bs, buf, buf + 2 * h, buf + 4 * h, buf + 6 * h, NULL) == LRA_OK);
    int Pb = conj_sym ? h : bs;
    const double *Vh = buf + 6 * h;
    for (int j = 0; j < h; j++) {
        lam[j] = buf[2 * j] + I * buf[2 * j + 1];
        if (!conj_sym) lam[bs - 1 - j] = conj(lam[j]);
        for (int k = 0; k < bs; k++) {
            cplx v = Vh[2 * ((int64_t)k * h + j)] + I * Vh[2 * ((int64_t)k * h + j) + 1];
            V[(int64_t)k * Pb + j] = v;
            if (!conj_sym) V[(int64_t)k * Pb + bs - 1 - j] = conj(v);
        }
    }
    free(buf);
}

// C~ (H, Pc)c = C (H, P)c V (block diagonal), C drawn by C_init, into out
// with row stride ld complex.
static void s5_init_c(const s5_hp *hp, int H, const cplx *V, int bs, int Pb, lra_real *out, int ld, lra_init_rng *r) {
    int P = hp->P;
    if (hp->c_init == C_COMPLEX) {
        for (int h = 0; h < H; h++) lra_init_normal(out + 2 * (int64_t)h * ld, 2 * (int64_t)hp->Pc, r, sqrt(0.5));
        return;
    }
    lra_real *C = malloc(sizeof(lra_real) * 2 * (size_t)H * P);
    LRA_ASSERT(C);
    if (hp->c_init == C_LECUN) lra_init_lecun_normal(C, 2 * (int64_t)H * P, r, P * H);
    else for (int h = 0; h < H; h++) lra_init_lecun_normal(C + 2 * (int64_t)h * P, 2 * (int64_t)P, r, P);
    for (int h = 0; h < H; h++)
        for (int j = 0; j < hp->J; j++)
            for (int i = 0; i < Pb; i++) {
                cplx s = 0;
                for (int k = 0; k < bs; k++) {
                    int64_t c = (int64_t)h * P + j * bs + k;
                    s += ((double)C[2 * c] + I * (double)C[2 * c + 1]) * V[(int64_t)k * Pb + i];
                }
                int64_t o = 2 * ((int64_t)h * ld + j * Pb + i);
                out[o] = (lra_real)creal(s), out[o + 1] = (lra_real)cimag(s);
            }
    free(C);
}

static void s5_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const s5_hp *hp = m->hp;
    int H = m->D, P = hp->P, bs = P / hp->J, Pb = hp->conj_sym ? bs / 2 : bs;
    lra_init_rng r = lra_init_rng_new(seed, 0x55);
    cplx *lam = malloc(sizeof(cplx) * ((size_t)Pb + (size_t)bs * Pb));
    lra_real *Bl = malloc(sizeof(lra_real) * (size_t)P * H);
    LRA_ASSERT(lam && Bl);
    cplx *V = lam + Pb;
    s5_block_basis(bs, hp->conj_sym, lam, V);
    for (int n = 0; n < hp->Pc; n++) {
        host[P_LRE][n] = (lra_real)creal(lam[n % Pb]);
        host[P_LIM][n] = (lra_real)cimag(lam[n % Pb]);
    }
    lra_init_lecun_normal(Bl, (int64_t)P * H, &r, P);  // B (P, H) real, fan_in = P
    for (int j = 0; j < hp->J; j++)                   // B~ = V* B per block
        for (int i = 0; i < Pb; i++)
            for (int h = 0; h < H; h++) {
                cplx s = 0;
                for (int k = 0; k < bs; k++) s += conj(V[(int64_t)k * Pb + i]) * (double)Bl[(int64_t)(j * bs + k) * H + h];
                int64_t o = 2 * ((int64_t)(j * Pb + i) * H + h);
                host[P_B][o] = (lra_real)creal(s), host[P_B][o + 1] = (lra_real)cimag(s);
            }
    if (two_c(hp)) {
        s5_init_c(hp, H, V, bs, Pb, host[P_C], hp->Pc, &r);
        s5_init_c(hp, H, V, bs, Pb, host[P_C2], hp->Pc, &r);
    } else {
        int ld = (hp->bidir ? 2 : 1) * hp->Pc;
        s5_init_c(hp, H, V, bs, Pb, host[P_C], ld, &r);
        if (hp->bidir) s5_init_c(hp, H, V, bs, Pb, host[P_C] + 2 * (int64_t)hp->Pc, ld, &r);
    }
    lra_init_normal(host[P_D], H, &r, 1.0);
    for (int n = 0; n < hp->Pc; n++)
        host[P_STEP][n] = (lra_real)(log(hp->dt_min) + lra_init_uniform01(&r) * (log(hp->dt_max) - log(hp->dt_min)));
    free(lam);
    free(Bl);
}

// ---- buffers ---------------------------------------------------------------------

// Saved by forward: abar (Pc)c, bbar (H, Pc)c, the masked input u (B, L, H)
// (only with a mask), the states xc (B, L, Pc)c per direction.
typedef struct { lra_real *abar, *bbar, *u, *xf, *xb; } s5_acts;
// Temporaries: b / d xc (B, L, Pc)c, d b (B, L, Pc)c, th (B, L, H), dabar, dbbar.
typedef struct { lra_real *t1, *t2, *th, *dabar, *dbbar; } s5_tmp;

static s5_acts s5_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L, int masked) {
    const s5_hp *hp = m->hp;
    int64_t nx = 2 * (int64_t)B * L * hp->Pc;
    s5_acts a = { 0 };
    a.abar = lra_carve_take(c, 2 * (int64_t)hp->Pc);
    a.bbar = lra_carve_take(c, 2 * (int64_t)m->D * hp->Pc);
    a.u = masked ? lra_carve_take(c, (int64_t)B * L * m->D) : NULL;
    a.xf = lra_carve_take(c, nx);
    a.xb = hp->bidir ? lra_carve_take(c, nx) : NULL;
    return a;
}

static s5_tmp s5_carve_tmp(const lra_mixer *m, lra_carve *c, int B, int L) {
    const s5_hp *hp = m->hp;
    int64_t nx = 2 * (int64_t)B * L * hp->Pc;
    s5_tmp t;
    t.t1 = lra_carve_take(c, nx);
    t.t2 = lra_carve_take(c, nx);
    t.th = lra_carve_take(c, (int64_t)B * L * m->D);
    t.dabar = lra_carve_take(c, 2 * (int64_t)hp->Pc);
    t.dbbar = lra_carve_take(c, 2 * (int64_t)m->D * hp->Pc);
    return t;
}

static int64_t s5_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    s5_carve_acts(m, &c, B, L, 1);
    return c.used;
}

static int64_t s5_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    s5_carve_tmp(m, &c, B, L);
    return c.used;
}

// C of direction dir (0 forward, 1 reverse) as a (H, 2 Pc) real matrix with row stride *ld.
static lra_real *s5_c(const lra_mixer *m, lra_real *const *p, int dir, int *ld) {
    const s5_hp *hp = m->hp;
    if (two_c(hp)) {
        *ld = 2 * hp->Pc;
        return p[dir ? P_C2 : P_C];
    }
    *ld = 2 * (hp->bidir ? 2 : 1) * hp->Pc;
    return p[P_C] + (dir ? 2 * (int64_t)hp->Pc : 0);
}

static lra_real s5_out_scale(const s5_hp *hp) { return hp->conj_sym ? 2 : 1; }

static void s5_discretize(const lra_mixer *m, lra_backend *be, lra_real *abar, lra_real *bbar) {
    const s5_hp *hp = m->hp;
    lra_real *const *p = m->p;
    be->s5_discretize_fwd(be, abar, bbar, p[P_LRE], p[P_LIM], p[P_STEP], p[P_B], hp->Pc, m->D, hp->bilinear, hp->clip);
}

static int s5_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    (void)err;
    const s5_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, H = m->D, N2 = 2 * hp->Pc, R = B * L, ld;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    s5_acts a = s5_carve_acts(m, &c, B, L, ctx->maskf != NULL);
    s5_tmp t = s5_carve_tmp(m, &cs, B, L);
    s5_discretize(m, be, a.abar, a.bbar);
    const lra_real *u = x;
    if (ctx->maskf) {
        be->mul_rows(be, a.u, x, ctx->maskf, R, H);  // padded positions zeroed
        u = a.u;
    }
    // b (R, 2 Pc) = u (R, H) bbar (H, 2 Pc); xc = scan(abar, b) per direction
    be->gemm(be, 0, 0, R, N2, H, 1, u, H, 0, a.bbar, N2, 0, 0, t.t1, N2, 0, 1);
    be->scan_fwd(be, a.xf, a.abar, t.t1, NULL, B, L, hp->Pc, LRA_SCAN_TIME_INVARIANT);
    if (hp->bidir)
        be->scan_fwd(be, a.xb, a.abar, t.t1, NULL, B, L, hp->Pc, LRA_SCAN_TIME_INVARIANT | LRA_SCAN_REVERSE);
    // y = s xc C^T (+ s xc_rev C2^T) + D u, s = 2 with conj_sym
    lra_real s = s5_out_scale(hp);
    const lra_real *C = s5_c(m, m->p, 0, &ld);
    be->gemm(be, 0, 1, R, H, N2, s, a.xf, N2, 0, C, ld, 0, 0, y, H, 0, 1);
    if (hp->bidir) {
        C = s5_c(m, m->p, 1, &ld);
        be->gemm(be, 0, 1, R, H, N2, s, a.xb, N2, 0, C, ld, 0, 1, y, H, 0, 1);
    }
    be->mul_cols_bwd(be, y, NULL, u, NULL, m->p[P_D], R, H);  // y += u D (the op's dinp += dout v)
    return LRA_OK;
}

// Backward of one direction's readout and scan: dC += s dy^T xc; the adjoint
// scan of d xc = s dy C into dabar and db.
static void s5_dir_bwd(lra_mixer *m, const lra_ctx *ctx, const s5_acts *a, const s5_tmp *t, const lra_real *dy,
                       int dir) {
    const s5_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, H = m->D, N2 = 2 * hp->Pc, R = B * L, ld;
    lra_real s = s5_out_scale(hp);
    const lra_real *xc = dir ? a->xb : a->xf, *C = s5_c(m, m->p, dir, &ld);
    lra_real *dC = s5_c(m, m->g, dir, &ld);
    be->gemm(be, 1, 0, H, N2, R, s, dy, H, 0, xc, N2, 0, 1, dC, ld, 0, 1);
    be->gemm(be, 0, 0, R, N2, H, s, dy, H, 0, C, ld, 0, 0, t->t1, N2, 0, 1);
    be->scan_bwd(be, t->dabar, t->t2, NULL, t->t1, xc, a->abar, NULL, B, L, hp->Pc,
                 LRA_SCAN_TIME_INVARIANT | (dir ? LRA_SCAN_REVERSE : 0));
}

static int s5_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                       lra_err *err) {
    (void)err;
    const s5_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, H = m->D, N2 = 2 * hp->Pc, R = B * L;
    int64_t RH = (int64_t)R * H;
    lra_carve c = { m->act, 0, INT64_MAX }, cs = { m->scratch, 0, INT64_MAX };
    s5_acts a = s5_carve_acts(m, &c, B, L, ctx->maskf != NULL);
    s5_tmp t = s5_carve_tmp(m, &cs, B, L);
    const lra_real *u = ctx->maskf ? a.u : x;
    lra_real *const *p = m->p, *const *g = m->g;
    // du: straight into dx, or into th when the padded rows must be zeroed first
    lra_real *du = ctx->maskf ? t.th : dx;
    if (ctx->maskf) be->zero(be, t.th, (size_t)RH * sizeof(lra_real));
    be->mul_cols_bwd(be, du, g[P_D], dy, u, p[P_D], R, H);  // d(D u)
    be->zero(be, t.t2, (size_t)R * N2 * sizeof(lra_real));
    be->zero(be, t.dabar, (size_t)N2 * sizeof(lra_real));
    s5_dir_bwd(m, ctx, &a, &t, dy, 0);
    if (hp->bidir) s5_dir_bwd(m, ctx, &a, &t, dy, 1);
    // b = u bbar: dbbar = u^T db, du += db bbar^T
    be->gemm(be, 1, 0, H, N2, R, 1, u, H, 0, t.t2, N2, 0, 0, t.dbbar, N2, 0, 1);
    be->gemm(be, 0, 1, R, H, N2, 1, t.t2, N2, 0, a.bbar, N2, 0, 1, du, H, 0, 1);
    if (ctx->maskf) {
        be->mul_rows(be, t.th, t.th, ctx->maskf, R, H);
        be->axpby(be, dx, 1, t.th, 1, RH);
    }
    be->s5_discretize_bwd(be, g[P_LRE], g[P_LIM], g[P_STEP], g[P_B], t.dabar, t.dbbar, p[P_LRE], p[P_LIM], p[P_STEP],
                          p[P_B], hp->Pc, H, hp->bilinear, hp->clip);
    return LRA_OK;
}

// ---- recurrent step (causal): state xc (B, Pc)c <- abar xc + bbar^T u; y = s xc C^T + D u.

static int64_t s5_state_size(const lra_mixer *m, int B) { return 2 * (int64_t)B * ((const s5_hp *)m->hp)->Pc; }

static void s5_free_step(s5_hp *hp, lra_backend *be) {
    if (hp->sa) be->free(be, hp->sa);
    hp->sa = hp->sb = NULL;
}

static int s5_step_prepare(lra_mixer *m, lra_backend *be, lra_err *err) {
    s5_hp *hp = m->hp;
    if (hp->bidir)
        return lra_err_set(err, LRA_EUNSUPPORTED, "mixer.s5: the recurrent step needs a causal layer (bidirectional = false)");
    s5_free_step(hp, be);
    hp->sa = be->alloc(be, (size_t)(2 * hp->Pc * (1 + (int64_t)m->D)) * sizeof(lra_real), err);
    if (!hp->sa) return err->code;
    hp->sb = hp->sa + 2 * hp->Pc;
    s5_discretize(m, be, hp->sa, hp->sb);
    return LRA_OK;
}

static int s5_step(lra_mixer *m, const lra_ctx *ctx, lra_real *state, lra_real *y, const lra_real *x, lra_err *err) {
    s5_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    if (!hp->sa) return lra_err_set(err, LRA_EINVAL, "mixer.s5: step before step_prepare");
    int B = ctx->B, H = m->D, N2 = 2 * hp->Pc, ld;
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    s5_tmp t = s5_carve_tmp(m, &cs, B, 1);
    be->gemm(be, 0, 0, B, N2, H, 1, x, H, 0, hp->sb, N2, 0, 0, t.t1, N2, 0, 1);
    be->scan_fwd(be, t.t2, hp->sa, t.t1, state, B, 1, hp->Pc, LRA_SCAN_TIME_INVARIANT);
    be->copy(be, state, t.t2, (size_t)B * N2 * sizeof(lra_real));
    const lra_real *C = s5_c(m, m->p, 0, &ld);
    be->gemm(be, 0, 1, B, H, N2, s5_out_scale(hp), state, N2, 0, C, ld, 0, 0, y, H, 0, 1);
    be->mul_cols(be, t.th, x, m->p[P_D], B, H);
    be->add(be, y, y, t.th, (int64_t)B * H);
    return LRA_OK;
}

static int s5_describe(const lra_mixer *m, char *out, size_t cap) {
    const s5_hp *hp = m->hp;
    int w = snprintf(out, cap,
                     "ssm_size=%d;blocks=%d;C_init=%s;disc=%s;dt_min=%.17g;dt_max=%.17g;conj_sym=%s;bidirectional=%s;"
                     "clip_eigs=%s;opt_config=%s",
                     hp->P, hp->J, c_inits[hp->c_init], discs[hp->bilinear], hp->dt_min, hp->dt_max,
                     hp->conj_sym ? "true" : "false", hp->bidir ? "true" : "false", hp->clip ? "true" : "false",
                     opts[hp->opt]);
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void s5_free(lra_mixer *m, lra_backend *be) {
    if (!m->hp) return;
    s5_free_step(m->hp, be);
    free(m->hp);
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_s5 = {
    .name = "s5",
    .summary = "S5: MIMO diagonal SSM (HiPPO-N blocks, ZOH/bilinear), parallel scan, recurrent step",
    .configure = s5_configure,
    .param_specs = s5_param_specs,
    .init = s5_init,
    .act_size = s5_act_size,
    .scratch_size = s5_scratch_size,
    .forward = s5_forward,
    .backward = s5_backward,
    .state_size = s5_state_size,
    .step_prepare = s5_step_prepare,
    .step = s5_step,
    .free = s5_free,
    .describe = s5_describe,
};
