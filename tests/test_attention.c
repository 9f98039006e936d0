// test_attention.c: multi-head softmax attention (attention_fwd / _bwd)
// against an explicit double-precision softmax, an explicit double backward
// and central finite differences, over masks, causal, dropout and odd sizes.
#include "check.h"

#include <math.h>

// T_BWD_TOL: analytic backward vs the double reference backward, every element.
// T_ATT_GRAD_TOL: finite differences. One key moves every output row of its
// head and the projected loss sums B*NH*L*Dh outputs, so the central
// difference carries the rounding of ~1000-term sums: up to ~5e-6 (f64) and
// ~3e-2 (f32) relative error on small gradient entries, measured, with the
// backward exact. A wrong formula gives errors of order 1.
#ifdef LRA_F64
#define T_BWD_TOL      1e-9
#define T_ATT_GRAD_TOL 2e-5
#else
#define T_BWD_TOL      1e-4
#define T_ATT_GRAD_TOL 6e-2
#endif

typedef struct {
    int B, NH, L, Dh, causal;
    lra_real scale, p;
    uint64_t seed;
    uint8_t  *mask;                 // (B, L) or NULL
    lra_real *q, *k, *v;            // (B, NH, L, Dh)
    lra_real *out, *lse, *R;        // (B, NH, L, Dh), (B, NH, L), (B, NH, L, Dh)
    char      tag[96];              // configuration, for messages
} att_ctx;

static int64_t att_n(const att_ctx *c) { return (int64_t)c->B * c->NH * c->L * c->Dh; }
static int64_t att_rows(const att_ctx *c) { return (int64_t)c->B * c->NH * c->L; }

static void att_fwd(att_ctx *c) {
    lra_backend *be = t_backend();
    be->attention_fwd(be, c->out, c->lse, c->q, c->k, c->v, c->mask, c->B, c->NH, c->L, c->Dh, c->scale,
                      c->causal, c->p, c->seed);
}

static void att_bwd(const att_ctx *c, lra_real *dq, lra_real *dk, lra_real *dv, const lra_real *dout) {
    lra_backend *be = t_backend();
    be->attention_bwd(be, dq, dk, dv, dout, c->out, c->lse, c->q, c->k, c->v, c->mask, c->B, c->NH, c->L,
                      c->Dh, c->scale, c->causal, c->p, c->seed);
}

static double att_loss(void *p) {
    att_ctx *c = p;
    att_fwd(c);
    return t_project(c->out, c->R, att_n(c));
}

// Mask patterns by batch element (B = 1 uses the prefix pattern):
//   0: holes, every third token from 1 is padding   1: one real token, at L/2
//   2: no real token                                 3: real prefix of 2L/3 (at least 1)
static int att_pattern(int B, int b) { return B == 1 ? 3 : b % 4; }

static uint8_t att_mask_value(int pattern, int L, int j) {
    switch (pattern) {
    case 0: return j % 3 != 1;
    case 1: return j == L / 2;
    case 2: return 0;
    default: return j < (2 * L / 3 > 0 ? 2 * L / 3 : 1);
    }
}

static void att_init(att_ctx *c, int B, int NH, int L, int Dh, int causal, int masked, double p, uint64_t seed) {
    *c = (att_ctx){ .B = B, .NH = NH, .L = L, .Dh = Dh, .causal = causal, .p = (lra_real)p, .seed = seed,
                    .scale = (lra_real)(1.0 / sqrt((double)Dh)) };
    snprintf(c->tag, sizeof c->tag, "B%d NH%d L%d Dh%d%s%s p%g", B, NH, L, Dh, causal ? " causal" : "",
             masked ? " mask" : "", p);
    int64_t n = att_n(c);
    c->q = t_guarded(n); c->k = t_guarded(n); c->v = t_guarded(n); c->R = t_guarded(n);
    c->out = t_guarded(n); c->lse = t_guarded(att_rows(c));
    t_rand_fill(c->q, n, seed + 1, -2, 2);
    t_rand_fill(c->k, n, seed + 2, -2, 2);
    t_rand_fill(c->v, n, seed + 3, -1, 1);
    t_rand_fill(c->R, n, seed + 4, -1, 1);
    if (!masked) return;
    c->mask = malloc((size_t)B * (size_t)L);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < L; j++) c->mask[b * L + j] = att_mask_value(att_pattern(B, b), L, j);
    // large keys at padding positions: any leak into the softmax shows at once
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int j = 0; j < L; j++)
                if (!c->mask[b * L + j])
                    for (int d = 0; d < Dh; d++) c->k[(((int64_t)b * NH + h) * L + j) * Dh + d] *= 20;
}

