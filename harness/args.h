// args.h: parsing of command-line option values, with messages naming the option.
#ifndef LRA_ARGS_H
#define LRA_ARGS_H

#include "../backends/core.h"

// *out = the integer in s, which must lie in [lo, hi]; otherwise an error
// "<opt>: expected a positive integer, got '<s>'" (or non-negative, or >= lo).
int lra_arg_int64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, lra_err *err);
int lra_arg_int(const char *opt, const char *s, int lo, int *out, lra_err *err);

#endif // LRA_ARGS_H
