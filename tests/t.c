// t.c: the test runner (see t.h).
#include "t.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
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

void t_tmpdir(char *dir, size_t cap, const char *prefix) {
    snprintf(dir, cap, "/tmp/lra_%s_XXXXXX", prefix);
    if (!mkdtemp(dir)) t_fail_at(__FILE__, __LINE__, "mkdtemp %s: %s", dir, strerror(errno));
}

static int t_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void t_rm_tree(const char *dir) { nftw(dir, t_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void t_write_file(const char *dir, const char *name, const void *bytes, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) t_fail_at(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
    if (f) fclose(f);
}

void t_progress_record(void *ctx, int64_t done, int64_t total) {
    int64_t *seen = ctx;
    seen[0]++;
    seen[1] = done;
    seen[2] = total;
}

int t_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
