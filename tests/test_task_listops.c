// test_task_listops.c: the ListOps task: evaluator on hand-worked
// expressions, text forms and round trips, length bounds, label and length
// distributions, determinism over threads, disjoint splits, the release TSV
// round trip and every loader and parameter error message.
#include "../tasks/listops.h"
#include "t.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHORT_PARAMS(n_train, n_val, n_test)                                                              \
    { { "n_train", n_train, "test" }, { "n_val", n_val, "test" }, { "n_test", n_test, "test" },          \
      { "min_length", "10", "test" }, { "max_length", "60", "test" }, { "seq_len", "64", "test" } }

// Opens listops with params; fails the case (and returns 0) when it does not open.
static int open_listops(lra_task *t, const lra_kv *params, int n, uint64_t seed) {
    lra_err err = {0};
    int rc = lra_task_listops.open(t, params, n, seed, &err);
    T_CHECK(rc == LRA_OK, "open: %s", err.msg);
    return rc == LRA_OK;
}

// The message of a failed open (the case fails when it opens).
static const char *open_error(const lra_kv *params, int n, lra_err *err) {
    lra_task t;
    memset(err, 0, sizeof *err);
    if (lra_task_listops.open(&t, params, n, 1, err) == LRA_OK) {
        lra_task_listops.close(&t);
        return "(opened)";
    }
    return err->msg;
}

static int tokenize(const char *text, int32_t *tokens, int cap) {
    lra_err err = {0};
    int n = lra_listops_tokenize(text, strlen(text), tokens, cap, &err);
    T_CHECK(n >= 0, "tokenize '%s': %s", text, err.msg);
    return n;
}

// An independent evaluator: recursion and sorting (the task uses a stack and histograms).
static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
static int ref_eval(const int32_t *t, int n, int *pos) {
    int tok = t[(*pos)++];
    if (tok >= LRA_LISTOPS_DIGIT0 && tok < LRA_LISTOPS_DIGIT0 + 10) return tok - LRA_LISTOPS_DIGIT0;
    int vals[64], k = 0, sum = 0;
    while (*pos < n && t[*pos] != LRA_LISTOPS_X && k < 64) vals[k++] = ref_eval(t, n, pos);
    (*pos)++;
    qsort(vals, (size_t)k, sizeof *vals, cmp_int);
    for (int i = 0; i < k; i++) sum += vals[i];
    switch (tok) {
    case LRA_LISTOPS_MIN: return vals[0];
    case LRA_LISTOPS_MAX: return vals[k - 1];
    case LRA_LISTOPS_MED: return k % 2 ? vals[k / 2] : (vals[k / 2 - 1] + vals[k / 2]) / 2;
    default: return sum % 10;
    }
}

// ---- evaluator, text forms ----------------------------------------------------

static void test_eval(void) {
    static const struct { const char *expr; int value; } cases[] = {
        { "7", 7 },
        { "[MIN 4 7 1 9 ]", 1 },
        { "[MAX 4 7 1 9 ]", 9 },
        { "[MED 5 1 9 ]", 5 },                          // odd count: the middle
        { "[MED 3 8 ]", 5 },                            // even: (3 + 8) / 2 = 5.5 -> 5
        { "[MED 9 1 6 2 ]", 4 },                        // even: sorted 1 2 6 9 -> (2 + 6) / 2
        { "[MED 0 1 ]", 0 },                            // 0.5 truncated
        { "[SM 7 8 9 ]", 4 },                           // 24 mod 10
        { "[SM 5 5 ]", 0 },                             // 10 mod 10
        { "[MAX 3 2 [MIN 3 6 8 ] ]", 3 },               // lra.md §1.2
        { "[SM [MAX 9 3 ] [MED 2 4 6 8 ] 7 ]", 1 },     // 9 + 5 + 7 = 21
        { "[MED [SM 9 9 ] [MIN 5 6 ] 2 [MAX 0 1 ] ]", 3 },  // 8 5 2 1 -> 1 2 5 8 -> (2 + 5) / 2
        { "[MIN [MAX [SM 4 4 ] [MED 9 9 1 ] ] 9 [SM 6 [SM 9 9 9 ] ] ]", 3 },  // MAX(8, 9) = 9; SM(6, 7) = 3
        { "[MED [MED [MED 1 2 ] 4 ] [MED 7 8 9 9 ] ]", 5 },  // MED(1, 2) = 1; MED(1, 4) = 2; MED(7..9) = 8; (2 + 8) / 2
        { "( ( ( ( [MAX 3 ) 2 ) ( ( ( ( [MIN 3 ) 6 ) 8 ) ] ) ) ] )", 3 },  // the release form, lra.md §1.2
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t tok[64];
        int n = tokenize(cases[c].expr, tok, 64), value = -1, pos = 0;
        T_CHECK(lra_listops_eval(tok, n, &value) == LRA_OK && value == cases[c].value, "%s = %d, got %d",
                cases[c].expr, cases[c].value, value);
        T_CHECK(ref_eval(tok, n, &pos) == cases[c].value, "reference evaluator: %s", cases[c].expr);
    }
    static const char *const malformed[] = { "", "[MAX 3", "3 4", "]", "[MAX ]", "[SM 1 ] 2", "[MIN [MIN [MIN" };
    for (size_t c = 0; c < sizeof malformed / sizeof malformed[0]; c++) {
        int32_t tok[16];
        int n = tokenize(malformed[c], tok, 16), value;
        T_CHECK(lra_listops_eval(tok, n, &value) == LRA_EINVAL, "malformed '%s' refused", malformed[c]);
    }
    // nested 200 deep (the evaluator's stack grows past the generator's 64): SM(x, 1) 200 times on 1
    int32_t deep[601];
    int m = 0;
    for (int k = 0; k < 200; k++) deep[m++] = LRA_LISTOPS_SM;
    deep[m++] = LRA_LISTOPS_DIGIT0 + 1;
    for (int k = 0; k < 200; k++) deep[m++] = LRA_LISTOPS_DIGIT0 + 1, deep[m++] = LRA_LISTOPS_X;
    int deep_value = -1, pos = 0;
    T_CHECK(lra_listops_eval(deep, m, &deep_value) == LRA_OK && deep_value == 1 && ref_eval(deep, m, &pos) == 1,
            "deep: %d", deep_value);
    int32_t bad[3] = { LRA_LISTOPS_MAX, LRA_LISTOPS_EOS, LRA_LISTOPS_X }, value;
    T_CHECK(lra_listops_eval(bad, 3, &value) == LRA_EINVAL, "EOS is not part of an expression");
}

