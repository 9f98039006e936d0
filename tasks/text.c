// text.c: the LRA Text task (lra.md 1.3): byte-level binary sentiment
// classification of movie reviews. Tokens are bytes + 1 (ids 1..256), 0 pads,
// vocab 257 (tfds ByteTextEncoder), 2 classes (0 negative, 1 positive); each
// review is truncated or padded to seq_len (LRA code 1000, paper and S4/S5
// 4096, the default here; up to 16384 for the speed scaling sweeps, where
// reviews are as long as IMDb's and the rest is padding).
//
// Loaded (parameter data_dir): the raw IMDb release, aclImdb:
//   <data_dir>/{train,test}/{neg,pos}/*.txt      neg = 0, pos = 1
//   train = train/ (25,000); val = test/ and test = test/ (25,000): LRA has no
//   IMDb validation set and uses the test split for both (lra.md 1.3). If a
//   directory <data_dir>/val/{neg,pos} exists (export_split of a generated val
//   split writes one) it is the val split instead.
//   Files of one split are ordered by name, comparing the leading numbers of
//   "<id>_<rating>.txt" as numbers (0_3.txt, 0_9.txt, 1_1.txt, ..., 10_2.txt),
//   ties by neg before pos. Like tfds (imdb.py: `f.read().strip()`) leading and
//   trailing ASCII whitespace is stripped; a review that is then empty is an
//   error (aclImdb has none; an empty file means a broken copy). Bytes are
//   bytes: nothing is decoded, non-UTF-8 is fine. Other names (not *.txt, or
//   starting with '.') are ignored.
//
// Generated (no data_dir): synthetic reviews whose label can only be read off
// the whole document. A review is English-like prose (Zipf-distributed common
// words, sentences, commas, IMDb's "<br /><br />" paragraph breaks) of an
// IMDb-like length (log-normal, median 900 bytes, 1.6% over 4,000, clamped to
// [300, seq_len - 72] so that all of it is seen), with about one sentiment word
// per 50 bytes planted at uniform random positions. Their number C is odd; (C+1)/2
// carry the label's polarity and (C-1)/2 the other, in random order. So the
// label is the majority over the whole document by a margin of one word, and
// any window short of the whole holds a near-even mix (tests/test_task_text.c
// checks that a word-counting classifier is near chance on the first 200 bytes
// and exact on the whole review). Label, length and filler are independent.
// export_split writes the aclImdb layout: <dir>/<train|val|test>/<neg|pos>/
// <index>_<rating>.txt, rating 1..4 (neg) or 7..10 (pos) as in aclImdb.
#include "text.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define TEXT_SALT      0x74657874ull   // "text"
#define TEXT_VERSION   1
#define TEXT_VOCAB     257
#define TEXT_MIN_LEN   300             // shortest generated review (bytes)
#define CUE_BYTES      50              // one sentiment word per 50 bytes of review
#define MIN_CUES       5
#define TEXT_MAX_LEN   16384           // longest seq_len (speed scaling beyond LRA's 4K)
#define MAX_CUES       (TEXT_MAX_LEN / CUE_BYTES + 2)
#define IMDB_BR_PERMILLE 80            // paragraph breaks after 8% of sentences

