// test_experiment.c: experiment configs — exact error messages with their
// file:line:column, includes, sweep expansion, canonical configs and their
// hashes, and every shipped config under experiments/ validating.
#include "../harness/experiment.h"
#include "t.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

static char tmp[256];

static void write_yaml(const char *name, const char *text) { t_write_file(tmp, name, text, strlen(text)); }

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", tmp, name); }

// Loads tmp/name and resolves every point; returns the first error code.
static int load_all(const char *name, lra_err *err) {
    char path[512];
    path_of(path, sizeof path, name);
    lra_experiment e;
    int rc = lra_experiment_load(&e, path, err);
    if (rc) return rc;
    for (int64_t i = 0; i < lra_experiment_count(&e) && !rc; i++) {
        lra_run_spec r;
        rc = lra_experiment_point(&e, i, &r, err);
        if (!rc) lra_run_spec_free(&r);
    }
    lra_experiment_free(&e);
    return rc;
}

static void known_mixers(char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < lra_mixer_count(); i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? ", " : "", lra_mixer_at(i)->name);
}

static void known_tasks(char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < lra_task_count(); i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? ", " : "", lra_task_vtable_at(i)->name);
}

// Expects loading `text` (as x.yaml) to fail with exactly `want` (in which
// every "@" stands for the file's path).
static void expect_error(int line, const char *text, const char *want) {
    write_yaml("x.yaml", text);
    char path[512], full[2048] = "";
    path_of(path, sizeof path, "x.yaml");
    for (const char *c = want; *c; c++) {
        if (*c == '@') snprintf(full + strlen(full), sizeof full - strlen(full), "%s", path);
        else snprintf(full + strlen(full), sizeof full - strlen(full), "%c", *c);
    }
    lra_err err = { 0 };
    int rc = load_all("x.yaml", &err);
    if (rc == 0) t_fail_at(__FILE__, line, "accepted, expected: %s", full);
    else if (strcmp(err.msg, full)) t_fail_at(__FILE__, line, "message\n      got:  %s\n      want: %s", err.msg, full);
}

