// check.c: see check.h.
#include "check.h"

#include <math.h>
#include <stdlib.h>

#define T_GUARD 16  // guard values on each side

static lra_backend *t_be;

static void t_backend_release(void) { lra_backend_free(t_be); }

lra_backend *t_backend(void) {
    if (t_be) return t_be;
    const char *env = getenv("LRA_TEST_THREADS");
    lra_err err = {0};
    t_be = lra_backend_init("cpu", env ? atoi(env) : 0, &err);
    if (!t_be) {
        fprintf(stderr, "cannot create the cpu backend: %s\n", err.msg);
        exit(2);
    }
    atexit(t_backend_release);
    return t_be;
}

void t_rand_fill_d(double *x, int64_t n, uint64_t seed, double lo, double hi) {
    for (int64_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (double)(lra_rand_bits(seed, (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0);
}

void t_rand_fill(lra_real *x, int64_t n, uint64_t seed, double lo, double hi) {
    for (int64_t i = 0; i < n; i++)
        x[i] = (lra_real)(lo + (hi - lo) * (double)(lra_rand_bits(seed, (uint64_t)i) >> 11) *
                                   (1.0 / 9007199254740992.0));
}

// layout: [int64 n][pad to T_GUARD reals][guard][data n][guard]
static const unsigned char t_guard_byte = 0xA5;

lra_real *t_guarded(int64_t n) {
    size_t head = sizeof(lra_real) * T_GUARD * 2;  // n stored in the first 8 bytes
    unsigned char *raw = malloc(head + sizeof(lra_real) * ((size_t)n + T_GUARD));
    if (!raw) { fprintf(stderr, "t_guarded: out of memory\n"); exit(2); }
    memcpy(raw, &n, sizeof n);
    lra_real *p = (lra_real *)(raw + head);
    memset(p - T_GUARD, t_guard_byte, sizeof(lra_real) * T_GUARD);
    memset(p + n, t_guard_byte, sizeof(lra_real) * T_GUARD);
    for (int64_t i = 0; i < n; i++) p[i] = (lra_real)NAN;
    return p;
}

static unsigned char *t_guard_base(const lra_real *p) {
    return (unsigned char *)(p) - sizeof(lra_real) * T_GUARD * 2;
}

void t_guarded_free(lra_real *p) {
    if (p) free(t_guard_base(p));
}

int t_guard_ok_at(const char *file, int line, const lra_real *p, const char *what) {
    int64_t n;
    memcpy(&n, t_guard_base(p), sizeof n);
    const unsigned char *lo = (const unsigned char *)(p - T_GUARD), *hi = (const unsigned char *)(p + n);
    for (size_t i = 0; i < sizeof(lra_real) * T_GUARD; i++) {
        if (lo[i] != t_guard_byte || hi[i] != t_guard_byte) {
            t_fail_at(file, line, "%s: out-of-bounds write %s the buffer (%lld values)", what,
                      lo[i] != t_guard_byte ? "before" : "after", (long long)n);
            return 0;
        }
    }
    return 1;
}

static int t_close_impl(const char *file, int line, const char *what, const lra_real *got,
                        const lra_real *ref_r, const double *ref_d, int64_t n, double tol) {
    double scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = ref_d ? ref_d[i] : (double)ref_r[i];
        if (fabs(r) > scale) scale = fabs(r);
    }
    double worst = -1;
    int64_t iw = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = ref_d ? ref_d[i] : (double)ref_r[i];
        double e = fabs((double)got[i] - r) / (scale + 1e-30);
        if (!(e <= worst) || isnan(e)) { worst = isnan(e) ? INFINITY : e; iw = i; }
        if (isinf(worst)) break;
    }
    if (n > 0 && !(worst <= tol)) {
        double r = ref_d ? ref_d[iw] : (double)ref_r[iw];
        t_fail_at(file, line, "%s: error %.3g > %.3g at [%lld]: got %.9g, want %.9g (scale %.3g)", what,
                  worst, tol, (long long)iw, (double)got[iw], r, scale);
        return 0;
    }
    return 1;
}

int t_close_at(const char *file, int line, const char *what, const lra_real *got, const double *ref,
               int64_t n, double tol) {
    return t_close_impl(file, line, what, got, NULL, ref, n, tol);
}

int t_close_r_at(const char *file, int line, const char *what, const lra_real *got, const lra_real *ref,
                 int64_t n, double tol) {
    return t_close_impl(file, line, what, got, ref, NULL, n, tol);
}

double t_project(const lra_real *y, const lra_real *R, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)y[i] * (double)R[i];
    return s;
}

int t_gradcheck_at(const char *file, int line, const char *what, t_loss_fn loss, void *ctx, lra_real *x,
                   int64_t n, const lra_real *analytic, double tol) {
    return t_gradcheck_step_at(file, line, what, loss, ctx, x, n, analytic, tol, T_FD_STEP);
}

int t_gradcheck_step_at(const char *file, int line, const char *what, t_loss_fn loss, void *ctx, lra_real *x,
                        int64_t n, const lra_real *analytic, double tol, double step) {
    return t_gradcheck_noise_at(file, line, what, loss, ctx, x, n, analytic, tol, step, 0);
}

int t_gradcheck_noise_at(const char *file, int line, const char *what, t_loss_fn loss, void *ctx, lra_real *x,
                         int64_t n, const lra_real *analytic, double tol, double step, double noise) {
    if (n <= 0) return 1;
    double amax = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs((double)analytic[i]) > amax) amax = fabs((double)analytic[i]);
    int64_t idx[66];
    int m = 0;
    idx[m++] = 0;
    if (n > 1) idx[m++] = n - 1;
    for (int r = 0; r < 64 && r < n - 2; r++)
        idx[m++] = 1 + (int64_t)(lra_rand_bits(0xFD, (uint64_t)r) % (uint64_t)(n - 2));
    double worst = 0, wa = 0, wn = 0;
    int64_t wi = -1;
    for (int j = 0; j < m; j++) {
        int64_t i = idx[j];
        lra_real x0 = x[i];
        double h = step * fmax(1.0, fabs((double)x0));
        x[i] = (lra_real)(x0 + h);
        double hp = (double)x[i] - (double)x0;  // the step actually taken
        double lp = loss(ctx);
        x[i] = (lra_real)(x0 - h);
        double hm = (double)x0 - (double)x[i];
        double lm = loss(ctx);
        x[i] = x0;
        double fd = (lp - lm) / (hp + hm);
        double a = (double)analytic[i];
        double err = fabs(a - fd) / fmax(fmax(fabs(a) + fabs(fd), noise / tol), fmax(1e-3 * amax, 1e-12));
        if (!(err <= worst)) { worst = isnan(err) ? INFINITY : err; wi = i; wa = a; wn = fd; }
    }
    loss(ctx);  // leave the forward outputs as they were
    if (!(worst <= tol)) {
        t_fail_at(file, line, "%s: gradient error %.3g > %.3g at [%lld]: analytic %.9g, numeric %.9g", what,
                  worst, tol, (long long)wi, wa, wn);
        return 0;
    }
    return 1;
}

#ifdef _OPENMP
#include <omp.h>
int t_threads_get(void) { return omp_get_max_threads(); }
void t_threads_set(int n) { omp_set_num_threads(n); }
#else
int t_threads_get(void) { return 1; }
void t_threads_set(int n) { (void)n; }
#endif