// ---- word lists ---------------------------------------------------------------------------
// Neutral filler by rough frequency in movie reviews; no sentiment words.
static const char *const filler_words[] = {
    "the", "a", "and", "of", "to", "is", "in", "it", "I", "this", "that", "was", "as", "with", "for",
    "but", "film", "movie", "on", "his", "he", "are", "you", "have", "be", "one", "not", "all", "at",
    "by", "an", "who", "they", "from", "so", "like", "her", "there", "about", "out", "if", "what", "has",
    "some", "more", "when", "she", "just", "can", "up", "no", "even", "my", "would", "which", "only",
    "their", "time", "story", "see", "really", "had", "were", "me", "we", "than", "much", "well", "get",
    "been", "also", "other", "will", "into", "people", "do", "how", "because", "first", "most", "him",
    "its", "don't", "made", "then", "make", "way", "them", "could", "any", "too", "characters", "after",
    "watch", "movies", "think", "character", "films", "seen", "two", "many", "being", "plot", "never",
    "life", "little", "where", "know", "acting", "over", "did", "does", "ever", "show", "off", "scenes",
    "scene", "your", "man", "end", "here", "why", "these", "still", "something", "while", "say", "go",
    "years", "back", "should", "those", "same", "real", "actors", "through", "thing", "though", "now",
    "director", "watching", "before", "another", "new", "actually", "work", "find", "part", "look",
    "old", "going", "lot", "cast", "want", "again", "few", "things", "quite", "pretty", "world", "seems",
    "young", "around", "got", "take", "however", "both", "down", "horror", "give", "own", "thought",
    "big", "series", "between", "may", "fact", "without", "always", "long", "original", "saw", "whole",
    "come", "right", "role", "gets", "point", "almost", "must", "music", "times", "guy", "bit", "done",
    "least", "feel", "since", "might", "far", "family", "comedy", "probably", "kind", "last", "action",
    "TV", "anything", "script", "making", "woman", "girl", "yet", "day", "sure", "away", "found", "each",
    "our", "course", "rather", "trying", "minutes", "anyone", "looking", "especially", "although",
    "everything", "place", "played", "believe", "ending", "simply", "screen", "sense", "goes",
    "different", "set", "John", "book", "comes", "put", "DVD", "everyone", "main", "looks", "three",
    "later", "shows", "watched", "plays", "money", "true", "special", "effects", "seem", "takes", "play",
    "once", "instead", "job", "during", "half", "version", "American", "night", "war", "together",
    "house", "wife", "audience", "reason", "said", "father", "fan", "Hollywood", "idea", "mind", "death",
    "second", "left", "black", "star", "until", "seeing", "less", "early", "help", "else", "line", "along",
    "friends", "name", "year", "kids", "short", "boy", "men", "home", "dialogue", "episode", "read",
    "given", "try", "use", "need", "used", "camera", "either", "women", "mother", "shot", "production",
    "small", "enough", "someone", "often", "video", "became", "city", "town", "sound", "car", "children",
    "friend", "turn", "wants", "head", "felt", "lines", "moments", "actor", "school", "style", "days",
    "stars", "writer", "tell", "leave", "human", "final", "door", "tries", "called", "son", "several",
    "child", "case", "entire", "seemed", "full", "lead", "it's", "didn't", "can't", "isn't", "I'm",
    "doesn't", "he's", "there's", "that's", "you'll", "café", "naïve", "Amélie", "déjà", "vu",
};
// Sentiment words, 32 of each polarity.
static const char *const positive_words[] = {
    "good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable", "beautiful",
    "fantastic", "amazing", "loved", "perfect", "fun", "charming", "moving", "delightful", "touching",
    "hilarious", "outstanding", "memorable", "masterpiece", "gripping", "stunning", "best", "favorite",
    "terrific", "clever", "powerful", "refreshing", "impressive", "solid", "engaging",
};
static const char *const negative_words[] = {
    "bad", "terrible", "awful", "boring", "worst", "poor", "horrible", "waste", "dull", "stupid", "weak",
    "mess", "pointless", "predictable", "annoying", "disappointing", "lame", "ridiculous", "painful",
    "mediocre", "forgettable", "tedious", "pathetic", "dreadful", "unwatchable", "clumsy", "bland",
    "laughable", "awkward", "sloppy", "wooden", "cheap",
};
#define N_WORDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

// Review length quantiles q[i] = 900 * exp(0.7 * Phi^-1(i / 64)) bytes (log-normal,
// median 900 as IMDb's reviews), q[0] = 150 and a tail to 8,000.
static const int imdb_length_q[65] = {
    150,  199,  244,  278,  308,  334,  358,  381,  402,  423,  444,  464,  484,  503,  523,  542,  561,
    581,  600,  620,  639,  659,  679,  699,  720,  741,  762,  784,  806,  829,  852,  876,  900,  925,
    951,  977,  1005, 1033, 1063, 1093, 1125, 1158, 1193, 1229, 1267, 1307, 1350, 1395, 1443, 1495, 1550,
    1610, 1675, 1746, 1825, 1913, 2014, 2129, 2264, 2428, 2634, 2909, 3315, 4065, 8000,
};

