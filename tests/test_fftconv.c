// test_fftconv.c: the FFT long convolution (causal and S4 bidirectional
// layouts) against direct O(L^2) sums in double, its backward against the
// direct adjoint and against finite differences, and the op contract:
// accumulation, NULL gradients, guards, unchanged inputs, determinism and
// independence of the thread count.
#include "check.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *const mode_name[LRA_CONV_COUNT] = { "causal", "bidir" };

static int64_t klen(int L, lra_conv_mode mode) { return mode == LRA_CONV_BIDIRECTIONAL ? 2 * (int64_t)L : L; }

// ---- direct references in double ------------------------------------------------

// y[t] = sum_{j<=t} kf[j] u[t-j] + sum_{i>=0, t+1+i<L} kb[i] u[t+1+i] (kb only when bidirectional)
static void ref_fwd(double *y, const lra_real *u, const lra_real *k, int B, int H, int L, lra_conv_mode mode) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const lra_real *ur = u + ((int64_t)b * H + h) * L, *kf = k + h * klen(L, mode), *kb = kf + L;
            double *yr = y + ((int64_t)b * H + h) * L;
            for (int t = 0; t < L; t++) {
                double s = 0;
                for (int j = 0; j <= t; j++) s += (double)kf[j] * ur[t - j];
                if (mode == LRA_CONV_BIDIRECTIONAL)
                    for (int i = 0; t + 1 + i < L; i++) s += (double)kb[i] * ur[t + 1 + i];
                yr[t] = s;
            }
        }
}

// The adjoint of ref_fwd term by term: every product k[.] u[.] that feeds y[t]
// sends g[t] k[.] to du and sum_b g[t] u[.] to dk.
static void ref_bwd(double *du, double *dk, const lra_real *g, const lra_real *u, const lra_real *k, int B, int H,
                    int L, lra_conv_mode mode) {
    memset(du, 0, sizeof(double) * (size_t)B * H * L);
    memset(dk, 0, sizeof(double) * (size_t)(H * klen(L, mode)));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int64_t row = ((int64_t)b * H + h) * L;
            const lra_real *ur = u + row, *gr = g + row, *kf = k + h * klen(L, mode), *kb = kf + L;
            double *dur = du + row, *dkf = dk + h * klen(L, mode), *dkb = dkf + L;
            for (int t = 0; t < L; t++) {
                for (int j = 0; j <= t; j++) {
                    dur[t - j] += (double)gr[t] * kf[j];
                    dkf[j] += (double)gr[t] * ur[t - j];
                }
                if (mode == LRA_CONV_BIDIRECTIONAL)
                    for (int i = 0; t + 1 + i < L; i++) {
                        dur[t + 1 + i] += (double)gr[t] * kb[i];
                        dkb[i] += (double)gr[t] * ur[t + 1 + i];
                    }
            }
        }
}

// ---- one problem: inputs, outputs and their copies ----------------------------------

typedef struct {
    int B, H, L;
    lra_conv_mode mode;
    int64_t nu, nk;           // B H L and the length of k
    lra_real *u, *k, *y, *R;  // R: projection of the loss, also dy
    lra_real *u0, *k0, *R0;   // copies, to check that inputs are unchanged
} conv_case;

static void cc_init(conv_case *c, int B, int H, int L, lra_conv_mode mode, uint64_t seed) {
    *c = (conv_case){ .B = B, .H = H, .L = L, .mode = mode };
    c->nu = (int64_t)B * H * L;
    c->nk = H * klen(L, mode);
    c->u = t_guarded(c->nu); c->k = t_guarded(c->nk); c->y = t_guarded(c->nu); c->R = t_guarded(c->nu);
    c->u0 = t_guarded(c->nu); c->k0 = t_guarded(c->nk); c->R0 = t_guarded(c->nu);
    t_rand_fill(c->u, c->nu, seed, -1, 1);
    t_rand_fill(c->k, c->nk, seed + 1, -1, 1);
    t_rand_fill(c->R, c->nu, seed + 2, -1, 1);
    memcpy(c->u0, c->u, sizeof(lra_real) * (size_t)c->nu);
    memcpy(c->k0, c->k, sizeof(lra_real) * (size_t)c->nk);
    memcpy(c->R0, c->R, sizeof(lra_real) * (size_t)c->nu);
}

