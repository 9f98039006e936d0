// main.c: the `lra` command. Parses the command line, dispatches to a command
// and turns an lra_err into a message and an exit status (the only place
// that exits). Exit status: 0 success, 1 error while running, 2 usage error.
#include "../backends/backend.h"
#include "args.h"
#include "data.h"
#include "bench.h"
#include "demo.h"
#include "dump.h"
#include "run.h"
#include "table.h"
#include "plot.h"
#include "regress.h"
#include "report.h"

#include <math.h>
#include <string.h>

static const char usage[] =
    "usage: lra <command> [options]\n"
    "\n"
    "commands:\n"
    "  sweep      train every run of an experiment config (YAML; without a file the built-in\n"
    "             quick experiment), record them in the results database and print a table\n"
    "             ('lra sweep --help')\n"
    "  run        the same for a config that is one run\n"
    "  runs       list recorded runs ('lra runs --help')\n"
    "  demo       train and evaluate the built-in demo experiment (a long-convolution\n"
    "             classifier on a synthetic long-range task) and print its results\n"
    "  data       the LRA tasks: list, show an example, build the cache, export to the\n"
    "             official file formats ('lra data help')\n"
    "  dump       write one reference bundle (weights, inputs, logits, loss, gradients) of a\n"
    "             model on a task, for checks against other frameworks ('lra dump' for help)\n"
    "  bench      time forward+backward and measure peak memory of one block per mixer\n"
    "             over sequence lengths ('lra bench --help')\n"
    "  table      LRA Table 1 (accuracy per task beside the published rows) and Table 2\n"
    "             (speed and memory relative to attention) from the results database\n"
    "             ('lra table --help')\n"
    "  plot       speed and memory against sequence length per mixer, or training\n"
    "             curves, as PNG or SVG through gnuplot ('lra plot --help')\n"
    "  regress    compare a benchmark or accuracy set with a baseline (U test, threshold);\n"
    "             exit status 1 on a regression ('lra regress --help')\n"
    "  report     one self-contained HTML page of a results database: tables, plots,\n"
    "             runs, benchmark comparisons ('lra report --help')\n"
    "  backends   list the compute backends, whether each is available, and its ops\n"
    "  help       show this message\n"
    "\n"
    "demo options:\n"
    "  --backend NAME   cpu (default) or cuda\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --steps N        training steps (default 400)\n"
    "  --batch N        batch size (default 16)\n"
    "  --length N       sequence length L (default 1024)\n"
    "  --width N        model width D (default 16)\n"
    "  --lr X           AdamW learning rate (default 0.02)\n"
    "  --seed N         seed of data and initialisation (default 1)\n";

static const char *const demo_options[] = { "--backend", "--threads", "--steps", "--batch", "--length",
                                            "--width", "--lr", "--seed", NULL };

static int parse_demo_args(int argc, char **argv, lra_demo_config *cfg, lra_err *err) {
    lra_demo_defaults(cfg);
    int i = 0;
    while (i < argc) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = lra_arg_option(o, v, demo_options, "lra demo", err), iv = 0;
        if (rc) return rc;
        if (!strcmp(o, "--backend")) cfg->backend = v;
        else if (!strcmp(o, "--threads")) rc = lra_arg_int(o, v, 0, &cfg->threads, err);
        else if (!strcmp(o, "--steps")) rc = lra_arg_int(o, v, 1, &cfg->steps, err);
        else if (!strcmp(o, "--batch")) rc = lra_arg_int(o, v, 1, &cfg->batch, err);
        else if (!strcmp(o, "--length")) rc = lra_arg_int(o, v, 2, &cfg->length, err);
        else if (!strcmp(o, "--width")) rc = lra_arg_int(o, v, 1, &cfg->width, err);
        else if (!strcmp(o, "--seed")) { rc = lra_arg_int(o, v, 0, &iv, err); cfg->seed = (uint64_t)iv; }
        else if (!strcmp(o, "--lr")) {
            char *end;
            cfg->lr = strtof(v, &end);
            if (*end || end == v || !(cfg->lr > 0) || !isfinite(cfg->lr))
                rc = lra_err_set(err, LRA_EUSAGE, "--lr: expected a positive number, got '%s'", v);
        }
        if (rc) return rc;
        i += 2;
    }
    return LRA_OK;
}

static int cmd_demo(int argc, char **argv, lra_err *err) {
    lra_demo_config cfg;
    int rc = parse_demo_args(argc, argv, &cfg, err);
    return rc ? rc : lra_demo_run(&cfg, err);
}

static int cmd_backends(lra_err *err) {
    (void)err;
    printf("%-10s %-10s %s\n", "name", "available", "device / reason");
    for (int i = 0; i < lra_backend_count(); i++) {
        const char *name = lra_backend_name(i);
        lra_err e = {0};
        lra_backend *be = lra_backend_init(name, 0, &e);
        if (!be) {
            printf("%-10s %-10s %s\n", name, "no", e.msg);
            continue;
        }
        const char *missing[128];
        int n = lra_backend_missing(be, missing, 128);
        printf("%-10s %-10s %s; %d of %d ops\n", name, "yes", be->device, lra_backend_op_count() - n,
               lra_backend_op_count());
        for (int j = 0; j < n && j < 128; j++) printf("         missing op: %s\n", missing[j]);
        lra_backend_free(be);
    }
    return LRA_OK;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    lra_err err = {0};
    int rc;
    if (!strcmp(argv[1], "demo")) rc = cmd_demo(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "sweep")) rc = lra_cmd_run(argc - 2, argv + 2, 1, &err);
    else if (!strcmp(argv[1], "run")) rc = lra_cmd_run(argc - 2, argv + 2, 0, &err);
    else if (!strcmp(argv[1], "runs")) rc = lra_cmd_runs(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "backends")) rc = cmd_backends(&err);
    else if (!strcmp(argv[1], "data")) rc = lra_cmd_data(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "bench")) rc = lra_cmd_bench(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "dump")) rc = lra_cmd_dump(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "table")) rc = lra_cmd_table(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "plot")) rc = lra_cmd_plot(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "regress")) rc = lra_cmd_regress(argc - 2, argv + 2, &err);
    else if (!strcmp(argv[1], "report")) rc = lra_cmd_report(argc - 2, argv + 2, &err);
    else {
        fprintf(stderr,
                "lra: unknown command '%s' (commands: sweep, run, runs, demo, data, dump, bench, table, plot, regress, "
                "report, backends, help)\n",
                argv[1]);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "lra %s: %s%s\n", argv[1], rc == LRA_EINTR ? "" : "error: ", err.msg);
        return rc == LRA_EUSAGE ? 2 : rc == LRA_EINTR ? 130 : 1;
    }
    return 0;
}
