// test_complex.c: the complex helpers of the diagonal SSMs. The S4D
// Vandermonde kernel K[h][l] = Re sum_n c[h][n] exp(l w[h][n]) against a long
// double reference (also at L = 16384 with |Im w| ~ 1000, where a float phase
// is wrong by radians), its backward against a direct double adjoint (also at
// L = 5001, past the kernel's blocks and superblocks of powers) and finite
// differences; elementwise complex exp and product against <complex.h>,
// with out aliasing the inputs, and their backward against finite
// differences; and the op contract: accumulation, NULL gradients, guards,
// unchanged inputs, empty shapes and independence of the thread count.
#include "check.h"

#include <complex.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// re + i im (CMPLX is missing from some compilers' <complex.h>; the values here are finite)
static double complex mkc(double re, double im) { return re + im * I; }
static double complex cz(const lra_real *p, int64_t i) { return mkc((double)p[2 * i], (double)p[2 * i + 1]); }
static void put(double *p, int64_t i, double complex z) { p[2 * i] = creal(z); p[2 * i + 1] = cimag(z); }

static lra_real *dup(const lra_real *p, int64_t n) {
    lra_real *q = t_guarded(n);
    memcpy(q, p, sizeof(lra_real) * (size_t)n);
    return q;
}

static int same(const lra_real *a, const lra_real *b, int64_t n) {
    return memcmp(a, b, sizeof(lra_real) * (size_t)n) == 0;
}


// ---- Vandermonde: one problem ------------------------------------------------------------

typedef struct {
    int H, N, L;
    int64_t nc, nk;                 // reals in c and w (H N c), in K and R (H L)
    lra_real *c, *w, *K, *R;        // R: the loss projection, also dK
    lra_real *c_c, *w_c, *R_c;      // copies, to check that inputs are unchanged
} vdm_case;

// uniform in [0, 1) with 53 bits: in the f64 build l Im w then rounds as it would for real parameters
static double unif53(uint64_t seed, uint64_t i) { return (double)(lra_rand_bits(seed, i) >> 11) * 0x1p-53; }

// c in [-1, 1)^2; w = wr + i wi with wr in [wr_lo, wr_hi), |wi| in [wi_lo, wi_hi) and a random sign
static void vc_init(vdm_case *v, int H, int N, int L, double wr_lo, double wr_hi, double wi_lo, double wi_hi,
                    uint64_t seed) {
    *v = (vdm_case){ .H = H, .N = N, .L = L };
    v->nc = (int64_t)H * N * 2;
    v->nk = (int64_t)H * L;
    v->c = t_guarded(v->nc); v->w = t_guarded(v->nc); v->K = t_guarded(v->nk); v->R = t_guarded(v->nk);
    t_rand_fill(v->c, v->nc, seed, -1, 1);
    t_rand_fill(v->R, v->nk, seed + 1, -1, 1);
    for (int64_t i = 0; i < v->nc / 2; i++) {
        double u0 = unif53(seed + 2, (uint64_t)i), u1 = unif53(seed + 3, (uint64_t)i);
        double wi = wi_lo + (wi_hi - wi_lo) * u1;
        v->w[2 * i] = (lra_real)(wr_lo + (wr_hi - wr_lo) * u0);
        v->w[2 * i + 1] = (lra_real)(lra_rand_bits(seed + 4, (uint64_t)i) & 1 ? -wi : wi);
    }
    v->c_c = dup(v->c, v->nc); v->w_c = dup(v->w, v->nc); v->R_c = dup(v->R, v->nk);
}

static void vc_free(vdm_case *v) {
    lra_real *p[] = { v->c, v->w, v->K, v->R, v->c_c, v->w_c, v->R_c };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) t_guarded_free(p[i]);
}

static void vc_fwd(vdm_case *v) {
    lra_backend *be = t_backend();
    be->vandermonde_fwd(be, v->K, v->c, v->w, v->H, v->N, v->L);
}

