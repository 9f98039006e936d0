// test_scan.c: the diagonal complex linear recurrence x_t = a_t x_{t-1} + b_t
// (models.md 0.3) against a sequential loop in double complex, for every
// combination of {time varying, time invariant} x {forward, reverse}, with and
// without an initial state; its adjoint against the same loop's adjoint and
// against finite differences of a projected loss; and the op contract:
// accumulation, NULL gradients, guards, unchanged inputs, empty shapes and
// independence of the thread count.
#include "check.h"

#include <complex.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const int all_flags[4] = { 0, LRA_SCAN_REVERSE, LRA_SCAN_TIME_INVARIANT,
                                  LRA_SCAN_REVERSE | LRA_SCAN_TIME_INVARIANT };

// re + i im (CMPLX is missing from some compilers' <complex.h>; the values here are finite)
static double complex mkc(double re, double im) { return re + im * I; }
static double complex cz(const lra_real *p, int64_t i) { return mkc((double)p[2 * i], (double)p[2 * i + 1]); }
static void put(double *p, int64_t i, double complex z) { p[2 * i] = creal(z); p[2 * i + 1] = cimag(z); }

// ---- one problem ----------------------------------------------------------------------

typedef struct {
    int B, L, N, flags;
    int64_t nx, na, n0;            // reals in x, b, R (B L N c), in a, in x0 (B N c)
    lra_real *x, *a, *b, *x0, *R;  // x0 NULL without an initial state; R: the loss projection, also dx
    lra_real *a_c, *b_c, *x0_c, *R_c;  // copies, to check that inputs are unchanged
} scan_case;

// a = r e^{i theta} with r in [rmin, rmax), theta in [-pi, pi)
static void fill_a(lra_real *a, int64_t n, uint64_t seed, double rmin, double rmax) {
    for (int64_t i = 0; i < n; i++) {
        double r = rmin + (rmax - rmin) * lra_rand_uniform(seed, (uint64_t)(2 * i));
        double th = M_PI * (2.0 * lra_rand_uniform(seed, (uint64_t)(2 * i + 1)) - 1.0);
        a[2 * i] = (lra_real)(r * cos(th));
        a[2 * i + 1] = (lra_real)(r * sin(th));
    }
}

static lra_real *dup(const lra_real *p, int64_t n) {
    if (!p) return NULL;
    lra_real *q = t_guarded(n);
    memcpy(q, p, sizeof(lra_real) * (size_t)n);
    return q;
}

static void sc_init(scan_case *c, int B, int L, int N, int flags, int has_x0, double rmin, double rmax,
                    uint64_t seed) {
    *c = (scan_case){ .B = B, .L = L, .N = N, .flags = flags };
    c->nx = (int64_t)B * L * N * 2;
    c->na = flags & LRA_SCAN_TIME_INVARIANT ? (int64_t)N * 2 : c->nx;
    c->n0 = (int64_t)B * N * 2;
    c->x = t_guarded(c->nx); c->a = t_guarded(c->na); c->b = t_guarded(c->nx); c->R = t_guarded(c->nx);
    fill_a(c->a, c->na / 2, seed, rmin, rmax);
    t_rand_fill(c->b, c->nx, seed + 1, -1, 1);
    t_rand_fill(c->R, c->nx, seed + 2, -1, 1);
    if (has_x0) {
        c->x0 = t_guarded(c->n0);
        t_rand_fill(c->x0, c->n0, seed + 3, -1, 1);
    }
    c->a_c = dup(c->a, c->na); c->b_c = dup(c->b, c->nx); c->x0_c = dup(c->x0, c->n0); c->R_c = dup(c->R, c->nx);
}

static void sc_free(scan_case *c) {
    lra_real *v[] = { c->x, c->a, c->b, c->x0, c->R, c->a_c, c->b_c, c->x0_c, c->R_c };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) t_guarded_free(v[i]);
}

