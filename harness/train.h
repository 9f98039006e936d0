// train.h: the training loop of one run: AdamW steps with gradient
// accumulation, validation at intervals, the best-validation checkpoint and
// the test accuracy at it (the S4/DSS convention), early stopping, NaN/Inf
// detection, checkpoints to resume from, records in the database.
//
// Determinism: the examples of step s, the dropout stream of each
// micro-batch and the data order of each epoch are functions of (seed, s),
// so a run resumed from a checkpoint continues exactly as the uninterrupted
// run would (on the CPU backend).
#ifndef LRA_TRAIN_H
#define LRA_TRAIN_H

#include "experiment.h"
#include "records.h"
#include "../tasks/dataset.h"

#include <signal.h>

// What a checkpoint carries besides the model and optimiser.
typedef struct {
    int64_t step;                  // optimiser steps done
    int64_t best_step;             // step of the best validation accuracy, -1: none yet
    double  best_val_acc, best_val_loss, test_acc, test_loss;
    int     evals_since_best;      // validations since the best (early stopping)
    double  sum_loss, sum_correct, sum_gnorm;  // training statistics since the last logged row
    int64_t n_examples, n_steps;
    double  train_loss;            // mean loss of the last logged row
    double  elapsed;               // wall seconds of the run before this process
} lra_train_state;

typedef enum { LRA_TRAIN_DONE = 0, LRA_TRAIN_DIVERGED, LRA_TRAIN_INTERRUPTED } lra_train_outcome;

typedef struct {
    lra_rec                     *rec;
    const char                  *ckpt_last, *ckpt_best;  // checkpoint paths
    const volatile sig_atomic_t *stop;                   // nonzero: stop at the next step (SIGINT/SIGTERM)
    const char                  *label;                  // run name for progress lines
    int                          progress;               // print progress on stderr
    // Fault injection for tests of divergence handling (LRA_DEBUG_NAN=STEP:PARAM):
    // the gradient of PARAM becomes NaN at step nan_step (0 = never).
    int64_t                      nan_step;
    const char                  *nan_param;
} lra_train_io;

typedef struct {
    lra_train_outcome outcome;
    int               early_stopped;
    char              why[512];     // diverged: the step and the first non-finite tensor
    lra_perf          train, eval;  // of this process
} lra_train_result;

void lra_train_state_init(lra_train_state *st);
// Loads a checkpoint written by lra_train (model, optimiser, state) into m,
// built from the same config; the run hash must match.
int lra_train_load(lra_model *m, const char *path, const char *hash, lra_train_state *st, lra_err *err);
// Trains from st (fresh: lra_train_state_init) to the end of the run, an
// early stop, a divergence or a stop request.
int lra_train(const lra_run_spec *r, lra_model *m, const lra_dataset *ds, lra_train_state *st,
              const lra_train_io *io, lra_train_result *res, lra_err *err);

#endif // LRA_TRAIN_H