static void vc_bwd(vdm_case *v, lra_real *dc, lra_real *dw) {
    lra_backend *be = t_backend();
    be->vandermonde_bwd(be, dc, dw, v->R, v->c, v->w, v->H, v->N, v->L);
}

static void vc_inputs_unchanged(const vdm_case *v, const char *what) {
    T_CHECK(same(v->c, v->c_c, v->nc), "%s: c changed", what);
    T_CHECK(same(v->w, v->w_c, v->nc), "%s: w changed", what);
    T_CHECK(same(v->R, v->R_c, v->nk), "%s: dK changed", what);
    t_guard_ok(v->c, what); t_guard_ok(v->w, what); t_guard_ok(v->R, what);
}

static void vc_name(char *out, size_t cap, const vdm_case *v, const char *what) {
    snprintf(out, cap, "%s H=%d N=%d L=%d", what, v->H, v->N, v->L);
}

// K (H, L) in long double: the phase l Im w has 64 significant bits and cosl
// reduces it exactly.
static void ref_vdm_fwd(double *K, const vdm_case *v) {
    for (int h = 0; h < v->H; h++)
        for (int l = 0; l < v->L; l++) {
            long double s = 0;
            for (int n = 0; n < v->N; n++) {
                int64_t i = ((int64_t)h * v->N + n) * 2;
                long double mag = expl((long double)l * v->w[i]), p = (long double)l * v->w[i + 1];
                s += mag * ((long double)v->c[i] * cosl(p) - (long double)v->c[i + 1] * sinl(p));
            }
            K[(int64_t)h * v->L + l] = (double)s;
        }
}

// dc, dw (H, N)c from zero with dK = R, term by term:
// dc = sum_l dK[l] conj(e^{l w}), dw = sum_l dK[l] l conj(c e^{l w}).
static void ref_vdm_bwd(double *dc, double *dw, const vdm_case *v) {
    for (int h = 0; h < v->H; h++)
        for (int n = 0; n < v->N; n++) {
            int64_t i = (int64_t)h * v->N + n;
            double complex c = cz(v->c, i), w = cz(v->w, i), sc = 0, sw = 0;
            for (int l = 0; l < v->L; l++) {
                double complex e = cexp((double)l * w);
                double g = v->R[(int64_t)h * v->L + l];
                sc += g * conj(e);
                sw += g * l * conj(c * e);
            }
            put(dc, i, sc);
            put(dw, i, sw);
        }
}

// ---- Vandermonde: forward ----------------------------------------------------------------

static void check_vdm_fwd(int H, int N, int L, double wr_lo, double wr_hi, double wi_lo, double wi_hi, double tol,
                          uint64_t seed) {
    vdm_case v;
    vc_init(&v, H, N, L, wr_lo, wr_hi, wi_lo, wi_hi, seed);
    vc_fwd(&v);
    double *want = malloc(sizeof(double) * (size_t)(v.nk > 0 ? v.nk : 1));
    ref_vdm_fwd(want, &v);
    char what[96];
    vc_name(what, sizeof what, &v, "K");
    t_close(what, v.K, want, v.nk, tol);
    t_guard_ok(v.K, what);
    vc_inputs_unchanged(&v, what);
    free(want);
    vc_free(&v);
}

