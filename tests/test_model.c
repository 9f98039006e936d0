// test_model.c: the whole model (models/model.c, block.c, config.c, nn):
// finite-difference gradients of the mean cross-entropy w.r.t. every
// parameter tensor over the block variants (norms, prenorm/postnorm, stages,
// FFN, dropout), encoders (tokens, scalars, CLS, positions), pooling and the
// dual-encoder head; config errors; batch validation; optimiser groups.
#include "../models/model.h"
#include "check.h"

#include <math.h>
#include <string.h>

// Tolerance of the whole-model checks: the loss is a mean over the batch of
// O(1) values, so a central difference of a gradient entry of 1e-6 carries
// a rounding error of ~1e-10 / 1e-6 (f64): relative errors up to ~1e-4 on the
// smallest entries are noise; a wrong formula gives errors of order 1.
#ifdef LRA_F64
#define T_MODEL_TOL 1e-4
#else
#define T_MODEL_TOL 5e-2
#endif

// The attention mixer is used inside the block variants here; the SSM
// mixers have their own whole-model cases in their test programs.
typedef struct {
    lra_model *m;
    lra_batch *b;
    int training;
} model_fd;

static double model_loss(void *p) {
    model_fd *f = p;
    lra_err err = { 0 };
    if (lra_model_forward(f->m, f->b, f->training, 1234, &err)) t_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
    return f->m->loss;
}

typedef struct {
    int32_t tokens[4 * 2 * 16], lengths[4 * 2], labels[4];
    lra_batch b;
} batch_buf;

// B examples of n_in inputs of length L, ragged lengths, tokens in [1, vocab).
static void make_batch(batch_buf *bb, int B, int n_in, int L, int vocab, int K, uint64_t seed) {
    for (int e = 0; e < B; e++) {
        for (int k = 0; k < n_in; k++) {
            int len = L - (int)((e + k) % 3) * (L / 4);
            bb->lengths[e * n_in + k] = len;
            for (int l = 0; l < L; l++)
                bb->tokens[(e * n_in + k) * L + l] =
                    l < len ? 1 + (int32_t)(lra_rand_bits(seed, (uint64_t)(e * 977 + k * 131 + l)) % (uint64_t)(vocab - 1)) : 0;
        }
        bb->labels[e] = e % K;
    }
    bb->b = (lra_batch){ B, bb->tokens, bb->lengths, bb->labels };
}

// Builds a model from "key=value" strings and checks every parameter's
// gradient; `training` turns dropout and batch statistics on; rand_mixer
// redraws the trainable mixer parameters U(-1, 1) (MEGA's N(0, 0.02)
// initial weights leave its attention path below the FD noise floor).
static void check_model_ex(const char *const *kvs, int n_kv, const lra_model_task *task, int B, int training,
                           int rand_mixer) {
    lra_kv kv[32];
    char buf[32][64];
    for (int i = 0; i < n_kv; i++) {
        snprintf(buf[i], sizeof buf[i], "%s", kvs[i]);
        char *eq = strchr(buf[i], '=');
        *eq = 0;
        kv[i] = (lra_kv){ buf[i], eq + 1, "test" };
    }
    lra_model_config cfg;
    lra_err err = { 0 };
    if (lra_model_config_parse(&cfg, kv, n_kv, &err)) {
        t_fail_at(__FILE__, __LINE__, "config: %s", err.msg);
        return;
    }
    lra_model m;
    if (lra_model_build(&m, &cfg, task, t_backend(), B + 1, 5, &err)) {
        t_fail_at(__FILE__, __LINE__, "build: %s", err.msg);
        return;
    }
    for (int i = 0; rand_mixer && i < m.n_params; i++)
        if (m.g[i] && strstr(m.specs[i].name, ".mixer."))
            t_rand_fill(m.p[i], lra_spec_numel(&m.specs[i]), 70 + (uint64_t)i, -1, 1);
    batch_buf bb;
    make_batch(&bb, B, task->n_inputs, task->seq_len, task->scalar_input ? 256 : task->vocab, task->n_classes, 9);
    model_fd f = { &m, &bb.b, training };
    model_loss(&f);
    lra_model_zero_grad(&m);
    T_CHECK(lra_model_backward(&m, &err) == 0, "backward: %s", err.msg);
    lra_real *g = malloc((size_t)m.n_real * sizeof *g);
    memcpy(g, m.grads, (size_t)m.n_real * sizeof *g);
    double gall = 0;  // largest gradient entry of the model
    for (int64_t j = 0; j < m.n_real; j++) gall = fmax(gall, fabs((double)g[j]));
    for (int i = 0; i < m.n_params; i++) {
        if (!m.g[i]) continue;
        char what[160];
        snprintf(what, sizeof what, "%s: d%s", cfg.mixer, m.specs[i].name);
        double gmax = 0;  // a parameter cut off from the loss would pass FD trivially
        for (int64_t j = 0; j < lra_spec_numel(&m.specs[i]); j++) gmax = fmax(gmax, fabs((double)m.g[i][j]));
        T_CHECK(gmax > 0, "%s: gradient is zero", what);
        // A tensor whose gradients are tiny next to the model's largest sits
        // at the finite differences' noise floor (the loss is O(1)): in f64
        // it is checked to 1e-2; in f32 (differences of float losses, noise
        // ~1e-5) it cannot be checked here: its mixer test checks it. Every
        // f32 quotient (loss round-off ~1e-7 over a step of 2e-2, plus the
        // step's truncation) carries up to ~5e-6 of noise.
        double tol = T_MODEL_TOL;
        if (gmax < 1e-4 * gall) tol = fmax(T_MODEL_TOL, 1e-2);
        if (sizeof(lra_real) == 4 && gmax < 1e-2 * gall) continue;
        double noise = sizeof(lra_real) == 4 ? 5e-6 : 0;
        // redrawn mixers: a larger step, the O(1) loss next to 1e-8 gradients
        double step = rand_mixer ? 1e-4 : T_FD_STEP;
        t_gradcheck_noise_at(__FILE__, __LINE__, what, model_loss, &f, m.p[i], lra_spec_numel(&m.specs[i]),
                             g + (m.g[i] - m.grads), tol, step, noise);
    }
    free(g);
    lra_model_free(&m);
}