static void test_text_forms(void) {
    const char *release = "( ( ( ( [MAX 3 ) 2 ) ( ( ( ( [MIN 3 ) 6 ) 8 ) ] ) ) ] )";
    int32_t tok[64];
    int n = tokenize(release, tok, 64);
    static const int32_t want[9] = { 12, 4, 3, 11, 4, 7, 9, 15, 15 };  // [MAX 3 2 [MIN 3 6 8 X X
    T_CHECK(n == 9 && memcmp(tok, want, sizeof want) == 0, "release form tokenized as LRA does (%d tokens)", n);
    char buf[256];
    T_CHECK(lra_listops_format(tok, n, 1, buf, sizeof buf) == (int64_t)strlen(release) && strcmp(buf, release) == 0,
            "release form printed back: %s", buf);
    T_CHECK(lra_listops_format(tok, n, 0, buf, sizeof buf) == 23 && strcmp(buf, "[MAX 3 2 [MIN 3 6 8 ] ]") == 0,
            "readable form: %s", buf);
    // snprintf-style: the needed length whatever the room, always terminated
    char small[8];
    T_CHECK(lra_listops_format(tok, n, 1, small, sizeof small) == (int64_t)strlen(release) &&
                strcmp(small, "( ( ( (") == 0, "cut: '%s'", small);
    T_CHECK(lra_listops_format(tok, n, 1, NULL, 0) == (int64_t)strlen(release), "size query");
    T_CHECK(lra_listops_format(tok, 1, 0, buf, sizeof buf) == 4 && strcmp(buf, "[MAX") == 0, "prefix of tokens");
    T_CHECK(lra_listops_format(tok, 8, 1, buf, sizeof buf) == -1 && buf[0] == 0, "unclosed: not one expression");
    int32_t two[2] = { 4, 5 }, one_digit = 8, zero_args[2] = { LRA_LISTOPS_SM, LRA_LISTOPS_X };
    T_CHECK(lra_listops_format(two, 2, 1, buf, sizeof buf) == -1, "two roots");
    T_CHECK(lra_listops_format(&one_digit, 1, 1, buf, sizeof buf) == 1 && strcmp(buf, "7") == 0, "a bare digit");
    T_CHECK(lra_listops_format(zero_args, 2, 1, buf, sizeof buf) == 9 && strcmp(buf, "( [SM ] )") == 0, "%s", buf);
    // tokenizer: ']' and X alike, parentheses deleted even inside words (LRA), any whitespace
    n = tokenize("(([M(AX\t3)\r\n X ]", tok, 64);
    T_CHECK(n == 4 && tok[0] == LRA_LISTOPS_MAX && tok[1] == 4 && tok[2] == LRA_LISTOPS_X && tok[3] == LRA_LISTOPS_X,
            "[M(AX, X and ]");
    T_CHECK(tokenize("( ( ) )", tok, 64) == 0, "parentheses only: no tokens");
    T_CHECK(tokenize("1 2 3 4 5", tok, 2) == 5 && tok[1] == 3, "count beyond cap");
    lra_err err = {0};
    T_CHECK(lra_listops_tokenize("[MAX 3 [FIRST 2 ]", 17, tok, 64, &err) == -1 &&
                strcmp(err.msg, "unknown token '[FIRST' (expected 0-9, [MIN, [MAX, [MED, [SM or ])") == 0,
            "message: %s", err.msg);
    T_CHECK(lra_listops_tokenize("[MAX 12 ]", 9, tok, 64, &err) == -1 && strstr(err.msg, "'12'"), "%s", err.msg);
    T_CHECK(lra_listops_tokenize("\xff\x01", 2, tok, 64, &err) == -1 && strstr(err.msg, "'\\xff\\x01'"), "%s",
            err.msg);
}

// Round trips of generated expressions: tokens -> release text -> tokens,
// tokens -> readable text -> tokens; labels agree with the reference evaluator.
static void test_round_trips(void) {
    lra_kv params[] = SHORT_PARAMS("500", "50", "50");
    lra_task t;
    if (!open_listops(&t, params, 6, 3)) return;
    int32_t tok[64], back[64], len;
    char text[2048];
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int64_t i = 0; i < t.info.split_size[s]; i++) {
            lra_example ex = { tok, &len, -1 };
            lra_err err = {0};
            if (lra_task_listops.example(&t, (lra_split)s, i, &ex, &err)) { T_CHECK(0, "%s", err.msg); return; }
            int pos = 0;
            T_CHECK(ref_eval(tok, len, &pos) == ex.label && pos == len, "label %d of %s %lld", ex.label,
                    lra_split_names[s], (long long)i);
            for (int parens = 0; parens <= 1; parens++) {
                int64_t m = lra_listops_format(tok, len, parens, text, sizeof text);
                T_CHECK(m > 0 && (size_t)m < sizeof text, "formatted");
                int n = tokenize(text, back, 64);
                T_CHECK(n == len && memcmp(back, tok, sizeof(int32_t) * (size_t)len) == 0, "round trip: %s", text);
            }
        }
    lra_task_listops.close(&t);
}

// ---- generated examples -------------------------------------------------------

