// test_ssm_ops.c: S4D discretisation (s4d_discretize_fwd / _bwd) against a
// direct double evaluation and central finite differences (ZOH and bilinear,
// softplus and exp step sizes, shared rows, two channels), accumulation and
// NULL gradients; the diagonal SSM step against a sequential loop.
#include "check.h"

#include <complex.h>
#include <math.h>
#include <string.h>

typedef double complex cplx;

// The projected loss sums outputs of size up to |w| ~ 15 (Im A dt), so central
// differences carry ~1e-15 * 100 / 1e-6 absolute noise: 1e-5 relative on the
// smallest gradient entries in f64; a wrong formula gives errors of order 1.
#ifdef LRA_F64
#define T_SSM_TOL 1e-5
#else
#define T_SSM_TOL T_GRAD_TOL
#endif

typedef struct {
    int H, S, Nc, CH, bilinear, dt_exp;
    lra_real *inv_dt, *A_real, *A_imag, *B, *C;  // inputs
    lra_real *w, *coef, *Rw, *Rc;                // outputs (H, CH, Nc)c and projections
} disc;

static int64_t n_out(const disc *d) { return 2 * (int64_t)d->H * d->CH * d->Nc; }

static void disc_new(disc *d, int H, int S, int Nc, int CH, int bilinear, int dt_exp, uint64_t seed) {
    *d = (disc){ .H = H, .S = S, .Nc = Nc, .CH = CH, .bilinear = bilinear, .dt_exp = dt_exp };
    d->inv_dt = calloc((size_t)H, sizeof(lra_real));
    d->A_real = calloc((size_t)S * Nc, sizeof(lra_real));
    d->A_imag = calloc((size_t)S * Nc, sizeof(lra_real));
    d->B = calloc((size_t)2 * S * Nc, sizeof(lra_real));
    d->C = calloc((size_t)2 * CH * H * Nc, sizeof(lra_real));
    d->w = calloc((size_t)n_out(d), sizeof(lra_real));
    d->coef = calloc((size_t)n_out(d), sizeof(lra_real));
    d->Rw = calloc((size_t)n_out(d), sizeof(lra_real));
    d->Rc = calloc((size_t)n_out(d), sizeof(lra_real));
    // dt in about [1e-3, 0.5]; Re A in [-1.5, -0.2]; Im A in [0, 30]
    t_rand_fill(d->inv_dt, H, seed, dt_exp ? -7 : -7, dt_exp ? -0.7 : -0.5);
    t_rand_fill(d->A_real, (int64_t)S * Nc, seed + 1, -1.6, 0.4);
    t_rand_fill(d->A_imag, (int64_t)S * Nc, seed + 2, 0, 30);
    t_rand_fill(d->B, 2 * (int64_t)S * Nc, seed + 3, -1, 1);
    t_rand_fill(d->C, 2 * (int64_t)CH * H * Nc, seed + 4, -1, 1);
    t_rand_fill(d->Rw, n_out(d), seed + 5, -1, 1);
    t_rand_fill(d->Rc, n_out(d), seed + 6, -1, 1);
}

static void disc_free(disc *d) {
    free(d->inv_dt), free(d->A_real), free(d->A_imag), free(d->B), free(d->C);
    free(d->w), free(d->coef), free(d->Rw), free(d->Rc);
}

static double disc_loss(void *p) {
    disc *d = p;
    lra_backend *be = t_backend();
    be->s4d_discretize_fwd(be, d->w, d->coef, d->inv_dt, d->A_real, d->A_imag, d->B, d->C, d->H, d->S, d->Nc, d->CH,
                           d->bilinear, d->dt_exp);
    return t_project(d->w, d->Rw, n_out(d)) + t_project(d->coef, d->Rc, n_out(d));
}

