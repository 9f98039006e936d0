// regress.h: `lra regress`: compares a new benchmark (or accuracy) set with
// a baseline, a named set in the results database or a CSV file committed
// under results/. Timings: the Mann-Whitney U test over the repeated samples
// (as Google Benchmark's compare.py does) and the ratio of the medians
// against a threshold; accuracies: the drop of the mean against a tolerance.
#ifndef LRA_REGRESS_H
#define LRA_REGRESS_H

#include "table.h"

typedef struct {
    double threshold;   // relative change of the median time that counts (default 0.05)
    double alpha;       // significance level of the U test (default 0.05)
    double tolerance;   // accuracy drop in points (%) that counts (default 2)
} lra_regress_opts;

void lra_regress_defaults(lra_regress_opts *o);

// Two-sided p-value of the Mann-Whitney U test of samples a (na) against b
// (nb): exact (no ties, na, nb <= 50) or the normal approximation with tie
// and continuity corrections. *min_p: the smallest p these sizes allow.
double lra_mann_whitney(const double *a, int na, const double *b, int nb, double *min_p);

// Compares the set `fresh` with `baseline` (each a set name in db or a CSV
// file; fresh NULL: the newest set of db other than the baseline; with
// fresh_sweep, fresh names a sweep whose done runs' test accuracies form the
// set) into g, counting the regressions in *n_regressions. db may be NULL
// when both are files.
int lra_regress(lra_db *db, const char *baseline, const char *fresh, int fresh_sweep, const lra_regress_opts *o,
                lra_grid *g, int *n_regressions, lra_err *err);

int lra_cmd_regress(int argc, char **argv, lra_err *err);

#endif // LRA_REGRESS_H
