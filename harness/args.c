// args.c: see args.h.
#include "args.h"

#include <errno.h>
#include <limits.h>

int lra_arg_int64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, lra_err *err) {
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (s && !errno && end != s && !*end && v >= lo && v <= hi) {
        *out = v;
        return LRA_OK;
    }
    if (lo == 0 || lo == 1)
        return lra_err_set(err, LRA_EINVAL, "%s: expected a %s integer, got '%s'", opt,
                           lo ? "positive" : "non-negative", s ? s : "");
    return lra_err_set(err, LRA_EINVAL, "%s: expected an integer >= %lld, got '%s'", opt, (long long)lo, s ? s : "");
}

int lra_arg_int(const char *opt, const char *s, int lo, int *out, lra_err *err) {
    int64_t v;
    int rc = lra_arg_int64(opt, s, lo, 1 << 30, &v, err);
    if (!rc) *out = (int)v;
    return rc;
}
