// test_mixer_mega.c: the MEGA mixer (models/mega.c) and its two ops
// (ema_kernel_*, mega_attn_*): op forwards against direct double sums (the
// EMA kernel also against its recurrence), op backwards and the whole layer
// by finite differences over softmax/laplace, chunked and full attention,
// both EMA directions, truncation, pre/post norms of each kind, dropout and
// padding masks; thread invariance; initial values, names and groups;
// configuration errors; parity with the PyTorch reference files
// (tests/ref/gen_mega.py).
#include "mixer_check.h"

#include <math.h>
#include <string.h>

// FD tolerance of the layer: products of gates and a softmax over a few
// keys; f64 central differences are good to ~1e-8 relative.
// FD step 1e-3 in f64: the loss carries the O(1) residual X next to small
// attention terms (down to 1e-9), whose differences drown in rounding at the
// default 1e-6; the truncation error of the larger step is ~1e-5 relative.
#ifdef LRA_F64
#define T_MEGA_TOL  1e-4
#define T_MEGA_STEP 1e-3
#else
#define T_MEGA_TOL  T_GRAD_TOL
#define T_MEGA_STEP 0
#endif

static double sigm(double x) { return 1 / (1 + exp(-x)); }

// ---- ema_kernel ---------------------------------------------------------------------

typedef struct { int H, N, CH, Lk, L; } ema_case;
static const ema_case ema_cases[] = { { 3, 4, 1, 9, 9 }, { 2, 3, 2, 7, 7 }, { 3, 2, 2, 4, 10 }, { 1, 5, 1, 3, 8 } };

typedef struct {
    const ema_case *c;
    lra_real *p[4], *K, *R;
} ema_fd;

static double ema_loss(void *v) {
    ema_fd *f = v;
    const ema_case *c = f->c;
    t_backend()->ema_kernel_fwd(t_backend(), f->K, f->p[0], f->p[1], f->p[2], f->p[3], c->H, c->N, c->CH, c->Lk, c->L,
                                (lra_real)0.5);
    return t_project(f->K, f->R, (int64_t)c->H * c->CH * c->L);
}

// k_r[l] by the recurrence h_t = p beta x_t + q h_{t-1}, y = 0.5 gamma h (unit impulse x).
static double ema_tap(const lra_real *const *p, int64_t r, int N, int l) {
    double k = 0;
    for (int n = 0; n < N; n++) {
        int64_t i = r * N + n;
        double pp = sigm(p[0][i]), q = 1 - pp * sigm(p[1][i]), h = 0;
        for (int t = 0; t <= l; t++) h = (t == 0 ? pp * p[2][i] : 0) + q * h;
        k += 0.5 * p[3][i] * h;
    }
    return k;
}

static void test_ema_kernel(void) {
    lra_backend *be = t_backend();
    for (size_t s = 0; s < sizeof ema_cases / sizeof ema_cases[0]; s++) {
        const ema_case *c = &ema_cases[s];
        int64_t RN = (int64_t)c->CH * c->H * c->N, nK = (int64_t)c->H * c->CH * c->L;
        ema_fd f = { .c = c };
        for (int i = 0; i < 4; i++) {
            f.p[i] = t_guarded(RN);
            t_rand_fill(f.p[i], RN, 10 * s + i, i < 2 ? -2 : -1, i < 2 ? 2 : 1);
        }
        f.K = t_guarded(nK);
        f.R = t_guarded(nK);
        t_rand_fill(f.R, nK, 99 + s, -1, 1);
        ema_loss(&f);
        double *ref = calloc((size_t)nK, sizeof *ref);
        int Lt = c->Lk < c->L ? c->Lk : c->L;
        for (int h = 0; h < c->H; h++)
            for (int l = 0; l < c->L; l++) {
                double k1 = l < Lt ? ema_tap((const lra_real *const *)f.p, h, c->N, l) : 0;
                if (c->CH == 1) { ref[(int64_t)h * c->L + l] = k1; continue; }
                double k2l1 = l + 1 < Lt ? ema_tap((const lra_real *const *)f.p, c->H + h, c->N, l + 1) : 0;
                ref[(int64_t)h * 2 * c->L + l] = k1 + (l == 0 ? ema_tap((const lra_real *const *)f.p, c->H + h, c->N, 0) : 0);
                ref[(int64_t)h * 2 * c->L + c->L + l] = k2l1;
            }
        t_close("ema_kernel_fwd vs recurrence", f.K, ref, nK, sizeof(lra_real) == 8 ? 1e-12 : 1e-5);
        t_guard_ok(f.K, "K");
        lra_real *g[4];
        for (int i = 0; i < 4; i++) {
            g[i] = t_guarded(RN);
            be->zero(be, g[i], (size_t)RN * sizeof(lra_real));
        }
        be->ema_kernel_bwd(be, g[0], g[1], g[2], g[3], f.R, f.p[0], f.p[1], f.p[2], f.p[3], c->H, c->N, c->CH, c->Lk,
                           c->L, (lra_real)0.5);
        static const char *const names[4] = { "ema_kernel_bwd ddelta", "ema_kernel_bwd dalpha", "ema_kernel_bwd dbeta",
                                               "ema_kernel_bwd dgamma" };
        for (int i = 0; i < 4; i++) {
            t_gradcheck(names[i], ema_loss, &f, f.p[i], RN, g[i], T_GRAD_TOL);
            t_guard_ok(g[i], names[i]);
            t_guarded_free(g[i]);
        }
        for (int i = 0; i < 4; i++) t_guarded_free(f.p[i]);  // after every check: the loss reads all four
        free(ref);
        t_guarded_free(f.K);
        t_guarded_free(f.R);
    }
}

