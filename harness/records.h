// records.h: what runs write into the results database (harness/db.h):
// sweep rows, claiming a run (several processes may work through one sweep),
// buffered metric rows, progress, the final status and performance.
#ifndef LRA_RECORDS_H
#define LRA_RECORDS_H

#include "buildinfo.h"
#include "db.h"
#include "experiment.h"

// What to do with a sweep point (lra_rec_claim).
typedef enum {
    LRA_CLAIM_FRESH = 0,   // a new run row: train from the start
    LRA_CLAIM_RESUME,      // an interrupted run taken over: continue from its checkpoint
    LRA_CLAIM_SKIP,        // done already, or running in a live process
} lra_claim;

typedef struct {
    char   split[8];       // train | val | test
    int64_t step, examples;
    double loss, acc, lr, grad_norm, elapsed_s;
    int    has_lr;         // train rows carry lr and grad_norm
} lra_metric_row;

// Speed and memory of one phase of a run (perf table).
typedef struct {
    int64_t steps, tokens;
    double  seconds;
    double  ms_mean, ms_min, ms_p10, ms_p50, ms_p90, ms_max;
    int64_t peak_backend_bytes, peak_rss_bytes;
} lra_perf;

// The run row's changing fields.
typedef struct {
    int64_t step, best_step;   // best_step < 0: no validation yet
    double  best_val_acc, best_val_loss, test_acc, test_loss, train_loss;
    char    checkpoint[1100], best_checkpoint[1100];
} lra_run_progress;

typedef struct {
    lra_db         *db;
    int64_t         run_id;
    lra_metric_row *rows;      // buffered until lra_rec_flush
    int             n_rows, cap_rows;
} lra_rec;

// The sweep row of an invocation: with resume the latest row of the same
// name and runs is reused, else a new one is made.
int lra_rec_sweep(lra_db *db, const lra_experiment *e, const lra_run_spec *runs, int64_t n_runs, int resume,
                  int64_t *sweep_id, lra_err *err);
// Claims sweep point r for this process in one transaction. Without resume a
// new run row is always made. With resume: a done or diverged run with the
// same hash is skipped, as is one running in a live process; an interrupted
// or failed one (or one whose process died) is taken over: *checkpoint is its
// last checkpoint ("" when it has none: train from the start).
int lra_rec_claim(lra_db *db, int64_t sweep_id, const char *sweep_name, const lra_run_spec *r, int resume,
                  lra_claim *claim, int64_t *run_id, char *checkpoint, size_t cap, char *why, size_t why_cap,
                  lra_err *err);
// Device, threads and parameter count once the model is built.
int lra_rec_started(lra_rec *rec, const char *device, int threads, int64_t n_params, lra_err *err);
// Drops metric rows after step (a run resumed from a checkpoint at step).
int lra_rec_truncate(lra_rec *rec, int64_t step, lra_err *err);
// Buffers a metric row.
int lra_rec_metric(lra_rec *rec, const lra_metric_row *row, lra_err *err);
// Writes the buffered rows and the progress in one transaction.
int lra_rec_flush(lra_rec *rec, const lra_run_progress *p, lra_err *err);
// Final status (done, failed, diverged, interrupted), message and perf rows
// (NULL or steps == 0: none), with the buffered rows, in one transaction.
int lra_rec_finish(lra_rec *rec, const char *status, const char *error, const lra_run_progress *p,
                   const lra_perf *train, const lra_perf *eval, lra_err *err);
void lra_rec_free(lra_rec *rec);

// Host name ("unknown" when it cannot be read).
void lra_host_name(char *out, size_t cap);

#endif // LRA_RECORDS_H