static void att_free(att_ctx *c) {
    t_guarded_free(c->q); t_guarded_free(c->k); t_guarded_free(c->v); t_guarded_free(c->R);
    t_guarded_free(c->out); t_guarded_free(c->lse);
    free(c->mask);
}

static int att_visible(const att_ctx *c, int b, int i, int j) {
    return (!c->mask || c->mask[b * c->L + j]) && (!c->causal || j <= i);
}

// The dropout factor Z_ij of the contract, written out.
static double att_z(const att_ctx *c, int b, int h, int i, int j) {
    if (c->p == 0) return 1;
    uint64_t ctr = (((uint64_t)b * c->NH + h) * c->L + i) * (uint64_t)c->L + j;
    return lra_rand_uniform(c->seed, ctr) >= c->p ? 1.0 / (1.0 - (double)c->p) : 0.0;
}

// Probabilities P (L) of row i of head (b, h), explicit softmax in double;
// returns lse, -INFINITY (and P = 0) when the row sees no key.
static double ref_probs(double *P, const att_ctx *c, int b, int h, int i) {
    int L = c->L, Dh = c->Dh;
    const lra_real *q = c->q + (((int64_t)b * c->NH + h) * L + i) * Dh;
    const lra_real *k = c->k + ((int64_t)b * c->NH + h) * L * Dh;
    double mx = -INFINITY;
    for (int j = 0; j < L; j++) {
        P[j] = 0;
        if (!att_visible(c, b, i, j)) continue;
        for (int d = 0; d < Dh; d++) P[j] += (double)q[d] * k[(int64_t)j * Dh + d];
        P[j] *= (double)c->scale;
        mx = fmax(mx, P[j]);
    }
    if (mx == -INFINITY) return -INFINITY;
    double sum = 0;
    for (int j = 0; j < L; j++)
        if (att_visible(c, b, i, j)) sum += exp(P[j] - mx);
    for (int j = 0; j < L; j++) P[j] = att_visible(c, b, i, j) ? exp(P[j] - mx) / sum : 0;
    return mx + log(sum);
}

// out (B, NH, L, Dh) and lse (B, NH, L) by plain loops.
static void ref_fwd(double *out, double *lse, const att_ctx *c) {
    int L = c->L, Dh = c->Dh;
    double *P = malloc(sizeof(double) * (size_t)L);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++) {
            int64_t bh = (int64_t)b * c->NH + h;
            for (int i = 0; i < L; i++) {
                lse[bh * L + i] = ref_probs(P, c, b, h, i);
                double *o = out + (bh * L + i) * Dh;
                for (int d = 0; d < Dh; d++) o[d] = 0;
                for (int j = 0; j < L; j++) {
                    double w = P[j] * att_z(c, b, h, i, j);
                    for (int d = 0; d < Dh; d++) o[d] += w * c->v[(bh * L + j) * Dh + d];
                }
            }
        }
    free(P);
}