// ---- mega_attn ------------------------------------------------------------------------

typedef struct { int B, NK, C, M, kind, masked; } att_case;
static const att_case att_cases[] = { { 2, 1, 6, 6, 0, 0 }, { 2, 2, 4, 5, 0, 1 }, { 1, 3, 3, 7, 1, 0 },
                                      { 2, 2, 5, 5, 1, 1 }, { 1, 1, 40, 40, 0, 1 }, { 2, 1, 37, 50, 1, 1 } };

typedef struct {
    const att_case *c;
    lra_real *S, *w, *A, *R;
    uint8_t *mask;
} att_fd;

static double att_loss(void *v) {
    att_fd *f = v;
    const att_case *c = f->c;
    t_backend()->mega_attn_fwd(t_backend(), f->A, f->S, f->w, f->mask, c->B, c->NK, c->C, c->M, (lra_real)0.7, c->kind);
    return t_project(f->A, f->R, (int64_t)c->B * c->NK * c->C * c->C);
}

// Direct double weights of one block row.
static void att_ref_row(double *out, const att_case *c, const att_fd *f, int64_t blk, int i) {
    int C = c->C, nv = 0;
    int m[64];
    for (int j = 0; j < C; j++) nv += m[j] = f->mask ? f->mask[blk * C + j] : 1;
    if (c->kind == 0 && nv == 0)
        for (int j = 0; j < C; j++) m[j] = 1;
    double mx = -1e300, sum = 0, x[64];
    for (int j = 0; j < C; j++) {
        double S = f->S[(blk * C + i) * C + j], b = f->w[c->M - 1 + j - i];
        x[j] = c->kind == 0 ? 0.7 * S + b : S / (nv > 0 ? nv : 1) + b;
        if (m[j] && x[j] > mx) mx = x[j];
    }
    for (int j = 0; j < C; j++) {
        if (c->kind == 1) {
            out[j] = m[j] ? 0.5 * (1 + erf((x[j] - 0.707107) / (0.282095 * sqrt(2.0)))) : 0;
            continue;
        }
        out[j] = m[j] ? exp(x[j] - mx) : 0;
        sum += out[j];
    }
    for (int j = 0; c->kind == 0 && j < C; j++) out[j] /= sum;
}

