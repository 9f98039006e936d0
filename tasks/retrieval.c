// retrieval.c: the LRA Retrieval task (lra.md 1.4): do two papers of the ACL
// Anthology Network cite each other? Two documents per example (n_inputs 2),
// each as bytes + 1 (ids 1..256, 0 pads, vocab 257: tfds ByteTextEncoder),
// truncated to 10,000 bytes and then to seq_len (default 4000) and padded;
// 2 classes (1 related).
//
// Loaded (parameter data_dir): <data_dir>/new_aan_pairs.{train,eval,test}.tsv
// (train, val, test): no header, one pair per line, 5 tab-separated columns
// label, id1, id2, text1, text2, no quoting (LRA reads them with
// use_quote_delim=False). The label is parsed as a float and cast to int as LRA
// does (1.0 -> 1, 0.7 -> 0) and must then be 0 or 1. A line ends at '\n'; one
// '\r' before it is dropped. Empty lines are skipped (they still count in line
// numbers); any other line with other than 5 columns is an error, as is a file
// with no pairs. An empty text is allowed (length 0). The files are indexed at
// open (label and where each text lies) and texts are read with pread() when
// an example is asked for, so the multi-GB release needs little memory.
//
// Generated (no data_dir): pairs of synthetic "papers" whose relatedness can
// only be read off the whole of both. There are 32 latent topics with 8 keys
// each; a key looks like an AAN paper id ("P03-1021", letter, 2 digits, '-',
// 4 digits; drawn once per data seed, so shared by all splits). A paper is
// academic-sounding prose (Zipf-distributed words, no tabs or newlines) of
// seq_len/2 .. seq_len - 72 bytes with 13 keys planted at uniform random
// positions: 7 from its main topic and 3 from each of two distractor topics.
// Related pairs share the main topic; unrelated ones do not, and in half of
// them (hard negatives) one paper's distractor topic is the other's main topic,
// so "do they share a key" is not the answer: the main topics, counted over
// the whole papers, are. tests/test_task_retrieval.c checks that an oracle that
// knows every key's topic is exact on whole papers and near chance on their
// first 200 bytes. export_split writes the TSV files (ids "<split>-<index>-a"
// and "-b", label "0" or "1").
#include "retrieval.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETR_SALT       0x72657472ull   // "retr"
#define RETR_KEYS_SALT  0x6b657973ull   // "keys"
#define RETR_VERSION    1
#define RETR_VOCAB      257
#define RETR_MAX_DOC    10000           // LRA truncates each text to 10,000 bytes first
#define KEYS_PER_TOPIC  8
#define N_KEYS          (LRA_RETRIEVAL_TOPICS * KEYS_PER_TOPIC)
#define MAIN_KEYS       7               // keys of the paper's own topic
#define DISTRACTORS     2               // other topics per paper ...
#define DISTRACTOR_KEYS 3               // ... with this many keys each
#define PLANTED         (MAIN_KEYS + DISTRACTORS * DISTRACTOR_KEYS)

static const char *const tsv_names[LRA_SPLIT_COUNT] = {
    "new_aan_pairs.train.tsv", "new_aan_pairs.eval.tsv", "new_aan_pairs.test.tsv",
};