static int word_in(const char *const *list, int n_list, const uint8_t *word, int n) {
    for (int i = 0; i < n_list; i++) {
        int same = (int)strlen(list[i]) == n;
        for (int j = 0; j < n && same; j++) {
            int c = word[j] >= 'A' && word[j] <= 'Z' ? word[j] - 'A' + 'a' : word[j];
            same = c == (uint8_t)list[i][j];
        }
        if (same) return 1;
    }
    return 0;
}

int lra_text_polarity(const uint8_t *word, int n) {
    if (word_in(positive_words, N_WORDS(positive_words), word, n)) return 1;
    if (word_in(negative_words, N_WORDS(negative_words), word, n)) return -1;
    return 0;
}

// ---- prose ------------------------------------------------------------------------------------

int lra_wordlist_init(lra_wordlist *wl, const char *const *words, int n, lra_err *err) {
    wl->words = words;
    wl->n = n;
    wl->cdf = malloc((size_t)n * sizeof *wl->cdf);
    if (!wl->cdf) return lra_err_set(err, LRA_ENOMEM, "word list: out of memory");
    uint32_t sum = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(words[i]);
        LRA_ASSERT(len >= 1 && len <= LRA_PROSE_MAX_WORD);
        sum += (1u << 20) / (uint32_t)(i + 3);
        wl->cdf[i] = sum;
    }
    return LRA_OK;
}

void lra_wordlist_free(lra_wordlist *wl) {
    free(wl->cdf);
    wl->cdf = NULL;
}

