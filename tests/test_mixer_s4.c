// test_mixer_s4.c: the S4 mixer (models/s4.c): finite-difference gradients of
// the input and of every parameter (causal and bidirectional, n_ssm 1 and D,
// softplus and exp dt, with and without padding); the recurrent step against
// the convolution; C~: the initial kernel equals the dense power series of the
// drawn C (the conversion C~ = C (I - Abar^L_max) undone independently), and
// kernels built for different L_max agree on their common taps; initial
// values, shapes and optimiser groups; configuration errors; parity with the
// PyTorch reference files tests/ref/s4_*.safetensors.
#include "mixer_check.h"

#include <complex.h>
#include <math.h>
#include <string.h>

typedef double complex cplx;

static cplx mkc(double re, double im) { return re + im * I; }

// the padding pattern of the masked cases: example b ends 3 b positions early
static void make_mask(uint8_t *mask, int B, int L) {
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) mask[b * L + l] = l < L - 3 * b;
}

// ---- gradients ----------------------------------------------------------------------------

// dt in [0.01, 0.3] rather than S4's [0.001, 0.1]: with the smallest steps over
// L <= 16 the SSM parameters barely move the loss, and their gradients drown
// in the rounding noise of the finite differences (~1e-9 absolute in double).
static void grad_case(int D, int L, const char *N, const char *bidir, const char *n_ssm, const char *tr, int masked) {
    lra_kv kv[] = { { "d_state", N, NULL },      { "bidirectional", bidir, NULL }, { "n_ssm", n_ssm, NULL },
                    { "dt_transform", tr, NULL }, { "dt_min", "0.01", NULL },        { "dt_max", "0.3", NULL } };
    uint8_t mask[2 * 16];
    make_mask(mask, 2, L);
    t_mixer_gradcheck(&(t_mixer_case){ "s4", kv, 6, D, 2, L, masked ? mask : NULL, 0, T_GRAD_TOL });
}

static void test_grad_causal(void) {
    grad_case(3, 8, "4", "false", "1", "softplus", 0);
    grad_case(4, 12, "8", "false", "null", "exp", 1);
    grad_case(4, 9, "6", "false", "2", "softplus", 1);
}

static void test_grad_bidir(void) {
    grad_case(5, 16, "4", "true", "5", "softplus", 1);
    grad_case(3, 10, "8", "true", "1", "exp", 0);
    grad_case(4, 8, "6", "true", "1", "softplus", 1);
}

// ---- step mode ------------------------------------------------------------------------------

#ifdef LRA_F64
#define STEP_TOL 1e-10
#else
#define STEP_TOL 2e-6  // float kernel, FFTs and recurrence: ~6e-7 seen at L = 64
#endif

static void test_step(void) {
    lra_kv kv1[] = { { "d_state", "8", NULL } };
    t_mixer_stepcheck(&(t_mixer_case){ "s4", kv1, 1, 4, 2, 16, NULL, 0, 0 }, STEP_TOL);
    lra_kv kv2[] = { { "d_state", "6", NULL }, { "n_ssm", "null", NULL }, { "dt_transform", "exp", NULL } };
    t_mixer_stepcheck(&(t_mixer_case){ "s4", kv2, 3, 3, 3, 13, NULL, 0, 0 }, STEP_TOL);
    lra_kv kv3[] = { { "d_state", "16", NULL }, { "dt_min", "0.01", NULL }, { "dt_max", "0.5", NULL } };
    t_mixer_stepcheck(&(t_mixer_case){ "s4", kv3, 3, 5, 2, 64, NULL, 0, 0 }, STEP_TOL);
}

