// data.c: `lra data`: list the tasks, show an example, build the cache of a
// generated task, export a split to the official file formats.
#include "data.h"

#include "../tasks/dataset.h"
#include "../tasks/pngio.h"
#include "args.h"
#include "progress.h"

#include <string.h>

#define DATA_MAX_PARAMS 32

typedef struct {
    const char *task, *split_name, *out, *cache;
    int64_t     index, n;
    uint64_t    seed;
    lra_kv      params[DATA_MAX_PARAMS];
    int         n_params;
} data_args;

static const char data_usage[] =
    "usage: lra data list\n"
    "       lra data show TASK [--split S] [--index I] [--out FILE.png] [options]\n"
    "       lra data build TASK [--cache DIR] [options]\n"
    "       lra data export TASK --split S --out DIR [--n N] [options]\n"
    "options: --param KEY=VALUE (repeatable; task parameters, see README), --seed N (default 1)\n";

static int parse_split(const char *s, lra_split *out, lra_err *err) {
    for (int i = 0; i < LRA_SPLIT_COUNT; i++)
        if (!strcmp(s, lra_split_names[i])) { *out = (lra_split)i; return LRA_OK; }
    return lra_err_set(err, LRA_EUSAGE, "--split: unknown split '%s' (choices: train, val, test)", s);
}

static const char *const data_options[] = { "--split", "--out", "--cache", "--index", "--n", "--seed", "--param",
                                            NULL };

static int parse_data_args(int argc, char **argv, data_args *a, lra_err *err) {
    memset(a, 0, sizeof *a);
    a->split_name = "train";
    a->n = -1;
    a->seed = 1;
    a->cache = getenv("LRA_CACHE") ? getenv("LRA_CACHE") : ".cache/lra";
    int i = 0;
    while (i < argc) {
        const char *o = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t iv;
        int rc = LRA_OK;
        if (o[0] != '-') {
            if (a->task) return lra_err_set(err, LRA_EUSAGE, "unexpected argument '%s'", o);
            a->task = o;
            i++;
            continue;
        }
        if ((rc = lra_arg_option(o, v, data_options, "lra data", err))) return rc;
        if (!strcmp(o, "--split")) a->split_name = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--cache")) a->cache = v;
        else if (!strcmp(o, "--index")) rc = lra_arg_int64(o, v, 0, INT64_MAX, &a->index, err);
        else if (!strcmp(o, "--n")) rc = lra_arg_int64(o, v, 1, INT64_MAX, &a->n, err);
        else if (!strcmp(o, "--seed")) { rc = lra_arg_int64(o, v, 0, INT64_MAX, &iv, err); a->seed = (uint64_t)iv; }
        else if (!strcmp(o, "--param")) rc = lra_arg_kv(o, v, a->params, &a->n_params, DATA_MAX_PARAMS, err);
        if (rc) return rc;
        i += 2;
    }
    return LRA_OK;
}

static void print_info(const lra_task_info *in) {
    printf("task %s: %d input%s of length %d, vocab %d (pad %d), %d classes\n", in->name, in->n_inputs,
           in->n_inputs > 1 ? "s" : "", in->seq_len, in->vocab, in->pad_id, in->n_classes);
    printf("splits: train %lld, val %lld, test %lld; source: %s\n", (long long)in->split_size[0],
           (long long)in->split_size[1], (long long)in->split_size[2], in->source);
    printf("parameters: %s\n", in->params);
}

static int data_list(lra_err *err) {
    printf("%-11s %-9s %-6s %-6s %-8s %-26s %s\n", "task", "length", "vocab", "classes", "inputs",
           "train/val/test", "what");
    for (int i = 0; i < lra_task_count(); i++) {
        const lra_task_vtable *vt = lra_task_vtable_at(i);
        lra_task t;
        if (lra_task_open(&t, vt->name, NULL, 0, 1, err)) return err->code;
        const lra_task_info *in = &t.info;
        char sizes[64];
        snprintf(sizes, sizeof sizes, "%lld/%lld/%lld", (long long)in->split_size[0], (long long)in->split_size[1],
                 (long long)in->split_size[2]);
        printf("%-11s %-9d %-6d %-7d %-8d %-26s %s\n", vt->name, in->seq_len, in->vocab, in->n_classes,
               in->n_inputs, sizes, vt->summary);
        lra_task_close(&t);
    }
    printf("\nPath-X is pathfinder with --param resolution=128 (task name 'pathx' does the same).\n");
    return LRA_OK;
}