// Gradients of sum(dout * out) by the chain rule through the explicit softmax:
// dV += PZ^T dO; dP = Z (dO V^T); dS = P (dP - sum_j P dP); dQ = scale dS K, dK = scale dS^T Q.
static void ref_bwd(double *dq, double *dk, double *dv, const lra_real *dout, const att_ctx *c) {
    int L = c->L, Dh = c->Dh;
    int64_t n = att_n(c);
    for (int64_t i = 0; i < n; i++) dq[i] = dk[i] = dv[i] = 0;
    double *P = malloc(sizeof(double) * (size_t)L), *dP = malloc(sizeof(double) * (size_t)L);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++) {
            int64_t bh = (int64_t)b * c->NH + h;
            for (int i = 0; i < L; i++) {
                if (ref_probs(P, c, b, h, i) == -INFINITY) continue;
                const lra_real *go = dout + (bh * L + i) * Dh;
                double D = 0;
                for (int j = 0; j < L; j++) {
                    double z = att_z(c, b, h, i, j), g = 0;
                    for (int d = 0; d < Dh; d++) {
                        dv[(bh * L + j) * Dh + d] += P[j] * z * go[d];
                        g += (double)go[d] * c->v[(bh * L + j) * Dh + d];
                    }
                    dP[j] = z * g;
                    D += P[j] * dP[j];
                }
                for (int j = 0; j < L; j++) {
                    double ds = P[j] * (dP[j] - D) * (double)c->scale;
                    if (ds == 0) continue;
                    for (int d = 0; d < Dh; d++) {
                        dq[(bh * L + i) * Dh + d] += ds * c->k[(bh * L + j) * Dh + d];
                        dk[(bh * L + j) * Dh + d] += ds * c->q[(bh * L + i) * Dh + d];
                    }
                }
            }
        }
    free(P); free(dP);
}

static lra_real *att_copy(const lra_real *x, int64_t n) {
    lra_real *y = malloc(sizeof(lra_real) * (size_t)n);
    memcpy(y, x, sizeof(lra_real) * (size_t)n);
    return y;
}

static lra_real *att_zeros(int64_t n) {
    lra_real *x = t_guarded(n);
    for (int64_t i = 0; i < n; i++) x[i] = 0;
    return x;
}

// Compares the forward outputs with the reference: out everywhere, lse on live
// rows, and rows that see no key exactly (out 0, lse -INFINITY).
static void att_check_fwd(const att_ctx *c, double tol) {
    int64_t n = att_n(c), nr = att_rows(c);
    double *want = malloc(sizeof(double) * (size_t)n), *wlse = malloc(sizeof(double) * (size_t)nr);
    ref_fwd(want, wlse, c);
    char what[160];
    snprintf(what, sizeof what, "%s: out", c->tag);
    t_close(what, c->out, want, n, tol);
    lra_real *got_live = malloc(sizeof(lra_real) * (size_t)nr);
    double *want_live = malloc(sizeof(double) * (size_t)nr);
    int64_t nl = 0, bad_dead = 0;
    for (int64_t r = 0; r < nr; r++) {
        if (wlse[r] == -INFINITY) {
            int zero = c->lse[r] == -INFINITY;
            for (int d = 0; d < c->Dh; d++) zero &= c->out[r * c->Dh + d] == 0;
            bad_dead += !zero;
        } else {
            got_live[nl] = c->lse[r];
            want_live[nl++] = wlse[r];
        }
    }
    T_CHECK(bad_dead == 0, "%s: %lld rows without keys not (out 0, lse -inf)", c->tag, (long long)bad_dead);
    snprintf(what, sizeof what, "%s: lse", c->tag);
    t_close(what, got_live, want_live, nl, tol);
    free(want); free(wlse); free(got_live); free(want_live);
}

