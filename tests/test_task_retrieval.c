// test_task_retrieval.c: the Retrieval task (tasks/retrieval.c): parameters,
// generator determinism and statistics, the long-range property (an oracle
// that knows each key's topic is exact on whole papers and near chance on
// their first 200 bytes), the TSV round trip and every loader error message.
#include "../tasks/retrieval.h"
#include "t.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { L_MAX = 4000 };

// ---- helpers ---------------------------------------------------------------------------

static void make_tmp(char *dir) { t_tmpdir(dir, 64, "retrieval"); }

static void put_file(const char *dir, const char *name, const char *content) {
    t_write_file(dir, name, content, strlen(content));
}

// A valid release directory of one pair per file.
static void make_aan(const char *dir) {
    put_file(dir, "new_aan_pairs.train.tsv", "1\tP1\tP2\tabc\tdef\n");
    put_file(dir, "new_aan_pairs.eval.tsv", "0\tP1\tP3\tabc\tghi\n");
    put_file(dir, "new_aan_pairs.test.tsv", "1.0\tP4\tP5\tx\ty\n");
}

static int open_retrieval(lra_task *t, const lra_kv *kv, int n, uint64_t seed, lra_err *e) {
    memset(t, 0, sizeof *t);
    t->vt = &lra_task_retrieval;
    return lra_task_retrieval.open(t, kv, n, seed, e);
}

typedef struct {
    int32_t tokens[2 * L_MAX];
    int32_t length[2];
    lra_example ex;
} pair_ex;

static int get(const lra_task *t, lra_split s, int64_t i, pair_ex *x) {
    lra_err e = {0};
    x->ex = (lra_example){ x->tokens, x->length, -1 };
    int rc = lra_task_retrieval.example(t, s, i, &x->ex, &e);
    T_CHECK(rc == LRA_OK, "example %s %lld: %s", lra_split_names[s], (long long)i, e.msg);
    return rc;
}

static uint64_t hash_example(const pair_ex *x, int L) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 2 * L; i++) h = (h ^ (uint64_t)x->tokens[i]) * 1099511628211ull;
    return lra_mix64(h ^ (uint64_t)x->length[0] ^ ((uint64_t)x->length[1] << 20) ^ ((uint64_t)x->ex.label << 40));
}

// ---- parameters --------------------------------------------------------------------------

static void test_open_defaults(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_retrieval(&t, NULL, 0, 3, &e) == LRA_OK, "open: %s", e.msg);
    const lra_task_info *in = &t.info;
    T_CHECK(strcmp(in->name, "retrieval") == 0 && in->n_inputs == 2 && in->seq_len == 4000 && in->vocab == 257 &&
                in->pad_id == 0 && in->n_classes == 2 && in->image_side == 0,
            "shape of the task");
    T_CHECK(in->split_size[0] == 147086 && in->split_size[1] == 18090 && in->split_size[2] == 17437, "LRA sizes");
    T_CHECK(strcmp(in->params, "seq_len=4000;n_train=147086;n_val=18090;n_test=17437") == 0, "params: %s",
            in->params);
    T_CHECK(strcmp(in->source, "generated (seed 3)") == 0, "source: %s", in->source);
    lra_task_retrieval.close(&t);
    T_CHECK(t.state == NULL, "close clears state");
}

