// test_mixer_hyena.c: the Hyena mixer (models/hyena.c): finite-difference
// gradients of input and every parameter for orders 2 and 3, causal and
// bidirectional, with padding masks, dropout, a shifted window and L < L_max;
// causality; initial values; parameter names and groups; configuration
// errors; parity with the PyTorch reference files (tests/ref/gen_hyena.py).
#include "../models/model.h"
#include "mixer_check.h"

#include <math.h>
#include <string.h>

// FD tolerance: central differences carry ~eps |loss| / h = 5e-10 of
// absolute rounding, and the filter FFN and positional-embedding gradients
// are ~1e-6 (three Sin layers and the decay window between them and y), so
// their relative FD error reaches ~1e-4 in f64; a wrong formula gives errors
// of order 1. The PyTorch parity below pins them to 1e-9.
// In float the FD rounding (~1e-7 |loss| / 1e-2) exceeds those gradients:
// the finite-difference cases run in the f64 build only.
#define T_HYENA_TOL 1e-3
#ifdef LRA_F64
#define T_HYENA_FD_ONLY_F64()
#else
#define T_HYENA_FD_ONLY_F64() T_SKIP("finite differences of the filter gradients need the f64 build")
#endif

static void grad(const char *order, const char *bidir, const char *inner, int masked, int training, int L) {
    lra_kv kv[] = { { "order", order, NULL }, { "bidirectional", bidir, NULL }, { "num_inner_mlps", inner, NULL },
                    { "filter_order", "6", NULL }, { "emb_dim", "5", NULL }, { "w", "1.3", NULL },
                    { "dropout", training ? "0.3" : "0", NULL }, { "shift", training ? "0.1" : "0", NULL },
                    { "target", "0.3", NULL } };
    uint8_t mask[2 * 11];
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 11; l++) mask[b * 11 + l] = l < L - 4 * b;
    t_mixer_gradcheck(&(t_mixer_case){ "hyena", kv, 9, 4, 2, L, masked ? mask : NULL, training, T_HYENA_TOL });
}

static void test_grad_causal(void) {
    T_HYENA_FD_ONLY_F64();
    grad("2", "false", "2", 0, 0, 11);
    grad("3", "false", "1", 1, 0, 9);
    grad("2", "false", "0", 0, 1, 10);
}

static void test_grad_bidirectional(void) {
    T_HYENA_FD_ONLY_F64();
    grad("2", "true", "2", 1, 0, 11);
    grad("3", "true", "1", 0, 1, 8);
}

// y[t] of the causal layer depends on x[0..t] only; the bidirectional one
// sees later positions, but never padded ones.
static void test_causality(void) {
    lra_backend *be = t_backend();
    for (int bi = 0; bi < 2; bi++) {
        lra_kv kv[] = { { "bidirectional", bi ? "true" : "false", NULL }, { "filter_order", "8", NULL } };
        lra_mixer_solo s;
        lra_err err = { 0 };
        int B = 1, L = 12, D = 3;
        T_CHECK(lra_mixer_solo_new(&s, be, "hyena", kv, 2, D, B, L, 5, &err) == 0, "%s", err.msg);
        if (t_case_failures) return;
        lra_real x[36], x2[36], y[36], y2[36], mf[12];
        uint8_t mk[12];
        for (int l = 0; l < L; l++) { mk[l] = l < 9; mf[l] = mk[l]; }
        t_rand_fill(x, 36, 7, -1, 1);
        memcpy(x2, x, sizeof x);
        for (int d = 0; d < D; d++) x2[10 * D + d] += 1;  // change position 10 (padded below)
        for (int masked = 0; masked < 2; masked++) {
            lra_ctx ctx = { .be = be, .B = B, .L = L, .seed = 1, .mask = masked ? mk : NULL, .maskf = masked ? mf : NULL };
            T_CHECK(s.m.vt->forward(&s.m, &ctx, y, x, &err) == 0, "%s", err.msg);
            T_CHECK(s.m.vt->forward(&s.m, &ctx, y2, x2, &err) == 0, "%s", err.msg);
            double before = 0, after = 0, ymax = 0;
            for (int i = 0; i < 36; i++) ymax = fmax(ymax, fabs((double)y[i]));
            for (int i = 0; i < 10 * D; i++) before = fmax(before, fabs((double)y[i] - y2[i]) / ymax);
            for (int i = 10 * D; i < 36; i++) after = fmax(after, fabs((double)y[i] - y2[i]));
            if (!bi || masked)
                // FFT rounding only (relative to max |y|)
                T_CHECK(before < (sizeof(lra_real) == 8 ? 1e-13 : 1e-5), "bidirectional=%d masked=%d: positions < 10 changed by %g", bi, masked, before);
            else
                T_CHECK(before > 1e-3, "bidirectional: earlier positions see position 10 (%g)", before);
            if (!masked) T_CHECK(after > 1e-3 * ymax, "position 10 changes its own output");
        }
        lra_mixer_solo_free(&s);
    }
}

