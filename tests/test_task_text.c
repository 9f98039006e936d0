// test_task_text.c: the Text task (tasks/text.c): parameters, generator
// determinism and statistics, the long-range property (a word-counting
// classifier is near chance on the first 200 bytes and exact on the whole
// review), the aclImdb round trip and every loader error message.
#include "../tasks/text.h"
#include "t.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- helpers ---------------------------------------------------------------------------

static void make_tmp(char *dir) { t_tmpdir(dir, 64, "text"); }

static void put_file(const char *dir, const char *name, const char *content, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    T_CHECK(f != NULL, "create %s", path);
    if (!f) return;
    fwrite(content, 1, n, f);
    fclose(f);
}

static void put_dir(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    T_CHECK(mkdir(path, 0777) == 0, "mkdir %s", path);
}

// A minimal aclImdb tree: one review per directory.
static void make_imdb(const char *dir) {
    put_dir(dir, "train");
    put_dir(dir, "train/pos");
    put_dir(dir, "train/neg");
    put_dir(dir, "test");
    put_dir(dir, "test/pos");
    put_dir(dir, "test/neg");
    put_file(dir, "train/pos/0_9.txt", "Good.", 5);
    put_file(dir, "train/neg/0_2.txt", "Bad.", 4);
    put_file(dir, "test/pos/0_8.txt", "Fine.", 5);
    put_file(dir, "test/neg/0_1.txt", "Meh.", 4);
}

static int open_text(lra_task *t, const lra_kv *kv, int n, lra_err *e) {
    memset(t, 0, sizeof *t);
    t->vt = &lra_task_text;
    return lra_task_text.open(t, kv, n, 7, e);
}

typedef struct {
    int32_t tokens[4096];
    int32_t length;
    lra_example ex;
} text_ex;

static int get(const lra_task *t, lra_split s, int64_t i, text_ex *x) {
    lra_err e = {0};
    x->ex = (lra_example){ x->tokens, &x->length, -1 };
    int rc = lra_task_text.example(t, s, i, &x->ex, &e);
    T_CHECK(rc == LRA_OK, "example %s %lld: %s", lra_split_names[s], (long long)i, e.msg);
    return rc;
}

static uint64_t hash_example(const text_ex *x, int seq_len) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < seq_len; i++) h = (h ^ (uint64_t)x->tokens[i]) * 1099511628211ull;
    return lra_mix64(h ^ (uint64_t)x->length ^ ((uint64_t)x->ex.label << 40));
}

// ---- parameters --------------------------------------------------------------------------

