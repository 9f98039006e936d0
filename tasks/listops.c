// listops.c: the ListOps task of the Long Range Arena (Tay et al. 2021):
// classify the value 0..9 of a long nested prefix expression over MIN, MAX,
// MED (median) and SM (sum mod 10). Facts from /work/shared/reference/lra.md
// §1.2 (release format, tokenisation) and §2 (the generator,
// [LRA-code] lra_benchmarks/data/listops.py).
//
// Tokens (fixed; vocab = 17 with or without eos, so models stay comparable):
//   0 pad | 1..10 digits 0..9 | 11 [MIN | 12 [MAX | 13 [MED | 14 [SM |
//   15 X (the closing ']', renamed as the LRA pipeline does) | 16 EOS
// Text is tokenised as LRA does: delete '(' and ')', ']' -> X, split on
// whitespace: "( ( ( [MAX 3 ) 2 ) ] )" is the 4 tokens [MAX 3 2 X.
//
// Generator (lra.md §2; the same distribution, not the same files: Python's
// random and set order are not portable). A tree grows from depth 1; a node
// at depth d < max_depth is an operator with probability 0.25 (LRA's
// VALUE_P: r > 0.25 is a leaf), at d >= max_depth always a leaf digit 0..9.
// An operator has 2..max_args arguments (uniform) and one of the 4 operators
// (uniform); its tokens are "op arg1 .. argk X". The tree is written straight
// into the token buffer, depth first, with an explicit stack of the argument
// counts still to grow, and dropped as soon as it reaches max_length tokens.
// One 64-bit draw per node: bits 62-63 choose leaf or operator (operator iff
// both are 0, P = 1/4), bits 32-33 the operator, bits 0-31 the digit or the
// argument count (multiply-shift, bias < 3e-10).
//
// Splits and de-duplication without a global set: an expression belongs to
// the split its hash says (top 32 bits of lra_listops_hash against the
// cumulative fractions n_train : n_val : n_test of 2^32). Example (split, i)
// draws candidates from one stream seeded by lra_example_seed(seed, salt,
// split, i) until one has min_length < length < max_length (strict, as LRA:
// 501..1999 tokens by default) AND hashes into `split`. Equal expressions
// have equal hashes, so no expression is in two splits. Within a split a
// repeat is astronomically unlikely at LRA lengths and rare in short
// variants (measured, seed 1: no repeat among 96,000 train examples with
// min_length 10, max_length 60; 0.8% of 20,000 with min_length 5,
// max_length 20; tests/test_task_listops.c prints its own count). At LRA
// settings 8% of trees pass the length test (8.1% in a local run of the LRA
// Python tree code, lra.md §2: 8.4%), so an example costs ~13 trees in train
// and ~600 in val or test (2% of the hash space each): 100,000 examples take
// about 5 s of one core.
//
// Evaluation (lra.md §2 step 4): MIN, MAX; MED = int(numpy median): for an
// even count the mean of the two middle values, truncated; SM = sum mod 10.
//
// Parameters (strict; defaults = LRA): n_train 96000, n_val 2000, n_test 2000,
// min_length 500, max_length 2000 (exclusive bounds), max_depth 10,
// max_args 10, seq_len 2000 (padded length; >= max_length - 1 + eos),
// eos 0|1 (append EOS, as S4/S5 do), data_dir (loader mode).
//
// Loader (data_dir): data_dir/basic_{train,val,test}.tsv, header row
// "Source<TAB>Target", Source = the parenthesised expression, Target = 0..9,
// lines ending in "\n" or "\r\n". Expressions are kept whole and cut to
// seq_len (seq_len - 1 with eos) when served; EOS follows the cut tokens.
// export_split writes the same format with "\r\n" line ends, as Python's csv
// writer did for the LRA release.
#include "listops.h"

#include <errno.h>
#include <string.h>

#define LISTOPS_SALT 0x4c6973744f7073ull  // "ListOps": the task's lra_example_seed salt
#define LISTOPS_GENERATOR_VERSION 1
#define LISTOPS_MAX_DEPTH 64              // bound of the max_depth parameter
#define LISTOPS_MAX_ATTEMPTS 100000000    // candidates per example before giving up
#define LISTOPS_PROBE 100000              // candidates tried at open to show the lengths are reachable,
#define LISTOPS_PROBE_TOKENS 50000000     // or fewer when they use up this many tokens
#define LISTOPS_MAX_TOKENS (1 << 24)      // longest expression the tokenizer accepts
#define LISTOPS_EXPORT_CHUNK 512          // examples generated in parallel per write (at most)
#define LISTOPS_EXPORT_TOKENS (1 << 20)   // tokens held per write (at least one example)

static const char *const listops_ops[4] = { "[MIN", "[MAX", "[MED", "[SM" };
static const char *const listops_files[LRA_SPLIT_COUNT] = { "basic_train.tsv", "basic_val.tsv", "basic_test.tsv" };