static void test_bad_params(void) {
    lra_task t;
    lra_err e = {0};
    lra_kv unknown[] = { { "max_length", "4000", "r.yaml:2:1" } };
    T_CHECK(open_retrieval(&t, unknown, 1, 1, &e) == LRA_EINVAL, "unknown key refused");
    T_CHECK(strcmp(e.msg, "r.yaml:2:1: retrieval.max_length: unknown parameter (known: data_dir, seq_len, n_train, n_val, n_test)") == 0,
            "message: %s", e.msg);
    lra_kv long_len[] = { { "seq_len", "10001", NULL } };
    T_CHECK(open_retrieval(&t, long_len, 1, 1, &e) == LRA_EINVAL, "seq_len 10001 refused");
    T_CHECK(strcmp(e.msg, "parameter: retrieval.seq_len: expected an integer in [512, 10000], got '10001'") == 0,
            "message: %s", e.msg);
    lra_kv sized[] = { { "n_test", "5", "--param" }, { "data_dir", "/x", NULL } };
    T_CHECK(open_retrieval(&t, sized, 2, 1, &e) == LRA_EINVAL, "n_test with data_dir refused");
    T_CHECK(strcmp(e.msg, "--param: retrieval.n_test: not used with data_dir (the split sizes come from the files)") == 0,
            "message: %s", e.msg);
    lra_kv empty[] = { { "data_dir", "", "c.yaml:1:1" } };
    T_CHECK(open_retrieval(&t, empty, 1, 1, &e) == LRA_EINVAL, "empty data_dir refused");
    T_CHECK(strcmp(e.msg, "c.yaml:1:1: retrieval.data_dir: expected a directory, got ''") == 0, "message: %s", e.msg);
    char long_dir[300];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = 0;
    lra_kv too_long[] = { { "data_dir", long_dir, NULL } };
    T_CHECK(open_retrieval(&t, too_long, 1, 1, &e) == LRA_EINVAL, "long data_dir refused");
    T_CHECK(strcmp(e.msg, "parameter: retrieval.data_dir: path longer than 255 bytes") == 0, "message: %s", e.msg);
}

static void test_export_errors(void) {
    char dir[64], bad[128];
    make_tmp(dir);
    put_file(dir, "file", "x");
    snprintf(bad, sizeof bad, "%s/file/sub", dir);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "seq_len", "1000", NULL }, { "n_train", "3", NULL } };
    T_CHECK(open_retrieval(&t, kv, 2, 1, &e) == LRA_OK, "open: %s", e.msg);
    T_CHECK(lra_task_retrieval.export_split(&t, LRA_SPLIT_TRAIN, bad, -1, NULL, NULL, &e) == LRA_EIO,
            "export must fail");
    char want[256];
    snprintf(want, sizeof want, "%s: cannot create directory: Not a directory", bad);
    T_CHECK(strcmp(e.msg, want) == 0, "message: %s", e.msg);
    lra_task_retrieval.close(&t);
    t_rm_tree(dir);
}

// ---- generator --------------------------------------------------------------------------------

static void test_determinism(void) {
    lra_task a, b;
    lra_err e = {0};
    T_CHECK(open_retrieval(&a, NULL, 0, 5, &e) == LRA_OK && open_retrieval(&b, NULL, 0, 5, &e) == LRA_OK, "open");
    enum { N = 48 };
    static uint64_t seq[LRA_SPLIT_COUNT][N], par[LRA_SPLIT_COUNT][N];
    static pair_ex x;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            get(&a, (lra_split)s, i, &x);
            seq[s][i] = hash_example(&x, L_MAX);
            get(&b, (lra_split)s, i, &x);
            T_CHECK(hash_example(&x, L_MAX) == seq[s][i], "same pair from a second open");
        }
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        int failures = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : failures)
        for (int i = N - 1; i >= 0; i--) {
            pair_ex *y = malloc(sizeof *y);
            lra_err e2 = {0};
            y->ex = (lra_example){ y->tokens, y->length, -1 };
            failures += lra_task_retrieval.example(&a, (lra_split)s, i, &y->ex, &e2) != LRA_OK;
            par[s][i] = hash_example(y, L_MAX);
            free(y);
        }
        T_CHECK(failures == 0, "parallel generation failed");
        T_CHECK(memcmp(seq[s], par[s], sizeof seq[s]) == 0, "split %s: threads change examples", lra_split_names[s]);
    }
    lra_task c;
    T_CHECK(open_retrieval(&c, NULL, 0, 6, &e) == LRA_OK, "open");
    get(&c, LRA_SPLIT_TRAIN, 0, &x);
    T_CHECK(hash_example(&x, L_MAX) != seq[0][0], "the seed changes the examples");
    lra_task_retrieval.close(&c);
    lra_task_retrieval.close(&a);
    lra_task_retrieval.close(&b);
}