// Forward, backward and finite differences of one configuration.
static void check_config(int B, int NH, int L, int Dh, int causal, int masked, double p) {
    att_ctx c;
    att_init(&c, B, NH, L, Dh, causal, masked, p, 1000 + (uint64_t)(B * 7 + NH * 13 + L * 17 + Dh));
    int64_t n = att_n(&c), nr = att_rows(&c);
    lra_real *q0 = att_copy(c.q, n), *k0 = att_copy(c.k, n), *v0 = att_copy(c.v, n);
    uint8_t *m0 = NULL;
    if (c.mask) {
        m0 = malloc((size_t)B * (size_t)L);
        memcpy(m0, c.mask, (size_t)B * (size_t)L);
    }
    att_loss(&c);
    att_check_fwd(&c, T_FWD_TOL);

    lra_real *dq = att_zeros(n), *dk = att_zeros(n), *dv = att_zeros(n);
    lra_real *out0 = att_copy(c.out, n), *lse0 = att_copy(c.lse, nr), *R0 = att_copy(c.R, n);
    att_bwd(&c, dq, dk, dv, c.R);
    T_CHECK(!memcmp(q0, c.q, sizeof(lra_real) * (size_t)n) && !memcmp(k0, c.k, sizeof(lra_real) * (size_t)n) &&
            !memcmp(v0, c.v, sizeof(lra_real) * (size_t)n) && !memcmp(out0, c.out, sizeof(lra_real) * (size_t)n) &&
            !memcmp(lse0, c.lse, sizeof(lra_real) * (size_t)nr) && !memcmp(R0, c.R, sizeof(lra_real) * (size_t)n),
            "%s: inputs changed", c.tag);
    T_CHECK(!m0 || !memcmp(m0, c.mask, (size_t)B * (size_t)L), "%s: mask changed", c.tag);

    double *gq = malloc(sizeof(double) * (size_t)n), *gk = malloc(sizeof(double) * (size_t)n),
           *gv = malloc(sizeof(double) * (size_t)n);
    ref_bwd(gq, gk, gv, c.R, &c);
    char what[160];
    snprintf(what, sizeof what, "%s: dq vs reference", c.tag);
    t_close(what, dq, gq, n, T_BWD_TOL);
    snprintf(what, sizeof what, "%s: dk vs reference", c.tag);
    t_close(what, dk, gk, n, T_BWD_TOL);
    snprintf(what, sizeof what, "%s: dv vs reference", c.tag);
    t_close(what, dv, gv, n, T_BWD_TOL);

    snprintf(what, sizeof what, "%s: dq", c.tag);
    t_gradcheck(what, att_loss, &c, c.q, n, dq, T_ATT_GRAD_TOL);
    snprintf(what, sizeof what, "%s: dk", c.tag);
    t_gradcheck(what, att_loss, &c, c.k, n, dk, T_ATT_GRAD_TOL);
    snprintf(what, sizeof what, "%s: dv", c.tag);
    t_gradcheck(what, att_loss, &c, c.v, n, dv, T_ATT_GRAD_TOL);

    // padding keys and rows without keys get exactly zero gradient
    int64_t bad = 0;
    for (int64_t r = 0; r < nr; r++) {
        int b = (int)(r / ((int64_t)NH * L)), i = (int)(r % L);
        int key_pad = c.mask && !c.mask[b * L + i];
        int row_dead = c.lse[r] == -INFINITY;
        for (int d = 0; d < Dh; d++) {
            if (key_pad) bad += dk[r * Dh + d] != 0 || dv[r * Dh + d] != 0;
            if (row_dead) bad += dq[r * Dh + d] != 0;
        }
    }
    T_CHECK(bad == 0, "%s: %lld gradients at padding keys / empty rows not zero", c.tag, (long long)bad);
    t_guard_ok(c.out, "out"); t_guard_ok(c.lse, "lse");
    t_guard_ok(dq, "dq"); t_guard_ok(dk, "dk"); t_guard_ok(dv, "dv");
    free(q0); free(k0); free(v0); free(m0); free(out0); free(lse0); free(R0); free(gq); free(gk); free(gv);
    t_guarded_free(dq); t_guarded_free(dk); t_guarded_free(dv);
    att_free(&c);
}

static void test_tiny(void) {
    check_config(1, 1, 1, 1, 0, 0, 0);
    check_config(1, 1, 1, 1, 1, 0, 0);
    check_config(1, 3, 5, 8, 0, 0, 0);
    check_config(2, 1, 5, 1, 0, 0, 0);
}

static void test_nomask(void) {
    check_config(2, 3, 37, 16, 0, 0, 0);
    check_config(1, 1, 130, 8, 0, 0, 0);
}

static void test_padding(void) {
    check_config(4, 1, 37, 8, 0, 1, 0);
    check_config(4, 3, 5, 1, 0, 1, 0);
    check_config(1, 3, 130, 16, 0, 1, 0);
    check_config(4, 1, 130, 8, 0, 1, 0);
}

static void test_causal(void) {
    check_config(2, 3, 37, 8, 1, 0, 0);
    check_config(1, 1, 130, 16, 1, 0, 0);
    check_config(1, 3, 5, 1, 1, 0, 0);
}