static void test_step_bidir_refused(void) {
    lra_kv kv[] = { { "d_state", "4", NULL }, { "bidirectional", "true", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4", kv, 2, 3, 1, 8, 1, &err) == 0, "%s", err.msg);
    T_CHECK(s.m.vt->step_prepare(&s.m, t_backend(), &err) == LRA_EUNSUPPORTED, "bidirectional step");
    T_CHECK(strstr(err.msg, "bidirectional") && strstr(err.msg, "causal"), "message: %s", err.msg);
    lra_mixer_solo_free(&s);
}

// ---- C~ and the kernel ----------------------------------------------------------------------

// y (B=1, L, D) for x = 1 at t = 0 in every channel: y[t][h] = K_h[t] + D_h [t = 0]
static void impulse(lra_mixer_solo *s, lra_real *y, int L) {
    int D = s->m.D;
    lra_real *x = calloc((size_t)L * D, sizeof(lra_real));
    for (int h = 0; h < D; h++) x[h] = 1;
    lra_ctx ctx = { .be = s->be, .B = 1, .L = L, .seed = 1 };
    lra_err err = { 0 };
    T_CHECK(s->m.vt->forward(&s->m, &ctx, y, x, &err) == 0, "forward: %s", err.msg);
    free(x);
}

// X (N, 1) = M^-1 X, partial pivoting; M destroyed
static void csolve(cplx *M, cplx *X, int N) {
    for (int k = 0; k < N; k++) {
        int p = k;
        for (int i = k + 1; i < N; i++)
            if (cabs(M[i * N + k]) > cabs(M[p * N + k])) p = i;
        for (int j = 0; j < N; j++) { cplx t = M[k * N + j]; M[k * N + j] = M[p * N + j]; M[p * N + j] = t; }
        cplx t = X[k]; X[k] = X[p]; X[p] = t;
        for (int i = k + 1; i < N; i++) {
            cplx f = M[i * N + k] / M[k * N + k];
            for (int j = k; j < N; j++) M[i * N + j] -= f * M[k * N + j];
            X[i] -= f * X[k];
        }
    }
    for (int k = N - 1; k >= 0; k--) {
        for (int i = k + 1; i < N; i++) X[k] -= M[k * N + i] * X[i];
        X[k] /= M[k * N + k];
    }
}

// The initial kernel of a causal mixer (D = 3, N = 6, L_max = 24) equals
// C Abar^l Bbar for the C drawn at init (the stream s4_init uses: complex
// normal, each part variance 1/2, salt 0x54DC), built here in complex double
// from the conjugate-extended dense system: the conversion to C~ is undone.
static void test_ctilde_power_series(void) {
    enum { D = 3, N = 6, Nc = 3, L = 24 };
    lra_kv kv[] = { { "d_state", "6", NULL }, { "dt_min", "0.01", NULL }, { "dt_max", "0.3", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    uint64_t seed = 1234;
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4", kv, 3, D, 1, L, seed, &err) == 0, "%s", err.msg);
    lra_real y[L * D], C0[D * Nc * 2];
    impulse(&s, y, L);
    lra_init_rng r = lra_init_rng_new(seed, 0x54DC);
    lra_init_normal(C0, D * Nc * 2, &r, sqrt(0.5));
    const lra_real *inv_dt = s.m.p[1], *Cs = s.m.p[2], *Bp = s.m.p[3], *Ar = s.m.p[4], *Ai = s.m.p[5], *Pp = s.m.p[6];
    const lra_real *Dp = s.m.p[0];
    double worst = 0, ymax = 0, cmax = 0;
    for (int h = 0; h < D; h++) {
        double dt = log1p(exp((double)inv_dt[h]));
        cplx lam[N], P[N], Bv[N], A[N * N], M1[N * N], Ab[N * N], C[N], x[N], x2[N];
        for (int n = 0; n < Nc; n++) {
            lam[n] = mkc(-exp((double)Ar[n]), -(double)Ai[n]);
            P[n] = mkc(Pp[2 * n], Pp[2 * n + 1]);
            Bv[n] = mkc(Bp[2 * n], Bp[2 * n + 1]);
            C[n] = mkc(C0[(h * Nc + n) * 2], C0[(h * Nc + n) * 2 + 1]);
            lam[Nc + n] = conj(lam[n]);
            P[Nc + n] = conj(P[n]);
            Bv[Nc + n] = conj(Bv[n]);
            C[Nc + n] = conj(C[n]);
            // the stored C~ is far from the drawn C: the conversion happened
            cmax = fmax(cmax, cabs(C[n] - mkc(Cs[(h * Nc + n) * 2], Cs[(h * Nc + n) * 2 + 1])));
        }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                A[i * N + j] = (i == j ? lam[i] : 0) - P[i] * conj(P[j]);
                M1[i * N + j] = (i == j) - dt / 2 * A[i * N + j];
            }
        for (int j = 0; j < N; j++) {  // Abar column j = M1^-1 (I + dt/2 A) e_j
            cplx col[N], M[N * N];
            for (int i = 0; i < N; i++) col[i] = (i == j) + dt / 2 * A[i * N + j];
            memcpy(M, M1, sizeof M);
            csolve(M, col, N);
            for (int i = 0; i < N; i++) Ab[i * N + j] = col[i];
        }
        for (int i = 0; i < N; i++) x[i] = dt * Bv[i];
        csolve(M1, x, N);  // Bbar
        for (int l = 0; l < L; l++) {
            cplx k = 0;
            for (int i = 0; i < N; i++) k += C[i] * x[i];
            double got = (double)y[l * D + h] - (l == 0 ? (double)Dp[h] : 0);
            worst = fmax(worst, fabs(got - creal(k)));
            ymax = fmax(ymax, fabs(creal(k)));
            for (int i = 0; i < N; i++) {
                x2[i] = 0;
                for (int j = 0; j < N; j++) x2[i] += Ab[i * N + j] * x[j];
            }
            memcpy(x, x2, sizeof x);
        }
    }
    T_CHECK(cmax > 1e-2, "C~ equals the drawn C: no conversion (%g)", cmax);
    T_CHECK(worst <= (sizeof(lra_real) == 8 ? 1e-9 : 1e-4) * ymax, "kernel vs C Abar^l Bbar: error %g (max %g)",
            worst, ymax);
    lra_mixer_solo_free(&s);
}

// Mixers built for L_max = 8, 13 and 32 from one seed draw the same C, so
// their kernels (C Abar^l Bbar) agree on the first 8 taps.
static void test_ctilde_lengths(void) {
    enum { D = 4, L = 8 };
    lra_kv kv[] = { { "d_state", "8", NULL }, { "n_ssm", "2", NULL } };
    lra_real y[3][L * D];
    int lmax[3] = { 8, 13, 32 };
    for (int i = 0; i < 3; i++) {
        lra_mixer_solo s;
        lra_err err = { 0 };
        T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4", kv, 2, D, 1, lmax[i], 77, &err) == 0, "%s", err.msg);
        impulse(&s, y[i], L);
        lra_mixer_solo_free(&s);
    }
    for (int i = 1; i < 3; i++) t_close_r("kernel for another L_max", y[i], y[0], L * D, sizeof(lra_real) == 8 ? 1e-10 : 1e-4);
}

// ---- initial values and groups ---------------------------------------------------------------

static void test_init(void) {
    enum { D = 64, Nc = 4 };
    lra_kv kv[] = { { "d_state", "8", NULL }, { "bidirectional", "true", NULL }, { "n_ssm", "2", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4", kv, 3, D, 1, 32, 5, &err) == 0, "%s", err.msg);
    static const struct { const char *name; int ndim; int64_t shape[4]; lra_group group; } want[] = {
        { "D", 2, { 1, D }, LRA_GROUP_DECAY },
        { "kernel.inv_dt", 2, { D, 1 }, LRA_GROUP_SSM_DT },
        { "kernel.C", 4, { 2, D, Nc, 2 }, LRA_GROUP_DECAY },
        { "kernel.B", 4, { 1, 2, Nc, 2 }, LRA_GROUP_SSM },
        { "kernel.A_real", 2, { 2, Nc }, LRA_GROUP_SSM },
        { "kernel.A_imag", 2, { 2, Nc }, LRA_GROUP_SSM },
        { "kernel.P", 4, { 1, 2, Nc, 2 }, LRA_GROUP_SSM },
    };
    T_CHECK(s.m.n_params == 7, "%d parameters", s.m.n_params);
    for (int i = 0; i < 7 && i < s.m.n_params; i++) {
        const lra_param_spec *p = &s.specs[i];
        int ok = !strcmp(p->name, want[i].name) && p->ndim == want[i].ndim && p->group == want[i].group;
        for (int d = 0; ok && d < p->ndim; d++) ok = p->shape[d] == want[i].shape[d];
        T_CHECK(ok, "spec %d: %s, expected %s", i, p->name, want[i].name);
    }
    // dt = softplus(inv_dt) log-uniform in [0.001, 0.1]
    double lo = 1, hi = 0, mean_log = 0;
    for (int h = 0; h < D; h++) {
        double dt = log1p(exp((double)s.m.p[1][h]));
        lo = fmin(lo, dt);
        hi = fmax(hi, dt);
        mean_log += log(dt) / D;
    }
    T_CHECK(lo >= 0.001 * (1 - 1e-5) && hi <= 0.1 * (1 + 1e-5), "dt in [%g, %g]", lo, hi);
    T_CHECK(fabs(mean_log - 0.5 * (log(0.001) + log(0.1))) < 0.5, "mean log dt %g", mean_log);
    // HiPPO-LegS, N = 8 (models.md 3): |Im Lambda| = 0.4275, 1.9578, 5.3542, 19.8574, Re = -1/2,
    // the same in both rows; S4 keeps Im Lambda < 0 sorted ascending, so A_imag descends
    static const double im[Nc] = { 19.8574, 5.3542, 1.9578, 0.4275 };
    for (int sr = 0; sr < 2; sr++)
        for (int n = 0; n < Nc; n++) {
            int i = sr * Nc + n;
            T_CHECK(fabs((double)s.m.p[4][i] - log(0.5)) < 1e-6, "A_real[%d] = %g", i, (double)s.m.p[4][i]);
            T_CHECK(fabs((double)s.m.p[5][i] - im[n]) < 1e-4, "A_imag[%d] = %g, want %g", i, (double)s.m.p[5][i], im[n]);
            T_CHECK(fabs((double)s.m.p[3][2 * i + 1]) <= 2, "Im B[%d] = %g not clipped", i, (double)s.m.p[3][2 * i + 1]);
            T_CHECK(s.m.p[3][2 * i] == s.m.p[3][2 * n] && s.m.p[6][2 * i] == s.m.p[6][2 * n], "rows differ");
        }
    // the rank-1 term: sum_n |P_n|^2 = sum_k (k + 1/2) / 2 over the conjugate half (V unitary)
    double pp = 0, bb = 0;
    for (int n = 0; n < Nc; n++) {
        pp += pow(s.m.p[6][2 * n], 2) + pow(s.m.p[6][2 * n + 1], 2);
        bb += pow(s.m.p[3][2 * n], 2);
    }
    T_CHECK(fabs(pp - 16.0) < 1e-4, "sum |P|^2 = %g, want 16 (half of sum_k k + 1/2, k < 8)", pp);
    T_CHECK(bb > 0, "Re B is zero");
    // D ~ N(0, 1)
    double m1 = 0, m2 = 0;
    for (int h = 0; h < D; h++) {
        m1 += s.m.p[0][h] / D;
        m2 += s.m.p[0][h] * s.m.p[0][h] / D;
    }
    T_CHECK(fabs(m1) < 0.5 && m2 > 0.5 && m2 < 1.6, "D: mean %g, mean square %g", m1, m2);
    lra_mixer_solo_free(&s);
    // exp transform: inv_dt = log dt
    lra_kv kv2[] = { { "d_state", "4", NULL }, { "dt_transform", "exp", NULL }, { "dt_min", "0.01", NULL },
                     { "dt_max", "0.02", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4", kv2, 4, 8, 1, 8, 5, &err) == 0, "%s", err.msg);
    for (int h = 0; h < 8; h++) {
        double dt = exp((double)s.m.p[1][h]);
        T_CHECK(dt >= 0.01 * (1 - 1e-5) && dt <= 0.02 * (1 + 1e-5), "exp: dt = %g", dt);
    }
    lra_mixer_solo_free(&s);
}

// ---- configuration errors ---------------------------------------------------------------------

static void expect_error(const lra_kv *kv, int n, int D, const char *what, const char *needle) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4", kv, n, D, 1, 8, 1, &err) == LRA_EINVAL, "%s accepted", what);
    T_CHECK(strstr(err.msg, "x.yaml:") && strstr(err.msg, needle), "%s: message: %s", what, err.msg);
}

static void test_config_errors(void) {
    lra_kv typo[] = { { "dstate", "8", "x.yaml:3:5" } };
    expect_error(typo, 1, 4, "unknown key", "mixer.s4.dstate: unknown parameter");
    lra_kv rank[] = { { "rank", "2", "x.yaml:4:5" } };
    expect_error(rank, 1, 4, "rank 2", "rank");
    lra_kv odd[] = { { "d_state", "7", "x.yaml:5:5" } };
    expect_error(odd, 1, 4, "odd d_state", "d_state");
    lra_kv ssm[] = { { "n_ssm", "3", "x.yaml:6:5" } };
    expect_error(ssm, 1, 4, "n_ssm 3 of 4", "n_ssm");
    lra_kv tr[] = { { "dt_transform", "relu", "x.yaml:7:5" } };
    expect_error(tr, 1, 4, "dt_transform relu", "dt_transform");
    lra_kv dts[] = { { "dt_min", "0.5", "x.yaml:8:5" }, { "dt_max", "0.1", "x.yaml:9:5" } };
    expect_error(dts, 2, 4, "dt_min > dt_max", "dt_min");
    lra_kv bid[] = { { "bidirectional", "maybe", "x.yaml:10:5" } };
    expect_error(bid, 1, 4, "bidirectional maybe", "bidirectional");
}

// ---- PyTorch reference ---------------------------------------------------------------------------

static void test_reference(void) {
    t_mixer_refcheck("tests/ref/s4_causal_mask.safetensors", 1e-4, 1e-3);
    t_mixer_refcheck("tests/ref/s4_bidir.safetensors", 1e-4, 1e-3);
}

static const t_case cases[] = {
    { "mixer/s4/grad_causal", test_grad_causal },
    { "mixer/s4/grad_bidir", test_grad_bidir },
    { "mixer/s4/step", test_step },
    { "mixer/s4/step_bidir_refused", test_step_bidir_refused },
    { "mixer/s4/ctilde_power_series", test_ctilde_power_series },
    { "mixer/s4/ctilde_lengths", test_ctilde_lengths },
    { "mixer/s4/init", test_init },
    { "mixer/s4/config_errors", test_config_errors },
    { "mixer/s4/reference", test_reference },
};
T_MAIN(cases)
