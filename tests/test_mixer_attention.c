// test_mixer_attention.c: the attention mixer (models/attention.c):
// finite-difference gradients of input and projections, with padding mask,
// causal masking and attention dropout; configuration errors.
#include "mixer_check.h"

#include <string.h>

static void test_plain(void) {
    lra_kv kv[] = { { "heads", "2", NULL }, { "d_qkv", "8", NULL } };
    t_mixer_gradcheck(&(t_mixer_case){ "attention", kv, 2, 6, 2, 7, NULL, 0, T_GRAD_TOL });
}

static void test_mask_causal(void) {
    uint8_t mask[2 * 9];
    for (int b = 0; b < 2; b++)
        for (int l = 0; l < 9; l++) mask[b * 9 + l] = l < 9 - 3 * b;  // second example padded at the end
    lra_kv kv[] = { { "heads", "3", NULL }, { "d_qkv", "6", NULL }, { "causal", "true", NULL } };
    t_mixer_gradcheck(&(t_mixer_case){ "attention", kv, 3, 5, 2, 9, mask, 0, T_GRAD_TOL });
    lra_kv kv2[] = { { "heads", "1", NULL } };
    t_mixer_gradcheck(&(t_mixer_case){ "attention", kv2, 1, 4, 2, 9, mask, 0, T_GRAD_TOL });
}

static void test_dropout(void) {
    lra_kv kv[] = { { "heads", "2", NULL }, { "dropout", "0.3", NULL } };
    t_mixer_gradcheck(&(t_mixer_case){ "attention", kv, 2, 4, 2, 6, NULL, 1, T_GRAD_TOL });
}

static void test_config_errors(void) {
    lra_mixer_solo s;
    lra_err err = { 0 };
    lra_kv bad[] = { { "heads", "3", "x.yaml:4:7" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "attention", bad, 1, 8, 1, 4, 1, &err) == LRA_EINVAL, "3 heads of 8");
    T_CHECK(strstr(err.msg, "x.yaml:4:7") && strstr(err.msg, "heads"), "message: %s", err.msg);
    lra_kv unknown[] = { { "head", "2", "x.yaml:5:7" } };
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "attention", unknown, 1, 8, 1, 4, 1, &err) == LRA_EINVAL, "typo");
    T_CHECK(strstr(err.msg, "unknown parameter") && strstr(err.msg, "heads"), "message: %s", err.msg);
    T_CHECK(lra_mixer_solo_new(&s, t_backend(), "atention", NULL, 0, 8, 1, 4, 1, &err) == LRA_EINVAL, "name");
    T_CHECK(strstr(err.msg, "known: attention"), "message: %s", err.msg);
}

static const t_case cases[] = {
    { "mixer/attention/plain", test_plain },
    { "mixer/attention/mask_causal", test_mask_causal },
    { "mixer/attention/dropout", test_dropout },
    { "mixer/attention/config_errors", test_config_errors },
};
T_MAIN(cases)