static void test_open_defaults(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_text(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    const lra_task_info *in = &t.info;
    T_CHECK(strcmp(in->name, "text") == 0 && in->n_inputs == 1 && in->seq_len == 4096 && in->vocab == 257 &&
                in->pad_id == 0 && in->n_classes == 2 && in->image_side == 0,
            "shape of the task");
    T_CHECK(in->split_size[0] == 25000 && in->split_size[1] == 25000 && in->split_size[2] == 25000, "sizes");
    T_CHECK(strcmp(in->params, "seq_len=4096;n_train=25000;n_val=25000;n_test=25000") == 0, "params: %s",
            in->params);
    T_CHECK(strcmp(in->source, "generated (seed 7)") == 0, "source: %s", in->source);
    T_CHECK(in->generator_version == 1, "version");
    lra_task_text.close(&t);
    T_CHECK(t.state == NULL, "close clears state");
}

static void test_bad_params(void) {
    lra_task t;
    lra_err e = {0};
    lra_kv unknown[] = { { "seqlen", "100", "x.yaml:3:5" } };
    T_CHECK(open_text(&t, unknown, 1, &e) == LRA_EINVAL, "unknown key refused");
    T_CHECK(strcmp(e.msg, "x.yaml:3:5: text.seqlen: unknown parameter (known: data_dir, seq_len, n_train, n_val, n_test)") == 0,
            "message: %s", e.msg);
    lra_kv short_len[] = { { "seq_len", "999", "--param" } };
    T_CHECK(open_text(&t, short_len, 1, &e) == LRA_EINVAL, "seq_len 999 refused");
    T_CHECK(strcmp(e.msg, "--param: text.seq_len: expected an integer in [1000, 16384], got '999'") == 0, "message: %s",
            e.msg);
    lra_kv sized[] = { { "data_dir", "/nonexistent", NULL }, { "n_val", "10", "cfg.yaml:9:3" } };
    T_CHECK(open_text(&t, sized, 2, &e) == LRA_EINVAL, "n_val with data_dir refused");
    T_CHECK(strcmp(e.msg, "cfg.yaml:9:3: text.n_val: not used with data_dir (the split sizes come from the files)") == 0,
            "message: %s", e.msg);
    T_CHECK(t.state == NULL, "nothing left open");
    lra_kv empty[] = { { "data_dir", "", NULL } };
    T_CHECK(open_text(&t, empty, 1, &e) == LRA_EINVAL, "empty data_dir refused");
    T_CHECK(strcmp(e.msg, "parameter: text.data_dir: expected a directory, got ''") == 0, "message: %s", e.msg);
    char long_dir[300];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = 0;
    lra_kv too_long[] = { { "data_dir", long_dir, "--param" } };
    T_CHECK(open_text(&t, too_long, 1, &e) == LRA_EINVAL, "long data_dir refused");
    T_CHECK(strcmp(e.msg, "--param: text.data_dir: path longer than 255 bytes") == 0, "message: %s", e.msg);
}

static void test_export_errors(void) {
    char dir[64], bad[128];
    make_tmp(dir);
    put_file(dir, "file", "x", 1);
    snprintf(bad, sizeof bad, "%s/file/sub", dir);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "seq_len", "1000", NULL }, { "n_train", "3", NULL } };
    T_CHECK(open_text(&t, kv, 2, &e) == LRA_OK, "open: %s", e.msg);
    T_CHECK(lra_task_text.export_split(&t, LRA_SPLIT_TRAIN, bad, -1, NULL, NULL, &e) == LRA_EIO, "export must fail");
    char want[256];
    snprintf(want, sizeof want, "%s: cannot create directory: Not a directory", bad);
    T_CHECK(strcmp(e.msg, want) == 0, "message: %s", e.msg);
    lra_task_text.close(&t);
    t_rm_tree(dir);
}

// ---- generator --------------------------------------------------------------------------------

static void test_determinism(void) {
    lra_task a, b;
    lra_err e = {0};
    lra_kv kv[] = { { "seq_len", "2000", NULL } };
    T_CHECK(open_text(&a, kv, 1, &e) == LRA_OK && open_text(&b, kv, 1, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 96 };
    static uint64_t seq[LRA_SPLIT_COUNT][N], par[LRA_SPLIT_COUNT][N];
    static text_ex x;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            get(&a, (lra_split)s, i, &x);
            seq[s][i] = hash_example(&x, 2000);
            get(&b, (lra_split)s, i, &x);  // a second task opened with the same parameters
            T_CHECK(hash_example(&x, 2000) == seq[s][i], "same example from a second open");
        }
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        int failures = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : failures)
        for (int i = N - 1; i >= 0; i--) {  // reverse order, two threads
            text_ex *y = malloc(sizeof *y);
            lra_err e2 = {0};
            y->ex = (lra_example){ y->tokens, &y->length, -1 };
            failures += lra_task_text.example(&a, (lra_split)s, i, &y->ex, &e2) != LRA_OK;
            par[s][i] = hash_example(y, 2000);
            free(y);
        }
        T_CHECK(failures == 0, "parallel generation failed");
        T_CHECK(memcmp(seq[s], par[s], sizeof seq[s]) == 0, "split %s: threads change examples", lra_split_names[s]);
    }
    lra_task c;
    memset(&c, 0, sizeof c);
    T_CHECK(lra_task_text.open(&c, kv, 1, 8, &e) == LRA_OK, "open: %s", e.msg);
    get(&c, LRA_SPLIT_TRAIN, 0, &x);
    T_CHECK(hash_example(&x, 2000) != seq[0][0], "the seed changes the examples");
    lra_task_text.close(&c);
    lra_task_text.close(&a);
    lra_task_text.close(&b);
}

static void test_disjoint_splits(void) {
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "seq_len", "1000", NULL } };
    T_CHECK(open_text(&t, kv, 1, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 600 };
    static uint64_t h[3 * N];
    static text_ex x;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            get(&t, (lra_split)s, i, &x);
            h[s * N + i] = hash_example(&x, 1000);
        }
    qsort(h, 3 * N, sizeof h[0], t_cmp_u64);
    int dups = 0;
    for (int i = 1; i < 3 * N; i++) dups += h[i] == h[i - 1];
    T_CHECK(dups == 0, "%d identical examples among the first %d of each split", dups, N);
    lra_task_text.close(&t);
}

