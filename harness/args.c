// args.c: see args.h.
#include "args.h"

#include <errno.h>
#include <string.h>

int lra_arg_int64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, lra_err *err) {
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (s && !errno && end != s && !*end && v >= lo && v <= hi) {
        *out = v;
        return LRA_OK;
    }
    return lra_err_set(err, LRA_EUSAGE, "%s: expected an integer in [%lld, %lld], got '%s'", opt, (long long)lo,
                       (long long)hi, s ? s : "");
}

int lra_arg_int(const char *opt, const char *s, int lo, int *out, lra_err *err) {
    int64_t v;
    int rc = lra_arg_int64(opt, s, lo, 1 << 30, &v, err);
    if (!rc) *out = (int)v;
    return rc;
}

int lra_arg_option(const char *opt, const char *value, const char *const *known, const char *cmd, lra_err *err) {
    for (const char *const *k = known; *k; k++)
        if (!strcmp(*k, opt))
            return value ? LRA_OK : lra_err_set(err, LRA_EUSAGE, "%s: missing value", opt);
    return lra_err_set(err, LRA_EUSAGE, "unknown option '%s' for '%s' (see lra help)", opt, cmd);
}

int lra_arg_kv(const char *opt, char *v, lra_kv *kv, int *n, int cap, lra_err *err) {
    char *eq = strchr(v, '=');
    if (!eq || eq == v) return lra_err_set(err, LRA_EUSAGE, "%s: expected KEY=VALUE, got '%s'", opt, v);
    if (*n == cap) return lra_err_set(err, LRA_EUSAGE, "%s: too many values", opt);
    *eq = 0;
    kv[(*n)++] = (lra_kv){ v, eq + 1, opt };
    return LRA_OK;
}
