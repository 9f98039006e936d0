// cpu_activation.c: pointwise activations, GLU and inverted dropout.
// Arithmetic is done in the build's precision (act_real: float in the float
// build, as PyTorch's CPU kernels; double in the finite-difference build).
// exp comes from an inline polynomial (act_exp_neg) in the float build so
// that the sigmoid family (GELU-tanh, SiLU, sigmoid, GLU) vectorises; the
// Makefile builds this file with -fno-trapping-math, which lets gcc turn the
// selects into blends (IEEE results, NaN and Inf unchanged). Other
// transcendentals are libm calls.
#include "cpu.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define ACT_SQRT_2_OVER_PI 0.79788456080286535588  // sqrt(2/pi)
#define ACT_INV_SQRT_2     0.70710678118654752440  // 1/sqrt(2)
#define ACT_INV_SQRT_2PI   0.39894228040143267794  // 1/sqrt(2 pi)
#define ACT_GELU_K         0.044715

#ifdef LRA_F64
typedef double act_real;
#define ACT_MATH(fn, x) fn(x)
static inline double act_exp_neg(double x) { return exp(x); }
#else
typedef float act_real;
#define ACT_MATH(fn, x) fn##f(x)

// exp(x) for x <= 0 (or NaN) in float with no library call, so that loops
// over it vectorise: x = k ln2 + r with k = round(x log2 e), |r| <= ln2/2,
// exp(r) by its Taylor polynomial to r^7/7! (truncation < 6e-9 relative,
// under float resolution), times 2^k written into the exponent bits. Adding
// 1.5 2^23 rounds x log2 e to the integer k (exact IEEE float arithmetic: the
// build has no -ffast-math). ln2 = C1 + C2 with C1 = 0.693359375 exact in a
// few bits, so k C1 is exact. x is clamped at -87.3 (exp = 1.2e-38, the
// smallest normal float): below that the result is as good as zero.
static inline float act_exp_neg(float x) {
    const float round = 12582912.0f;  // 1.5 2^23
    float xc = x >= -87.3f ? x : -87.3f;  // NaN -> -87.3 here, restored below
    float k = (xc * 1.44269504f + round) - round;
    float r = (xc - k * 0.693359375f) + k * 2.12194440e-4f;
    float p = 1 + r * (1 + r * (1.f / 2 + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720 +
              r * (1.f / 5040)))))));
    int32_t bits = ((int32_t)k + 127) * (1 << 23);  // k in [-126, 0]: a normal 2^k
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? p * scale : x;
}
#endif

// 1 / (1 + exp(-x)) without overflow for either sign of x: with e = exp(-|x|),
// 1/(1+e) for x >= 0 and e/(1+e) below (a select, not a branch on the sign).
static inline act_real act_sigmoid(act_real x) {
    act_real e = act_exp_neg(-ACT_MATH(fabs, x)), s = 1 / (1 + e);
    return x >= 0 ? s : e * s;
}

// the tanh GELU's argument u = sqrt(2/pi) (x + k x^3)
static inline act_real act_gelu_u(act_real x) {
    return (act_real)ACT_SQRT_2_OVER_PI * (x + (act_real)ACT_GELU_K * x * x * x);
}

// f(x); called with a constant act inside per-activation loops (the switch folds away)
static inline act_real act_f(act_real x, lra_act act) {
    switch (act) {
    case LRA_ACT_RELU:      return x < 0 ? 0 : x;  // NaN passes through
    case LRA_ACT_GELU_TANH: return x * act_sigmoid(2 * act_gelu_u(x));  // (1 + tanh u)/2 = sigmoid(2u)
    case LRA_ACT_GELU_ERF:  return (act_real)0.5 * x * (1 + ACT_MATH(erf, x * (act_real)ACT_INV_SQRT_2));
    case LRA_ACT_SILU:      return x * act_sigmoid(x);
    case LRA_ACT_SIGMOID:   return act_sigmoid(x);
    case LRA_ACT_SOFTPLUS:  // log(1 + e^x) = log1p(e^-|x|) + max(x, 0), stable
        return ACT_MATH(log1p, ACT_MATH(exp, -ACT_MATH(fabs, x))) + (x > 0 ? x : 0);
    case LRA_ACT_TANH:      return ACT_MATH(tanh, x);
    case LRA_ACT_SIN:       return ACT_MATH(sin, x);
    default:                return x;  // identity
    }
}