static void test_causal_padding(void) {
    check_config(4, 3, 37, 16, 1, 1, 0);
    check_config(4, 1, 130, 8, 1, 1, 0);
    check_config(1, 1, 5, 8, 1, 1, 0);
    check_config(4, 1, 1, 1, 1, 1, 0);
}

static void test_dropout(void) {
    check_config(2, 3, 37, 8, 0, 0, 0.3);
    check_config(4, 1, 37, 16, 1, 1, 0.2);
    check_config(1, 1, 130, 8, 0, 1, 0.5);
    check_config(4, 3, 130, 1, 1, 1, 0.1);
    check_config(1, 3, 5, 1, 1, 0, 0.1);
}

// With V = identity (Dh = L) the output is P∘Z itself: every dropped entry
// is visible, must follow the counter formula, and their share must be p.
static void test_dropout_rate(void) {
    int B = 1, NH = 2, L = 256;
    double p = 0.3;
    att_ctx c;
    att_init(&c, B, NH, L, L, 0, 0, p, 77);
    int64_t n = att_n(&c);
    for (int64_t r = 0; r < att_rows(&c); r++)
        for (int d = 0; d < L; d++) c.v[r * L + d] = (lra_real)(r % L == d);
    att_fwd(&c);
    double *P = malloc(sizeof(double) * (size_t)L);
    int64_t dropped = 0, wrong_mask = 0, total = 0;
    double worst = 0, row_sum = 0;
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < L; i++) {
            ref_probs(P, &c, 0, h, i);
            const lra_real *o = c.out + ((int64_t)h * L + i) * L;
            for (int j = 0; j < L; j++) {
                double z = att_z(&c, 0, h, i, j);
                dropped += o[j] == 0;
                wrong_mask += (o[j] == 0) != (z == 0);
                worst = fmax(worst, fabs(o[j] - P[j] * z) / (P[j] / (1 - p)));
                row_sum += o[j];
                total++;
            }
        }
    double frac = (double)dropped / (double)total;
    T_CHECK(wrong_mask == 0, "%lld entries dropped against the counter formula", (long long)wrong_mask);
    T_CHECK(fabs(frac - p) < 0.01, "dropped fraction %.4f, want %.2f", frac, p);
    T_CHECK(worst < 1e-4, "kept entries not P/(1-p): relative error %.3g", worst);
    T_CHECK(fabs(row_sum / (NH * L) - 1) < 0.01, "mean row sum %.4f, want about 1", row_sum / (NH * L));
    // the seed chooses the mask; p = 0 means no dropout at all
    lra_real *o1 = att_copy(c.out, n);
    c.seed = 78;
    att_fwd(&c);
    T_CHECK(memcmp(o1, c.out, sizeof(lra_real) * (size_t)n) != 0, "another seed, same output");
    c.p = 0;
    att_fwd(&c);
    att_check_fwd(&c, T_FWD_TOL);
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) zeros += c.out[i] == 0;
    T_CHECK(zeros == 0, "p = 0 dropped %lld entries", (long long)zeros);
    t_guard_ok(c.out, "out"); t_guard_ok(c.lse, "lse");
    free(P); free(o1);
    att_free(&c);
}