static void test_statistics(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_text(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 2000 };
    static int lengths[N];
    static text_ex x;
    int pos = 0, bad_tokens = 0, bad_pad = 0, br = 0, over3000 = 0, non_ascii = 0, ws_edges = 0;
    for (int i = 0; i < N; i++) {
        get(&t, LRA_SPLIT_TRAIN, i, &x);
        pos += x.ex.label == 1;
        T_CHECK(x.ex.label == 0 || x.ex.label == 1, "label %d", x.ex.label);
        int n = x.length;
        T_CHECK(n >= 150 && n <= 4096, "length %d", n);
        lengths[i] = n;
        over3000 += n > 3000;
        for (int j = 0; j < n; j++) bad_tokens += x.tokens[j] < 1 || x.tokens[j] > 256;
        for (int j = n; j < 4096; j++) bad_pad += x.tokens[j] != 0;
        for (int j = 0; j < n; j++) non_ascii += x.tokens[j] - 1 >= 0x80;
        for (int j = 0; j + 12 <= n; j++) br += x.tokens[j] == '<' + 1 && x.tokens[j + 1] == 'b' + 1;
        ws_edges += x.tokens[0] == ' ' + 1 || x.tokens[n - 1] == ' ' + 1;
    }
    T_CHECK(bad_tokens == 0 && bad_pad == 0, "%d tokens outside 1..256, %d pads not 0", bad_tokens, bad_pad);
    T_CHECK(fabs(pos / (double)N - 0.5) < 0.04, "positive fraction %g", pos / (double)N);
    int sorted[N];
    memcpy(sorted, lengths, sizeof sorted);
    for (int i = 1; i < N; i++)  // insertion sort
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int tmp = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = tmp;
        }
    T_CHECK(sorted[N / 2] > 750 && sorted[N / 2] < 1100, "median length %d (IMDb: about 900)", sorted[N / 2]);
    T_CHECK(over3000 > 20 && over3000 < 150, "%d of %d reviews over 3000 bytes", over3000, N);
    T_CHECK(sorted[N - 1] > 4000, "longest %d: the tail reaches past 4000", sorted[N - 1]);
    T_CHECK(br > N / 4, "%d paragraph breaks", br);
    T_CHECK(non_ascii > 0, "some UTF-8 bytes");
    T_CHECK(ws_edges == 0, "no whitespace at either end (the loader strips it)");
    lra_task_text.close(&t);
}

// ---- long-range property -------------------------------------------------------------------------
// (a) The counting classifier: sign of (positive - negative sentiment words),
// over the whole review or over the words inside a 200-byte window (first,
// middle, last). (b) A multinomial naive Bayes over lowercased words (hashed
// into 2^16 buckets) trained on generated reviews, as a check that nothing
// else (filler, length, punctuation) gives the label away in the prefix.

enum { NB_BUCKETS = 1 << 16 };

static int is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '\'' || c >= 0x80; }

// Calls fn(word bytes) for every word lying inside bytes [lo, hi).
static void for_words(const text_ex *x, int lo, int hi, void (*fn)(void *, const uint8_t *, int), void *ctx) {
    uint8_t w[64];
    for (int i = 0; i < x->length;) {
        if (!is_letter(x->tokens[i] - 1)) { i++; continue; }
        int j = i, n = 0;
        for (; j < x->length && is_letter(x->tokens[j] - 1); j++)
            if (n < 64) w[n++] = (uint8_t)(x->tokens[j] - 1);
        if (i >= lo && j <= hi) fn(ctx, w, n);
        i = j;
    }
}

static int bucket(const uint8_t *w, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) h = (h ^ (uint64_t)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i])) * 1099511628211ull;
    return (int)(lra_mix64(h) % NB_BUCKETS);
}

typedef struct { double *count; } nb_train_ctx;
static void nb_count(void *ctx, const uint8_t *w, int n) { ((nb_train_ctx *)ctx)->count[bucket(w, n)] += 1; }
typedef struct { const double *w; double score; } nb_score_ctx;
static void nb_add(void *ctx, const uint8_t *w, int n) { nb_score_ctx *c = ctx; c->score += c->w[bucket(w, n)]; }
static void polarity_add(void *ctx, const uint8_t *w, int n) { *(int *)ctx += lra_text_polarity(w, n); }

