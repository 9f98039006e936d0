// run.h: `lra run`, `lra sweep` and `lra runs`.
#ifndef LRA_RUN_H
#define LRA_RUN_H

#include "../backends/core.h"

// The built-in experiment (experiments/quick/default.yaml, compiled in).
extern const char lra_default_experiment[];

int lra_cmd_run(int argc, char **argv, int sweep, lra_err *err);
int lra_cmd_runs(int argc, char **argv, lra_err *err);

#endif // LRA_RUN_H
