// ssm.h: configuration and initialisation pieces shared by the SSM mixers
// (S4D, S4, and the S5/LRU family): the n_ssm key and the step size.
#ifndef LRA_SSM_H
#define LRA_SSM_H

#include "layer.h"

// n_ssm: the number of independent (A, B) copies shared by the D channels
// (channel h uses copy h % S): an integer dividing D (default 1, as S4's
// LRA configs), or null / none (S4's None: one copy per channel, S = D).
int lra_ssm_parse_n_ssm(const lra_kv *kv, int n, const char *who, int D, int *S, lra_err *err);

// dt_min, dt_max and dt_transform (softplus | exp): *dt_exp = 1 for exp.
int lra_ssm_parse_dt(const lra_kv *kv, int n, const char *who, double *dt_min, double *dt_max, int *dt_exp,
                     lra_err *err);

// D step sizes log-uniform in [dt_min, dt_max], stored as the parameter of
// the transform: log(expm1(max(dt, 1e-4))) (softplus, the reference's clamp
// keeps the inverse finite in float) or log(dt) (exp).
void lra_ssm_init_dt(lra_real *out, int D, double dt_min, double dt_max, int dt_exp, lra_init_rng *r);

// The convolution mode shared by S4 and S4D (models.md 3): with x (B, L, H),
// u = x in channel layout (B, H, L) with padded positions zeroed (kept for
// backward: S4Block multiplies by the length mask), y (B, L, H) = K * u + D u,
// K (H, L) causal or (H, 2, L) two-sided, D (H). t1, t2: (B, L, H) temporaries.
void lra_ssm_conv_fwd(lra_backend *be, const lra_ctx *ctx, lra_real *y, lra_real *u, const lra_real *x,
                      const lra_real *K, const lra_real *D, int H, lra_conv_mode mode, lra_real *t1, lra_real *t2);
// dx (B, L, H), dD (H) and dK += (dK zeroed by the caller once per call);
// t1, t2, t3: (B, L, H) temporaries.
void lra_ssm_conv_bwd(lra_backend *be, const lra_ctx *ctx, lra_real *dx, lra_real *dD, lra_real *dK,
                      const lra_real *dy, const lra_real *u, const lra_real *x, const lra_real *K, const lra_real *D,
                      int H, lra_conv_mode mode, lra_real *t1, lra_real *t2, lra_real *t3);

#endif // LRA_SSM_H