static void cc_free(conv_case *c) {
    lra_real *v[] = { c->u, c->k, c->y, c->R, c->u0, c->k0, c->R0 };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) t_guarded_free(v[i]);
}

static void cc_fwd(conv_case *c) {
    lra_backend *be = t_backend();
    be->fftconv_fwd(be, c->y, c->u, c->k, c->B, c->H, c->L, c->mode);
}

static void cc_bwd(conv_case *c, lra_real *du, lra_real *dk) {
    lra_backend *be = t_backend();
    be->fftconv_bwd(be, du, dk, c->R, c->u, c->k, c->B, c->H, c->L, c->mode);
}

static void cc_inputs_unchanged(const conv_case *c, const char *what) {
    T_CHECK(memcmp(c->u, c->u0, sizeof(lra_real) * (size_t)c->nu) == 0, "%s: u changed", what);
    T_CHECK(memcmp(c->k, c->k0, sizeof(lra_real) * (size_t)c->nk) == 0, "%s: k changed", what);
    T_CHECK(memcmp(c->R, c->R0, sizeof(lra_real) * (size_t)c->nu) == 0, "%s: dy changed", what);
    t_guard_ok(c->u, what); t_guard_ok(c->k, what); t_guard_ok(c->R, what);
}

static void cc_name(char *out, size_t cap, const conv_case *c, const char *what) {
    snprintf(out, cap, "%s %s B=%d H=%d L=%d", what, mode_name[c->mode], c->B, c->H, c->L);
}

// ---- forward --------------------------------------------------------------------------

static void check_fwd(int B, int H, int L, lra_conv_mode mode) {
    conv_case c;
    cc_init(&c, B, H, L, mode, 100 + (uint64_t)L);
    cc_fwd(&c);
    double *want = malloc(sizeof(double) * (size_t)c.nu);
    ref_fwd(want, c.u, c.k, B, H, L, mode);
    char what[96];
    cc_name(what, sizeof what, &c, "fwd");
    t_close(what, c.y, want, c.nu, T_FWD_TOL);
    t_guard_ok(c.y, what);
    cc_inputs_unchanged(&c, what);
    free(want);
    cc_free(&c);
}

static const int lengths[] = { 1, 2, 7, 13, 33, 100, 257 };
#define N_LENGTHS ((int)(sizeof lengths / sizeof lengths[0]))

static void test_fwd(lra_conv_mode mode) {
    for (int i = 0; i < N_LENGTHS; i++) {
        check_fwd(1, 1, lengths[i], mode);
        check_fwd(3, 5, lengths[i], mode);
        check_fwd(2, 4, lengths[i], mode);
    }
}
static void test_causal_fwd(void) { test_fwd(LRA_CONV_CAUSAL); }
static void test_bidir_fwd(void) { test_fwd(LRA_CONV_BIDIRECTIONAL); }

// A hand-computed bidirectional case: u = e_m picks out the kernel taps, so
// y[t] = k_fwd[t-m] for t >= m and k_bwd[m-t-1] for t < m.
static void test_bidir_layout(void) {
    lra_backend *be = t_backend();
    enum { L = 6, M = 2 };
    lra_real u[L] = {0}, k[2 * L], y[L];
    u[M] = 1;
    for (int i = 0; i < L; i++) { k[i] = (lra_real)(1 + i); k[L + i] = (lra_real)(-10 - i); }
    be->fftconv_fwd(be, y, u, k, 1, 1, L, LRA_CONV_BIDIRECTIONAL);
    const double want[L] = { -11, -10, 1, 2, 3, 4 };  // k_bwd[1], k_bwd[0], k_fwd[0..3]
    t_close("bidir impulse", y, want, L, T_FWD_TOL * 10);
    be->fftconv_fwd(be, y, u, k, 1, 1, L, LRA_CONV_CAUSAL);
    const double want_c[L] = { 0, 0, 1, 2, 3, 4 };
    t_close("causal impulse", y, want_c, L, T_FWD_TOL * 10);
}

