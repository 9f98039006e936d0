// test_loss.c: embedding lookup, masked mean pooling and softmax
// cross-entropy, forward against plain loops and backward against finite
// differences.
#include "check.h"

#include <math.h>

// ---- embedding ---------------------------------------------------------------
typedef struct { int64_t n; int C, V; int32_t *tok; lra_real *table, *out, *P; } emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = p;
    t_backend()->embedding_fwd(t_backend(), c->out, c->tok, c->table, c->n, c->C);
    return t_project(c->out, c->P, c->n * c->C);
}

static void test_embedding(void) {
    lra_backend *be = t_backend();
    emb_ctx c = { .n = 23, .C = 5, .V = 7 };
    c.tok = malloc(sizeof(int32_t) * (size_t)c.n);
    for (int64_t i = 0; i < c.n; i++) c.tok[i] = (int32_t)(lra_rand_bits(11, (uint64_t)i) % (uint64_t)c.V);
    c.tok[0] = c.tok[1] = 6;  // repeated token: gradients must add up
    c.table = t_guarded((int64_t)c.V * c.C); c.out = t_guarded(c.n * c.C); c.P = t_guarded(c.n * c.C);
    t_rand_fill(c.table, (int64_t)c.V * c.C, 12, -1, 1);
    t_rand_fill(c.P, c.n * c.C, 13, -1, 1);
    emb_loss(&c);
    int bad = 0;
    for (int64_t i = 0; i < c.n; i++)
        for (int k = 0; k < c.C; k++) bad += c.out[i * c.C + k] != c.table[(int64_t)c.tok[i] * c.C + k];
    T_CHECK(bad == 0, "embedding rows copied (%d wrong)", bad);
    lra_real *dt = t_guarded((int64_t)c.V * c.C);
    t_rand_fill(dt, (int64_t)c.V * c.C, 14, -1, 1);
    lra_real *g0 = malloc(sizeof(lra_real) * (size_t)(c.V * c.C));
    memcpy(g0, dt, sizeof(lra_real) * (size_t)(c.V * c.C));
    be->embedding_bwd(be, dt, c.P, c.tok, c.n, c.C, c.V);
    for (int64_t i = 0; i < (int64_t)c.V * c.C; i++) dt[i] -= g0[i];  // accumulated on top of g0
    t_gradcheck("embedding dtable", emb_loss, &c, c.table, (int64_t)c.V * c.C, dt, T_GRAD_TOL);
    t_guard_ok(dt, "dtable"); t_guard_ok(c.out, "out");
    free(g0); free(c.tok);
    t_guarded_free(c.table); t_guarded_free(c.out); t_guarded_free(c.P); t_guarded_free(dt);
}

// ---- masked mean pooling -------------------------------------------------------------
typedef struct { int B, L, C; uint8_t *mask; lra_real *x, *y, *P; } pool_ctx;

static double pool_loss(void *p) {
    pool_ctx *c = p;
    t_backend()->meanpool_fwd(t_backend(), c->y, c->x, c->mask, c->B, c->L, c->C);
    return t_project(c->y, c->P, (int64_t)c->B * c->C);
}

static void check_pool(int B, int L, int C, int use_mask) {
    lra_backend *be = t_backend();
    pool_ctx c = { .B = B, .L = L, .C = C };
    int64_t n = (int64_t)B * L * C;
    c.x = t_guarded(n); c.y = t_guarded((int64_t)B * C); c.P = t_guarded((int64_t)B * C);
    t_rand_fill(c.x, n, 15, -1, 1); t_rand_fill(c.P, (int64_t)B * C, 16, -1, 1);
    if (use_mask) {  // row b has L - 2b real tokens, the last row none
        c.mask = malloc((size_t)B * L);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < L; t++) c.mask[b * L + t] = (b < B - 1 || B == 1) && t < L - 2 * b;
    }
    pool_loss(&c);
    double *want = calloc((size_t)B * C, sizeof(double));
    for (int b = 0; b < B; b++) {
        int cnt = 0;
        for (int t = 0; t < L; t++) {
            if (c.mask && !c.mask[b * L + t]) continue;
            cnt++;
            for (int k = 0; k < C; k++) want[b * C + k] += c.x[((int64_t)b * L + t) * C + k];
        }
        for (int k = 0; k < C; k++) want[b * C + k] = cnt ? want[b * C + k] / cnt : 0;
    }
    t_close("meanpool", c.y, want, (int64_t)B * C, T_FWD_TOL);
    lra_real *dx = t_guarded(n);
    be->fill(be, dx, 0, n);
    be->meanpool_bwd(be, dx, c.P, c.mask, B, L, C);
    t_gradcheck("meanpool dx", pool_loss, &c, c.x, n, dx, T_GRAD_TOL);
    if (c.mask) {  // padded positions get exactly zero gradient
        int bad = 0;
        for (int64_t i = 0; i < (int64_t)B * L; i++)
            for (int k = 0; k < C; k++) bad += !c.mask[i] && dx[i * C + k] != 0;
        T_CHECK(bad == 0, "padding received gradient (%d)", bad);
    }
    t_guard_ok(dx, "dx"); t_guard_ok(c.y, "y");
    free(want); free(c.mask);
    t_guarded_free(c.x); t_guarded_free(c.y); t_guarded_free(c.P); t_guarded_free(dx);
}

