// s4.c: the S4 mixer (Gu et al., ICLR 2022): a DPLR state space model with
// HiPPO-LegS initialisation, rank 1, bilinear discretisation (models.md 4,
// shared parts of S4D in models.md 3). Per channel h of the H = D channels:
//   y = K * u + D u,   u = x with padded positions zeroed (S4Block's length mask),
// K = the kernel of the conjugate-extended system x' = (Lambda - P P^*) x + B u,
// y = C x, discretised with step dt = softplus(inv_dt) (or exp), computed at
// length L_max by the backend op s4_kernel_fwd (Cauchy sums at the roots of
// unity + Woodbury + irfft; see backend.h) and truncated to the call's L, as
// the reference does. The convolution is causal, or S4's two-sided layout
// (models.md 0.2) when bidirectional: two C channels, the second kernel read
// backwards from lag +1. The block around the mixer (activation, output
// linear, GLU, residual, norm) is not part of it.
//
// Parameters (names and shapes of state-spaces/s4 FFTConv + SSMKernelDPLR, the
// complex ones as real views (..., 2); S = n_ssm, Nc = d_state / 2, c = 2 if
// bidirectional else 1; channel h uses row h % S, S4's repeat):
//   name            shape          meaning                                  group
//   D               (1, H)         skip weight                              decay (global lr, wd)
//   kernel.inv_dt   (H, 1)         dt = softplus(inv_dt) | exp(inv_dt)       ssm_dt (wd 0)
//   kernel.C        (c, H, Nc, 2)  C~ = C (I - Abar^L_max) (S4's "C tilde")  decay (official: global wd)
//   kernel.B        (1, S, Nc, 2)  B (HiPPO V^* B, Im clipped to [-2, 2])     ssm (lr 1e-3, wd 0)
//   kernel.A_real   (S, Nc)        Re Lambda = -exp(A_real)                  ssm
//   kernel.A_imag   (S, Nc)        Im Lambda = -A_imag                       ssm
//   kernel.P        (1, S, Nc, 2)  rank-1 term P (HiPPO V^* P), Q = conj(P)  ssm
// (S4's buffer kernel.l_kernel is implicit: C~ is always for L_max.)
//
// Initial values (S4 ssm.py/dplr.py): log dt ~ U[log dt_min, log dt_max],
// inv_dt = log(expm1(max(dt, 1e-4))) (softplus) or log dt (exp); Lambda, P, B
// from lra_hippo_legs_nplr, A_real = log max(-Re Lambda, 1e-4),
// A_imag = max(-Im Lambda, 1e-4) (S4's inv_transform clamps), Im B clipped to
// [-2, 2], the same for the S rows; C complex standard normal (each part
// variance 1/2), then replaced once by C~ = C (I - Abar^L_max) (S4's _setup_C
// at the first forward; here at init, on the host in double); D ~ N(0, 1).
//
// The dense real system (init and step mode): the conjugate-extended state
// s_full = [s, conj s] is written in real coordinates v = [Re s, Im s] (N
// reals), where A = diag(Lambda) - P P^* becomes
//   A_r = [[Re L, -Im L], [Im L, Re L]] (diagonal blocks) - 2 p p^T, p = [Re P, Im P],
// B_r = [Re B, Im B], y = C_full s_full = C_r v with C_r = [2 Re C, -2 Im C],
// and Abar = (I - dt/2 A_r)^-1 (I + dt/2 A_r), Bbar = dt (I - dt/2 A_r)^-1 B_r
// (bilinear). C~_r = C_r (I - Abar^L) gives C~ back by the same map.
//
// Forward keeps u (B, H, L) and K (H, c, L); backward: fftconv_bwd gives du
// and dK, s4_kernel_bwd turns dK into the SSM parameters' gradients,
// mul_cols_bwd gives dD, the mask is applied to du, and dx is the sum.
//
// Step mode (causal only): step_prepare builds per channel the real system
// (Abar (N, N), Bbar (N), C_r (N) with C_r solving (I - Abar^L_max)^T C_r^T = C~_r^T)
// on the host in double and uploads it; step does s <- Abar s + Bbar u,
// y = C_r s + D u with batched GEMMs. The state is (H, B, N) reals.
#include "hippo.h"
#include "layer.h"
#include "ssm.h"