// Academic filler by rough frequency; no digits, so a key is the only token with them.
static const char *const paper_words[] = {
    "the", "of", "and", "a", "to", "in", "is", "we", "for", "that", "this", "on", "with", "as", "are", "by",
    "be", "model", "which", "from", "an", "it", "can", "language", "word", "words", "data", "results",
    "each", "these", "table", "using", "section", "not", "our", "system", "information", "set",
    "sentence", "based", "two", "training", "features", "used", "task", "method", "between", "such",
    "corpus", "figure", "also", "approach", "translation", "given", "performance", "one", "has",
    "first", "number", "probability", "at", "or", "all", "more", "parsing", "work", "semantic", "other",
    "paper", "different", "new", "use", "learning", "show", "may", "example", "have", "where", "test",
    "parser", "text", "tree", "was", "English", "accuracy", "input", "their", "only", "following",
    "algorithm", "evaluation", "rules", "structure", "class", "phrase", "source", "target", "lexical",
    "previous", "shown", "its", "value", "than", "same", "then", "both", "when", "there", "into", "how",
    "score", "most", "function", "feature", "proposed", "instance", "large", "small", "level", "order",
    "form", "alignment", "baseline", "experiments", "domain", "human", "speech", "dependency", "grammar",
    "rule", "analysis", "context", "current", "documents", "document", "query", "terms", "relation",
    "entity", "named", "label", "labels", "tagging", "tag", "noun", "verb", "verbs", "nouns", "pairs",
    "pair", "node", "nodes", "graph", "vector", "vectors", "space", "length", "distribution", "weights",
    "weight", "cost", "error", "errors", "rate", "precision", "recall", "however", "thus", "since",
    "because", "while", "if", "any", "many", "several", "three", "best", "high", "higher", "lower",
    "better", "improvement", "significant", "state", "states", "methods", "models", "systems", "tasks",
    "candidate", "candidates", "lexicon", "annotation", "annotated", "treebank", "syntactic", "semantics",
    "discourse", "dialogue", "generation", "summarization", "retrieval", "extraction", "classification",
    "clustering", "supervised", "unsupervised", "statistical", "probabilistic", "linear", "search",
    "decoding", "beam", "chart", "span", "head", "argument", "arguments", "predicate", "frame", "roles",
    "coreference", "mention", "mentions", "morphology", "segmentation", "character", "characters",
    "token", "tokens", "sequence", "sequences", "hidden", "Markov", "conditional", "random", "fields",
    "maximum", "entropy", "likelihood", "estimation", "parameters", "parameter", "optimization",
    "objective", "gradient", "iterations", "smoothing", "n-gram", "bigram", "trigram", "unigram",
    "frequency", "counts", "al.", "et", "i.e.", "e.g.", "Chinese", "German", "French", "Arabic",
    "Japanese", "bilingual", "parallel", "monolingual", "reference", "references", "BLEU", "WordNet",
    "Penn", "corpora", "lexicalized", "constituent", "constituents", "phrases", "clause", "clauses",
};
#define N_WORDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

// ---- state ---------------------------------------------------------------------------------

// Where the two texts of one loaded pair lie in its file.
typedef struct {
    int64_t off[2];
    int32_t len[2];   // truncated to min(10000, seq_len)
    int8_t  label;
} pair_ref;

typedef struct {
    char      path[4096];
    int       fd;
    pair_ref *pairs;
    int64_t   n, cap;
} pair_file;

typedef struct {
    int          seq_len;
    int          loaded;
    pair_file    files[LRA_SPLIT_COUNT];            // loaded
    char         keys[N_KEYS][LRA_RETRIEVAL_KEY_BYTES + 1];   // generated: key k is of topic k / 8
    lra_wordlist filler;                              // generated
} retr_state;

static void retr_close(lra_task *t) {
    retr_state *s = t->state;
    if (!s) return;
    for (int i = 0; i < LRA_SPLIT_COUNT; i++) {
        if (s->files[i].fd >= 0) close(s->files[i].fd);
        free(s->files[i].pairs);
    }
    lra_wordlist_free(&s->filler);
    free(s);
    t->state = NULL;
}

// ---- generator ---------------------------------------------------------------------------

// Draws the 256 distinct keys of a data seed.
static void make_keys(retr_state *s, uint64_t seed) {
    uint64_t stream = lra_mix64(seed ^ lra_mix64(RETR_KEYS_SALT));
    uint64_t counter = 0;
    for (int k = 0; k < N_KEYS; k++) {
        for (int fresh = 0; !fresh;) {
            uint64_t h = lra_rand_bits(stream, counter++);
            snprintf(s->keys[k], sizeof s->keys[k], "%c%02d-%04d", 'A' + (int)(h % 26), (int)((h >> 8) % 100),
                     (int)((h >> 16) % 10000));
            fresh = 1;
            for (int j = 0; j < k && fresh; j++) fresh = strcmp(s->keys[j], s->keys[k]) != 0;
        }
    }
}

int lra_retrieval_key_topic(const lra_task *t, const uint8_t *s, int n) {
    const retr_state *st = t->state;
    if (st->loaded || n != LRA_RETRIEVAL_KEY_BYTES) return -1;
    for (int k = 0; k < N_KEYS; k++)
        if (memcmp(st->keys[k], s, (size_t)n) == 0) return k / KEYS_PER_TOPIC;
    return -1;
}