// One split of a loaded release file, expressions whole (not cut to seq_len).
typedef struct {
    int64_t  n;
    int64_t *offset;   // (n + 1): expression i is tokens[offset[i], offset[i+1])
    uint8_t *tokens;
    uint8_t *labels;   // (n)
    int64_t  cap_tokens, cap_n;
} listops_file;

typedef struct {
    int64_t      n_split[LRA_SPLIT_COUNT];
    int          min_length, max_length, max_depth, max_args, seq_len, eos;
    uint64_t     bound[2];   // hash >> 32: below bound[0] train, below bound[1] val, else test
    int          loaded;     // 1: examples come from file[]
    listops_file file[LRA_SPLIT_COUNT];
} listops_state;

// ----------------------------------------------------------------------------
// tokens <-> text

static int listops_is_op(int32_t t) { return t >= LRA_LISTOPS_MIN && t <= LRA_LISTOPS_SM; }
static int listops_is_digit(int32_t t) { return t >= LRA_LISTOPS_DIGIT0 && t < LRA_LISTOPS_DIGIT0 + 10; }
static int listops_is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int listops_token_id(const char *s, size_t n) {
    if (n == 1 && s[0] >= '0' && s[0] <= '9') return LRA_LISTOPS_DIGIT0 + (s[0] - '0');
    if (n == 1 && (s[0] == ']' || s[0] == 'X')) return LRA_LISTOPS_X;
    for (int k = 0; k < 4; k++)
        if (n == strlen(listops_ops[k]) && memcmp(s, listops_ops[k], n) == 0) return LRA_LISTOPS_MIN + k;
    return -1;
}

// Copies at most 40 bytes of s (n) for a message, other than printable ASCII as \xNN.
static void listops_escape(char *out, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) { memcpy(out + o, "...", 3); o += 3; break; }
        if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = 0;
}

int lra_listops_tokenize(const char *text, size_t n_chars, int32_t *tokens, int cap, lra_err *err) {
    char word[48];   // the current word, parentheses deleted (first 48 bytes kept)
    size_t len = 0;
    int count = 0;
    for (size_t i = 0; i <= n_chars; i++) {
        char c = i < n_chars ? text[i] : ' ';
        if (c == '(' || c == ')') continue;  // deleted outright, as in LRA: "[M(AX" reads as [MAX
        if (!listops_is_space(c)) {
            if (len < sizeof word) word[len] = c;
            len++;
            continue;
        }
        if (len == 0) continue;
        int id = len <= 4 ? listops_token_id(word, len) : -1;
        if (id < 0) {
            char shown[400];
            listops_escape(shown, sizeof shown, word, len < sizeof word ? len : sizeof word);
            lra_err_set(err, LRA_EINVAL, "unknown token '%s' (expected 0-9, [MIN, [MAX, [MED, [SM or ])", shown);
            return -1;
        }
        if (count == LISTOPS_MAX_TOKENS) {
            lra_err_set(err, LRA_EINVAL, "expression longer than %d tokens", LISTOPS_MAX_TOKENS);
            return -1;
        }
        if (count < cap) tokens[count] = id;
        count++;
        len = 0;
    }
    return count;
}

// Checks that tokens (n) are exactly one expression and stores each
// operator's argument count in argc[i] (n entries; stack: n scratch ints).
static int listops_parse(const int32_t *tokens, int n, int *argc, int *stack) {
    int open = 0, done = 0;
    for (int i = 0; i < n; i++) {
        int32_t t = tokens[i];
        if (done) return -1;  // tokens after the root expression
        if (listops_is_op(t)) {
            argc[i] = 0;
            stack[open++] = i;
            continue;
        }
        if (t == LRA_LISTOPS_X) {
            if (open == 0) return -1;
            open--;
        } else if (!listops_is_digit(t)) {
            return -1;
        }
        // a digit or a closed operator: one complete argument of the enclosing operator
        if (open == 0) done = 1;
        else argc[stack[open - 1]]++;
    }
    return done ? 0 : -1;
}

// Appends atom to buf (cap) with a separating space; *len counts all bytes needed.
static void listops_put(char *buf, size_t cap, int64_t *len, const char *atom) {
    size_t n = strlen(atom);
    if (*len > 0) {
        if ((size_t)*len < cap) buf[*len] = ' ';
        (*len)++;
    }
    for (size_t i = 0; i < n; i++, (*len)++)
        if ((size_t)*len < cap) buf[*len] = atom[i];
}

static const char *listops_atom(int32_t t, char digit[2]) {
    if (listops_is_op(t)) return listops_ops[t - LRA_LISTOPS_MIN];
    if (t == LRA_LISTOPS_X) return "]";
    digit[0] = (char)('0' + (t - LRA_LISTOPS_DIGIT0));
    digit[1] = 0;
    return digit;
}

