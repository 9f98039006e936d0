// test_norm.c: LayerNorm, BatchNorm (training and eval, both running-variance
// conventions) and ScaleNorm: forward against double references, gradients
// against finite differences, accumulation, NULL gradients, guards and
// unchanged inputs.
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

// want (n) = before + grad, in double
static void plus(double *want, const lra_real *before, const lra_real *grad, int64_t n) {
    for (int64_t i = 0; i < n; i++) want[i] = (double)before[i] + (double)grad[i];
}

enum { NORM_LAYER, NORM_BATCH, NORM_SCALE };

// everything one forward pass needs; loss = t_project(y, P)
typedef struct {
    int kind;
    int64_t R;
    int C;
    int training, unbiased;
    lra_real eps, momentum;
    lra_real *x, *w, *b, *g;       // inputs and parameters (w, b may be NULL)
    lra_real *y, *mean, *rstd;     // outputs
    lra_real *rm, *rv;             // running statistics (batchnorm)
    lra_real *P;                   // (R, C) projection
} norm_ctx;

static void norm_fwd(norm_ctx *c) {
    lra_backend *be = t_backend();
    switch (c->kind) {
    case NORM_LAYER:
        be->layernorm_fwd(be, c->y, c->mean, c->rstd, c->x, c->w, c->b, c->R, c->C, c->eps);
        break;
    case NORM_BATCH:
        be->batchnorm_fwd(be, c->y, c->mean, c->rstd, c->rm, c->rv, c->x, c->w, c->b, c->R, c->C, c->eps,
                          c->momentum, c->unbiased, c->training);
        break;
    default:
        be->scalenorm_fwd(be, c->y, c->rstd, c->x, c->g, c->R, c->C, c->eps);
        break;
    }
}

static double norm_loss(void *p) {
    norm_ctx *c = p;
    norm_fwd(c);
    return t_project(c->y, c->P, c->R * c->C);
}

// ---- LayerNorm ---------------------------------------------------------------

