// norm.c: LayerNorm, BatchNorm and ScaleNorm as one layer with a kind, so a
// block can switch between them by configuration (lra.md 5: S4/S5/LRU use
// BatchNorm, the Transformer LayerNorm, MEGA ScaleNorm on text).
#include "nn.h"

#include <string.h>

const char *const lra_norm_names[LRA_NORM_COUNT + 1] = { "none", "layer", "batch", "scale", NULL };

int lra_norm_n_params(const lra_norm_cfg *c) {
    static const int n[LRA_NORM_COUNT] = { 0, 2, 4, 1 };
    return n[c->kind];
}

static int norm_spec(lra_param_spec *out, int n, const char *prefix, const char *name, lra_group g, int64_t len) {
    char full[LRA_PARAM_NAME_MAX];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return lra_spec_set(out, n, full, g, 1, LRA_SHAPE(len));
}

int lra_norm_specs(const lra_norm_cfg *c, int D, const char *prefix, lra_param_spec *out, int n) {
    switch (c->kind) {
    case LRA_NORM_LAYER:
        n = norm_spec(out, n, prefix, "weight", LRA_GROUP_NO_DECAY, D);
        return norm_spec(out, n, prefix, "bias", LRA_GROUP_NO_DECAY, D);
    case LRA_NORM_BATCH:
        n = norm_spec(out, n, prefix, "weight", LRA_GROUP_NO_DECAY, D);
        n = norm_spec(out, n, prefix, "bias", LRA_GROUP_NO_DECAY, D);
        n = norm_spec(out, n, prefix, "running_mean", LRA_GROUP_BUFFER, D);
        return norm_spec(out, n, prefix, "running_var", LRA_GROUP_BUFFER, D);
    case LRA_NORM_SCALE:
        return norm_spec(out, n, prefix, "scalar", LRA_GROUP_NO_DECAY, 1);
    default:
        return n;
    }
}

void lra_norm_init(const lra_norm_cfg *c, int D, lra_real *const *host) {
    switch (c->kind) {
    case LRA_NORM_LAYER:
        lra_init_const(host[0], D, 1);
        lra_init_const(host[1], D, 0);
        break;
    case LRA_NORM_BATCH:
        lra_init_const(host[0], D, 1);
        lra_init_const(host[1], D, 0);
        lra_init_const(host[2], D, 0);
        lra_init_const(host[3], D, 1);
        break;
    case LRA_NORM_SCALE:
        lra_init_const(host[0], 1, 1);
        break;
    default:
        break;
    }
}

int64_t lra_norm_stats_size(const lra_norm_cfg *c, int64_t R, int D) {
    switch (c->kind) {
    case LRA_NORM_LAYER: return 2 * R;
    case LRA_NORM_BATCH: return 2 * (int64_t)D;
    case LRA_NORM_SCALE: return R;
    default: return 0;
    }
}

void lra_norm_fwd(lra_backend *be, const lra_norm_cfg *c, lra_real *const *p, lra_real *y, lra_real *stats,
                  const lra_real *x, int64_t R, int D, int training) {
    switch (c->kind) {
    case LRA_NORM_LAYER:
        be->layernorm_fwd(be, y, stats, stats + R, x, p[0], p[1], R, D, (lra_real)c->eps);
        break;
    case LRA_NORM_BATCH:
        be->batchnorm_fwd(be, y, stats, stats + D, p[2], p[3], x, p[0], p[1], R, D, (lra_real)c->eps,
                          (lra_real)c->momentum, c->unbiased_running, training);
        break;
    case LRA_NORM_SCALE:
        be->scalenorm_fwd(be, y, stats, x, p[0], R, D, (lra_real)c->eps);
        break;
    default:
        if (y != x) be->copy(be, y, x, (size_t)R * D * sizeof(lra_real));
        break;
    }
}

void lra_norm_bwd(lra_backend *be, const lra_norm_cfg *c, lra_real *const *p, lra_real *const *g, lra_real *dx,
                  const lra_real *dy, const lra_real *x, const lra_real *stats, int64_t R, int D, int training) {
    switch (c->kind) {
    case LRA_NORM_LAYER:
        be->layernorm_bwd(be, dx, g[0], g[1], dy, x, p[0], stats, stats + R, R, D);
        break;
    case LRA_NORM_BATCH:
        be->batchnorm_bwd(be, dx, g[0], g[1], dy, x, p[0], stats, stats + D, R, D, training);
        break;
    case LRA_NORM_SCALE:
        be->scalenorm_bwd(be, dx, g[0], dy, x, p[0], stats, R, D);
        break;
    default:
        be->axpby(be, dx, 1, dy, 1, R * D);
        break;
    }
}