// The release form: the LRA tree is a left-nested pair structure
// (((op, a1), a2) .. ak), ']') and every pair prints as "( left right )"
// (listops.py to_string), so an operator with k arguments opens k + 1
// parentheses and each argument, and the ']', closes one.
static int64_t listops_format_parens(const int32_t *tokens, int n, char *buf, size_t cap) {
    int small[2 * 64], *argc = small, *stack = small + 64;
    if (n > 64) {
        argc = malloc(2 * (size_t)n * sizeof *argc);
        if (!argc) return -1;
        stack = argc + n;
    }
    int64_t len = -1;
    if (listops_parse(tokens, n, argc, stack) == 0) {
        len = 0;
        int open = 0;
        char digit[2];
        for (int i = 0; i < n; i++) {
            int32_t t = tokens[i];
            if (listops_is_op(t)) {
                for (int k = 0; k <= argc[i]; k++) listops_put(buf, cap, &len, "(");
                listops_put(buf, cap, &len, listops_atom(t, digit));
                open++;
                continue;
            }
            listops_put(buf, cap, &len, listops_atom(t, digit));
            if (t == LRA_LISTOPS_X) {
                listops_put(buf, cap, &len, ")");  // closes (..., ])
                open--;
            }
            if (open > 0) listops_put(buf, cap, &len, ")");  // closes (left, this argument)
        }
    }
    if (argc != small) free(argc);
    return len;
}

int64_t lra_listops_format(const int32_t *tokens, int n, int parens, char *buf, size_t cap) {
    int64_t len = 0;
    if (parens) {
        len = listops_format_parens(tokens, n, buf, cap);
    } else {
        char digit[2];
        for (int i = 0; i < n && len >= 0; i++) {
            if (!listops_is_op(tokens[i]) && !listops_is_digit(tokens[i]) && tokens[i] != LRA_LISTOPS_X) len = -1;
            else listops_put(buf, cap, &len, listops_atom(tokens[i], digit));
        }
    }
    if (cap > 0) buf[len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1] = 0;
    return len;
}

// ----------------------------------------------------------------------------
// evaluation and hash

// An open operator while evaluating: its arguments as a histogram of digits.
typedef struct {
    int32_t op;
    int     count, sum, hist[10];  // sum mod 10
} listops_frame;

static int listops_apply(const listops_frame *f) {
    int lo = 0, hi = 9;
    while (!f->hist[lo]) lo++;
    while (!f->hist[hi]) hi--;
    switch (f->op) {
    case LRA_LISTOPS_MIN: return lo;
    case LRA_LISTOPS_MAX: return hi;
    case LRA_LISTOPS_SM:  return f->sum % 10;
    default: break;
    }
    // MED: the values at sorted positions (count-1)/2 and count/2, their mean truncated
    int want[2] = { (f->count - 1) / 2, f->count / 2 }, got[2] = { 0, 0 };
    for (int j = 0; j < 2; j++) {
        int seen = 0, d = 0;
        while (seen + f->hist[d] <= want[j]) seen += f->hist[d++];
        got[j] = d;
    }
    return (got[0] + got[1]) / 2;
}

// Room for one more open operator: frames (*cap) on the stack at first,
// doubled on the heap for expressions nested deeper than the generator makes.
static int listops_frames_grow(listops_frame **frames, int *cap, listops_frame *small) {
    listops_frame *grown = malloc(2 * (size_t)*cap * sizeof *grown);
    if (!grown) return LRA_ENOMEM;
    memcpy(grown, *frames, (size_t)*cap * sizeof *grown);
    if (*frames != small) free(*frames);
    *frames = grown;
    *cap *= 2;
    return LRA_OK;
}

int lra_listops_eval(const int32_t *tokens, int n, int *value) {
    listops_frame small[LISTOPS_MAX_DEPTH], *frames = small;
    int cap = LISTOPS_MAX_DEPTH, open = 0, result = -1, rc = LRA_OK;
    for (int i = 0; i < n && rc == LRA_OK; i++) {
        int32_t t = tokens[i];
        int v = -1;
        if (result >= 0) {
            rc = LRA_EINVAL;  // tokens after the root expression
        } else if (listops_is_op(t)) {
            if (open == cap) rc = listops_frames_grow(&frames, &cap, small);
            if (rc == LRA_OK) frames[open++] = (listops_frame){ .op = t };
        } else if (listops_is_digit(t)) {
            v = t - LRA_LISTOPS_DIGIT0;
        } else if (t == LRA_LISTOPS_X && open > 0 && frames[open - 1].count > 0) {
            v = listops_apply(&frames[--open]);
        } else {
            rc = LRA_EINVAL;
        }
        if (v < 0) continue;
        if (open == 0) {
            result = v;
        } else {
            listops_frame *f = &frames[open - 1];
            f->count++;
            f->sum = (f->sum + v) % 10;
            f->hist[v]++;
        }
    }
    if (frames != small) free(frames);
    if (rc == LRA_OK && result < 0) rc = LRA_EINVAL;
    if (rc == LRA_OK) *value = result;
    return rc;
}

// FNV-1a over the token ids (all < 256), finished with splitmix64.
uint64_t lra_listops_hash(const int32_t *tokens, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) h = (h ^ (uint8_t)tokens[i]) * 0x100000001b3ull;
    return lra_mix64(h ^ (uint64_t)n);
}

