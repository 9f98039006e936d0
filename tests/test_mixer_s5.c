// test_mixer_s5.c: the S5 mixer (models/s5.c): finite-difference gradients
// of input and every parameter for ZOH and bilinear, with and without
// conjugate symmetry, both bidirectional layouts (C1/C2 and the stacked
// complex_normal C), clip_eigs and padding masks; the recurrent step against
// the scan; initial values (HiPPO-N blocks, step sizes, V^-1 B); the
// parameter groups of each opt_config; configuration errors; parity with the
// PyTorch reference files (tests/ref/gen_s5.py).
#include "mixer_check.h"
#include "../models/model.h"

#include <math.h>
#include <string.h>

// The output sums L states of size ~|B u|/(1 - |Lbar|); central differences
// of small entries carry ~1e-7 relative rounding in f64.
#ifdef LRA_F64
#define T_S5_TOL 1e-5
#else
#define T_S5_TOL T_GRAD_TOL
#endif

static void grad(const char *disc, const char *conj, const char *bidir, const char *c_init, const char *clip,
                 int masked) {
    lra_kv kv[] = { { "ssm_size", "8", NULL }, { "blocks", "2", NULL }, { "disc", disc, NULL },
                    { "conj_sym", conj, NULL }, { "bidirectional", bidir, NULL }, { "C_init", c_init, NULL },
                    { "clip_eigs", clip, NULL }, { "dt_min", "0.01", NULL }, { "dt_max", "0.3", NULL } };
    uint8_t mask[2 * 11];
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 11; l++) mask[b * 11 + l] = l < 11 - 4 * b;
    t_mixer_gradcheck(&(t_mixer_case){ "s5", kv, 9, 5, 2, 11, masked ? mask : NULL, 0, T_S5_TOL });
}

static void test_grad_zoh(void) {
    grad("zoh", "true", "false", "trunc_standard_normal", "false", 0);
    grad("zoh", "true", "true", "lecun_normal", "false", 1);
    grad("zoh", "false", "false", "complex_normal", "false", 1);
}

static void test_grad_bilinear(void) {
    grad("bilinear", "true", "false", "lecun_normal", "false", 1);
    grad("bilinear", "false", "true", "trunc_standard_normal", "false", 0);
    grad("bilinear", "true", "true", "complex_normal", "false", 1);
}

