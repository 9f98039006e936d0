// test_mixer_lru.c: the LRU mixer (models/lru.c): finite-difference
// gradients of input and every parameter, causal and bidirectional, with and
// without padding masks, over ring radii and phases; the recurrent step
// against the scan; initial values (ring, phase, gamma normalisation,
// Glorot-style B and C); parameter names, shapes and groups; configuration
// errors; the lru_params ops; parity with the PyTorch reference files
// (tests/ref/gen_lru.py).
#include "../models/model.h"
#include "mixer_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// FD tolerance: outputs sum up to L states of modes with |lambda| near 1, so
// central differences of small gradient entries carry ~1e-6 relative
// rounding in f64; a wrong formula gives errors of order 1. The float
// build's step (1e-2 relative) moves a phase exp(theta_log) ~ 6 by ~0.06 rad
// per position, beyond the linear range over L = 11 positions: there the
// phases are capped at 0.5 (the f64 build checks the full range).
#ifdef LRA_F64
#define T_LRU_TOL 1e-5
#define T_LRU_PHASE(p) (p)
#else
#define T_LRU_TOL T_GRAD_TOL
#define T_LRU_PHASE(p) (atof(p) > 0.5 ? "0.5" : (p))
#endif

static void grad(const char *N, const char *r_min, const char *r_max, const char *phase, const char *bidir,
                 int masked) {
    lra_kv kv[] = { { "d_state", N, NULL }, { "r_min", r_min, NULL }, { "r_max", r_max, NULL },
                    { "max_phase", T_LRU_PHASE(phase), NULL }, { "bidirectional", bidir, NULL } };
    uint8_t mask[2 * 11];
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 11; l++) mask[b * 11 + l] = l < 11 - 4 * b;
    t_mixer_gradcheck(&(t_mixer_case){ "lru", kv, 5, 4, 2, 11, masked ? mask : NULL, 0, T_LRU_TOL });
}

static void test_grad_causal(void) {
    grad("6", "0", "0.99", "6.28", "false", 0);
    grad("5", "0.5", "0.9", "3.14", "false", 1);
    grad("3", "0.9", "0.999", "0.314", "false", 1);
}

static void test_grad_bidirectional(void) {
    grad("6", "0.4", "0.95", "6.28", "true", 0);
    grad("4", "0.9", "0.999", "0.314", "true", 1);
}

static void test_step(void) {
    static const char *const rmin[] = { "0", "0.9", "0.999" }, *const rmax[] = { "0.99", "0.999", "0.9999" };
    for (int i = 0; i < 3; i++) {
        lra_kv kv[] = { { "d_state", "8", NULL }, { "r_min", rmin[i], NULL }, { "r_max", rmax[i], NULL },
                        { "max_phase", i == 2 ? "0.314" : "6.28", NULL } };
        t_mixer_stepcheck(&(t_mixer_case){ "lru", kv, 4, 5, 2, 300, NULL, 0, 0 }, 1e-5);
    }
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv bi[] = { { "bidirectional", "true", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "lru", bi, 1, 4, 1, 8, 1, &err) == 0, "%s", err.msg);
    T_CHECK(s.m.vt->step_prepare(&s.m, t_backend(), &err) == LRA_EUNSUPPORTED && strstr(err.msg, "causal"),
            "bidirectional step refused: %s", err.msg);
    lra_mixer_solo_free(&s);
}

static double mean_sq(const lra_real *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s / (double)n;
}

