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
