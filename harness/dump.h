// dump.h: the `lra dump` command: one reference bundle (models/checkpoint.h)
// for a model config, a task and a seed.
#ifndef LRA_DUMP_CMD_H
#define LRA_DUMP_CMD_H

#include "../backends/core.h"

int lra_cmd_dump(int argc, char **argv, lra_err *err);

#endif // LRA_DUMP_CMD_H
