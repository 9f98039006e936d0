// test_checkpoint.c: checkpoints round-trip (identical logits and identical
// training continuation after save and load into a freshly built model) and
// are refused, with the file and tensor named, when they do not fit.
#include "../models/checkpoint.h"
#include "mixer_check.h"

#include <string.h>

static const lra_model_task task = { .vocab = 9, .n_classes = 3, .n_inputs = 1, .seq_len = 10 };

static int build(lra_model *m, const char *d_model, const char *norm, uint64_t seed) {
    lra_kv kv[] = { { "mixer", "attention", NULL }, { "d_model", d_model, NULL }, { "n_layers", "2", NULL },
                    { "norm", norm, NULL }, { "d_ffn", "8", NULL }, { "dropout", "0.1", NULL } };
    lra_model_config c;
    lra_err err = { 0 };
    if (lra_model_config_parse(&c, kv, 6, &err) || lra_model_build(m, &c, &task, t_backend(), 4, seed, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return 0;
    }
    return 1;
}

static void batch(int32_t *tok, int32_t *len, int32_t *lab, lra_batch *b, uint64_t seed) {
    for (int e = 0; e < 4; e++) {
        len[e] = 10 - e;
        lab[e] = (int32_t)(lra_rand_bits(seed, 100 + (uint64_t)e) % 3);
        for (int l = 0; l < 10; l++) tok[e * 10 + l] = l < len[e] ? 1 + (int32_t)(lra_rand_bits(seed, (uint64_t)(e * 10 + l)) % 8) : 0;
    }
    *b = (lra_batch){ 4, tok, len, lab };
}

static void train_steps(lra_model *m, int n, uint64_t seed0) {
    lra_optim_config o;
    lra_optim_defaults(&o);
    o.lr = 0.01f;
    o.weight_decay = 0.01f;
    int32_t tok[40], len[4], lab[4];
    lra_batch b;
    lra_err err = { 0 };
    for (int s = 0; s < n; s++) {
        batch(tok, len, lab, &b, seed0 + (uint64_t)s);
        T_CHECK(lra_model_forward(m, &b, 1, seed0 + (uint64_t)s, &err) == 0, "%s", err.msg);
        lra_model_zero_grad(m);
        T_CHECK(lra_model_backward(m, &err) == 0, "%s", err.msg);
        T_CHECK(lra_model_step(m, &o, m->opt_step, NULL, &err) == 0, "%s", err.msg);
    }
}

static void test_roundtrip(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lra_model a, b;
    if (!build(&a, "8", "batch", 1) || !build(&b, "8", "batch", 2)) return;
    train_steps(&a, 3, 10);
    lra_err err = { 0 };
    lra_kv extra[] = { { "step", "3", NULL }, { "task", "toy", NULL } };
    T_CHECK(lra_checkpoint_save(&a, path, extra, 2, &err) == 0, "save: %s", err.msg);
    T_CHECK(lra_checkpoint_load(&b, path, 1, &err) == 0, "load: %s", err.msg);
    T_CHECK(memcmp(a.params, b.params, (size_t)a.n_real * sizeof(lra_real)) == 0, "parameters differ");
    T_CHECK(memcmp(a.adam_v, b.adam_v, (size_t)a.n_real * sizeof(lra_real)) == 0, "optimiser state differs");
    T_CHECK(a.opt_step == b.opt_step && a.opt_step == 3, "optimiser step %lld vs %lld", (long long)a.opt_step,
            (long long)b.opt_step);
    int32_t tok[40], len[4], lab[4];
    lra_batch bt;
    batch(tok, len, lab, &bt, 77);
    T_CHECK(lra_model_forward(&a, &bt, 0, 1, &err) == 0 && lra_model_forward(&b, &bt, 0, 1, &err) == 0, "%s", err.msg);
    T_CHECK(memcmp(a.logits, b.logits, 4 * 3 * sizeof(lra_real)) == 0, "eval logits differ after load");
    train_steps(&a, 2, 50);  // training goes on identically
    train_steps(&b, 2, 50);
    T_CHECK(memcmp(a.params, b.params, (size_t)a.n_real * sizeof(lra_real)) == 0, "continued training differs");
    lra_st_file *f;
    T_CHECK(lra_st_open(path, &f, &err) == 0, "%s", err.msg);
    T_CHECK(f && lra_st_find(f, "blocks.1.mixer.q_proj.weight") && lra_st_find(f, "optim.exp_avg.head.0.weight") &&
            !lra_st_find(f, "optim.exp_avg.blocks.0.norm1.running_mean") && lra_st_find(f, "blocks.0.norm1.running_var"),
            "tensor names");
    T_CHECK(f && !strcmp(lra_st_metadata(f, "step"), "3") && strstr(lra_st_metadata(f, "lra.model"), "mixer=attention"),
            "metadata");
    lra_st_close(f);
    lra_model_free(&a);
    lra_model_free(&b);
    t_rm_tree(dir);
}

static void test_mismatch(void) {
    char dir[128], path[256], other[256];
    t_tmpdir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    snprintf(other, sizeof other, "%s/b.safetensors", dir);
    lra_model a, wide, ln;
    if (!build(&a, "8", "batch", 1) || !build(&wide, "12", "batch", 1) || !build(&ln, "8", "layer", 1)) return;
    lra_err err = { 0 };
    T_CHECK(lra_checkpoint_save(&a, path, NULL, 0, &err) == 0, "save: %s", err.msg);
    T_CHECK(lra_checkpoint_load(&wide, path, 0, &err) == LRA_EIO, "other width accepted");
    T_CHECK(strstr(err.msg, path) && strstr(err.msg, "shape") && strstr(err.msg, "(9, 12)"), "message: %s", err.msg);
    T_CHECK(lra_checkpoint_load(&ln, path, 0, &err) == LRA_EIO, "other norm accepted");
    T_CHECK(strstr(err.msg, "running_mean") && strstr(err.msg, "not a parameter"), "message: %s", err.msg);
    lra_kv bad[] = { { "lra.model", "x", NULL } };
    T_CHECK(lra_checkpoint_save(&a, other, bad, 1, &err) == LRA_EINVAL && strstr(err.msg, "reserved"), "reserved key");
    // a safetensors file that is not a checkpoint
    lra_st_writer *w;
    float x = 1;
    T_CHECK(lra_st_writer_new(&w, &err) == 0 && lra_st_writer_add(w, "x", LRA_ST_F32, 0, NULL, &x, 4, &err) == 0 &&
            lra_st_writer_write(w, other, &err) == 0, "%s", err.msg);
    lra_st_writer_free(w);
    T_CHECK(lra_checkpoint_load(&a, other, 0, &err) == LRA_EIO && strstr(err.msg, "not an lra checkpoint"), "%s", err.msg);
    lra_model_free(&a);
    lra_model_free(&wide);
    lra_model_free(&ln);
    t_rm_tree(dir);
}

// A bundle written by lra and read back by the parity checker agrees with
// itself: the format, the config and task-shape round trip and the loader
// are consistent (the PyTorch bundles use the same path).
static void test_bundle_self(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "bundle");
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    lra_model a;
    if (!build(&a, "8", "batch", 3)) return;
    train_steps(&a, 2, 5);  // running statistics away from their initial values
    int32_t tok[40], len[4], lab[4];
    lra_batch b;
    batch(tok, len, lab, &b, 8);
    lra_err err = { 0 };
    T_CHECK(lra_model_forward(&a, &b, 0, 1, &err) == 0, "%s", err.msg);
    lra_model_zero_grad(&a);
    T_CHECK(lra_model_backward(&a, &err) == 0, "%s", err.msg);
    T_CHECK(lra_bundle_write(&a, &b, path, NULL, 0, &err) == 0, "%s", err.msg);
    t_model_refcheck(path, 1e-6, 1e-6);
    lra_model_free(&a);
    t_rm_tree(dir);
}

static const t_case cases[] = {
    { "checkpoint/bundle_self", test_bundle_self },
    { "checkpoint/roundtrip", test_roundtrip },
    { "checkpoint/mismatch", test_mismatch },
};
T_MAIN(cases)