// PyTorch nn.LayerNorm in double: biased variance over the last dim.
static void layernorm_ref(double *y, double *mean, double *rstd, const lra_real *x, const lra_real *w,
                          const lra_real *b, int64_t R, int C, double eps) {
    for (int64_t r = 0; r < R; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[r * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
        v /= C;
        double s = 1 / sqrt(v + eps);
        for (int c = 0; c < C; c++)
            y[r * C + c] = (x[r * C + c] - m) * s * (w ? w[c] : 1.0) + (b ? b[c] : 0.0);
        mean[r] = m;
        rstd[r] = s;
    }
}

static void check_layernorm(int64_t R, int C, int affine, double offset, int grads) {
    lra_backend *be = t_backend();
    int64_t n = R * C;
    norm_ctx c = { .kind = NORM_LAYER, .R = R, .C = C, .eps = (lra_real)1e-5 };
    c.x = t_guarded(n); c.y = t_guarded(n); c.P = t_guarded(n);
    c.mean = t_guarded(R); c.rstd = t_guarded(R);
    lra_real *w = t_guarded(C), *b = t_guarded(C);
    t_rand_fill(c.x, n, 1100 + (uint64_t)R, offset - 2, offset + 2);  // not P's seed: P must not be affine in x
    t_rand_fill(c.P, n, 12, -1, 1);
    t_rand_fill(w, C, 13, 0.5, 1.5);
    t_rand_fill(b, C, 14, -1, 1);
    if (affine) { c.w = w; c.b = b; }

    norm_fwd(&c);
    double *y = dalloc(n), *m = dalloc(R), *s = dalloc(R);
    layernorm_ref(y, m, s, c.x, c.w, c.b, R, C, c.eps);
    t_close("layernorm out", c.y, y, n, T_FWD_TOL);
    t_close("layernorm mean", c.mean, m, R, T_FWD_TOL);
    t_close("layernorm rstd", c.rstd, s, R, T_FWD_TOL);
    t_guard_ok(c.y, "out"); t_guard_ok(c.mean, "mean"); t_guard_ok(c.rstd, "rstd");

    if (grads) {
        lra_real *x0 = copy_of(c.x, n), *w0 = copy_of(w, C), *b0 = copy_of(b, C), *P0 = copy_of(c.P, n);
        lra_real *m0 = copy_of(c.mean, R), *s0 = copy_of(c.rstd, R);
        lra_real *dx = t_guarded(n), *dw = t_guarded(C), *db = t_guarded(C);
        be->fill(be, dx, 0, n); be->fill(be, dw, 0, C); be->fill(be, db, 0, C);
        be->layernorm_bwd(be, dx, affine ? dw : NULL, affine ? db : NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C);
        T_CHECK(same(x0, c.x, n) && same(w0, w, C) && same(b0, b, C) && same(P0, c.P, n) &&
                same(m0, c.mean, R) && same(s0, c.rstd, R), "inputs unchanged by layernorm_bwd");
        if (!affine) {
            for (int k = 0; k < C; k++) T_CHECK(dw[k] == 0 && db[k] == 0, "no affine: dw, db untouched");
            // without an affine map the input gradient of a row sums to 0 and is orthogonal to xhat
            for (int64_t r = 0; r < R; r++) {
                double s1 = 0, a1 = 0;
                for (int k = 0; k < C; k++) { s1 += dx[r * C + k]; a1 += fabs((double)dx[r * C + k]); }
                T_CHECK(fabs(s1) <= 1e-4 * a1 + 1e-12, "row %lld: sum dinp = %g", (long long)r, s1);
            }
        }
        t_gradcheck("layernorm dinp", norm_loss, &c, c.x, n, dx, T_GRAD_TOL);
        if (affine) {
            t_gradcheck("layernorm dw", norm_loss, &c, w, C, dw, T_GRAD_TOL);
            t_gradcheck("layernorm db", norm_loss, &c, b, C, db, T_GRAD_TOL);
        }
        // accumulation: g0 + grad
        lra_real *ax = t_guarded(n), *aw = t_guarded(C), *ab = t_guarded(C);
        t_rand_fill(ax, n, 15, -1, 1); t_rand_fill(aw, C, 16, -1, 1); t_rand_fill(ab, C, 17, -1, 1);
        double *wx = dalloc(n), *ww = dalloc(C), *wb = dalloc(C);
        plus(wx, ax, dx, n);
        plus(ww, aw, dw, C);
        plus(wb, ab, db, C);
        be->layernorm_bwd(be, ax, affine ? aw : NULL, affine ? ab : NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C);
        t_close("layernorm dinp accumulates", ax, wx, n, T_FWD_TOL);
        if (affine) {
            t_close("layernorm dw accumulates", aw, ww, C, T_FWD_TOL);
            t_close("layernorm db accumulates", ab, wb, C, T_FWD_TOL);
        }
        // only one gradient wanted, then none
        lra_real *ow = t_guarded(C);
        be->fill(be, ow, 0, C);
        if (affine) {
            be->layernorm_bwd(be, NULL, ow, NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C);
            t_close_r("layernorm dw alone", ow, dw, C, T_FWD_TOL);
        }
        be->layernorm_bwd(be, NULL, NULL, NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C);
        t_guard_ok(dx, "dx"); t_guard_ok(dw, "dw"); t_guard_ok(db, "db");
        t_guard_ok(ax, "ax"); t_guard_ok(aw, "aw"); t_guard_ok(ab, "ab"); t_guard_ok(ow, "ow");
        free(wx); free(ww); free(wb);
        lra_real *all[] = { x0, w0, b0, P0, m0, s0, dx, dw, db, ax, aw, ab, ow };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
    }
    free(y); free(m); free(s);
    lra_real *all[] = { c.x, c.y, c.P, c.mean, c.rstd, w, b };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
}

static void test_layernorm_fwd(void) {
    check_layernorm(7, 5, 1, 0, 0);
    check_layernorm(7, 5, 0, 0, 0);
    check_layernorm(1, 5, 1, 0, 0);
    check_layernorm(1, 1, 1, 0, 0);        // one element: out = b
    check_layernorm(517, 257, 1, 0, 0);    // moderately large
    check_layernorm(33, 129, 1, 300, 0);   // large mean: the variance is taken around it
}

static void test_layernorm_grad(void) {
    check_layernorm(7, 5, 1, 0.5, 1);
    check_layernorm(1, 5, 1, 0, 1);
    check_layernorm(3, 17, 1, -1, 1);
}

static void test_layernorm_grad_noaffine(void) {
    check_layernorm(7, 5, 0, 0.5, 1);
    check_layernorm(1, 5, 0, 0, 1);
}

// ---- BatchNorm ---------------------------------------------------------------

// Reference: batch statistics (biased variance) per channel when training, with
// the running update by hand; running statistics when not. rm, rv updated in place.
static void batchnorm_ref(double *y, double *mean, double *rstd, double *rm, double *rv,
                          const lra_real *x, const lra_real *w, const lra_real *b, int64_t R, int C,
                          double eps, double mom, int unbiased, int training) {
    for (int c = 0; c < C; c++) {
        double m, v;
        if (training) {
            m = 0; v = 0;
            for (int64_t r = 0; r < R; r++) m += x[r * C + c];
            m /= R;
            for (int64_t r = 0; r < R; r++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
            double vu = v / (R - 1);
            v /= R;
            rm[c] = (1 - mom) * rm[c] + mom * m;
            rv[c] = (1 - mom) * rv[c] + mom * (unbiased ? vu : v);
        } else {
            m = rm[c];
            v = rv[c];
        }
        double s = 1 / sqrt(v + eps);
        for (int64_t r = 0; r < R; r++)
            y[r * C + c] = (x[r * C + c] - m) * s * (w ? w[c] : 1.0) + (b ? b[c] : 0.0);
        mean[c] = m;
        rstd[c] = s;
    }
}

static void check_batchnorm(int B, int L, int C, int affine, int training, int unbiased, lra_real mom,
                            int grads) {
    lra_backend *be = t_backend();
    int64_t R = (int64_t)B * L, n = R * C;
    norm_ctx c = { .kind = NORM_BATCH, .R = R, .C = C, .eps = (lra_real)1e-5, .momentum = mom,
                   .training = training, .unbiased = unbiased };
    c.x = t_guarded(n); c.y = t_guarded(n); c.P = t_guarded(n);
    c.mean = t_guarded(C); c.rstd = t_guarded(C); c.rm = t_guarded(C); c.rv = t_guarded(C);
    lra_real *w = t_guarded(C), *b = t_guarded(C);
    t_rand_fill(c.x, n, 2100 + (uint64_t)R, -1.5, 2.5);
    t_rand_fill(c.P, n, 22, -1, 1);
    t_rand_fill(w, C, 23, 0.5, 1.5);
    t_rand_fill(b, C, 24, -1, 1);
    t_rand_fill(c.rm, C, 25, -0.5, 0.5);
    t_rand_fill(c.rv, C, 26, 0.5, 2);
    if (affine) { c.w = w; c.b = b; }
    lra_real *rm0 = copy_of(c.rm, C), *rv0 = copy_of(c.rv, C);

    norm_fwd(&c);
    double *y = dalloc(n), *m = dalloc(C), *s = dalloc(C), *rm = dalloc(C), *rv = dalloc(C);
    for (int k = 0; k < C; k++) { rm[k] = rm0[k]; rv[k] = rv0[k]; }
    batchnorm_ref(y, m, s, rm, rv, c.x, c.w, c.b, R, C, c.eps, mom, unbiased, training);
    t_close("batchnorm out", c.y, y, n, T_FWD_TOL);
    t_close("batchnorm mean", c.mean, m, C, T_FWD_TOL);
    t_close("batchnorm rstd", c.rstd, s, C, T_FWD_TOL);
    t_close("batchnorm running_mean", c.rm, rm, C, T_FWD_TOL);
    t_close("batchnorm running_var", c.rv, rv, C, T_FWD_TOL);
    if (!training) T_CHECK(same(c.rm, rm0, C) && same(c.rv, rv0, C), "eval leaves the running stats alone");
    lra_real *all0[] = { c.y, c.mean, c.rstd, c.rm, c.rv };
    for (size_t i = 0; i < sizeof all0 / sizeof all0[0]; i++) t_guard_ok(all0[i], "batchnorm output");

    if (grads) {
        lra_real *x0 = copy_of(c.x, n), *P0 = copy_of(c.P, n), *m0 = copy_of(c.mean, C), *s0 = copy_of(c.rstd, C);
        lra_real *dx = t_guarded(n), *dw = t_guarded(C), *db = t_guarded(C);
        be->fill(be, dx, 0, n); be->fill(be, dw, 0, C); be->fill(be, db, 0, C);
        be->batchnorm_bwd(be, dx, affine ? dw : NULL, affine ? db : NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C,
                          training);
        T_CHECK(same(x0, c.x, n) && same(P0, c.P, n) && same(m0, c.mean, C) && same(s0, c.rstd, C),
                "inputs unchanged by batchnorm_bwd");
        if (!affine)
            for (int k = 0; k < C; k++) T_CHECK(dw[k] == 0 && db[k] == 0, "no affine: dw, db untouched");
        t_gradcheck(training ? "batchnorm train dinp" : "batchnorm eval dinp", norm_loss, &c, c.x, n, dx, T_GRAD_TOL);
        if (affine) {
            t_gradcheck("batchnorm dw", norm_loss, &c, w, C, dw, T_GRAD_TOL);
            t_gradcheck("batchnorm db", norm_loss, &c, b, C, db, T_GRAD_TOL);
        }
        // accumulation
        lra_real *ax = t_guarded(n), *aw = t_guarded(C), *ab = t_guarded(C);
        t_rand_fill(ax, n, 27, -1, 1); t_rand_fill(aw, C, 28, -1, 1); t_rand_fill(ab, C, 29, -1, 1);
        double *wx = dalloc(n), *ww = dalloc(C), *wb = dalloc(C);
        plus(wx, ax, dx, n);
        plus(ww, aw, dw, C);
        plus(wb, ab, db, C);
        be->batchnorm_bwd(be, ax, affine ? aw : NULL, affine ? ab : NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C,
                          training);
        t_close("batchnorm dinp accumulates", ax, wx, n, T_FWD_TOL);
        if (affine) {
            t_close("batchnorm dw accumulates", aw, ww, C, T_FWD_TOL);
            t_close("batchnorm db accumulates", ab, wb, C, T_FWD_TOL);
        }
        lra_real *ox = t_guarded(n);
        be->fill(be, ox, 0, n);
        be->batchnorm_bwd(be, ox, NULL, NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C, training);
        t_close_r("batchnorm dinp alone", ox, dx, n, T_FWD_TOL);
        be->batchnorm_bwd(be, NULL, NULL, NULL, c.P, c.x, c.w, c.mean, c.rstd, R, C, training);
        lra_real *g[] = { dx, dw, db, ax, aw, ab, ox };
        for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) t_guard_ok(g[i], "batchnorm gradient");
        free(wx); free(ww); free(wb);
        lra_real *all[] = { x0, P0, m0, s0, dx, dw, db, ax, aw, ab, ox };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
    }
    free(y); free(m); free(s); free(rm); free(rv);
    lra_real *all[] = { c.x, c.y, c.P, c.mean, c.rstd, c.rm, c.rv, w, b, rm0, rv0 };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
}

static void test_batchnorm_train_fwd(void) {
    for (int unb = 0; unb < 2; unb++) {
        check_batchnorm(3, 7, 5, 1, 1, unb, (lra_real)0.1, 0);
        check_batchnorm(3, 7, 5, 0, 1, unb, (lra_real)0.25, 0);
        check_batchnorm(1, 7, 5, 1, 1, unb, (lra_real)0.1, 0);     // B = 1
        check_batchnorm(61, 67, 37, 1, 1, unb, (lra_real)0.1, 0);  // R = 4087 rows, many per thread
    }
}

// The running update by hand: x = {1, 2, 3, 6} in one channel, mean 3,
// biased variance 3.5, unbiased 14/3; running (0.5, 2), momentum 0.1.
static void test_batchnorm_running_by_hand(void) {
    lra_backend *be = t_backend();
    lra_real x[4] = { 1, 2, 3, 6 }, y[4], mean, rstd;
    for (int unb = 0; unb < 2; unb++) {
        lra_real rm = (lra_real)0.5, rv = 2;
        be->batchnorm_fwd(be, y, &mean, &rstd, &rm, &rv, x, NULL, NULL, 4, 1, (lra_real)1e-5, (lra_real)0.1,
                          unb, 1);
        double want_rv = unb ? 0.9 * 2 + 0.1 * 14.0 / 3.0 : 0.9 * 2 + 0.1 * 3.5;
        T_CHECK(fabs(rm - 0.75) < 1e-6, "running_mean %.9g, want 0.75", (double)rm);
        T_CHECK(fabs(rv - want_rv) < 1e-6, "running_var (unbiased %d) %.9g, want %.9g", unb, (double)rv, want_rv);
        T_CHECK(fabs(mean - 3) < 1e-6 && fabs(rstd - 1 / sqrt(3.5 + 1e-5)) < 1e-6, "batch mean %g rstd %g",
                (double)mean, (double)rstd);
        T_CHECK(fabs(y[3] - 3 / sqrt(3.5 + 1e-5)) < 1e-5, "normalised x[3] = %g", (double)y[3]);
    }
}

static void test_batchnorm_eval_fwd(void) {
    check_batchnorm(3, 7, 5, 1, 0, 1, (lra_real)0.1, 0);
    check_batchnorm(3, 7, 5, 0, 0, 0, (lra_real)0.1, 0);
    check_batchnorm(61, 67, 37, 1, 0, 1, (lra_real)0.1, 0);
}

static void test_batchnorm_train_grad(void) {
    check_batchnorm(3, 7, 5, 1, 1, 1, (lra_real)0.1, 1);
    check_batchnorm(3, 7, 5, 0, 1, 0, (lra_real)0.1, 1);
    check_batchnorm(1, 7, 3, 1, 1, 1, (lra_real)0.1, 1);
}

static void test_batchnorm_eval_grad(void) {
    check_batchnorm(3, 7, 5, 1, 0, 1, (lra_real)0.1, 1);
    check_batchnorm(3, 7, 5, 0, 0, 0, (lra_real)0.1, 1);
    check_batchnorm(1, 7, 3, 1, 0, 1, (lra_real)0.1, 1);
}

// ---- ScaleNorm ---------------------------------------------------------------

static void scalenorm_ref(double *y, double *rstd, const lra_real *x, double g, int64_t R, int C, double eps) {
    for (int64_t r = 0; r < R; r++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[r * C + c] * x[r * C + c];
        double s = 1 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) y[r * C + c] = g * x[r * C + c] * s;
        rstd[r] = s;
    }
}

