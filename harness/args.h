// args.h: parsing of command-line option values, with messages naming the option.
#ifndef LRA_ARGS_H
#define LRA_ARGS_H

#include "../backends/kv.h"

// *out = the integer in s, which must lie in [lo, hi]; otherwise an
// LRA_EUSAGE error "<opt>: expected an integer in [lo, hi], got '<s>'".
int lra_arg_int64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, lra_err *err);
int lra_arg_int(const char *opt, const char *s, int lo, int *out, lra_err *err);
// Checks that opt is one of known (NULL-terminated) and has a value:
// "unknown option '<opt>' for '<cmd>' (see lra help)" or "<opt>: missing value".
int lra_arg_option(const char *opt, const char *value, const char *const *known, const char *cmd, lra_err *err);

// Appends "KEY=VALUE" (v, modified in place: the '=' becomes NUL) to kv
// (*n of cap used), with where = opt: "<opt>: expected KEY=VALUE, got '<v>'"
// or "<opt>: too many values" otherwise (LRA_EUSAGE).
int lra_arg_kv(const char *opt, char *v, lra_kv *kv, int *n, int cap, lra_err *err);

#endif // LRA_ARGS_H
