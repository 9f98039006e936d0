// dump.c: `lra dump TASK --model KEY=VALUE ... --out FILE`: builds the model,
// takes the first B examples of a split, runs one forward and backward pass
// and writes parameters, inputs, logits, loss and every gradient to one
// safetensors bundle, so that another framework can check lra on identical
// weights and inputs (tests/ref/check_bundle.py does it with PyTorch).
#include "dump.h"

#include "../models/checkpoint.h"
#include "../tasks/task.h"
#include "args.h"

#include <string.h>

#define DUMP_MAX_KV 64

static const char dump_usage[] =
    "usage: lra dump TASK --out FILE [options]\n"
    "  --model KEY=VALUE   model parameter (repeatable), e.g. mixer=s4d, d_model=64, mixer.d_state=16\n"
    "  --param KEY=VALUE   task parameter (repeatable, see 'lra data help')\n"
    "  --batch N           examples (default 4), the first N of the split\n"
    "  --split NAME        train (default), val or test\n"
    "  --mode eval|train   eval (default): no dropout, BatchNorm running statistics;\n"
    "                      train: batch statistics and dropout (lra's random streams)\n"
    "  --seed N            seed of the data and of the initialisation (default 1)\n"
    "  --backend NAME      cpu (default) or cuda;  --threads N  CPU threads\n";

typedef struct {
    const char *task, *out, *backend, *split, *mode;
    lra_kv      model[DUMP_MAX_KV], params[DUMP_MAX_KV];
    int         n_model, n_params, batch, threads;
    uint64_t    seed;
} dump_args;

static const char *const dump_options[] = { "--out", "--model", "--param", "--batch", "--split", "--mode", "--seed",
                                            "--backend", "--threads", NULL };

static int parse(int argc, char **argv, dump_args *a, lra_err *err) {
    memset(a, 0, sizeof *a);
    a->backend = "cpu";
    a->split = "train";
    a->mode = "eval";
    a->batch = 4;
    a->seed = 1;
    for (int i = 0; i < argc;) {
        const char *o = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = LRA_OK;
        if (o[0] != '-') {
            if (a->task) return lra_err_set(err, LRA_EUSAGE, "unexpected argument '%s'", o);
            a->task = o;
            i++;
            continue;
        }
        if ((rc = lra_arg_option(o, v, dump_options, "lra dump", err))) return rc;
        int64_t iv;
        if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--model")) rc = lra_arg_kv(o, v, a->model, &a->n_model, DUMP_MAX_KV, err);
        else if (!strcmp(o, "--param")) rc = lra_arg_kv(o, v, a->params, &a->n_params, DUMP_MAX_KV, err);
        else if (!strcmp(o, "--batch")) rc = lra_arg_int(o, v, 1, &a->batch, err);
        else if (!strcmp(o, "--split")) a->split = v;
        else if (!strcmp(o, "--mode")) a->mode = v;
        else if (!strcmp(o, "--backend")) a->backend = v;
        else if (!strcmp(o, "--threads")) rc = lra_arg_int(o, v, 0, &a->threads, err);
        else if (!strcmp(o, "--seed")) { rc = lra_arg_int64(o, v, 0, INT64_MAX, &iv, err); a->seed = (uint64_t)iv; }
        if (rc) return rc;
        i += 2;
    }
    if (!a->task) return lra_err_set(err, LRA_EUSAGE, "missing TASK\n%s", dump_usage);
    if (!a->out) return lra_err_set(err, LRA_EUSAGE, "missing --out FILE\n%s", dump_usage);
    if (strcmp(a->mode, "eval") && strcmp(a->mode, "train"))
        return lra_err_set(err, LRA_EUSAGE, "--mode: expected eval or train, got '%s'", a->mode);
    return LRA_OK;
}

// The first B examples of the split, in the model's batch layout.
static int read_batch(lra_task *t, lra_split split, int B, int32_t **tok, int32_t **len, int32_t **lab, lra_err *err) {
    const lra_task_info *in = &t->info;
    if (B > in->split_size[split])
        return lra_err_set(err, LRA_EINVAL, "--batch: %d examples, split has %lld", B, (long long)in->split_size[split]);
    *tok = calloc((size_t)B * in->n_inputs * in->seq_len, sizeof **tok);
    *len = calloc((size_t)B * in->n_inputs, sizeof **len);
    *lab = calloc((size_t)B, sizeof **lab);
    if (!*tok || !*len || !*lab) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    for (int e = 0; e < B; e++) {
        lra_example ex = { *tok + (int64_t)e * in->n_inputs * in->seq_len, *len + e * in->n_inputs, 0 };
        int rc = t->vt->example(t, split, e, &ex, err);
        if (rc) return rc;
        (*lab)[e] = ex.label;
    }
    return LRA_OK;
}

static int find_split(const char *name, lra_split *out, lra_err *err) {
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        if (!strcmp(name, lra_split_names[s])) {
            *out = (lra_split)s;
            return LRA_OK;
        }
    return lra_err_set(err, LRA_EUSAGE, "--split: expected train, val or test, got '%s'", name);
}

int lra_cmd_dump(int argc, char **argv, lra_err *err) {
    dump_args a;
    lra_split split = LRA_SPLIT_TRAIN;
    int rc = parse(argc, argv, &a, err);
    if (!rc) rc = find_split(a.split, &split, err);
    if (rc) return rc;
    lra_task t = { 0 };
    lra_model m = { 0 };
    lra_model_config cfg;
    lra_backend *be = NULL;
    int32_t *tok = NULL, *len = NULL, *lab = NULL;
    rc = lra_task_open(&t, a.task, a.params, a.n_params, a.seed, err);
    if (!rc) rc = lra_model_config_parse(&cfg, a.model, a.n_model, err);
    if (!rc && !(be = lra_backend_init(a.backend, a.threads, err))) rc = err->code;
    const lra_task_info *in = &t.info;
    lra_model_task mt = { in->vocab, in->n_classes, in->n_inputs, in->seq_len, in->scalar_input, in->scalar_mean,
                          in->scalar_std };
    if (!rc) rc = lra_model_build(&m, &cfg, &mt, be, a.batch, a.seed, err);
    if (!rc) rc = read_batch(&t, split, a.batch, &tok, &len, &lab, err);
    lra_batch b = { a.batch, tok, len, lab };
    int train = !strcmp(a.mode, "train");
    if (!rc) rc = lra_model_forward(&m, &b, train, a.seed, err);
    if (!rc) {
        lra_model_zero_grad(&m);
        rc = lra_model_backward(&m, err);
    }
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a.seed);
    lra_kv meta[] = { { "task", in->name, NULL }, { "task_params", in->params, NULL }, { "split", a.split, NULL },
                      { "seed", seed, NULL }, { "backend", be ? be->device : "", NULL } };
    if (!rc) rc = lra_bundle_write(&m, &b, a.out, meta, 5, err);
    if (!rc)
        printf("wrote %s: %s, %d parameter tensors (%lld values), batch %d of %s/%s, loss %.6f\n", a.out, cfg.mixer,
               m.n_params, (long long)m.n_real, a.batch, in->name, a.split, m.loss);
    free(tok);
    free(len);
    free(lab);
    lra_model_free(&m);
    if (be) lra_backend_free(be);
    if (t.vt) lra_task_close(&t);
    return rc;
}