static void sc_fwd(scan_case *c) {
    lra_backend *be = t_backend();
    be->scan_fwd(be, c->x, c->a, c->b, c->x0, c->B, c->L, c->N, c->flags);
}

static void sc_bwd(scan_case *c, lra_real *da, lra_real *db, lra_real *dx0) {
    lra_backend *be = t_backend();
    be->scan_bwd(be, da, db, dx0, c->R, c->x, c->a, c->x0, c->B, c->L, c->N, c->flags);
}

static void sc_inputs_unchanged(const scan_case *c, const char *what) {
    T_CHECK(memcmp(c->a, c->a_c, sizeof(lra_real) * (size_t)c->na) == 0, "%s: a changed", what);
    T_CHECK(memcmp(c->b, c->b_c, sizeof(lra_real) * (size_t)c->nx) == 0, "%s: b changed", what);
    T_CHECK(memcmp(c->R, c->R_c, sizeof(lra_real) * (size_t)c->nx) == 0, "%s: dx changed", what);
    T_CHECK(!c->x0 || memcmp(c->x0, c->x0_c, sizeof(lra_real) * (size_t)c->n0) == 0, "%s: x0 changed", what);
    t_guard_ok(c->a, what); t_guard_ok(c->b, what); t_guard_ok(c->R, what);
    if (c->x0) t_guard_ok(c->x0, what);
}

static void sc_name(char *out, size_t cap, const scan_case *c, const char *what) {
    snprintf(out, cap, "%s %s %s %s B=%d L=%d N=%d", what, c->flags & LRA_SCAN_REVERSE ? "reverse" : "forward",
             c->flags & LRA_SCAN_TIME_INVARIANT ? "invariant" : "varying", c->x0 ? "x0" : "no-x0", c->B, c->L, c->N);
}

// ---- references in double: the plain sequential loop and its adjoint --------------------

static int64_t at_x(const scan_case *c, int b, int t, int n) { return ((int64_t)b * c->L + t) * c->N + n; }
static int64_t at_a(const scan_case *c, int b, int t, int n) {
    return c->flags & LRA_SCAN_TIME_INVARIANT ? n : at_x(c, b, t, n);
}
static int time_of(const scan_case *c, int s) { return c->flags & LRA_SCAN_REVERSE ? c->L - 1 - s : s; }

// x (B, L, N)c
static void ref_fwd(double *x, const scan_case *c) {
    for (int b = 0; b < c->B; b++)
        for (int n = 0; n < c->N; n++) {
            double complex st = c->x0 ? cz(c->x0, (int64_t)b * c->N + n) : 0;
            for (int s = 0; s < c->L; s++) {
                int t = time_of(c, s);
                st = cz(c->a, at_a(c, b, t, n)) * st + cz(c->b, at_x(c, b, t, n));
                put(x, at_x(c, b, t, n), st);
            }
        }
}

// da (na), db (nx), dx0 (n0) from zero, with dx = R and the op's forward output x.
// Visiting the steps backwards: g = dx + conj(a_next) g_next, db = g,
// da += conj(x_prev) g, dx0 = conj(a_first) g_first.
static void ref_bwd(double *da, double *db, double *dx0, const scan_case *c) {
    memset(da, 0, sizeof(double) * (size_t)c->na);
    memset(db, 0, sizeof(double) * (size_t)c->nx);
    memset(dx0, 0, sizeof(double) * (size_t)c->n0);
    for (int b = 0; b < c->B; b++)
        for (int n = 0; n < c->N; n++) {
            double complex g = 0, a_next = 0;
            for (int s = c->L - 1; s >= 0; s--) {
                int t = time_of(c, s);
                g = cz(c->R, at_x(c, b, t, n)) + conj(a_next) * g;
                put(db, at_x(c, b, t, n), g);
                double complex xp = s > 0 ? cz(c->x, at_x(c, b, time_of(c, s - 1), n))
                                          : (c->x0 ? cz(c->x0, (int64_t)b * c->N + n) : 0);
                int64_t ia = at_a(c, b, t, n);
                put(da, ia, mkc(da[2 * ia], da[2 * ia + 1]) + conj(xp) * g);
                a_next = cz(c->a, ia);
            }
            put(dx0, (int64_t)b * c->N + n, conj(a_next) * g);
        }
}