#include <math.h>
#include <string.h>

typedef struct {
    int     N, Nc, S, CH, bidir, dt_exp;
    double  dt_min, dt_max;
    double *hippo;  // Lambda, P, B (Nc)c each, from lra_hippo_legs_nplr
    // step mode, backend memory (step_prepare)
    lra_real *step_A, *step_B, *step_C;  // (H, N, N), (H, N), (H, N)
} s4_hp;

enum { P_D, P_INV_DT, P_C, P_B, P_A_REAL, P_A_IMAG, P_P, P_COUNT };

static const char *const s4_keys[] = { "d_state", "dt_min", "dt_max", "dt_transform", "n_ssm",
                                       "bidirectional", "rank", NULL };

// ---- configuration ------------------------------------------------------------------

// The configuration keys into *hp (everything but the HiPPO values).
static int s4_parse(const lra_mixer *m, const lra_kv *kv, int n, s4_hp *hp, lra_err *err) {
    const char *who = "mixer.s4";
    int64_t N, rank;
    int tr, bidir, S = 1, rc;
    if ((rc = lra_kv_check_known(kv, n, who, s4_keys, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "d_state", 64, 2, 1024, &N, err))) return rc;
    if (N % 2)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.d_state: must be even (conjugate pairs), got %lld",
                           lra_kv_where(lra_kv_find(kv, n, "d_state")), who, (long long)N);
    if ((rc = lra_ssm_parse_dt(kv, n, who, &hp->dt_min, &hp->dt_max, &tr, err))) return rc;
    if ((rc = lra_ssm_parse_n_ssm(kv, n, who, m->D, &S, err))) return rc;
    if ((rc = lra_kv_bool(kv, n, who, "bidirectional", 0, &bidir, err))) return rc;
    if ((rc = lra_kv_int(kv, n, who, "rank", 1, 0, 1 << 20, &rank, err))) return rc;
    if (rank != 1)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.rank: only rank 1 (HiPPO-LegS) is implemented, got %lld",
                           lra_kv_where(lra_kv_find(kv, n, "rank")), who, (long long)rank);
    if (m->L_max < 1) return lra_err_set(err, LRA_EINVAL, "%s: L_max must be positive, got %d", who, m->L_max);
    hp->N = (int)N;
    hp->Nc = (int)(N / 2);
    hp->S = S;
    hp->bidir = bidir;
    hp->CH = bidir ? 2 : 1;
    hp->dt_exp = tr == 1;
    return LRA_OK;
}

static int s4_configure(lra_mixer *m, const lra_kv *kv, int n, lra_err *err) {
    s4_hp cfg = { 0 };
    int rc = s4_parse(m, kv, n, &cfg, err);
    if (rc) return rc;
    s4_hp *hp = calloc(1, sizeof *hp);
    cfg.hippo = malloc(sizeof(double) * 6 * (size_t)cfg.Nc);
    if (!hp || !cfg.hippo) rc = lra_err_set(err, LRA_ENOMEM, "mixer.s4: out of memory");
    if (!rc) rc = lra_hippo_legs_nplr(cfg.N, cfg.hippo, cfg.hippo + 2 * cfg.Nc, cfg.hippo + 4 * cfg.Nc, err);
    if (rc) {
        free(hp);
        free(cfg.hippo);
        return rc;
    }
    *hp = cfg;
    m->hp = hp;
    return LRA_OK;
}