// ----------------------------------------------------------------------------
// generator

static lra_split listops_split_of(const listops_state *s, uint64_t hash) {
    uint64_t u = hash >> 32;
    return u < s->bound[0] ? LRA_SPLIT_TRAIN : u < s->bound[1] ? LRA_SPLIT_VAL : LRA_SPLIT_TEST;
}

// Grows one random tree (lra.md §2 step 1) into tokens, depth first; returns
// its length, or -1 as soon as it would pass `limit` tokens. Bit layout of the
// one draw per node: see the file header.
static int listops_grow(const listops_state *s, lra_rng *r, int32_t *tokens, int limit) {
    int remaining[LISTOPS_MAX_DEPTH];  // arguments still to grow, per open operator
    int open = 0, n = 0;               // the node being grown has depth open + 1
    for (;;) {
        uint64_t x = lra_rng_u64(r);
        uint64_t low = x & 0xffffffffu;
        if (n == limit) return -1;
        if (open + 1 < s->max_depth && (x >> 62) == 0) {
            tokens[n++] = LRA_LISTOPS_MIN + (int32_t)((x >> 32) & 3);
            remaining[open++] = 2 + (int)((low * (uint64_t)(s->max_args - 1)) >> 32);
            continue;
        }
        tokens[n++] = LRA_LISTOPS_DIGIT0 + (int32_t)((low * 10) >> 32);
        while (open > 0 && --remaining[open - 1] == 0) {  // that was the last argument: close
            if (n == limit) return -1;
            tokens[n++] = LRA_LISTOPS_X;
            open--;
        }
        if (open == 0) return n;
    }
}

// The expression of example (split, index), whole, into tokens (room for
// max_length - 1); returns its length and its value in *label, or -1 (an
// LRA_EINVAL error) when no candidate is accepted.
static int listops_generate(const lra_task *t, lra_split split, int64_t index, int32_t *tokens, int *label,
                            lra_err *err) {
    const listops_state *s = t->state;
    lra_rng r = { lra_example_seed(t->seed, LISTOPS_SALT, split, index), 0 };
    for (int64_t attempt = 0; attempt < LISTOPS_MAX_ATTEMPTS; attempt++) {
        int n = listops_grow(s, &r, tokens, s->max_length - 1);
        if (n <= s->min_length) continue;  // also n = -1: too long
        if (listops_split_of(s, lra_listops_hash(tokens, n)) != split) continue;
        int rc = lra_listops_eval(tokens, n, label);  // nested < LISTOPS_MAX_DEPTH: no allocation
        LRA_ASSERT(rc == LRA_OK);
        return n;
    }
    lra_err_set(err, LRA_EINVAL, "listops: example %lld of split %s: no expression accepted after %d candidates",
                (long long)index, lra_split_names[split], LISTOPS_MAX_ATTEMPTS);
    return -1;
}

// The longest tree max_depth and max_args allow (saturating at 2^31).
static int64_t listops_longest(int max_depth, int max_args) {
    int64_t len = 1;
    for (int d = max_depth - 1; d >= 1; d--) len = len > (1ll << 31) ? len : 2 + max_args * len;
    return len;
}

// Fails when the lengths (min_length, max_length) are out of reach: longer
// than the deepest tree, or none of the first LISTOPS_PROBE trees of a fixed
// stream (or as many as LISTOPS_PROBE_TOKENS tokens allow) has such a length:
// a gap in the reachable lengths, or odds too poor to be of use.
static int listops_check_reachable(const listops_state *s, lra_err *err) {
    int64_t longest = listops_longest(s->max_depth, s->max_args);
    if (longest <= s->min_length)
        return lra_err_set(err, LRA_EINVAL,
                           "listops: min_length=%d cannot be passed: max_depth=%d, max_args=%d allow at most %lld tokens",
                           s->min_length, s->max_depth, s->max_args, (long long)longest);
    int32_t *tokens = malloc((size_t)s->max_length * sizeof *tokens);
    if (!tokens) return lra_err_set(err, LRA_ENOMEM, "listops: cannot allocate %d tokens", s->max_length);
    lra_rng r = { lra_mix64(LISTOPS_SALT), 0 };
    int found = 0, tried = 0;
    for (int64_t spent = 0; tried < LISTOPS_PROBE && spent < LISTOPS_PROBE_TOKENS && !found; tried++) {
        int n = listops_grow(s, &r, tokens, s->max_length - 1);
        found = n > s->min_length;
        spent += n < 0 ? s->max_length : n;
    }
    free(tokens);
    if (!found)
        return lra_err_set(err, LRA_EINVAL,
                           "listops: none of %d random trees (max_depth=%d, max_args=%d) has min_length=%d < length < "
                           "max_length=%d",
                           tried, s->max_depth, s->max_args, s->min_length, s->max_length);
    return LRA_OK;
}

// ----------------------------------------------------------------------------
// loader