static void test_errors(void) {
    t_tmpdir(tmp, sizeof tmp, "exp");
    char mixers[256], tasks[256], want[1024];
    known_mixers(mixers, sizeof mixers);
    known_tasks(tasks, sizeof tasks);
    expect_error(__LINE__, "task:\n  name: listops\n  seq_len: [1, 2\n",
                 "@:4:1: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence");
    expect_error(__LINE__, "tsak:\n  name: listops\n",
                 "@:1:1: tsak: unknown key (known: include, extends, name, description, seed, data_seed, backend, "
                 "threads, db, out_dir, cache, task, model, optim, train, sweep)");
    expect_error(__LINE__, "task: {name: listops}\nmodel:\n  d_model: abc\n",
                 "@:3:12: model.d_model: expected an integer in [1, 65536], got 'abc'");
    expect_error(__LINE__, "task: {name: listops}\noptim:\n  lr: -1\n",
                 "@:3:7: optim.lr: expected a number in [1e-12, 10], got '-1'");
    snprintf(want, sizeof want, "@:2:16: model.mixer: unknown mixer 's6' (known: %s)", mixers);
    expect_error(__LINE__, "task: {name: listops}\nmodel: {mixer: s6}\n", want);
    expect_error(__LINE__, "task: {name: lisops}\n",
                 "@:1:14: task.name: unknown task 'lisops' (known: listops, text, retrieval, image, pathfinder, pathx)");
    snprintf(want, sizeof want, "@: task.name: missing (known tasks: %s)", tasks);
    expect_error(__LINE__, "model: {d_model: 8}\n", want);
    expect_error(__LINE__, "task: {name: listops}\nmodel:\n  d_model: [1, 2]\n",
                 "@:3:12: model.d_model: expected a single value, not a list (values to try go in the sweep: section)");
    expect_error(__LINE__, "task: {name: listops}\nsweep:\n  zip:\n    model.d_model: [8, 16]\n    optim.lr: [0.1]\n",
                 "@:5:15: sweep.zip.optim.lr: 1 values, but model.d_model has 2 (zipped lists need equal lengths)");
    expect_error(__LINE__, "task: {name: listops}\nsweep:\n  optim.lr: [0.01, -1]\n",
                 "@:3:20: optim.lr: expected a number in [1e-12, 10], got '-1' (sweep point 2 of 2: optim.lr=-1)");
    write_yaml("a.yaml", "include: b.yaml\n");
    write_yaml("b.yaml", "include: a.yaml\n");
    char pa[512];
    path_of(pa, sizeof pa, "a.yaml");
    lra_err err = { 0 };
    lra_experiment e;
    T_CHECK(lra_experiment_load(&e, pa, &err) != 0, "an include cycle was accepted");
    snprintf(want, sizeof want, "%s/b.yaml:1:10: include: %s/a.yaml includes itself (an include cycle)", tmp, tmp);
    T_CHECK(!strcmp(err.msg, want), "cycle: got '%s', want '%s'", err.msg, want);
    expect_error(__LINE__, "task: {name: listops}\ntask: {name: text}\n",
                 "@:2:1: task: duplicate key (first at @:1:1)");
    expect_error(__LINE__, "task: {name: listops}\nmodel: {mixer: s4d, s4d: {d_state: 3}}\n",
                 "@:2:36: model.mixer.d_state: must be even (N/2 conjugate pairs), got 3");
    expect_error(__LINE__, "task: {name: listops}\ntrain: {steps: 10, epochs: 1}\n",
                 "@:2:28: train.epochs: give steps or epochs, not both (steps at @:2:16)");
    expect_error(__LINE__, "task: {name: listops, seq_lenn: 5}\n",
                 "@:1:33: task.seq_lenn: unknown parameter (known: n_train, n_val, n_test, min_length, max_length, "
                 "max_depth, max_args, seq_len, eos, data_dir)");
    expect_error(__LINE__, "", "@:1:1: the file is empty (expected a mapping of settings)");
    expect_error(__LINE__, "task: {name: listops}\nbackend: tpu\n",
                 "@:2:10: backend: unknown value 'tpu' (choices: cpu, cuda, cuda-tf32)");
    expect_error(__LINE__, "task: {name: listops}\nsweep:\n  model.bogus: [1, 2]\n",
                 "@:3:17: model.bogus: unknown parameter (known: mixer, n_layers, d_model, norm, norm_eps, bn_momentum, "
                 "prenorm, final_norm, stage, d_ffn, ffn_act, gelu, dropout, input_dropout, tie_dropout, pos, pool, "
                 "combine, head_hidden, head_act, linear_init, head_init, embed_std) (sweep point 1 of 2: model.bogus=1)");
    expect_error(__LINE__, "task: {name: listops}\nsweep:\n  lr: [1, 2]\n",
                 "@:3:3: sweep.lr: not a setting (sweep a top-level setting: seed, data_seed, backend, threads, or a "
                 "section key such as model.d_model)");
    expect_error(__LINE__, "task: {name: listops}\nsweep:\n  optim.lr: {from: 1, to: 2}\n",
                 "@:3:13: sweep.optim.lr: a range needs exactly one of step and num");
    expect_error(__LINE__, "task: {name: listops}\ntrain: {batch: 10, accum: 3}\n",
                 "@:2:27: train.accum: 3 does not divide the batch of 10");
    t_rm_tree(tmp);
}

// The include error names the resolved path: checked apart from the table.
static void test_include_missing(void) {
    t_tmpdir(tmp, sizeof tmp, "exp");
    write_yaml("x.yaml", "include: nothere.yaml\ntask: {name: listops}\n");
    lra_err err = { 0 };
    T_CHECK(load_all("x.yaml", &err) != 0, "a missing include was accepted");
    char want[1024];
    snprintf(want, sizeof want, "%s/x.yaml:1:10: include: cannot open %s/nothere.yaml: No such file or directory", tmp, tmp);
    T_CHECK(!strcmp(err.msg, want), "got '%s', want '%s'", err.msg, want);
    t_rm_tree(tmp);
}

static void point(const lra_experiment *e, int64_t i, lra_run_spec *r) {
    lra_err err = { 0 };
    T_CHECK(lra_experiment_point(e, i, r, &err) == 0, "point %lld: %s", (long long)i, err.msg);
}

static void load(const char *name, lra_experiment *e) {
    char path[512];
    path_of(path, sizeof path, name);
    lra_err err = { 0 };
    int rc = lra_experiment_load(e, path, &err);
    T_CHECK(rc == 0, "%s: %s", name, err.msg);
    if (rc) memset(e, 0, sizeof *e);
}