static int s4_param_specs(const lra_mixer *m, lra_param_spec *out) {
    const s4_hp *hp = m->hp;
    int n = 0, H = m->D, S = hp->S, Nc = hp->Nc;
    n = lra_spec_set(out, n, "D", LRA_GROUP_DECAY, 2, LRA_SHAPE(1, H));
    n = lra_spec_set(out, n, "kernel.inv_dt", LRA_GROUP_SSM_DT, 2, LRA_SHAPE(H, 1));
    n = lra_spec_set(out, n, "kernel.C", LRA_GROUP_DECAY, 4, LRA_SHAPE(hp->CH, H, Nc, 2));
    n = lra_spec_set(out, n, "kernel.B", LRA_GROUP_SSM, 4, LRA_SHAPE(1, S, Nc, 2));
    n = lra_spec_set(out, n, "kernel.A_real", LRA_GROUP_SSM, 2, LRA_SHAPE(S, Nc));
    n = lra_spec_set(out, n, "kernel.A_imag", LRA_GROUP_SSM, 2, LRA_SHAPE(S, Nc));
    n = lra_spec_set(out, n, "kernel.P", LRA_GROUP_SSM, 4, LRA_SHAPE(1, S, Nc, 2));
    return n;
}

// ---- the dense real system (host, double) ------------------------------------------------

// X (N, nrhs) = M^-1 X by Gaussian elimination with partial pivoting; M (N, N)
// is destroyed. Returns 0, or 1 when M is singular.
static int dense_solve(double *M, double *X, int N, int nrhs) {
    for (int k = 0; k < N; k++) {
        int piv = k;
        for (int i = k + 1; i < N; i++)
            if (fabs(M[(int64_t)i * N + k]) > fabs(M[(int64_t)piv * N + k])) piv = i;
        if (M[(int64_t)piv * N + k] == 0) return 1;
        for (int j = 0; j < N; j++) {
            double t = M[(int64_t)k * N + j];
            M[(int64_t)k * N + j] = M[(int64_t)piv * N + j];
            M[(int64_t)piv * N + j] = t;
        }
        for (int j = 0; j < nrhs; j++) {
            double t = X[(int64_t)k * nrhs + j];
            X[(int64_t)k * nrhs + j] = X[(int64_t)piv * nrhs + j];
            X[(int64_t)piv * nrhs + j] = t;
        }
        for (int i = k + 1; i < N; i++) {
            double f = M[(int64_t)i * N + k] / M[(int64_t)k * N + k];
            if (f == 0) continue;
            for (int j = k; j < N; j++) M[(int64_t)i * N + j] -= f * M[(int64_t)k * N + j];
            for (int j = 0; j < nrhs; j++) X[(int64_t)i * nrhs + j] -= f * X[(int64_t)k * nrhs + j];
        }
    }
    for (int k = N - 1; k >= 0; k--)
        for (int j = 0; j < nrhs; j++) {
            double s = X[(int64_t)k * nrhs + j];
            for (int i = k + 1; i < N; i++) s -= M[(int64_t)k * N + i] * X[(int64_t)i * nrhs + j];
            X[(int64_t)k * nrhs + j] = s / M[(int64_t)k * N + k];
        }
    return 0;
}

// out (N, N) = a b (out distinct from a, b)
static void dense_matmul(double *out, const double *a, const double *b, int N) {
    for (int i = 0; i < N; i++) {
        double *o = out + (int64_t)i * N;
        for (int j = 0; j < N; j++) o[j] = 0;
        for (int k = 0; k < N; k++) {
            double f = a[(int64_t)i * N + k];
            const double *br = b + (int64_t)k * N;
            for (int j = 0; j < N; j++) o[j] += f * br[j];
        }
    }
}

// out (N, N) = a^e by repeated squaring; w1, w2 (N, N) scratch
static void dense_power(double *out, const double *a, int64_t e, int N, double *w1, double *w2) {
    int64_t NN = (int64_t)N * N;
    for (int64_t i = 0; i < NN; i++) out[i] = i % (N + 1) == 0;
    memcpy(w1, a, sizeof(double) * (size_t)NN);  // a^(2^k)
    for (; e > 0; e >>= 1) {
        if (e & 1) {
            dense_matmul(w2, out, w1, N);
            memcpy(out, w2, sizeof(double) * (size_t)NN);
        }
        if (e > 1) {
            dense_matmul(w2, w1, w1, N);
            memcpy(w1, w2, sizeof(double) * (size_t)NN);
        }
    }
}

static double s4_dt_of(double inv_dt, int dt_exp) {
    return dt_exp ? exp(inv_dt) : log1p(exp(-fabs(inv_dt))) + (inv_dt > 0 ? inv_dt : 0);
}