static void test_init(void) {
    lra_kv kv[] = { { "order", "3", NULL }, { "emb_dim", "5", NULL }, { "num_inner_mlps", "1", NULL },
                    { "filter_order", "4", NULL }, { "w", "14", NULL } };
    lra_mixer_solo s;
    lra_err err = { 0 };
    int D = 4, Lm = 16;
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "hyena", kv, 5, D, 1, Lm, 3, &err) == 0, "%s", err.msg);
    if (t_case_failures) return;
    static const char *const names[] = { "in_proj.weight", "in_proj.bias", "out_proj.weight", "out_proj.bias",
                                         "short_filter.weight", "short_filter.bias", "filter_fn.bias",
                                         "filter_fn.pos_emb.z", "filter_fn.pos_emb.t", "filter_fn.modulation.deltas",
                                         "filter_fn.implicit_filter.1.freq", "filter_fn.implicit_filter.0.weight",
                                         "filter_fn.implicit_filter.0.bias", "filter_fn.implicit_filter.2.weight",
                                         "filter_fn.implicit_filter.2.bias", "filter_fn.implicit_filter.4.weight" };
    static const lra_group groups[] = { LRA_GROUP_DECAY, LRA_GROUP_NO_DECAY, LRA_GROUP_DECAY, LRA_GROUP_NO_DECAY,
                                        LRA_GROUP_DECAY, LRA_GROUP_NO_DECAY, LRA_GROUP_DECAY, LRA_GROUP_SSM_DT,
                                        LRA_GROUP_BUFFER, LRA_GROUP_BUFFER, LRA_GROUP_SSM, LRA_GROUP_SSM,
                                        LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM, LRA_GROUP_SSM };
    T_CHECK(s.m.n_params == 16, "16 tensors, got %d", s.m.n_params);
    for (int k = 0; k < s.m.n_params && k < 16; k++)
        T_CHECK(!strcmp(s.specs[k].name, names[k]) && s.specs[k].group == groups[k], "spec %d: %s (%s)", k,
                s.specs[k].name, lra_group_names[s.specs[k].group]);
    T_CHECK(s.specs[0].shape[0] == 4 * D && s.specs[4].ndim == 3 && s.specs[4].shape[2] == 3 &&
            s.specs[15].shape[0] == 2 * D && s.specs[15].shape[1] == 4 && s.specs[7].shape[1] == Lm, "shapes");
    const lra_real *z = s.m.p[7], *t = s.m.p[8], *dl = s.m.p[9];
    for (int l = 0; l < Lm; l++) {  // bands = 2: f = 1e-4, 1
        double tl = l / 15.0, w = 2 * M_PI * l / Lm;
        T_CHECK(fabs(z[5 * l] - tl) < 1e-6 && fabs(t[l] - tl) < 1e-6, "t_l");
        T_CHECK(fabs(z[5 * l + 1] - cos(1e-4 * w)) < 1e-6 && fabs(z[5 * l + 2] - cos(w)) < 1e-6 &&
                fabs(z[5 * l + 3] + sin(1e-4 * w)) < 1e-6 && fabs(z[5 * l + 4] + sin(w)) < 1e-6, "z_%d", l);
    }
    // deltas linspace(log(0.01)/1.5, log(0.01)/0.3) over Df = 8 channels
    T_CHECK(fabs(dl[0] - log(0.01) / 1.5) < 1e-5 && fabs(dl[7] - log(0.01) / 0.3) < 1e-5, "deltas %g .. %g", dl[0], dl[7]);
    for (int f = 0; f < 4; f++) T_CHECK(s.m.p[10][f] == 14, "freq = w");
    for (int k = 0; k < 12; k++) T_CHECK(fabs(s.m.p[4][k]) <= 1 / sqrt(3.0), "short filter U(+-1/sqrt 3)");
    lra_mixer_solo_free(&s);
    lra_kv bi[] = { { "bidirectional", "true", NULL } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "hyena", bi, 1, D, 1, Lm, 3, &err) == 0, "%s", err.msg);
    T_CHECK(s.specs[9].shape[2] == 2 * D && s.m.p[9][0] == s.m.p[9][1] && s.m.p[9][2] != s.m.p[9][1],
            "bidirectional: the two directions of a channel share its decay");
    T_CHECK(s.specs[s.m.n_params - 1].shape[0] == 2 * D, "bidirectional: 2 Df filter outputs");
    T_CHECK(s.m.vt->step == NULL, "no recurrent step");
    lra_mixer_solo_free(&s);
}