static void check_model(const char *const *kvs, int n_kv, const lra_model_task *task, int B, int training) {
    check_model_ex(kvs, n_kv, task, B, training, 0);
}

static const lra_model_task tok_task = { .vocab = 7, .n_classes = 3, .n_inputs = 1, .seq_len = 8 };
static const lra_model_task dual_task = { .vocab = 6, .n_classes = 2, .n_inputs = 2, .seq_len = 6 };
static const lra_model_task pix_task = { .vocab = 256, .n_classes = 4, .n_inputs = 1, .seq_len = 8,
                                         .scalar_input = 1, .scalar_mean = 0.5f, .scalar_std = 0.25f };

static void test_transformer(void) {
    // LRA Transformer: pre-LN, FFN, CLS, sinusoidal positions, MLP head
    const char *kv[] = { "mixer=attention", "n_layers=2", "d_model=4", "d_ffn=6", "mixer.heads=2", "dropout=0" };
    check_model(kv, 6, &tok_task, 3, 0);
}

static void test_transformer_dropout(void) {
    const char *kv[] = { "mixer=attention", "n_layers=1", "d_model=4", "d_ffn=5", "mixer.heads=1", "dropout=0.2",
                         "mixer.dropout=0.1", "pos=learned", "pool=mean" };
    check_model(kv, 9, &tok_task, 3, 1);
}

static void test_postnorm_batchnorm_glu(void) {
    // S4-style block with BatchNorm (training statistics), postnorm, GLU stage
    const char *kv[] = { "mixer=attention", "n_layers=2", "d_model=4", "norm=batch", "prenorm=false", "stage=glu",
                         "d_ffn=0", "pool=mean", "pos=none", "head_hidden=none" };
    check_model(kv, 10, &pix_task, 3, 1);
}

static void test_half_glu_scale_norm(void) {
    const char *kv[] = { "mixer=attention", "n_layers=1", "d_model=4", "norm=scale", "stage=half_glu1", "d_ffn=0",
                         "pool=last", "pos=none", "dropout=0.1", "tie_dropout=true", "head_hidden=5",
                         "head_act=gelu" };
    check_model(kv, 12, &tok_task, 3, 1);
    const char *kv2[] = { "mixer=attention", "n_layers=1", "d_model=4", "norm=none", "stage=half_glu2", "d_ffn=3",
                          "pool=mean_all", "pos=none", "gelu=tanh", "prenorm=false" };
    check_model(kv2, 10, &tok_task, 2, 1);
    const char *kv3[] = { "mixer=attention", "n_layers=1", "d_model=4", "norm=layer", "stage=gelu", "d_ffn=0",
                          "pool=mean", "pos=none", "dropout=0.3" };
    check_model(kv3, 9, &pix_task, 2, 1);
}

