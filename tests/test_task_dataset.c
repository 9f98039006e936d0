// test_task_dataset.c: the on-disk cache of generated tasks: built once,
// loaded the second time with identical examples, rebuilt (never used) when
// corrupt, truncated or made for other parameters.
#include "../tasks/dataset.h"
#include "t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// A tiny generated task: tokens are a function of (seed, split, index).
static int toy_open(lra_task *t, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    static const char *const known[] = { "len", NULL };
    int64_t len;
    if (lra_kv_check_known(params, n_params, "toy", known, err) ||
        lra_kv_int(params, n_params, "toy", "len", 8, 1, 4096, &len, err))
        return err->code;
    memset(&t->info, 0, sizeof t->info);
    snprintf(t->info.name, sizeof t->info.name, "toy");
    t->info.n_inputs = 2;
    t->info.seq_len = (int)len;
    t->info.vocab = 300;  // needs 2-byte tokens
    t->info.n_classes = 3;
    t->info.split_size[0] = 2500; t->info.split_size[1] = 7; t->info.split_size[2] = 1;
    snprintf(t->info.params, sizeof t->info.params, "len=%lld", (long long)len);
    snprintf(t->info.source, sizeof t->info.source, "generated (seed %llu)", (unsigned long long)seed);
    t->info.generator_version = 1;
    t->seed = seed;
    return LRA_OK;
}

static int toy_example(const lra_task *t, lra_split s, int64_t i, lra_example *ex, lra_err *err) {
    (void)err;
    lra_rng r = { lra_example_seed(t->seed, 7, s, i), 0 };
    for (int k = 0; k < 2; k++) {
        ex->length[k] = (int32_t)lra_rng_int(&r, 1, t->info.seq_len);
        for (int j = 0; j < t->info.seq_len; j++)
            ex->tokens[k * t->info.seq_len + j] = j < ex->length[k] ? (int32_t)lra_rng_int(&r, 1, 299) : 0;
    }
    ex->label = (int32_t)lra_rng_int(&r, 0, 2);
    return LRA_OK;
}

static void toy_close(lra_task *t) { (void)t; }

static const lra_task_vtable toy_vt = { .name = "toy", .open = toy_open, .example = toy_example, .close = toy_close };

static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lra-test-dataset-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); exit(2); }
}

static void open_toy(lra_task *t, const char *len) {
    lra_kv kv = { "len", len, "test" };
    lra_err err = {0};
    t->vt = &toy_vt;
    if (toy_open(t, &kv, 1, 42, &err) != LRA_OK) { fprintf(stderr, "%s\n", err.msg); exit(2); }
}

// 1 when every example of the dataset equals the task's own
static int same_as_task(lra_dataset *ds) {
    const lra_task_info *in = &ds->task->info;
    int32_t a[2 * 64], b[2 * 64], la[2], lb[2];
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int64_t i = 0; i < in->split_size[s]; i++) {
            lra_example x = { a, la, 0 }, y = { b, lb, 0 };
            lra_err err = {0};
            if (lra_dataset_example(ds, (lra_split)s, i, &x, &err) || toy_example(ds->task, (lra_split)s, i, &y, &err))
                return 0;
            if (memcmp(a, b, sizeof(int32_t) * 2 * (size_t)in->seq_len) || memcmp(la, lb, sizeof la) ||
                x.label != y.label)
                return 0;
        }
    return 1;
}