static void check_scalenorm(int64_t R, int C, int grads) {
    lra_backend *be = t_backend();
    int64_t n = R * C;
    norm_ctx c = { .kind = NORM_SCALE, .R = R, .C = C, .eps = (lra_real)1e-5 };
    c.x = t_guarded(n); c.y = t_guarded(n); c.P = t_guarded(n); c.rstd = t_guarded(R); c.g = t_guarded(1);
    t_rand_fill(c.x, n, 3100 + (uint64_t)R, -1.5, 2);
    t_rand_fill(c.P, n, 32, -1, 1);
    c.g[0] = (lra_real)1.3;
    norm_fwd(&c);
    double *y = dalloc(n), *s = dalloc(R);
    scalenorm_ref(y, s, c.x, c.g[0], R, C, c.eps);
    t_close("scalenorm out", c.y, y, n, T_FWD_TOL);
    t_close("scalenorm rstd", c.rstd, s, R, T_FWD_TOL);
    t_guard_ok(c.y, "out"); t_guard_ok(c.rstd, "rstd");
    if (grads) {
        lra_real *x0 = copy_of(c.x, n), *P0 = copy_of(c.P, n), *s0 = copy_of(c.rstd, R);
        lra_real *dx = t_guarded(n), *dg = t_guarded(1);
        be->fill(be, dx, 0, n); dg[0] = 0;
        be->scalenorm_bwd(be, dx, dg, c.P, c.x, c.g, c.rstd, R, C);
        T_CHECK(same(x0, c.x, n) && same(P0, c.P, n) && same(s0, c.rstd, R) && c.g[0] == (lra_real)1.3,
                "inputs unchanged by scalenorm_bwd");
        t_gradcheck("scalenorm dinp", norm_loss, &c, c.x, n, dx, T_GRAD_TOL);
        t_gradcheck("scalenorm dg", norm_loss, &c, c.g, 1, dg, T_GRAD_TOL);
        lra_real *ax = t_guarded(n), *ag = t_guarded(1);
        t_rand_fill(ax, n, 33, -1, 1); ag[0] = (lra_real)0.75;
        double *wx = dalloc(n), wg = 0.75 + (double)dg[0];
        plus(wx, ax, dx, n);
        be->scalenorm_bwd(be, ax, ag, c.P, c.x, c.g, c.rstd, R, C);
        t_close("scalenorm dinp accumulates", ax, wx, n, T_FWD_TOL);
        t_close("scalenorm dg accumulates", ag, &wg, 1, T_FWD_TOL);
        lra_real *og = t_guarded(1), *ox = t_guarded(n);
        og[0] = 0; be->fill(be, ox, 0, n);
        be->scalenorm_bwd(be, NULL, og, c.P, c.x, c.g, c.rstd, R, C);
        be->scalenorm_bwd(be, ox, NULL, c.P, c.x, c.g, c.rstd, R, C);
        t_close_r("scalenorm dg alone", og, dg, 1, T_FWD_TOL);
        t_close_r("scalenorm dinp alone", ox, dx, n, T_FWD_TOL);
        be->scalenorm_bwd(be, NULL, NULL, c.P, c.x, c.g, c.rstd, R, C);
        lra_real *g[] = { dx, dg, ax, ag, og, ox };
        for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) t_guard_ok(g[i], "scalenorm gradient");
        free(wx);
        lra_real *all[] = { x0, P0, s0, dx, dg, ax, ag, og, ox };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
    }
    free(y); free(s);
    lra_real *all[] = { c.x, c.y, c.P, c.rstd, c.g };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t_guarded_free(all[i]);
}

static void test_scalenorm_fwd(void) {
    check_scalenorm(7, 5, 0);
    check_scalenorm(1, 5, 0);
    check_scalenorm(301, 129, 0);
}

static void test_scalenorm_grad(void) {
    check_scalenorm(7, 5, 1);
    check_scalenorm(1, 5, 1);
    check_scalenorm(3, 17, 1);
}

static const t_case cases[] = {
    { "layernorm/fwd", test_layernorm_fwd },
    { "layernorm/grad_affine", test_layernorm_grad },
    { "layernorm/grad_noaffine", test_layernorm_grad_noaffine },
    { "batchnorm/train_fwd", test_batchnorm_train_fwd },
    { "batchnorm/running_by_hand", test_batchnorm_running_by_hand },
    { "batchnorm/eval_fwd", test_batchnorm_eval_fwd },
    { "batchnorm/train_grad", test_batchnorm_train_grad },
    { "batchnorm/eval_grad", test_batchnorm_eval_grad },
    { "scalenorm/fwd", test_scalenorm_fwd },
    { "scalenorm/grad", test_scalenorm_grad },
};
T_MAIN(cases)
