// data.h: the `lra data` command.
#ifndef LRA_DATA_CMD_H
#define LRA_DATA_CMD_H

#include "../tasks/task.h"

int lra_cmd_data(int argc, char **argv, lra_err *err);

#endif // LRA_DATA_CMD_H