// One long case, the length of LRA's Path-X-free tasks: every output against the direct sum.
static void test_long_fwd(void) {
    check_fwd(1, 3, 4096, LRA_CONV_CAUSAL);
    check_fwd(1, 2, 4096, LRA_CONV_BIDIRECTIONAL);
    check_fwd(2, 1, 1000, LRA_CONV_BIDIRECTIONAL);  // n = 2000, not a power of two
}

// ---- backward ---------------------------------------------------------------------------

// du and dk from zeroed buffers, against the direct adjoint, with guards.
static void check_bwd_ref(int B, int H, int L, lra_conv_mode mode) {
    conv_case c;
    cc_init(&c, B, H, L, mode, 200 + (uint64_t)L);
    lra_real *du = t_guarded(c.nu), *dk = t_guarded(c.nk);
    memset(du, 0, sizeof(lra_real) * (size_t)c.nu);
    memset(dk, 0, sizeof(lra_real) * (size_t)c.nk);
    cc_bwd(&c, du, dk);
    double *wdu = malloc(sizeof(double) * (size_t)c.nu), *wdk = malloc(sizeof(double) * (size_t)c.nk);
    ref_bwd(wdu, wdk, c.R, c.u, c.k, B, H, L, mode);
    char what[96];
    cc_name(what, sizeof what, &c, "du");
    t_close(what, du, wdu, c.nu, T_FWD_TOL);
    t_guard_ok(du, what);
    cc_name(what, sizeof what, &c, "dk");
    t_close(what, dk, wdk, c.nk, T_FWD_TOL);
    t_guard_ok(dk, what);
    cc_inputs_unchanged(&c, what);
    free(wdu); free(wdk);
    t_guarded_free(du); t_guarded_free(dk);
    cc_free(&c);
}

static void test_bwd_ref(lra_conv_mode mode) {
    for (int i = 0; i < N_LENGTHS; i++) {
        check_bwd_ref(1, 1, lengths[i], mode);
        check_bwd_ref(3, 5, lengths[i], mode);
    }
}
static void test_causal_bwd_ref(void) { test_bwd_ref(LRA_CONV_CAUSAL); }
static void test_bidir_bwd_ref(void) { test_bwd_ref(LRA_CONV_BIDIRECTIONAL); }

static double cc_loss(void *p) {
    conv_case *c = p;
    cc_fwd(c);
    return t_project(c->y, c->R, c->nu);
}

// central finite differences of loss = sum y R for every input of the op
static void check_grad(int B, int H, int L, lra_conv_mode mode) {
    conv_case c;
    cc_init(&c, B, H, L, mode, 300 + (uint64_t)L);
    lra_real *du = t_guarded(c.nu), *dk = t_guarded(c.nk);
    memset(du, 0, sizeof(lra_real) * (size_t)c.nu);
    memset(dk, 0, sizeof(lra_real) * (size_t)c.nk);
    cc_fwd(&c);
    cc_bwd(&c, du, dk);
    char what[96];
    cc_name(what, sizeof what, &c, "du");
    t_gradcheck(what, cc_loss, &c, c.u, c.nu, du, T_GRAD_TOL);
    cc_name(what, sizeof what, &c, "dk");
    t_gradcheck(what, cc_loss, &c, c.k, c.nk, dk, T_GRAD_TOL);
    t_guard_ok(du, "du"); t_guard_ok(dk, "dk");
    t_guarded_free(du); t_guarded_free(dk);
    cc_free(&c);
}

