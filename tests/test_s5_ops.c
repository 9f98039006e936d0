// test_s5_ops.c: S5 discretisation (s5_discretize_fwd / _bwd) against a
// direct double evaluation and central finite differences (ZOH and
// bilinear, with clip_eigs on eigenvalues on both sides of the clip),
// accumulation, NULL gradients, and the small-step accuracy of ZOH.
#include "check.h"

#include <complex.h>
#include <math.h>
#include <string.h>

typedef double complex cplx;

// The projected loss sums outputs of size up to ~|B| / |Lambda|; central
// differences carry ~1e-9 relative noise in f64.
#ifdef LRA_F64
#define T_S5_OP_TOL 1e-6
#else
#define T_S5_OP_TOL T_GRAD_TOL
#endif

typedef struct {
    int Pc, H, bilinear, clip;
    lra_real *re, *im, *ls, *B;          // inputs
    lra_real *abar, *bbar, *Ra, *Rb;     // outputs (Pc)c, (H, Pc)c and projections
} s5d;

static void s5d_new(s5d *d, int Pc, int H, int bilinear, int clip, uint64_t seed) {
    *d = (s5d){ .Pc = Pc, .H = H, .bilinear = bilinear, .clip = clip };
    d->re = calloc((size_t)Pc, sizeof(lra_real));
    d->im = calloc((size_t)Pc, sizeof(lra_real));
    d->ls = calloc((size_t)Pc, sizeof(lra_real));
    d->B = calloc((size_t)2 * Pc * H, sizeof(lra_real));
    d->abar = calloc((size_t)2 * Pc, sizeof(lra_real));
    d->bbar = calloc((size_t)2 * Pc * H, sizeof(lra_real));
    d->Ra = calloc((size_t)2 * Pc, sizeof(lra_real));
    d->Rb = calloc((size_t)2 * Pc * H, sizeof(lra_real));
    // Re Lambda in [-1.5, -0.1] (and two above the clip), Im in [-20, 20], dt in [1e-3, 0.5]
    t_rand_fill(d->re, Pc, seed, -1.5, -0.1);
    if (clip && Pc > 2) d->re[0] = 0.3f, d->re[1] = -0.5e-4f;
    t_rand_fill(d->im, Pc, seed + 1, -20, 20);
    t_rand_fill(d->ls, Pc, seed + 2, log(1e-3), log(0.5));
    t_rand_fill(d->B, 2 * (int64_t)Pc * H, seed + 3, -1, 1);
    t_rand_fill(d->Ra, 2 * (int64_t)Pc, seed + 4, -1, 1);
    t_rand_fill(d->Rb, 2 * (int64_t)Pc * H, seed + 5, -1, 1);
}

static void s5d_free(s5d *d) {
    free(d->re), free(d->im), free(d->ls), free(d->B), free(d->abar), free(d->bbar), free(d->Ra), free(d->Rb);
}

static double s5d_loss(void *p) {
    s5d *d = p;
    lra_backend *be = t_backend();
    be->s5_discretize_fwd(be, d->abar, d->bbar, d->re, d->im, d->ls, d->B, d->Pc, d->H, d->bilinear, d->clip);
    return t_project(d->abar, d->Ra, 2 * (int64_t)d->Pc) + t_project(d->bbar, d->Rb, 2 * (int64_t)d->Pc * d->H);
}

// the definition, evaluated plainly in double
static void s5d_ref(const s5d *d, double *abar, double *bbar) {
    for (int n = 0; n < d->Pc; n++) {
        double r = d->re[n];
        if (d->clip && r > -1e-4) r = -1e-4;
        cplx lam = r + I * d->im[n], x = exp(d->ls[n]) * lam, Lbar, phi;
        if (d->bilinear) Lbar = (1 + x / 2) / (1 - x / 2), phi = exp(d->ls[n]) / (1 - x / 2);
        else Lbar = cexp(x), phi = (cexp(x) - 1) / lam;
        abar[2 * n] = creal(Lbar), abar[2 * n + 1] = -cimag(Lbar);
        for (int h = 0; h < d->H; h++) {
            int i = n * d->H + h, o = h * d->Pc + n;
            cplx v = phi * (d->B[2 * i] + I * d->B[2 * i + 1]);
            bbar[2 * o] = creal(v), bbar[2 * o + 1] = -cimag(v);
        }
    }
}

static const struct { int Pc, H; } cases_[] = { { 1, 1 }, { 4, 3 }, { 7, 5 }, { 16, 2 } };
#define N_CASES ((int)(sizeof cases_ / sizeof cases_[0]))