// the definition, evaluated plainly in double
static void disc_ref(const disc *d, double *w, double *coef) {
    for (int h = 0; h < d->H; h++) {
        int s = h % d->S;
        double p = d->inv_dt[h], dt = d->dt_exp ? exp(p) : log(1 + exp(p));
        for (int n = 0; n < d->Nc; n++) {
            int sn = s * d->Nc + n;
            cplx A = -exp(d->A_real[sn]) - I * d->A_imag[sn], x = dt * A, Bn = d->B[2 * sn] + I * d->B[2 * sn + 1];
            cplx E = d->bilinear ? Bn * dt / (1 - x / 2) : Bn * (cexp(x) - 1) / A;
            cplx wv = d->bilinear ? clog((1 + x / 2) / (1 - x / 2)) : x;
            for (int c = 0; c < d->CH; c++) {
                int o = (h * d->CH + c) * d->Nc + n, co = (c * d->H + h) * d->Nc + n;
                cplx cf = 2 * (d->C[2 * co] + I * d->C[2 * co + 1]) * E;
                w[2 * o] = creal(wv), w[2 * o + 1] = cimag(wv);
                coef[2 * o] = creal(cf), coef[2 * o + 1] = cimag(cf);
            }
        }
    }
}

static const struct { int H, S, Nc, CH; } disc_cases[] = { { 1, 1, 1, 1 }, { 4, 1, 3, 2 }, { 6, 3, 5, 1 }, { 5, 5, 4, 2 } };

static void test_discretize_fwd(void) {
    for (unsigned k = 0; k < sizeof disc_cases / sizeof disc_cases[0]; k++)
        for (int mode = 0; mode < 4; mode++) {
            disc d;
            disc_new(&d, disc_cases[k].H, disc_cases[k].S, disc_cases[k].Nc, disc_cases[k].CH, mode & 1, mode >> 1, 10 + k);
            double *w = malloc(sizeof(double) * n_out(&d)), *coef = malloc(sizeof(double) * n_out(&d));
            disc_ref(&d, w, coef);
            disc_loss(&d);
            t_close("w", d.w, w, n_out(&d), T_FWD_TOL * 10);
            t_close("coef", d.coef, coef, n_out(&d), T_FWD_TOL * 10);
            free(w), free(coef);
            disc_free(&d);
        }
}

// Small steps: e^x - 1 must keep its relative accuracy (models.md 0.4).
static void test_discretize_small_dt(void) {
    disc d;
    disc_new(&d, 2, 1, 2, 1, 0, 1, 3);
    d.inv_dt[0] = d.inv_dt[1] = (lra_real)log(1e-6);
    disc_loss(&d);
    for (int h = 0; h < 2; h++)
        for (int n = 0; n < 2; n++) {
            cplx A = -exp(d.A_real[n]) - I * d.A_imag[n], x = 1e-6 * A;
            cplx want = 2 * (d.C[2 * (h * 2 + n)] + I * d.C[2 * (h * 2 + n) + 1]) * (d.B[2 * n] + I * d.B[2 * n + 1]) *
                        (x + x * x / 2 + x * x * x / 6) / A;  // series: exact to 1e-24 here
            int o = h * 2 + n;
            double err = cabs(d.coef[2 * o] + I * d.coef[2 * o + 1] - want) / cabs(want);
            T_CHECK(err < (sizeof(lra_real) == 4 ? 1e-6 : 1e-13), "coef[%d] relative error %.3g", o, err);
        }
    disc_free(&d);
}