static void test_vdm_fwd(void) {
    static const int shapes[][3] = { { 1, 1, 1 }, { 1, 5, 2 }, { 3, 5, 17 }, { 2, 7, 100 }, { 4, 3, 257 },
                                     { 1, 64, 1000 }, { 3, 0, 5 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        check_vdm_fwd(shapes[i][0], shapes[i][1], shapes[i][2], -0.3, -0.01, 0, 3, T_FWD_TOL, 10 + i);
        check_vdm_fwd(shapes[i][0], shapes[i][1], shapes[i][2], -0.05, 0, 10, 100, T_FWD_TOL, 20 + i);
    }
}

// N = 0: the empty sum, K = 0 exactly.
static void test_vdm_no_modes(void) {
    lra_backend *be = t_backend();
    lra_real *K = t_guarded(12), *cw = t_guarded(2);
    be->vandermonde_fwd(be, K, cw, cw, 3, 0, 4);
    for (int i = 0; i < 12; i++) T_CHECK(K[i] == 0, "K[%d] = %g, want 0", i, (double)K[i]);
    t_guard_ok(K, "K");
    t_guarded_free(K); t_guarded_free(cw);
}

// L = 16384 with |Im w| ~ 1000: phases up to 1.6e7 rad. A float phase is off by
// ~1 rad there (checked below, so this case can tell); the kernel reduces the
// phase in double. In the f64 build the phase l Im w itself rounds at ~1e-9 rad.
static void test_vdm_long_fwd(void) {
    enum { H = 2, N = 4, L = 16384 };
#ifdef LRA_F64
    const double tol = 1e-8;
#else
    const double tol = T_FWD_TOL;
#endif
    vdm_case v;
    vc_init(&v, H, N, L, -2e-4, -1e-5, 900, 1100, 30);
    vc_fwd(&v);
    double *want = malloc(sizeof(double) * (size_t)v.nk), *naive = malloc(sizeof(double) * (size_t)v.nk);
    ref_vdm_fwd(want, &v);
    t_close("K long", v.K, want, v.nk, tol);
    t_guard_ok(v.K, "K long");
    // the same sum with the phase formed and reduced in float
    double err = 0, scale = 0;
    for (int h = 0; h < H; h++)
        for (int l = 0; l < L; l++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                int64_t i = ((int64_t)h * N + n) * 2;
                float p = (float)l * (float)v.w[i + 1];
                s += exp((double)l * v.w[i]) * (v.c[i] * cos((double)p) - v.c[i + 1] * sin((double)p));
            }
            int64_t k = (int64_t)h * L + l;
            naive[k] = s;
            err = fmax(err, fabs(s - want[k]));
            scale = fmax(scale, fabs(want[k]));
        }
    T_CHECK(err / scale > 100 * tol, "a float phase should fail this case (error %.3g)", err / scale);
    vc_inputs_unchanged(&v, "K long");
    free(want); free(naive);
    vc_free(&v);
}

// ---- Vandermonde: backward ---------------------------------------------------------------

static void check_vdm_bwd_case(int H, int N, int L, double wr_lo, double wr_hi, double wi_lo, double wi_hi,
                               double tol, uint64_t seed) {
    vdm_case v;
    vc_init(&v, H, N, L, wr_lo, wr_hi, wi_lo, wi_hi, seed);
    lra_real *dc = t_guarded(v.nc), *dw = t_guarded(v.nc);
    memset(dc, 0, sizeof(lra_real) * (size_t)v.nc);
    memset(dw, 0, sizeof(lra_real) * (size_t)v.nc);
    vc_bwd(&v, dc, dw);
    double *wc = malloc(sizeof(double) * (size_t)v.nc), *ww = malloc(sizeof(double) * (size_t)v.nc);
    ref_vdm_bwd(wc, ww, &v);
    char what[96];
    vc_name(what, sizeof what, &v, "dc");
    t_close(what, dc, wc, v.nc, tol);
    t_guard_ok(dc, what);
    vc_name(what, sizeof what, &v, "dw");
    t_close(what, dw, ww, v.nc, tol);
    t_guard_ok(dw, what);
    vc_inputs_unchanged(&v, what);
    free(wc); free(ww);
    t_guarded_free(dc); t_guarded_free(dw);
    vc_free(&v);
}

static void check_vdm_bwd_ref(int H, int N, int L, uint64_t seed) {
    check_vdm_bwd_case(H, N, L, -0.3, -0.01, 0, 3, T_FWD_TOL, seed);
}