static void test_disjoint_splits(void) {
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "seq_len", "512", NULL } };
    T_CHECK(open_retrieval(&t, kv, 1, 1, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 500 };
    static uint64_t h[3 * N];
    static pair_ex x;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            get(&t, (lra_split)s, i, &x);
            h[s * N + i] = hash_example(&x, 512);
        }
    qsort(h, 3 * N, sizeof h[0], t_cmp_u64);
    int dups = 0;
    for (int i = 1; i < 3 * N; i++) dups += h[i] == h[i - 1];
    T_CHECK(dups == 0, "%d identical pairs among the first %d of each split", dups, N);
    lra_task_retrieval.close(&t);
}

// Topics of the keys of document d lying in bytes [lo, hi): counts per topic.
static int count_topics(const lra_task *t, const pair_ex *x, int d, int lo, int hi, int *count) {
    memset(count, 0, LRA_RETRIEVAL_TOPICS * sizeof *count);
    const int32_t *tok = x->tokens + d * t->info.seq_len;
    int n = x->length[d] < hi ? x->length[d] : hi, keys = 0;
    uint8_t w[LRA_RETRIEVAL_KEY_BYTES];
    static const char shape[] = "A00-0000";  // a key: letter, 2 digits, '-', 4 digits
    for (int i = lo; i + LRA_RETRIEVAL_KEY_BYTES <= n; i++) {
        int like = 1;
        for (int j = 0; j < LRA_RETRIEVAL_KEY_BYTES && like; j++) {
            int c = tok[i + j] - 1;
            w[j] = (uint8_t)c;
            like = shape[j] == 'A' ? c >= 'A' && c <= 'Z' : shape[j] == '0' ? c >= '0' && c <= '9' : c == '-';
        }
        if (!like) continue;
        int topic = lra_retrieval_key_topic(t, w, LRA_RETRIEVAL_KEY_BYTES);
        if (topic >= 0) count[topic]++, keys++;
    }
    return keys;
}

static int argmax(const int *count) {
    int best = 0;
    for (int i = 1; i < LRA_RETRIEVAL_TOPICS; i++)
        if (count[i] > count[best]) best = i;
    return count[best] ? best : -1;
}

static void test_statistics(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_retrieval(&t, NULL, 0, 1, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 600 };
    static pair_ex x;
    int related = 0, bad = 0, tabs = 0, min_len = L_MAX, max_len = 0, wrong_keys = 0;
    for (int i = 0; i < N; i++) {
        get(&t, LRA_SPLIT_TRAIN, i, &x);
        related += x.ex.label;
        for (int d = 0; d < 2; d++) {
            const int32_t *tok = x.tokens + d * L_MAX;
            int n = x.length[d], count[LRA_RETRIEVAL_TOPICS];
            min_len = n < min_len ? n : min_len;
            max_len = n > max_len ? n : max_len;
            for (int j = 0; j < n; j++)
                bad += tok[j] < 1 || tok[j] > 256, tabs += tok[j] == '\t' + 1 || tok[j] == '\n' + 1;
            for (int j = n; j < L_MAX; j++) bad += tok[j] != 0;
            wrong_keys += count_topics(&t, &x, d, 0, L_MAX, count) != 13;
        }
    }
    T_CHECK(bad == 0, "%d tokens out of range or pads not 0", bad);
    T_CHECK(tabs == 0, "%d tabs or newlines (the TSV cannot carry them)", tabs);
    T_CHECK(wrong_keys == 0, "%d papers without exactly 13 keys", wrong_keys);
    T_CHECK(min_len >= 1950 && max_len <= 4000 && max_len > 3800, "lengths %d..%d", min_len, max_len);
    T_CHECK(fabs(related / (double)N - 0.5) < 0.06, "related fraction %g", related / (double)N);
    lra_task_retrieval.close(&t);
}

// ---- long-range property -------------------------------------------------------------------------