static void test_discretize_bwd(void) {
    lra_backend *be = t_backend();
    for (unsigned k = 0; k < sizeof disc_cases / sizeof disc_cases[0]; k++)
        for (int mode = 0; mode < 4; mode++) {
            disc d;
            disc_new(&d, disc_cases[k].H, disc_cases[k].S, disc_cases[k].Nc, disc_cases[k].CH, mode & 1, mode >> 1, 20 + k);
            int H = d.H, S = d.S, Nc = d.Nc, CH = d.CH;
            lra_real *g_dt = calloc((size_t)H, sizeof(lra_real)), *g_ar = calloc((size_t)S * Nc, sizeof(lra_real));
            lra_real *g_ai = calloc((size_t)S * Nc, sizeof(lra_real)), *g_b = calloc((size_t)2 * S * Nc, sizeof(lra_real));
            lra_real *g_c = calloc((size_t)2 * CH * H * Nc, sizeof(lra_real));
            disc_loss(&d);
            be->s4d_discretize_bwd(be, g_dt, g_ar, g_ai, g_b, g_c, d.Rw, d.Rc, d.inv_dt, d.A_real, d.A_imag, d.B, d.C, H,
                                   S, Nc, CH, d.bilinear, d.dt_exp);
            t_gradcheck("dinv_dt", disc_loss, &d, d.inv_dt, H, g_dt, T_SSM_TOL);
            t_gradcheck("dA_real", disc_loss, &d, d.A_real, (int64_t)S * Nc, g_ar, T_SSM_TOL);
            t_gradcheck("dA_imag", disc_loss, &d, d.A_imag, (int64_t)S * Nc, g_ai, T_SSM_TOL);
            t_gradcheck("dB", disc_loss, &d, d.B, 2 * (int64_t)S * Nc, g_b, T_SSM_TOL);
            t_gradcheck("dC", disc_loss, &d, d.C, 2 * (int64_t)CH * H * Nc, g_c, T_SSM_TOL);
            // accumulation, and NULL gradients / NULL dw, dcoef are skipped
            lra_real *g2 = calloc((size_t)2 * S * Nc, sizeof(lra_real));
            memcpy(g2, g_b, sizeof(lra_real) * 2 * S * Nc);
            be->s4d_discretize_bwd(be, NULL, NULL, NULL, g2, NULL, d.Rw, d.Rc, d.inv_dt, d.A_real, d.A_imag, d.B, d.C,
                                   H, S, Nc, CH, d.bilinear, d.dt_exp);
            for (int i = 0; i < 2 * S * Nc; i++)
                T_CHECK(fabs(g2[i] - 2 * g_b[i]) <= 1e-5 * (1 + fabs(g_b[i])), "dB does not accumulate at %d", i);
            memset(g2, 0, sizeof(lra_real) * 2 * S * Nc);
            be->s4d_discretize_bwd(be, NULL, NULL, NULL, g2, NULL, NULL, NULL, d.inv_dt, d.A_real, d.A_imag, d.B, d.C,
                                   H, S, Nc, CH, d.bilinear, d.dt_exp);
            for (int i = 0; i < 2 * S * Nc; i++) T_CHECK(g2[i] == 0, "no upstream gradient, dB[%d] = %g", i, g2[i]);
            free(g2), free(g_dt), free(g_ar), free(g_ai), free(g_b), free(g_c);
            disc_free(&d);
        }
}

static void test_step(void) {
    lra_backend *be = t_backend();
    int B = 3, R = 4, N = 5, T = 6;
    lra_real *state = calloc((size_t)2 * B * R * N, sizeof(lra_real)), *z = calloc((size_t)2 * R * N, sizeof(lra_real));
    lra_real *coef = calloc((size_t)2 * R * N, sizeof(lra_real)), *u = calloc((size_t)B * R, sizeof(lra_real));
    lra_real *y = t_guarded((int64_t)B * R);
    cplx *ref = calloc((size_t)B * R * N, sizeof(cplx));
    t_rand_fill(z, 2 * R * N, 1, -0.7, 0.7);
    t_rand_fill(coef, 2 * R * N, 2, -1, 1);
    for (int t = 0; t < T; t++) {
        t_rand_fill(u, (int64_t)B * R, 10 + t, -1, 1);
        be->diag_ssm_step(be, y, state, u, z, coef, B, R, N);
        double *want = malloc(sizeof(double) * B * R);
        for (int b = 0; b < B; b++)
            for (int r = 0; r < R; r++) {
                double s = 0;
                for (int n = 0; n < N; n++) {
                    cplx *x = &ref[(b * R + r) * N + n];
                    *x = (z[2 * (r * N + n)] + I * z[2 * (r * N + n) + 1]) * *x + u[b * R + r];
                    s += creal((coef[2 * (r * N + n)] + I * coef[2 * (r * N + n) + 1]) * *x);
                }
                want[b * R + r] = s;
            }
        t_close("step y", y, want, (int64_t)B * R, T_FWD_TOL * 10);
        free(want);
    }
    t_guard_ok(y, "y");
    t_guarded_free(y);
    free(state), free(z), free(coef), free(u), free(ref);
}

static const t_case cases[] = {
    { "ssm/discretize_fwd", test_discretize_fwd },
    { "ssm/discretize_small_dt", test_discretize_small_dt },
    { "ssm/discretize_bwd", test_discretize_bwd },
    { "ssm/step", test_step },
};
T_MAIN(cases)
