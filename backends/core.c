// core.c: error context and assertion failure.
#include "core.h"

#include <stdarg.h>

static const char *const lra_err_names[LRA_ECOUNT] = {
    "ok", "invalid argument", "i/o error", "out of memory", "unsupported", "database error", "usage error", "interrupted",
};

int lra_err_set(lra_err *e, int code, const char *fmt, ...) {
    if (e) {
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *lra_err_name(int code) {
    return (code >= 0 && code < LRA_ECOUNT) ? lra_err_names[code] : "unknown error";
}

void lra_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "%s:%d: internal error: assertion failed: %s\n", file, line, expr);
    abort();
}

int lra_fft_good_size(int min_n) {
    for (int n = min_n < 1 ? 1 : min_n;; n++) {
        int r = n;
        while (r % 2 == 0) r /= 2;
        while (r % 3 == 0) r /= 3;
        while (r % 5 == 0) r /= 5;
        while (r % 7 == 0) r /= 7;
        if (r == 1) return n;
    }
}