static void listops_file_free(listops_file *f) {
    free(f->offset);
    free(f->tokens);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

static int listops_file_append(listops_file *f, const int32_t *tokens, int n, int label) {
    if (f->n + 1 >= f->cap_n) {
        int64_t cap = f->cap_n ? 2 * f->cap_n : 1024;
        int64_t *offset = realloc(f->offset, (size_t)(cap + 1) * sizeof *offset);
        if (offset) f->offset = offset;
        uint8_t *labels = realloc(f->labels, (size_t)cap);
        if (labels) f->labels = labels;
        if (!offset || !labels) return LRA_ENOMEM;
        if (f->n == 0) f->offset[0] = 0;
        f->cap_n = cap;
    }
    int64_t at = f->offset[f->n];
    if (at + n > f->cap_tokens) {
        int64_t cap = f->cap_tokens ? 2 * f->cap_tokens : 1 << 20;
        while (cap < at + n) cap *= 2;
        uint8_t *grown = realloc(f->tokens, (size_t)cap);
        if (!grown) return LRA_ENOMEM;
        f->tokens = grown;
        f->cap_tokens = cap;
    }
    for (int i = 0; i < n; i++) f->tokens[at + i] = (uint8_t)tokens[i];
    f->labels[f->n] = (uint8_t)label;
    f->offset[++f->n] = at + n;
    return LRA_OK;
}

// Room for the tokens of a line of len bytes (the tokenizer stops at LISTOPS_MAX_TOKENS).
#define LISTOPS_SCRATCH(len) ((len) < LISTOPS_MAX_TOKENS ? (int)(len) + 1 : LISTOPS_MAX_TOKENS)

// One data row "Source<TAB>Target" (line, len, line ending removed) into f.
// scratch: room for LISTOPS_SCRATCH(len) tokens.
static int listops_read_row(listops_file *f, const char *path, int64_t line_no, const char *line, size_t len,
                            int32_t *scratch, lra_err *err) {
    const char *tab = memchr(line, '\t', len);
    int columns = 1;
    for (size_t i = 0; i < len; i++) columns += line[i] == '\t';
    if (columns != 2)
        return lra_err_set(err, LRA_EIO, "%s:%lld: expected 2 tab-separated columns (Source, Target), got %d", path,
                           (long long)line_no, columns);
    lra_err tok_err = {0};
    int n = lra_listops_tokenize(line, (size_t)(tab - line), scratch, LISTOPS_SCRATCH(len), &tok_err);
    if (n < 0) return lra_err_set(err, LRA_EIO, "%s:%lld: %s", path, (long long)line_no, tok_err.msg);
    if (n == 0) return lra_err_set(err, LRA_EIO, "%s:%lld: empty expression", path, (long long)line_no);
    const char *target = tab + 1;
    size_t target_len = len - (size_t)(target - line);
    if (target_len != 1 || target[0] < '0' || target[0] > '9') {
        char shown[400];
        listops_escape(shown, sizeof shown, target, target_len);
        return lra_err_set(err, LRA_EIO, "%s:%lld: label '%s': expected an integer 0..9", path, (long long)line_no,
                           shown);
    }
    if (listops_file_append(f, scratch, n, target[0] - '0'))
        return lra_err_set(err, LRA_ENOMEM, "%s:%lld: out of memory", path, (long long)line_no);
    return LRA_OK;
}

static int listops_read_lines(listops_file *f, const char *path, FILE *fp, lra_err *err) {
    char *line = NULL;
    size_t line_cap = 0;
    int32_t *scratch = NULL;
    size_t scratch_cap = 0;
    int64_t line_no = 0;
    ssize_t got;
    int rc = LRA_OK;
    while (rc == LRA_OK && (got = getline(&line, &line_cap, fp)) >= 0) {
        size_t len = (size_t)got;
        line_no++;
        if (len > 0 && line[len - 1] == '\n') len--;
        if (len > 0 && line[len - 1] == '\r') len--;
        if (line_no == 1) {
            if (len != 13 || memcmp(line, "Source\tTarget", 13) != 0) {
                char shown[400];
                listops_escape(shown, sizeof shown, line, len);
                rc = lra_err_set(err, LRA_EIO, "%s:1: expected the header row Source<TAB>Target, got '%s'", path,
                                 shown);
            }
            continue;
        }
        if (scratch_cap < (size_t)LISTOPS_SCRATCH(len)) {
            free(scratch);
            scratch_cap = (size_t)LISTOPS_SCRATCH(len);
            scratch = malloc(scratch_cap * sizeof *scratch);
            if (!scratch) {
                rc = lra_err_set(err, LRA_ENOMEM, "%s:%lld: out of memory", path, (long long)line_no);
                break;
            }
        }
        rc = listops_read_row(f, path, line_no, line, len, scratch, err);
    }
    if (rc == LRA_OK && ferror(fp)) rc = lra_err_set(err, LRA_EIO, "%s: read error (%s)", path, strerror(errno));
    if (rc == LRA_OK && line_no == 0)
        rc = lra_err_set(err, LRA_EIO, "%s: empty file, expected the header row Source<TAB>Target", path);
    free(line);
    free(scratch);
    return rc;
}

static int listops_load(listops_state *s, const char *dir, lra_err *err) {
    for (int split = 0; split < LRA_SPLIT_COUNT; split++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, listops_files[split]);
        FILE *fp = fopen(path, "rb");
        if (!fp) return lra_err_set(err, LRA_EIO, "%s: cannot open (%s)", path, strerror(errno));
        int rc = listops_read_lines(&s->file[split], path, fp, err);
        fclose(fp);
        if (rc) return rc;
        s->n_split[split] = s->file[split].n;
    }
    return LRA_OK;
}