// A topic other than those in avoid[0..n_avoid).
static int other_topic(lra_rng *r, const int *avoid, int n_avoid) {
    for (;;) {
        int c = (int)lra_rng_int(r, 0, LRA_RETRIEVAL_TOPICS - 1), ok = 1;
        for (int i = 0; i < n_avoid; i++) ok &= c != avoid[i];
        if (ok) return c;
    }
}

// Writes one paper about topics[0] (main) with distractors topics[1..2].
static int write_paper(const retr_state *s, lra_rng *r, const int *topics, uint8_t *buf) {
    const char *planted[PLANTED];
    int at[PLANTED], k = 0;
    int target = (int)lra_rng_int(r, s->seq_len / 2, s->seq_len - 2 * LRA_PROSE_MAX_EMIT);
    for (int i = 0; i < MAIN_KEYS; i++, k++)
        planted[k] = s->keys[topics[0] * KEYS_PER_TOPIC + lra_rng_int(r, 0, KEYS_PER_TOPIC - 1)];
    for (int d = 1; d <= DISTRACTORS; d++)
        for (int i = 0; i < DISTRACTOR_KEYS; i++, k++)
            planted[k] = s->keys[topics[d] * KEYS_PER_TOPIC + lra_rng_int(r, 0, KEYS_PER_TOPIC - 1)];
    for (int i = PLANTED - 1; i > 0; i--) {  // Fisher-Yates: which key goes where
        int j = (int)lra_rng_int(r, 0, i);
        const char *tmp = planted[i];
        planted[i] = planted[j];
        planted[j] = tmp;
    }
    for (int i = 0; i < PLANTED; i++) {  // positions, sorted as drawn
        int a = (int)lra_rng_int(r, 0, target - 1), j = i;
        for (; j > 0 && at[j - 1] > a; j--) at[j] = at[j - 1];
        at[j] = a;
    }
    lra_prose p = { .buf = buf, .cap = s->seq_len, .br_permille = 0 };
    return lra_prose_plant(&p, r, &s->filler, planted, at, PLANTED, target);
}

// Writes generated pair (split, index) into buf0, buf1 (seq_len bytes each).
static void retr_generate(const retr_state *s, uint64_t seed, lra_split split, int64_t index, uint8_t *buf0,
                          uint8_t *buf1, int *len, int *label) {
    lra_rng r = { lra_example_seed(seed, RETR_SALT, split, index), 0 };
    int y = (int)(lra_rng_u64(&r) >> 63);
    int a[1 + DISTRACTORS], b[1 + DISTRACTORS];  // main topic, then distractors
    a[0] = (int)lra_rng_int(&r, 0, LRA_RETRIEVAL_TOPICS - 1);
    b[0] = y ? a[0] : other_topic(&r, a, 1);
    int hard = !y && (lra_rng_u64(&r) >> 63);
    int a_d0 = hard && (lra_rng_u64(&r) >> 63);  // which paper carries the other's main topic
    for (int d = 1; d <= DISTRACTORS; d++) {
        a[d] = d == 1 && hard && a_d0 ? b[0] : other_topic(&r, a, d);
        b[d] = d == 1 && hard && !a_d0 ? a[0] : other_topic(&r, b, d);
    }
    len[0] = write_paper(s, &r, a, buf0);
    len[1] = write_paper(s, &r, b, buf1);
    *label = y;
}

// ---- loader ----------------------------------------------------------------------------------

// Parses the label column as LRA does: float, then cast to int.
static int parse_label(const char *path, int64_t line, const char *s, size_t n, int8_t *out, lra_err *err) {
    char text[64];
    int shown = n < 40 ? (int)n : 40;
    if (n == 0 || n >= sizeof text)
        return lra_err_set(err, LRA_EIO, "%s:%lld: label '%.*s%s' is not a number", path, (long long)line, shown, s,
                           n > 40 ? "..." : "");
    memcpy(text, s, n);
    text[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || v != v || memchr(s, 0, n))
        return lra_err_set(err, LRA_EIO, "%s:%lld: label '%s' is not a number", path, (long long)line, text);
    if (!(v > -2147483648.0 && v < 2147483648.0))
        return lra_err_set(err, LRA_EIO, "%s:%lld: label '%s' is out of range, expected 0 or 1", path, (long long)line,
                           text);
    int label = (int)v;  // truncation toward zero, as tf.cast(float, int32)
    if (label != 0 && label != 1)
        return lra_err_set(err, LRA_EIO, "%s:%lld: label '%s' is %d as an integer, expected 0 or 1", path,
                           (long long)line, text, label);
    *out = (int8_t)label;
    return LRA_OK;
}