static void test_length_bounds(void) {
    lra_kv params[] = SHORT_PARAMS("2000", "100", "100");
    lra_task t;
    if (!open_listops(&t, params, 6, 1)) return;
    int32_t tok[64], len;
    int lo = 1 << 30, hi = 0;
    for (int64_t i = 0; i < 2000; i++) {
        lra_example ex = { tok, &len, -1 };
        lra_err err = {0};
        T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TRAIN, i, &ex, &err) == LRA_OK, "%s", err.msg);
        T_CHECK(len > 10 && len < 60, "example %lld: length %d outside (10, 60)", (long long)i, len);
        for (int j = len; j < 64; j++) T_CHECK(tok[j] == LRA_LISTOPS_PAD, "padding");
        for (int j = 0; j < len; j++) T_CHECK(tok[j] >= 1 && tok[j] <= 15, "token ids");
        lo = len < lo ? len : lo;
        hi = len > hi ? len : hi;
    }
    T_CHECK(lo <= 13 && hi >= 55, "the whole range is used: %d..%d", lo, hi);
    lra_task_listops.close(&t);

    // eos: one EOS after the expression, room for it in seq_len, vocab unchanged
    lra_kv with_eos[] = { { "min_length", "10", "t" }, { "max_length", "60", "t" }, { "seq_len", "60", "t" },
                          { "eos", "1", "t" } };
    if (!open_listops(&t, with_eos, 4, 1)) return;
    T_CHECK(t.info.vocab == 17 && t.info.seq_len == 60, "vocab %d", t.info.vocab);
    int32_t tok2[60], len2;
    for (int64_t i = 0; i < 200; i++) {
        lra_example ex = { tok2, &len2, -1 };
        lra_err err = {0};
        T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TRAIN, i, &ex, &err) == LRA_OK, "%s", err.msg);
        T_CHECK(len2 > 11 && len2 <= 60 && tok2[len2 - 1] == LRA_LISTOPS_EOS, "EOS last");
        for (int j = 0; j < len2 - 1; j++) T_CHECK(tok2[j] != LRA_LISTOPS_EOS, "one EOS only");
    }
    lra_task_listops.close(&t);
}

static void test_eos_same_expressions(void) {
    lra_kv a[] = { { "min_length", "10", "t" }, { "max_length", "60", "t" }, { "seq_len", "64", "t" } };
    lra_kv b[] = { { "min_length", "10", "t" }, { "max_length", "60", "t" }, { "seq_len", "64", "t" },
                   { "eos", "1", "t" } };
    lra_task ta, tb;
    if (!open_listops(&ta, a, 3, 9) || !open_listops(&tb, b, 4, 9)) return;
    for (int64_t i = 0; i < 100; i++) {
        int32_t x[64], y[64], lx, ly;
        lra_example ex = { x, &lx, -1 }, ey = { y, &ly, -1 };
        lra_err err = {0};
        T_CHECK(!lra_task_listops.example(&ta, LRA_SPLIT_VAL, i, &ex, &err) &&
                    !lra_task_listops.example(&tb, LRA_SPLIT_VAL, i, &ey, &err), "%s", err.msg);
        T_CHECK(ly == lx + 1 && memcmp(x, y, sizeof(int32_t) * (size_t)lx) == 0 && ex.label == ey.label,
                "eos=1 appends to the same expression");
    }
    lra_task_listops.close(&ta);
    lra_task_listops.close(&tb);
}

// Labels of a moderately short variant: skewed toward 0 and 9 as in lra.md §2.
static void test_label_distribution(void) {
    lra_kv params[] = { { "min_length", "50", "t" }, { "max_length", "200", "t" }, { "seq_len", "256", "t" } };
    lra_task t;
    if (!open_listops(&t, params, 3, 1)) return;
    int count[10] = {0}, n = 2000;
    int32_t tok[256], len;
    for (int64_t i = 0; i < n; i++) {
        lra_example ex = { tok, &len, -1 };
        lra_err err = {0};
        T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TRAIN, i, &ex, &err) == LRA_OK, "%s", err.msg);
        T_CHECK(ex.label >= 0 && ex.label <= 9, "label %d", ex.label);
        int value = -1;
        T_CHECK(lra_listops_eval(tok, len, &value) == LRA_OK && value == ex.label, "label = value");
        if (ex.label >= 0 && ex.label <= 9) count[ex.label]++;
    }
    for (int k = 1; k <= 8; k++)
        T_CHECK(count[k] < count[0] && count[k] < count[9], "0 and 9 most frequent: %d has %d (0: %d, 9: %d)", k,
                count[k], count[0], count[9]);
    T_CHECK(count[0] > 0.13 * n && count[9] > 0.13 * n, "0: %d, 9: %d of %d", count[0], count[9], n);
    printf("    labels of 2000 (min_length 50, max_length 200): %d %d %d %d %d %d %d %d %d %d\n", count[0], count[1],
           count[2], count[3], count[4], count[5], count[6], count[7], count[8], count[9]);
    lra_task_listops.close(&t);
}