// ---- forward -----------------------------------------------------------------------------

static void check_fwd(int B, int L, int N, int flags, int has_x0, double rmin, double rmax, double tol) {
    scan_case c;
    sc_init(&c, B, L, N, flags, has_x0, rmin, rmax, 100 + (uint64_t)(L * 8 + flags * 2 + has_x0));
    sc_fwd(&c);
    double *want = malloc(sizeof(double) * (size_t)c.nx);
    ref_fwd(want, &c);
    char what[128];
    sc_name(what, sizeof what, &c, "fwd");
    t_close(what, c.x, want, c.nx, tol);
    t_guard_ok(c.x, what);
    sc_inputs_unchanged(&c, what);
    free(want);
    sc_free(&c);
}

static const int lengths[] = { 1, 2, 17, 100 };
static const int widths[] = { 1, 5, 37 };  // 37: two tiles of modes, the second partial

static void test_fwd(void) {
    for (int f = 0; f < 4; f++)
        for (int x0 = 0; x0 < 2; x0++)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 3; j++) {
                    check_fwd(1, lengths[i], widths[j], all_flags[f], x0, 0.3, 0.99, T_FWD_TOL);
                    check_fwd(3, lengths[i], widths[j], all_flags[f], x0, 0.3, 0.99, T_FWD_TOL);
                }
}

// |a| close to 1 over a long sequence: the state carries 2000 steps of inputs.
static void test_long_fwd(void) {
    for (int f = 0; f < 4; f++) {
        check_fwd(2, 2000, 37, all_flags[f], 1, 0.999, 0.99999, T_FWD_TOL);
        check_fwd(1, 2000, 5, all_flags[f], 0, 0.9999, 1.0, T_FWD_TOL);
    }
}

// Hand-computed: x0 = 1, a = i, b = 1 gives 1+i, i, 0 in visiting order.
static void test_hand(void) {
    lra_backend *be = t_backend();
    lra_real a[6] = { 0, 1, 0, 1, 0, 1 }, b[6] = { 1, 0, 1, 0, 1, 0 }, x0[2] = { 1, 0 }, x[6];
    const double fwd[6] = { 1, 1, 0, 1, 0, 0 }, rev[6] = { 0, 0, 0, 1, 1, 1 };
    be->scan_fwd(be, x, a, b, x0, 1, 3, 1, 0);
    t_close("forward", x, fwd, 6, T_FWD_TOL);
    be->scan_fwd(be, x, a, b, x0, 1, 3, 1, LRA_SCAN_REVERSE);
    t_close("reverse", x, rev, 6, T_FWD_TOL);
    be->scan_fwd(be, x, a, b, x0, 1, 3, 1, LRA_SCAN_REVERSE | LRA_SCAN_TIME_INVARIANT);
    t_close("reverse invariant", x, rev, 6, T_FWD_TOL);
    // without x0: 1, 1+i, i
    const double fwd0[6] = { 1, 0, 1, 1, 0, 1 };
    be->scan_fwd(be, x, a, b, NULL, 1, 3, 1, LRA_SCAN_TIME_INVARIANT);
    t_close("forward no x0", x, fwd0, 6, T_FWD_TOL);
}

// ---- backward ----------------------------------------------------------------------------

