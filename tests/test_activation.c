// test_activation.c: every lra_act (forward against double references with
// libm's erf/tanh, derivatives against finite differences, stability at large
// |x|), GLU, and dropout (the exact mask formula, tied and untied, drop rate,
// seeds, aliasing, backward with the same mask).
#include "check.h"

#include <math.h>

// ---- helpers -----------------------------------------------------------------

static lra_real *copy_of(const lra_real *x, int64_t n) {
    lra_real *y = t_guarded(n);
    if (n > 0) memcpy(y, x, sizeof(lra_real) * (size_t)n);
    return y;
}

static int same(const lra_real *a, const lra_real *b, int64_t n) {
    return n <= 0 || memcmp(a, b, sizeof(lra_real) * (size_t)n) == 0;
}

static double *dalloc(int64_t n) {
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void plus(double *want, const lra_real *before, const lra_real *grad, int64_t n) {
    for (int64_t i = 0; i < n; i++) want[i] = (double)before[i] + (double)grad[i];
}

// ---- activations ---------------------------------------------------------------

static double act_ref(double x, lra_act act) {
    switch (act) {
    case LRA_ACT_IDENTITY:  return x;
    case LRA_ACT_RELU:      return x > 0 ? x : 0;
    case LRA_ACT_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case LRA_ACT_GELU_ERF:  return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case LRA_ACT_SILU:      return x / (1 + exp(-x));
    case LRA_ACT_SIGMOID:   return 1 / (1 + exp(-x));
    case LRA_ACT_SOFTPLUS:  return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case LRA_ACT_TANH:      return tanh(x);
    case LRA_ACT_SIN:       return sin(x);
    default:                return NAN;
    }
}

static void test_act_fwd(void) {
    lra_backend *be = t_backend();
    int64_t n = 1001;
    lra_real *x = t_guarded(n), *y = t_guarded(n), *x0 = t_guarded(n);
    double *want = dalloc(n);
    t_rand_fill(x, n, 1, -6, 6);
    memcpy(x0, x, sizeof(lra_real) * (size_t)n);
    // extreme inputs, checked element by element (relative to each value)
    lra_real big[6] = { -800, -50, -30, 30, 50, 800 }, ybig[6];
    for (int a = 0; a < LRA_ACT_COUNT; a++) {
        char what[96];
        be->act_fwd(be, y, x, n, (lra_act)a);
        for (int64_t i = 0; i < n; i++) want[i] = act_ref(x[i], (lra_act)a);
        snprintf(what, sizeof what, "%s forward", lra_act_names[a]);
        t_close(what, y, want, n, T_FWD_TOL);
        be->act_fwd(be, ybig, big, 6, (lra_act)a);
        for (int i = 0; i < 6; i++) {
            double w = act_ref(big[i], (lra_act)a);
            snprintf(what, sizeof what, "%s(%g)", lra_act_names[a], (double)big[i]);
            t_close(what, &ybig[i], &w, 1, T_FWD_TOL);
        }
        be->act_fwd(be, y, x, 1, (lra_act)a);  // n = 1
        double w0 = act_ref(x[0], (lra_act)a);
        t_close("n = 1", y, &w0, 1, T_FWD_TOL);
        be->act_fwd(be, y, x, 0, (lra_act)a);  // n = 0: nothing
    }
    T_CHECK(same(x, x0, n), "input unchanged");
    t_guard_ok(y, "out");
    free(want);
    t_guarded_free(x); t_guarded_free(y); t_guarded_free(x0);
}

typedef struct { int64_t n; lra_act act; lra_real *x, *y, *P; } act_ctx;

static double act_loss(void *p) {
    act_ctx *c = p;
    t_backend()->act_fwd(t_backend(), c->y, c->x, c->n, c->act);
    return t_project(c->y, c->P, c->n);
}

static void test_act_grad(void) {
    lra_backend *be = t_backend();
    act_ctx c = { .n = 37 };
    int64_t n = c.n;
    c.x = t_guarded(n); c.y = t_guarded(n); c.P = t_guarded(n);
    lra_real *dx = t_guarded(n), *ax = t_guarded(n), *x0 = t_guarded(n), *P0 = t_guarded(n);
    double *want = dalloc(n);
    t_rand_fill(c.x, n, 2, -3, 3);
    for (int64_t i = 0; i < n; i++)  // keep away from relu's kink (FD steps are <= 0.03)
        if (fabs((double)c.x[i]) < 0.1) c.x[i] = c.x[i] < 0 ? (lra_real)(c.x[i] - 0.2) : (lra_real)(c.x[i] + 0.2);
    t_rand_fill(c.P, n, 3, -1, 1);
    memcpy(x0, c.x, sizeof(lra_real) * (size_t)n);
    memcpy(P0, c.P, sizeof(lra_real) * (size_t)n);
    for (int a = 0; a < LRA_ACT_COUNT; a++) {
        char what[96];
        c.act = (lra_act)a;
        act_loss(&c);
        be->fill(be, dx, 0, n);
        be->act_bwd(be, dx, c.P, c.x, n, c.act);
        T_CHECK(same(c.x, x0, n) && same(c.P, P0, n), "%s: inputs unchanged", lra_act_names[a]);
        snprintf(what, sizeof what, "%s dinp", lra_act_names[a]);
        t_gradcheck(what, act_loss, &c, c.x, n, dx, T_GRAD_TOL);
        // accumulation
        t_rand_fill(ax, n, 4 + (uint64_t)a, -1, 1);
        plus(want, ax, dx, n);
        be->act_bwd(be, ax, c.P, c.x, n, c.act);
        snprintf(what, sizeof what, "%s dinp accumulates", lra_act_names[a]);
        t_close(what, ax, want, n, T_FWD_TOL);
        be->act_bwd(be, NULL, c.P, c.x, n, c.act);  // not wanted: no crash
        // derivatives stay finite (and tend to their limits) at large |x|
        lra_real big[4] = { -800, -50, 50, 800 }, one[4] = { 1, 1, 1, 1 }, g[4] = { 0, 0, 0, 0 };
        be->act_bwd(be, g, one, big, 4, c.act);
        for (int i = 0; i < 4; i++) T_CHECK(isfinite((double)g[i]), "%s'(%g) = %g", lra_act_names[a], (double)big[i], (double)g[i]);
        if (a == LRA_ACT_SIN) {  // periodic: no limit, the derivative is cos
            for (int i = 0; i < 4; i++)
                T_CHECK(fabs((double)g[i] - cos((double)big[i])) < 1e-5, "sin'(%g) = %g", (double)big[i], (double)g[i]);
            continue;
        }
        if (a != LRA_ACT_IDENTITY)
            T_CHECK(fabs((double)g[0]) < 1e-6, "%s'(-800) = %g", lra_act_names[a], (double)g[0]);
        if (a == LRA_ACT_SIGMOID || a == LRA_ACT_TANH)
            T_CHECK(fabs((double)g[3]) < 1e-6, "%s'(800) = %g", lra_act_names[a], (double)g[3]);
        else
            T_CHECK(fabs((double)g[3] - 1) < 1e-6, "%s'(800) = %g", lra_act_names[a], (double)g[3]);
    }
    t_guard_ok(dx, "dx"); t_guard_ok(ax, "ax"); t_guard_ok(c.y, "y");
    free(want);
    lra_real *all[] = { c.x, c.y, c.P, dx, ax, x0, P0 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
}

// ---- GLU -----------------------------------------------------------------------

typedef struct { int64_t R; int C; lra_real *x, *y, *P; } glu_ctx;

static double glu_loss(void *p) {
    glu_ctx *c = p;
    t_backend()->glu_fwd(t_backend(), c->y, c->x, c->R, c->C);
    return t_project(c->y, c->P, c->R * c->C);
}

static void check_glu(int64_t R, int C, int grads) {
    lra_backend *be = t_backend();
    glu_ctx c = { .R = R, .C = C };
    int64_t n = R * C, n2 = 2 * n;
    c.x = t_guarded(n2); c.y = t_guarded(n); c.P = t_guarded(n);
    t_rand_fill(c.x, n2, 500 + (uint64_t)R, -3, 3);
    t_rand_fill(c.P, n, 6, -1, 1);
    lra_real *x0 = copy_of(c.x, n2);
    glu_loss(&c);
    double *want = dalloc(n2);
    for (int64_t r = 0; r < R; r++)
        for (int k = 0; k < C; k++) {
            double a = c.x[r * 2 * C + k], g = c.x[r * 2 * C + C + k];
            want[r * C + k] = a / (1 + exp(-g));
        }
    t_close("glu forward", c.y, want, n, T_FWD_TOL);
    T_CHECK(same(c.x, x0, n2), "input unchanged");
    t_guard_ok(c.y, "out");
    if (grads) {
        lra_real *dx = t_guarded(n2), *ax = t_guarded(n2);
        be->fill(be, dx, 0, n2);
        be->glu_bwd(be, dx, c.P, c.x, R, C);
        T_CHECK(same(c.x, x0, n2), "input unchanged by glu_bwd");
        t_gradcheck("glu dinp", glu_loss, &c, c.x, n2, dx, T_GRAD_TOL);
        t_rand_fill(ax, n2, 7, -1, 1);
        plus(want, ax, dx, n2);
        be->glu_bwd(be, ax, c.P, c.x, R, C);
        t_close("glu dinp accumulates", ax, want, n2, T_FWD_TOL);
        be->glu_bwd(be, NULL, c.P, c.x, R, C);
        t_guard_ok(dx, "dx"); t_guard_ok(ax, "ax");
        t_guarded_free(dx); t_guarded_free(ax);
    }
    free(want);
    t_guarded_free(c.x); t_guarded_free(c.y); t_guarded_free(c.P); t_guarded_free(x0);
}

static void test_glu_fwd(void) {
    check_glu(7, 5, 0);
    check_glu(1, 1, 0);
    check_glu(301, 129, 0);
}

static void test_glu_grad(void) {
    check_glu(7, 5, 1);
    check_glu(1, 3, 1);
}

// ---- dropout -------------------------------------------------------------------

static uint64_t drop_counter(int64_t a, int64_t m, int64_t c, int64_t M, int64_t C, int tied) {
    return (uint64_t)(tied ? a * C + c : (a * M + m) * C + c);
}

// The mask of backend.h, written out: keep iff uniform(seed, counter) >= p.
static int drop_keep(uint64_t seed, uint64_t counter, lra_real p) {
    return lra_rand_uniform(seed, counter) >= p;
}

// forward against the formula, element by element: out = keep ? x / (1-p) : 0
static void check_dropout_mask(int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied) {
    lra_backend *be = t_backend();
    int64_t n = A * M * C;
    lra_real *x = t_guarded(n), *y = t_guarded(n);
    t_rand_fill(x, n, 8, 0.5, 1.5);  // nonzero: a zero output means dropped
    lra_real *x0 = copy_of(x, n);
    double *want = dalloc(n);
    be->dropout_fwd(be, y, x, A, M, C, p, seed, tied);
    int64_t wrong = 0, dropped = 0;
    for (int64_t a = 0; a < A; a++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = 0; c < C; c++) {
                int64_t i = (a * M + m) * C + c;
                int keep = drop_keep(seed, drop_counter(a, m, c, M, C, tied), p);
                want[i] = keep ? (double)x[i] / (1.0 - (double)p) : 0.0;
                wrong += keep ? y[i] == 0 : y[i] != 0;
                dropped += !keep;
                if (tied && m > 0) wrong += (y[i] == 0) != (y[(a * M) * C + c] == 0);  // constant along M
            }
    T_CHECK(wrong == 0, "%s mask (%lld,%lld,%lld) p=%g: %lld elements disagree with the formula",
            tied ? "tied" : "untied", (long long)A, (long long)M, (long long)C, (double)p, (long long)wrong);
    T_CHECK(n < 50 || (dropped > 0 && dropped < n), "some but not all dropped (%lld of %lld)", (long long)dropped,
            (long long)n);
    t_close("dropout kept values scaled by 1/(1-p)", y, want, n, T_FWD_TOL);
    T_CHECK(same(x, x0, n), "input unchanged");
    t_guard_ok(y, "out");
    free(want);
    t_guarded_free(x); t_guarded_free(y); t_guarded_free(x0);
}

static void test_dropout_mask(void) {
    check_dropout_mask(3, 4, 5, (lra_real)0.3, 1234, 0);
    check_dropout_mask(3, 4, 5, (lra_real)0.3, 1234, 1);
    check_dropout_mask(5, 7, 33, (lra_real)0.1, 99, 0);
    check_dropout_mask(5, 7, 33, (lra_real)0.5, 99, 1);
    check_dropout_mask(1, 1, 9, (lra_real)0.5, 7, 1);
    check_dropout_mask(1, 13, 1, (lra_real)0.5, 7, 1);  // C = 1: the whole row shares one mask value
    check_dropout_mask(1, 13, 1, (lra_real)0.5, 7, 0);
}

// drop rate within 3 sigma of p over the independent mask values
static void check_dropout_rate(int64_t A, int64_t M, int64_t C, lra_real p, int tied) {
    lra_backend *be = t_backend();
    int64_t n = A * M * C;
    lra_real *x = t_guarded(n), *y = t_guarded(n);
    be->fill(be, x, 1, n);
    be->dropout_fwd(be, y, x, A, M, C, p, 77, tied);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) zeros += y[i] == 0;
    double masks = tied ? (double)(A * C) : (double)n;   // independent draws
    double frac = (double)zeros / (double)n, sigma = sqrt((double)p * (1 - (double)p) / masks);
    T_CHECK(fabs(frac - (double)p) <= 3 * sigma, "%s: dropped %.5f, want %.3f +- %.5f", tied ? "tied" : "untied",
            frac, (double)p, 3 * sigma);
    t_guard_ok(y, "out");
    t_guarded_free(x); t_guarded_free(y);
}

static void test_dropout_rate(void) {
    check_dropout_rate(10, 100, 1000, (lra_real)0.3, 0);  // 1e6 elements
    check_dropout_rate(1000, 3, 333, (lra_real)0.3, 1);   // 333000 masks, each used 3 times
    check_dropout_rate(7, 11, 12987, (lra_real)0.1, 0);
}

static void test_dropout_seed(void) {
    lra_backend *be = t_backend();
    int64_t A = 4, M = 5, C = 51, n = A * M * C;
    lra_real *x = t_guarded(n), *y1 = t_guarded(n), *y2 = t_guarded(n), *y3 = t_guarded(n);
    t_rand_fill(x, n, 9, 0.5, 1.5);
    for (int tied = 0; tied < 2; tied++) {
        be->dropout_fwd(be, y1, x, A, M, C, (lra_real)0.4, 5, tied);
        be->dropout_fwd(be, y2, x, A, M, C, (lra_real)0.4, 5, tied);
        be->dropout_fwd(be, y3, x, A, M, C, (lra_real)0.4, 6, tied);
        T_CHECK(same(y1, y2, n), "same seed, same output");
        int64_t differ = 0;
        for (int64_t i = 0; i < n; i++) differ += (y1[i] == 0) != (y3[i] == 0);
        // independent masks differ with probability 2 p (1-p) = 0.48 per element
        T_CHECK(differ > n / 4, "another seed, another mask (%lld of %lld differ)", (long long)differ, (long long)n);
    }
    t_guard_ok(y1, "y1"); t_guard_ok(y2, "y2"); t_guard_ok(y3, "y3");
    t_guarded_free(x); t_guarded_free(y1); t_guarded_free(y2); t_guarded_free(y3);
}

// out == inp, and p = 0 (a copy, also aliased), and p = 1 (all dropped, no NaN)
static void test_dropout_alias(void) {
    lra_backend *be = t_backend();
    int64_t A = 3, M = 7, C = 5, n = A * M * C;
    lra_real *x = t_guarded(n), *y = t_guarded(n), *z = t_guarded(n);
    t_rand_fill(x, n, 10, -1, 1);
    for (int tied = 0; tied < 2; tied++) {
        be->dropout_fwd(be, y, x, A, M, C, (lra_real)0.25, 3, tied);
        memcpy(z, x, sizeof(lra_real) * (size_t)n);
        be->dropout_fwd(be, z, z, A, M, C, (lra_real)0.25, 3, tied);
        T_CHECK(same(y, z, n), "aliased out == inp gives the same result (tied %d)", tied);
    }
    be->dropout_fwd(be, y, x, A, M, C, 0, 3, 0);
    T_CHECK(same(y, x, n), "p = 0 copies");
    memcpy(z, x, sizeof(lra_real) * (size_t)n);
    be->dropout_fwd(be, z, z, A, M, C, 0, 3, 0);
    T_CHECK(same(z, x, n), "p = 0 in place");
    be->dropout_fwd(be, y, x, A, M, C, 1, 3, 1);
    int64_t nonzero = 0;
    for (int64_t i = 0; i < n; i++) nonzero += y[i] != 0;
    T_CHECK(nonzero == 0, "p = 1 drops everything (%lld nonzero)", (long long)nonzero);
    be->dropout_fwd(be, y, x, 0, M, C, (lra_real)0.5, 3, 0);  // empty: nothing happens
    t_guard_ok(y, "y"); t_guard_ok(z, "z");
    t_guarded_free(x); t_guarded_free(y); t_guarded_free(z);
}

typedef struct { int64_t A, M, C; lra_real p; uint64_t seed; int tied; lra_real *x, *y, *P; } drop_ctx;

static double drop_loss(void *p) {
    drop_ctx *c = p;
    t_backend()->dropout_fwd(t_backend(), c->y, c->x, c->A, c->M, c->C, c->p, c->seed, c->tied);
    return t_project(c->y, c->P, c->A * c->M * c->C);
}

static void check_dropout_grad(int64_t A, int64_t M, int64_t C, lra_real p, int tied) {
    lra_backend *be = t_backend();
    drop_ctx c = { .A = A, .M = M, .C = C, .p = p, .seed = 4242, .tied = tied };
    int64_t n = A * M * C;
    c.x = t_guarded(n); c.y = t_guarded(n); c.P = t_guarded(n);
    t_rand_fill(c.x, n, 11, 0.5, 1.5);
    t_rand_fill(c.P, n, 12, -1, 1);
    lra_real *dx = t_guarded(n), *ax = t_guarded(n), *P0 = copy_of(c.P, n);
    double *want = dalloc(n);
    drop_loss(&c);
    be->fill(be, dx, 0, n);
    be->dropout_bwd(be, dx, c.P, A, M, C, p, c.seed, tied);
    T_CHECK(same(c.P, P0, n), "dout unchanged");
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; i++) wrong += (c.y[i] == 0) != (dx[i] == 0);
    T_CHECK(wrong == 0, "backward mask = forward mask (%lld differ)", (long long)wrong);
    for (int64_t i = 0; i < n; i++) want[i] = c.y[i] == 0 ? 0.0 : (double)c.P[i] / (1.0 - (double)p);
    t_close("dropout dinp = mask dout / (1-p)", dx, want, n, T_FWD_TOL);
    t_gradcheck(tied ? "dropout tied dinp" : "dropout dinp", drop_loss, &c, c.x, n, dx, T_GRAD_TOL);
    t_rand_fill(ax, n, 13, -1, 1);
    plus(want, ax, dx, n);
    be->dropout_bwd(be, ax, c.P, A, M, C, p, c.seed, tied);
    t_close("dropout dinp accumulates", ax, want, n, T_FWD_TOL);
    be->dropout_bwd(be, NULL, c.P, A, M, C, p, c.seed, tied);
    // p = 0: dinp += dout
    t_rand_fill(ax, n, 14, -1, 1);
    plus(want, ax, c.P, n);
    be->dropout_bwd(be, ax, c.P, A, M, C, 0, c.seed, tied);
    t_close("dropout p = 0 backward accumulates dout", ax, want, n, T_FWD_TOL);
    t_guard_ok(dx, "dx"); t_guard_ok(ax, "ax"); t_guard_ok(c.y, "y");
    free(want);
    lra_real *all[] = { c.x, c.y, c.P, dx, ax, P0 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
}

static void test_dropout_grad(void) {
    check_dropout_grad(3, 4, 5, (lra_real)0.3, 0);
    check_dropout_grad(3, 4, 5, (lra_real)0.3, 1);
    check_dropout_grad(1, 7, 9, (lra_real)0.5, 1);
}

static const t_case cases[] = {
    { "act/fwd", test_act_fwd },
    { "act/grad", test_act_grad },
    { "glu/fwd", test_glu_fwd },
    { "glu/grad", test_glu_grad },
    { "dropout/mask", test_dropout_mask },
    { "dropout/rate", test_dropout_rate },
    { "dropout/seed", test_dropout_seed },
    { "dropout/alias_p0_p1", test_dropout_alias },
    { "dropout/grad", test_dropout_grad },
};
T_MAIN(cases)
