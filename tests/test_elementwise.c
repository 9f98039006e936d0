// test_elementwise.c: fill, axpby, add, mul, mul_cols (+ backward), mul_rows, sum_rows,
// sum, sumsq and permute_0213 (whose backward is the inverse permute).
#include "check.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void test_basic(void) {
    lra_backend *be = t_backend();
    int64_t n = 1001;
    lra_real *a = t_guarded(n), *b = t_guarded(n), *y = t_guarded(n), *out = t_guarded(n);
    double *want = malloc(sizeof(double) * (size_t)n);
    t_rand_fill(a, n, 1, -2, 2);
    t_rand_fill(b, n, 2, -2, 2);
    be->fill(be, out, (lra_real)1.5, n);
    for (int64_t i = 0; i < n; i++) want[i] = 1.5;
    t_close("fill", out, want, n, 0);
    be->add(be, out, a, b, n);
    for (int64_t i = 0; i < n; i++) want[i] = (double)a[i] + b[i];
    t_close("add", out, want, n, T_FWD_TOL);
    be->mul(be, out, a, b, n);
    for (int64_t i = 0; i < n; i++) want[i] = (double)a[i] * b[i];
    t_close("mul", out, want, n, T_FWD_TOL);
    for (int64_t i = 0; i < n; i++) y[i] = b[i];
    be->axpby(be, y, (lra_real)0.5, a, (lra_real)-2, n);
    for (int64_t i = 0; i < n; i++) want[i] = 0.5 * a[i] - 2.0 * b[i];
    t_close("axpby", y, want, n, T_FWD_TOL);
    be->add(be, y, y, a, n);  // aliasing out == a
    for (int64_t i = 0; i < n; i++) want[i] += a[i];
    t_close("add aliased", y, want, n, T_FWD_TOL);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) { s += a[i]; s2 += (double)a[i] * a[i]; }
    T_CHECK(fabs(be->sum(be, a, n) - s) < 1e-9 * (1 + fabs(s)), "sum");
    T_CHECK(fabs(be->sumsq(be, a, n) - s2) < 1e-9 * s2, "sumsq");
    T_CHECK(be->sum(be, a, 0) == 0, "empty sum");
    t_guard_ok(out, "out"); t_guard_ok(y, "y");
    free(want);
    t_guarded_free(a); t_guarded_free(b); t_guarded_free(y); t_guarded_free(out);
}

// out (R, C) = inp * v[r]: exact products, in place too; the padding mask of
// the scan mixers (v of zeros and ones) among the cases.
static void test_mul_rows(void) {
    lra_backend *be = t_backend();
    const int64_t R = 37;
    const int C = 19;
    int64_t n = R * C;
    lra_real *x = t_guarded(n), *v = t_guarded(R), *y = t_guarded(n);
    t_rand_fill(x, n, 11, -2, 2); t_rand_fill(v, R, 12, -2, 2);
    v[3] = 0; v[4] = 1;
    be->mul_rows(be, y, x, v, R, C);
    double *want = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) want[i] = (double)(lra_real)(x[i] * v[i / C]);
    t_close("mul_rows", y, want, n, 0);
    T_CHECK(y[3 * C] == 0 && y[4 * C + 5] == x[4 * C + 5], "mul_rows: a zero row and a unit row");
    be->mul_rows(be, x, x, v, R, C);  // in place
    t_close("mul_rows in place", x, want, n, 0);
    t_guard_ok(x, "x"); t_guard_ok(v, "v"); t_guard_ok(y, "y");
    free(want);
    t_guarded_free(x); t_guarded_free(v); t_guarded_free(y);
}

typedef struct { int64_t R; int C; lra_real *x, *v, *y, *P; } mc_ctx;

static double mc_loss(void *p) {
    mc_ctx *c = p;
    t_backend()->mul_cols(t_backend(), c->y, c->x, c->v, c->R, c->C);
    return t_project(c->y, c->P, c->R * c->C);
}

static void test_mul_cols(void) {
    lra_backend *be = t_backend();
    mc_ctx c = { .R = 13, .C = 7 };
    int64_t n = c.R * c.C;
    c.x = t_guarded(n); c.v = t_guarded(c.C); c.y = t_guarded(n); c.P = t_guarded(n);
    t_rand_fill(c.x, n, 3, -1, 1); t_rand_fill(c.v, c.C, 4, -1, 1); t_rand_fill(c.P, n, 5, -1, 1);
    mc_loss(&c);
    double *want = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) want[i] = (double)c.x[i] * c.v[i % c.C];
    t_close("mul_cols", c.y, want, n, T_FWD_TOL);
    lra_real *dx = t_guarded(n), *dv = t_guarded(c.C), *dx2 = t_guarded(n), *dv2 = t_guarded(c.C);
    be->fill(be, dx, 0, n); be->fill(be, dv, 0, c.C);
    be->mul_cols_bwd(be, dx, dv, c.P, c.x, c.v, c.R, c.C);
    t_gradcheck("mul_cols dx", mc_loss, &c, c.x, n, dx, T_GRAD_TOL);
    t_gradcheck("mul_cols dv", mc_loss, &c, c.v, c.C, dv, T_GRAD_TOL);
    // accumulation: starting from g0 gives g0 + grad
    t_rand_fill(dx2, n, 6, -1, 1); t_rand_fill(dv2, c.C, 7, -1, 1);
    for (int64_t i = 0; i < n; i++) want[i] = (double)dx2[i] + dx[i];
    be->mul_cols_bwd(be, dx2, dv2, c.P, c.x, c.v, c.R, c.C);
    t_close("mul_cols dx accumulates", dx2, want, n, T_FWD_TOL);
    be->mul_cols_bwd(be, NULL, NULL, c.P, c.x, c.v, c.R, c.C);  // nothing wanted: no crash
    t_guard_ok(dx, "dx"); t_guard_ok(dv, "dv"); t_guard_ok(c.y, "y");
    free(want);
    lra_real *all[] = { c.x, c.v, c.y, c.P, dx, dv, dx2, dv2 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
}