static void test_config_errors(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv even[] = { { "emb_dim", "4", "e.yaml:3:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "hyena", even, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "e.yaml:3:4") && strstr(err.msg, "odd"), "even emb_dim: %s", err.msg);
    lra_kv ord[] = { { "order", "1", "e.yaml:4:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "hyena", ord, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "order"), "order 1: %s", err.msg);
    lra_kv unk[] = { { "d_state", "4", "e.yaml:5:4" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "hyena", unk, 1, 4, 1, 8, 1, &err) == LRA_EINVAL &&
            strstr(err.msg, "d_state"), "unknown key: %s", err.msg);
}

// The model's canonical config writes every Hyena key and parses back to
// the same model (same parameters from the same seed).
static void test_describe_roundtrip(void) {
    const lra_model_task task = { .vocab = 8, .n_classes = 2, .n_inputs = 1, .seq_len = 16 };
    lra_kv kv[] = { { "mixer", "hyena", NULL }, { "d_model", "4", NULL }, { "n_layers", "1", NULL },
                    { "mixer.bidirectional", "true", NULL }, { "mixer.order", "3", NULL }, { "mixer.shift", "0.25", NULL } };
    lra_model_config c, c2;
    lra_model a, b;
    lra_err err = { 0 };
    char s1[4096], s2[4096], buf[4096];
    T_CHECK(lra_model_config_parse(&c, kv, 6, &err) == 0 && lra_model_build(&a, &c, &task, t_backend(), 2, 1, &err) == 0,
            "%s", err.msg);
    if (t_case_failures) return;
    T_CHECK(lra_model_describe(&a, s1, sizeof s1) == 0, "describe");
    T_CHECK(strstr(s1, "mixer.filter_order=64") && strstr(s1, "mixer.order=3") && strstr(s1, "mixer.bidirectional=true") &&
            strstr(s1, "mixer.shift=0.25"), "defaults and settings written: %s", s1);
    snprintf(buf, sizeof buf, "%s", s1);
    lra_kv kv2[64];
    int n = lra_kv_split(buf, kv2, 64, "describe");
    T_CHECK(n > 0 && lra_model_config_parse(&c2, kv2, n, &err) == 0 &&
            lra_model_build(&b, &c2, &task, t_backend(), 2, 1, &err) == 0, "%s", err.msg);
    if (t_case_failures) { lra_model_free(&a); return; }
    T_CHECK(lra_model_describe(&b, s2, sizeof s2) == 0 && !strcmp(s1, s2), "%s\nvs %s", s1, s2);
    T_CHECK(a.n_real == b.n_real && !memcmp(a.params, b.params, (size_t)a.n_real * sizeof(lra_real)),
            "same seed, same parameters");
    lra_model_free(&a);
    lra_model_free(&b);
}

// Float64 PyTorch vs the f64 build agree to rounding (1e-10); the float
// build to the bounds (1e-4 outputs, 1e-3 gradients).
static void test_reference(void) {
    static const char *const files[] = { "tests/ref/hyena_causal_mask.safetensors", "tests/ref/hyena_bidir_order3.safetensors",
                                         "tests/ref/hyena_causal_order3.safetensors" };
    for (int i = 0; i < 3; i++) t_mixer_refcheck(files[i], sizeof(lra_real) == 8 ? 1e-10 : 1e-4, sizeof(lra_real) == 8 ? 1e-9 : 1e-3);
}

static const t_case cases[] = {
    { "mixer/hyena/grad_causal", test_grad_causal },
    { "mixer/hyena/grad_bidirectional", test_grad_bidirectional },
    { "mixer/hyena/causality", test_causality },
    { "mixer/hyena/init", test_init },
    { "mixer/hyena/config_errors", test_config_errors },
    { "mixer/hyena/describe_roundtrip", test_describe_roundtrip },
    { "mixer/hyena/reference", test_reference },
};
T_MAIN(cases)
