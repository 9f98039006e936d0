// test_mixer_s4d.c: the S4D mixer (models/s4d.c): finite-difference
// gradients of input and every parameter over initialisations,
// discretisations, step-size transforms, shared (A, B) copies, both
// directions and padding masks; the recurrent step against the convolution;
// initial values; parameter groups; configuration errors; parity with the
// PyTorch reference files (tests/ref/gen_s4d.py).
#include "mixer_check.h"

#include <math.h>
#include <string.h>

// FD tolerance: the layer output sums ~L kernel taps of size ~|C B|, so the
// central differences of small gradient entries carry ~1e-6 relative
// rounding in f64; a wrong formula gives errors of order 1.
#ifdef LRA_F64
#define T_S4D_TOL 1e-5
#else
#define T_S4D_TOL T_GRAD_TOL
#endif

static void grad(const char *init, const char *disc, const char *dt, const char *n_ssm, const char *bidir, int masked) {
    lra_kv kv[] = { { "d_state", "6", NULL }, { "init", init, NULL }, { "disc", disc, NULL },
                    { "dt_transform", dt, NULL }, { "n_ssm", n_ssm, NULL }, { "bidirectional", bidir, NULL },
                    { "dt_min", "0.01", NULL }, { "dt_max", "0.2", NULL } };
    uint8_t mask[2 * 11];
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 11; l++) mask[b * 11 + l] = l < 11 - 4 * b;
    t_mixer_gradcheck(&(t_mixer_case){ "s4d", kv, 8, 4, 2, 11, masked ? mask : NULL, 0, T_S4D_TOL });
}

static void test_grad_zoh(void) {
    grad("lin", "zoh", "softplus", "1", "false", 0);
    grad("inv", "zoh", "exp", "4", "true", 1);
    grad("legs", "zoh", "softplus", "2", "false", 1);
}

static void test_grad_bilinear(void) {
    grad("lin", "bilinear", "exp", "4", "false", 0);
    grad("legs", "bilinear", "softplus", "1", "true", 1);
}

static void test_step(void) {
    static const char *const inits[] = { "lin", "inv", "legs" }, *const discs[] = { "zoh", "bilinear" };
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 2; d++) {
            lra_kv kv[] = { { "d_state", "8", NULL }, { "init", inits[i], NULL }, { "disc", discs[d], NULL },
                            { "n_ssm", "1", NULL } };
            // 1e-5 of max |y| in double; float: the FFT convolution's rounding
            t_mixer_stepcheck(&(t_mixer_case){ "s4d", kv, 4, 5, 2, 300, NULL, 0, 0 }, sizeof(lra_real) == 8 ? 1e-5 : 1e-4);
        }
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv bi[] = { { "bidirectional", "true", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4d", bi, 1, 4, 1, 8, 1, &err) == 0, "%s", err.msg);
    T_CHECK(s.m.vt->step_prepare(&s.m, t_backend(), &err) == LRA_EUNSUPPORTED && strstr(err.msg, "causal"),
            "bidirectional step refused: %s", err.msg);
    lra_mixer_solo_free(&s);
}

static void test_init(void) {
    static const char *const inits[] = { "lin", "inv", "legs" };
    static const double want[3][4] = { { 0, M_PI, 2 * M_PI, 3 * M_PI },
                                       { 17.83, 4.244, 1.528, 0.3638 },
                                       { 19.8574, 5.3542, 1.9578, 0.4275 } };  // models.md 3, N = 8
    for (int i = 0; i < 3; i++) {
        lra_kv kv[] = { { "d_state", "8", NULL }, { "init", inits[i], NULL }, { "n_ssm", "2", NULL },
                        { "dt_min", "0.001", NULL }, { "dt_max", "0.1", NULL } };
        lra_mixer_solo s;
        lra_err err = { 0 };
        T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4d", kv, 5, 6, 1, 8, 3, &err) == 0, "%s", err.msg);
        if (t_case_failures) return;
        for (int k = 0; k < 8; k++) {
            double got = s.m.p[2][k % 4 + 4 * (k / 4)];
            T_CHECK(fabs(got - want[i][k % 4]) < 1e-3 * (1 + want[i][k % 4]), "%s: A_imag[%d] = %g, want %g", inits[i], k,
                    got, want[i][k % 4]);
            T_CHECK(fabs(s.m.p[1][k] - log(0.5)) < 1e-6, "A_real = log 1/2");
        }
        for (int h = 0; h < 6; h++) {
            double dt = log1p(exp((double)s.m.p[0][h]));
            T_CHECK(dt >= 0.001 * (1 - 1e-5) && dt <= 0.1 * (1 + 1e-5), "dt[%d] = %g outside [0.001, 0.1]", h, dt);
        }
        if (i < 2) T_CHECK(s.m.p[3][0] == 1 && s.m.p[3][1] == 0, "B = 1 for %s", inits[i]);
        else for (int k = 0; k < 8; k++) T_CHECK(fabs(s.m.p[3][2 * k + 1]) <= 2, "LegS Im B clipped");
        static const lra_group groups[] = { LRA_GROUP_SSM_DT, LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM,
                                            LRA_GROUP_DECAY, LRA_GROUP_DECAY };
        for (int k = 0; k < s.m.n_params; k++)
            T_CHECK(s.specs[k].group == groups[k], "%s: group %s", s.specs[k].name, lra_group_names[s.specs[k].group]);
        T_CHECK(!strcmp(s.specs[0].name, "kernel.inv_dt") && !strcmp(s.specs[4].name, "kernel.C") &&
                s.specs[4].ndim == 4 && s.specs[4].shape[3] == 2, "names and shapes");
        lra_mixer_solo_free(&s);
    }
}

static void test_config_errors(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv odd[] = { { "d_state", "7", "e.yaml:3:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4d", odd, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "e.yaml:3:4") && strstr(err.msg, "even"), "odd d_state: %s", err.msg);
    lra_kv share[] = { { "n_ssm", "3", "e.yaml:4:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4d", share, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "n_ssm") && strstr(err.msg, "divide"), "n_ssm: %s", err.msg);
    lra_kv bad[] = { { "init", "legt", "e.yaml:5:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4d", bad, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "lin, inv, legs"), "init: %s", err.msg);
    lra_kv dt[] = { { "dt_min", "0.5", "e.yaml:6:4" }, { "dt_max", "0.1", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "s4d", dt, 2, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "dt_min"), "dt range: %s", err.msg);
}

// Float64 PyTorch vs the f64 build agree to rounding (1e-10); the float
// build to the bounds (1e-4 outputs, 1e-3 gradients).
static void test_reference(void) {
    static const char *const files[] = { "tests/ref/s4d_lin_zoh_mask.safetensors", "tests/ref/s4d_inv_bilinear_bidir.safetensors",
                                         "tests/ref/s4d_legs_exp.safetensors" };
    for (int i = 0; i < 3; i++) t_mixer_refcheck(files[i], sizeof(lra_real) == 8 ? 1e-10 : 1e-4, sizeof(lra_real) == 8 ? 1e-9 : 1e-3);
}

static const t_case cases[] = {
    { "mixer/s4d/grad_zoh", test_grad_zoh },
    { "mixer/s4d/grad_bilinear", test_grad_bilinear },
    { "mixer/s4d/step", test_step },
    { "mixer/s4d/init", test_init },
    { "mixer/s4d/config_errors", test_config_errors },
    { "mixer/s4d/reference", test_reference },
};
T_MAIN(cases)
