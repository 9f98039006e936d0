// listops.h: the ListOps task (LRA, Tay et al. 2021; lra.md §1.2 and §2) and
// the expression helpers its tests use: tokenizer, serialiser, evaluator.
//
// Tokens (fixed, so that every ListOps model sees the same vocabulary of 17):
//   0 pad | 1..10 digits 0..9 | 11 [MIN | 12 [MAX | 13 [MED | 14 [SM |
//   15 X (the closing ']') | 16 EOS (only emitted with eos=1)
#ifndef LRA_LISTOPS_H
#define LRA_LISTOPS_H

#include "task.h"

extern const lra_task_vtable lra_task_listops;

enum {
    LRA_LISTOPS_PAD    = 0,
    LRA_LISTOPS_DIGIT0 = 1,   // digit d is token 1 + d
    LRA_LISTOPS_MIN    = 11,
    LRA_LISTOPS_MAX    = 12,
    LRA_LISTOPS_MED    = 13,
    LRA_LISTOPS_SM     = 14,
    LRA_LISTOPS_X      = 15,  // ']'
    LRA_LISTOPS_EOS    = 16,
    LRA_LISTOPS_VOCAB  = 17,
};

// Tokenizes text as the LRA input pipeline does: delete '(' and ')', read
// ']' as X, split on whitespace. Accepts both the parenthesised release form
// and the readable prefix form. Writes at most cap tokens, returns the full
// count; on a token outside the vocabulary returns -1 with err set to
// "unknown token '<tok>' (expected ...)".
int lra_listops_tokenize(const char *text, size_t n_chars, int32_t *tokens, int cap, lra_err *err);

// Writes tokens (n) as text into buf (cap bytes, NUL-terminated when cap > 0)
// and returns the length the whole text needs, snprintf-style. parens = 1:
// the release form, every pair node "( left right )" as the LRA generator
// prints it, e.g. "( ( ( [MAX 3 ) 2 ) ] )"; parens = 0: the readable form
// "[MAX 3 2 ]". Returns -1 when the tokens are not exactly one expression
// (for parens = 1) or hold ids outside 1..15.
int64_t lra_listops_format(const int32_t *tokens, int n, int parens, char *buf, size_t cap);

// Evaluates one expression (lra.md §2 step 4): MIN, MAX, MED = int(median)
// (even count: mean of the two middle values, truncated), SM = sum mod 10.
// LRA_OK and *value in 0..9, or LRA_EINVAL when malformed.
int lra_listops_eval(const int32_t *tokens, int n, int *value);

// The hash that assigns an expression to its split (FNV-1a, mixed).
uint64_t lra_listops_hash(const int32_t *tokens, int n);

#endif // LRA_LISTOPS_H
