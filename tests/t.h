// t.h: the test runner. Each tests/test_*.c is one program with a table of
// cases; it prints one line per case and closes with
//   N passed, N failed, N skipped
// and exits 1 when anything failed. tests/run.sh adds up all programs.
// Usage:
//   static void test_x(void) { T_CHECK(1 + 1 == 2, "arithmetic"); }
//   static const t_case cases[] = { { "x/basic", test_x }, };
//   T_MAIN(cases)
// A case filter may be given as argv[1] (substring match on the name).
#ifndef LRA_T_H
#define LRA_T_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} t_case;

// runner state of the case being run (tests only; never in the library)
extern int         t_case_failures;
extern const char *t_case_skip;

void t_fail_at(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int t_main(int argc, char **argv, const t_case *cases, int n_cases);

// Files for tests of loaders: a fresh directory /tmp/lra_<prefix>_XXXXXX
// written into dir (cap >= 64), its removal, and a file dir/name of n bytes.
// Failures fail the current case.
void t_tmpdir(char *dir, size_t cap, const char *prefix);
void t_rm_tree(const char *dir);
void t_write_file(const char *dir, const char *name, const void *bytes, size_t n);

// Progress callback (lra_progress_fn) for export tests: ctx is int64_t[3]
// receiving the number of calls, the last done and the last total.
void t_progress_record(void *ctx, int64_t done, int64_t total);
// qsort comparator of uint64_t values (hashes of examples).
int t_cmp_u64(const void *a, const void *b);

#define T_CHECK(cond, ...) do { if (!(cond)) t_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define T_SKIP(reason) do { t_case_skip = (reason); return; } while (0)
#define T_MAIN(cases) \
    int main(int argc, char **argv) { return t_main(argc, argv, cases, (int)(sizeof cases / sizeof cases[0])); }

#endif // LRA_T_H