static void test_sweep_expansion(void) {
    t_tmpdir(tmp, sizeof tmp, "exp");
    write_yaml("s.yaml",
               "task: {name: listops, seq_len: 64, min_length: 10, max_length: 60}\n"
               "model: {d_model: 16, n_layers: 1}\n"
               "sweep:\n"
               "  model.mixer: [attention, s4d]\n"
               "  optim.lr: {from: 1e-4, to: 1e-2, num: 3, scale: log}\n"
               "  zip:\n"
               "    model.d_model: [8, 16]\n"
               "    train.batch: {from: 4, to: 8, step: 4}\n");
    lra_experiment e;
    load("s.yaml", &e);
    T_CHECK(lra_experiment_count(&e) == 12, "count %lld, want 2*3*2", (long long)lra_experiment_count(&e));
    const char *want[] = { "model.mixer=attention,optim.lr=0.0001,model.d_model=8,train.batch=4",
                           "model.mixer=attention,optim.lr=0.0001,model.d_model=16,train.batch=8",
                           "model.mixer=attention,optim.lr=0.001,model.d_model=8,train.batch=4" };
    lra_run_spec r;
    for (int i = 0; i < 3; i++) {
        point(&e, i, &r);
        T_CHECK(!strcmp(r.label, want[i]), "label %d: %s", i, r.label);
        lra_run_spec_free(&r);
    }
    point(&e, 11, &r);
    T_CHECK(!strcmp(r.label, "model.mixer=s4d,optim.lr=0.01,model.d_model=16,train.batch=8"), "last: %s", r.label);
    T_CHECK(r.model.d_model == 16 && r.train.batch == 8 && !strcmp(r.model.mixer, "s4d"), "point values not applied");
    T_CHECK(fabsf(r.optim.lr - 0.01f) < 1e-9f, "lr %g", r.optim.lr);
    lra_run_spec_free(&r);
    // every point distinct
    char hashes[12][17];
    for (int i = 0; i < 12; i++) {
        point(&e, i, &r);
        memcpy(hashes[i], r.hash, 17);
        lra_run_spec_free(&r);
        for (int j = 0; j < i; j++) T_CHECK(strcmp(hashes[i], hashes[j]), "points %d and %d share a hash", i, j);
    }
    lra_experiment_free(&e);
    t_rm_tree(tmp);
}

static void test_hash_canonical(void) {
    t_tmpdir(tmp, sizeof tmp, "exp");
    write_yaml("a.yaml", "task: {name: listops, seq_len: 64, min_length: 10, max_length: 60}\nmodel: {mixer: s4d, d_model: 16}\noptim: {lr: 0.01}\n");
    write_yaml("base.yaml", "optim: {lr: 0.5}\nmodel: {d_model: 16}\n");
    write_yaml("b.yaml", "# the same run, other order, through an include\ninclude: base.yaml\noptim:\n  lr: 1e-2\n"
                         "model:\n  mixer: {name: s4d}\ntask:\n  seq_len: 64\n  max_length: 60\n  name: listops\n  min_length: 10\n");
    write_yaml("c.yaml", "task: {name: listops, seq_len: 64, min_length: 10, max_length: 60}\nmodel: {mixer: s4d, d_model: 16}\noptim: {lr: 0.02}\n");
    lra_experiment ea, eb, ec;
    load("a.yaml", &ea);
    load("b.yaml", &eb);
    load("c.yaml", &ec);
    lra_run_spec ra, rb, rc;
    point(&ea, 0, &ra);
    point(&eb, 0, &rb);
    point(&ec, 0, &rc);
    if (t_case_failures || !ra.config || !rb.config || !rc.config) return;
    T_CHECK(ra.config && rb.config && !strcmp(ra.config, rb.config), "configs differ:\n%s\n---\n%s", ra.config, rb.config);
    T_CHECK(!strcmp(ra.hash, rb.hash), "hashes differ: %s %s", ra.hash, rb.hash);
    T_CHECK(strcmp(ra.hash, rc.hash), "a changed lr kept the hash");
    // defaults are written out, sorted, mixer hyperparameters included
    T_CHECK(strstr(ra.config, "train.batch = 32\n") && strstr(ra.config, "model.mixer.d_state = 64\n") &&
                strstr(ra.config, "task.max_depth = 10\n") && strstr(ra.config, "optim.lr = 0.01\n"),
            "defaults missing:\n%s", ra.config);
    const char *prev = "";
    for (char *line = ra.config; *line; line = strchr(line, '\n') + 1) {
        char cur[256];
        snprintf(cur, sizeof cur, "%.*s", (int)strcspn(line, "\n"), line);
        T_CHECK(strcmp(prev, cur) < 0, "not sorted: '%s' before '%s'", prev, cur);
        static char keep[256];
        snprintf(keep, sizeof keep, "%s", cur);
        prev = keep;
    }
    lra_run_spec_free(&ra);
    lra_run_spec_free(&rb);
    lra_run_spec_free(&rc);
    lra_experiment_free(&ea);
    lra_experiment_free(&eb);
    lra_experiment_free(&ec);
    t_rm_tree(tmp);
}