// Ring initialisation (LRU Lemma 2): |lambda|^2 uniform on [r_min^2, r_max^2],
// phase uniform on [0, max_phase], gamma = sqrt(1 - |lambda|^2); B parts of
// variance 1/(2D), C parts 1/N, D standard normal.
static void test_init(void) {
    int N = 2000, D = 40;
    lra_kv kv[] = { { "d_state", "2000", NULL }, { "r_min", "0.4", NULL }, { "r_max", "0.9", NULL },
                    { "max_phase", "3.14", NULL }, { "bidirectional", "true", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "lru", kv, 5, D, 1, 4, 3, &err) == 0, "%s", err.msg);
    if (t_case_failures) return;
    double m2 = 0, ph = 0;
    for (int n = 0; n < N; n++) {
        double r = exp(-exp((double)s.m.p[0][n])), th = exp((double)s.m.p[1][n]), g = exp((double)s.m.p[2][n]);
        T_CHECK(r >= 0.4 - 1e-6 && r <= 0.9 + 1e-6, "|lambda[%d]| = %g outside [0.4, 0.9]", n, r);
        T_CHECK(th >= 0 && th <= 3.14 * (1 + 1e-6), "phase[%d] = %g outside [0, 3.14]", n, th);
        T_CHECK(fabs(g - sqrt(1 - r * r)) < 1e-5, "gamma[%d] = %g, want %g", n, g, sqrt(1 - r * r));
        m2 += r * r / N, ph += th / N;
    }
    // E |lambda|^2 = (0.16 + 0.81) / 2, E phase = 1.57; standard errors ~0.003, 0.02
    T_CHECK(fabs(m2 - 0.485) < 0.015, "mean |lambda|^2 = %g, want 0.485", m2);
    T_CHECK(fabs(ph - 1.57) < 0.1, "mean phase = %g, want 1.57", ph);
    double vb = mean_sq(s.m.p[3], (int64_t)N * D), vc = mean_sq(s.m.p[5], (int64_t)D * 2 * N);
    T_CHECK(fabs(vb * 2 * D - 1) < 0.05, "var B_re = %g, want 1/(2D) = %g", vb, 0.5 / D);
    T_CHECK(fabs(mean_sq(s.m.p[4], (int64_t)N * D) * 2 * D - 1) < 0.05, "var B_im");
    T_CHECK(fabs(vc * N - 1) < 0.05, "var C_re = %g, want 1/N", vc);
    T_CHECK(fabs(mean_sq(s.m.p[6], (int64_t)D * 2 * N) * N - 1) < 0.05, "var C_im");
    static const char *const names[] = { "nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D" };
    static const lra_group groups[] = { LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM,
                                        LRA_GROUP_SSM, LRA_GROUP_DECAY, LRA_GROUP_DECAY, LRA_GROUP_DECAY };
    static const int64_t shapes[][2] = { { 2000, 0 }, { 2000, 0 }, { 2000, 0 }, { 2000, 40 },
                                         { 2000, 40 }, { 40, 4000 }, { 40, 4000 }, { 40, 0 } };
    T_CHECK(s.m.n_params == 8, "8 parameters, got %d", s.m.n_params);
    for (int k = 0; k < s.m.n_params && k < 8; k++) {
        T_CHECK(!strcmp(s.specs[k].name, names[k]) && s.specs[k].group == groups[k], "%s: group %s", s.specs[k].name,
                lra_group_names[s.specs[k].group]);
        T_CHECK(s.specs[k].ndim == (shapes[k][1] ? 2 : 1) && s.specs[k].shape[0] == shapes[k][0] &&
                (!shapes[k][1] || s.specs[k].shape[1] == shapes[k][1]), "%s: shape", s.specs[k].name);
    }
    char desc[256];
    T_CHECK(s.m.vt->describe(&s.m, desc, sizeof desc) == 0 &&
            !strcmp(desc, "d_state=2000;r_min=0.40000000000000002;r_max=0.90000000000000002;max_phase=3.1400000000000001;"
                          "bidirectional=true"), "describe: %s", desc);
    lra_mixer_solo_free(&s);
}