static void test_build_and_load(void) {
    make_tmpdir();
    lra_task t;
    open_toy(&t, "37");
    lra_dataset ds;
    lra_err err = {0};
    T_CHECK(lra_dataset_open(&ds, &t, tmpdir, NULL, NULL, &err) == LRA_OK, "%s", err.msg);
    T_CHECK(strncmp(ds.cache_note, "built ", 6) == 0, "first open builds: %s", ds.cache_note);
    T_CHECK(same_as_task(&ds), "built cache serves the task's examples");
    lra_dataset_close(&ds);
    T_CHECK(lra_dataset_open(&ds, &t, tmpdir, NULL, NULL, &err) == LRA_OK, "%s", err.msg);
    T_CHECK(strncmp(ds.cache_note, "loaded ", 7) == 0, "second open loads: %s", ds.cache_note);
    T_CHECK(same_as_task(&ds), "loaded cache serves the task's examples");
    // out of range
    int32_t tok[74], len[2];
    lra_example ex = { tok, len, 0 };
    T_CHECK(lra_dataset_example(&ds, LRA_SPLIT_VAL, 7, &ex, &err) == LRA_EINVAL, "index past the split");
    T_CHECK(strcmp(err.msg, "toy: no example 7 in split val (size 7)") == 0, "message: %s", err.msg);
    char path[1024];
    snprintf(path, sizeof path, "%s", ds.path);
    lra_dataset_close(&ds);

    // flip one byte in the records: detected by the checksum, rebuilt
    int fd = open(path, O_RDWR);
    unsigned char c;
    T_CHECK(pread(fd, &c, 1, 5000) == 1, "read");
    c ^= 0x40;
    T_CHECK(pwrite(fd, &c, 1, 5000) == 1, "write");
    close(fd);
    T_CHECK(lra_dataset_open(&ds, &t, tmpdir, NULL, NULL, &err) == LRA_OK, "%s", err.msg);
    T_CHECK(strstr(ds.cache_note, "rebuilt") && strstr(ds.cache_note, "checksum mismatch"), "%s", ds.cache_note);
    T_CHECK(same_as_task(&ds), "rebuilt cache is right");
    lra_dataset_close(&ds);

    // truncate: detected by the size, rebuilt
    T_CHECK(truncate(path, 1000) == 0, "truncate");
    T_CHECK(lra_dataset_open(&ds, &t, tmpdir, NULL, NULL, &err) == LRA_OK, "%s", err.msg);
    T_CHECK(strstr(ds.cache_note, "rebuilt") && strstr(ds.cache_note, "size 1000"), "%s", ds.cache_note);
    lra_dataset_close(&ds);

    // other parameters: another file, built afresh
    lra_task t2;
    open_toy(&t2, "12");
    T_CHECK(lra_dataset_open(&ds, &t2, tmpdir, NULL, NULL, &err) == LRA_OK, "%s", err.msg);
    T_CHECK(strncmp(ds.cache_note, "built ", 6) == 0 && strcmp(ds.path, path) != 0, "%s", ds.cache_note);
    T_CHECK(same_as_task(&ds), "second parameter set");
    lra_dataset_close(&ds);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    T_CHECK(system(cmd) == 0, "cleanup");
}

static void test_no_cache(void) {
    lra_task t;
    open_toy(&t, "5");
    lra_dataset ds;
    lra_err err = {0};
    T_CHECK(lra_dataset_open(&ds, &t, NULL, NULL, NULL, &err) == LRA_OK && ds.fd == -1, "no cache dir");
    T_CHECK(same_as_task(&ds), "examples on demand");
    lra_dataset_close(&ds);
}

static void test_bad_param(void) {
    lra_task t;
    lra_kv kv[2] = { { "len", "0", "exp.yaml:3:7" }, { "lenght", "4", "exp.yaml:4:7" } };
    lra_err err = {0};
    T_CHECK(toy_open(&t, kv, 2, 1, &err) == LRA_EINVAL, "unknown key refused");
    T_CHECK(strcmp(err.msg, "exp.yaml:4:7: toy.lenght: unknown parameter (known: len)") == 0, "%s", err.msg);
    T_CHECK(toy_open(&t, kv, 1, 1, &err) == LRA_EINVAL, "range");
    T_CHECK(strcmp(err.msg, "exp.yaml:3:7: toy.len: expected an integer in [1, 4096], got '0'") == 0, "%s", err.msg);
}

static const t_case cases[] = {
    { "dataset/build_and_load", test_build_and_load },
    { "dataset/no_cache", test_no_cache },
    { "dataset/bad_param", test_bad_param },
};
T_MAIN(cases)
