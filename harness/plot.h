// plot.h: `lra plot`: figures from the results database through gnuplot
// (PNG with pngcairo, SVG with svg): speed and peak memory against sequence
// length per mixer (log-log), and training curves of selected runs.
#ifndef LRA_PLOT_H
#define LRA_PLOT_H

#include "db.h"

#define LRA_PLOT_MAX_RUNS 16

typedef struct {
    const char *sweep;              // NULL: every sweep
    const char *kind;               // "scaling" or "curves"
    const char *task;               // scaling: the task whose perf rows are plotted (default "text")
    const char *bench;              // scaling: a bench set (name or @ID) instead of the runs' perf rows
    const char *metric;             // scaling: "tokens" (tokens/s, default) or "steps" (steps/s)
    int64_t     runs[LRA_PLOT_MAX_RUNS];
    int         n_runs;             // curves: 0 = the first runs of the sweep that have metrics
    int         width, height;      // pixels (default 960 x 400)
} lra_plot_opts;

void lra_plot_defaults(lra_plot_opts *o);
// Writes the figure to out; the format follows its extension (.png or .svg).
// An LRA_EUNSUPPORTED error when gnuplot is not installed.
int lra_plot(lra_db *db, const lra_plot_opts *o, const char *out, lra_err *err);

int lra_cmd_plot(int argc, char **argv, lra_err *err);

#endif // LRA_PLOT_H
