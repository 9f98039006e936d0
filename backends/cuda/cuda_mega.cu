// cuda_mega.cu: the two MEGA ops (models.md 7) with the formulas of
// backends/cpu/cpu_mega.c.
//
// EMA kernel: forward one thread per tap of K (powers q^l by pow, sums over n
// in order, in double); backward one thread per (row, dim) with the sums over
// the taps by repeated multiplication, as on the CPU.
//
// Attention weights: one block per query row (softmax max and sum by
// fixed-order block reductions). The bias gradient runs as a second pass, one
// block per offset j - i, whose threads stride over the rows in a fixed
// assignment and combine by a block sum: no atomics, bit-identical per run.
#include "cuda.cuh"

__device__ __forceinline__ double cu_sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

// k_r[l] = scale sum_n gamma beta p q^l (l < Lt)
__device__ static double ema_tap(const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                                 const lra_real *gamma, int64_t r, int N, int l, double scale) {
    double k = 0;
    for (int n = 0; n < N; n++) {
        int64_t i = r * N + n;
        double p = cu_sigm(delta[i]), q = 1.0 - p * cu_sigm(alpha[i]);
        k += scale * gamma[i] * beta[i] * p * pow(q, (double)l);
    }
    return k;
}

// one thread per element of K (H, CH, L)
__global__ static void cu_ema_fwd_kernel(lra_real *K, const lra_real *delta, const lra_real *alpha,
                                         const lra_real *beta, const lra_real *gamma, int H, int N, int CH, int Lt,
                                         int L, double scale) {
    CU_FOR(e, (int64_t)H * CH * L) {
        int l = (int)(e % L), c = (int)((e / L) % CH);
        int64_t h = e / ((int64_t)CH * L);
        if (c == 0) {
            double k = l < Lt ? ema_tap(delta, alpha, beta, gamma, h, N, l, scale) : 0.0;
            if (CH == 2 && l == 0)  // lag 0 counted by both halves (rounded as the CPU does)
                k = (double)(lra_real)k + ema_tap(delta, alpha, beta, gamma, H + h, N, 0, scale);
            K[e] = (lra_real)k;
        } else {
            K[e] = (lra_real)(l + 1 < Lt ? ema_tap(delta, alpha, beta, gamma, H + h, N, l + 1, scale) : 0.0);
        }
    }
}

void cuda_ema_kernel_fwd(lra_backend *be, lra_real *K, const lra_real *delta, const lra_real *alpha,
                         const lra_real *beta, const lra_real *gamma, int H, int N, int CH, int Lk, int L,
                         lra_real scale) {
    (void)be;
    int64_t n = (int64_t)H * CH * L;
    if (n <= 0) return;
    int Lt = Lk < L ? Lk : L;
    CU_LAUNCH(cu_ema_fwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, K, delta, alpha, beta, gamma, H, N, CH, Lt, L,
              (double)scale);
}

// one thread per (r, n): E = sum_l G[l] q^l, F = sum_l l G[l] q^(l-1), with
// G the row's taps of dK (row H + h: G[0] = dK[h][0][0], G[s] = dK[h][1][s-1])
__global__ static void cu_ema_bwd_kernel(lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma,
                                         const lra_real *dK, const lra_real *delta, const lra_real *alpha,
                                         const lra_real *beta, const lra_real *gamma, int H, int N, int CH, int Lt,
                                         int L, double scale) {
    CU_FOR(i, (int64_t)CH * H * N) {
        int64_t r = i / N, h = r % H;
        const lra_real *G0 = dK + h * CH * L;
        int back = r >= H;
        double sa = cu_sigm(alpha[i]), p = cu_sigm(delta[i]), q = 1.0 - p * sa;
        double E = 0, F = 0, ql = 1.0, qm = 0.0;  // q^l and q^(l-1)
        for (int l = 0; l < Lt; l++) {
            double G = !back || l == 0 ? G0[l] : G0[L + l - 1];
            E += G * ql;
            F += l * G * qm;
            qm = ql;
            ql *= q;
        }
        double gb = scale * gamma[i] * beta[i];
        double dp = gb * E, dq = gb * p * F;
        if (dgamma) dgamma[i] += (lra_real)(scale * beta[i] * p * E);
        if (dbeta) dbeta[i] += (lra_real)(scale * gamma[i] * p * E);
        if (ddelta) ddelta[i] += (lra_real)(p * (1 - p) * (dp - sa * dq));
        if (dalpha) dalpha[i] += (lra_real)(-p * sa * (1 - sa) * dq);
    }
}

