// schedule.c: see schedule.h. Formulas:
//   warmup (step < W):  f = init + (1 - init) step / W
//   cosine (transformers get_cosine_schedule_with_warmup, timm CosineLRScheduler):
//       p = (step - W) / (T - W) clamped to [0, 1],  f = m + (1 - m) (1 + cos(pi p)) / 2
//   linear (transformers get_linear_schedule_with_warmup, fairseq polynomial_decay with power 1):
//       f = m + (1 - m) (1 - p)
//   rsqrt (LRA train_utils.create_learning_rate_scheduler, "constant * linear_warmup * rsqrt_decay"):
//       f = min(1, step / W) / sqrt(max(step, W))
#include "schedule.h"

#include <math.h>
#include <string.h>

const char *const lra_sched_names[LRA_SCHED_COUNT] = { "constant", "cosine", "linear", "rsqrt" };

int lra_schedule_check(const lra_schedule *s, lra_err *err) {
    if ((unsigned)s->kind >= LRA_SCHED_COUNT)
        return lra_err_set(err, LRA_EINVAL, "schedule: unknown kind %d", (int)s->kind);
    if (s->warmup_steps < 0) return lra_err_set(err, LRA_EINVAL, "schedule.warmup_steps: must be >= 0");
    if (s->kind == LRA_SCHED_RSQRT && s->warmup_steps < 1)
        return lra_err_set(err, LRA_EINVAL, "schedule.warmup_steps: rsqrt needs a warmup of at least 1 step");
    if ((s->kind == LRA_SCHED_COSINE || s->kind == LRA_SCHED_LINEAR) && s->warmup_steps > s->total_steps)
        return lra_err_set(err, LRA_EINVAL, "schedule.warmup_steps: %lld exceeds total_steps %lld",
                           (long long)s->warmup_steps, (long long)s->total_steps);
    if (!(s->warmup_init >= 0 && s->warmup_init <= 1))
        return lra_err_set(err, LRA_EINVAL, "schedule.warmup_init: expected a ratio in [0, 1], got %g", s->warmup_init);
    if (!(s->min_ratio >= 0 && s->min_ratio <= 1))
        return lra_err_set(err, LRA_EINVAL, "schedule.min_ratio: expected a ratio in [0, 1], got %g", s->min_ratio);
    return LRA_OK;
}

// progress through the decay phase, in [0, 1]
static double sched_progress(const lra_schedule *s, int64_t step) {
    int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0) return 1.0;
    double p = (double)(step - s->warmup_steps) / (double)span;
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

double lra_schedule_factor(const lra_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    int64_t W = s->warmup_steps;
    if (s->kind == LRA_SCHED_RSQRT) {
        double ramp = step < W ? (double)step / (double)W : 1.0;
        return ramp / sqrt((double)(step > W ? step : W));
    }
    if (step < W) return s->warmup_init + (1.0 - s->warmup_init) * (double)step / (double)W;
    double m = s->min_ratio, p = sched_progress(s, step);
    switch (s->kind) {
    case LRA_SCHED_COSINE: return m + (1.0 - m) * 0.5 * (1.0 + cos(M_PI * p));
    case LRA_SCHED_LINEAR: return m + (1.0 - m) * (1.0 - p);
    default: return 1.0;
    }
}

int lra_schedule_kind(const char *name, lra_sched_kind *out, lra_err *err) {
    for (int i = 0; i < LRA_SCHED_COUNT; i++)
        if (!strcmp(name, lra_sched_names[i])) {
            *out = (lra_sched_kind)i;
            return LRA_OK;
        }
    return lra_err_set(err, LRA_EINVAL, "unknown schedule '%s' (known: constant, cosine, linear, rsqrt)", name);
}
