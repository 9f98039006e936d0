// demo.h: the built-in demo experiment (`lra demo`).
#ifndef LRA_DEMO_H
#define LRA_DEMO_H

#include "../backends/backend.h"

typedef struct {
    const char *backend;  // "cpu" or "cuda"
    int      threads;     // CPU threads, 0 = all cores
    int      steps;       // training steps
    int      batch;       // B
    int      length;      // L
    int      width;       // D
    int      eval_size;   // held-out examples
    float    lr;
    uint64_t seed;
} lra_demo_config;

void lra_demo_defaults(lra_demo_config *cfg);
// Trains and evaluates; prints progress and results to stdout. Returns LRA_OK
// or an error code with err filled.
int lra_demo_run(const lra_demo_config *cfg, lra_err *err);

#endif // LRA_DEMO_H
