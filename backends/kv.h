// kv.h: parameters as text ("key" = "value", with where each came from) and
// strict typed getters. Shared by tasks, models and the harness: an unknown
// key or a malformed value is an error naming the key, its origin
// ("experiments/x.yaml:12:5", "--param") and what was expected.
#ifndef LRA_KV_H
#define LRA_KV_H

#include "core.h"

// One parameter as text, with where it came from for error messages
// ("experiments/x.yaml:12:5" or "--param"; NULL when unknown).
typedef struct {
    const char *key;
    const char *value;
    const char *where;
} lra_kv;

// In the messages below <owner> is the `task` argument: a task name, "model",
// "" for top-level keys (then no dot),
// "mixer.s4d", ...
// Finds key in params; NULL when absent.
const lra_kv *lra_kv_find(const lra_kv *params, int n_params, const char *key);
// Fails on the first key of params not in known (a NULL-terminated list), with
// the message "<where>: <task>.<key>: unknown parameter (known: a, b, c)".
int lra_kv_check_known(const lra_kv *params, int n_params, const char *task, const char *const *known,
                       lra_err *err);
// Typed getters: absent -> default; present but malformed or outside
// [lo, hi] -> error "<where>: <task>.<key>: expected ... got '<value>'".
int lra_kv_int(const lra_kv *params, int n_params, const char *task, const char *key, int64_t def, int64_t lo,
               int64_t hi, int64_t *out, lra_err *err);
int lra_kv_double(const lra_kv *params, int n_params, const char *task, const char *key, double def, double lo,
                  double hi, double *out, lra_err *err);
// Value must be one of choices (NULL-terminated); returns its index in *out.
int lra_kv_choice(const lra_kv *params, int n_params, const char *task, const char *key, int def,
                  const char *const *choices, int *out, lra_err *err);
// true|false|yes|no|1|0.
int lra_kv_bool(const lra_kv *params, int n_params, const char *task, const char *key, int def, int *out,
                lra_err *err);
int lra_kv_string(const lra_kv *params, int n_params, const char *key, const char *def, const char **out);

// Splits "a=1;b=2" in place (buf is modified) into kv entries pointing into
// buf, each with the given where; returns the count, or -1 when there are
// more than cap entries or an entry has no '='.
int lra_kv_split(char *buf, lra_kv *kv, int cap, const char *where);

// Where a parameter came from, for messages ("parameter" when unknown).
const char *lra_kv_where(const lra_kv *kv);

#endif // LRA_KV_H