// Indexes one line (without its '\n') that starts at file offset `off`.
static int index_line(pair_file *pf, int64_t line, int64_t off, const char *s, size_t n, int keep, lra_err *err) {
    const char *col[5];
    size_t col_len[5];
    int n_cols = 0;
    const char *p = s, *end = s + n;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        const char *stop = tab ? tab : end;
        if (n_cols < 5) {
            col[n_cols] = p;
            col_len[n_cols] = (size_t)(stop - p);
        }
        n_cols++;
        if (!tab) break;
        p = tab + 1;
    }
    if (n_cols != 5)
        return lra_err_set(err, LRA_EIO,
                           "%s:%lld: expected 5 tab-separated columns (label, id1, id2, text1, text2), got %d",
                           pf->path, (long long)line, n_cols);
    pair_ref ref;
    int rc = parse_label(pf->path, line, col[0], col_len[0], &ref.label, err);
    if (rc) return rc;
    for (int d = 0; d < 2; d++) {
        ref.off[d] = off + (int64_t)(col[3 + d] - s);
        ref.len[d] = (int32_t)(col_len[3 + d] < (size_t)keep ? col_len[3 + d] : (size_t)keep);
    }
    if (pf->n == pf->cap) {
        int64_t cap = pf->cap ? 2 * pf->cap : 4096;
        pair_ref *p2 = realloc(pf->pairs, (size_t)cap * sizeof *p2);
        if (!p2) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", pf->path);
        pf->pairs = p2;
        pf->cap = cap;
    }
    pf->pairs[pf->n++] = ref;
    return LRA_OK;
}