// clip_eigs with eigenvalues on both sides of the clip: the clipped ones
// get no gradient, the others the full one.
static void test_grad_clip(void) {
    lra_kv kv[] = { { "ssm_size", "8", NULL }, { "blocks", "1", NULL }, { "clip_eigs", "true", NULL },
                    { "bidirectional", "true", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", kv, 4, 3, 1, 6, 5, &err) == 0, "%s", err.msg);
    if (t_case_failures) return;
    s.m.p[0][0] = 0.3f, s.m.p[0][1] = -1e-5f;  // clipped: forward equals Re = -1e-4
    lra_kv kv2[] = { { "ssm_size", "8", NULL }, { "blocks", "1", NULL }, { "clip_eigs", "false", NULL },
                     { "bidirectional", "true", NULL } };
    lra_mixer_solo u;
    T_CHECK(lra_mixer_solo_new(&u, t_backend(), "s5", kv2, 4, 3, 1, 6, 5, &err) == 0, "%s", err.msg);
    memcpy(u.params, s.params, (size_t)s.n_real * sizeof(lra_real));
    u.m.p[0][0] = u.m.p[0][1] = -1e-4f;
    lra_real x[18], y1[18], y2[18], dy[18], dx[18] = { 0 };
    t_rand_fill(x, 18, 3, -1, 1);
    t_rand_fill(dy, 18, 4, -1, 1);
    lra_ctx ctx = { .be = t_backend(), .B = 1, .L = 6 };
    s.m.vt->forward(&s.m, &ctx, y1, x, &err);
    u.m.vt->forward(&u.m, &ctx, y2, x, &err);
    t_close_r("clipped eigenvalues act as Re = -1e-4", y1, y2, 18, 1e-6);
    memset(s.grads, 0, (size_t)s.n_real * sizeof(lra_real));
    s.m.vt->backward(&s.m, &ctx, dx, dy, x, &err);
    T_CHECK(s.m.g[0][0] == 0 && s.m.g[0][1] == 0 && s.m.g[0][2] != 0, "no gradient where clipped");
    T_CHECK(s.m.g[1][0] != 0, "Im Lambda still trained");
    lra_mixer_solo_free(&s);
    lra_mixer_solo_free(&u);
    grad("zoh", "true", "false", "lecun_normal", "true", 1);
}

static void test_step(void) {
    static const char *const discs[] = { "zoh", "bilinear" }, *const conj[] = { "true", "false" };
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 2; c++) {
            lra_kv kv[] = { { "ssm_size", "16", NULL }, { "blocks", "2", NULL }, { "disc", discs[d], NULL },
                            { "conj_sym", conj[c], NULL } };
            // 1e-5 of max |y|
            t_mixer_stepcheck(&(t_mixer_case){ "s5", kv, 4, 5, 2, 300, NULL, 0, 0 }, 1e-5);
        }
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv bi[] = { { "bidirectional", "true", NULL }, { "ssm_size", "8", NULL }, { "blocks", "1", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", bi, 3, 4, 1, 8, 1, &err) == 0, "%s", err.msg);
    T_CHECK(s.m.vt->step_prepare(&s.m, t_backend(), &err) == LRA_EUNSUPPORTED && strstr(err.msg, "causal"),
            "bidirectional step refused: %s", err.msg);
    lra_mixer_solo_free(&s);
}

// Lambda: the LegS normal-part spectrum of each block (models.md 4, N = 8:
// Im = -19.857, -5.354, -1.958, -0.4275, Re = -1/2), repeated over J = 3
// blocks; log_step in [log dt_min, log dt_max]; B~ = V* B with B ~ lecun
// normal (fan_in P): sum |B~|^2 over modes of a block = sum B^2 / 2 ... on
// average, so the mean of |B~|^2 is about 1/P (conj_sym halves the modes but
// keeps V's columns orthonormal: E|B~_n|^2 = 1/P).
static void test_init(void) {
    static const double im8[4] = { -19.8574, -5.3542, -1.9578, -0.4275 };
    lra_kv kv[] = { { "ssm_size", "24", NULL }, { "blocks", "3", NULL }, { "dt_min", "0.002", NULL },
                    { "dt_max", "0.05", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    int H = 64;
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", kv, 4, H, 1, 8, 3, &err) == 0, "%s", err.msg);
    if (t_case_failures) return;
    for (int n = 0; n < 12; n++) {
        T_CHECK(fabs(s.m.p[0][n] + 0.5) < 1e-6, "Lambda_re[%d] = %g", n, (double)s.m.p[0][n]);
        T_CHECK(fabs(s.m.p[1][n] - im8[n % 4]) < 1e-3, "Lambda_im[%d] = %g, want %g", n, (double)s.m.p[1][n], im8[n % 4]);
        double dt = exp((double)s.m.p[3][n]);
        T_CHECK(dt >= 0.002 * (1 - 1e-5) && dt <= 0.05 * (1 + 1e-5), "dt[%d] = %g", n, dt);
    }
    double b2 = 0, c2 = 0, d2 = 0;
    for (int64_t i = 0; i < 2 * 12 * H; i++) b2 += (double)s.m.p[2][i] * s.m.p[2][i], c2 += (double)s.m.p[5][i] * s.m.p[5][i];
    for (int h = 0; h < H; h++) d2 += (double)s.m.p[4][h] * s.m.p[4][h];
    b2 /= 12 * H, c2 /= 12 * H, d2 /= H;
    // E|B~|^2 = 1/P = 0.0417; trunc_standard_normal C: E|C~|^2 = 2/P = 0.083; D ~ N(0, 1)
    T_CHECK(fabs(b2 - 1.0 / 24) < 0.25 / 24, "mean |B~|^2 = %g, want 1/P", b2);
    T_CHECK(fabs(c2 - 2.0 / 24) < 0.5 / 24, "mean |C~|^2 = %g, want 2/P", c2);
    T_CHECK(fabs(d2 - 1) < 0.4, "mean D^2 = %g", d2);
    static const char *const names[] = { "Lambda_re", "Lambda_im", "B", "log_step", "D", "C" };
    for (int k = 0; k < 6; k++) T_CHECK(!strcmp(s.specs[k].name, names[k]), "spec %d: %s", k, s.specs[k].name);
    T_CHECK(s.specs[2].ndim == 3 && s.specs[2].shape[0] == 12 && s.specs[2].shape[1] == H && s.specs[2].shape[2] == 2,
            "B (Pc, H, 2)");
    T_CHECK(s.specs[5].shape[0] == H && s.specs[5].shape[1] == 12 && s.specs[3].shape[1] == 1, "C (H, Pc, 2), log_step (Pc, 1)");
    lra_mixer_solo_free(&s);
    // bidirectional: C1, C2, or one stacked C for complex_normal (each part N(0, 1/2))
    lra_kv bi[] = { { "ssm_size", "8", NULL }, { "blocks", "1", NULL }, { "bidirectional", "true", NULL },
                    { "C_init", "complex_normal", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", bi, 4, 256, 1, 8, 3, &err) == 0, "%s", err.msg);
    T_CHECK(s.m.n_params == 6 && !strcmp(s.specs[5].name, "C") && s.specs[5].shape[1] == 8, "stacked C (H, 2Pc, 2)");
    c2 = 0;
    for (int64_t i = 0; i < 2 * 8 * 256; i++) c2 += (double)s.m.p[5][i] * s.m.p[5][i];
    T_CHECK(fabs(c2 / (2 * 8 * 256) - 0.5) < 0.05, "complex_normal parts N(0, 1/2): %g", c2 / (2 * 8 * 256));
    lra_mixer_solo_free(&s);
    bi[3].value = "lecun_normal";
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", bi, 4, 4, 1, 8, 3, &err) == 0, "%s", err.msg);
    T_CHECK(s.m.n_params == 7 && !strcmp(s.specs[5].name, "C1") && !strcmp(s.specs[6].name, "C2") &&
            s.specs[6].shape[1] == 4, "C1, C2 (H, Pc, 2)");
    lra_mixer_solo_free(&s);
}

// The groups of each opt_config (S5 train_helpers.py; models/README.md).
static void test_groups(void) {
    static const char *const cfg[] = { "standard", "BandCdecay", "BfastandCdecay", "noBCdecay" };
    static const lra_group want[4][6] = {
        { LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM_DT, LRA_GROUP_DECAY, LRA_GROUP_DECAY },
        { LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM_DECAY, LRA_GROUP_SSM_DT, LRA_GROUP_DECAY, LRA_GROUP_DECAY },
        { LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_DECAY, LRA_GROUP_SSM_DT, LRA_GROUP_DECAY, LRA_GROUP_DECAY },
        { LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM_DT, LRA_GROUP_SSM, LRA_GROUP_SSM },
    };
    for (int c = 0; c < 4; c++) {
        lra_kv kv[] = { { "ssm_size", "4", NULL }, { "blocks", "1", NULL }, { "opt_config", cfg[c], NULL },
                        { "bidirectional", "true", NULL } };
        lra_mixer_solo s;
        lra_err err = { 0 };
        T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", kv, 4, 3, 1, 4, 1, &err) == 0, "%s", err.msg);
        if (t_case_failures) return;
        for (int k = 0; k < s.m.n_params; k++)
            T_CHECK(s.specs[k].group == want[c][k < 6 ? k : 5], "%s: %s in group %s", cfg[c], s.specs[k].name,
                    lra_group_names[s.specs[k].group]);
        lra_mixer_solo_free(&s);
    }
}

static void test_config_errors(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv odd[] = { { "ssm_size", "12", NULL }, { "blocks", "4", "e.yaml:3:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", odd, 2, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "e.yaml:3:4") && strstr(err.msg, "even"), "odd blocks: %s", err.msg);
    lra_kv bad[] = { { "C_init", "xavier", "e.yaml:5:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", bad, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "trunc_standard_normal"), "C_init: %s", err.msg);
    lra_kv opt[] = { { "opt_config", "fast", "e.yaml:6:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", opt, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "BandCdecay"), "opt_config: %s", err.msg);
    lra_kv dt[] = { { "dt_min", "0.5", "e.yaml:7:4" }, { "dt_max", "0.1", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s5", dt, 2, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "dt_min"), "dt range: %s", err.msg);
}

// The S5 block's model defaults (lra.md 5.3), the describe round trip, and
// the learning rates and weight decays of each opt_config in the model's
// AdamW groups (S5 train_helpers.py: ssm = Adam(ssm_lr), regular =
// AdamW(lr, wd), BandCdecay's B = AdamW(ssm_lr, wd)).
static void test_model_config(void) {
    static const lra_model_task task = { .vocab = 5, .n_classes = 2, .n_inputs = 1, .seq_len = 6 };
    static const char *const cfg[] = { "standard", "BandCdecay", "BfastandCdecay", "noBCdecay" };
    // lr and decay of (B, C, log_step) per opt_config: 0 lr, 1 ssm_lr
    static const int want_lr[4][3] = { { 1, 0, 1 }, { 1, 0, 1 }, { 0, 0, 1 }, { 1, 1, 1 } };
    static const int want_wd[4][3] = { { 0, 1, 0 }, { 1, 1, 0 }, { 1, 1, 0 }, { 0, 0, 0 } };
    for (int k = 0; k < 4; k++) {
        lra_kv kv[] = { { "mixer", "s5", NULL }, { "d_model", "4", NULL }, { "n_layers", "1", NULL },
                        { "mixer.ssm_size", "4", NULL }, { "mixer.blocks", "1", NULL }, { "mixer.opt_config", cfg[k], NULL } };
        lra_model_config c, c2;
        lra_model m, m2;
        lra_err err = { 0 };
        T_CHECK(lra_model_config_parse(&c, kv, 6, &err) == 0 && lra_model_build(&m, &c, &task, t_backend(), 2, 1, &err) == 0,
                "%s", err.msg);
        if (t_case_failures) return;
        T_CHECK(c.stage == LRA_STAGE_HALF_GLU1 && c.norm.kind == LRA_NORM_BATCH && c.prenorm && !c.final_norm &&
                    fabs(c.norm.momentum - 0.05) < 1e-7 && !c.norm.unbiased_running && c.gelu == LRA_ACT_GELU_TANH &&
                    c.linear_init == LRA_LINEAR_FLAX, "S5 block defaults");
        char s1[4096], s2[4096], buf[4096];
        T_CHECK(lra_model_describe(&m, s1, sizeof s1) == 0 && strstr(s1, "mixer.opt_config=") && strstr(s1, "stage=half_glu1"),
                "describe: %s", s1);
        snprintf(buf, sizeof buf, "%s", s1);
        lra_kv kv2[64];
        int n = lra_kv_split(buf, kv2, 64, "describe");
        T_CHECK(n > 0 && lra_model_config_parse(&c2, kv2, n, &err) == 0 &&
                lra_model_build(&m2, &c2, &task, t_backend(), 2, 1, &err) == 0, "%s", err.msg);
        if (t_case_failures) return;
        T_CHECK(lra_model_describe(&m2, s2, sizeof s2) == 0 && !strcmp(s1, s2), "round trip: %s\nvs %s", s1, s2);
        lra_model_free(&m2);
        lra_optim_config o;
        lra_optim_defaults(&o);
        o.lr = 0.004f, o.ssm_lr = 0.001f, o.weight_decay = 0.07f;
        lra_param_group g[64];
        int ng = lra_model_param_groups(&m, &o, 0, g);
        static const char *const names[3] = { "blocks.0.mixer.B", "blocks.0.mixer.C", "blocks.0.mixer.log_step" };
        for (int j = 0; j < 3; j++) {
            int64_t off = 0;
            int i = 0;
            for (; i < m.n_params && strcmp(m.specs[i].name, names[j]); i++) off += lra_spec_numel(&m.specs[i]);
            T_CHECK(i < m.n_params, "%s missing", names[j]);
            int in = -1;
            for (int q = 0; q < ng; q++)
                if (off >= g[q].offset && off < g[q].offset + g[q].count) in = q;
            T_CHECK(in >= 0 && g[in].lr == (want_lr[k][j] ? 0.001f : 0.004f) &&
                        (g[in].weight_decay > 0) == want_wd[k][j],
                    "%s: %s lr %g wd %g", cfg[k], names[j], in >= 0 ? g[in].lr : -1, in >= 0 ? g[in].weight_decay : -1);
        }
        lra_model_free(&m);
    }
}

// Float64 PyTorch vs the f64 build agree to rounding (1e-10); the float
// build to the bounds (1e-4 outputs, 1e-3 gradients).
static void test_reference(void) {
    static const char *const files[] = { "tests/ref/s5_zoh_mask.safetensors", "tests/ref/s5_bilinear_bidir.safetensors",
                                         "tests/ref/s5_nonconj_bidir_cn.safetensors" };
    for (int i = 0; i < 3; i++) t_mixer_refcheck(files[i], sizeof(lra_real) == 8 ? 1e-10 : 1e-4, sizeof(lra_real) == 8 ? 1e-9 : 1e-3);
}

static const t_case cases[] = {
    { "mixer/s5/grad_zoh", test_grad_zoh },
    { "mixer/s5/grad_bilinear", test_grad_bilinear },
    { "mixer/s5/grad_clip", test_grad_clip },
    { "mixer/s5/step", test_step },
    { "mixer/s5/init", test_init },
    { "mixer/s5/groups", test_groups },
    { "mixer/s5/config_errors", test_config_errors },
    { "mixer/s5/model_config", test_model_config },
    { "mixer/s5/reference", test_reference },
};
T_MAIN(cases)