// da, db, dx0 from zeroed buffers against the reference adjoint (dx0 is
// written also without x0: the gradient of a zero initial state).
static void check_bwd_ref(int B, int L, int N, int flags, int has_x0) {
    scan_case c;
    sc_init(&c, B, L, N, flags, has_x0, 0.3, 0.99, 200 + (uint64_t)(L * 8 + flags * 2 + has_x0));
    sc_fwd(&c);
    lra_real *da = t_guarded(c.na), *db = t_guarded(c.nx), *dx0 = t_guarded(c.n0);
    memset(da, 0, sizeof(lra_real) * (size_t)c.na);
    memset(db, 0, sizeof(lra_real) * (size_t)c.nx);
    memset(dx0, 0, sizeof(lra_real) * (size_t)c.n0);
    sc_bwd(&c, da, db, dx0);
    double *wa = malloc(sizeof(double) * (size_t)c.na), *wb = malloc(sizeof(double) * (size_t)c.nx),
           *w0 = malloc(sizeof(double) * (size_t)c.n0);
    ref_bwd(wa, wb, w0, &c);
    char what[128];
    sc_name(what, sizeof what, &c, "da");
    t_close(what, da, wa, c.na, T_FWD_TOL);
    t_guard_ok(da, what);
    sc_name(what, sizeof what, &c, "db");
    t_close(what, db, wb, c.nx, T_FWD_TOL);
    t_guard_ok(db, what);
    sc_name(what, sizeof what, &c, "dx0");
    t_close(what, dx0, w0, c.n0, T_FWD_TOL);
    t_guard_ok(dx0, what);
    t_guard_ok(c.x, what);
    sc_inputs_unchanged(&c, what);
    free(wa); free(wb); free(w0);
    t_guarded_free(da); t_guarded_free(db); t_guarded_free(dx0);
    sc_free(&c);
}

static void test_bwd_ref(void) {
    for (int f = 0; f < 4; f++)
        for (int x0 = 0; x0 < 2; x0++)
            for (int i = 0; i < 4; i++) {
                check_bwd_ref(1, lengths[i], 5, all_flags[f], x0);
                check_bwd_ref(3, lengths[i], 37, all_flags[f], x0);
            }
}

static double sc_loss(void *p) {
    scan_case *c = p;
    sc_fwd(c);
    return t_project(c->x, c->R, c->nx);
}

// Central differences of loss = sum x R for a, b and x0 (both coordinates of
// each complex number: the arrays are interleaved).
static void check_grad(int B, int L, int N, int flags, int has_x0) {
    scan_case c;
    sc_init(&c, B, L, N, flags, has_x0, 0.3, 0.8, 300 + (uint64_t)(L * 8 + flags * 2 + has_x0));
    lra_real *da = t_guarded(c.na), *db = t_guarded(c.nx), *dx0 = t_guarded(c.n0);
    memset(da, 0, sizeof(lra_real) * (size_t)c.na);
    memset(db, 0, sizeof(lra_real) * (size_t)c.nx);
    memset(dx0, 0, sizeof(lra_real) * (size_t)c.n0);
    sc_fwd(&c);
    sc_bwd(&c, da, db, dx0);
    char what[128];
    sc_name(what, sizeof what, &c, "da");
    t_gradcheck(what, sc_loss, &c, c.a, c.na, da, T_GRAD_TOL);
    sc_name(what, sizeof what, &c, "db");
    t_gradcheck(what, sc_loss, &c, c.b, c.nx, db, T_GRAD_TOL);
    if (has_x0) {
        sc_name(what, sizeof what, &c, "dx0");
        t_gradcheck(what, sc_loss, &c, c.x0, c.n0, dx0, T_GRAD_TOL);
    }
    t_guard_ok(da, "da"); t_guard_ok(db, "db"); t_guard_ok(dx0, "dx0");
    t_guarded_free(da); t_guarded_free(db); t_guarded_free(dx0);
    sc_free(&c);
}