// 1 for right, 0 for wrong, 0.5 for a tie (a coin toss)
static double credit(double score, int label) { return score == 0 ? 0.5 : (score > 0) == (label == 1); }

static void test_long_range(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_text(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    static double count[2][NB_BUCKETS], w[NB_BUCKETS];
    static text_ex x;
    double total[2] = { 0, 0 };
    for (int i = 0; i < 3000; i++) {
        get(&t, LRA_SPLIT_TRAIN, i, &x);
        nb_train_ctx c = { count[x.ex.label] };
        for_words(&x, 0, 1 << 30, nb_count, &c);
    }
    for (int b = 0; b < NB_BUCKETS; b++) total[0] += count[0][b], total[1] += count[1][b];
    for (int b = 0; b < NB_BUCKETS; b++)
        w[b] = log((count[1][b] + 1) / (total[1] + NB_BUCKETS)) - log((count[0][b] + 1) / (total[0] + NB_BUCKETS));
    int n = 3000;
    double whole = 0, first = 0, middle = 0, last = 0, nb_first = 0;
    for (int i = 0; i < n; i++) {
        get(&t, LRA_SPLIT_TEST, i, &x);
        int y = x.ex.label, len = x.length, c_all = 0, c_first = 0, c_mid = 0, c_last = 0;
        for_words(&x, 0, 1 << 30, polarity_add, &c_all);
        for_words(&x, 0, 200, polarity_add, &c_first);
        for_words(&x, len / 2 - 100, len / 2 + 100, polarity_add, &c_mid);
        for_words(&x, len - 200, len, polarity_add, &c_last);
        T_CHECK(c_all == (y ? 1 : -1), "example %d: the whole review must hold a majority of one", i);
        whole += credit(c_all, y);
        first += credit(c_first, y);
        middle += credit(c_mid, y);
        last += credit(c_last, y);
        nb_score_ctx nb = { w, 0 };
        for_words(&x, 0, 200, nb_add, &nb);
        nb_first += credit(nb.score, y);
    }
    whole /= n, first /= n, middle /= n, last /= n, nb_first /= n;
    printf("    counting accuracy: whole %.3f, first 200 bytes %.3f, middle %.3f, last %.3f; "
           "naive Bayes on the first 200 bytes %.3f\n", whole, first, middle, last, nb_first);
    T_CHECK(whole == 1.0, "whole-review accuracy %.3f: the label must be decidable", whole);
    T_CHECK(first < 0.60 && middle < 0.60 && last < 0.60, "200-byte windows must be close to chance");
    T_CHECK(nb_first < 0.60, "naive Bayes on the first 200 bytes %.3f: nothing else may give the label away", nb_first);
    lra_task_text.close(&t);
}

// ---- export and loader ----------------------------------------------------------------------------

static void test_round_trip(void) {
    char dir[64];
    make_tmp(dir);
    lra_task g, l;
    lra_err e = {0};
    lra_kv kv[] = {
        { "seq_len", "1000", NULL }, { "n_train", "40", NULL }, { "n_val", "30", NULL }, { "n_test", "20", NULL }
    };
    T_CHECK(open_text(&g, kv, 4, &e) == LRA_OK, "open: %s", e.msg);
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        T_CHECK(lra_task_text.export_split(&g, (lra_split)s, dir, -1, NULL, NULL, &e) == LRA_OK, "export: %s", e.msg);
    char path[128];
    snprintf(path, sizeof path, "%s/train/pos", dir);
    struct stat st;
    T_CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "aclImdb layout written");
    lra_kv lk[] = { { "data_dir", dir, NULL }, { "seq_len", "1000", NULL } };
    T_CHECK(open_text(&l, lk, 2, &e) == LRA_OK, "load: %s", e.msg);
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        T_CHECK(l.info.split_size[s] == g.info.split_size[s], "split %d size %lld", s, (long long)l.info.split_size[s]);
    char want[512];
    snprintf(want, sizeof want, "data_dir=%s;seq_len=1000;val=val", dir);
    T_CHECK(strcmp(l.info.params, want) == 0, "params: %s", l.info.params);
    T_CHECK(strcmp(l.info.source, dir) == 0, "source: %s", l.info.source);
    static text_ex a, b;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int64_t i = 0; i < g.info.split_size[s]; i++) {
            get(&g, (lra_split)s, i, &a);
            get(&l, (lra_split)s, i, &b);
            T_CHECK(a.length == b.length && a.ex.label == b.ex.label &&
                        memcmp(a.tokens, b.tokens, 1000 * sizeof a.tokens[0]) == 0,
                    "split %s example %lld differs after the round trip", lra_split_names[s], (long long)i);
        }
    // a second export into the same directory is refused
    T_CHECK(lra_task_text.export_split(&g, LRA_SPLIT_TEST, dir, 5, NULL, NULL, &e) == LRA_EIO, "export into used dir");
    snprintf(want, sizeof want, "%s/test/neg: already holds .txt files; export into an empty directory", dir);
    T_CHECK(strcmp(e.msg, want) == 0, "message: %s", e.msg);
    // the file names: <index>_<rating>.txt with rating 1..4 or 7..10
    get(&g, LRA_SPLIT_TRAIN, 3, &a);
    int rating = lra_text_rating(7, LRA_SPLIT_TRAIN, 3, a.ex.label);
    snprintf(path, sizeof path, "%s/train/%s/3_%d.txt", dir, a.ex.label ? "pos" : "neg", rating);
    T_CHECK(stat(path, &st) == 0 && st.st_size == a.length, "%s", path);
    T_CHECK(a.ex.label ? rating >= 7 && rating <= 10 : rating >= 1 && rating <= 4, "rating %d", rating);
    lra_task_text.close(&l);
    // without val/ the loader uses test/ for val, as LRA
    snprintf(path, sizeof path, "%s/val", dir);
    t_rm_tree(path);
    T_CHECK(open_text(&l, lk, 2, &e) == LRA_OK, "load: %s", e.msg);
    snprintf(want, sizeof want, "data_dir=%s;seq_len=1000;val=test", dir);
    T_CHECK(l.info.split_size[LRA_SPLIT_VAL] == 20 && strcmp(l.info.params, want) == 0, "val reads test/: %s",
            l.info.params);
    get(&l, LRA_SPLIT_VAL, 7, &a);
    get(&g, LRA_SPLIT_TEST, 7, &b);
    T_CHECK(a.length == b.length && a.ex.label == b.ex.label && memcmp(a.tokens, b.tokens, sizeof a.tokens) == 0,
            "val = test");
    lra_task_text.close(&l);
    // partial export with progress
    char dir2[64];
    make_tmp(dir2);
    int64_t seen[3] = { 0, 0, 0 };
    T_CHECK(lra_task_text.export_split(&g, LRA_SPLIT_TRAIN, dir2, 7, t_progress_record, seen, &e) == LRA_OK, "export 7: %s",
            e.msg);
    T_CHECK(seen[0] >= 1 && seen[1] == 7 && seen[2] == 7, "progress: %lld calls, last %lld of %lld", (long long)seen[0],
            (long long)seen[1], (long long)seen[2]);
    t_rm_tree(dir2);
    lra_task_text.close(&g);
    t_rm_tree(dir);
}