static void test_long_range(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_retrieval(&t, NULL, 0, 1, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 1500 };
    static pair_ex x;
    double whole = 0, first = 0, shared = 0;
    for (int i = 0; i < N; i++) {
        get(&t, LRA_SPLIT_TEST, i, &x);
        int y = x.ex.label, c0[LRA_RETRIEVAL_TOPICS], c1[LRA_RETRIEVAL_TOPICS];
        count_topics(&t, &x, 0, 0, L_MAX, c0);
        count_topics(&t, &x, 1, 0, L_MAX, c1);
        whole += (argmax(c0) == argmax(c1)) == y;
        int any = 0;  // do the papers share a topic at all?
        for (int k = 0; k < LRA_RETRIEVAL_TOPICS; k++) any |= c0[k] && c1[k];
        shared += any == y;
        // the first 200 bytes: related when the majority topics agree; no key: a coin toss
        count_topics(&t, &x, 0, 0, 200, c0);
        count_topics(&t, &x, 1, 0, 200, c1);
        int a = argmax(c0), b = argmax(c1);
        first += a < 0 || b < 0 ? 0.5 : (a == b) == y;
    }
    whole /= N, first /= N, shared /= N;
    printf("    oracle accuracy: main topics over whole papers %.3f, first 200 bytes %.3f; "
           "'share any topic' %.3f\n", whole, first, shared);
    T_CHECK(whole == 1.0, "whole-paper accuracy %.3f: the label must be decidable", whole);
    T_CHECK(first < 0.60, "first-200-bytes accuracy %.3f: the prefix must be close to chance", first);
    T_CHECK(shared < 0.85, "'share any topic' accuracy %.3f: hard negatives must defeat it", shared);
    lra_task_retrieval.close(&t);
}

// ---- export and loader ----------------------------------------------------------------------------

static void test_round_trip(void) {
    char dir[64];
    make_tmp(dir);
    lra_task g, l;
    lra_err e = {0};
    lra_kv kv[] = {
        { "seq_len", "1000", NULL }, { "n_train", "300", NULL }, { "n_val", "20", NULL }, { "n_test", "30", NULL }
    };
    T_CHECK(open_retrieval(&g, kv, 4, 9, &e) == LRA_OK, "open: %s", e.msg);
    int64_t seen[3] = { 0, 0, 0 };
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        T_CHECK(lra_task_retrieval.export_split(&g, (lra_split)s, dir, -1, t_progress_record, seen, &e) == LRA_OK,
                "export: %s", e.msg);
    T_CHECK(seen[0] == 4 && seen[1] == 30 && seen[2] == 30, "progress: %lld calls, last %lld of %lld",
            (long long)seen[0], (long long)seen[1], (long long)seen[2]);
    lra_kv lk[] = { { "data_dir", dir, NULL }, { "seq_len", "1000", NULL } };
    T_CHECK(open_retrieval(&l, lk, 2, 0, &e) == LRA_OK, "load: %s", e.msg);
    char want[512];
    snprintf(want, sizeof want, "data_dir=%s;seq_len=1000", dir);
    T_CHECK(strcmp(l.info.params, want) == 0, "params: %s", l.info.params);
    static pair_ex a, b;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        T_CHECK(l.info.split_size[s] == g.info.split_size[s], "split %d size %lld", s, (long long)l.info.split_size[s]);
        for (int64_t i = 0; i < g.info.split_size[s]; i++) {
            get(&g, (lra_split)s, i, &a);
            get(&l, (lra_split)s, i, &b);
            T_CHECK(a.length[0] == b.length[0] && a.length[1] == b.length[1] && a.ex.label == b.ex.label &&
                        memcmp(a.tokens, b.tokens, 2 * 1000 * sizeof a.tokens[0]) == 0,
                    "split %s pair %lld differs after the round trip", lra_split_names[s], (long long)i);
        }
    }
    lra_task_retrieval.close(&l);
    // a shorter seq_len on load truncates each text
    lra_kv lk2[] = { { "data_dir", dir, NULL }, { "seq_len", "600", NULL } };
    T_CHECK(open_retrieval(&l, lk2, 2, 0, &e) == LRA_OK, "load: %s", e.msg);
    get(&g, LRA_SPLIT_VAL, 3, &a);
    get(&l, LRA_SPLIT_VAL, 3, &b);
    T_CHECK(b.length[0] == 600 && b.length[1] == 600 && memcmp(a.tokens, b.tokens, 600 * sizeof a.tokens[0]) == 0 &&
                memcmp(a.tokens + 1000, b.tokens + 600, 600 * sizeof a.tokens[0]) == 0,
            "texts truncated to seq_len");
    lra_task_retrieval.close(&l);
    // n limits the export
    T_CHECK(lra_task_retrieval.export_split(&g, LRA_SPLIT_TEST, dir, 4, NULL, NULL, &e) == LRA_OK, "export 4");
    T_CHECK(open_retrieval(&l, lk, 2, 0, &e) == LRA_OK && l.info.split_size[LRA_SPLIT_TEST] == 4, "4 pairs");
    lra_task_retrieval.close(&l);
    lra_task_retrieval.close(&g);
    t_rm_tree(dir);
}