static void test_grad(void) {
    for (int f = 0; f < 4; f++)
        for (int x0 = 0; x0 < 2; x0++) {
            check_grad(1, 1, 5, all_flags[f], x0);
            check_grad(3, 2, 5, all_flags[f], x0);
            check_grad(1, 17, 5, all_flags[f], x0);
            check_grad(3, 17, 5, all_flags[f], x0);
        }
}

// Backward adds to what the buffers hold (g0 + grad), and twice gives 2 grad.
static void check_accumulate(int flags) {
    scan_case c;
    sc_init(&c, 3, 13, 37, flags, 1, 0.3, 0.99, 400 + (uint64_t)flags);
    sc_fwd(&c);
    int64_t n[3] = { c.na, c.nx, c.n0 };
    lra_real *g[3], *d[3], *want[3];
    for (int i = 0; i < 3; i++) {
        g[i] = t_guarded(n[i]); d[i] = t_guarded(n[i]); want[i] = malloc(sizeof(lra_real) * (size_t)n[i]);
        memset(g[i], 0, sizeof(lra_real) * (size_t)n[i]);
        t_rand_fill(d[i], n[i], 401 + (uint64_t)i, -2, 2);
    }
    sc_bwd(&c, g[0], g[1], g[2]);  // the gradient alone
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < n[i]; k++) want[i][k] = d[i][k] + g[i][k];
    sc_bwd(&c, d[0], d[1], d[2]);
    static const char *const names[3] = { "da", "db", "dx0" };
    char what[128];
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "%s += grad flags=%d", names[i], flags);
        t_close_r(what, d[i], want[i], n[i], T_FWD_TOL);
        for (int64_t k = 0; k < n[i]; k++) want[i][k] = 2 * g[i][k];
    }
    sc_bwd(&c, g[0], g[1], g[2]);
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "%s twice = 2 grad flags=%d", names[i], flags);
        t_close_r(what, g[i], want[i], n[i], T_FWD_TOL);
        t_guard_ok(g[i], what); t_guard_ok(d[i], what);
        t_guarded_free(g[i]); t_guarded_free(d[i]); free(want[i]);
    }
    sc_inputs_unchanged(&c, "accumulate");
    sc_free(&c);
}

static void test_accumulate(void) {
    for (int f = 0; f < 4; f++) check_accumulate(all_flags[f]);
}

// NULL skips a gradient; each one alone is bit-identical to it with all wanted.
static void check_null_grads(int flags) {
    scan_case c;
    sc_init(&c, 2, 9, 37, flags, 1, 0.3, 0.99, 500 + (uint64_t)flags);
    sc_fwd(&c);
    int64_t n[3] = { c.na, c.nx, c.n0 };
    lra_real *all[3], *one[3];
    for (int i = 0; i < 3; i++) {
        all[i] = t_guarded(n[i]); one[i] = t_guarded(n[i]);
        memset(all[i], 0, sizeof(lra_real) * (size_t)n[i]);
        memset(one[i], 0, sizeof(lra_real) * (size_t)n[i]);
    }
    sc_bwd(&c, all[0], all[1], all[2]);
    sc_bwd(&c, NULL, NULL, NULL);
    sc_bwd(&c, one[0], NULL, NULL);
    sc_bwd(&c, NULL, one[1], NULL);
    sc_bwd(&c, NULL, NULL, one[2]);
    static const char *const names[3] = { "da alone", "db alone", "dx0 alone" };
    for (int i = 0; i < 3; i++) {
        t_close_r(names[i], one[i], all[i], n[i], 0);
        t_guard_ok(one[i], names[i]);
        t_guarded_free(all[i]); t_guarded_free(one[i]);
    }
    sc_inputs_unchanged(&c, "null grads");
    sc_free(&c);
}

static void test_null_grads(void) {
    for (int f = 0; f < 4; f++) check_null_grads(all_flags[f]);
}