static void test_grad(lra_conv_mode mode) {
    check_grad(1, 1, 1, mode);
    check_grad(2, 3, 7, mode);
    check_grad(3, 2, 13, mode);
    check_grad(1, 2, 33, mode);
}
static void test_causal_grad(void) { test_grad(LRA_CONV_CAUSAL); }
static void test_bidir_grad(void) { test_grad(LRA_CONV_BIDIRECTIONAL); }

// Backward adds to what the buffers hold: prefilled g0 gives g0 + grad, and a
// second call adds grad again.
static void check_accumulate(lra_conv_mode mode) {
    conv_case c;
    cc_init(&c, 3, 4, 11, mode, 400);
    lra_real *du = t_guarded(c.nu), *dk = t_guarded(c.nk), *gu = t_guarded(c.nu), *gk = t_guarded(c.nk);
    memset(gu, 0, sizeof(lra_real) * (size_t)c.nu);
    memset(gk, 0, sizeof(lra_real) * (size_t)c.nk);
    cc_bwd(&c, gu, gk);  // the gradient alone
    t_rand_fill(du, c.nu, 401, -2, 2);
    t_rand_fill(dk, c.nk, 402, -2, 2);
    lra_real *wu = malloc(sizeof(lra_real) * (size_t)c.nu), *wk = malloc(sizeof(lra_real) * (size_t)c.nk);
    for (int64_t i = 0; i < c.nu; i++) wu[i] = du[i] + gu[i];
    for (int64_t i = 0; i < c.nk; i++) wk[i] = dk[i] + gk[i];
    cc_bwd(&c, du, dk);
    char what[96];
    cc_name(what, sizeof what, &c, "du += grad");
    t_close_r(what, du, wu, c.nu, T_FWD_TOL);
    cc_name(what, sizeof what, &c, "dk += grad");
    t_close_r(what, dk, wk, c.nk, T_FWD_TOL);
    for (int64_t i = 0; i < c.nu; i++) wu[i] = 2 * gu[i];
    for (int64_t i = 0; i < c.nk; i++) wk[i] = 2 * gk[i];
    cc_bwd(&c, gu, gk);
    cc_name(what, sizeof what, &c, "twice = 2 grad");
    t_close_r(what, gu, wu, c.nu, T_FWD_TOL);
    t_close_r(what, gk, wk, c.nk, T_FWD_TOL);
    t_guard_ok(du, "du"); t_guard_ok(dk, "dk"); t_guard_ok(gu, "gu"); t_guard_ok(gk, "gk");
    cc_inputs_unchanged(&c, what);
    free(wu); free(wk);
    t_guarded_free(du); t_guarded_free(dk); t_guarded_free(gu); t_guarded_free(gk);
    cc_free(&c);
}

static void test_accumulate(void) {
    check_accumulate(LRA_CONV_CAUSAL);
    check_accumulate(LRA_CONV_BIDIRECTIONAL);
}

// NULL skips a gradient; the other one is exactly what it is with both wanted.
static void check_null_grads(lra_conv_mode mode) {
    conv_case c;
    cc_init(&c, 2, 3, 9, mode, 500);
    lra_real *du = t_guarded(c.nu), *dk = t_guarded(c.nk), *du1 = t_guarded(c.nu), *dk1 = t_guarded(c.nk);
    memset(du, 0, sizeof(lra_real) * (size_t)c.nu); memset(du1, 0, sizeof(lra_real) * (size_t)c.nu);
    memset(dk, 0, sizeof(lra_real) * (size_t)c.nk); memset(dk1, 0, sizeof(lra_real) * (size_t)c.nk);
    cc_bwd(&c, du, dk);
    cc_bwd(&c, NULL, NULL);
    cc_bwd(&c, du1, NULL);
    cc_bwd(&c, NULL, dk1);
    char what[96];
    cc_name(what, sizeof what, &c, "du alone");
    t_close_r(what, du1, du, c.nu, 0);
    cc_name(what, sizeof what, &c, "dk alone");
    t_close_r(what, dk1, dk, c.nk, 0);
    t_guard_ok(du1, "du1"); t_guard_ok(dk1, "dk1");
    cc_inputs_unchanged(&c, what);
    t_guarded_free(du); t_guarded_free(dk); t_guarded_free(du1); t_guarded_free(dk1);
    cc_free(&c);
}

