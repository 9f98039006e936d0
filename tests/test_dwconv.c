// test_dwconv.c: the depthwise causal short convolution (dwconv_fwd/bwd):
// forward against a naive double sum over taps, finite-difference gradients
// of input, weight and bias, accumulation, NULL gradients and bias, filters
// longer than the sequence, and thread-count invariance of the reductions.
#include "check.h"

#include <math.h>
#include <string.h>

typedef struct { int B, L, C, K, bias; } dw_shape;
static const dw_shape shapes[] = { { 2, 11, 5, 3, 1 }, { 1, 1, 3, 3, 1 }, { 3, 7, 4, 1, 0 },
                                   { 1, 2, 6, 4, 1 }, { 2, 600, 9, 3, 1 } };
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

// naive: y[b][t][c] = bias[c] + sum_j w[c][j] x[b][t-(K-1)+j][c]
static void dw_ref(double *y, const lra_real *x, const lra_real *w, const lra_real *bias, dw_shape s) {
    for (int b = 0; b < s.B; b++)
        for (int t = 0; t < s.L; t++)
            for (int c = 0; c < s.C; c++) {
                double acc = bias ? bias[c] : 0;
                for (int j = 0; j < s.K; j++) {
                    int src = t - (s.K - 1) + j;
                    if (src >= 0) acc += (double)w[c * s.K + j] * x[((int64_t)b * s.L + src) * s.C + c];
                }
                y[((int64_t)b * s.L + t) * s.C + c] = acc;
            }
}

static void test_forward(void) {
    lra_backend *be = t_backend();
    for (int i = 0; i < N_SHAPES; i++) {
        dw_shape s = shapes[i];
        int64_t n = (int64_t)s.B * s.L * s.C;
        lra_real *x = t_guarded(n), *y = t_guarded(n), *w = t_guarded(s.C * s.K), *bias = t_guarded(s.C);
        lra_real *x0 = t_guarded(n);
        double *want = calloc((size_t)n, sizeof(double));
        t_rand_fill(x, n, 10 + i, -2, 2);
        t_rand_fill(w, s.C * s.K, 20 + i, -1, 1);
        t_rand_fill(bias, s.C, 30 + i, -1, 1);
        memcpy(x0, x, sizeof(lra_real) * (size_t)n);
        be->dwconv_fwd(be, y, x, w, s.bias ? bias : NULL, s.B, s.L, s.C, s.K);
        dw_ref(want, x, w, s.bias ? bias : NULL, s);
        char what[96];
        snprintf(what, sizeof what, "dwconv_fwd B=%d L=%d C=%d K=%d", s.B, s.L, s.C, s.K);
        t_close(what, y, want, n, T_FWD_TOL);
        T_CHECK(!memcmp(x, x0, sizeof(lra_real) * (size_t)n), "input unchanged");
        t_guard_ok(y, "y");
        free(want);
        lra_real *all[] = { x, y, w, bias, x0 };
        for (int k = 0; k < 5; k++) t_guarded_free(all[k]);
    }
}

typedef struct { dw_shape s; lra_real *x, *w, *bias, *y, *P; } dw_ctx;

static double dw_loss(void *p) {
    dw_ctx *c = p;
    t_backend()->dwconv_fwd(t_backend(), c->y, c->x, c->w, c->s.bias ? c->bias : NULL, c->s.B, c->s.L, c->s.C, c->s.K);
    return t_project(c->y, c->P, (int64_t)c->s.B * c->s.L * c->s.C);
}