static void test_sum_rows(void) {
    lra_backend *be = t_backend();
    int64_t R = 1003; int C = 9;
    lra_real *x = t_guarded(R * C), *out = t_guarded(C);
    t_rand_fill(x, R * C, 8, -1, 1);
    t_rand_fill(out, C, 9, -1, 1);
    double want[9];
    for (int c = 0; c < C; c++) { want[c] = out[c]; for (int64_t r = 0; r < R; r++) want[c] += x[r * C + c]; }
    be->sum_rows(be, out, x, R, C);
    t_close("sum_rows accumulates", out, want, C, T_FWD_TOL);
    t_guard_ok(out, "out");
    t_guarded_free(x); t_guarded_free(out);
}

// Reductions give the same bits for any thread count (fixed-block sums).
static void test_reduction_threads(void) {
#ifdef _OPENMP
    lra_backend *be = t_backend();
    int64_t R = 3001; int C = 7, n = 100003;
    lra_real *x = t_guarded(n), *cs1 = t_guarded(C), *cs2 = t_guarded(C);
    t_rand_fill(x, n, 21, -1, 1);
    int saved = omp_get_max_threads();
    double s[2], q[2];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k ? 3 : 1);
        s[k] = be->sum(be, x, n);
        q[k] = be->sumsq(be, x, n);
        lra_real *cs = k ? cs2 : cs1;
        be->fill(be, cs, 0, C);
        be->sum_rows(be, cs, x, R, C);
    }
    omp_set_num_threads(saved);
    T_CHECK(s[0] == s[1] && q[0] == q[1], "sum/sumsq differ across thread counts: %.17g %.17g", s[0], s[1]);
    T_CHECK(memcmp(cs1, cs2, sizeof(lra_real) * (size_t)C) == 0, "sum_rows differs across thread counts");
    t_guarded_free(x); t_guarded_free(cs1); t_guarded_free(cs2);
#else
    T_SKIP("built without OpenMP");
#endif
}

static void check_permute(int64_t A, int64_t Bd, int64_t Cd, int64_t Dd) {
    lra_backend *be = t_backend();
    int64_t n = A * Bd * Cd * Dd;
    lra_real *x = t_guarded(n), *y = t_guarded(n), *back = t_guarded(n);
    t_rand_fill(x, n, 10, -1, 1);
    be->permute_0213(be, y, x, A, Bd, Cd, Dd);
    int bad = 0;
    for (int64_t a = 0; a < A; a++)
        for (int64_t b = 0; b < Bd; b++)
            for (int64_t c = 0; c < Cd; c++)
                for (int64_t d = 0; d < Dd; d++)
                    bad += y[((a * Cd + c) * Bd + b) * Dd + d] != x[((a * Bd + b) * Cd + c) * Dd + d];
    T_CHECK(bad == 0, "permute (%lld,%lld,%lld,%lld): %d misplaced", (long long)A, (long long)Bd, (long long)Cd,
            (long long)Dd, bad);
    // the backward of a permute is the inverse permute: swapping Bd and Cd
    be->permute_0213(be, back, y, A, Cd, Bd, Dd);
    t_close_r("permute inverse", back, x, n, 0);
    t_guard_ok(y, "y"); t_guard_ok(back, "back");
    t_guarded_free(x); t_guarded_free(y); t_guarded_free(back);
}

static void test_permute(void) {
    check_permute(1, 1, 1, 1);
    check_permute(2, 5, 3, 4);      // head split (B, L, NH, Dh) -> (B, NH, L, Dh)
    check_permute(3, 37, 70, 1);    // (B, L, H) -> (B, H, L), crosses 32-wide tiles
    check_permute(1, 100, 1, 3);
}

static const t_case cases[] = {
    { "elementwise/basic", test_basic },
    { "elementwise/mul_cols", test_mul_cols },
    { "elementwise/mul_rows", test_mul_rows },
    { "elementwise/sum_rows", test_sum_rows },
    { "elementwise/permute", test_permute },
    { "elementwise/reduction_threads", test_reduction_threads },
};
T_MAIN(cases)