// The parameters of one channel as host values.
typedef struct {
    double        dt;
    const lra_real *A_real, *A_imag, *P, *B;  // row s = h % S: (Nc), (Nc), (Nc)c, (Nc)c
} s4_chan;

static s4_chan s4_chan_at(const s4_hp *hp, lra_real *const *host, int h) {
    int s = h % hp->S, Nc = hp->Nc;
    s4_chan c = { s4_dt_of((double)host[P_INV_DT][h], hp->dt_exp), host[P_A_REAL] + (int64_t)s * Nc,
                  host[P_A_IMAG] + (int64_t)s * Nc, host[P_P] + (int64_t)s * Nc * 2, host[P_B] + (int64_t)s * Nc * 2 };
    return c;
}

// Abar (N, N), Bbar (N) of one channel (file header); w (N, N) scratch.
// Returns 1 when I - dt/2 A is singular.
static int s4_discretise(double *Abar, double *Bbar, const s4_chan *ch, int Nc, double *w) {
    int N = 2 * Nc;
    double h2 = ch->dt / 2;
    memset(w, 0, sizeof(double) * (size_t)N * N);
    for (int n = 0; n < Nc; n++) {  // A_r, diagonal part
        double re = -exp((double)ch->A_real[n]), im = -(double)ch->A_imag[n];
        w[(int64_t)n * N + n] = w[(int64_t)(Nc + n) * N + Nc + n] = re;
        w[(int64_t)n * N + Nc + n] = -im;
        w[(int64_t)(Nc + n) * N + n] = im;
    }
    for (int i = 0; i < N; i++) {  // - 2 p p^T
        double pi = i < Nc ? ch->P[2 * i] : ch->P[2 * (i - Nc) + 1];
        for (int j = 0; j < N; j++) {
            double pj = j < Nc ? ch->P[2 * j] : ch->P[2 * (j - Nc) + 1];
            w[(int64_t)i * N + j] -= 2 * pi * pj;
        }
    }
    for (int64_t i = 0; i < (int64_t)N * N; i++) {  // Abar holds I + dt/2 A, w becomes I - dt/2 A
        double id = i % (N + 1) == 0;
        Abar[i] = id + h2 * w[i];
        w[i] = id - h2 * w[i];
    }
    for (int n = 0; n < Nc; n++) {
        Bbar[n] = ch->dt * (double)ch->B[2 * n];
        Bbar[Nc + n] = ch->dt * (double)ch->B[2 * n + 1];
    }
    // one solve for both: [Abar | Bbar] = (I - dt/2 A)^-1 [I + dt/2 A | dt B]
    double *X = malloc(sizeof(double) * (size_t)N * (N + 1));
    LRA_ASSERT(X != NULL);
    for (int i = 0; i < N; i++) {
        memcpy(X + (int64_t)i * (N + 1), Abar + (int64_t)i * N, sizeof(double) * (size_t)N);
        X[(int64_t)i * (N + 1) + N] = Bbar[i];
    }
    int bad = dense_solve(w, X, N, N + 1);
    for (int i = 0; i < N; i++) {
        memcpy(Abar + (int64_t)i * N, X + (int64_t)i * (N + 1), sizeof(double) * (size_t)N);
        Bbar[i] = X[(int64_t)i * (N + 1) + N];
    }
    free(X);
    return bad;
}

// Workspace of the dense computations of one channel.
typedef struct { double *Abar, *Bbar, *AL, *w1, *w2, *v; int N; } s4_dense;

static int s4_dense_new(s4_dense *d, int N) {
    int64_t NN = (int64_t)N * N;
    d->N = N;
    d->Abar = malloc(sizeof(double) * (size_t)(4 * NN + 2 * N));
    if (!d->Abar) return 1;
    d->AL = d->Abar + NN;
    d->w1 = d->AL + NN;
    d->w2 = d->w1 + NN;
    d->Bbar = d->w2 + NN;
    d->v = d->Bbar + N;
    return 0;
}

