// bench.h: the `lra bench` command (layer benchmark).
#ifndef LRA_BENCH_CMD_H
#define LRA_BENCH_CMD_H

#include "../backends/core.h"

int lra_cmd_bench(int argc, char **argv, lra_err *err);

#endif // LRA_BENCH_CMD_H