// Empty shapes write nothing (the guarded buffers stay NaN and intact).
static void test_empty(void) {
    lra_backend *be = t_backend();
    lra_real *x = t_guarded(8), *a = t_guarded(8), *da = t_guarded(8), *db = t_guarded(8), *d0 = t_guarded(8);
    for (int f = 0; f < 4; f++) {
        be->scan_fwd(be, x, a, a, a, 0, 2, 2, all_flags[f]);
        be->scan_fwd(be, x, a, a, a, 2, 0, 2, all_flags[f]);
        be->scan_fwd(be, x, a, a, a, 2, 2, 0, all_flags[f]);
        be->scan_bwd(be, da, db, d0, a, a, a, a, 0, 2, 2, all_flags[f]);
        be->scan_bwd(be, da, db, d0, a, a, a, a, 2, 0, 2, all_flags[f]);
        be->scan_bwd(be, da, db, d0, a, a, a, a, 2, 2, 0, all_flags[f]);
    }
    T_CHECK(isnan((double)x[0]) && isnan((double)da[0]) && isnan((double)db[7]) && isnan((double)d0[0]),
            "nothing written");
    lra_real *v[] = { x, a, da, db, d0 };
    for (int i = 0; i < 5; i++) {
        t_guard_ok(v[i], "empty");
        t_guarded_free(v[i]);
    }
}

// ---- determinism ------------------------------------------------------------------------


// Forward, then backward into zeroed buffers; out[0] x, out[1..3] da, db, dx0.
static void run_all(scan_case *c, lra_real *out[4]) {
    sc_fwd(c);
    memcpy(out[0], c->x, sizeof(lra_real) * (size_t)c->nx);
    memset(out[1], 0, sizeof(lra_real) * (size_t)c->na);
    memset(out[2], 0, sizeof(lra_real) * (size_t)c->nx);
    memset(out[3], 0, sizeof(lra_real) * (size_t)c->n0);
    sc_bwd(c, out[1], out[2], out[3]);
}

// Two calls, and 1, 2 and 3 threads, give the same bits (the time-invariant
// da is reduced over the batch in a fixed order).
static void check_deterministic(int flags) {
    scan_case c;
    sc_init(&c, 5, 50, 70, flags, 1, 0.3, 0.99, 600 + (uint64_t)flags);
    int64_t n[4] = { c.nx, c.na, c.nx, c.n0 };
    lra_real *ref[4], *got[4];
    for (int i = 0; i < 4; i++) { ref[i] = t_guarded(n[i]); got[i] = t_guarded(n[i]); }
    run_all(&c, ref);
    static const char *const names[4] = { "x", "da", "db", "dx0" };
    int saved = t_threads_get();
    for (int th = 0; th <= 3; th++) {  // 0: the default count again (a second call)
        if (th > 0) t_threads_set(th);
        run_all(&c, got);
        for (int i = 0; i < 4; i++)
            T_CHECK(memcmp(ref[i], got[i], sizeof(lra_real) * (size_t)n[i]) == 0,
                    "flags=%d: %s differs with %d threads", flags, names[i], th);
    }
    t_threads_set(saved);
    for (int i = 0; i < 4; i++) {
        t_guard_ok(ref[i], names[i]); t_guard_ok(got[i], names[i]);
        t_guarded_free(ref[i]); t_guarded_free(got[i]);
    }
    sc_inputs_unchanged(&c, "deterministic");
    sc_free(&c);
}

static void test_deterministic(void) {
    for (int f = 0; f < 4; f++) check_deterministic(all_flags[f]);
}

static const t_case cases[] = {
    { "scan/hand", test_hand },
    { "scan/fwd", test_fwd },
    { "scan/long_fwd", test_long_fwd },
    { "scan/bwd_ref", test_bwd_ref },
    { "scan/grad", test_grad },
    { "scan/accumulate", test_accumulate },
    { "scan/null_grads", test_null_grads },
    { "scan/empty", test_empty },
    { "scan/deterministic", test_deterministic },
};
T_MAIN(cases)