static void test_loader_semantics(void) {
    char dir[64];
    make_tmp(dir);
    make_imdb(dir);
    // ordering by leading number, ties neg before pos; whitespace stripped; truncation
    put_file(dir, "train/pos/10_7.txt", "  ten \r\n", 8);
    put_file(dir, "train/neg/9_4.txt", "\xff\xfe nine", 7);
    put_file(dir, "train/pos/2_8.txt", "two", 3);
    put_file(dir, "train/neg/notes.md", "ignored", 7);
    put_file(dir, "train/neg/.hidden.txt", "ignored", 7);
    static char big[1500];
    memset(big, 'x', sizeof big);
    big[0] = 'y';
    put_file(dir, "train/neg/11_1.txt", big, sizeof big);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "data_dir", dir, NULL }, { "seq_len", "1000", NULL } };
    T_CHECK(open_text(&t, kv, 2, &e) == LRA_OK, "load: %s", e.msg);
    T_CHECK(t.info.split_size[0] == 6 && t.info.split_size[1] == 2 && t.info.split_size[2] == 2, "sizes %lld %lld %lld",
            (long long)t.info.split_size[0], (long long)t.info.split_size[1], (long long)t.info.split_size[2]);
    static const char *const want[6] = { "Bad.", "Good.", "two", "\xff\xfe nine", "ten", NULL };
    static const int want_label[6] = { 0, 1, 1, 0, 1, 0 };
    static text_ex x;
    for (int i = 0; i < 6; i++) {
        get(&t, LRA_SPLIT_TRAIN, i, &x);
        T_CHECK(x.ex.label == want_label[i], "example %d label %d", i, x.ex.label);
        if (want[i]) {
            int n = (int)strlen(want[i]), same = x.length == n;
            for (int j = 0; j < n && same; j++) same = x.tokens[j] == (uint8_t)want[i][j] + 1;
            T_CHECK(same, "example %d: expected '%s'", i, want[i]);
        } else {
            T_CHECK(x.length == 1000 && x.tokens[0] == 'y' + 1 && x.tokens[999] == 'x' + 1, "truncated to seq_len");
        }
    }
    lra_err e2 = {0};
    lra_example bad = { x.tokens, &x.length, 0 };
    T_CHECK(lra_task_text.example(&t, LRA_SPLIT_TRAIN, 6, &bad, &e2) == LRA_EINVAL, "index out of range");
    T_CHECK(strcmp(e2.msg, "text: no example 6 in split train (size 6)") == 0, "message: %s", e2.msg);
    // describe
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    get(&t, LRA_SPLIT_TRAIN, 3, &x);
    lra_task_text.describe(&t, &x.ex, mem);
    fclose(mem);
    T_CHECK(strcmp(buf, "label 0 (negative), 7 bytes:\n\\xff\\xfe nine\n") == 0, "describe: %s", buf);
    free(buf);
    lra_task_text.close(&t);
    t_rm_tree(dir);
}