// LRA settings: lengths 501..1999, mean about 1000 (lra.md §2: 1026 on 300).
static void test_lra_lengths(void) {
    lra_task t;
    if (!open_listops(&t, NULL, 0, 1)) return;
    T_CHECK(strcmp(t.info.params, "n_train=96000;n_val=2000;n_test=2000;min_length=500;max_length=2000;"
                                  "max_depth=10;max_args=10;seq_len=2000;eos=0") == 0, "params: %s", t.info.params);
    T_CHECK(t.info.split_size[0] == 96000 && t.info.split_size[1] == 2000 && t.info.split_size[2] == 2000, "sizes");
    T_CHECK(t.info.vocab == 17 && t.info.pad_id == 0 && t.info.n_classes == 10 && t.info.n_inputs == 1 &&
                t.info.seq_len == 2000 && t.info.image_side == 0 && t.info.generator_version == 1, "shape");
    T_CHECK(strcmp(t.info.source, "generated (seed 1)") == 0, "source: %s", t.info.source);
    int32_t *tok = malloc(2000 * sizeof *tok), len;
    double sum = 0;
    int n = 300, lo = 1 << 30, hi = 0;
    for (int64_t i = 0; i < n; i++) {
        lra_example ex = { tok, &len, -1 };
        lra_err err = {0};
        T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TRAIN, i, &ex, &err) == LRA_OK, "%s", err.msg);
        T_CHECK(len > 500 && len < 2000, "length %d", len);
        sum += len;
        lo = len < lo ? len : lo;
        hi = len > hi ? len : hi;
    }
    printf("    LRA settings, 300 train examples: mean length %.1f (min %d, max %d)\n", sum / n, lo, hi);
    T_CHECK(sum / n > 930 && sum / n < 1130, "mean length %.1f", sum / n);
    lra_err err = {0};
    lra_example ex = { tok, &len, -1 };
    T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TEST, 2000, &ex, &err) == LRA_EINVAL &&
                strcmp(err.msg, "listops: no example 2000 in split test (size 2000)") == 0, "%s", err.msg);
    T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_VAL, -1, &ex, &err) == LRA_EINVAL, "negative index");
    free(tok);
    lra_task_listops.close(&t);
}

// Same example twice, and the same examples from 1 and 2 threads.
static void test_determinism(void) {
    lra_kv params[] = SHORT_PARAMS("600", "100", "100");
    lra_task t;
    if (!open_listops(&t, params, 6, 5)) return;
    enum { L = 64, N = 300 };
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        int32_t *seq = calloc((size_t)N * L, sizeof *seq), *par = calloc((size_t)N * L, sizeof *par);
        int32_t len_seq[N], len_par[N], lab_seq[N], lab_par[N];
        int64_t n = t.info.split_size[s] < N ? t.info.split_size[s] : N;
        int failed = 0;
        for (int64_t i = 0; i < n; i++) {
            lra_example ex = { seq + i * L, &len_seq[i], -1 };
            failed |= lra_task_listops.example(&t, (lra_split)s, i, &ex, NULL);
            lab_seq[i] = ex.label;
        }
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(| : failed)
        for (int64_t i = n - 1; i >= 0; i--) {  // other order, other threads
            lra_example ex = { par + i * L, &len_par[i], -1 };
            failed |= lra_task_listops.example(&t, (lra_split)s, i, &ex, NULL);
            lab_par[i] = ex.label;
        }
        T_CHECK(!failed, "generated");
        T_CHECK(memcmp(seq, par, sizeof(int32_t) * (size_t)(n * L)) == 0 &&
                    memcmp(len_seq, len_par, sizeof(int32_t) * (size_t)n) == 0 &&
                    memcmp(lab_seq, lab_par, sizeof(int32_t) * (size_t)n) == 0,
                "split %s: 1 thread == 2 threads", lra_split_names[s]);
        int differ = 0;
        for (int64_t i = 1; i < n; i++) differ += memcmp(seq, seq + i * L, L * sizeof(int32_t)) != 0;
        T_CHECK(differ == n - 1, "examples differ from example 0");
        free(seq);
        free(par);
    }
    // another seed, other examples; the same seed reopened, the same ones
    lra_task u, v;
    if (!open_listops(&u, params, 6, 6) || !open_listops(&v, params, 6, 5)) return;
    int32_t a[L], b[L], c[L], la, lb, lc;
    lra_example ea = { a, &la, -1 }, eb = { b, &lb, -1 }, ec = { c, &lc, -1 };
    T_CHECK(!lra_task_listops.example(&t, LRA_SPLIT_TRAIN, 7, &ea, NULL) &&
                !lra_task_listops.example(&u, LRA_SPLIT_TRAIN, 7, &eb, NULL) &&
                !lra_task_listops.example(&v, LRA_SPLIT_TRAIN, 7, &ec, NULL), "generated");
    T_CHECK(memcmp(a, b, sizeof a) != 0, "seed matters");
    T_CHECK(memcmp(a, c, sizeof a) == 0 && la == lc && ea.label == ec.label, "reopened: same example");
    lra_task_listops.close(&t);
    lra_task_listops.close(&u);
    lra_task_listops.close(&v);

    // LRA settings, a few examples of each split
    lra_task w;
    if (!open_listops(&w, NULL, 0, 1)) return;
    enum { M = 8, W = 2000 };
    int32_t *seq = malloc(sizeof(int32_t) * 3 * M * W), *par = malloc(sizeof(int32_t) * 3 * M * W);
    int32_t lens[2][3 * M], labs[2][3 * M];
    for (int pass = 0; pass < 2; pass++) {
        int32_t *out = pass ? par : seq;
#pragma omp parallel for num_threads(pass ? 2 : 1) schedule(dynamic, 1)
        for (int j = 0; j < 3 * M; j++) {
            lra_example ex = { out + (int64_t)j * W, &lens[pass][j], -1 };
            if (lra_task_listops.example(&w, (lra_split)(j / M), j % M, &ex, NULL)) lens[pass][j] = -1;
            labs[pass][j] = ex.label;
        }
    }
    T_CHECK(memcmp(seq, par, sizeof(int32_t) * 3 * M * W) == 0 && memcmp(lens[0], lens[1], sizeof lens[0]) == 0 &&
                memcmp(labs[0], labs[1], sizeof labs[0]) == 0 && lens[0][M] > 500,
            "LRA settings: 1 thread == 2 threads");
    free(seq);
    free(par);
    lra_task_listops.close(&w);
}

