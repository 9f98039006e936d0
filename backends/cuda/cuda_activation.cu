// cuda_activation.cu: pointwise activations and their derivatives, in float
// with the accurate library functions (never fast-math intrinsics).
#include "cuda.cuh"

#define CU_SQRT_2_OVER_PI 0.7978845608028654f  // sqrt(2/pi)
#define CU_GELU_C         0.044715f
#define CU_INV_SQRT_2     0.7071067811865476f  // 1/sqrt(2)
#define CU_INV_SQRT_2PI   0.3989422804014327f  // 1/sqrt(2 pi)

// sigmoid without overflow: exp of a non-positive number only
__device__ __forceinline__ float cu_sigmoid(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

__device__ __forceinline__ float cu_act(float x, lra_act act) {
    switch (act) {
    case LRA_ACT_IDENTITY: return x;
    case LRA_ACT_RELU: return x > 0 ? x : 0.0f;
    case LRA_ACT_GELU_TANH: {
        float u = CU_SQRT_2_OVER_PI * (x + CU_GELU_C * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case LRA_ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * CU_INV_SQRT_2));
    case LRA_ACT_SILU: return x * cu_sigmoid(x);
    case LRA_ACT_SIGMOID: return cu_sigmoid(x);
    case LRA_ACT_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));  // log(1 + e^x), stable
    case LRA_ACT_TANH: return tanhf(x);
    case LRA_ACT_SIN: return sinf(x);
    default: return __int_as_float(0x7fc00000);  // NaN: the host checked act
    }
}

// d act / dx at x
__device__ __forceinline__ float cu_act_grad(float x, lra_act act) {
    switch (act) {
    case LRA_ACT_IDENTITY: return 1.0f;
    case LRA_ACT_RELU: return x > 0 ? 1.0f : 0.0f;
    case LRA_ACT_GELU_TANH: {
        // d/dx 0.5 x (1 + tanh u) = 0.5 (1 + t) + 0.5 x (1 - t^2) u',  u' = sqrt(2/pi) (1 + 3 c x^2)
        float u = CU_SQRT_2_OVER_PI * (x + CU_GELU_C * x * x * x);
        float t = tanhf(u);
        float du = CU_SQRT_2_OVER_PI * (1.0f + 3.0f * CU_GELU_C * x * x);
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    }
    case LRA_ACT_GELU_ERF:
        // Phi(x) + x phi(x)
        return 0.5f * (1.0f + erff(x * CU_INV_SQRT_2)) + x * CU_INV_SQRT_2PI * expf(-0.5f * x * x);
    case LRA_ACT_SILU: {
        float s = cu_sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case LRA_ACT_SIGMOID: {
        float s = cu_sigmoid(x);
        return s * (1.0f - s);
    }
    case LRA_ACT_SOFTPLUS: return cu_sigmoid(x);
    case LRA_ACT_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    case LRA_ACT_SIN: return cosf(x);
    default: return __int_as_float(0x7fc00000);
    }
}

__global__ static void cu_act_fwd_kernel(lra_real *out, const lra_real *inp, int64_t n, lra_act act) {
    CU_FOR(i, n) out[i] = cu_act(inp[i], act);
}

// dinp += dout act'(inp)
__global__ static void cu_act_bwd_kernel(lra_real *dinp, const lra_real *dout, const lra_real *inp, int64_t n,
                                         lra_act act) {
    CU_FOR(i, n) dinp[i] += dout[i] * cu_act_grad(inp[i], act);
}

void cuda_act_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t n, lra_act act) {
    (void)be;
    LRA_ASSERT((unsigned)act < (unsigned)LRA_ACT_COUNT);
    if (n > 0) CU_LAUNCH(cu_act_fwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, inp, n, act);
}

void cuda_act_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp, int64_t n,
                  lra_act act) {
    (void)be;
    LRA_ASSERT((unsigned)act < (unsigned)LRA_ACT_COUNT);
    if (n > 0) CU_LAUNCH(cu_act_bwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dinp, dout, inp, n, act);
}