static void test_loader_semantics(void) {
    char dir[64];
    make_tmp(dir);
    make_aan(dir);
    // empty lines skipped, CRLF, float labels cast toward zero, empty text, no final newline,
    // non-UTF-8 bytes, a text longer than 10000 bytes
    static char big[12100];
    memset(big, 'z', sizeof big);
    big[sizeof big - 1] = 0;
    char *train = malloc(20000);
    snprintf(train, 20000, "\n1.9\ta\tb\t\xff\xfe\tsecond\r\n\n-0.5\tc\td\t\tx\n0\te\tf\t%s\tend", big);
    put_file(dir, "new_aan_pairs.train.tsv", train);
    free(train);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "data_dir", dir, NULL }, { "seq_len", "10000", NULL } };
    T_CHECK(open_retrieval(&t, kv, 2, 0, &e) == LRA_OK, "load: %s", e.msg);
    T_CHECK(t.info.split_size[0] == 3 && t.info.split_size[1] == 1 && t.info.split_size[2] == 1, "sizes");
    T_CHECK(lra_retrieval_key_topic(&t, (const uint8_t *)"A00-0000", 8) == -1, "no keys when loaded");
    static int32_t tok[2 * 10000];
    int32_t len[2];
    lra_example ex = { tok, len, -1 };
    T_CHECK(lra_task_retrieval.example(&t, LRA_SPLIT_TRAIN, 0, &ex, &e) == LRA_OK, "example: %s", e.msg);
    T_CHECK(ex.label == 1 && len[0] == 2 && len[1] == 6 && tok[0] == 0x100 && tok[1] == 0xff && tok[2] == 0 &&
                tok[10000] == 's' + 1 && tok[10005] == 'd' + 1 && tok[10006] == 0,
            "pair 0: label %d lengths %d %d", ex.label, len[0], len[1]);
    T_CHECK(lra_task_retrieval.example(&t, LRA_SPLIT_TRAIN, 1, &ex, &e) == LRA_OK, "example: %s", e.msg);
    T_CHECK(ex.label == 0 && len[0] == 0 && len[1] == 1 && tok[0] == 0, "pair 1: an empty text, label -0.5 -> 0");
    T_CHECK(lra_task_retrieval.example(&t, LRA_SPLIT_TRAIN, 2, &ex, &e) == LRA_OK, "example: %s", e.msg);
    T_CHECK(ex.label == 0 && len[0] == 10000 && len[1] == 3 && tok[9999] == 'z' + 1, "pair 2: 10000 bytes kept");
    T_CHECK(lra_task_retrieval.example(&t, LRA_SPLIT_TEST, 0, &ex, &e) == LRA_OK && ex.label == 1, "label 1.0");
    // a file cut short after open: the texts can no longer be read
    char path[128];
    snprintf(path, sizeof path, "%s/new_aan_pairs.eval.tsv", dir);
    T_CHECK(truncate(path, 8) == 0, "truncate");
    T_CHECK(lra_task_retrieval.example(&t, LRA_SPLIT_VAL, 0, &ex, &e) == LRA_EIO, "read past the end");
    char want[256];
    snprintf(want, sizeof want, "%s: cannot read 3 bytes at offset 8 (the file changed since it was opened)", path);
    T_CHECK(strcmp(e.msg, want) == 0, "message: %s", e.msg);
    // describe
    T_CHECK(lra_task_retrieval.example(&t, LRA_SPLIT_TRAIN, 0, &ex, &e) == LRA_OK, "example");
    char *buf = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&buf, &n);
    lra_task_retrieval.describe(&t, &ex, mem);
    fclose(mem);
    T_CHECK(strcmp(buf, "label 1 (related)\ndocument 1 (2 bytes): \\xff\\xfe\ndocument 2 (6 bytes): second\n") == 0,
            "describe: %s", buf);
    free(buf);
    lra_task_retrieval.close(&t);
    t_rm_tree(dir);
}