static void test_vdm_bwd_ref(void) {
    check_vdm_bwd_ref(1, 1, 1, 40);
    check_vdm_bwd_ref(1, 5, 2, 41);
    check_vdm_bwd_ref(3, 5, 17, 42);
    check_vdm_bwd_ref(2, 7, 100, 43);
    check_vdm_bwd_ref(3, 33, 257, 44);
}

// Slow decay over L = 5001 (several thousand powers matter), with small and
// with large |Im w| (phases to 5e6 rad; in the f64 build the reference's own
// phase l Im w rounds at ~1e-9 rad, as in long_fwd).
static void test_vdm_long_bwd(void) {
#ifdef LRA_F64
    const double tol = 1e-8;
#else
    const double tol = T_FWD_TOL;
#endif
    check_vdm_bwd_case(2, 4, 5001, -2e-3, -1e-4, 0, 3, tol, 45);
    check_vdm_bwd_case(2, 4, 5001, -2e-3, -1e-4, 900, 1100, tol, 46);
}

static double vc_loss(void *p) {
    vdm_case *v = p;
    vc_fwd(v);
    return t_project(v->K, v->R, v->nk);
}

// Central differences of loss = sum K R for c and w, real and imaginary
// coordinates alike (the arrays are interleaved).
static void check_vdm_grad(int H, int N, int L, uint64_t seed) {
    vdm_case v;
    vc_init(&v, H, N, L, -0.3, -0.01, 0, 2, seed);
    lra_real *dc = t_guarded(v.nc), *dw = t_guarded(v.nc);
    memset(dc, 0, sizeof(lra_real) * (size_t)v.nc);
    memset(dw, 0, sizeof(lra_real) * (size_t)v.nc);
    vc_fwd(&v);
    vc_bwd(&v, dc, dw);
    char what[96];
    vc_name(what, sizeof what, &v, "dc");
    t_gradcheck(what, vc_loss, &v, v.c, v.nc, dc, T_GRAD_TOL);
    vc_name(what, sizeof what, &v, "dw");
    t_gradcheck(what, vc_loss, &v, v.w, v.nc, dw, T_GRAD_TOL);
    t_guard_ok(dc, "dc"); t_guard_ok(dw, "dw");
    t_guarded_free(dc); t_guarded_free(dw);
    vc_free(&v);
}

static void test_vdm_grad(void) {
    check_vdm_grad(1, 1, 1, 50);
    check_vdm_grad(1, 1, 2, 51);
    check_vdm_grad(2, 3, 7, 52);
    check_vdm_grad(3, 5, 13, 53);
}

// Backward adds to what the buffers hold (g0 + grad), and twice gives 2 grad;
// each gradient alone (the other NULL) is bit-identical to both together.
static void test_vdm_accumulate(void) {
    vdm_case v;
    vc_init(&v, 3, 5, 37, -0.3, -0.01, 0, 3, 60);
    lra_real *g[2], *d[2], *one[2], *want[2];
    for (int i = 0; i < 2; i++) {
        g[i] = t_guarded(v.nc); d[i] = t_guarded(v.nc); one[i] = t_guarded(v.nc);
        want[i] = malloc(sizeof(lra_real) * (size_t)v.nc);
        memset(g[i], 0, sizeof(lra_real) * (size_t)v.nc);
        memset(one[i], 0, sizeof(lra_real) * (size_t)v.nc);
        t_rand_fill(d[i], v.nc, 61 + (uint64_t)i, -2, 2);
    }
    vc_bwd(&v, g[0], g[1]);
    for (int i = 0; i < 2; i++)
        for (int64_t k = 0; k < v.nc; k++) want[i][k] = d[i][k] + g[i][k];
    vc_bwd(&v, d[0], d[1]);
    t_close_r("dc += grad", d[0], want[0], v.nc, T_FWD_TOL);
    t_close_r("dw += grad", d[1], want[1], v.nc, T_FWD_TOL);
    vc_bwd(&v, NULL, NULL);
    vc_bwd(&v, one[0], NULL);
    vc_bwd(&v, NULL, one[1]);
    t_close_r("dc alone", one[0], g[0], v.nc, 0);
    t_close_r("dw alone", one[1], g[1], v.nc, 0);
    for (int i = 0; i < 2; i++)
        for (int64_t k = 0; k < v.nc; k++) want[i][k] = 2 * g[i][k];
    vc_bwd(&v, g[0], g[1]);
    t_close_r("dc twice = 2 grad", g[0], want[0], v.nc, T_FWD_TOL);
    t_close_r("dw twice = 2 grad", g[1], want[1], v.nc, T_FWD_TOL);
    for (int i = 0; i < 2; i++) {
        t_guard_ok(g[i], "g"); t_guard_ok(d[i], "d"); t_guard_ok(one[i], "one");
        t_guarded_free(g[i]); t_guarded_free(d[i]); t_guarded_free(one[i]); free(want[i]);
    }
    vc_inputs_unchanged(&v, "accumulate");
    vc_free(&v);
}