// Hashes of all examples of t (sorted per split) into h[split]; returns
// repeats within splits (equal hashes) in *repeats.
static void split_hashes(lra_task *t, uint64_t *h[LRA_SPLIT_COUNT], int64_t *repeats) {
    int32_t tok[64], len;
    *repeats = 0;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        int64_t n = t->info.split_size[s];
        uint64_t bound[2] = { ((uint64_t)t->info.split_size[0] << 32), 0 };
        int64_t total = t->info.split_size[0] + t->info.split_size[1] + t->info.split_size[2];
        bound[0] = bound[0] / (uint64_t)total;
        bound[1] = ((uint64_t)(t->info.split_size[0] + t->info.split_size[1]) << 32) / (uint64_t)total;
        h[s] = malloc((size_t)n * sizeof *h[s]);
        for (int64_t i = 0; i < n; i++) {
            lra_example ex = { tok, &len, -1 };
            T_CHECK(lra_task_listops.example(t, (lra_split)s, i, &ex, NULL) == LRA_OK, "generated");
            h[s][i] = lra_listops_hash(tok, len);
            uint64_t u = h[s][i] >> 32;
            int in = s == 0 ? u < bound[0] : s == 1 ? u >= bound[0] && u < bound[1] : u >= bound[1];
            T_CHECK(in, "example %lld of %s hashes into its split's fraction", (long long)i, lra_split_names[s]);
        }
        qsort(h[s], (size_t)n, sizeof *h[s], t_cmp_u64);
        for (int64_t i = 1; i < n; i++) *repeats += h[s][i] == h[s][i - 1];
    }
}

static int64_t common(const uint64_t *a, int64_t na, const uint64_t *b, int64_t nb) {
    int64_t i = 0, j = 0, both = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j]) i++;
        else if (b[j] < a[i]) j++;
        else { both++; i++; j++; }
    }
    return both;
}

// No expression in two splits. Equal expressions have equal hashes, so
// disjoint hash sets mean disjoint expressions. The tiny variant (lengths 4
// and 5: 4400 expressions in all) would share hundreds across splits if
// splits were drawn independently.
static void test_splits_disjoint(void) {
    static const struct { const char *min, *max; int64_t max_repeats; } variants[] = {
        { "3", "6", 1000000 },  // tiny space: repeats within a split are expected
        { "10", "60", 20 },     // a short variant: the repeat rate is documented in listops.c
    };
    for (int v = 0; v < 2; v++) {
        lra_kv params[] = { { "n_train", "3000", "t" }, { "n_val", "1000", "t" }, { "n_test", "1000", "t" },
                            { "min_length", variants[v].min, "t" }, { "max_length", variants[v].max, "t" },
                            { "seq_len", "64", "t" } };
        lra_task t;
        if (!open_listops(&t, params, 6, 11)) return;
        uint64_t *h[LRA_SPLIT_COUNT];
        int64_t repeats;
        split_hashes(&t, h, &repeats);
        int64_t *n = t.info.split_size;
        T_CHECK(common(h[0], n[0], h[1], n[1]) == 0, "train and val share an expression");
        T_CHECK(common(h[0], n[0], h[2], n[2]) == 0, "train and test share an expression");
        T_CHECK(common(h[1], n[1], h[2], n[2]) == 0, "val and test share an expression");
        T_CHECK(repeats <= variants[v].max_repeats, "%lld repeats", (long long)repeats);
        printf("    min_length %s, max_length %s: %lld repeats within splits among 5000 examples\n", variants[v].min,
               variants[v].max, (long long)repeats);
        for (int s = 0; s < LRA_SPLIT_COUNT; s++) free(h[s]);
        lra_task_listops.close(&t);
    }
}

// ---- release files ------------------------------------------------------------

static char tmp_root[64];

static void make_tmp(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/lra-test-listops-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        exit(2);
    }
}

static void remove_tmp(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    T_CHECK(system(cmd) == 0, "cleanup");
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)*size + 1);
    if (fread(buf, 1, (size_t)*size, f) != (size_t)*size) *size = -1;
    buf[*size > 0 ? *size : 0] = 0;
    fclose(f);
    return buf;
}

static int same_examples(lra_task *a, lra_task *b) {
    int L = a->info.seq_len;
    if (b->info.seq_len != L) return 0;
    int32_t *x = malloc(sizeof(int32_t) * (size_t)L), *y = malloc(sizeof(int32_t) * (size_t)L), lx, ly;
    int same = 1;
    for (int s = 0; s < LRA_SPLIT_COUNT && same; s++) {
        same = a->info.split_size[s] == b->info.split_size[s];
        for (int64_t i = 0; i < a->info.split_size[s] && same; i++) {
            lra_example ex = { x, &lx, -1 }, ey = { y, &ly, -1 };
            same = !a->vt->example(a, (lra_split)s, i, &ex, NULL) && !b->vt->example(b, (lra_split)s, i, &ey, NULL) &&
                   lx == ly && ex.label == ey.label && memcmp(x, y, sizeof(int32_t) * (size_t)L) == 0;
        }
    }
    free(x);
    free(y);
    return same;
}

static int64_t progress_done, progress_total;
static void on_progress(void *ctx, int64_t done, int64_t total) {
    (void)ctx;
    progress_done = done;
    progress_total = total;
}