// ----------------------------------------------------------------------------
// open, parameters

static const char *listops_where(const lra_kv *params, int n_params, const char *key) {
    const lra_kv *kv = lra_kv_find(params, n_params, key);
    return kv && kv->where ? kv->where : "parameter";
}

// The parameters that shape generated data; refused in loader mode.
static const char *const listops_gen_keys[] = { "n_train", "n_val", "n_test", "min_length",
                                                "max_length", "max_depth", "max_args", NULL };

static int listops_parse_generator(listops_state *s, const lra_kv *params, int n_params, lra_err *err) {
    int64_t v[7];
    static const int64_t def[7] = { 96000, 2000, 2000, 500, 2000, 10, 10 };
    static const int64_t lo[7] = { 0, 0, 0, 0, 2, 1, 2 };
    static const int64_t hi[7] = { 1000000000, 1000000000, 1000000000, 1000000, 1000000, LISTOPS_MAX_DEPTH, 64 };
    for (int k = 0; k < 7; k++) {
        int rc = lra_kv_int(params, n_params, "listops", listops_gen_keys[k], def[k], lo[k], hi[k], &v[k], err);
        if (rc) return rc;
    }
    for (int k = 0; k < 3; k++) s->n_split[k] = v[k];
    s->min_length = (int)v[3];
    s->max_length = (int)v[4];
    s->max_depth = (int)v[5];
    s->max_args = (int)v[6];
    int64_t total = v[0] + v[1] + v[2];
    if (total == 0)
        return lra_err_set(err, LRA_EINVAL, "%s: listops.n_train: n_train + n_val + n_test must be at least 1",
                           listops_where(params, n_params, "n_train"));
    if (s->max_length < s->min_length + 2)
        return lra_err_set(err, LRA_EINVAL, "%s: listops.max_length: expected at least min_length + 2 = %d, got %d",
                           listops_where(params, n_params, "max_length"), s->min_length + 2, s->max_length);
    // split fractions of the 32-bit hash space; a split of n >= 1 gets width >= 1 (total < 2^32)
    s->bound[0] = ((uint64_t)v[0] << 32) / (uint64_t)total;
    s->bound[1] = ((uint64_t)(v[0] + v[1]) << 32) / (uint64_t)total;
    return LRA_OK;
}

static void listops_info(lra_task *t, const listops_state *s, const char *data_dir) {
    lra_task_info *in = &t->info;
    memset(in, 0, sizeof *in);
    snprintf(in->name, sizeof in->name, "listops");
    in->n_inputs = 1;
    in->seq_len = s->seq_len;
    in->vocab = LRA_LISTOPS_VOCAB;
    in->pad_id = LRA_LISTOPS_PAD;
    in->n_classes = 10;
    for (int k = 0; k < LRA_SPLIT_COUNT; k++) in->split_size[k] = s->n_split[k];
    in->generator_version = LISTOPS_GENERATOR_VERSION;
    if (data_dir) {
        snprintf(in->source, sizeof in->source, "%s", data_dir);
        snprintf(in->params, sizeof in->params, "data_dir=%s;seq_len=%d;eos=%d", data_dir, s->seq_len, s->eos);
    } else {
        snprintf(in->source, sizeof in->source, "generated (seed %llu)", (unsigned long long)t->seed);
        snprintf(in->params, sizeof in->params,
                 "n_train=%lld;n_val=%lld;n_test=%lld;min_length=%d;max_length=%d;max_depth=%d;max_args=%d;"
                 "seq_len=%d;eos=%d",
                 (long long)s->n_split[0], (long long)s->n_split[1], (long long)s->n_split[2], s->min_length,
                 s->max_length, s->max_depth, s->max_args, s->seq_len, s->eos);
    }
}

static void listops_close(lra_task *t) {
    listops_state *s = t->state;
    if (!s) return;
    for (int k = 0; k < LRA_SPLIT_COUNT; k++) listops_file_free(&s->file[k]);
    free(s);
    t->state = NULL;
}