// d->Abar, d->Bbar and d->AL = Abar^L of channel h
static int s4_dense_channel(s4_dense *d, const s4_hp *hp, lra_real *const *host, int h, int64_t L) {
    s4_chan ch = s4_chan_at(hp, host, h);
    if (s4_discretise(d->Abar, d->Bbar, &ch, hp->Nc, d->w1)) return 1;
    dense_power(d->AL, d->Abar, L, d->N, d->w1, d->w2);
    return 0;
}

// ---- initial values ---------------------------------------------------------------------

// C~ of channel h (all c) in place: C~_r = C_r (I - Abar^L), C_r = [2 Re C, -2 Im C]
static void s4_ctilde_channel(s4_dense *d, const lra_mixer *m, lra_real *const *host, int h) {
    const s4_hp *hp = m->hp;
    int Nc = hp->Nc, N = hp->N, H = m->D;
    LRA_ASSERT(s4_dense_channel(d, hp, host, h, m->L_max) == 0);  // dt > 0, Re Lambda < 0: regular
    for (int c = 0; c < hp->CH; c++) {
        lra_real *C = host[P_C] + ((int64_t)c * H + h) * Nc * 2;
        for (int n = 0; n < Nc; n++) {
            d->v[n] = 2 * (double)C[2 * n];
            d->v[Nc + n] = -2 * (double)C[2 * n + 1];
        }
        for (int j = 0; j < N; j++) {  // C~_r = C_r - C_r Abar^L, back to C~
            double s = d->v[j];
            for (int i = 0; i < N; i++) s -= d->v[i] * d->AL[(int64_t)i * N + j];
            if (j < Nc) C[2 * j] = (lra_real)(s / 2);
            else C[2 * (j - Nc) + 1] = (lra_real)(-s / 2);
        }
    }
}

// C (c, H, Nc)c: C~ = C (I - Abar^L). Channels in parallel (O(N^3 log L_max)
// each), each by one thread: the result does not depend on the thread count.
static void s4_init_ctilde(const lra_mixer *m, lra_real *const *host) {
    const s4_hp *hp = m->hp;
#pragma omp parallel
    {
        s4_dense d;
        LRA_ASSERT(s4_dense_new(&d, hp->N) == 0);
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < m->D; h++) s4_ctilde_channel(&d, m, host, h);
        free(d.Abar);
    }
}

static void s4_init(const lra_mixer *m, lra_real *const *host, uint64_t seed) {
    const s4_hp *hp = m->hp;
    int H = m->D, S = hp->S, Nc = hp->Nc;
    lra_init_rng r = lra_init_rng_new(seed, 0x54D0);
    lra_init_normal(host[P_D], H, &r, 1.0);
    r = lra_init_rng_new(seed, 0x54D7);
    lra_ssm_init_dt(host[P_INV_DT], H, hp->dt_min, hp->dt_max, hp->dt_exp, &r);
    const double *lam = hp->hippo, *P = lam + 2 * Nc, *B = P + 2 * Nc;
    for (int s = 0; s < S; s++)
        for (int n = 0; n < Nc; n++) {
            int64_t i = (int64_t)s * Nc + n;
            host[P_A_REAL][i] = (lra_real)log(fmax(-lam[2 * n], 1e-4));
            host[P_A_IMAG][i] = (lra_real)fmax(-lam[2 * n + 1], 1e-4);
            host[P_P][2 * i] = (lra_real)P[2 * n];
            host[P_P][2 * i + 1] = (lra_real)P[2 * n + 1];
            host[P_B][2 * i] = (lra_real)B[2 * n];
            host[P_B][2 * i + 1] = (lra_real)fmin(fmax(B[2 * n + 1], -2.0), 2.0);
        }
    r = lra_init_rng_new(seed, 0x54DC);
    lra_init_normal(host[P_C], (int64_t)hp->CH * H * Nc * 2, &r, sqrt(0.5));
    s4_init_ctilde(m, host);
}

// ---- buffers ----------------------------------------------------------------------------

// Saved by forward: u (B, H, L), the masked input in channel layout, and the
// kernel K (H, c, L).
typedef struct { lra_real *u, *K; } s4_acts;
// Temporaries: s1, s2 (B, H, L), t (B, L, H), dK (H, c, L); step: the next
// state (H, B, N) and the D term (B, H).
typedef struct { lra_real *s1, *s2, *t, *dK; } s4_scratch;