static void expect_load_error(const char *dir, const char *train, const char *fmt) {
    if (train) put_file(dir, "new_aan_pairs.train.tsv", train);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "data_dir", dir, NULL } };
    T_CHECK(open_retrieval(&t, kv, 1, 0, &e) == LRA_EIO, "load must fail (%s)", fmt);
    char want[512];
    snprintf(want, sizeof want, fmt, dir);
    T_CHECK(strcmp(e.msg, want) == 0, "message:\n      got  %s\n      want %s", e.msg, want);
    T_CHECK(t.state == NULL, "state freed");
}

static void test_loader_errors(void) {
    char dir[64];
    make_tmp(dir);
    expect_load_error(dir, NULL, "%s/new_aan_pairs.train.tsv: cannot open: No such file or directory");
    make_aan(dir);
    expect_load_error(dir, "1\ta\tb\tc\td\n1\ta\tb\tc\n",
                      "%s/new_aan_pairs.train.tsv:2: expected 5 tab-separated columns (label, id1, id2, text1, text2), got 4");
    expect_load_error(dir, "\n\n1\ta\tb\tc\td\te\n",
                      "%s/new_aan_pairs.train.tsv:3: expected 5 tab-separated columns (label, id1, id2, text1, text2), got 6");
    expect_load_error(dir, " \n", "%s/new_aan_pairs.train.tsv:1: expected 5 tab-separated columns (label, id1, id2, text1, text2), got 1");
    expect_load_error(dir, "yes\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label 'yes' is not a number");
    expect_load_error(dir, "\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label '' is not a number");
    expect_load_error(dir, "1x\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label '1x' is not a number");
    expect_load_error(dir, "nan\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label 'nan' is not a number");
    expect_load_error(dir, "2.5\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label '2.5' is 2 as an integer, expected 0 or 1");
    expect_load_error(dir, "-1\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label '-1' is -1 as an integer, expected 0 or 1");
    expect_load_error(dir, "1e300\ta\tb\tc\td\n", "%s/new_aan_pairs.train.tsv:1: label '1e300' is out of range, expected 0 or 1");
    expect_load_error(dir, "0123456789012345678901234567890123456789012345678901234567890123456789\ta\tb\tc\td\n",
                      "%s/new_aan_pairs.train.tsv:1: label '0123456789012345678901234567890123456789...' is not a number");
    expect_load_error(dir, "\n\r\n",
                      "%s/new_aan_pairs.train.tsv: no pairs (expected lines label<TAB>id1<TAB>id2<TAB>text1<TAB>text2)");
    expect_load_error(dir, "", "%s/new_aan_pairs.train.tsv: no pairs (expected lines label<TAB>id1<TAB>id2<TAB>text1<TAB>text2)");
    make_aan(dir);
    char path[128];
    snprintf(path, sizeof path, "%s/new_aan_pairs.test.tsv", dir);
    remove(path);
    expect_load_error(dir, NULL, "%s/new_aan_pairs.test.tsv: cannot open: No such file or directory");
    t_rm_tree(dir);
}

static const t_case cases[] = {
    { "retrieval/open_defaults", test_open_defaults },
    { "retrieval/bad_params", test_bad_params },
    { "retrieval/determinism", test_determinism },
    { "retrieval/disjoint_splits", test_disjoint_splits },
    { "retrieval/statistics", test_statistics },
    { "retrieval/long_range", test_long_range },
    { "retrieval/round_trip", test_round_trip },
    { "retrieval/export_errors", test_export_errors },
    { "retrieval/loader_semantics", test_loader_semantics },
    { "retrieval/loader_errors", test_loader_errors },
};
T_MAIN(cases)