static void test_include_and_mixer_sections(void) {
    t_tmpdir(tmp, sizeof tmp, "exp");
    write_yaml("base.yaml", "task: {name: listops, seq_len: 64, min_length: 10, max_length: 60}\nmodel: {mixer: s4, mixer.d_state: 16}\n"
                            "train: {steps: 50}\nsweep: {seed: [1, 2, 3]}\n");
    write_yaml("child.yaml", "include: base.yaml\nmodel:\n  mixer: attention\n  s4d: {d_state: 8}\n  attention: {heads: 2}\n"
                             "sweep:\n  model.mixer: [attention, s4d]\n");
    lra_experiment e;
    load("child.yaml", &e);
    T_CHECK(lra_experiment_count(&e) == 6, "count %lld: seeds x mixers", (long long)lra_experiment_count(&e));
    T_CHECK(!strcmp(e.name, "child"), "name %s", e.name);
    lra_run_spec r;
    point(&e, 0, &r);  // attention, seed 1: the base's s4 d_state was dropped with its mixer
    T_CHECK(!strcmp(r.model.mixer, "attention") && strstr(r.config, "model.mixer.heads = 2\n") && r.seed == 1,
            "attention point:\n%s", r.config);
    T_CHECK(r.train.steps == 50, "steps from the base: %lld", (long long)r.train.steps);
    lra_run_spec_free(&r);
    point(&e, 1, &r);  // s4d, seed 1
    T_CHECK(!strcmp(r.model.mixer, "s4d") && strstr(r.config, "model.mixer.d_state = 8\n") && !strstr(r.config, "heads"),
            "s4d point:\n%s", r.config);
    lra_run_spec_free(&r);
    lra_err err = { 0 };
    T_CHECK(lra_experiment_set(&e, "model.mixer", "s4d", "--set", &err) == 0, "%s", err.msg);
    T_CHECK(lra_experiment_count(&e) == 3, "--set did not remove the axis");
    T_CHECK(lra_experiment_set(&e, "optimm.lr", "1", "--set", &err) != 0 &&
                !strcmp(err.msg, "--set: optimm.lr: unknown key (a top-level setting or task.*, model.*, optim.*, train.*)"),
            "unknown --set key: %s", err.msg);
    lra_experiment_free(&e);
    t_rm_tree(tmp);
}

// Every registered mixer resolves in a config (configured alone, freed
// without a backend), so a sweep over all mixers validates.
static void test_every_mixer(void) {
    t_tmpdir(tmp, sizeof tmp, "exp");
    char text[1024] = "task: {name: listops, seq_len: 64, min_length: 10, max_length: 60}\nmodel: {d_model: 16, n_layers: 1}\nsweep:\n  model.mixer: [";
    for (int i = 0; i < lra_mixer_count(); i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", i ? ", " : "", lra_mixer_at(i)->name);
    snprintf(text + strlen(text), sizeof text - strlen(text), "]\n");
    write_yaml("m.yaml", text);
    lra_err err = { 0 };
    T_CHECK(load_all("m.yaml", &err) == 0, "%s", err.msg);
    t_rm_tree(tmp);
}

// Every shipped config (experiments/**.yaml, except partial files whose
// name starts with '_') validates at every sweep point.
static int check_tree(const char *dir, int *n_files) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || de->d_name[0] == '_') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(path, &sb)) continue;
        if (S_ISDIR(sb.st_mode)) {
            check_tree(path, n_files);
            continue;
        }
        size_t n = strlen(path);
        if (n < 5 || strcmp(path + n - 5, ".yaml")) continue;
        lra_experiment e;
        lra_err err = { 0 };
        int rc = lra_experiment_load(&e, path, &err);
        for (int64_t i = 0; !rc && i < lra_experiment_count(&e); i++) {
            lra_run_spec r;
            if (!(rc = lra_experiment_point(&e, i, &r, &err))) lra_run_spec_free(&r);
        }
        if (rc) t_fail_at(__FILE__, __LINE__, "%s", err.msg);
        else lra_experiment_free(&e);
        (*n_files)++;
    }
    closedir(d);
    return 1;
}

static void test_shipped(void) {
    int n = 0;
    if (!check_tree("experiments", &n)) T_SKIP("experiments/ not found (run from the repository root)");
    printf("    %d config files valid\n", n);
    T_CHECK(n >= 1, "no config files found");
}

static const t_case cases[] = {
    { "experiment/errors", test_errors },
    { "experiment/include_missing", test_include_missing },
    { "experiment/sweep_expansion", test_sweep_expansion },
    { "experiment/hash_canonical", test_hash_canonical },
    { "experiment/include_mixer_sections", test_include_and_mixer_sections },
    { "experiment/every_mixer", test_every_mixer },
    { "experiment/shipped", test_shipped },
};
T_MAIN(cases)