static s4_acts s4_carve_acts(const lra_mixer *m, lra_carve *c, int B, int L) {
    const s4_hp *hp = m->hp;
    s4_acts a;
    a.u = lra_carve_take(c, (int64_t)B * m->D * L);
    a.K = lra_carve_take(c, (int64_t)m->D * hp->CH * L);
    return a;
}

static s4_scratch s4_carve_scratch(const lra_mixer *m, lra_carve *c, int B, int L) {
    const s4_hp *hp = m->hp;
    int64_t n = (int64_t)B * m->D * L;
    s4_scratch s;
    s.s1 = lra_carve_take(c, n);
    s.s2 = lra_carve_take(c, n);
    s.t = lra_carve_take(c, n);
    s.dK = lra_carve_take(c, (int64_t)m->D * hp->CH * L);
    return s;
}

static int64_t s4_act_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    s4_carve_acts(m, &c, B, L);
    return c.used;
}

static int64_t s4_step_scratch_size(const lra_mixer *m, int B) {
    const s4_hp *hp = m->hp;
    return (int64_t)m->D * B * hp->N + (int64_t)B * m->D + 32;
}

static int64_t s4_scratch_size(const lra_mixer *m, int B, int L) {
    lra_carve c = { 0 };
    s4_carve_scratch(m, &c, B, L);
    int64_t step = s4_step_scratch_size(m, B);
    return c.used > step ? c.used : step;
}

// ---- forward and backward -----------------------------------------------------------------

static lra_conv_mode s4_mode(const s4_hp *hp) { return hp->bidir ? LRA_CONV_BIDIRECTIONAL : LRA_CONV_CAUSAL; }

static void s4_kernel(lra_mixer *m, lra_backend *be, lra_real *K, int L) {
    const s4_hp *hp = m->hp;
    be->s4_kernel_fwd(be, K, m->p[P_INV_DT], m->p[P_A_REAL], m->p[P_A_IMAG], m->p[P_P], m->p[P_B], m->p[P_C], m->D,
                      hp->S, hp->Nc, hp->CH, m->L_max, L, hp->dt_exp);
}

static int s4_check_len(const lra_mixer *m, const lra_ctx *ctx, lra_err *err) {
    if (ctx->L > m->L_max)
        return lra_err_set(err, LRA_EINVAL, "mixer.s4: sequence length %d exceeds the kernel length L_max = %d", ctx->L,
                           m->L_max);
    return LRA_OK;
}

static int s4_forward(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err) {
    const s4_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, H = m->D, rc;
    if ((rc = s4_check_len(m, ctx, err))) return rc;
    lra_carve c = { m->act, 0, INT64_MAX };
    s4_acts a = s4_carve_acts(m, &c, B, L);
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    s4_scratch s = s4_carve_scratch(m, &cs, B, L);
    s4_kernel(m, be, a.K, L);
    lra_ssm_conv_fwd(be, ctx, y, a.u, x, a.K, m->p[P_D], H, s4_mode(hp), s.s1, s.s2);
    return LRA_OK;
}

static int s4_backward(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                       lra_err *err) {
    const s4_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, L = ctx->L, H = m->D, rc;
    if ((rc = s4_check_len(m, ctx, err))) return rc;
    lra_carve c = { m->act, 0, INT64_MAX };
    s4_acts a = s4_carve_acts(m, &c, B, L);
    lra_carve cs = { m->scratch, 0, INT64_MAX };
    s4_scratch s = s4_carve_scratch(m, &cs, B, L);
    be->zero(be, s.dK, (size_t)H * hp->CH * L * sizeof(lra_real));
    lra_ssm_conv_bwd(be, ctx, dx, m->g[P_D], s.dK, dy, a.u, x, a.K, m->p[P_D], H, s4_mode(hp), s.s1, s.s2, s.t);
    be->s4_kernel_bwd(be, m->g[P_INV_DT], m->g[P_A_REAL], m->g[P_A_IMAG], m->g[P_P], m->g[P_B], m->g[P_C], s.dK,
                      m->p[P_INV_DT], m->p[P_A_REAL], m->p[P_A_IMAG], m->p[P_P], m->p[P_B], m->p[P_C], H, hp->S,
                      hp->Nc, hp->CH, m->L_max, L, hp->dt_exp);
    return LRA_OK;
}