// dy f'(x): the backward of one element (ReLU as a select, which vectorises)
static inline act_real act_dx(act_real dy, act_real x, lra_act act) {
    switch (act) {
    case LRA_ACT_RELU: return x > 0 ? dy : 0;
    case LRA_ACT_GELU_TANH: {
        // f = x s, s = sigmoid(2u): f' = s + 2 x s (1 - s) u',  u' = sqrt(2/pi) (1 + 3 k x^2)
        act_real s = act_sigmoid(2 * act_gelu_u(x));
        act_real du = (act_real)ACT_SQRT_2_OVER_PI * (1 + 3 * (act_real)ACT_GELU_K * x * x);
        return dy * (s + 2 * x * s * (1 - s) * du);
    }
    case LRA_ACT_GELU_ERF:  // Phi(x) + x phi(x)
        return dy * ((act_real)0.5 * (1 + ACT_MATH(erf, x * (act_real)ACT_INV_SQRT_2)) +
                     x * (act_real)ACT_INV_SQRT_2PI * ACT_MATH(exp, (act_real)-0.5 * x * x));
    case LRA_ACT_SILU: {
        act_real s = act_sigmoid(x);
        return dy * s * (1 + x * (1 - s));
    }
    case LRA_ACT_SIGMOID: {
        act_real s = act_sigmoid(x);
        return dy * s * (1 - s);
    }
    case LRA_ACT_SOFTPLUS: return dy * act_sigmoid(x);
    case LRA_ACT_TANH: {
        act_real t = ACT_MATH(tanh, x);
        return dy * (1 - t * t);
    }
    case LRA_ACT_SIN: return dy * ACT_MATH(cos, x);
    default: return dy;  // identity
    }
}

// ---- vectorised slices ------------------------------------------------------------
// The activations without library calls run as slice functions: one per
// activation and direction, each a simd loop over a contiguous range, built
// twice by target_clones (AVX2 and the baseline x86-64; the loader picks by
// CPU), and called on each thread's share of the range. The others are plain
// parallel loops. One function per activation, so that each inlines its own
// formula instead of branching on act per element.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ACT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ACT_CLONES
#endif

// fwd: out = f(x) (y unused); bwd: out += x f'(y) (x = dout, y = inp)
typedef void (*act_slice)(lra_real *out, const lra_real *x, const lra_real *y, int64_t n);

#define ACT_SLICES(NAME, A)                                                                            \
    ACT_CLONES static void NAME##_fwd(lra_real *out, const lra_real *x, const lra_real *y, int64_t n) { \
        (void)y;                                                                                      \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) out[i] = (lra_real)act_f((act_real)x[i], A); \
    }                                                                                                 \
    ACT_CLONES static void NAME##_bwd(lra_real *out, const lra_real *x, const lra_real *y, int64_t n) { \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                                           \
            out[i] += (lra_real)act_dx((act_real)x[i], (act_real)y[i], A);                            \
    }
ACT_SLICES(act_identity, LRA_ACT_IDENTITY)
ACT_SLICES(act_relu, LRA_ACT_RELU)
ACT_SLICES(act_gelu_tanh, LRA_ACT_GELU_TANH)
ACT_SLICES(act_silu, LRA_ACT_SILU)
ACT_SLICES(act_sigm, LRA_ACT_SIGMOID)

// fn on [lo, hi) of n, one contiguous share per thread
static void act_split(act_slice fn, lra_real *out, const lra_real *x, const lra_real *y, int64_t n) {
#pragma omp parallel
    {
        int64_t t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), T = omp_get_num_threads();
#endif
        int64_t lo = n / T * t + (t < n % T ? t : n % T), len = n / T + (t < n % T);
        if (len > 0) fn(out + lo, x + lo, y ? y + lo : NULL, len);
    }
}

#define ACT_FWD_LOOP(A)                                                                          \
    _Pragma("omp parallel for schedule(static)")                                                 \
    for (int64_t i = 0; i < n; i++) out[i] = (lra_real)act_f((act_real)inp[i], A)
#define ACT_BWD_LOOP(A)                                                                          \
    _Pragma("omp parallel for schedule(static)")                                                 \
    for (int64_t i = 0; i < n; i++) dinp[i] += (lra_real)act_dx((act_real)dout[i], (act_real)inp[i], A)

