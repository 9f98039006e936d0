// init.c: parameter specs, initial-value distributions (host side) and the
// activation bump allocator shared by every layer.
#include "layer.h"

#include <math.h>
#include <string.h>

const char *const lra_group_names[LRA_GROUP_COUNT] = { "decay", "no_decay", "ssm", "ssm_dt", "buffer", "ssm_decay" };

int64_t lra_spec_numel(const lra_param_spec *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
    return n;
}

int lra_spec_set(lra_param_spec *out, int n, const char *name, lra_group group, int ndim, const int64_t *shape) {
    LRA_ASSERT(ndim >= 1 && ndim <= 4 && strlen(name) < LRA_PARAM_NAME_MAX);
    if (out) {
        lra_param_spec *s = &out[n];
        memset(s, 0, sizeof *s);
        strcpy(s->name, name);
        s->ndim = ndim;
        s->group = group;
        for (int i = 0; i < ndim; i++) s->shape[i] = shape[i];
    }
    return n + 1;
}

double lra_init_uniform01(lra_init_rng *r) {
    return (double)(lra_rand_bits(r->seed, r->counter++) >> 11) * (1.0 / 9007199254740992.0);
}

double lra_init_normal01(lra_init_rng *r) {
    double u1 = lra_init_uniform01(r), u2 = lra_init_uniform01(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

void lra_init_const(lra_real *x, int64_t n, double value) {
    for (int64_t i = 0; i < n; i++) x[i] = (lra_real)value;
}

void lra_init_uniform(lra_real *x, int64_t n, lra_init_rng *r, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (lra_real)(lo + (hi - lo) * lra_init_uniform01(r));
}

void lra_init_normal(lra_real *x, int64_t n, lra_init_rng *r, double std) {
    for (int64_t i = 0; i < n; i++) x[i] = (lra_real)(std * lra_init_normal01(r));
}

void lra_init_trunc_normal(lra_real *x, int64_t n, lra_init_rng *r, double std) {
    for (int64_t i = 0; i < n; i++) {
        double z;
        do z = lra_init_normal01(r);
        while (fabs(z) > 2.0);
        x[i] = (lra_real)(std * z);
    }
}

void lra_init_xavier_uniform(lra_real *x, int64_t n, lra_init_rng *r, int fan_in, int fan_out) {
    double a = sqrt(6.0 / (fan_in + fan_out));
    lra_init_uniform(x, n, r, -a, a);
}

// The standard deviation of a unit normal truncated to [-2, 2] is 0.87962566:
// dividing by it gives variance exactly 1/fan_in after truncation (jax
// variance_scaling with "truncated_normal").
void lra_init_lecun_normal(lra_real *x, int64_t n, lra_init_rng *r, int fan_in) {
    lra_init_trunc_normal(x, n, r, sqrt(1.0 / fan_in) / 0.87962566103423978);
}

void lra_init_torch_linear(lra_real *x, int64_t n, lra_init_rng *r, int fan_in) {
    double a = 1.0 / sqrt((double)fan_in);
    lra_init_uniform(x, n, r, -a, a);
}

lra_real *lra_carve_take(lra_carve *c, int64_t n) {
    int64_t at = c->used;
    c->used += (n + 15) / 16 * 16;
    if (!c->base) return NULL;
    LRA_ASSERT(c->used <= c->cap);
    return c->base + at;
}