static void test_mega_attn(void) {
    lra_backend *be = t_backend();
    for (size_t s = 0; s < sizeof att_cases / sizeof att_cases[0]; s++) {
        const att_case *c = &att_cases[s];
        int64_t nA = (int64_t)c->B * c->NK * c->C * c->C, nw = 2 * (int64_t)c->M - 1, L = (int64_t)c->NK * c->C;
        att_fd f = { .c = c };
        f.S = t_guarded(nA);
        f.A = t_guarded(nA);
        f.R = t_guarded(nA);
        f.w = t_guarded(nw);
        t_rand_fill(f.S, nA, 300 + s, -2, 2);
        t_rand_fill(f.R, nA, 310 + s, -1, 1);
        t_rand_fill(f.w, nw, 320 + s, -0.5, 0.5);
        if (c->masked) {  // example 0 keeps its first L - 3 keys, example 1 none of block 0's
            f.mask = malloc((size_t)(c->B * L));
            for (int b = 0; b < c->B; b++)
                for (int64_t l = 0; l < L; l++) f.mask[b * L + l] = b == 0 ? l < L - 3 : l >= c->C;
        }
        att_loss(&f);
        double *ref = malloc(sizeof(double) * (size_t)nA);
        for (int64_t blk = 0; blk < (int64_t)c->B * c->NK; blk++)
            for (int i = 0; i < c->C; i++) att_ref_row(ref + (blk * c->C + i) * c->C, c, &f, blk, i);
        t_close("mega_attn_fwd vs direct", f.A, ref, nA, sizeof(lra_real) == 8 ? 1e-12 : 1e-5);
        t_guard_ok(f.A, "A");
        lra_real *dS = t_guarded(nA), *dw = t_guarded(nw);
        be->zero(be, dS, (size_t)nA * sizeof(lra_real));
        be->zero(be, dw, (size_t)nw * sizeof(lra_real));
        be->mega_attn_bwd(be, dS, dw, f.R, f.A, f.S, f.w, f.mask, c->B, c->NK, c->C, c->M, (lra_real)0.7, c->kind);
        double step = T_MEGA_STEP > 0 ? 1e-4 : T_FD_STEP;  // scores of size 2, sums of C terms
        t_gradcheck_step_at(__FILE__, __LINE__, "mega_attn_bwd dS", att_loss, &f, f.S, nA, dS, T_GRAD_TOL, step);
        t_gradcheck_step_at(__FILE__, __LINE__, "mega_attn_bwd dw", att_loss, &f, f.w, nw, dw, T_GRAD_TOL, step);
        t_guard_ok(dS, "dS");
        t_guard_ok(dw, "dw");
        // the same with one thread: bitwise equal (fixed-order bias sums)
        int saved = t_threads_get();
        lra_real *dw1 = t_guarded(nw);
        be->zero(be, dw1, (size_t)nw * sizeof(lra_real));
        t_threads_set(1);
        be->mega_attn_bwd(be, NULL, dw1, f.R, f.A, f.S, f.w, f.mask, c->B, c->NK, c->C, c->M, (lra_real)0.7, c->kind);
        t_threads_set(saved);
        be->zero(be, dw, (size_t)nw * sizeof(lra_real));
        be->mega_attn_bwd(be, NULL, dw, f.R, f.A, f.S, f.w, f.mask, c->B, c->NK, c->C, c->M, (lra_real)0.7, c->kind);
        T_CHECK(memcmp(dw, dw1, (size_t)nw * sizeof(lra_real)) == 0, "dw depends on the thread count");
        t_guarded_free(dw1);
        t_guarded_free(dS);
        t_guarded_free(dw);
        t_guarded_free(f.S);
        t_guarded_free(f.A);
        t_guarded_free(f.R);
        t_guarded_free(f.w);
        free(f.mask);
        free(ref);
    }
}

// ---- the layer ----------------------------------------------------------------------------

// The layer's finite differences run in the f64 build: in float the
// attention terms (down to 1e-9 at these sizes) are below the FD resolution.
static void grad(const char *attn, const char *chunk, const char *bidir, const char *trunc, const char *norm,
                 const char *prenorm, int masked, int training) {
    lra_kv kv[] = { { "ndim", "3", NULL }, { "z_dim", "3", NULL }, { "v_dim", "5", NULL }, { "attn", attn, NULL },
                    { "chunk", chunk, NULL }, { "bidirectional", bidir, NULL }, { "truncation", trunc, NULL },
                    { "norm", norm, NULL }, { "prenorm", prenorm, NULL }, { "dropout", "0.2", NULL } };
    enum { B = 2, L = 8 };
    uint8_t mask[B * L];
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) mask[b * L + l] = l < L - 5 * b;
    t_mixer_gradcheck_opt(&(t_mixer_case){ "mega", kv, 10, 4, B, L, masked ? mask : NULL, training, T_MEGA_TOL }, 1,
                          T_MEGA_STEP);
}

static void test_grad_softmax(void) {
    if (sizeof(lra_real) < 8) T_SKIP("layer finite differences run in the f64 build");
    grad("softmax", "-1", "true", "0", "layer", "false", 0, 0);
    grad("softmax", "-1", "true", "0", "scale", "false", 1, 0);
    grad("softmax", "4", "false", "3", "layer", "true", 1, 0);
    grad("softmax", "4", "true", "0", "none", "false", 1, 1);
}

static void test_grad_laplace(void) {
    if (sizeof(lra_real) < 8) T_SKIP("layer finite differences run in the f64 build");
    grad("laplace", "-1", "true", "0", "batch", "true", 0, 0);
    grad("laplace", "4", "true", "5", "batch", "true", 1, 1);
    grad("laplace", "2", "false", "0", "layer", "false", 1, 0);
    grad("laplace", "-1", "true", "0", "scale", "true", 1, 0);
}

// A sequence shorter than one chunk attends over all of it (fairseq).
static void test_short_chunk(void) {
    if (sizeof(lra_real) < 8) T_SKIP("layer finite differences run in the f64 build");
    lra_kv kv[] = { { "ndim", "2", NULL }, { "z_dim", "3", NULL }, { "v_dim", "4", NULL }, { "chunk", "16", NULL } };
    t_mixer_gradcheck_opt(&(t_mixer_case){ "mega", kv, 4, 4, 1, 6, NULL, 0, T_MEGA_TOL }, 1, T_MEGA_STEP);
}