// out (n) = f(inp); out may alias inp.
void cpu_act_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t n, lra_act act) {
    (void)be;
    switch (act) {
    case LRA_ACT_IDENTITY:  act_split(act_identity_fwd, out, inp, NULL, n); break;
    case LRA_ACT_RELU:      act_split(act_relu_fwd, out, inp, NULL, n); break;
    case LRA_ACT_GELU_TANH: act_split(act_gelu_tanh_fwd, out, inp, NULL, n); break;
    case LRA_ACT_GELU_ERF:  ACT_FWD_LOOP(LRA_ACT_GELU_ERF); break;
    case LRA_ACT_SILU:      act_split(act_silu_fwd, out, inp, NULL, n); break;
    case LRA_ACT_SIGMOID:   act_split(act_sigm_fwd, out, inp, NULL, n); break;
    case LRA_ACT_SOFTPLUS:  ACT_FWD_LOOP(LRA_ACT_SOFTPLUS); break;
    case LRA_ACT_TANH:      ACT_FWD_LOOP(LRA_ACT_TANH); break;
    case LRA_ACT_SIN:       ACT_FWD_LOOP(LRA_ACT_SIN); break;
    default:                LRA_ASSERT(!"unknown lra_act");
    }
}

// dinp (n) += dout f'(inp)
void cpu_act_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                 int64_t n, lra_act act) {
    (void)be;
    if (!dinp) return;
    switch (act) {
    case LRA_ACT_IDENTITY:  act_split(act_identity_bwd, dinp, dout, inp, n); break;
    case LRA_ACT_RELU:      act_split(act_relu_bwd, dinp, dout, inp, n); break;
    case LRA_ACT_GELU_TANH: act_split(act_gelu_tanh_bwd, dinp, dout, inp, n); break;
    case LRA_ACT_GELU_ERF:  ACT_BWD_LOOP(LRA_ACT_GELU_ERF); break;
    case LRA_ACT_SILU:      act_split(act_silu_bwd, dinp, dout, inp, n); break;
    case LRA_ACT_SIGMOID:   act_split(act_sigm_bwd, dinp, dout, inp, n); break;
    case LRA_ACT_SOFTPLUS:  ACT_BWD_LOOP(LRA_ACT_SOFTPLUS); break;
    case LRA_ACT_TANH:      ACT_BWD_LOOP(LRA_ACT_TANH); break;
    case LRA_ACT_SIN:       ACT_BWD_LOOP(LRA_ACT_SIN); break;
    default:                LRA_ASSERT(!"unknown lra_act");
    }
}

// GLU on rows [r0, r1) of (R, 2C) = [a | g]: out (R, C) = a sigmoid(g).
ACT_CLONES static void glu_rows_fwd(lra_real *out, const lra_real *inp, int64_t r0, int64_t r1, int C) {
    for (int64_t r = r0; r < r1; r++) {
        const lra_real *a = inp + r * 2 * C, *g = a + C;
        lra_real *y = out + r * C;
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = (lra_real)((act_real)a[c] * act_sigmoid((act_real)g[c]));
    }
}

// da += dout s;  dg += dout a s (1 - s),  s = sigmoid(g)
ACT_CLONES static void glu_rows_bwd(lra_real *dinp, const lra_real *dout, const lra_real *inp, int64_t r0,
                                    int64_t r1, int C) {
    for (int64_t r = r0; r < r1; r++) {
        const lra_real *a = inp + r * 2 * C, *g = a + C, *dy = dout + r * C;
        lra_real *da = dinp + r * 2 * C, *dg = da + C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            act_real s = act_sigmoid((act_real)g[c]);
            da[c] += (lra_real)((act_real)dy[c] * s);
            dg[c] += (lra_real)((act_real)dy[c] * (act_real)a[c] * s * (1 - s));
        }
    }
}

// rows of a thread: 16 per chunk, static
#define GLU_ROWS 16

void cpu_glu_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r += GLU_ROWS) glu_rows_fwd(out, inp, r, r + GLU_ROWS < R ? r + GLU_ROWS : R, C);
}

void cpu_glu_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp,
                 int64_t R, int C) {
    (void)be;
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r += GLU_ROWS)
        glu_rows_bwd(dinp, dout, inp, r, r + GLU_ROWS < R ? r + GLU_ROWS : R, C);
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