// Backward adds to the gradient buffers; NULL gradients are skipped and do
// not change the others.
static void test_accumulate(void) {
    att_ctx c;
    att_init(&c, 3, 2, 70, 8, 1, 1, 0.2, 91);
    int64_t n = att_n(&c);
    att_fwd(&c);
    lra_real *dq = att_zeros(n), *dk = att_zeros(n), *dv = att_zeros(n);
    att_bwd(&c, dq, dk, dv, c.R);
    lra_real *aq = t_guarded(n), *ak = t_guarded(n), *av = t_guarded(n);
    t_rand_fill(aq, n, 92, -1, 1); t_rand_fill(ak, n, 93, -1, 1); t_rand_fill(av, n, 94, -1, 1);
    double *wq = malloc(sizeof(double) * (size_t)n), *wk = malloc(sizeof(double) * (size_t)n),
           *wv = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        wq[i] = (double)aq[i] + dq[i];
        wk[i] = (double)ak[i] + dk[i];
        wv[i] = (double)av[i] + dv[i];
    }
    att_bwd(&c, aq, ak, av, c.R);
    t_close("dq accumulates", aq, wq, n, T_FWD_TOL);
    t_close("dk accumulates", ak, wk, n, T_FWD_TOL);
    t_close("dv accumulates", av, wv, n, T_FWD_TOL);
    // one gradient at a time
    lra_real *g = att_zeros(n);
    att_bwd(&c, g, NULL, NULL, c.R);
    t_close_r("dq alone", g, dq, n, T_FWD_TOL);
    for (int64_t i = 0; i < n; i++) g[i] = 0;
    att_bwd(&c, NULL, g, NULL, c.R);
    t_close_r("dk alone", g, dk, n, T_FWD_TOL);
    for (int64_t i = 0; i < n; i++) g[i] = 0;
    att_bwd(&c, NULL, NULL, g, c.R);
    t_close_r("dv alone", g, dv, n, T_FWD_TOL);
    att_bwd(&c, NULL, NULL, NULL, c.R);  // nothing wanted: a no-op
    t_guard_ok(aq, "dq"); t_guard_ok(ak, "dk"); t_guard_ok(av, "dv"); t_guard_ok(g, "g");
    t_guarded_free(dq); t_guarded_free(dk); t_guarded_free(dv);
    t_guarded_free(aq); t_guarded_free(ak); t_guarded_free(av); t_guarded_free(g);
    free(wq); free(wk); free(wv);
    att_free(&c);
}

// Repeated calls give bit-identical results (no schedule-dependent sums).
static void test_deterministic(void) {
    att_ctx c;
    att_init(&c, 2, 3, 200, 16, 1, 1, 0.1, 55);
    int64_t n = att_n(&c), nr = att_rows(&c);
    att_fwd(&c);
    lra_real *o1 = att_copy(c.out, n), *l1 = att_copy(c.lse, nr);
    lra_real *g1 = att_zeros(n), *g2 = att_zeros(n);
    att_bwd(&c, g1, NULL, NULL, c.R);
    for (int rep = 0; rep < 3; rep++) {
        att_fwd(&c);
        T_CHECK(!memcmp(o1, c.out, sizeof(lra_real) * (size_t)n), "out differs on repeat %d", rep);
        T_CHECK(!memcmp(l1, c.lse, sizeof(lra_real) * (size_t)nr), "lse differs on repeat %d", rep);
    }
    att_bwd(&c, g2, NULL, NULL, c.R);
    T_CHECK(!memcmp(g1, g2, sizeof(lra_real) * (size_t)n), "dq differs on repeat");
    free(o1); free(l1);
    t_guarded_free(g1); t_guarded_free(g2);
    att_free(&c);
}

// A moderately large case against the reference: several query blocks, a
// padded batch element, and the causal variant with dropout.
static void test_large_fwd(void) {
    att_ctx c;
    att_init(&c, 2, 4, 1000, 32, 0, 0, 0, 123);
    c.mask = malloc(2 * 1000);
    for (int j = 0; j < 1000; j++) c.mask[j] = 1, c.mask[1000 + j] = j < 777;
    att_fwd(&c);
    att_check_fwd(&c, T_FWD_TOL);
    t_guard_ok(c.out, "out"); t_guard_ok(c.lse, "lse");
    att_free(&c);
    att_init(&c, 1, 2, 300, 32, 1, 1, 0.1, 124);
    att_fwd(&c);
    att_check_fwd(&c, T_FWD_TOL);
    t_guard_ok(c.out, "out"); t_guard_ok(c.lse, "lse");
    att_free(&c);
}

static const t_case cases[] = {
    { "attention/tiny", test_tiny },
    { "attention/nomask", test_nomask },
    { "attention/padding", test_padding },
    { "attention/causal", test_causal },
    { "attention/causal_padding", test_causal_padding },
    { "attention/dropout", test_dropout },
    { "attention/dropout_rate", test_dropout_rate },
    { "attention/accumulate", test_accumulate },
    { "attention/deterministic", test_deterministic },
    { "attention/large_fwd", test_large_fwd },
};
T_MAIN(cases)
