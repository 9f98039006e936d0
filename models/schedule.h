// schedule.h: learning-rate schedules of the reference implementations, as a
// factor of each parameter group's base learning rate (the same shape scales
// every group, as timm and optax do for the SSM and no-decay groups).
//
// Steps are 0-based: step 0 is the first update. With a warmup, step 0 gets
// the warmup's initial factor (0 in LRA, transformers and timm with lr_init 0).
#ifndef LRA_SCHEDULE_H
#define LRA_SCHEDULE_H

#include "../backends/core.h"

typedef enum {
    LRA_SCHED_CONSTANT = 0,  // 1 after the warmup
    LRA_SCHED_COSINE,        // warmup, then half a cosine from 1 to min_ratio at total_steps (S4, S5, LRU)
    LRA_SCHED_LINEAR,        // warmup, then a straight line from 1 to min_ratio at total_steps (MEGA)
    LRA_SCHED_RSQRT,         // LRA: min(1, step/warmup) / sqrt(max(step, warmup)), not normalised
    LRA_SCHED_COUNT
} lra_sched_kind;
extern const char *const lra_sched_names[LRA_SCHED_COUNT];  // "constant", "cosine", "linear", "rsqrt"

typedef struct {
    lra_sched_kind kind;
    int64_t warmup_steps;   // linear warmup length; 0 = none (rsqrt needs >= 1)
    int64_t total_steps;    // end of the decay (cosine, linear); later steps keep min_ratio
    double  warmup_init;    // factor at step 0 of the warmup (LRU and MEGA start at 1e-7 / lr)
    double  min_ratio;      // factor at the end of the decay (cosine, linear)
} lra_schedule;

// Checks the fields: warmup_steps <= total_steps for cosine and linear,
// warmup_steps >= 1 for rsqrt, ratios in [0, 1]. Messages name the field.
int lra_schedule_check(const lra_schedule *s, lra_err *err);
// The factor at a step; multiply a group's base learning rate by it.
double lra_schedule_factor(const lra_schedule *s, int64_t step);
// Kind by name; an unknown name lists the known ones.
int lra_schedule_kind(const char *name, lra_sched_kind *out, lra_err *err);

#endif // LRA_SCHEDULE_H