// Empty shapes write nothing (the guarded buffers stay NaN and intact).
static void test_vdm_empty(void) {
    lra_backend *be = t_backend();
    lra_real *K = t_guarded(8), *c = t_guarded(8), *dc = t_guarded(8), *dw = t_guarded(8);
    be->vandermonde_fwd(be, K, c, c, 0, 2, 2);
    be->vandermonde_fwd(be, K, c, c, 2, 2, 0);
    be->vandermonde_bwd(be, dc, dw, K, c, c, 0, 2, 2);
    be->vandermonde_bwd(be, dc, dw, K, c, c, 2, 0, 2);
    T_CHECK(isnan((double)K[0]) && isnan((double)dc[0]) && isnan((double)dw[7]), "nothing written");
    // L = 0: K is empty, and the sums over l are empty: dc, dw += 0
    memset(dc, 0, sizeof(lra_real) * 8);
    be->vandermonde_bwd(be, dc, NULL, K, c, c, 2, 2, 0);
    T_CHECK(dc[0] == 0 && dc[7] == 0, "L = 0 adds zero");
    lra_real *v[] = { K, c, dc, dw };
    for (int i = 0; i < 4; i++) {
        t_guard_ok(v[i], "empty");
        t_guarded_free(v[i]);
    }
}

// Two calls, and 1, 2 and 3 threads, give the same bits.
static void check_vdm_deterministic(int L, uint64_t seed) {
    vdm_case v;
    vc_init(&v, 5, 17, L, -0.3, -0.01, 0, 50, seed);
    lra_real *K0 = t_guarded(v.nk), *dc0 = t_guarded(v.nc), *dw0 = t_guarded(v.nc);
    lra_real *dc = t_guarded(v.nc), *dw = t_guarded(v.nc);
    vc_fwd(&v);
    memcpy(K0, v.K, sizeof(lra_real) * (size_t)v.nk);
    memset(dc0, 0, sizeof(lra_real) * (size_t)v.nc);
    memset(dw0, 0, sizeof(lra_real) * (size_t)v.nc);
    vc_bwd(&v, dc0, dw0);
    int saved = t_threads_get();
    for (int th = 0; th <= 3; th++) {  // 0: the default count again (a second call)
        if (th > 0) t_threads_set(th);
        vc_fwd(&v);
        memset(dc, 0, sizeof(lra_real) * (size_t)v.nc);
        memset(dw, 0, sizeof(lra_real) * (size_t)v.nc);
        vc_bwd(&v, dc, dw);
        T_CHECK(same(K0, v.K, v.nk), "K differs with %d threads", th);
        T_CHECK(same(dc0, dc, v.nc) && same(dw0, dw, v.nc), "dc, dw differ with %d threads", th);
    }
    t_threads_set(saved);
    lra_real *p[] = { K0, dc0, dw0, dc, dw };
    for (int i = 0; i < 5; i++) {
        t_guard_ok(p[i], "deterministic");
        t_guarded_free(p[i]);
    }
    vc_inputs_unchanged(&v, "deterministic");
    vc_free(&v);
}