static void test_null_grads(void) {
    check_null_grads(LRA_CONV_CAUSAL);
    check_null_grads(LRA_CONV_BIDIRECTIONAL);
}

// Empty shapes write nothing (the guarded buffers stay NaN and intact).
static void test_empty(void) {
    lra_backend *be = t_backend();
    lra_real *y = t_guarded(4), *u = t_guarded(4), *k = t_guarded(4), *du = t_guarded(4), *dk = t_guarded(4);
    for (int m = 0; m < LRA_CONV_COUNT; m++) {
        be->fftconv_fwd(be, y, u, k, 0, 2, 2, (lra_conv_mode)m);
        be->fftconv_fwd(be, y, u, k, 2, 0, 2, (lra_conv_mode)m);
        be->fftconv_fwd(be, y, u, k, 2, 2, 0, (lra_conv_mode)m);
        be->fftconv_bwd(be, du, dk, u, u, k, 0, 2, 2, (lra_conv_mode)m);
        be->fftconv_bwd(be, du, dk, u, u, k, 2, 2, 0, (lra_conv_mode)m);
    }
    T_CHECK(isnan((double)y[0]) && isnan((double)du[3]) && isnan((double)dk[0]), "nothing written");
    t_guard_ok(y, "y"); t_guard_ok(du, "du"); t_guard_ok(dk, "dk");
    lra_real *v[] = { y, u, k, du, dk };
    for (int i = 0; i < 5; i++) t_guarded_free(v[i]);
}

// ---- determinism ------------------------------------------------------------------------

// Forward and backward of one case into fresh buffers y (nu), du (nu), dk (nk).
static void run_all(conv_case *c, lra_real *y, lra_real *du, lra_real *dk) {
    lra_backend *be = t_backend();
    be->fftconv_fwd(be, y, c->u, c->k, c->B, c->H, c->L, c->mode);
    memset(du, 0, sizeof(lra_real) * (size_t)c->nu);
    memset(dk, 0, sizeof(lra_real) * (size_t)c->nk);
    cc_bwd(c, du, dk);
}

static int same_bits(const lra_real *a, const lra_real *b, int64_t n) {
    return memcmp(a, b, sizeof(lra_real) * (size_t)n) == 0;
}

// The same call twice (plans reused from the cache), and with 1 and 2 threads:
// bit-identical, because one thread computes each row and each channel's dk.
static void check_deterministic(lra_conv_mode mode) {
    conv_case c;
    cc_init(&c, 3, 5, 257, mode, 600);
    lra_real *y[3], *du[3], *dk[3];
    for (int i = 0; i < 3; i++) { y[i] = t_guarded(c.nu); du[i] = t_guarded(c.nu); dk[i] = t_guarded(c.nk); }
    run_all(&c, y[0], du[0], dk[0]);
    run_all(&c, y[1], du[1], dk[1]);
    T_CHECK(same_bits(y[0], y[1], c.nu), "%s: y differs between two calls", mode_name[mode]);
    T_CHECK(same_bits(du[0], du[1], c.nu), "%s: du differs between two calls", mode_name[mode]);
    T_CHECK(same_bits(dk[0], dk[1], c.nk), "%s: dk differs between two calls", mode_name[mode]);
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_all(&c, y[1], du[1], dk[1]);
    omp_set_num_threads(2);
    run_all(&c, y[2], du[2], dk[2]);
    omp_set_num_threads(saved);
    for (int i = 1; i < 3; i++) {
        T_CHECK(same_bits(y[0], y[i], c.nu), "%s: y depends on the thread count", mode_name[mode]);
        T_CHECK(same_bits(du[0], du[i], c.nu), "%s: du depends on the thread count", mode_name[mode]);
        T_CHECK(same_bits(dk[0], dk[i], c.nk), "%s: dk depends on the thread count", mode_name[mode]);
    }
#endif
    for (int i = 0; i < 3; i++) {
        t_guard_ok(y[i], "y"); t_guard_ok(du[i], "du"); t_guard_ok(dk[i], "dk");
        t_guarded_free(y[i]); t_guarded_free(du[i]); t_guarded_free(dk[i]);
    }
    cc_inputs_unchanged(&c, mode_name[mode]);
    cc_free(&c);
}