static int listops_open_state(lra_task *t, listops_state *s, const lra_kv *params, int n_params, lra_err *err) {
    static const char *const known[] = { "n_train",   "n_val",    "n_test",  "min_length", "max_length",
                                         "max_depth", "max_args", "seq_len", "eos",        "data_dir", NULL };
    const char *data_dir;
    int64_t seq_len, eos;
    int rc;
    if ((rc = lra_kv_check_known(params, n_params, "listops", known, err)) ||
        (rc = lra_kv_int(params, n_params, "listops", "eos", 0, 0, 1, &eos, err)) ||
        (rc = lra_kv_int(params, n_params, "listops", "seq_len", 2000, 1, 1 << 24, &seq_len, err)))
        return rc;
    lra_kv_string(params, n_params, "data_dir", NULL, &data_dir);
    s->seq_len = (int)seq_len;
    s->eos = (int)eos;
    if (data_dir) {
        for (const char *const *k = listops_gen_keys; *k; k++)
            if (lra_kv_find(params, n_params, *k))
                return lra_err_set(err, LRA_EINVAL, "%s: listops.%s: not used with data_dir (the files fix it)",
                                   listops_where(params, n_params, *k), *k);
        if (!*data_dir)
            return lra_err_set(err, LRA_EINVAL, "%s: listops.data_dir: expected a directory, got ''",
                               listops_where(params, n_params, "data_dir"));
        if (s->seq_len < 1 + s->eos)
            return lra_err_set(err, LRA_EINVAL, "%s: listops.seq_len: expected at least %d with eos=%d, got %d",
                               listops_where(params, n_params, "seq_len"), 1 + s->eos, s->eos, s->seq_len);
        s->loaded = 1;
        if ((rc = listops_load(s, data_dir, err))) return rc;
        listops_info(t, s, data_dir);
        return LRA_OK;
    }
    if ((rc = listops_parse_generator(s, params, n_params, err))) return rc;
    if (s->seq_len < s->max_length - 1 + s->eos)
        return lra_err_set(err, LRA_EINVAL,
                           "%s: listops.seq_len: expected at least max_length - 1 + eos = %d, got %d",
                           listops_where(params, n_params, "seq_len"), s->max_length - 1 + s->eos, s->seq_len);
    if ((rc = listops_check_reachable(s, err))) return rc;
    listops_info(t, s, NULL);
    return LRA_OK;
}

static int listops_open(lra_task *t, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    listops_state *s = calloc(1, sizeof *s);
    if (!s) return lra_err_set(err, LRA_ENOMEM, "listops: out of memory");
    t->vt = &lra_task_listops;
    t->seed = seed;
    t->state = s;
    int rc = listops_open_state(t, s, params, n_params, err);
    if (rc) listops_close(t);
    return rc;
}

// ----------------------------------------------------------------------------
// examples, export, describe

// Example (split, index) whole (not cut to seq_len) into tokens (room for
// the longest: max_length - 1 generated, or the loaded expression).
static int listops_whole(const lra_task *t, lra_split split, int64_t index, int32_t *tokens, int cap, int *label,
                         lra_err *err) {
    const listops_state *s = t->state;
    if (!s->loaded) return listops_generate(t, split, index, tokens, label, err);
    const listops_file *f = &s->file[split];
    int64_t n = f->offset[index + 1] - f->offset[index];
    for (int64_t i = 0; i < n && i < cap; i++) tokens[i] = f->tokens[f->offset[index] + i];
    *label = f->labels[index];
    return (int)n;
}

static int listops_example(const lra_task *t, lra_split split, int64_t index, lra_example *ex, lra_err *err) {
    const listops_state *s = t->state;
    int rc = lra_task_check_index(t, split, index, err);
    if (rc) return rc;
    int keep = s->seq_len - s->eos, label;
    int n = listops_whole(t, split, index, ex->tokens, keep, &label, err);  // generated: n <= keep
    if (n < 0) return LRA_EINVAL;
    if (n > keep) n = keep;
    if (s->eos) ex->tokens[n++] = LRA_LISTOPS_EOS;
    for (int i = n; i < s->seq_len; i++) ex->tokens[i] = LRA_LISTOPS_PAD;
    ex->length[0] = n;
    ex->label = label;
    return LRA_OK;
}

// Generates (in parallel) or copies examples [start, start + m) whole into
// tokens (m, cap), their lengths and labels.
static int listops_fill_chunk(const lra_task *t, lra_split split, int64_t start, int m, int32_t *tokens, int cap,
                              int *lengths, int *labels, lra_err *err) {
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 4)
    for (int j = 0; j < m; j++) {
        lra_err e = {0};
        lengths[j] = listops_whole(t, split, start + j, tokens + (int64_t)j * cap, cap, &labels[j], &e);
        if (lengths[j] < 0) {
#pragma omp critical(listops_export_err)
            if (!failed) {
                failed = 1;
                if (err) *err = e;
            }
        }
    }
    return failed ? LRA_EINVAL : LRA_OK;
}

static int listops_longest_whole(const lra_task *t, lra_split split, int64_t n) {
    const listops_state *s = t->state;
    if (!s->loaded) return s->max_length - 1;
    int64_t longest = 1;
    const listops_file *f = &s->file[split];
    for (int64_t i = 0; i < n; i++)
        if (f->offset[i + 1] - f->offset[i] > longest) longest = f->offset[i + 1] - f->offset[i];
    return (int)longest;
}