// L = 2100: the threads' shares of (h, block) also start inside later superblocks
static void test_vdm_deterministic(void) {
    check_vdm_deterministic(300, 70);
    check_vdm_deterministic(2100, 71);
}

// ---- elementwise complex exp and product -----------------------------------------------------

typedef struct {
    int64_t n, nr;            // complex count, reals (2n)
    lra_real *a, *b, *out, *R;
    int op;                   // 0: out = exp(a), 1: out = a b
} ew_case;

static void ew_init(ew_case *e, int op, int64_t n, uint64_t seed) {
    *e = (ew_case){ .n = n, .nr = 2 * n, .op = op };
    e->a = t_guarded(e->nr); e->b = t_guarded(e->nr); e->out = t_guarded(e->nr); e->R = t_guarded(e->nr);
    t_rand_fill(e->a, e->nr, seed, -1.5, 1.5);
    t_rand_fill(e->b, e->nr, seed + 1, -1.5, 1.5);
    t_rand_fill(e->R, e->nr, seed + 2, -1, 1);
}

static void ew_free(ew_case *e) {
    t_guarded_free(e->a); t_guarded_free(e->b); t_guarded_free(e->out); t_guarded_free(e->R);
}

static void ew_fwd(ew_case *e) {
    lra_backend *be = t_backend();
    if (e->op == 0)
        be->cexp(be, e->out, e->a, e->n);
    else
        be->cmul(be, e->out, e->a, e->b, e->n);
}

// dout = R
static void ew_bwd(ew_case *e, lra_real *da, lra_real *db) {
    lra_backend *be = t_backend();
    if (e->op == 0)
        be->cexp_bwd(be, da, e->R, e->a, e->n);
    else
        be->cmul_bwd(be, da, db, e->R, e->a, e->b, e->n);
}

static void ref_ew(double *out, const lra_real *a, const lra_real *b, int64_t n, int op) {
    for (int64_t i = 0; i < n; i++) put(out, i, op == 0 ? cexp(cz(a, i)) : cz(a, i) * cz(b, i));
}

static const int64_t ew_sizes[] = { 1, 7, 1000, 40001 };  // 40001: the threaded path

static void check_ew_fwd(int op) {
    const char *name = op == 0 ? "cexp" : "cmul";
    for (size_t s = 0; s < sizeof ew_sizes / sizeof ew_sizes[0]; s++) {
        ew_case e;
        ew_init(&e, op, ew_sizes[s], 80 + s);
        lra_real *a0 = dup(e.a, e.nr), *b0 = dup(e.b, e.nr);
        double *want = malloc(sizeof(double) * (size_t)e.nr);
        ref_ew(want, e.a, e.b, e.n, op);
        char what[64];
        ew_fwd(&e);
        snprintf(what, sizeof what, "%s n=%lld", name, (long long)e.n);
        t_close(what, e.out, want, e.nr, T_FWD_TOL);
        t_guard_ok(e.out, what);
        T_CHECK(same(e.a, a0, e.nr) && same(e.b, b0, e.nr), "%s: inputs changed", what);
        // out aliasing an input: the same values
        lra_backend *be = t_backend();
        lra_real *io = dup(e.a, e.nr);
        if (op == 0)
            be->cexp(be, io, io, e.n);
        else
            be->cmul(be, io, io, e.b, e.n);
        snprintf(what, sizeof what, "%s n=%lld out = a", name, (long long)e.n);
        t_close_r(what, io, e.out, e.nr, 0);
        t_guard_ok(io, what);
        if (op == 1) {
            memcpy(io, e.b, sizeof(lra_real) * (size_t)e.nr);
            be->cmul(be, io, e.a, io, e.n);
            snprintf(what, sizeof what, "cmul n=%lld out = b", (long long)e.n);
            t_close_r(what, io, e.out, e.nr, 0);
            memcpy(io, e.a, sizeof(lra_real) * (size_t)e.nr);
            be->cmul(be, io, io, io, e.n);  // squares
            ref_ew(want, e.a, e.a, e.n, 1);
            snprintf(what, sizeof what, "cmul n=%lld out = a = b", (long long)e.n);
            t_close(what, io, want, e.nr, T_FWD_TOL);
            t_guard_ok(io, what);
        }
        t_guarded_free(io); t_guarded_free(a0); t_guarded_free(b0);
        free(want);
        ew_free(&e);
    }
}