// Opens dir as data_dir and checks the error message (with "%s" for dir).
static void expect_load_error(const char *dir, const char *fmt) {
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "data_dir", dir, NULL }, { "seq_len", "1000", NULL } };
    T_CHECK(open_text(&t, kv, 2, &e) != LRA_OK, "load of a broken tree must fail (%s)", fmt);
    char want[512];
    snprintf(want, sizeof want, fmt, dir);
    T_CHECK(strcmp(e.msg, want) == 0, "message:\n      got  %s\n      want %s", e.msg, want);
    T_CHECK(t.state == NULL, "state freed");
}

static void test_loader_errors(void) {
    char dir[64], path[256];
    make_tmp(dir);
    char missing[96];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    expect_load_error(missing, "%s/train/neg: cannot open directory: No such file or directory");
    make_imdb(dir);
    put_file(dir, "train/pos/1_7.txt", " \n\t ", 4);
    expect_load_error(dir, "%s/train/pos/1_7.txt: empty review (no bytes left after stripping whitespace)");
    put_file(dir, "train/pos/1_7.txt", "", 0);
    expect_load_error(dir, "%s/train/pos/1_7.txt: empty review (no bytes left after stripping whitespace)");
    snprintf(path, sizeof path, "%s/train/pos/1_7.txt", dir);
    remove(path);
    T_CHECK(symlink("/nonexistent/file", path) == 0, "symlink");
    expect_load_error(dir, "%s/train/pos/1_7.txt: cannot open: No such file or directory");
    remove(path);
    put_dir(dir, "train/pos/1_7.txt");
    expect_load_error(dir, "%s/train/pos/1_7.txt: read error: Is a directory");
    rmdir(path);
    snprintf(path, sizeof path, "%s/test/pos/0_8.txt", dir);
    remove(path);
    expect_load_error(dir, "%s/test/pos: no .txt files (expected the aclImdb layout <data_dir>/{train,test}/{neg,pos}/*.txt)");
    put_file(dir, "test/pos/0_8.txt", "Fine.", 5);
    put_dir(dir, "val");
    expect_load_error(dir, "%s/val/neg: cannot open directory: No such file or directory");
    t_rm_tree(dir);
}

static const t_case cases[] = {
    { "text/open_defaults", test_open_defaults },
    { "text/bad_params", test_bad_params },
    { "text/determinism", test_determinism },
    { "text/disjoint_splits", test_disjoint_splits },
    { "text/statistics", test_statistics },
    { "text/long_range", test_long_range },
    { "text/round_trip", test_round_trip },
    { "text/export_errors", test_export_errors },
    { "text/loader_semantics", test_loader_semantics },
    { "text/loader_errors", test_loader_errors },
};
T_MAIN(cases)