static int data_show(data_args *a, lra_task *t, lra_err *err) {
    lra_split split = LRA_SPLIT_TRAIN;
    if (parse_split(a->split_name, &split, err)) return err->code;
    const lra_task_info *in = &t->info;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)in->n_inputs * in->seq_len);
    int32_t len[2];
    lra_example ex = { tok, len, 0 };
    int rc = tok ? LRA_OK : lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (!rc && a->index >= in->split_size[split])
        rc = lra_err_set(err, LRA_EINVAL, "--index: %lld is past the end of split %s (%lld examples)",
                         (long long)a->index, a->split_name, (long long)in->split_size[split]);
    if (!rc) rc = t->vt->example(t, split, a->index, &ex, err);
    if (!rc) {
        print_info(in);
        printf("example %s[%lld]: label %d, length %d\n", a->split_name, (long long)a->index, ex.label, len[0]);
        if (in->image_side) {
            const char *out = a->out ? a->out : "example.png";
            uint8_t *px = malloc((size_t)in->seq_len);
            for (int i = 0; px && i < in->seq_len; i++) px[i] = (uint8_t)tok[i];
            rc = px ? lra_png_write_gray(out, px, in->image_side, in->image_side, err)
                    : lra_err_set(err, LRA_ENOMEM, "out of memory");
            if (!rc) printf("image written to %s (%dx%d)\n", out, in->image_side, in->image_side);
            free(px);
        } else if (t->vt->describe) {
            t->vt->describe(t, &ex, stdout);
        }
    }
    free(tok);
    return rc;
}

static int data_build(data_args *a, lra_task *t, lra_err *err) {
    lra_dataset ds;
    lra_progress p;
    char label[64];
    snprintf(label, sizeof label, "generating %s", t->info.name);
    lra_progress_init(&p, label);
    double t0 = lra_now();
    int rc = lra_dataset_open(&ds, t, a->cache, lra_progress_update, &p, err);
    if (rc) return rc;
    int64_t total = t->info.split_size[0] + t->info.split_size[1] + t->info.split_size[2];
    if (!strncmp(ds.cache_note, "built", 5) || !strncmp(ds.cache_note, "rebuilt", 7)) lra_progress_finish(&p, total);
    double dt = lra_now() - t0;
    print_info(&t->info);
    printf("cache: %s\n%lld examples in %.2f s (%.0f examples/s)\n", ds.cache_note, (long long)total, dt,
           dt > 0 ? total / dt : 0);
    lra_dataset_close(&ds);
    return LRA_OK;
}

static int data_export(data_args *a, lra_task *t, lra_err *err) {
    lra_split split = LRA_SPLIT_TRAIN;
    if (parse_split(a->split_name, &split, err)) return err->code;
    if (!a->out) return lra_err_set(err, LRA_EUSAGE, "export: --out DIR is required");
    if (!t->vt->export_split)
        return lra_err_set(err, LRA_EUNSUPPORTED, "task %s has no official file format to export", t->info.name);
    if (lra_mkdirs(a->out, err)) return err->code;
    lra_progress p;
    char label[64];
    snprintf(label, sizeof label, "exporting %s %s", t->info.name, a->split_name);
    lra_progress_init(&p, label);
    int64_t n = a->n < 0 || a->n > t->info.split_size[split] ? t->info.split_size[split] : a->n;
    int rc = t->vt->export_split(t, split, a->out, n, lra_progress_update, &p, err);
    if (rc) return rc;
    lra_progress_finish(&p, n);
    printf("exported %lld %s examples of %s to %s\n", (long long)n, a->split_name, t->info.name, a->out);
    return LRA_OK;
}

int lra_cmd_data(int argc, char **argv, lra_err *err) {
    if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help")) {
        fputs(data_usage, stdout);
        return argc < 1 ? lra_err_set(err, LRA_EUSAGE, "missing subcommand (list, show, build, export)") : LRA_OK;
    }
    const char *sub = argv[0];
    if (!strcmp(sub, "list")) return data_list(err);
    if (strcmp(sub, "show") && strcmp(sub, "build") && strcmp(sub, "export"))
        return lra_err_set(err, LRA_EUSAGE, "unknown subcommand '%s' (list, show, build, export)", sub);
    data_args a;
    if (parse_data_args(argc - 1, argv + 1, &a, err)) return err->code;
    if (!a.task) return lra_err_set(err, LRA_EUSAGE, "%s: missing TASK (see 'lra data list')", sub);
    lra_task t;
    if (lra_task_open(&t, a.task, a.params, a.n_params, a.seed, err)) return err->code;
    int rc = !strcmp(sub, "show") ? data_show(&a, &t, err) : !strcmp(sub, "build") ? data_build(&a, &t, err)
                                                                                   : data_export(&a, &t, err);
    lra_task_close(&t);
    return rc;
}