static void test_fwd(void) {
    for (int k = 0; k < N_CASES; k++)
        for (int mode = 0; mode < 4; mode++) {
            s5d d;
            s5d_new(&d, cases_[k].Pc, cases_[k].H, mode & 1, mode >> 1, 10 + k);
            double *a = malloc(sizeof(double) * 2 * d.Pc), *b = malloc(sizeof(double) * 2 * d.Pc * d.H);
            s5d_ref(&d, a, b);
            s5d_loss(&d);
            t_close("abar", d.abar, a, 2 * d.Pc, T_FWD_TOL * 10);
            t_close("bbar", d.bbar, b, 2 * d.Pc * d.H, T_FWD_TOL * 10);
            free(a), free(b);
            s5d_free(&d);
        }
}

// Small steps: (e^x - 1)/Lambda keeps its relative accuracy (models.md 0.4).
static void test_small_dt(void) {
    s5d d;
    s5d_new(&d, 3, 1, 0, 0, 3);
    for (int n = 0; n < 3; n++) d.ls[n] = (lra_real)log(1e-6);
    s5d_loss(&d);
    for (int n = 0; n < 3; n++) {
        cplx lam = d.re[n] + I * d.im[n], x = exp((double)d.ls[n]) * lam;
        cplx want = conj((d.B[2 * n] + I * d.B[2 * n + 1]) * (x + x * x / 2 + x * x * x / 6) / lam);
        double err = cabs(d.bbar[2 * n] + I * d.bbar[2 * n + 1] - want) / cabs(want);
        T_CHECK(err < (sizeof(lra_real) == 4 ? 1e-6 : 1e-13), "bbar[%d] relative error %.3g", n, err);
    }
    s5d_free(&d);
}

static void test_bwd(void) {
    lra_backend *be = t_backend();
    for (int k = 0; k < N_CASES; k++)
        for (int mode = 0; mode < 4; mode++) {
            s5d d;
            s5d_new(&d, cases_[k].Pc, cases_[k].H, mode & 1, mode >> 1, 20 + k);
            int Pc = d.Pc, H = d.H;
            int64_t nb = 2 * (int64_t)Pc * H;
            lra_real *g_re = calloc((size_t)Pc, sizeof(lra_real)), *g_im = calloc((size_t)Pc, sizeof(lra_real));
            lra_real *g_ls = calloc((size_t)Pc, sizeof(lra_real)), *g_b = calloc((size_t)nb, sizeof(lra_real));
            s5d_loss(&d);
            be->s5_discretize_bwd(be, g_re, g_im, g_ls, g_b, d.Ra, d.Rb, d.re, d.im, d.ls, d.B, Pc, H, d.bilinear, d.clip);
            if (d.clip && Pc > 2) T_CHECK(g_re[0] == 0 && g_re[1] == 0, "clipped Re Lambda gets no gradient");
            // the clipped entries sit 5e-5 from the clip: keep FD steps away from it
            if (!d.clip || Pc <= 2 || sizeof(lra_real) == 8) t_gradcheck("dLambda_re", s5d_loss, &d, d.re, Pc, g_re, T_S5_OP_TOL);
            t_gradcheck("dLambda_im", s5d_loss, &d, d.im, Pc, g_im, T_S5_OP_TOL);
            t_gradcheck("dlog_step", s5d_loss, &d, d.ls, Pc, g_ls, T_S5_OP_TOL);
            t_gradcheck("dB", s5d_loss, &d, d.B, nb, g_b, T_S5_OP_TOL);
            // accumulation, and NULL gradients / NULL upstream gradients are skipped
            lra_real *g2 = calloc((size_t)nb, sizeof(lra_real)), *gi = calloc((size_t)Pc, sizeof(lra_real));
            memcpy(g2, g_b, sizeof(lra_real) * (size_t)nb);
            be->s5_discretize_bwd(be, NULL, NULL, NULL, g2, d.Ra, d.Rb, d.re, d.im, d.ls, d.B, Pc, H, d.bilinear, d.clip);
            for (int64_t i = 0; i < nb; i++)
                T_CHECK(fabs(g2[i] - 2 * g_b[i]) <= 1e-5 * (1 + fabs(g_b[i])), "dB does not accumulate at %lld", (long long)i);
            memset(g2, 0, sizeof(lra_real) * (size_t)nb);
            be->s5_discretize_bwd(be, NULL, gi, NULL, g2, d.Ra, NULL, d.re, d.im, d.ls, d.B, Pc, H, d.bilinear, d.clip);
            for (int64_t i = 0; i < nb; i++) T_CHECK(g2[i] == 0, "no dbbar: dB[%lld] = %g", (long long)i, (double)g2[i]);
            for (int n = 0; n < Pc; n++) T_CHECK(gi[n] != 0, "dabar alone reaches Lambda_im[%d]", n);
            free(g2), free(gi), free(g_re), free(g_im), free(g_ls), free(g_b);
            s5d_free(&d);
        }
}

static const t_case cases[] = {
    { "s5/discretize_fwd", test_fwd },
    { "s5/discretize_small_dt", test_small_dt },
    { "s5/discretize_bwd", test_bwd },
};
T_MAIN(cases)