static int index_file(pair_file *pf, int keep, lra_err *err) {
    FILE *f = fopen(pf->path, "rb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", pf->path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int64_t off = 0, line_no = 0;
    ssize_t got;
    int rc = LRA_OK;
    while (!rc && (got = getline(&line, &cap, f)) > 0) {
        line_no++;
        size_t n = (size_t)got;
        if (line[n - 1] == '\n') n--;
        if (n > 0 && line[n - 1] == '\r') n--;
        if (n > 0) rc = index_line(pf, line_no, off, line, n, keep, err);
        off += got;
    }
    int bad = !rc && ferror(f);
    int saved = errno;
    free(line);
    fclose(f);
    if (bad) return lra_err_set(err, LRA_EIO, "%s: read error: %s", pf->path, strerror(saved));
    if (!rc && pf->n == 0)
        return lra_err_set(err, LRA_EIO, "%s: no pairs (expected lines label<TAB>id1<TAB>id2<TAB>text1<TAB>text2)",
                           pf->path);
    if (rc) return rc;
    pf->fd = open(pf->path, O_RDONLY);
    if (pf->fd < 0) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", pf->path, strerror(errno));
    return LRA_OK;
}

static int read_text(const pair_file *pf, int64_t off, int32_t n, uint8_t *buf, lra_err *err) {
    int32_t done = 0;
    while (done < n) {
        ssize_t got = pread(pf->fd, buf + done, (size_t)(n - done), off + done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return lra_err_set(err, LRA_EIO, "%s: cannot read %d bytes at offset %lld (%s)", pf->path, n,
                               (long long)off, got < 0 ? strerror(errno) : "the file changed since it was opened");
        done += (int32_t)got;
    }
    return LRA_OK;
}

// ---- vtable ----------------------------------------------------------------------------------

static int retr_open(lra_task *t, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    static const char *const known[] = { "data_dir", "seq_len", "n_train", "n_val", "n_test", NULL };
    static const char *const gen_only[] = { "n_train", "n_val", "n_test", NULL };
    int rc = lra_kv_check_known(params, n_params, "retrieval", known, err);
    if (rc) return rc;
    const char *data_dir;
    int64_t seq_len, n[LRA_SPLIT_COUNT];
    if ((rc = lra_task_data_dir(params, n_params, "retrieval", gen_only, &data_dir, err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "retrieval", "seq_len", 4000, 512, RETR_MAX_DOC, &seq_len, err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "retrieval", "n_train", 147086, 1, 1000000000, &n[0], err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "retrieval", "n_val", 18090, 1, 1000000000, &n[1], err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "retrieval", "n_test", 17437, 1, 1000000000, &n[2], err))) return rc;
    retr_state *s = calloc(1, sizeof *s);
    if (!s) return lra_err_set(err, LRA_ENOMEM, "retrieval: out of memory");
    for (int i = 0; i < LRA_SPLIT_COUNT; i++) s->files[i].fd = -1;
    t->state = s;
    t->seed = seed;
    s->seq_len = (int)seq_len;
    lra_task_info *info = &t->info;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "retrieval");
    info->n_inputs = 2;
    info->seq_len = (int)seq_len;
    info->vocab = RETR_VOCAB;
    info->pad_id = 0;
    info->n_classes = 2;
    info->generator_version = RETR_VERSION;
    if (data_dir) {
        s->loaded = 1;
        for (int i = 0; i < LRA_SPLIT_COUNT && !rc; i++) {
            pair_file *pf = &s->files[i];
            snprintf(pf->path, sizeof pf->path, "%s/%s", data_dir, tsv_names[i]);
            rc = index_file(pf, s->seq_len, err);
            info->split_size[i] = pf->n;
        }
        if (rc) {
            retr_close(t);
            return rc;
        }
        snprintf(info->source, sizeof info->source, "%s", data_dir);
        snprintf(info->params, sizeof info->params, "data_dir=%s;seq_len=%d", data_dir, s->seq_len);
    } else {
        if ((rc = lra_wordlist_init(&s->filler, paper_words, N_WORDS(paper_words), err))) {
            retr_close(t);
            return rc;
        }
        make_keys(s, seed);
        for (int i = 0; i < LRA_SPLIT_COUNT; i++) info->split_size[i] = n[i];
        snprintf(info->source, sizeof info->source, "generated (seed %llu)", (unsigned long long)seed);
        snprintf(info->params, sizeof info->params, "seq_len=%d;n_train=%lld;n_val=%lld;n_test=%lld",
                 s->seq_len, (long long)n[0], (long long)n[1], (long long)n[2]);
    }
    return LRA_OK;
}

// The bytes of pair (split, index): buf (2, seq_len), len (2).
static int retr_bytes(const lra_task *t, lra_split split, int64_t index, uint8_t *buf, int *len, int *label,
                      lra_err *err) {
    const retr_state *s = t->state;
    int L = s->seq_len;
    if (!s->loaded) {
        retr_generate(s, t->seed, split, index, buf, buf + L, len, label);
        return LRA_OK;
    }
    const pair_file *pf = &s->files[split];
    const pair_ref *ref = &pf->pairs[index];
    for (int d = 0; d < 2; d++) {
        int rc = read_text(pf, ref->off[d], ref->len[d], buf + (size_t)d * L, err);
        if (rc) return rc;
        len[d] = ref->len[d];
    }
    *label = ref->label;
    return LRA_OK;
}

static int retr_example(const lra_task *t, lra_split split, int64_t index, lra_example *ex, lra_err *err) {
    int rc = lra_task_check_index(t, split, index, err);
    if (rc) return rc;
    int L = t->info.seq_len, len[2], label;
    uint8_t *buf = malloc(2 * (size_t)L);
    if (!buf) return lra_err_set(err, LRA_ENOMEM, "retrieval: out of memory");
    rc = retr_bytes(t, split, index, buf, len, &label, err);
    if (!rc) {
        for (int d = 0; d < 2; d++) {
            int32_t *tok = ex->tokens + (size_t)d * L;
            const uint8_t *b = buf + (size_t)d * L;
            for (int i = 0; i < len[d]; i++) tok[i] = (int32_t)b[i] + 1;
            for (int i = len[d]; i < L; i++) tok[i] = 0;
            ex->length[d] = len[d];
        }
        ex->label = label;
    }
    free(buf);
    return rc;
}

static int retr_export(const lra_task *t, lra_split split, const char *dir, int64_t n, lra_progress_fn progress,
                       void *progress_ctx, lra_err *err) {
    if ((int)split < 0 || split >= LRA_SPLIT_COUNT)
        return lra_err_set(err, LRA_EINVAL, "retrieval: no split %d", (int)split);
    int64_t total = t->info.split_size[split];
    if (n >= 0 && n < total) total = n;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return lra_err_set(err, LRA_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, tsv_names[split]) >= (int)sizeof path)
        return lra_err_set(err, LRA_EINVAL, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot create: %s", path, strerror(errno));
    enum { CHUNK = 256 };  // pairs generated in parallel, then written in order
    int L = t->info.seq_len, rc = LRA_OK;
    uint8_t *buf = malloc((size_t)CHUNK * 2 * L);
    int *len = malloc(CHUNK * 2 * sizeof *len), *label = malloc(CHUNK * sizeof *label),
        *status = malloc(CHUNK * sizeof *status);
    lra_err *errs = malloc(CHUNK * sizeof *errs);
    if (!buf || !len || !label || !status || !errs) rc = lra_err_set(err, LRA_ENOMEM, "retrieval: out of memory");
    for (int64_t i0 = 0; i0 < total && !rc; i0 += CHUNK) {
        int m = total - i0 < CHUNK ? (int)(total - i0) : CHUNK;
#pragma omp parallel for schedule(dynamic, 8)
        for (int j = 0; j < m; j++)
            status[j] = retr_bytes(t, split, i0 + j, buf + (size_t)j * 2 * L, len + 2 * j, label + j, &errs[j]);
        for (int j = 0; j < m && !rc; j++) {
            if (status[j]) {
                *err = errs[j];
                rc = status[j];
                break;
            }
            const uint8_t *b = buf + (size_t)j * 2 * L;
            for (int d = 0; d < 2; d++)
                for (int k = 0; k < len[2 * j + d]; k++)
                    if (b[(size_t)d * L + k] == '\t' || b[(size_t)d * L + k] == '\n')
                        rc = lra_err_set(err, LRA_EINVAL,
                                         "%s: pair %lld: text%d holds a tab or newline, which the TSV cannot carry",
                                         path, (long long)(i0 + j), d + 1);
            if (rc) break;
            fprintf(f, "%d\t%s-%lld-a\t%s-%lld-b\t", label[j], lra_split_names[split], (long long)(i0 + j),
                    lra_split_names[split], (long long)(i0 + j));
            fwrite(b, 1, (size_t)len[2 * j], f);
            fputc('\t', f);
            fwrite(b + L, 1, (size_t)len[2 * j + 1], f);
            fputc('\n', f);
        }
        if (!rc && progress) progress(progress_ctx, i0 + m, total);
    }
    free(buf);
    free(len);
    free(label);
    free(status);
    free(errs);
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (!rc && bad) rc = lra_err_set(err, LRA_EIO, "%s: write error: %s", path, strerror(errno));
    return rc;
}

static void retr_describe(const lra_task *t, const lra_example *ex, FILE *out) {
    enum { SHOWN = 300 };
    int L = t->info.seq_len;
    fprintf(out, "label %d (%s)\n", ex->label, ex->label ? "related" : "not related");
    for (int d = 0; d < 2; d++) {
        int len = ex->length[d] < 0 ? 0 : ex->length[d] > L ? L : ex->length[d];
        int m = len < SHOWN ? len : SHOWN;
        uint8_t b[SHOWN];
        for (int i = 0; i < m; i++) b[i] = (uint8_t)(ex->tokens[(size_t)d * L + i] - 1);
        fprintf(out, "document %d (%d bytes): ", d + 1, len);
        lra_print_escaped(out, b, m);
        fputs(m < len ? " ...\n" : "\n", out);
    }
}

const lra_task_vtable lra_task_retrieval = {
    .name = "retrieval",
    .summary =
        "AAN citation matching, two byte documents (L 2 x 4000, 2 classes): TSV loader or long-range synthetic papers",
    .open = retr_open,
    .example = retr_example,
    .close = retr_close,
    .export_split = retr_export,
    .describe = retr_describe,
};