static void test_s4d_block(void) {
    // the S4 block with S4D and S4: BatchNorm prenorm, GLU stage, masked mean pool
    const char *kv[] = { "mixer=s4d", "n_layers=2", "d_model=4", "mixer.d_state=4", "mixer.dt_max=0.2",
                         "mixer.bidirectional=true", "dropout=0.1" };
    check_model(kv, 7, &tok_task, 3, 1);
    const char *kv2[] = { "mixer=s4d", "n_layers=1", "d_model=4", "mixer.d_state=4", "prenorm=false", "norm=layer" };
    check_model(kv2, 6, &dual_task, 2, 0);
    const char *kv3[] = { "mixer=s4", "n_layers=2", "d_model=4", "mixer.d_state=4", "mixer.dt_max=0.3", "norm=layer",
                          "mixer.bidirectional=true" };
    check_model(kv3, 7, &pix_task, 3, 1);
}

static void test_s5_block(void) {
    // the S5 block: BatchNorm prenorm (Flax statistics), half_glu1 stage, no final norm
    const char *kv[] = { "mixer=s5", "n_layers=2", "d_model=4", "mixer.ssm_size=4", "mixer.blocks=1",
                         "mixer.bidirectional=true", "dropout=0" };
    check_model(kv, 7, &tok_task, 3, 1);
    const char *kv2[] = { "mixer=s5", "n_layers=1", "d_model=4", "mixer.ssm_size=6", "mixer.blocks=3",
                          "stage=full_glu", "mixer.disc=bilinear", "dropout=0.2" };
    // dropout and batch statistics on: in f32 the differences of this case sit at the noise floor
    check_model(kv2, 8, &pix_task, 3, sizeof(lra_real) == 8);
    const char *kv3[] = { "mixer=attention", "n_layers=1", "d_model=4", "stage=full_glu", "d_ffn=0",
                          "prenorm=false", "norm=layer", "pool=mean" };
    check_model(kv3, 8, &dual_task, 2, 0);
}

static void test_dual(void) {
    const char *kv[] = { "mixer=attention", "n_layers=1", "d_model=4", "d_ffn=4", "combine=nli", "pool=mean",
                         "head_hidden=5,3" };
    check_model(kv, 7, &dual_task, 3, 0);
    const char *kv2[] = { "mixer=attention", "n_layers=1", "d_model=4", "d_ffn=4", "combine=concat", "pool=cls" };
    check_model(kv2, 6, &dual_task, 2, 0);
}

static void test_config_errors(void) {
    lra_model_config c;
    lra_err err = { 0 };
    lra_kv bad_key[] = { { "mixer", "attention", NULL }, { "n_layer", "2", "exp.yaml:3:5" } };
    T_CHECK(lra_model_config_parse(&c, bad_key, 2, &err) == LRA_EINVAL, "unknown key");
    T_CHECK(strstr(err.msg, "exp.yaml:3:5") && strstr(err.msg, "n_layers"), "message: %s", err.msg);
    lra_kv bad_mixer[] = { { "mixer", "s9", "exp.yaml:2:8" } };
    T_CHECK(lra_model_config_parse(&c, bad_mixer, 1, &err) == LRA_EINVAL, "unknown mixer");
    T_CHECK(strstr(err.msg, "exp.yaml:2:8") && strstr(err.msg, "attention"), "message: %s", err.msg);
    lra_kv bad_head[] = { { "mixer", "attention", NULL }, { "head_hidden", "4,x", "exp.yaml:9:1" } };
    T_CHECK(lra_model_config_parse(&c, bad_head, 2, &err) == LRA_EINVAL, "bad head_hidden");
    T_CHECK(strstr(err.msg, "head_hidden"), "message: %s", err.msg);
    lra_kv bad_value[] = { { "mixer", "attention", NULL }, { "norm", "group", "exp.yaml:4:7" } };
    T_CHECK(lra_model_config_parse(&c, bad_value, 2, &err) == LRA_EINVAL, "bad norm");
    T_CHECK(strstr(err.msg, "batch") && strstr(err.msg, "exp.yaml:4:7"), "message: %s", err.msg);
    // a mixer parameter error surfaces when the model is built
    lra_kv bad_mix[] = { { "mixer", "attention", NULL }, { "d_model", "6", NULL }, { "mixer.heads", "4", "exp.yaml:6:3" } };
    T_CHECK(lra_model_config_parse(&c, bad_mix, 3, &err) == 0, "parse: %s", err.msg);
    lra_model m;
    T_CHECK(lra_model_build(&m, &c, &tok_task, t_backend(), 2, 1, &err) == LRA_EINVAL, "4 heads of 6");
    T_CHECK(strstr(err.msg, "exp.yaml:6:3"), "message: %s", err.msg);
}