// generator -> release TSV -> loader: identical examples; loader -> TSV: the same bytes.
static void test_tsv_round_trip(void) {
    make_tmp();
    for (int eos = 0; eos <= 1; eos++) {
        lra_kv params[] = { { "n_train", "1100", "t" }, { "n_val", "120", "t" }, { "n_test", "80", "t" },
                            { "min_length", "10", "t" }, { "max_length", "60", "t" }, { "seq_len", "64", "t" },
                            { "eos", eos ? "1" : "0", "t" } };
        lra_task gen, loaded;
        if (!open_listops(&gen, params, 7, 2)) return;
        lra_err err = {0};
        for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
            progress_done = progress_total = 0;
            T_CHECK(lra_task_listops.export_split(&gen, (lra_split)s, tmp_root, -1, on_progress, NULL, &err) == LRA_OK,
                    "export: %s", err.msg);
            T_CHECK(progress_done == gen.info.split_size[s] && progress_total == progress_done, "progress");
        }
        lra_kv load[] = { { "data_dir", tmp_root, "t" }, { "seq_len", "64", "t" }, { "eos", eos ? "1" : "0", "t" } };
        if (!open_listops(&loaded, load, 3, 99)) return;
        T_CHECK(strcmp(loaded.info.source, tmp_root) == 0, "source: %s", loaded.info.source);
        char want[256];
        snprintf(want, sizeof want, "data_dir=%s;seq_len=64;eos=%d", tmp_root, eos);
        T_CHECK(strcmp(loaded.info.params, want) == 0, "params: %s", loaded.info.params);
        T_CHECK(same_examples(&gen, &loaded), "eos=%d: loaded examples == generated examples", eos);
        lra_task_listops.close(&gen);

        // re-export from the loader: byte-identical files
        char sub[128], a[256], b[256];
        snprintf(sub, sizeof sub, "%s/again", tmp_root);
        mkdir(sub, 0700);
        T_CHECK(lra_task_listops.export_split(&loaded, LRA_SPLIT_VAL, sub, -1, NULL, NULL, &err) == LRA_OK, "%s",
                err.msg);
        snprintf(a, sizeof a, "%s/basic_val.tsv", tmp_root);
        snprintf(b, sizeof b, "%s/basic_val.tsv", sub);
        long na, nb;
        char *fa = read_all(a, &na), *fb = read_all(b, &nb);
        T_CHECK(fa && fb && na == nb && na > 0 && memcmp(fa, fb, (size_t)na) == 0, "re-export is byte-identical");
        T_CHECK(fa && strncmp(fa, "Source\tTarget\r\n( ", 17) == 0, "header row, CRLF, parenthesised source");
        free(fa);
        free(fb);
        // a cut: the first 10 examples
        T_CHECK(lra_task_listops.export_split(&loaded, LRA_SPLIT_TRAIN, sub, 10, NULL, NULL, &err) == LRA_OK, "%s",
                err.msg);
        snprintf(b, sizeof b, "%s/basic_train.tsv", sub);
        fb = read_all(b, &nb);
        int lines = 0;
        for (long i = 0; fb && i < nb; i++) lines += fb[i] == '\n';
        T_CHECK(lines == 11, "header + 10 rows, got %d lines", lines);
        free(fb);
        lra_task_listops.close(&loaded);
    }
    // seq_len shorter than the expressions: a prefix, then EOS
    lra_kv cut[] = { { "data_dir", tmp_root, "t" }, { "seq_len", "16", "t" }, { "eos", "1", "t" } };
    lra_kv whole[] = { { "data_dir", tmp_root, "t" }, { "seq_len", "64", "t" } };
    lra_task tc, tw;
    if (!open_listops(&tc, cut, 3, 1) || !open_listops(&tw, whole, 2, 1)) return;
    for (int64_t i = 0; i < 50; i++) {
        int32_t x[16], y[64], lx, ly;
        lra_example ex = { x, &lx, -1 }, ey = { y, &ly, -1 };
        T_CHECK(!lra_task_listops.example(&tc, LRA_SPLIT_TRAIN, i, &ex, NULL) &&
                    !lra_task_listops.example(&tw, LRA_SPLIT_TRAIN, i, &ey, NULL), "served");
        int keep = ly < 15 ? ly : 15;
        T_CHECK(lx == keep + 1 && x[keep] == LRA_LISTOPS_EOS && memcmp(x, y, sizeof(int32_t) * (size_t)keep) == 0 &&
                    ex.label == ey.label, "cut to 15 tokens + EOS");
    }
    lra_task_listops.close(&tc);
    lra_task_listops.close(&tw);
    remove_tmp();
}

// Each bad release file: the exact message, naming the file and the line.
static void test_loader_errors(void) {
    make_tmp();
    const char *good = "Source\tTarget\r\n( ( ( [MAX 3 ) 2 ) ] )\t3\r\n( ( ( [SM 9 ) 9 ) ] )\t8\r\n";
    static const struct { const char *train, *message; } cases[] = {
        { "", "%s/basic_train.tsv: empty file, expected the header row Source<TAB>Target" },
        { "Src\tTgt\n( ( [MAX 3 ) ] )\t3\n", "%s/basic_train.tsv:1: expected the header row Source<TAB>Target, got "
                                            "'Src\\x09Tgt'" },
        { "( ( [MAX 3 ) ] )\t3\n", "%s/basic_train.tsv:1: expected the header row Source<TAB>Target, got "
                                  "'( ( [MAX 3 ) ] )\\x093'" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\t3\n( ( [MAX 3 ) ] )\t3\textra\n",
          "%s/basic_train.tsv:3: expected 2 tab-separated columns (Source, Target), got 3" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\n", "%s/basic_train.tsv:2: expected 2 tab-separated columns (Source, "
                                               "Target), got 1" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\t3\n\n", "%s/basic_train.tsv:3: expected 2 tab-separated columns (Source, "
                                                    "Target), got 1" },
        { "Source\tTarget\n( ( ( [FIRST 3 ) 2 ) ] )\t3\n",
          "%s/basic_train.tsv:2: unknown token '[FIRST' (expected 0-9, [MIN, [MAX, [MED, [SM or ])" },
        { "Source\tTarget\n( ( [MAX \xc3\x28 ) ] )\t3\n",
          "%s/basic_train.tsv:2: unknown token '\\xc3' (expected 0-9, [MIN, [MAX, [MED, [SM or ])" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\t10\n", "%s/basic_train.tsv:2: label '10': expected an integer 0..9" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\t-1\n", "%s/basic_train.tsv:2: label '-1': expected an integer 0..9" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\tseven\n",
          "%s/basic_train.tsv:2: label 'seven': expected an integer 0..9" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\t\n", "%s/basic_train.tsv:2: label '': expected an integer 0..9" },
        { "Source\tTarget\n( ( [MAX 3 ) ] )\t3\n( )\t3\n", "%s/basic_train.tsv:3: empty expression" },
        { "Source\tTarget\n\t3\n", "%s/basic_train.tsv:2: empty expression" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_file(tmp_root, "basic_train.tsv", cases[c].train);
        write_file(tmp_root, "basic_val.tsv", good);
        write_file(tmp_root, "basic_test.tsv", good);
        lra_kv params[] = { { "data_dir", tmp_root, "t" } };
        lra_err err;
        char want[512];
        snprintf(want, sizeof want, cases[c].message, tmp_root);
        const char *got = open_error(params, 1, &err);
        T_CHECK(strcmp(got, want) == 0 && err.code == LRA_EIO, "case %zu:\n      got  %s\n      want %s", c, got,
                want);
    }
    // missing file (val), and a good set: LF or CRLF, last line without newline
    write_file(tmp_root, "basic_train.tsv", "Source\tTarget\n( ( ( [MED 3 ) 8 ) ] )\t5\n( ( ( [SM 9 ) 9 ) ] )\t8");
    char path[256], want[512];
    snprintf(path, sizeof path, "%s/basic_val.tsv", tmp_root);
    unlink(path);
    lra_kv params[] = { { "data_dir", tmp_root, "t" } };
    lra_err err;
    snprintf(want, sizeof want, "%s/basic_val.tsv: cannot open (No such file or directory)", tmp_root);
    T_CHECK(strcmp(open_error(params, 1, &err), want) == 0, "missing file: %s", err.msg);
    write_file(tmp_root, "basic_val.tsv", "Source\tTarget\r\n");  // an empty split
    lra_task t;
    if (open_listops(&t, params, 1, 1)) {
        T_CHECK(t.info.split_size[0] == 2 && t.info.split_size[1] == 0 && t.info.split_size[2] == 2, "split sizes");
        int32_t *tok = malloc(2000 * sizeof *tok), len;
        lra_example ex = { tok, &len, -1 };
        T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TRAIN, 1, &ex, NULL) == LRA_OK && len == 4 && ex.label == 8 &&
                    tok[0] == LRA_LISTOPS_SM && tok[3] == LRA_LISTOPS_X && tok[4] == 0, "last row without newline");
        T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_VAL, 0, &ex, &err) == LRA_EINVAL, "empty split");
        free(tok);
        lra_task_listops.close(&t);
    }
    remove_tmp();
}