static void test_cexp_fwd(void) { check_ew_fwd(0); }
static void test_cmul_fwd(void) { check_ew_fwd(1); }

static double ew_loss(void *p) {
    ew_case *e = p;
    ew_fwd(e);
    return t_project(e->out, e->R, e->nr);
}

// The gradients against their formulas and (small n) finite differences for
// every input, accumulation (g0 + grad, then 2 grad),
// and NULL gradients (each alone bit-identical to both together).
static void check_ew_grad(int op, int64_t n) {
    const char *name = op == 0 ? "cexp" : "cmul";
    int ng = op == 0 ? 1 : 2;
    ew_case e;
    ew_init(&e, op, n, 90 + (uint64_t)n);
    lra_real *a0 = dup(e.a, e.nr), *b0 = dup(e.b, e.nr), *R0 = dup(e.R, e.nr);
    lra_real *g[2], *d[2], *one[2], *want[2];
    for (int i = 0; i < 2; i++) {
        g[i] = t_guarded(e.nr); d[i] = t_guarded(e.nr); one[i] = t_guarded(e.nr);
        want[i] = malloc(sizeof(lra_real) * (size_t)e.nr);
        memset(g[i], 0, sizeof(lra_real) * (size_t)e.nr);
        memset(one[i], 0, sizeof(lra_real) * (size_t)e.nr);
        t_rand_fill(d[i], e.nr, 95 + (uint64_t)i, -2, 2);
    }
    ew_fwd(&e);
    ew_bwd(&e, g[0], op == 0 ? NULL : g[1]);
    char what[64];
    double *ref = malloc(sizeof(double) * (size_t)e.nr);
    for (int i = 0; i < ng; i++) {  // the formulas, in double: conj(exp a) R, conj(b) R, conj(a) R
        for (int64_t k = 0; k < n; k++)
            put(ref, k, conj(op == 0 ? cexp(cz(e.a, k)) : i == 0 ? cz(e.b, k) : cz(e.a, k)) * cz(e.R, k));
        snprintf(what, sizeof what, "%s n=%lld d%c formula", name, (long long)n, "ab"[i]);
        t_close(what, g[i], ref, e.nr, T_FWD_TOL);
    }
    free(ref);
    if (n <= 1000) {  // larger sums of the projected loss round more than the central difference resolves
        snprintf(what, sizeof what, "%s n=%lld da", name, (long long)n);
        t_gradcheck(what, ew_loss, &e, e.a, e.nr, g[0], T_GRAD_TOL);
        if (op == 1) {
            snprintf(what, sizeof what, "%s n=%lld db", name, (long long)n);
            t_gradcheck(what, ew_loss, &e, e.b, e.nr, g[1], T_GRAD_TOL);
        }
    }
    for (int i = 0; i < ng; i++)
        for (int64_t k = 0; k < e.nr; k++) want[i][k] = d[i][k] + g[i][k];
    ew_bwd(&e, d[0], op == 0 ? NULL : d[1]);
    for (int i = 0; i < ng; i++) {
        snprintf(what, sizeof what, "%s n=%lld d%c += grad", name, (long long)n, "ab"[i]);
        t_close_r(what, d[i], want[i], e.nr, T_FWD_TOL);
    }
    ew_bwd(&e, NULL, NULL);
    ew_bwd(&e, one[0], NULL);
    if (op == 1) ew_bwd(&e, NULL, one[1]);
    for (int i = 0; i < ng; i++) {
        snprintf(what, sizeof what, "%s n=%lld d%c alone", name, (long long)n, "ab"[i]);
        t_close_r(what, one[i], g[i], e.nr, 0);
        for (int64_t k = 0; k < e.nr; k++) want[i][k] = 2 * g[i][k];
    }
    ew_bwd(&e, g[0], op == 0 ? NULL : g[1]);
    for (int i = 0; i < ng; i++) {
        snprintf(what, sizeof what, "%s n=%lld d%c twice = 2 grad", name, (long long)n, "ab"[i]);
        t_close_r(what, g[i], want[i], e.nr, T_FWD_TOL);
    }
    T_CHECK(same(e.a, a0, e.nr) && same(e.b, b0, e.nr) && same(e.R, R0, e.nr), "%s: inputs changed", name);
    for (int i = 0; i < 2; i++) {
        t_guard_ok(g[i], "g"); t_guard_ok(d[i], "d"); t_guard_ok(one[i], "one");
        t_guarded_free(g[i]); t_guarded_free(d[i]); t_guarded_free(one[i]); free(want[i]);
    }
    t_guard_ok(e.a, name); t_guard_ok(e.b, name); t_guard_ok(e.R, name); t_guard_ok(e.out, name);
    t_guarded_free(a0); t_guarded_free(b0); t_guarded_free(R0);
    ew_free(&e);
}

