// kv.c: typed, strict parsing of "key = value" parameters (tasks, models,
// run configs), with messages that name where each value came from.
#include "kv.h"

#include <errno.h>
#include <math.h>
#include <string.h>

// Owner and key are joined by a dot, except for top-level keys (owner "").
#define DOT(task) (*(task) ? "." : "")

const char *lra_kv_where(const lra_kv *kv) { return kv && kv->where ? kv->where : "parameter"; }

const lra_kv *lra_kv_find(const lra_kv *params, int n_params, const char *key) {
    const lra_kv *found = NULL;
    for (int i = 0; i < n_params; i++)
        if (strcmp(params[i].key, key) == 0) found = &params[i];  // the last one wins
    return found;
}

int lra_kv_check_known(const lra_kv *params, int n_params, const char *task, const char *const *known,
                       lra_err *err) {
    for (int i = 0; i < n_params; i++) {
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, params[i].key) == 0;
        if (ok) continue;
        char list[512] = "";
        for (const char *const *k = known; *k; k++) {
            if (k != known) strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, *k, sizeof list - strlen(list) - 1);
        }
        return lra_err_set(err, LRA_EINVAL, "%s: %s%s%s: unknown parameter (known: %s)", lra_kv_where(&params[i]), task,
                           DOT(task), params[i].key, list);
    }
    return LRA_OK;
}

int lra_kv_int(const lra_kv *params, int n_params, const char *task, const char *key, int64_t def, int64_t lo,
               int64_t hi, int64_t *out, lra_err *err) {
    const lra_kv *kv = lra_kv_find(params, n_params, key);
    if (!kv) {
        *out = def;
        return LRA_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(kv->value, &end, 10);
    if (errno || end == kv->value || *end || v < lo || v > hi)
        return lra_err_set(err, LRA_EINVAL, "%s: %s%s%s: expected an integer in [%lld, %lld], got '%s'", lra_kv_where(kv),
                           task, DOT(task), key, (long long)lo, (long long)hi, kv->value);
    *out = v;
    return LRA_OK;
}

int lra_kv_double(const lra_kv *params, int n_params, const char *task, const char *key, double def, double lo,
                  double hi, double *out, lra_err *err) {
    const lra_kv *kv = lra_kv_find(params, n_params, key);
    if (!kv) {
        *out = def;
        return LRA_OK;
    }
    char *end;
    errno = 0;
    double v = strtod(kv->value, &end);
    if (errno || end == kv->value || *end || !isfinite(v) || v < lo || v > hi)
        return lra_err_set(err, LRA_EINVAL, "%s: %s%s%s: expected a number in [%g, %g], got '%s'", lra_kv_where(kv), task,
                           DOT(task), key, lo, hi, kv->value);
    *out = v;
    return LRA_OK;
}

int lra_kv_choice(const lra_kv *params, int n_params, const char *task, const char *key, int def,
                  const char *const *choices, int *out, lra_err *err) {
    const lra_kv *kv = lra_kv_find(params, n_params, key);
    if (!kv) {
        *out = def;
        return LRA_OK;
    }
    char list[512] = "";
    for (int i = 0; choices[i]; i++) {
        if (strcmp(choices[i], kv->value) == 0) {
            *out = i;
            return LRA_OK;
        }
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    return lra_err_set(err, LRA_EINVAL, "%s: %s%s%s: unknown value '%s' (choices: %s)", lra_kv_where(kv), task, DOT(task), key,
                       kv->value, list);
}

int lra_kv_string(const lra_kv *params, int n_params, const char *key, const char *def, const char **out) {
    const lra_kv *kv = lra_kv_find(params, n_params, key);
    *out = kv ? kv->value : def;
    return LRA_OK;
}

int lra_kv_bool(const lra_kv *params, int n_params, const char *task, const char *key, int def, int *out,
                lra_err *err) {
    static const char *const choices[] = { "false", "true", "no", "yes", "0", "1", NULL };
    int i, rc = lra_kv_choice(params, n_params, task, key, def, choices, &i, err);
    if (!rc) *out = lra_kv_find(params, n_params, key) ? i % 2 : def;
    return rc;
}

int lra_kv_split(char *buf, lra_kv *kv, int cap, const char *where) {
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || n == cap) return -1;
        *eq = 0;
        kv[n++] = (lra_kv){ tok, eq + 1, where };
    }
    return n;
}