// ---- step mode ------------------------------------------------------------------------------

static int64_t s4_state_size(const lra_mixer *m, int B) {
    const s4_hp *hp = m->hp;
    return (int64_t)m->D * B * hp->N;
}

// Downloads the parameters into host arrays (one block); NULL on failure.
static lra_real **s4_download(const lra_mixer *m, lra_backend *be, lra_real **block) {
    int n = m->vt->param_specs(m, NULL);
    lra_param_spec *specs = calloc((size_t)n, sizeof *specs);
    lra_real **host = calloc((size_t)n, sizeof *host);
    *block = NULL;
    if (!specs || !host) goto fail;
    m->vt->param_specs(m, specs);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += lra_spec_numel(&specs[i]);
    *block = malloc(sizeof(lra_real) * (size_t)total);
    if (!*block) goto fail;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        host[i] = *block + off;
        be->download(be, host[i], m->p[i], sizeof(lra_real) * (size_t)lra_spec_numel(&specs[i]));
        off += lra_spec_numel(&specs[i]);
    }
    free(specs);
    return host;
fail:
    free(specs);
    free(host);
    free(*block);
    return NULL;
}

// Abar, Bbar, C_r of every channel into (H, N, N), (H, N), (H, N) host
// arrays; channels in parallel as in s4_init_ctilde.
static int s4_step_system(const lra_mixer *m, lra_real *const *host, lra_real *A, lra_real *Bv, lra_real *Cv,
                          lra_err *err) {
    const s4_hp *hp = m->hp;
    int N = hp->N, Nc = hp->Nc, H = m->D, first_bad = H, oom = 0;
    int64_t NN = (int64_t)N * N;
#pragma omp parallel reduction(min : first_bad) reduction(| : oom)
    {
        s4_dense d;
        double *M = malloc(sizeof(double) * (size_t)NN);
        oom = !M || s4_dense_new(&d, N);
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < H; h++) {
            if (oom || s4_dense_channel(&d, hp, host, h, m->L_max)) {
                first_bad = h < first_bad ? h : first_bad;
                continue;
            }
            const lra_real *C = host[P_C] + (int64_t)h * Nc * 2;
            for (int n = 0; n < Nc; n++) {  // C~_r
                d.v[n] = 2 * (double)C[2 * n];
                d.v[Nc + n] = -2 * (double)C[2 * n + 1];
            }
            for (int i = 0; i < N; i++)  // (I - Abar^L)^T
                for (int j = 0; j < N; j++) M[(int64_t)i * N + j] = (i == j) - d.AL[(int64_t)j * N + i];
            if (dense_solve(M, d.v, N, 1)) {
                first_bad = h < first_bad ? h : first_bad;
                continue;
            }
            for (int64_t i = 0; i < NN; i++) A[h * NN + i] = (lra_real)d.Abar[i];
            for (int i = 0; i < N; i++) {
                Bv[(int64_t)h * N + i] = (lra_real)d.Bbar[i];
                Cv[(int64_t)h * N + i] = (lra_real)d.v[i];
            }
        }
        free(M);
        if (!oom) free(d.Abar);
    }
    if (oom) return lra_err_set(err, LRA_ENOMEM, "mixer.s4: step_prepare: out of host memory");
    if (first_bad < H)
        return lra_err_set(err, LRA_EINVAL, "mixer.s4: step_prepare: channel %d: the discrete system is singular "
                           "(I - dt/2 A or I - Abar^L_max)", first_bad);
    return LRA_OK;
}