static void test_deterministic(void) {
    check_deterministic(LRA_CONV_CAUSAL);
    check_deterministic(LRA_CONV_BIDIRECTIONAL);
}

// Several CPU backends used from several threads at once, each planning
// transforms of other sizes: FFTW's planner is process-wide, so planning and
// plan destruction must be serialised across backends, not per backend.
typedef struct { int L, ok; } bt_job;

static void *bt_worker(void *p) {
    bt_job *job = p;
    job->ok = 1;
    for (int rep = 0; rep < 6; rep++) {
        lra_err err = {0};
        lra_backend *be = lra_backend_init("cpu", 1, &err);
        if (!be) { job->ok = 0; return NULL; }
        int L = job->L + rep, H = 2;
        lra_real *u = malloc(sizeof(lra_real) * 2 * (size_t)L), *k = malloc(sizeof(lra_real) * 2 * (size_t)L);
        lra_real *y = malloc(sizeof(lra_real) * 2 * (size_t)L);
        t_rand_fill(u, 2 * (int64_t)L, 1, -1, 1);
        t_rand_fill(k, 2 * (int64_t)L, 2, -1, 1);
        be->fftconv_fwd(be, y, u, k, 1, H, L, LRA_CONV_CAUSAL);
        for (int h = 0; h < H && job->ok; h++)  // spot-check y[L-1] of each channel against the direct sum
            for (int t = L - 1; t < L; t++) {
                double want = 0;
                for (int j = 0; j <= t; j++) want += (double)k[h * L + j] * u[h * L + t - j];
                if (fabs(y[h * L + t] - want) > 1e-3 * (1 + fabs(want))) job->ok = 0;
            }
        free(u); free(k); free(y);
        lra_backend_free(be);
    }
    return NULL;
}

static void test_backends_in_threads(void) {
    enum { T = 4 };
    pthread_t th[T];
    bt_job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i].L = 50 + 37 * i;
        T_CHECK(pthread_create(&th[i], NULL, bt_worker, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) T_CHECK(jobs[i].ok, "thread %d: wrong convolution", i);
}

static const t_case cases[] = {
    { "fftconv/backends_in_threads", test_backends_in_threads },
    { "fftconv/causal_fwd", test_causal_fwd },
    { "fftconv/bidir_fwd", test_bidir_fwd },
    { "fftconv/bidir_layout", test_bidir_layout },
    { "fftconv/long_fwd", test_long_fwd },
    { "fftconv/causal_bwd_ref", test_causal_bwd_ref },
    { "fftconv/bidir_bwd_ref", test_bidir_bwd_ref },
    { "fftconv/causal_grad", test_causal_grad },
    { "fftconv/bidir_grad", test_bidir_grad },
    { "fftconv/accumulate", test_accumulate },
    { "fftconv/null_grads", test_null_grads },
    { "fftconv/empty", test_empty },
    { "fftconv/deterministic", test_deterministic },
};
T_MAIN(cases)
