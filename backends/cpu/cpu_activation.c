// cpu_activation.c: pointwise activations, GLU and inverted dropout.
// Arithmetic is done in double (transcendentals in the build's precision)
// and rounded once to lra_real.
#include "cpu.h"

#include <math.h>
#include <string.h>

#define ACT_SQRT_2_OVER_PI 0.79788456080286535588  // sqrt(2/pi)
#define ACT_INV_SQRT_2     0.70710678118654752440  // 1/sqrt(2)
#define ACT_INV_SQRT_2PI   0.39894228040143267794  // 1/sqrt(2 pi)
#define ACT_GELU_K         0.044715

// Transcendentals in the build's precision (expf, erff, ... for float, about
// twice as fast as the double versions); the arithmetic around them is double.
#ifdef LRA_F64
#define ACT_MATH(fn, x) fn(x)
#else
#define ACT_MATH(fn, x) ((double)fn##f((float)(x)))
#endif

// 1 / (1 + exp(-x)) without overflow for either sign of x: with e = exp(-|x|),
// 1/(1+e) for x >= 0 and e/(1+e) below (a select, not a branch on the sign).
static inline double act_sigmoid(double x) {
    double e = ACT_MATH(exp, -fabs(x)), s = 1.0 / (1.0 + e);
    return x >= 0 ? s : e * s;
}

// the tanh GELU's argument u = sqrt(2/pi) (x + k x^3)
static inline double act_gelu_u(double x) {
    return ACT_SQRT_2_OVER_PI * (x + ACT_GELU_K * x * x * x);
}

// f(x); called with a constant act inside per-activation loops (the switch folds away)
static inline double act_f(double x, lra_act act) {
    switch (act) {
    case LRA_ACT_RELU:      return x < 0 ? 0 : x;  // NaN passes through
    case LRA_ACT_GELU_TANH: return x * act_sigmoid(2 * act_gelu_u(x));  // (1 + tanh u)/2 = sigmoid(2u)
    case LRA_ACT_GELU_ERF:  return 0.5 * x * (1 + ACT_MATH(erf, x * ACT_INV_SQRT_2));
    case LRA_ACT_SILU:      return x * act_sigmoid(x);
    case LRA_ACT_SIGMOID:   return act_sigmoid(x);
    case LRA_ACT_SOFTPLUS:  // log(1 + e^x) = log1p(e^-|x|) + max(x, 0), stable
        return ACT_MATH(log1p, ACT_MATH(exp, -fabs(x))) + (x > 0 ? x : 0);
    case LRA_ACT_TANH:      return ACT_MATH(tanh, x);
    case LRA_ACT_SIN:       return ACT_MATH(sin, x);
    default:                return x;  // identity
    }
}

// dy f'(x): the backward of one element (ReLU as a select, which vectorises)
static inline double act_dx(double dy, double x, lra_act act) {
    switch (act) {
    case LRA_ACT_RELU: return x > 0 ? dy : 0;
    case LRA_ACT_GELU_TANH: {
        // f = x s, s = sigmoid(2u): f' = s + 2 x s (1 - s) u',  u' = sqrt(2/pi) (1 + 3 k x^2)
        double s = act_sigmoid(2 * act_gelu_u(x));
        double du = ACT_SQRT_2_OVER_PI * (1 + 3 * ACT_GELU_K * x * x);
        return dy * (s + 2 * x * s * (1 - s) * du);
    }
    case LRA_ACT_GELU_ERF:  // Phi(x) + x phi(x)
        return dy * (0.5 * (1 + ACT_MATH(erf, x * ACT_INV_SQRT_2)) +
                     x * ACT_INV_SQRT_2PI * ACT_MATH(exp, -0.5 * x * x));
    case LRA_ACT_SILU: {
        double s = act_sigmoid(x);
        return dy * s * (1 + x * (1 - s));
    }
    case LRA_ACT_SIGMOID: {
        double s = act_sigmoid(x);
        return dy * s * (1 - s);
    }
    case LRA_ACT_SOFTPLUS: return dy * act_sigmoid(x);
    case LRA_ACT_TANH: {
        double t = ACT_MATH(tanh, x);
        return dy * (1 - t * t);
    }
    case LRA_ACT_SIN: return dy * ACT_MATH(cos, x);
    default: return dy;  // identity
    }
}

// One loop per activation, so that each inlines its own formula instead of
// branching on act per element. The _SIMD forms (identity, ReLU: no calls)
// ask for vectorisation, which gcc -O2 would not do by itself.
#define ACT_FWD_LOOP(A, OMP)                                              \
    _Pragma(OMP)                                                          \
    for (int64_t i = 0; i < n; i++) out[i] = (lra_real)act_f(inp[i], A)
#define ACT_BWD_LOOP(A, OMP)                                              \
    _Pragma(OMP)                                                          \
    for (int64_t i = 0; i < n; i++) dinp[i] += (lra_real)act_dx(dout[i], inp[i], A)
#define ACT_PAR  "omp parallel for schedule(static)"
#define ACT_SIMD "omp parallel for simd schedule(static)"