const char *lra_wordlist_draw(const lra_wordlist *wl, lra_rng *r) {
    uint32_t u = (uint32_t)(lra_rng_u64(r) % wl->cdf[wl->n - 1]);
    int lo = 0, hi = wl->n - 1;  // first word whose cumulative weight exceeds u
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (wl->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return wl->words[lo];
}

int lra_length_draw(const int *q65, lra_rng *r) {
    uint64_t u = lra_rng_u64(r);
    int i = (int)(u >> 58);                      // one of 64 equally likely buckets
    uint64_t f = (u >> 26) & 0xffffffffull;      // where in the bucket, 32 bits
    return q65[i] + (int)(((uint64_t)(q65[i + 1] - q65[i]) * f) >> 32);
}

static void prose_put(lra_prose *p, const char *s, int n) {
    LRA_ASSERT(p->len + n <= p->cap);
    memcpy(p->buf + p->len, s, (size_t)n);
    p->len += n;
}

// Appends one word (at most LRA_PROSE_MAX_EMIT bytes), opening and closing sentences.
static void prose_word(lra_prose *p, lra_rng *r, const char *word) {
    int n = (int)strlen(word);
    LRA_ASSERT(n >= 1 && n <= LRA_PROSE_MAX_WORD);
    int opens = p->words_left == 0;
    if (opens) p->words_left = (int)lra_rng_int(r, 4, 18);
    if (p->len > 0 && !p->after_break) prose_put(p, " ", 1);
    p->after_break = 0;
    int at = p->len;
    prose_put(p, word, n);
    if (opens && p->buf[at] >= 'a' && p->buf[at] <= 'z') p->buf[at] = (uint8_t)(p->buf[at] - 'a' + 'A');
    if (--p->words_left > 0) {
        if (lra_rng_int(r, 0, 999) < 60) prose_put(p, ",", 1);
        return;
    }
    int64_t u = lra_rng_int(r, 0, 99);
    if (u < 80) prose_put(p, ".", 1);
    else if (u < 90) prose_put(p, "!", 1);
    else if (u < 95) prose_put(p, "?", 1);
    else prose_put(p, "...", 3);
    if (lra_rng_int(r, 0, 999) < p->br_permille) {
        prose_put(p, "<br /><br />", 12);
        p->after_break = 1;
    }
}

// Closes the last sentence (at most 1 byte) and drops a trailing paragraph break.
static void prose_end(lra_prose *p) {
    if (p->after_break) p->len -= 12;
    p->after_break = 0;
    if (p->words_left > 0) {
        if (p->len > 0 && p->buf[p->len - 1] == ',') p->len--;
        prose_put(p, ".", 1);
        p->words_left = 0;
    }
}

int lra_prose_plant(lra_prose *p, lra_rng *r, const lra_wordlist *filler, const char *const *planted,
                    const int *at, int n_planted, int target) {
    // Invariant: len + reserve <= cap, where reserve = room for the planted words
    // still due and the final '.'; filler is written only while it keeps that true.
    LRA_ASSERT(p->len + (n_planted + 1) * LRA_PROSE_MAX_EMIT + 1 <= p->cap);
    int k = 0;
    for (;;) {
        int reserve = (n_planted - k) * LRA_PROSE_MAX_EMIT + 1;
        int filler_fits = p->len + LRA_PROSE_MAX_EMIT + reserve <= p->cap;
        if (k < n_planted && (p->len >= at[k] || !filler_fits)) prose_word(p, r, planted[k++]);
        else if (filler_fits && (k < n_planted || p->len < target)) prose_word(p, r, lra_wordlist_draw(filler, r));
        else break;
    }
    prose_end(p);
    return p->len;
}

void lra_print_escaped(FILE *out, const uint8_t *bytes, int n) {
    for (int i = 0; i < n; i++) {
        uint8_t c = bytes[i];
        if (c == '\\') fputs("\\\\", out);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else if (c >= 0x20 && c < 0x7f) fputc(c, out);
        else fprintf(out, "\\x%02x", c);
    }
}

// ---- state ---------------------------------------------------------------------------------

// Loaded documents of one split.
typedef struct {
    uint8_t *bytes;   // every review, stripped and truncated to seq_len, back to back
    int64_t *start;   // (n + 1) offsets into bytes
    int8_t  *label;   // (n)
    int64_t  n, n_bytes, cap_docs, cap_bytes;
} text_docs;

typedef struct {
    int              seq_len;
    int              loaded;                  // 1: documents read from data_dir
    text_docs        docs[LRA_SPLIT_COUNT];   // loaded; docs[VAL] empty when val reads test/
    const text_docs *split[LRA_SPLIT_COUNT];
    lra_wordlist     filler;                  // generated
} text_state;

static void docs_free(text_docs *d) {
    free(d->bytes);
    free(d->start);
    free(d->label);
    memset(d, 0, sizeof *d);
}

static void text_close(lra_task *t) {
    text_state *s = t->state;
    if (!s) return;
    for (int i = 0; i < LRA_SPLIT_COUNT; i++) docs_free(&s->docs[i]);
    lra_wordlist_free(&s->filler);
    free(s);
    t->state = NULL;
}

// ---- generator ---------------------------------------------------------------------------

int lra_text_rating(uint64_t seed, lra_split split, int64_t index, int label) {
    uint64_t h = lra_rand_bits(lra_example_seed(seed, TEXT_SALT, split, index), 0x7261746eull);  // "ratn"
    return label ? 7 + (int)(h % 4) : 1 + (int)(h % 4);
}

// Writes generated review (split, index) into buf (cap seq_len bytes); returns
// its length and sets *label.
static int text_generate(const text_state *s, uint64_t seed, lra_split split, int64_t index, uint8_t *buf,
                         int *label) {
    lra_rng r = { lra_example_seed(seed, TEXT_SALT, split, index), 0 };
    int y = (int)(lra_rng_u64(&r) >> 63);
    int target = lra_length_draw(imdb_length_q, &r);
    int longest = s->seq_len - 2 * LRA_PROSE_MAX_EMIT;
    if (target < TEXT_MIN_LEN) target = TEXT_MIN_LEN;
    if (target > longest) target = longest;
    int n_cues = target / CUE_BYTES;
    if (n_cues < MIN_CUES) n_cues = MIN_CUES;
    n_cues |= 1;  // odd: a strict majority
    LRA_ASSERT(n_cues <= MAX_CUES);

    int at[MAX_CUES], polarity[MAX_CUES];
    const char *cue[MAX_CUES];
    for (int k = 0; k < n_cues; k++) {
        int a = (int)lra_rng_int(&r, 0, target - 1), j = k;  // insertion sort as drawn
        for (; j > 0 && at[j - 1] > a; j--) at[j] = at[j - 1];
        at[j] = a;
        polarity[k] = k <= n_cues / 2 ? y : 1 - y;  // (C+1)/2 for the label, (C-1)/2 against
    }
    for (int k = n_cues - 1; k > 0; k--) {  // Fisher-Yates: the order of the polarities
        int j = (int)lra_rng_int(&r, 0, k), tmp = polarity[k];
        polarity[k] = polarity[j];
        polarity[j] = tmp;
    }
    for (int k = 0; k < n_cues; k++)
        cue[k] = polarity[k] ? positive_words[lra_rng_int(&r, 0, N_WORDS(positive_words) - 1)]
                             : negative_words[lra_rng_int(&r, 0, N_WORDS(negative_words) - 1)];
    lra_prose p = { .buf = buf, .cap = s->seq_len, .br_permille = IMDB_BR_PERMILLE };
    *label = y;
    return lra_prose_plant(&p, &r, &s->filler, cue, at, n_cues, target);
}

// ---- loader ----------------------------------------------------------------------------------

typedef struct {
    char *name;
    int   label;
} text_file;

// Compares file names with their leading numbers as numbers ("9_1.txt" < "10_2.txt").
static int name_cmp(const char *a, const char *b) {
    char *ea, *eb;
    unsigned long long na = strtoull(a, &ea, 10), nb = strtoull(b, &eb, 10);
    int da = ea != a && a[0] >= '0' && a[0] <= '9', db = eb != b && b[0] >= '0' && b[0] <= '9';
    if (da && db && na != nb) return na < nb ? -1 : 1;
    if (da != db) return da ? -1 : 1;
    return strcmp(a, b);
}

static int file_cmp(const void *x, const void *y) {
    const text_file *a = x, *b = y;
    int c = name_cmp(a->name, b->name);
    return c ? c : a->label - b->label;
}

static void files_free(text_file *files, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(files[i].name);
    free(files);
}

static int is_review_name(const char *name) {
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".txt") == 0;
}