static int s4_step_prepare(lra_mixer *m, lra_backend *be, lra_err *err) {
    s4_hp *hp = m->hp;
    if (hp->bidir)
        return lra_err_set(err, LRA_EUNSUPPORTED,
                           "mixer.s4: step mode needs a causal kernel, and this one is bidirectional "
                           "(bidirectional = true)");
    int N = hp->N, H = m->D;
    int64_t nA = (int64_t)H * N * N, nB = (int64_t)H * N;
    lra_real *block, **host = s4_download(m, be, &block);
    lra_real *sys = malloc(sizeof(lra_real) * (size_t)(nA + 2 * nB));
    if (!host || !sys) {
        free(host);
        free(block);
        free(sys);
        return lra_err_set(err, LRA_ENOMEM, "mixer.s4: step_prepare: out of host memory");
    }
    int rc = s4_step_system(m, host, sys, sys + nA, sys + nA + nB, err);
    if (!rc && !hp->step_A) {
        hp->step_A = be->alloc(be, sizeof(lra_real) * (size_t)(nA + 2 * nB), err);
        if (!hp->step_A) rc = err && err->code ? err->code : LRA_ENOMEM;
    }
    if (!rc) {
        hp->step_B = hp->step_A + nA;
        hp->step_C = hp->step_B + nB;
        be->upload(be, hp->step_A, sys, sizeof(lra_real) * (size_t)(nA + 2 * nB));
    }
    free(sys);
    free(host);
    free(block);
    return rc;
}

// state (H, B, N): s <- Abar s + Bbar u; y = C_r s + D u (x, y (B, H))
static int s4_step(lra_mixer *m, const lra_ctx *ctx, lra_real *state, lra_real *y, const lra_real *x, lra_err *err) {
    const s4_hp *hp = m->hp;
    lra_backend *be = ctx->be;
    int B = ctx->B, H = m->D, N = hp->N;
    if (!hp->step_A) return lra_err_set(err, LRA_EINVAL, "mixer.s4: step called before step_prepare");
    int64_t bn = (int64_t)B * N;
    lra_real *next = m->scratch, *dterm = m->scratch + (int64_t)H * bn;
    // next_h (B, N) = s_h Abar_h^T + u_h Bbar_h (u_h = column h of x)
    be->gemm(be, 0, 1, B, N, N, 1, state, N, bn, hp->step_A, N, (int64_t)N * N, 0, next, N, bn, H);
    be->gemm(be, 0, 0, B, N, 1, 1, x, H, 1, hp->step_B, N, N, 1, next, N, bn, H);
    be->copy(be, state, next, sizeof(lra_real) * (size_t)(H * bn));
    // y[:, h] = s_h C_h, then + D x
    be->gemm(be, 0, 0, B, 1, N, 1, state, N, bn, hp->step_C, 1, N, 0, y, H, 1, H);
    be->mul_cols(be, dterm, x, m->p[P_D], B, H);
    be->add(be, y, y, dterm, (int64_t)B * H);
    return LRA_OK;
}

static int s4_describe(const lra_mixer *m, char *out, size_t cap) {
    const s4_hp *hp = m->hp;
    int w = snprintf(out, cap, "d_state=%d;dt_min=%.17g;dt_max=%.17g;dt_transform=%s;n_ssm=%d;bidirectional=%s;rank=1",
                     hp->N, hp->dt_min, hp->dt_max, hp->dt_exp ? "exp" : "softplus", hp->S,
                     hp->bidir ? "true" : "false");
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

static void s4_free(lra_mixer *m, lra_backend *be) {
    s4_hp *hp = m->hp;
    if (hp) {
        if (be) be->free(be, hp->step_A);
        free(hp->hippo);
        free(hp);
    }
    m->hp = NULL;
}

const lra_mixer_vtable lra_mixer_s4 = {
    .name = "s4",
    .summary = "S4: DPLR state space model, HiPPO-LegS, rank 1, bilinear (Gu et al. 2022)",
    .configure = s4_configure,
    .param_specs = s4_param_specs,
    .init = s4_init,
    .act_size = s4_act_size,
    .scratch_size = s4_scratch_size,
    .forward = s4_forward,
    .backward = s4_backward,
    .state_size = s4_state_size,
    .step_prepare = s4_step_prepare,
    .step = s4_step,
    .free = s4_free,
    .describe = s4_describe,
};