static void test_init(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv kv[] = { { "ndim", "4", NULL }, { "z_dim", "6", NULL }, { "chunk", "8", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "mega", kv, 3, 8, 1, 32, 3, &err) == 0, "%s", err.msg);
    if (t_case_failures) return;
    static const char *const names[] = { "move.delta", "move.alpha", "move.beta", "move.gamma", "move.omega",
                                         "v_proj.weight", "v_proj.bias", "mx_proj.weight", "mx_proj.bias",
                                         "h_proj.weight", "h_proj.bias", "gamma", "beta",
                                         "rel_pos_bias.rel_pos_bias", "norm.norm.weight", "norm.norm.bias" };
    static const int64_t numel[] = { 64, 64, 64, 64, 8, 128, 16, 304, 38, 128, 8, 12, 12, 15, 8, 8 };
    T_CHECK(s.m.n_params == 16, "16 parameter tensors, got %d", s.m.n_params);
    for (int i = 0; i < s.m.n_params && i < 16; i++)
        T_CHECK(!strcmp(s.specs[i].name, names[i]) && lra_spec_numel(&s.specs[i]) == numel[i], "spec %d: %s (%lld)",
                i, s.specs[i].name, (long long)lra_spec_numel(&s.specs[i]));
    T_CHECK(s.specs[0].ndim == 3 && s.specs[0].shape[0] == 16 && s.specs[0].shape[2] == 1, "move.delta (2D, N, 1)");
    T_CHECK(s.specs[6].group == LRA_GROUP_NO_DECAY, "biases without decay");
    double mb = 0, ms = 0;
    for (int i = 0; i < 64; i++) {
        double want = i % 4 % 2 ? -1 : 1;
        T_CHECK(fabs(s.m.p[2][i] - want) < 0.15, "move.beta[%d] = %g near %g", i, s.m.p[2][i], want);
        ms += s.m.p[0][i] * s.m.p[0][i];
    }
    for (int i = 0; i < 38; i++) mb += fabs(s.m.p[8][i]);
    T_CHECK(mb == 0, "mx_proj.bias starts at 0");
    T_CHECK(sqrt(ms / 64) > 0.1 && sqrt(ms / 64) < 0.35, "move.delta std %g near 0.2", sqrt(ms / 64));
    lra_mixer_solo_free(&s);
}

static void test_config_errors(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv bad[] = { { "attn", "relu", "e.yaml:3:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "mega", bad, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "e.yaml:3:4") && strstr(err.msg, "softmax"), "attn: %s", err.msg);
    lra_kv mp[] = { { "max_positions", "4", "e.yaml:4:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "mega", mp, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "max_positions"), "max_positions: %s", err.msg);
    lra_kv ch[] = { { "chunk", "3", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "mega", ch, 1, 4, 1, 8, 1, &err) == 0, "%s", err.msg);
    lra_real x[32] = { 0 }, y[32];
    lra_ctx ctx = { .be = t_backend(), .B = 1, .L = 8 };
    T_CHECK(s.m.vt->forward(&s.m, &ctx, y, x, &err) == LRA_EINVAL && strstr(err.msg, "multiple"), "chunk: %s",
            err.msg);
    lra_mixer_solo_free(&s);
}

// Float64 PyTorch vs the f64 build agree to rounding (1e-10); the float
// build to the bounds (1e-4 outputs, 1e-3 gradients).
static void test_reference(void) {
    static const char *const files[] = { "tests/ref/mega_softmax_bidir_layer.safetensors",
                                         "tests/ref/mega_laplace_chunk_batch.safetensors",
                                         "tests/ref/mega_softmax_chunk_causal_scale.safetensors" };
    for (int i = 0; i < 3; i++)
        t_mixer_refcheck(files[i], sizeof(lra_real) == 8 ? 1e-10 : 1e-4, sizeof(lra_real) == 8 ? 1e-9 : 1e-3);
}

static const t_case cases[] = {
    { "mixer/mega/ema_kernel", test_ema_kernel },
    { "mixer/mega/attn_weights", test_mega_attn },
    { "mixer/mega/grad_softmax", test_grad_softmax },
    { "mixer/mega/grad_laplace", test_grad_laplace },
    { "mixer/mega/short_chunk", test_short_chunk },
    { "mixer/mega/init", test_init },
    { "mixer/mega/config_errors", test_config_errors },
    { "mixer/mega/reference", test_reference },
};
T_MAIN(cases)