static void test_cexp_grad(void) {
    check_ew_grad(0, 1);
    check_ew_grad(0, 13);
    check_ew_grad(0, 1000);
    check_ew_grad(0, 40001);
}

static void test_cmul_grad(void) {
    check_ew_grad(1, 1);
    check_ew_grad(1, 13);
    check_ew_grad(1, 1000);
    check_ew_grad(1, 40001);
}

// n = 0 writes nothing.
static void test_ew_empty(void) {
    lra_backend *be = t_backend();
    lra_real *o = t_guarded(4), *a = t_guarded(4), *da = t_guarded(4), *db = t_guarded(4);
    be->cexp(be, o, a, 0);
    be->cexp_bwd(be, da, a, a, 0);
    be->cmul(be, o, a, a, 0);
    be->cmul_bwd(be, da, db, a, a, a, 0);
    T_CHECK(isnan((double)o[0]) && isnan((double)da[0]) && isnan((double)db[3]), "nothing written");
    lra_real *v[] = { o, a, da, db };
    for (int i = 0; i < 4; i++) {
        t_guard_ok(v[i], "empty");
        t_guarded_free(v[i]);
    }
}

static const t_case cases[] = {
    { "vandermonde/fwd", test_vdm_fwd },
    { "vandermonde/no_modes", test_vdm_no_modes },
    { "vandermonde/long_fwd", test_vdm_long_fwd },
    { "vandermonde/bwd_ref", test_vdm_bwd_ref },
    { "vandermonde/long_bwd", test_vdm_long_bwd },
    { "vandermonde/grad", test_vdm_grad },
    { "vandermonde/accumulate", test_vdm_accumulate },
    { "vandermonde/empty", test_vdm_empty },
    { "vandermonde/deterministic", test_vdm_deterministic },
    { "cexp/fwd", test_cexp_fwd },
    { "cexp/grad", test_cexp_grad },
    { "cmul/fwd", test_cmul_fwd },
    { "cmul/grad", test_cmul_grad },
    { "complex/empty", test_ew_empty },
};
T_MAIN(cases)