// Appends the *.txt names of dir to *files.
static int list_reviews(const char *dir, int label, text_file **files, int64_t *n, int64_t *cap, lra_err *err) {
    DIR *d = opendir(dir);
    if (!d) return lra_err_set(err, LRA_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    int64_t n0 = *n;
    struct dirent *e;
    int rc = LRA_OK;
    while (!rc && (e = readdir(d))) {
        if (!is_review_name(e->d_name)) continue;
        if (*n == *cap) {
            int64_t cap2 = *cap ? 2 * *cap : 1024;
            text_file *f2 = realloc(*files, (size_t)cap2 * sizeof *f2);
            if (!f2) { rc = lra_err_set(err, LRA_ENOMEM, "%s: out of memory listing files", dir); break; }
            *files = f2;
            *cap = cap2;
        }
        char *name = strdup(e->d_name);
        if (!name) { rc = lra_err_set(err, LRA_ENOMEM, "%s: out of memory listing files", dir); break; }
        (*files)[(*n)++] = (text_file){ name, label };
    }
    closedir(d);
    if (!rc && *n == n0)
        return lra_err_set(err, LRA_EIO,
                           "%s: no .txt files (expected the aclImdb layout <data_dir>/{train,test}/{neg,pos}/*.txt)", dir);
    return rc;
}

static int docs_reserve(text_docs *d, int64_t more_bytes, const char *path, lra_err *err) {
    if (d->n + 1 >= d->cap_docs) {
        int64_t cap = d->cap_docs ? 2 * d->cap_docs : 1024;
        int64_t *start = realloc(d->start, (size_t)(cap + 1) * sizeof *start);
        if (start) d->start = start;
        int8_t *label = realloc(d->label, (size_t)cap * sizeof *label);
        if (label) d->label = label;
        if (!start || !label) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
        d->cap_docs = cap;
    }
    if (d->n_bytes + more_bytes > d->cap_bytes) {
        int64_t cap = d->cap_bytes ? 2 * d->cap_bytes : 1 << 20;
        while (cap < d->n_bytes + more_bytes) cap *= 2;
        uint8_t *bytes = realloc(d->bytes, (size_t)cap);
        if (!bytes) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
        d->bytes = bytes;
        d->cap_bytes = cap;
    }
    return LRA_OK;
}

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Reads a whole review file into *buf (grown as needed); returns its size in *n.
static int read_whole(const char *path, uint8_t **buf, size_t *cap, size_t *n, lra_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", path, strerror(errno));
    *n = 0;
    for (;;) {
        if (*n == *cap) {
            size_t cap2 = *cap ? 2 * *cap : 1 << 16;
            uint8_t *b2 = realloc(*buf, cap2);
            if (!b2) {
                fclose(f);
                return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
            }
            *buf = b2;
            *cap = cap2;
        }
        size_t got = fread(*buf + *n, 1, *cap - *n, f);
        *n += got;
        if (got == 0) break;
    }
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (bad) return lra_err_set(err, LRA_EIO, "%s: read error: %s", path, strerror(saved));
    return LRA_OK;
}

// Reads one review: stripped of ASCII whitespace at both ends (as tfds), truncated to seq_len.
static int read_review(const char *path, int label, int seq_len, text_docs *d, uint8_t **buf, size_t *cap,
                       lra_err *err) {
    size_t n = 0;
    int rc = read_whole(path, buf, cap, &n, err);
    if (rc) return rc;
    size_t lo = 0, hi = n;
    while (lo < hi && is_space((*buf)[lo])) lo++;
    while (hi > lo && is_space((*buf)[hi - 1])) hi--;
    if (hi == lo) return lra_err_set(err, LRA_EIO, "%s: empty review (no bytes left after stripping whitespace)", path);
    int64_t len = (int64_t)(hi - lo) < seq_len ? (int64_t)(hi - lo) : seq_len;
    if ((rc = docs_reserve(d, len, path, err))) return rc;
    memcpy(d->bytes + d->n_bytes, *buf + lo, (size_t)len);
    d->start[d->n] = d->n_bytes;
    d->label[d->n] = (int8_t)label;
    d->n++;
    d->n_bytes += len;
    d->start[d->n] = d->n_bytes;
    return LRA_OK;
}

static int join_path(char *out, size_t cap, const char *a, const char *b, const char *c, lra_err *err) {
    int n = c ? snprintf(out, cap, "%s/%s/%s", a, b, c) : snprintf(out, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap) return lra_err_set(err, LRA_EINVAL, "%s/%s: path too long", a, b);
    return LRA_OK;
}

// Reads <split_dir>/{neg,pos}/*.txt in name order.
static int read_split(const char *split_dir, int seq_len, text_docs *d, lra_err *err) {
    static const char *const label_dirs[2] = { "neg", "pos" };
    text_file *files = NULL;
    int64_t n = 0, cap = 0;
    char path[4096];
    int rc = LRA_OK;
    for (int y = 0; y < 2 && !rc; y++)
        if (!(rc = join_path(path, sizeof path, split_dir, label_dirs[y], NULL, err)))
            rc = list_reviews(path, y, &files, &n, &cap, err);
    if (!rc) qsort(files, (size_t)n, sizeof *files, file_cmp);
    uint8_t *buf = NULL;
    size_t buf_cap = 0;
    for (int64_t i = 0; i < n && !rc; i++)
        if (!(rc = join_path(path, sizeof path, split_dir, label_dirs[files[i].label], files[i].name, err)))
            rc = read_review(path, files[i].label, seq_len, d, &buf, &buf_cap, err);
    free(buf);
    files_free(files, n);
    return rc;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int text_load(text_state *s, const char *data_dir, int *val_is_test, lra_err *err) {
    char path[4096];
    int rc;
    if ((rc = join_path(path, sizeof path, data_dir, "train", NULL, err))) return rc;
    if ((rc = read_split(path, s->seq_len, &s->docs[LRA_SPLIT_TRAIN], err))) return rc;
    if ((rc = join_path(path, sizeof path, data_dir, "test", NULL, err))) return rc;
    if ((rc = read_split(path, s->seq_len, &s->docs[LRA_SPLIT_TEST], err))) return rc;
    if ((rc = join_path(path, sizeof path, data_dir, "val", NULL, err))) return rc;
    *val_is_test = !is_dir(path);
    if (!*val_is_test && (rc = read_split(path, s->seq_len, &s->docs[LRA_SPLIT_VAL], err))) return rc;
    s->split[LRA_SPLIT_TRAIN] = &s->docs[LRA_SPLIT_TRAIN];
    s->split[LRA_SPLIT_TEST] = &s->docs[LRA_SPLIT_TEST];
    s->split[LRA_SPLIT_VAL] = *val_is_test ? &s->docs[LRA_SPLIT_TEST] : &s->docs[LRA_SPLIT_VAL];
    return LRA_OK;
}

// ---- vtable ----------------------------------------------------------------------------------

static int text_open(lra_task *t, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    static const char *const known[] = { "data_dir", "seq_len", "n_train", "n_val", "n_test", NULL };
    static const char *const gen_only[] = { "n_train", "n_val", "n_test", NULL };
    int rc = lra_kv_check_known(params, n_params, "text", known, err);
    if (rc) return rc;
    const char *data_dir;
    int64_t seq_len, n[LRA_SPLIT_COUNT];
    if ((rc = lra_task_data_dir(params, n_params, "text", gen_only, &data_dir, err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "text", "seq_len", 4096, 1000, TEXT_MAX_LEN, &seq_len, err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "text", "n_train", 25000, 1, 1000000000, &n[0], err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "text", "n_val", 25000, 1, 1000000000, &n[1], err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "text", "n_test", 25000, 1, 1000000000, &n[2], err))) return rc;

    text_state *s = calloc(1, sizeof *s);
    if (!s) return lra_err_set(err, LRA_ENOMEM, "text: out of memory");
    t->state = s;
    t->seed = seed;
    s->seq_len = (int)seq_len;
    lra_task_info *info = &t->info;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "text");
    info->n_inputs = 1;
    info->seq_len = (int)seq_len;
    info->vocab = TEXT_VOCAB;
    info->pad_id = 0;
    info->n_classes = 2;
    info->generator_version = TEXT_VERSION;
    if (data_dir) {
        int val_is_test = 1;
        s->loaded = 1;
        if ((rc = text_load(s, data_dir, &val_is_test, err))) {
            text_close(t);
            return rc;
        }
        for (int i = 0; i < LRA_SPLIT_COUNT; i++) info->split_size[i] = s->split[i]->n;
        snprintf(info->source, sizeof info->source, "%s", data_dir);
        snprintf(info->params, sizeof info->params, "data_dir=%s;seq_len=%d;val=%s", data_dir, s->seq_len,
                 val_is_test ? "test" : "val");
    } else {
        if ((rc = lra_wordlist_init(&s->filler, filler_words, N_WORDS(filler_words), err))) {
            text_close(t);
            return rc;
        }
        for (int i = 0; i < LRA_SPLIT_COUNT; i++) info->split_size[i] = n[i];
        snprintf(info->source, sizeof info->source, "generated (seed %llu)", (unsigned long long)seed);
        snprintf(info->params, sizeof info->params, "seq_len=%d;n_train=%lld;n_val=%lld;n_test=%lld",
                 s->seq_len, (long long)n[0], (long long)n[1], (long long)n[2]);
    }
    return LRA_OK;
}

static int text_example(const lra_task *t, lra_split split, int64_t index, lra_example *ex, lra_err *err) {
    int rc = lra_task_check_index(t, split, index, err);
    if (rc) return rc;
    const text_state *s = t->state;
    int len, label;
    if (s->loaded) {
        const text_docs *d = s->split[split];
        const uint8_t *b = d->bytes + d->start[index];
        len = (int)(d->start[index + 1] - d->start[index]);
        label = d->label[index];
        for (int i = 0; i < len; i++) ex->tokens[i] = (int32_t)b[i] + 1;
    } else {
        uint8_t buf[TEXT_MAX_LEN];
        len = text_generate(s, t->seed, split, index, buf, &label);
        for (int i = 0; i < len; i++) ex->tokens[i] = (int32_t)buf[i] + 1;
    }
    for (int i = len; i < s->seq_len; i++) ex->tokens[i] = 0;
    ex->length[0] = len;
    ex->label = label;
    return LRA_OK;
}

static int make_dir(const char *path, lra_err *err) {
    if (mkdir(path, 0777) == 0 || (errno == EEXIST && is_dir(path))) return LRA_OK;
    return lra_err_set(err, LRA_EIO, "%s: cannot create directory: %s", path, strerror(errno));
}

// Fails when dir already holds reviews: files of an earlier export under other
// names (other ratings) would be read back with the new ones.
static int check_no_reviews(const char *dir, lra_err *err) {
    DIR *d = opendir(dir);
    if (!d) return lra_err_set(err, LRA_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) found = is_review_name(e->d_name);
    closedir(d);
    if (found) return lra_err_set(err, LRA_EIO, "%s: already holds .txt files; export into an empty directory", dir);
    return LRA_OK;
}

static int write_file(const char *path, const uint8_t *bytes, int n, lra_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot create: %s", path, strerror(errno));
    size_t put = fwrite(bytes, 1, (size_t)n, f);
    int bad = put != (size_t)n || ferror(f);
    if (fclose(f) != 0) bad = 1;
    if (bad) return lra_err_set(err, LRA_EIO, "%s: write error: %s", path, strerror(errno));
    return LRA_OK;
}

static int text_export(const lra_task *t, lra_split split, const char *dir, int64_t n, lra_progress_fn progress,
                       void *progress_ctx, lra_err *err) {
    static const char *const label_dirs[2] = { "neg", "pos" };
    if ((int)split < 0 || split >= LRA_SPLIT_COUNT)
        return lra_err_set(err, LRA_EINVAL, "text: no split %d", (int)split);
    int64_t total = t->info.split_size[split];
    if (n >= 0 && n < total) total = n;
    char split_dir[4096], path[4096];
    int rc;
    if ((rc = make_dir(dir, err))) return rc;
    if ((rc = join_path(split_dir, sizeof split_dir, dir, lra_split_names[split], NULL, err))) return rc;
    if ((rc = make_dir(split_dir, err))) return rc;
    for (int y = 0; y < 2; y++) {
        if ((rc = join_path(path, sizeof path, split_dir, label_dirs[y], NULL, err))) return rc;
        if ((rc = make_dir(path, err)) || (rc = check_no_reviews(path, err))) return rc;
    }
    const text_state *s = t->state;
    int32_t *tokens = malloc((size_t)s->seq_len * sizeof *tokens);
    uint8_t *bytes = malloc((size_t)s->seq_len);
    if (!tokens || !bytes) rc = lra_err_set(err, LRA_ENOMEM, "text: out of memory");
    for (int64_t i = 0; i < total && !rc; i++) {
        int32_t length;
        lra_example ex = { tokens, &length, 0 };
        if ((rc = text_example(t, split, i, &ex, err))) break;
        for (int j = 0; j < length; j++) bytes[j] = (uint8_t)(tokens[j] - 1);
        char name[64];
        int rating = s->loaded ? (ex.label ? 10 : 1) : lra_text_rating(t->seed, split, i, ex.label);
        snprintf(name, sizeof name, "%lld_%d.txt", (long long)i, rating);
        if (!(rc = join_path(path, sizeof path, split_dir, label_dirs[ex.label], name, err)))
            rc = write_file(path, bytes, length, err);
        if (progress && (i % 1000 == 999 || i == total - 1)) progress(progress_ctx, i + 1, total);
    }
    free(tokens);
    free(bytes);
    return rc;
}

static void text_describe(const lra_task *t, const lra_example *ex, FILE *out) {
    int len = ex->length[0];
    if (len < 0) len = 0;
    if (len > t->info.seq_len) len = t->info.seq_len;
    fprintf(out, "label %d (%s), %d bytes:\n", ex->label, ex->label ? "positive" : "negative", len);
    uint8_t chunk[256];
    for (int i = 0; i < len; i += (int)sizeof chunk) {
        int m = len - i < (int)sizeof chunk ? len - i : (int)sizeof chunk;
        for (int j = 0; j < m; j++) chunk[j] = (uint8_t)(ex->tokens[i + j] - 1);
        lra_print_escaped(out, chunk, m);
    }
    fputc('\n', out);
}

const lra_task_vtable lra_task_text = {
    .name = "text",
    .summary = "IMDb sentiment from bytes (L 4096, 2 classes): aclImdb loader or long-range synthetic reviews",
    .open = text_open,
    .example = text_example,
    .close = text_close,
    .export_split = text_export,
    .describe = text_describe,
};