static void test_config_errors(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv ring[] = { { "r_min", "0.9", "e.yaml:3:4" }, { "r_max", "0.5", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "lru", ring, 2, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "e.yaml:3:4") && strstr(err.msg, "r_max"), "ring: %s", err.msg);
    lra_kv big[] = { { "r_max", "1.5", "e.yaml:4:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "lru", big, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "r_max"), "r_max > 1: %s", err.msg);
    lra_kv unknown[] = { { "d_hidden", "8", "e.yaml:5:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "lru", unknown, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "d_hidden"), "unknown key: %s", err.msg);
}

// The model's defaults for mixer=lru (lra.md 5.4): Flax BatchNorm prenorm,
// tanh GELU, GLU stage, lecun-normal Dense layers, no final norm; explicit
// keys still win, and the S4 block keeps its final norm.
static void test_model_defaults(void) {
    lra_model_config c;
    lra_err err = { 0 };
    lra_kv lru[] = { { "mixer", "lru", NULL } };
    T_CHECK(lra_model_config_parse(&c, lru, 1, &err) == 0, "%s", err.msg);
    T_CHECK(c.norm.kind == LRA_NORM_BATCH && c.prenorm && !c.final_norm && c.stage == LRA_STAGE_GLU, "block");
    T_CHECK(c.norm.momentum == 0.01f && !c.norm.unbiased_running && c.norm.eps == 1e-5f, "Flax BatchNorm");
    T_CHECK(c.gelu == LRA_ACT_GELU_TANH && c.head_act == LRA_ACT_GELU_TANH, "tanh GELU");
    T_CHECK(c.linear_init == LRA_LINEAR_FLAX && c.head_init == LRA_LINEAR_FLAX, "Flax Dense init");
    lra_kv fin[] = { { "mixer", "lru", NULL }, { "final_norm", "1", NULL } };
    T_CHECK(lra_model_config_parse(&c, fin, 2, &err) == 0 && c.final_norm, "explicit final_norm: %s", err.msg);
    lra_kv s4d[] = { { "mixer", "s4d", NULL } };
    T_CHECK(lra_model_config_parse(&c, s4d, 1, &err) == 0 && c.final_norm && c.norm.unbiased_running &&
            c.norm.momentum == 0.1f && c.gelu == LRA_ACT_GELU_ERF, "S4 block defaults unchanged");
}

// ---- the lru_params ops against their definition and finite differences ----------

typedef struct {
    int N, H, CH;
    lra_real *in[7];        // nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im
    lra_real *out[3], *R[3]; // lambda, Bw, Cw and their projections
} lp;

static int64_t lp_in_n(const lp *p, int i) {
    return i < 3 ? p->N : i < 5 ? (int64_t)p->N * p->H : (int64_t)p->H * p->CH * p->N;
}
static int64_t lp_out_n(const lp *p, int i) {
    return i == 0 ? 2 * (int64_t)p->N : i == 1 ? 2 * (int64_t)p->N * p->H : 2 * (int64_t)p->H * p->CH * p->N;
}

static double lp_loss(void *ctx) {
    lp *p = ctx;
    lra_backend *be = t_backend();
    be->lru_params_fwd(be, p->out[0], p->out[1], p->out[2], p->in[0], p->in[1], p->in[2], p->in[3], p->in[4],
                       p->in[5], p->in[6], p->N, p->H, p->CH);
    double s = 0;
    for (int i = 0; i < 3; i++) s += t_project(p->out[i], p->R[i], lp_out_n(p, i));
    return s;
}

static void test_params_op(void) {
    static const int cases[][3] = { { 1, 1, 1 }, { 5, 3, 1 }, { 4, 6, 2 } };
    lra_backend *be = t_backend();
    for (int k = 0; k < 3; k++) {
        lp p = { cases[k][0], cases[k][1], cases[k][2], { 0 }, { 0 }, { 0 } };
        static const double lo[] = { -3, -2, -2, -1, -1, -1, -1 }, hi[] = { 1, 1.8, 0, 1, 1, 1, 1 };
        lra_real *g[7];
        for (int i = 0; i < 7; i++) {
            p.in[i] = calloc((size_t)lp_in_n(&p, i), sizeof(lra_real));
            g[i] = calloc((size_t)lp_in_n(&p, i), sizeof(lra_real));
            t_rand_fill(p.in[i], lp_in_n(&p, i), 40 + 10 * k + i, lo[i], hi[i]);
        }
        for (int i = 0; i < 3; i++) {
            p.out[i] = calloc((size_t)lp_out_n(&p, i), sizeof(lra_real));
            p.R[i] = calloc((size_t)lp_out_n(&p, i), sizeof(lra_real));
            t_rand_fill(p.R[i], lp_out_n(&p, i), 90 + 10 * k + i, -1, 1);
        }
        lp_loss(&p);
        int N = p.N, H = p.H, M = p.CH * p.N;
        for (int n = 0; n < N; n++) {  // the definition in double
            double r = exp(-exp((double)p.in[0][n])), th = exp((double)p.in[1][n]), gm = exp((double)p.in[2][n]);
            T_CHECK(fabs(p.out[0][2 * n] - r * cos(th)) < T_FWD_TOL && fabs(p.out[0][2 * n + 1] - r * sin(th)) < T_FWD_TOL,
                    "lambda[%d]", n);
            for (int h = 0; h < H; h++) {
                T_CHECK(fabs(p.out[1][(2 * n) * H + h] - gm * p.in[3][n * H + h]) < T_FWD_TOL, "Bw re [%d][%d]", n, h);
                T_CHECK(fabs(p.out[1][(2 * n + 1) * H + h] - gm * p.in[4][n * H + h]) < T_FWD_TOL, "Bw im [%d][%d]", n, h);
            }
        }
        for (int i = 0; i < H * M; i++)
            T_CHECK(p.out[2][2 * i] == p.in[5][i] && p.out[2][2 * i + 1] == -p.in[6][i], "Cw[%d]", i);
        be->lru_params_bwd(be, g[0], g[1], g[2], g[3], g[4], g[5], g[6], p.R[0], p.R[1], p.R[2], p.in[0], p.in[1],
                           p.in[2], p.in[3], p.in[4], N, H, p.CH);
        static const char *const names[] = { "dnu_log", "dtheta_log", "dgamma_log", "dB_re", "dB_im", "dC_re", "dC_im" };
        for (int i = 0; i < 7; i++) t_gradcheck(names[i], lp_loss, &p, p.in[i], lp_in_n(&p, i), g[i], T_LRU_TOL);
        // accumulation; NULL upstream gradients contribute nothing
        lra_real *g2 = calloc((size_t)N, sizeof(lra_real));
        memcpy(g2, g[0], sizeof(lra_real) * N);
        be->lru_params_bwd(be, g2, NULL, NULL, NULL, NULL, NULL, NULL, p.R[0], NULL, NULL, p.in[0], p.in[1], p.in[2],
                           p.in[3], p.in[4], N, H, p.CH);
        for (int n = 0; n < N; n++) T_CHECK(fabs(g2[n] - 2 * g[0][n]) <= 1e-5 * (1 + fabs(g[0][n])), "dnu accumulates");
        memset(g2, 0, sizeof(lra_real) * N);
        be->lru_params_bwd(be, NULL, NULL, g2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, p.in[0], p.in[1], p.in[2],
                           p.in[3], p.in[4], N, H, p.CH);
        for (int n = 0; n < N; n++) T_CHECK(g2[n] == 0, "no upstream gradient, dgamma[%d] = %g", n, g2[n]);
        free(g2);
        for (int i = 0; i < 7; i++) free(p.in[i]), free(g[i]);
        for (int i = 0; i < 3; i++) free(p.out[i]), free(p.R[i]);
    }
}

// Float64 PyTorch vs the f64 build agree to rounding (1e-10); the float
// build to the bounds (1e-4 outputs, 1e-3 gradients).
static void test_reference(void) {
    static const char *const files[] = { "tests/ref/lru_causal.safetensors", "tests/ref/lru_causal_mask.safetensors",
                                         "tests/ref/lru_bidir_mask.safetensors" };
    for (int i = 0; i < 3; i++)
        t_mixer_refcheck(files[i], sizeof(lra_real) == 8 ? 1e-10 : 1e-4, sizeof(lra_real) == 8 ? 1e-9 : 1e-3);
}

static const t_case cases[] = {
    { "mixer/lru/grad_causal", test_grad_causal },
    { "mixer/lru/grad_bidirectional", test_grad_bidirectional },
    { "mixer/lru/step", test_step },
    { "mixer/lru/init", test_init },
    { "mixer/lru/config_errors", test_config_errors },
    { "mixer/lru/model_defaults", test_model_defaults },
    { "mixer/lru/params_op", test_params_op },
    { "mixer/lru/reference", test_reference },
};
T_MAIN(cases)