static void test_batch_errors(void) {
    lra_model_config c;
    lra_err err = { 0 };
    lra_kv kv[] = { { "mixer", "attention", NULL }, { "d_model", "4", NULL }, { "n_layers", "1", NULL } };
    T_CHECK(lra_model_config_parse(&c, kv, 3, &err) == 0, "parse: %s", err.msg);
    lra_model m;
    T_CHECK(lra_model_build(&m, &c, &tok_task, t_backend(), 2, 1, &err) == 0, "build: %s", err.msg);
    batch_buf bb;
    make_batch(&bb, 2, 1, 8, 7, 3, 1);
    bb.tokens[5] = 7;
    T_CHECK(lra_model_forward(&m, &bb.b, 0, 1, &err) == LRA_EINVAL && strstr(err.msg, "token 7"), "token: %s", err.msg);
    bb.tokens[5] = 1;
    bb.labels[1] = 3;
    T_CHECK(lra_model_forward(&m, &bb.b, 0, 1, &err) == LRA_EINVAL && strstr(err.msg, "label 3"), "label: %s", err.msg);
    bb.labels[1] = 0;
    bb.b.B = 3;
    T_CHECK(lra_model_forward(&m, &bb.b, 0, 1, &err) == LRA_EINVAL && strstr(err.msg, "1..2"), "B: %s", err.msg);
    bb.b.B = 1;  // fewer examples than built for: same logits as in a batch of 2
    T_CHECK(lra_model_forward(&m, &bb.b, 0, 1, &err) == 0, "B = 1: %s", err.msg);
    lra_real one[3];
    memcpy(one, m.logits, sizeof one);
    bb.b.B = 2;
    T_CHECK(lra_model_forward(&m, &bb.b, 0, 1, &err) == 0, "B = 2: %s", err.msg);
    for (int k = 0; k < 3; k++) T_CHECK(fabs((double)one[k] - (double)m.logits[k]) < 1e-5, "logit %d differs", k);
    bb.b.labels = NULL;
    T_CHECK(lra_model_forward(&m, &bb.b, 0, 1, &err) == 0, "no labels: %s", err.msg);
    T_CHECK(lra_model_backward(&m, &err) == LRA_EINVAL, "backward without labels");
    lra_model_free(&m);
}

static void test_param_groups(void) {
    lra_model_config c;
    lra_err err = { 0 };
    lra_kv kv[] = { { "mixer", "attention", NULL }, { "d_model", "4", NULL }, { "n_layers", "1", NULL },
                    { "norm", "batch", NULL } };
    T_CHECK(lra_model_config_parse(&c, kv, 4, &err) == 0, "parse: %s", err.msg);
    lra_model m;
    T_CHECK(lra_model_build(&m, &c, &tok_task, t_backend(), 2, 1, &err) == 0, "build: %s", err.msg);
    lra_optim_config o;
    lra_optim_defaults(&o);
    o.lr = 0.01f;
    o.weight_decay = 0.1f;
    lra_param_group g[64];
    int n = lra_model_param_groups(&m, &o, 0, g);
    // every trainable element in exactly one group; decay only on weights
    int64_t covered = 0;
    for (int i = 0; i < n; i++) covered += g[i].count;
    T_CHECK(covered == m.n_trainable, "groups cover %lld of %lld", (long long)covered, (long long)m.n_trainable);
    int64_t off = 0;
    for (int i = 0; i < m.n_params; i++) {
        const lra_param_spec *s = &m.specs[i];
        int in = -1;
        for (int j = 0; j < n; j++)
            if (off >= g[j].offset && off < g[j].offset + g[j].count) in = j;
        if (s->group == LRA_GROUP_BUFFER) T_CHECK(in < 0, "%s: buffer in a group", s->name);
        else if (in >= 0) {
            int decays = strstr(s->name, ".weight") && !strstr(s->name, "norm") && strcmp(s->name, "encoder.weight");
            T_CHECK((g[in].weight_decay > 0) == decays, "%s: weight decay %g", s->name, g[in].weight_decay);
            T_CHECK(g[in].lr == 0.01f, "%s: lr %g", s->name, g[in].lr);
        } else T_CHECK(0, "%s: in no group", s->name);
        off += lra_spec_numel(s);
    }
    lra_model_free(&m);
}

