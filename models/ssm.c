// ssm.c: configuration and initialisation pieces shared by the SSM mixers.
#include "ssm.h"

#include <math.h>
#include <string.h>

int lra_ssm_parse_n_ssm(const lra_kv *kv, int n, const char *who, int D, int *S, lra_err *err) {
    const lra_kv *at = lra_kv_find(kv, n, "n_ssm");
    if (at && (!strcmp(at->value, "null") || !strcmp(at->value, "none"))) {
        *S = D;
        return LRA_OK;
    }
    int64_t v;
    int rc = lra_kv_int(kv, n, who, "n_ssm", 1, 1, D, &v, err);
    if (rc) return rc;
    if (D % v)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.n_ssm: %lld does not divide the width D = %d", lra_kv_where(at), who,
                           (long long)v, D);
    *S = (int)v;
    return LRA_OK;
}

int lra_ssm_parse_dt(const lra_kv *kv, int n, const char *who, double *dt_min, double *dt_max, int *dt_exp,
                     lra_err *err) {
    static const char *const transforms[] = { "softplus", "exp", NULL };
    int rc;
    if ((rc = lra_kv_choice(kv, n, who, "dt_transform", 0, transforms, dt_exp, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dt_min", 1e-3, 1e-12, 1e3, dt_min, err))) return rc;
    if ((rc = lra_kv_double(kv, n, who, "dt_max", 1e-1, 1e-12, 1e3, dt_max, err))) return rc;
    if (*dt_min > *dt_max)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.dt_min: %g is above dt_max = %g",
                           lra_kv_where(lra_kv_find(kv, n, "dt_min")), who, *dt_min, *dt_max);
    return LRA_OK;
}

void lra_ssm_init_dt(lra_real *out, int D, double dt_min, double dt_max, int dt_exp, lra_init_rng *r) {
    for (int h = 0; h < D; h++) {
        double dt = exp(log(dt_min) + lra_init_uniform01(r) * (log(dt_max) - log(dt_min)));
        out[h] = (lra_real)(dt_exp ? log(dt) : log(expm1(fmax(dt, 1e-4))));
    }
}

// u (B, H, L) *= mask (B, L), row by row
static void mask_channels(lra_backend *be, lra_real *u, const lra_real *maskf, int B, int H, int L) {
    for (int b = 0; b < B; b++)
        be->mul_cols(be, u + (int64_t)b * H * L, u + (int64_t)b * H * L, maskf + (int64_t)b * L, H, L);
}

void lra_ssm_conv_fwd(lra_backend *be, const lra_ctx *ctx, lra_real *y, lra_real *u, const lra_real *x,
                      const lra_real *K, const lra_real *D, int H, lra_conv_mode mode, lra_real *t1, lra_real *t2) {
    int B = ctx->B, L = ctx->L;
    int64_t n = (int64_t)B * L * H;
    be->permute_0213(be, u, x, B, L, H, 1);
    const lra_real *xm = x;  // the masked input in (B, L, H)
    if (ctx->maskf) {
        mask_channels(be, u, ctx->maskf, B, H, L);
        be->permute_0213(be, t2, u, B, H, L, 1);
        xm = t2;
    }
    be->fftconv_fwd(be, t1, u, K, B, H, L, mode);
    be->permute_0213(be, y, t1, B, H, L, 1);
    be->mul_cols(be, t1, xm, D, (int64_t)B * L, H);
    be->add(be, y, y, t1, n);
}

void lra_ssm_conv_bwd(lra_backend *be, const lra_ctx *ctx, lra_real *dx, lra_real *dD, lra_real *dK,
                      const lra_real *dy, const lra_real *u, const lra_real *x, const lra_real *K, const lra_real *D,
                      int H, lra_conv_mode mode, lra_real *t1, lra_real *t2, lra_real *t3) {
    int B = ctx->B, L = ctx->L;
    int64_t n = (int64_t)B * L * H;
    const lra_real *xm = x;
    if (ctx->maskf) {
        be->permute_0213(be, t3, u, B, H, L, 1);
        xm = t3;
    }
    be->zero(be, t1, (size_t)n * sizeof(lra_real));
    be->mul_cols_bwd(be, t1, dD, dy, xm, D, (int64_t)B * L, H);  // d(D u): dy D, dD
    be->permute_0213(be, t2, t1, B, L, H, 1);                    // du starts with it, (B, H, L)
    be->permute_0213(be, t1, dy, B, L, H, 1);                    // dy in (B, H, L)
    be->fftconv_bwd(be, t2, dK, t1, u, K, B, H, L, mode);
    if (ctx->maskf) mask_channels(be, t2, ctx->maskf, B, H, L);
    be->permute_0213(be, t1, t2, B, H, L, 1);
    be->axpby(be, dx, 1, t1, 1, n);
}
