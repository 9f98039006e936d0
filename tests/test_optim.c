// test_optim.c: AdamW against the update rule written out in double, per-group
// learning rates and decay, untouched elements outside every group, and
// global-norm clipping.
#include "check.h"

#include <math.h>

static void test_adamw(void) {
    lra_backend *be = t_backend();
    const int64_t n = 23;
    lra_real *p = t_guarded(n), *g = t_guarded(n), *m = t_guarded(n), *v = t_guarded(n);
    double rp[23], rm[23] = {0}, rv[23] = {0};
    t_rand_fill(p, n, 1, -1, 1);
    be->fill(be, m, 0, n);
    be->fill(be, v, 0, n);
    for (int i = 0; i < n; i++) rp[i] = p[i];
    // group 0: [0, 10) decayed; group 1: [10, 20) ssm, own lr, no decay; [20, 23) frozen
    lra_param_group groups[2] = { { 0, 10, 1e-2f, 0.1f }, { 10, 10, 3e-3f, 0.0f } };
    const double b1 = 0.9, b2 = 0.98, eps = 1e-8;
    for (int t = 1; t <= 5; t++) {
        t_rand_fill(g, n, 100 + (uint64_t)t, -1, 1);
        be->adamw_step(be, p, g, m, v, groups, 2, (float)b1, (float)b2, (float)eps, t);
        for (int i = 0; i < 20; i++) {
            double lr = i < 10 ? 1e-2 : 3e-3, wd = i < 10 ? 0.1 : 0.0;
            double lr_f = (float)lr, wd_f = (float)wd;  // the group holds floats
            (void)lr; (void)wd;
            rm[i] = b1 * rm[i] + (1 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1 - b2) * (double)g[i] * g[i];
            double mh = rm[i] / (1 - pow(b1, t)), vh = rv[i] / (1 - pow(b2, t));
            rp[i] = rp[i] - lr_f * wd_f * rp[i] - lr_f * mh / (sqrt(vh) + eps);
        }
    }
    t_close("adamw params", p, rp, n, 1e-6);
    t_close("adamw m", m, rm, 20, 1e-6);
    t_close("adamw v", v, rv, 20, 1e-6);
    T_CHECK(m[20] == 0 && v[22] == 0, "state outside groups untouched");
    t_guard_ok(p, "p"); t_guard_ok(m, "m"); t_guard_ok(v, "v");
    t_guarded_free(p); t_guarded_free(g); t_guarded_free(m); t_guarded_free(v);
}

static void test_adamw_first_step(void) {
    // closed form: at t = 1 with wd = 0 every parameter moves by lr * sign(g)
    // (up to eps), whatever the gradient's magnitude
    lra_backend *be = t_backend();
    lra_real p[4] = { 0, 0, 0, 0 }, g[4] = { 3, -1e-3f, 0.5f, -20 }, m[4] = {0}, v[4] = {0};
    lra_param_group grp = { 0, 4, 0.01f, 0 };
    be->adamw_step(be, p, g, m, v, &grp, 1, 0.9f, 0.999f, 1e-12f, 1);
    double want[4] = { -0.01, 0.01, -0.01, 0.01 };
    t_close("adamw first step = -lr sign(g)", p, want, 4, 1e-5);
}

static void test_clip(void) {
    lra_backend *be = t_backend();
    const int64_t n = 1000;
    lra_real *g = t_guarded(n);
    t_rand_fill(g, n, 7, -1, 1);
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss);
    double *want = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) want[i] = g[i];
    double got = be->clip_grad_norm(be, g, n, 2 * norm);  // below the limit: unchanged
    T_CHECK(fabs(got - norm) < 1e-6 * norm, "norm %g want %g", got, norm);
    t_close("no clipping below max_norm", g, want, n, 0);
    got = be->clip_grad_norm(be, g, n, 1.0);
    T_CHECK(fabs(got - norm) < 1e-6 * norm, "returns the norm before clipping");
    for (int64_t i = 0; i < n; i++) want[i] *= 1.0 / (norm + 1e-6);
    t_close("clipped to max_norm", g, want, n, T_FWD_TOL);
    T_CHECK(fabs(sqrt(be->sumsq(be, g, n)) - 1.0) < 1e-5, "new norm is 1");
    be->clip_grad_norm(be, g, n, 0);  // max_norm 0: measure only
    t_close("max_norm 0 leaves grads", g, want, n, T_FWD_TOL);
    t_guard_ok(g, "g");
    free(want);
    t_guarded_free(g);
}

static const t_case cases[] = {
    { "optim/adamw", test_adamw },
    { "optim/adamw_first_step", test_adamw_first_step },
    { "optim/clip", test_clip },
};
T_MAIN(cases)