static int listops_write_chunk(FILE *fp, const char *path, int64_t start, int m, const int32_t *tokens, int cap,
                               const int *lengths, const int *labels, char *text, size_t text_cap, lra_err *err) {
    for (int j = 0; j < m; j++) {
        int64_t len = lra_listops_format(tokens + (int64_t)j * cap, lengths[j], 1, text, text_cap);
        if (len < 0 || (size_t)len >= text_cap)
            return lra_err_set(err, LRA_EINVAL, "%s: example %lld is not one well-formed expression", path,
                               (long long)(start + j));
        if (fprintf(fp, "%s\t%d\r\n", text, labels[j]) < 0)
            return lra_err_set(err, LRA_EIO, "%s: write failed (%s)", path, strerror(errno));
    }
    return LRA_OK;
}

// Writes <dir>/basic_<split>.tsv: the header row, then examples [0, n) (all
// when n < 0 or n passes the split's size) as "<release form>\t<label>\r\n".
static int listops_export(const lra_task *t, lra_split split, const char *dir, int64_t n, lra_progress_fn progress,
                          void *progress_ctx, lra_err *err) {
    if ((unsigned)split >= LRA_SPLIT_COUNT) return lra_err_set(err, LRA_EINVAL, "listops: no split %d", (int)split);
    int64_t size = t->info.split_size[split];
    if (n < 0 || n > size) n = size;
    int cap = listops_longest_whole(t, split, n);
    int chunk = LISTOPS_EXPORT_TOKENS / cap < 1 ? 1 : LISTOPS_EXPORT_TOKENS / cap;
    if (chunk > LISTOPS_EXPORT_CHUNK) chunk = LISTOPS_EXPORT_CHUNK;
    size_t text_cap = 10 * (size_t)cap + 16;  // <= 5 bytes per token, <= 2 parentheses of 2 bytes per token
    char path[1024];
    snprintf(path, sizeof path, "%s/basic_%s.tsv", dir, lra_split_names[split]);
    FILE *fp = fopen(path, "wb");
    if (!fp) return lra_err_set(err, LRA_EIO, "%s: cannot create (%s)", path, strerror(errno));
    int32_t *tokens = malloc((size_t)chunk * (size_t)cap * sizeof *tokens);
    int *lengths = malloc(2 * (size_t)chunk * sizeof *lengths), *labels = lengths ? lengths + chunk : NULL;
    char *text = malloc(text_cap);
    int rc = tokens && lengths && text ? LRA_OK : lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
    if (rc == LRA_OK && fputs("Source\tTarget\r\n", fp) < 0)
        rc = lra_err_set(err, LRA_EIO, "%s: write failed (%s)", path, strerror(errno));
    for (int64_t start = 0; start < n && rc == LRA_OK; start += chunk) {
        int m = (int)(n - start < chunk ? n - start : chunk);
        rc = listops_fill_chunk(t, split, start, m, tokens, cap, lengths, labels, err);
        if (rc == LRA_OK) rc = listops_write_chunk(fp, path, start, m, tokens, cap, lengths, labels, text, text_cap, err);
        if (rc == LRA_OK && progress) progress(progress_ctx, start + m, n);
    }
    free(tokens);
    free(lengths);
    free(text);
    if (fclose(fp) != 0 && rc == LRA_OK) rc = lra_err_set(err, LRA_EIO, "%s: write failed (%s)", path, strerror(errno));
    return rc;
}

static void listops_describe(const lra_task *t, const lra_example *ex, FILE *out) {
    const listops_state *s = t->state;
    int n = ex->length[0];
    if (s->eos && n > 0 && ex->tokens[n - 1] == LRA_LISTOPS_EOS) n--;
    int64_t need = lra_listops_format(ex->tokens, n, 0, NULL, 0);
    char *text = need >= 0 ? malloc((size_t)need + 1) : NULL;
    if (text) {
        lra_listops_format(ex->tokens, n, 0, text, (size_t)need + 1);
        fprintf(out, "%s\n", text);
    } else {
        fprintf(out, "(%d tokens that are not an expression)\n", n);
    }
    free(text);
    int value;
    if (lra_listops_eval(ex->tokens, n, &value) == LRA_OK)
        fprintf(out, "value %d, label %d, length %d tokens%s\n", value, ex->label, n, s->eos ? " + EOS" : "");
    else
        fprintf(out, "value: not one complete expression (cut to seq_len?), label %d, length %d tokens%s\n", ex->label,
                n, s->eos ? " + EOS" : "");
}

const lra_task_vtable lra_task_listops = {
    .name = "listops",
    .summary = "ListOps: value 0..9 of nested MIN/MAX/MED/SM expressions, 501..1999 tokens (LRA generator)",
    .open = listops_open,
    .example = listops_example,
    .close = listops_close,
    .export_split = listops_export,
    .describe = listops_describe,
};
