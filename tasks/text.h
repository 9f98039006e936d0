// text.h: the LRA Text task (byte-level IMDb sentiment, lra.md 1.3), and the
// English-like prose writer it shares with the Retrieval generator.
#ifndef LRA_TASK_TEXT_H
#define LRA_TASK_TEXT_H

#include "task.h"

extern const lra_task_vtable lra_task_text;

// ---- prose: sentences of filler words with a few planted words -------------
// Used by the Text and Retrieval generators. Everything here is integer or
// exactly rounded arithmetic, so the bytes are the same on every machine.

// A word list sampled with Zipf-Mandelbrot frequencies: word r (0-based rank)
// has weight floor(2^20 / (r + 3)).
typedef struct {
    const char *const *words;   // (n) by decreasing frequency
    int                n;
    uint32_t          *cdf;     // (n) cumulative weights
} lra_wordlist;

int         lra_wordlist_init(lra_wordlist *wl, const char *const *words, int n, lra_err *err);
void        lra_wordlist_free(lra_wordlist *wl);
const char *lra_wordlist_draw(const lra_wordlist *wl, lra_rng *r);

#define LRA_PROSE_MAX_WORD 20   // longest word the writer accepts (bytes)
#define LRA_PROSE_MAX_EMIT 36   // most bytes one word appends: ' ' + word + "..." + "<br /><br />"

// A document being written: words are joined by spaces into sentences of 4 to
// 18 words (first letter capitalised, commas now and then, ending with . ! ? or
// ...), optionally followed by "<br /><br />" as IMDb marks paragraphs.
typedef struct {
    uint8_t *buf;          // (cap) the bytes written so far
    int      len, cap;
    int      words_left;   // words before the current sentence ends; 0: none open
    int      after_break;  // the last bytes are "<br /><br />"
    int      br_permille;  // chance (1/1000) of a paragraph break after a sentence
} lra_prose;

// Writes about `target` bytes of prose (never more than p->cap) into p, with
// planted[k] written as the first word at or after byte at[k] (at sorted
// ascending, all < target). Every planted word is written even when room runs
// short: filler stops first. Needs p->cap >= (n_planted + 1) * LRA_PROSE_MAX_EMIT + 1.
// Returns the length.
int lra_prose_plant(lra_prose *p, lra_rng *r, const lra_wordlist *filler, const char *const *planted,
                    const int *at, int n_planted, int target);

// Samples a document length in bytes from a table of 65 quantiles (linear
// between them): q[0] is the minimum, q[64] the maximum.
int lra_length_draw(const int *q65, lra_rng *r);

// Prints bytes with C escapes for everything outside printable ASCII.
void lra_print_escaped(FILE *out, const uint8_t *bytes, int n);

// ---- for the tests ------------------------------------------------------------
// Polarity of a word of a generated review (ASCII case ignored): +1 for the
// positive sentiment words, -1 for the negative ones, 0 for everything else.
int lra_text_polarity(const uint8_t *word, int n);

// Rating (1..4 for negative, 7..10 for positive) written into the exported file
// name <index>_<rating>.txt, as aclImdb does.
int lra_text_rating(uint64_t seed, lra_split split, int64_t index, int label);

#endif // LRA_TASK_TEXT_H
