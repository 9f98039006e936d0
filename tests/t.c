// t.c: the test runner (see t.h).
#include "t.h"

#include <stdarg.h>
#include <time.h>

int         t_case_failures;
const char *t_case_skip;
static const char *t_case_name;

void t_fail_at(const char *file, int line, const char *fmt, ...) {
    t_case_failures++;
    if (t_case_failures > 10) return;  // one broken kernel should not flood the log
    fprintf(stdout, "    %s:%d: %s: ", file, line, t_case_name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

int t_main(int argc, char **argv, const t_case *cases, int n_cases) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_cases; i++) {
        if (filter && !strstr(cases[i].name, filter)) continue;
        t_case_name = cases[i].name;
        t_case_failures = 0;
        t_case_skip = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
        if (t_case_failures) {
            failed++;
            printf("FAIL %s (%d checks failed)\n", cases[i].name, t_case_failures);
        } else if (t_case_skip) {
            skipped++;
            printf("skip %s (%s)\n", cases[i].name, t_case_skip);
        } else {
            passed++;
            printf("ok   %s (%.0f ms)\n", cases[i].name, ms);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