// Every bad parameter: the exact message.
static void test_param_errors(void) {
    static const struct { lra_kv kv[3]; int n; const char *message; } cases[] = {
        { { { "depth", "3", "x.yaml:4:3" } }, 1,
          "x.yaml:4:3: listops.depth: unknown parameter (known: n_train, n_val, n_test, min_length, max_length, "
          "max_depth, max_args, seq_len, eos, data_dir)" },
        { { { "n_train", "-1", "cli" } }, 1,
          "cli: listops.n_train: expected an integer in [0, 1000000000], got '-1'" },
        { { { "max_args", "1", "cli" } }, 1, "cli: listops.max_args: expected an integer in [2, 64], got '1'" },
        { { { "eos", "yes", "cli" } }, 1, "cli: listops.eos: expected an integer in [0, 1], got 'yes'" },
        { { { "n_train", "0", "a" }, { "n_val", "0", "b" }, { "n_test", "0", "c" } }, 3,
          "a: listops.n_train: n_train + n_val + n_test must be at least 1" },
        { { { "min_length", "100", "a" }, { "max_length", "101", "b" }, { "seq_len", "200", "c" } }, 3,
          "b: listops.max_length: expected at least min_length + 2 = 102, got 101" },
        { { { "seq_len", "1998", "c" } }, 1, "c: listops.seq_len: expected at least max_length - 1 + eos = 1999, got 1998" },
        { { { "eos", "1", "a" }, { "seq_len", "1999", "c" } }, 2,
          "c: listops.seq_len: expected at least max_length - 1 + eos = 2000, got 1999" },
        { { { "max_depth", "3", "a" }, { "max_args", "3", "b" } }, 2,
          "listops: min_length=500 cannot be passed: max_depth=3, max_args=3 allow at most 17 tokens" },
        // lengths 2 and 3 are never reached (a leaf is 1 token, an operator >= 4)
        { { { "min_length", "1", "a" }, { "max_length", "4", "b" }, { "seq_len", "8", "c" } }, 3,
          "listops: none of 100000 random trees (max_depth=10, max_args=10) has min_length=1 < length < max_length=4" },
        { { { "data_dir", "/nonexistent", "a" }, { "max_length", "100", "b" } }, 2,
          "b: listops.max_length: not used with data_dir (the files fix it)" },
        { { { "data_dir", "", "a" } }, 1, "a: listops.data_dir: expected a directory, got ''" },
        { { { "data_dir", "/nonexistent", "a" }, { "seq_len", "1", "b" }, { "eos", "1", "c" } }, 3,
          "b: listops.seq_len: expected at least 2 with eos=1, got 1" },
        { { { "data_dir", "/nonexistent", "a" } }, 1,
          "/nonexistent/basic_train.tsv: cannot open (No such file or directory)" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lra_err err;
        const char *got = open_error(cases[c].kv, cases[c].n, &err);
        T_CHECK(strcmp(got, cases[c].message) == 0, "case %zu:\n      got  %s\n      want %s", c, got, cases[c].message);
    }
}

static void test_params_text(void) {
    lra_kv params[] = { { "eos", "1", "t" },        { "max_args", "5", "t" },   { "seq_len", "300", "t" },
                        { "max_length", "300", "t" }, { "min_length", "40", "t" }, { "max_depth", "12", "t" },
                        { "n_test", "30", "t" },      { "n_val", "20", "t" },     { "n_train", "10", "t" } };
    lra_task t;
    if (!open_listops(&t, params, 9, 77)) return;
    T_CHECK(strcmp(t.info.params, "n_train=10;n_val=20;n_test=30;min_length=40;max_length=300;max_depth=12;"
                                  "max_args=5;seq_len=300;eos=1") == 0, "params in a fixed order: %s", t.info.params);
    T_CHECK(strcmp(t.info.source, "generated (seed 77)") == 0 && t.info.split_size[2] == 30, "source, sizes");
    T_CHECK(strcmp(lra_task_listops.name, "listops") == 0 && lra_task_listops.summary, "vtable");
    lra_task_listops.close(&t);
}

// Random bytes, and good files cut anywhere: an error or a good open, never a crash.
static void test_loader_garbage(void) {
    make_tmp();
    const char *good = "Source\tTarget\r\n( ( ( [MAX 3 ) 2 ) ] )\t3\r\n( ( ( [SM 9 ) 9 ) ] )\t8\r\n";
    write_file(tmp_root, "basic_val.tsv", good);
    write_file(tmp_root, "basic_test.tsv", good);
    lra_kv params[] = { { "data_dir", tmp_root, "t" }, { "seq_len", "8", "t" } };
    lra_rng r = { 5, 0 };
    int opened = 0;
    for (int c = 0; c < 200; c++) {
        char text[256];
        size_t n;
        if (c < 100) {  // random bytes after a good header, biased toward the symbols of the format
            static const char sym[] = "()[]\t\r\n 0123456789MINAXEDSX\xff\0";
            n = (size_t)snprintf(text, sizeof text, "Source\tTarget\n");
            for (size_t k = 0; k < 120; k++) text[n++] = sym[lra_rng_int(&r, 0, (int64_t)sizeof sym - 2)];
        } else {  // a good file cut after a random byte
            n = (size_t)lra_rng_int(&r, 0, (int64_t)strlen(good));
            memcpy(text, good, n);
        }
        text[n] = 0;
        char path[256];
        snprintf(path, sizeof path, "%s/basic_train.tsv", tmp_root);
        FILE *f = fopen(path, "wb");
        fwrite(text, 1, n, f);  // may hold NUL bytes
        fclose(f);
        lra_task t;
        lra_err err = {0};
        if (lra_task_listops.open(&t, params, 2, 1, &err) == LRA_OK) {
            opened++;
            int32_t tok[8], len;
            for (int64_t i = 0; i < t.info.split_size[0]; i++) {
                lra_example ex = { tok, &len, -1 };
                T_CHECK(lra_task_listops.example(&t, LRA_SPLIT_TRAIN, i, &ex, &err) == LRA_OK, "%s", err.msg);
                T_CHECK(len >= 1 && len <= 8 && ex.label >= 0 && ex.label <= 9, "served");
            }
            lra_task_listops.close(&t);
        } else {
            T_CHECK(strncmp(err.msg, path, strlen(path)) == 0 && err.code == LRA_EIO, "names the file: %s", err.msg);
        }
    }
    T_CHECK(opened > 10, "some cut files still open (%d)", opened);

    // tokens that are not one expression load, but cannot be written back
    write_file(tmp_root, "basic_train.tsv", "Source\tTarget\n( [MAX 3\t3\n");
    lra_task t;
    if (open_listops(&t, params, 2, 1)) {
        char sub[128], want[256];
        snprintf(sub, sizeof sub, "%s/out", tmp_root);
        mkdir(sub, 0700);
        lra_err err = {0};
        snprintf(want, sizeof want, "%s/basic_train.tsv: example 0 is not one well-formed expression", sub);
        T_CHECK(lra_task_listops.export_split(&t, LRA_SPLIT_TRAIN, sub, -1, NULL, NULL, &err) == LRA_EINVAL &&
                    strcmp(err.msg, want) == 0, "message: %s", err.msg);
        snprintf(want, sizeof want, "%s/nodir/basic_val.tsv: cannot create (No such file or directory)", tmp_root);
        snprintf(sub, sizeof sub, "%s/nodir", tmp_root);
        T_CHECK(lra_task_listops.export_split(&t, LRA_SPLIT_VAL, sub, -1, NULL, NULL, &err) == LRA_EIO &&
                    strcmp(err.msg, want) == 0, "message: %s", err.msg);
        lra_task_listops.close(&t);
    }
    remove_tmp();
}

static void test_describe(void) {
    lra_kv params[] = SHORT_PARAMS("10", "10", "10");
    params[5].value = "65";
    lra_kv with_eos[] = { params[0], params[1], params[2], params[3], params[4], params[5], { "eos", "1", "t" } };
    lra_task t;
    if (!open_listops(&t, with_eos, 7, 1)) return;
    int32_t tok[65] = { 12, 4, 3, 11, 4, 7, 9, 15, 15, LRA_LISTOPS_EOS }, len = 10;
    lra_example ex = { tok, &len, 3 };
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    lra_task_listops.describe(&t, &ex, out);
    len = 4;  // cut: not a whole expression
    tok[3] = LRA_LISTOPS_EOS;
    lra_task_listops.describe(&t, &ex, out);
    fclose(out);
    T_CHECK(text && strcmp(text, "[MAX 3 2 [MIN 3 6 8 ] ]\nvalue 3, label 3, length 9 tokens + EOS\n"
                                 "[MAX 3 2\nvalue: not one complete expression (cut to seq_len?), label 3, "
                                 "length 3 tokens + EOS\n") == 0,
            "describe:\n%s", text);
    free(text);
    lra_task_listops.close(&t);
}

static const t_case cases[] = {
    { "listops/eval", test_eval },
    { "listops/text_forms", test_text_forms },
    { "listops/round_trips", test_round_trips },
    { "listops/length_bounds", test_length_bounds },
    { "listops/eos", test_eos_same_expressions },
    { "listops/label_distribution", test_label_distribution },
    { "listops/lra_lengths", test_lra_lengths },
    { "listops/determinism", test_determinism },
    { "listops/splits_disjoint", test_splits_disjoint },
    { "listops/tsv_round_trip", test_tsv_round_trip },
    { "listops/loader_errors", test_loader_errors },
    { "listops/param_errors", test_param_errors },
    { "listops/params_text", test_params_text },
    { "listops/loader_garbage", test_loader_garbage },
    { "listops/describe", test_describe },
};
T_MAIN(cases)