void cuda_ema_kernel_bwd(lra_backend *be, lra_real *ddelta, lra_real *dalpha, lra_real *dbeta, lra_real *dgamma,
                         const lra_real *dK, const lra_real *delta, const lra_real *alpha, const lra_real *beta,
                         const lra_real *gamma, int H, int N, int CH, int Lk, int L, lra_real scale) {
    (void)be;
    int64_t n = (int64_t)CH * H * N;
    if (n <= 0 || L <= 0) return;
    int Lt = Lk < L ? Lk : L;
    CU_LAUNCH(cu_ema_bwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, ddelta, dalpha, dbeta, dgamma, dK, delta, alpha,
              beta, gamma, H, N, CH, Lt, L, (double)scale);
}

// ---- attention weights ---------------------------------------------------------------

#define LAP_MU    0.707107
#define LAP_SIGMA 0.282095
#define CU_MEGA_BLOCK 128  // threads per query row

__device__ __forceinline__ double laplace_f(double x) {
    return 0.5 * (1.0 + erf((x - LAP_MU) / (LAP_SIGMA * sqrt(2.0))));
}
__device__ __forceinline__ double laplace_df(double x) {
    double z = (x - LAP_MU) / LAP_SIGMA;
    return exp(-0.5 * z * z) / (LAP_SIGMA * sqrt(2.0 * M_PI));
}

__device__ __forceinline__ double cu_block_max_d(double v) {
    __shared__ double part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < n_warps ? part[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// real keys per block of C positions (C when there is no mask)
__global__ static void cu_mega_keys_kernel(int *nv, const uint8_t *mask, int64_t n_blk, int C) {
    CU_FOR(blk, n_blk) {
        int n = 0;
        for (int j = 0; j < C; j++) n += mask ? mask[blk * C + j] != 0 : 1;
        nv[blk] = n;
    }
}

// whether key j of block blk counts (softmax: all of them when none is real)
__device__ __forceinline__ int mega_key(const uint8_t *mask, const int *nv, int64_t blk, int C, int j, int kind) {
    if (!mask || (kind == 0 && nv[blk] == 0)) return 1;
    return mask[blk * C + j] != 0;
}

__device__ __forceinline__ double mega_inv_n(const int *nv, int64_t blk) { return 1.0 / (nv[blk] > 0 ? nv[blk] : 1); }

__global__ static void cu_mega_attn_fwd_kernel(lra_real *A, const lra_real *S, const lra_real *w, const uint8_t *mask,
                                               const int *nv, int64_t rows, int C, int M, double scale, int kind) {
    const lra_real *bias0 = w + (M - 1);  // b_ij = bias0[j - i]
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        int64_t blk = row / C;
        int i = (int)(row % C);
        const lra_real *Si = S + row * C;
        lra_real *Ai = A + row * C;
        if (kind == 1) {
            double inv_n = mega_inv_n(nv, blk);
            for (int j = threadIdx.x; j < C; j += blockDim.x)
                Ai[j] = mega_key(mask, nv, blk, C, j, kind) ? (lra_real)laplace_f(Si[j] * inv_n + bias0[j - i]) : 0;
            continue;
        }
        double mx = -INFINITY, sum = 0;
        for (int j = threadIdx.x; j < C; j += blockDim.x) {
            double s = scale * Si[j] + bias0[j - i];
            if (mega_key(mask, nv, blk, C, j, kind) && s > mx) mx = s;
        }
        mx = cu_block_max_d(mx);
        for (int j = threadIdx.x; j < C; j += blockDim.x)
            if (mega_key(mask, nv, blk, C, j, kind)) sum += exp(scale * Si[j] + bias0[j - i] - mx);
        sum = cu_block_sum(sum);
        for (int j = threadIdx.x; j < C; j += blockDim.x)
            Ai[j] = mega_key(mask, nv, blk, C, j, kind) ? (lra_real)(exp(scale * Si[j] + bias0[j - i] - mx) / sum) : 0;
    }
}

static int *mega_keys(lra_backend *be, lra_cuda_carve *cv, const uint8_t *mask, int64_t n_blk, int C) {
    int *nv = (int *)lra_cuda_take(cv, sizeof(int) * (size_t)n_blk);
    CU_LAUNCH(cu_mega_keys_kernel, cu_grid(n_blk, CU_BLOCK), CU_BLOCK, nv, mask, n_blk, C);
    (void)be;
    return nv;
}

void cuda_mega_attn_fwd(lra_backend *be, lra_real *A, const lra_real *S, const lra_real *w, const uint8_t *mask,
                        int B, int NK, int C, int M, lra_real scale, int kind) {
    int64_t n_blk = (int64_t)B * NK, rows = n_blk * C;
    if (rows <= 0) return;
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, LRA_CUDA_ROUND(sizeof(int) * n_blk)), 0 };
    int *nv = mega_keys(be, &cv, mask, n_blk, C);
    CU_LAUNCH(cu_mega_attn_fwd_kernel, cu_grid(rows, 1), CU_MEGA_BLOCK, A, S, w, mask, nv, rows, C, M,
              (double)scale, kind);
}