static void test_mega_block(void) {
    if (sizeof(lra_real) < 8) T_SKIP("MEGA's model finite differences run in the f64 build");
    // MEGA: the mixer is the whole sub-layer (own norm, gates, residual), the
    // block's FFN with SiLU is its normalised FFN; LayerNorm postnorm default
    const char *kv[] = { "mixer=mega", "n_layers=2", "d_model=4", "mixer.ndim=2", "mixer.z_dim=3", "mixer.v_dim=5",
                         "dropout=0.1", "mixer.dropout=0.1" };
    check_model_ex(kv, 8, &tok_task, 3, 1, 1);
    const char *kv2[] = { "mixer=mega", "n_layers=1", "d_model=4", "mixer.ndim=2", "mixer.z_dim=3", "norm=batch",
                          "prenorm=true", "mixer.attn=laplace", "mixer.chunk=4" };
    check_model_ex(kv2, 9, &pix_task, 3, 1, 1);
    const char *kv3[] = { "mixer=mega", "n_layers=1", "d_model=4", "mixer.ndim=2", "mixer.z_dim=2", "norm=scale" };
    check_model_ex(kv3, 6, &dual_task, 2, 0, 1);
}

// lra_model_describe writes every setting, the mixer's defaults included, in
// a form the parser reads back to the same model.
static void test_describe_roundtrip(void) {
    static const char *const mixers[] = { "attention", "s4d", "s4", "mega" };
    static const char *const want[] = { "mixer.heads=4", "mixer.d_state=64", "mixer.d_state=64", "mixer.ndim=16" };
    for (int i = 0; i < 4; i++) {
        lra_kv kv[] = { { "mixer", mixers[i], NULL }, { "d_model", "4", NULL }, { "n_layers", "1", NULL } };
        lra_model_config c, c2;
        lra_model a, b;
        lra_err err = { 0 };
        char s1[4096], s2[4096], buf[4096];
        T_CHECK(lra_model_config_parse(&c, kv, 3, &err) == 0 && lra_model_build(&a, &c, &dual_task, t_backend(), 2, 1, &err) == 0,
                "%s", err.msg);
        if (t_case_failures) return;
        T_CHECK(lra_model_describe(&a, s1, sizeof s1) == 0, "describe");
        T_CHECK(strstr(s1, want[i]) != NULL, "%s: defaults written: %s", mixers[i], s1);
        snprintf(buf, sizeof buf, "%s", s1);
        lra_kv kv2[64];
        int n = lra_kv_split(buf, kv2, 64, "describe");
        T_CHECK(n > 0 && lra_model_config_parse(&c2, kv2, n, &err) == 0 &&
                lra_model_build(&b, &c2, &dual_task, t_backend(), 2, 1, &err) == 0, "%s: %s", mixers[i], err.msg);
        if (t_case_failures) return;
        T_CHECK(lra_model_describe(&b, s2, sizeof s2) == 0 && !strcmp(s1, s2), "%s: %s\nvs %s", mixers[i], s1, s2);
        T_CHECK(a.n_real == b.n_real && !memcmp(a.params, b.params, (size_t)a.n_real * sizeof(lra_real)),
                "%s: same seed, same parameters", mixers[i]);
        lra_model_free(&a);
        lra_model_free(&b);
    }
}

static const t_case cases[] = {
    { "model/describe_roundtrip", test_describe_roundtrip },
    { "model/grad/transformer", test_transformer },
    { "model/grad/transformer_dropout", test_transformer_dropout },
    { "model/grad/postnorm_batchnorm_glu", test_postnorm_batchnorm_glu },
    { "model/grad/half_glu_scale_norm", test_half_glu_scale_norm },
    { "model/grad/dual", test_dual },
    { "model/grad/s4d_block", test_s4d_block },
    { "model/grad/s5_block", test_s5_block },
    { "model/grad/mega_block", test_mega_block },
    { "model/config_errors", test_config_errors },
    { "model/batch_errors", test_batch_errors },
    { "model/param_groups", test_param_groups },
};
T_MAIN(cases)
