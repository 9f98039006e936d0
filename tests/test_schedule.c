// test_schedule.c: learning-rate schedules against hand-computed values of the
// reference formulas (LRA rsqrt peaks, cosine/linear end points and midpoints).
#include "../models/schedule.h"
#include "t.h"

#include <math.h>

static int near(double a, double b) { return fabs(a - b) <= 1e-12 * (1 + fabs(b)); }

static void test_constant(void) {
    lra_schedule s = { LRA_SCHED_CONSTANT, 4, 0, 0.0, 0.0 };
    lra_err e = {0};
    T_CHECK(lra_schedule_check(&s, &e) == LRA_OK, "%s", e.msg);
    T_CHECK(near(lra_schedule_factor(&s, 0), 0) && near(lra_schedule_factor(&s, 2), 0.5), "warmup ramp");
    T_CHECK(near(lra_schedule_factor(&s, 4), 1) && near(lra_schedule_factor(&s, 1000000), 1), "flat after");
    s.warmup_steps = 0;
    T_CHECK(near(lra_schedule_factor(&s, 0), 1), "no warmup: 1 from step 0");
}

static void test_cosine(void) {
    // 10 warmup steps from 1e-3, cosine over 90 more to 0.1
    lra_schedule s = { LRA_SCHED_COSINE, 10, 100, 1e-3, 0.1 };
    lra_err e = {0};
    T_CHECK(lra_schedule_check(&s, &e) == LRA_OK, "%s", e.msg);
    T_CHECK(near(lra_schedule_factor(&s, 0), 1e-3), "warmup starts at warmup_init");
    T_CHECK(near(lra_schedule_factor(&s, 5), 1e-3 + (1 - 1e-3) * 0.5), "warmup midpoint");
    T_CHECK(near(lra_schedule_factor(&s, 10), 1), "peak at the end of warmup");
    T_CHECK(near(lra_schedule_factor(&s, 55), 0.1 + 0.9 * 0.5), "cosine midpoint = (1 + min) / 2");
    T_CHECK(near(lra_schedule_factor(&s, 100), 0.1) && near(lra_schedule_factor(&s, 500), 0.1), "ends at min");
    double prev = 2;
    int mono = 1;
    for (int64_t t = 10; t <= 100; t++) { double f = lra_schedule_factor(&s, t); mono &= f <= prev; prev = f; }
    T_CHECK(mono, "non-increasing after warmup");
    T_CHECK(near(lra_schedule_factor(&s, 32), 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 22.0 / 90.0))), "formula");
}

static void test_linear(void) {
    lra_schedule s = { LRA_SCHED_LINEAR, 3000, 90000, 0, 0 };  // MEGA ListOps: 90k updates, 3k warmup
    T_CHECK(near(lra_schedule_factor(&s, 1500), 0.5), "warmup");
    T_CHECK(near(lra_schedule_factor(&s, 3000), 1), "peak");
    T_CHECK(near(lra_schedule_factor(&s, 46500), 0.5), "halfway down");
    T_CHECK(near(lra_schedule_factor(&s, 90000), 0), "zero at the end");
}

static void test_rsqrt(void) {
    // LRA ListOps: base 0.05, warmup 1000 -> peak 0.05 / sqrt(1000) = 1.58e-3 (lra.md 1.7)
    lra_schedule s = { LRA_SCHED_RSQRT, 1000, 0, 0, 0 };
    lra_err e = {0};
    T_CHECK(lra_schedule_check(&s, &e) == LRA_OK, "%s", e.msg);
    T_CHECK(fabs(0.05 * lra_schedule_factor(&s, 1000) - 1.5811388300841896e-3) < 1e-15, "peak lr");
    T_CHECK(near(lra_schedule_factor(&s, 500), 0.5 / sqrt(1000.0)), "warmup half way");
    T_CHECK(near(lra_schedule_factor(&s, 4000), 1 / sqrt(4000.0)), "rsqrt decay");
    T_CHECK(near(lra_schedule_factor(&s, 0), 0), "zero at step 0");
    s.warmup_steps = 8000;  // Text: 0.05 / sqrt(8000) = 5.6e-4
    T_CHECK(fabs(0.05 * lra_schedule_factor(&s, 8000) - 5.5901699437494743e-4) < 1e-15, "text peak");
}

static void test_errors(void) {
    lra_err e = {0};
    lra_schedule s = { LRA_SCHED_COSINE, 200, 100, 0, 0 };
    T_CHECK(lra_schedule_check(&s, &e) == LRA_EINVAL, "warmup past the end");
    T_CHECK(strcmp(e.msg, "schedule.warmup_steps: 200 exceeds total_steps 100") == 0, "%s", e.msg);
    s = (lra_schedule){ LRA_SCHED_RSQRT, 0, 0, 0, 0 };
    T_CHECK(lra_schedule_check(&s, &e) == LRA_EINVAL, "rsqrt without warmup");
    s = (lra_schedule){ LRA_SCHED_LINEAR, 0, 10, 0, 1.5 };
    T_CHECK(lra_schedule_check(&s, &e) == LRA_EINVAL, "min ratio");
    T_CHECK(strcmp(e.msg, "schedule.min_ratio: expected a ratio in [0, 1], got 1.5") == 0, "%s", e.msg);
    lra_sched_kind k;
    T_CHECK(lra_schedule_kind("cosine", &k, &e) == LRA_OK && k == LRA_SCHED_COSINE, "by name");
    T_CHECK(lra_schedule_kind("step", &k, &e) == LRA_EINVAL, "unknown");
    T_CHECK(strcmp(e.msg, "unknown schedule 'step' (known: constant, cosine, linear, rsqrt)") == 0, "%s", e.msg);
}

static const t_case cases[] = {
    { "schedule/constant", test_constant },
    { "schedule/cosine", test_cosine },
    { "schedule/linear", test_linear },
    { "schedule/rsqrt", test_rsqrt },
    { "schedule/errors", test_errors },
};
T_MAIN(cases)