static void test_backward(void) {
    lra_backend *be = t_backend();
    for (int i = 0; i < N_SHAPES - 1; i++) {
        dw_ctx c = { .s = shapes[i] };
        dw_shape s = c.s;
        int64_t n = (int64_t)s.B * s.L * s.C, nw = (int64_t)s.C * s.K;
        c.x = t_guarded(n); c.y = t_guarded(n); c.P = t_guarded(n);
        c.w = t_guarded(nw); c.bias = t_guarded(s.C);
        lra_real *dx = t_guarded(n), *dw = t_guarded(nw), *db = t_guarded(s.C);
        lra_real *dx2 = t_guarded(n), *dw2 = t_guarded(nw), *db2 = t_guarded(s.C);
        t_rand_fill(c.x, n, 40 + i, -2, 2);
        t_rand_fill(c.w, nw, 50 + i, -1, 1);
        t_rand_fill(c.bias, s.C, 60 + i, -1, 1);
        t_rand_fill(c.P, n, 70 + i, -1, 1);
        memset(dx, 0, sizeof(lra_real) * (size_t)n);
        memset(dw, 0, sizeof(lra_real) * (size_t)nw);
        memset(db, 0, sizeof(lra_real) * (size_t)s.C);
        be->dwconv_bwd(be, dx, dw, s.bias ? db : NULL, c.P, c.x, c.w, s.B, s.L, s.C, s.K);
        char what[96];
        snprintf(what, sizeof what, "dx B=%d L=%d C=%d K=%d", s.B, s.L, s.C, s.K);
        t_gradcheck(what, dw_loss, &c, c.x, n, dx, T_GRAD_TOL);
        snprintf(what, sizeof what, "dw B=%d L=%d C=%d K=%d", s.B, s.L, s.C, s.K);
        t_gradcheck(what, dw_loss, &c, c.w, nw, dw, T_GRAD_TOL);
        if (s.bias) {
            snprintf(what, sizeof what, "dbias B=%d L=%d C=%d K=%d", s.B, s.L, s.C, s.K);
            t_gradcheck(what, dw_loss, &c, c.bias, s.C, db, T_GRAD_TOL);
        }
        // accumulation (+=) and NULL gradients one at a time
        memcpy(dx2, dx, sizeof(lra_real) * (size_t)n);
        memcpy(dw2, dw, sizeof(lra_real) * (size_t)nw);
        memcpy(db2, db, sizeof(lra_real) * (size_t)s.C);
        be->dwconv_bwd(be, dx2, NULL, NULL, c.P, c.x, c.w, s.B, s.L, s.C, s.K);
        be->dwconv_bwd(be, NULL, dw2, NULL, c.P, c.x, c.w, s.B, s.L, s.C, s.K);
        if (s.bias) be->dwconv_bwd(be, NULL, NULL, db2, c.P, c.x, c.w, s.B, s.L, s.C, s.K);
        int ok = 1;
        for (int64_t k = 0; k < n; k++) ok &= fabs((double)dx2[k] - 2.0 * dx[k]) <= 1e-5 * (1 + fabs((double)dx[k]));
        for (int64_t k = 0; k < nw; k++) ok &= fabs((double)dw2[k] - 2.0 * dw[k]) <= 1e-5 * (1 + fabs((double)dw[k]));
        for (int k = 0; k < s.C; k++) ok &= fabs((double)db2[k] - 2.0 * db[k]) <= 1e-5 * (1 + fabs((double)db[k]));
        T_CHECK(ok, "backward accumulates, gradient by gradient (shape %d)", i);
        t_guard_ok(dx2, "dx"); t_guard_ok(dw2, "dw"); t_guard_ok(db2, "dbias");
        lra_real *all[] = { c.x, c.y, c.P, c.w, c.bias, dx, dw, db, dx2, dw2, db2 };
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) t_guarded_free(all[k]);
    }
}

// the weight and bias gradients are bit-identical for 1 and 2 threads
static void test_threads(void) {
    lra_backend *be = t_backend();
    dw_shape s = shapes[N_SHAPES - 1];
    int64_t n = (int64_t)s.B * s.L * s.C, nw = (int64_t)s.C * s.K;
    lra_real *x = t_guarded(n), *g = t_guarded(n), *w = t_guarded(nw);
    lra_real *dw[2] = { t_guarded(nw), t_guarded(nw) }, *db[2] = { t_guarded(s.C), t_guarded(s.C) };
    t_rand_fill(x, n, 80, -1, 1);
    t_rand_fill(g, n, 81, -1, 1);
    t_rand_fill(w, nw, 82, -1, 1);
    int saved = t_threads_get();
    for (int k = 0; k < 2; k++) {
        t_threads_set(k + 1);
        memset(dw[k], 0, sizeof(lra_real) * (size_t)nw);
        memset(db[k], 0, sizeof(lra_real) * (size_t)s.C);
        be->dwconv_bwd(be, NULL, dw[k], db[k], g, x, w, s.B, s.L, s.C, s.K);
    }
    t_threads_set(saved);
    T_CHECK(!memcmp(dw[0], dw[1], sizeof(lra_real) * (size_t)nw) && !memcmp(db[0], db[1], sizeof(lra_real) * (size_t)s.C),
            "dw, dbias independent of the thread count");
    lra_real *all[] = { x, g, w, dw[0], dw[1], db[0], db[1] };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) t_guarded_free(all[k]);
}

static const t_case cases[] = {
    { "dwconv/forward", test_forward },
    { "dwconv/backward", test_backward },
    { "dwconv/threads", test_threads },
};
T_MAIN(cases)