// ---- GLU -----------------------------------------------------------------------------
// inp (R, 2C) = [a | g]: out (R, C) = a sigmoid(g); da += dout s, dg += dout a s (1 - s)

__global__ static void cu_glu_fwd_kernel(lra_real *out, const lra_real *inp, int64_t R, int C) {
    CU_FOR(i, R * C) {
        int64_t r = i / C, c = i % C;
        const lra_real *a = inp + r * 2 * C;
        out[i] = (lra_real)((double)a[c] * (double)cu_sigmoid(a[C + c]));
    }
}

__global__ static void cu_glu_bwd_kernel(lra_real *dinp, const lra_real *dout, const lra_real *inp, int64_t R, int C) {
    CU_FOR(i, R * C) {
        int64_t r = i / C, c = i % C;
        const lra_real *a = inp + r * 2 * C;
        lra_real *da = dinp + r * 2 * C;
        double s = cu_sigmoid(a[C + c]), dy = dout[i];
        da[c] += (lra_real)(dy * s);
        da[C + c] += (lra_real)(dy * a[c] * s * (1 - s));
    }
}

void cuda_glu_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t R, int C) {
    (void)be;
    if (R * C > 0) CU_LAUNCH(cu_glu_fwd_kernel, cu_grid(R * C, CU_BLOCK), CU_BLOCK, out, inp, R, C);
}

void cuda_glu_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const lra_real *inp, int64_t R, int C) {
    (void)be;
    if (dinp && R * C > 0) CU_LAUNCH(cu_glu_bwd_kernel, cu_grid(R * C, CU_BLOCK), CU_BLOCK, dinp, dout, inp, R, C);
}

// ---- dropout ----------------------------------------------------------------------------
// The CPU's counter-based mask (backends/cpu/cpu_activation.c): element
// (a, m, c) of x viewed as (A, M, C) is kept iff
//   lra_rand_uniform(seed, tied ? a*C + c : (a*M + m)*C + c) >= p,
// kept values scaled by 1/(1 - p) in double; y = mask(x) (set) or y += mask(x).

__global__ static void cu_dropout_kernel(lra_real *y, const lra_real *x, int64_t A, int64_t M, int64_t C, float p,
                                         double scale, uint64_t seed, int tied, int set) {
    CU_FOR(i, A * M * C) {
        int64_t c = i % C, am = i / C;
        uint64_t ctr = (uint64_t)(tied ? (am / M) * C + c : i);
        lra_real v = (lra_real)((double)x[i] * scale);
        v = lra_rand_uniform(seed, ctr) >= p ? v : (lra_real)0;
        y[i] = set ? v : y[i] + v;
    }
}

__global__ static void cu_add_into_kernel(lra_real *y, const lra_real *x, int64_t n) {
    CU_FOR(i, n) y[i] += x[i];
}

void cuda_dropout_fwd(lra_backend *be, lra_real *out, const lra_real *inp, int64_t A, int64_t M, int64_t C,
                      lra_real p, uint64_t seed, int tied) {
    (void)be;
    int64_t n = A * M * C;
    if (n <= 0) return;
    if (p == 0) {
        if (out != inp) CU_CHECK(cudaMemcpy(out, inp, sizeof(lra_real) * (size_t)n, cudaMemcpyDeviceToDevice));
        return;
    }
    CU_LAUNCH(cu_dropout_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, inp, A, M, C, p, 1.0 / (1.0 - (double)p), seed,
              tied, 1);
}

void cuda_dropout_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, int64_t A, int64_t M, int64_t C,
                      lra_real p, uint64_t seed, int tied) {
    (void)be;
    int64_t n = A * M * C;
    if (!dinp || n <= 0) return;
    if (p == 0) {
        CU_LAUNCH(cu_add_into_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dinp, dout, n);
        return;
    }
    CU_LAUNCH(cu_dropout_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dinp, dout, A, M, C, p, 1.0 / (1.0 - (double)p), seed,
              tied, 0);
}