static void test_meanpool(void) {
    check_pool(1, 9, 3, 0);
    check_pool(3, 7, 5, 0);
    check_pool(4, 11, 2, 1);
    check_pool(1, 5, 4, 1);
}

// ---- cross-entropy ------------------------------------------------------------------------
typedef struct { int B, K; int32_t *y; lra_real *z, *probs, *lpe; } xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    return t_backend()->xent_fwd(t_backend(), c->probs, c->lpe, c->z, c->y, c->B, c->K);
}

static void test_xent(void) {
    lra_backend *be = t_backend();
    xent_ctx c = { .B = 5, .K = 3 };
    c.y = malloc(sizeof(int32_t) * 5);
    int32_t labels[5] = { 0, 2, 1, 2, 0 };
    memcpy(c.y, labels, sizeof labels);
    c.z = t_guarded(15); c.probs = t_guarded(15); c.lpe = t_guarded(5);
    t_rand_fill(c.z, 15, 17, -3, 3);
    c.z[3] = 60;  // a large logit: the max must be subtracted
    double got = xent_loss(&c), want = 0;
    double wp[15];
    for (int b = 0; b < 5; b++) {
        double mx = -INFINITY, s = 0;
        for (int k = 0; k < 3; k++) mx = fmax(mx, c.z[b * 3 + k]);
        for (int k = 0; k < 3; k++) s += exp(c.z[b * 3 + k] - mx);
        for (int k = 0; k < 3; k++) wp[b * 3 + k] = exp(c.z[b * 3 + k] - mx) / s;
        want += -log(wp[b * 3 + labels[b]]);
    }
    want /= 5;
    T_CHECK(fabs(got - want) < 1e-6 * (1 + want), "mean loss %.9g, want %.9g", got, want);
    T_CHECK(isfinite(got), "finite with a large logit");
    t_close("probs", c.probs, wp, 15, T_FWD_TOL);
    lra_real *dz = t_guarded(15);
    be->fill(be, dz, 0, 15);
    be->xent_bwd(be, dz, c.probs, c.y, 5, 3, 1);
    t_gradcheck("xent dlogits", xent_loss, &c, c.z, 15, dz, T_GRAD_TOL);
    // dloss scales the gradient and accumulates
    lra_real dz2[15];
    memcpy(dz2, dz, sizeof dz2);
    be->xent_bwd(be, dz, c.probs, c.y, 5, 3, (lra_real)0.5);
    double w2[15];
    for (int i = 0; i < 15; i++) w2[i] = 1.5 * dz2[i];
    t_close("xent accumulates, scaled", dz, w2, 15, T_FWD_TOL);
    t_guard_ok(dz, "dz"); t_guard_ok(c.probs, "probs"); t_guard_ok(c.lpe, "loss per example");
    free(c.y);
    t_guarded_free(c.z); t_guarded_free(c.probs); t_guarded_free(c.lpe); t_guarded_free(dz);
}

// NULL gradients are "not wanted" and skipped (backend.h contract).
static void test_null_grads(void) {
    lra_backend *be = t_backend();
    int32_t tok[3] = { 0, 1, 0 }, labels[2] = { 0, 1 };
    lra_real dout[6] = { 1, 2, 3, 4, 5, 6 }, probs[4] = { 0.5, 0.5, 0.25, 0.75 };
    uint8_t mask[6] = { 1, 1, 0, 1, 0, 0 };
    be->embedding_bwd(be, NULL, dout, tok, 3, 2, 2);
    be->meanpool_bwd(be, NULL, dout, mask, 2, 3, 1);
    be->xent_bwd(be, NULL, probs, labels, 2, 2, 1);  // a write through NULL would crash the program
    T_CHECK(dout[0] == 1 && dout[5] == 6 && probs[3] == (lra_real)0.75, "inputs unchanged");
}

static const t_case cases[] = {
    { "loss/null_grads", test_null_grads },
    { "loss/embedding", test_embedding },
    { "loss/meanpool", test_meanpool },
    { "loss/xent", test_xent },
};
T_MAIN(cases)
