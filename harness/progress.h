// progress.h: a progress bar on a terminal, plain log lines otherwise.
#ifndef LRA_PROGRESS_H
#define LRA_PROGRESS_H

#include <stdint.h>

typedef struct {
    const char *label;     // "generating listops"
    double      t_start;   // seconds (monotonic)
    double      t_last;    // last print
    int         tty;       // stderr is a terminal
    int         last_pct;  // last percentage logged (non-terminal mode)
} lra_progress;

void   lra_progress_init(lra_progress *p, const char *label);
// Matches lra_progress_fn: ctx is an lra_progress.
void   lra_progress_update(void *ctx, int64_t done, int64_t total);
void   lra_progress_finish(lra_progress *p, int64_t total);
double lra_now(void);

#endif // LRA_PROGRESS_H