// g_ij = dL/d(score_ij + b_ij): softmax A (dA - Dsum_i), laplace m_j f'(x) dA
__device__ __forceinline__ double mega_g(const lra_real *A, const lra_real *dA, const lra_real *S,
                                         const lra_real *bias0, const uint8_t *mask, const int *nv, double Dsum,
                                         int64_t blk, int64_t idx, int C, int i, int j, int kind) {
    if (kind == 0) return (double)A[idx] * ((double)dA[idx] - Dsum);
    if (!mega_key(mask, nv, blk, C, j, kind)) return 0.0;
    return laplace_df(S[idx] * mega_inv_n(nv, blk) + bias0[j - i]) * dA[idx];
}

// per row: Dsum_i = sum_j A dA (softmax) and dS += (scale or 1/n) g
__global__ static void cu_mega_attn_ds_kernel(lra_real *dS, double *Dsum, const lra_real *dA, const lra_real *A,
                                              const lra_real *S, const lra_real *w, const uint8_t *mask,
                                              const int *nv, int64_t rows, int C, int M, double scale, int kind) {
    const lra_real *bias0 = w + (M - 1);
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        int64_t blk = row / C, r0 = row * C;
        int i = (int)(row % C);
        double D = 0;
        if (kind == 0) {
            for (int j = threadIdx.x; j < C; j += blockDim.x) D += (double)A[r0 + j] * dA[r0 + j];
            D = cu_block_sum(D);
            if (threadIdx.x == 0) Dsum[row] = D;
        }
        if (!dS) continue;
        double f = kind == 0 ? scale : mega_inv_n(nv, blk);
        for (int j = threadIdx.x; j < C; j += blockDim.x)
            dS[r0 + j] += (lra_real)(f * mega_g(A, dA, S, bias0, mask, nv, D, blk, r0 + j, C, i, j, kind));
    }
}

// one block per offset o = j - i + C - 1: dw[M - C + o] += sum over the rows
// (blk, i) with 0 <= j < C of g_ij
__global__ static void cu_mega_attn_dw_kernel(lra_real *dw, const double *Dsum, const lra_real *dA,
                                              const lra_real *A, const lra_real *S, const lra_real *w,
                                              const uint8_t *mask, const int *nv, int64_t rows, int C, int M,
                                              int kind) {
    const lra_real *bias0 = w + (M - 1);
    for (int o = blockIdx.x; o < 2 * C - 1; o += gridDim.x) {
        int d = o - (C - 1);  // j = i + d
        double acc = 0;
        for (int64_t row = threadIdx.x; row < rows; row += blockDim.x) {
            int i = (int)(row % C), j = i + d;
            if (j < 0 || j >= C) continue;
            int64_t blk = row / C;
            acc += mega_g(A, dA, S, bias0, mask, nv, kind == 0 ? Dsum[row] : 0.0, blk, row * C + j, C, i, j, kind);
        }
        acc = cu_block_sum(acc);
        if (threadIdx.x == 0) dw[M - C + o] += (lra_real)acc;
    }
}

void cuda_mega_attn_bwd(lra_backend *be, lra_real *dS, lra_real *dw, const lra_real *dA, const lra_real *A,
                        const lra_real *S, const lra_real *w, const uint8_t *mask, int B, int NK, int C, int M,
                        lra_real scale, int kind) {
    int64_t n_blk = (int64_t)B * NK, rows = n_blk * C;
    if (rows <= 0 || (!dS && !dw)) return;
    size_t bn = LRA_CUDA_ROUND(sizeof(int) * n_blk), bd = LRA_CUDA_ROUND(sizeof(double) * rows);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, bn + bd), 0 };
    int *nv = mega_keys(be, &cv, mask, n_blk, C);
    double *Dsum = (double *)lra_cuda_take(&cv, bd);
    if (dS || kind == 0)
        CU_LAUNCH(cu_mega_attn_ds_kernel, cu_grid(rows, 1), CU_MEGA_BLOCK, dS, Dsum, dA, A, S, w, mask, nv, rows, C,
                  M, (double)scale, kind);
    if (dw)
        CU_LAUNCH(cu_mega_attn_dw_kernel, cu_grid(2 * (int64_t)C - 1, 1), CU_BLOCK, dw, Dsum, dA, A, S, w, mask, nv,
                  rows, C, M, kind);
}