// out (n) = f(inp); out may alias inp.
void cpu_act_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t n, lra_act act) {
    (void)be;
    switch (act) {
    case LRA_ACT_IDENTITY:  ACT_FWD_LOOP(LRA_ACT_IDENTITY, ACT_SIMD); break;
    case LRA_ACT_RELU:      ACT_FWD_LOOP(LRA_ACT_RELU, ACT_SIMD); break;
    case LRA_ACT_GELU_TANH: ACT_FWD_LOOP(LRA_ACT_GELU_TANH, ACT_PAR); break;
    case LRA_ACT_GELU_ERF:  ACT_FWD_LOOP(LRA_ACT_GELU_ERF, ACT_PAR); break;
    case LRA_ACT_SILU:      ACT_FWD_LOOP(LRA_ACT_SILU, ACT_PAR); break;
    case LRA_ACT_SIGMOID:   ACT_FWD_LOOP(LRA_ACT_SIGMOID, ACT_PAR); break;
    case LRA_ACT_SOFTPLUS:  ACT_FWD_LOOP(LRA_ACT_SOFTPLUS, ACT_PAR); break;
    case LRA_ACT_TANH:      ACT_FWD_LOOP(LRA_ACT_TANH, ACT_PAR); break;
    case LRA_ACT_SIN:       ACT_FWD_LOOP(LRA_ACT_SIN, ACT_PAR); break;
    default:                LRA_ASSERT(!"unknown lra_act");
    }
}

// dinp (n) += dout f'(inp)
void cpu_act_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                 int64_t n, lra_act act) {
    (void)be;
    if (!dinp) return;
    switch (act) {
    case LRA_ACT_IDENTITY:  ACT_BWD_LOOP(LRA_ACT_IDENTITY, ACT_SIMD); break;
    case LRA_ACT_RELU:      ACT_BWD_LOOP(LRA_ACT_RELU, ACT_SIMD); break;
    case LRA_ACT_GELU_TANH: ACT_BWD_LOOP(LRA_ACT_GELU_TANH, ACT_PAR); break;
    case LRA_ACT_GELU_ERF:  ACT_BWD_LOOP(LRA_ACT_GELU_ERF, ACT_PAR); break;
    case LRA_ACT_SILU:      ACT_BWD_LOOP(LRA_ACT_SILU, ACT_PAR); break;
    case LRA_ACT_SIGMOID:   ACT_BWD_LOOP(LRA_ACT_SIGMOID, ACT_PAR); break;
    case LRA_ACT_SOFTPLUS:  ACT_BWD_LOOP(LRA_ACT_SOFTPLUS, ACT_PAR); break;
    case LRA_ACT_TANH:      ACT_BWD_LOOP(LRA_ACT_TANH, ACT_PAR); break;
    case LRA_ACT_SIN:       ACT_BWD_LOOP(LRA_ACT_SIN, ACT_PAR); break;
    default:                LRA_ASSERT(!"unknown lra_act");
    }
}

// out (R, C) = a sigmoid(g), inp (R, 2C) = [a | g] along the last dim.
void cpu_glu_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const lra_real *a = inp + r * 2 * C, *g = a + C;
        lra_real *y = out + r * C;
        for (int c = 0; c < C; c++) y[c] = (lra_real)((double)a[c] * act_sigmoid(g[c]));
    }
}

// da += dout s;  dg += dout a s (1 - s),  s = sigmoid(g)
void cpu_glu_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                 int64_t R, int C) {
    (void)be;
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
        const lra_real *a = inp + r * 2 * C, *g = a + C, *dy = dout + r * C;
        lra_real *da = dinp + r * 2 * C, *dg = da + C;
        for (int c = 0; c < C; c++) {
            double s = act_sigmoid(g[c]);
            da[c] += (lra_real)((double)dy[c] * s);
            dg[c] += (lra_real)((double)dy[c] * a[c] * s * (1 - s));
        }
    }
}

// ---- dropout -------------------------------------------------------------------
// x viewed as (A, M, C). Element (a, m, c) is kept iff
//   lra_rand_uniform(seed, tied ? a*C + c : (a*M + m)*C + c) >= p
// and kept values are scaled by 1/(1-p). p is a probability in [0, 1): p = 0
// copies; p = 1 drops everything (zeros, as PyTorch), p > 1 or p < 0 is a
// caller error. Rows (a, m) are the parallel unit; the mask is regenerated,
// never stored, so the backward applies exactly the forward's mask.

// y (A, M, C) = (set ? 0 : y) + mask(x) / (1 - p); y may alias x when set.
static void dropout_apply(lra_real *y, const lra_real *x, int64_t A, int64_t M, int64_t C,
                          lra_real p, uint64_t seed, int tied, int set) {
    double scale = 1.0 / (1.0 - (double)p);
#pragma omp parallel for schedule(static)
    for (int64_t am = 0; am < A * M; am++) {
        uint64_t base = (uint64_t)(tied ? (am / M) * C : am * C);
        lra_real *yr = y + am * C;
        const lra_real *xr = x + am * C;
        for (int64_t c = 0; c < C; c++) {
            lra_real v = (lra_real)((double)xr[c] * scale);  // then a select: no branch on the mask
            v = lra_rand_uniform(seed, base + (uint64_t)c) >= p ? v : (lra_real)0;
            yr[c] = set ? v : yr[c] + v;
        }
    }
}

void cpu_dropout_fwd(lra_backend *be, lra_real *out, const lra_real *inp,
                     int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied) {
    (void)be;
    int64_t n = A * M * C;
    if (p == 0) {
        if (out != inp && n > 0) memmove(out, inp, sizeof(lra_real) * (size_t)n);
        return;
    }
    dropout_apply(out, inp, A, M, C, p, seed, tied, 1);
}

// dinp += mask dout / (1 - p), the forward's mask regenerated from (seed, counter).
void cpu_dropout_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout,
                     int64_t A, int64_t M, int64_t C, lra_real p, uint64_t seed, int tied) {
    (void)be;
    if (!dinp) return;
    if (p == 0) {
        int64_t n = A * M * C;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    dropout_apply(dinp, dout, A, M, C, p, seed, tied, 0);
}
