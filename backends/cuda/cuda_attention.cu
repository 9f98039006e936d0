// cuda_attention.cu: multi-head softmax attention, forward and backward, with
// the contract of backends/cpu/cpu_attention.c (visible keys, lse, the
// dropout mask of (seed, b, h, i, j), empty rows):
//   lse_i = log sum_{j in V(i)} exp(s_ij),  s_ij = scale q_i.k_j
//   out_i = sum_j P_ij Z_ij v_j,            P_ij = exp(s_ij - lse_i)
//   keep_ij = lra_rand_uniform(seed, ((b NH + h) L + i) L + j) >= p
//
// Forward: one fused kernel (FlashAttention's online softmax, Dao et al.
// 2022, Algorithm 1). A block of CU_ATT_ROWS warps takes CU_ATT_ROWS query
// rows of one (b, h), one row per warp, and walks the keys in tiles of 32
// staged in shared memory: lane l scores key j0 + l, the warp's running max
// and sum rescale the row's accumulator, and the lanes own the output
// dimensions d = lane + 32 k. Nothing of size L x L exists anywhere.
//
// Backward (Algorithm 4 of the same paper, block by block): the query rows
// are cut into blocks of nq rows, sized so that two (B NH, nq, L) buffers
// stay within CU_ATT_BWD_ELEMS floats; per block, cuBLAS forms S = scale Q K^T
// and G = dO V^T, one kernel turns them into P∘Z and dS = P∘(Z∘G - D) with
// D_i = dO_i.O_i, and cuBLAS accumulates dV += (P∘Z)^T dO, dQ += scale dS K,
// dK += scale dS^T Q. Every product accumulates in a fixed order: the
// results are the same from run to run.
#include "cuda.cuh"

#define CU_ATT_ROWS 8                     // query rows (warps) per block of the forward
#define CU_ATT_TILE 32                    // keys per tile
#define CU_ATT_DMAX 128                   // largest head width
#define CU_ATT_DPL (CU_ATT_DMAX / 32)     // output dimensions per lane
#define CU_ATT_BWD_ELEMS ((int64_t)1 << 26)  // floats in each backward score buffer

struct cu_att_dims {
    int B, NH, L, Dh, causal;
    float scale, dp, zs;  // dropout probability and 1/(1 - p) (0 when p >= 1)
    uint64_t seed;
};

__device__ __forceinline__ bool cu_att_visible(const cu_att_dims &d, const uint8_t *mrow, int i, int j) {
    return j < d.L && (!mrow || mrow[j]) && (!d.causal || j <= i);
}

// Z_ij of head bh: 1/(1-p) kept, 0 dropped; 1 without dropout
__device__ __forceinline__ float cu_att_z(const cu_att_dims &d, int64_t bh, int i, int j) {
    if (d.dp <= 0) return 1.0f;
    uint64_t ctr = ((uint64_t)bh * (uint64_t)d.L + (uint64_t)i) * (uint64_t)d.L + (uint64_t)j;
    return lra_rand_uniform(d.seed, ctr) >= d.dp ? d.zs : 0.0f;
}

// ---- forward ------------------------------------------------------------------------------

__global__ static void __launch_bounds__(CU_ATT_ROWS * 32)
cu_att_fwd_kernel(lra_real *out, lra_real *lse, const lra_real *q, const lra_real *k, const lra_real *v,
                  const uint8_t *mask, cu_att_dims d) {
    extern __shared__ float sm[];
    const int Dh = d.Dh, ks = Dh + 1;  // padded rows: lane l reads Ks[l][c] without bank conflicts
    float *Ks = sm, *Vs = Ks + CU_ATT_TILE * ks, *Qs = Vs + CU_ATT_TILE * Dh;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t bh = blockIdx.y;
    const int i0 = blockIdx.x * CU_ATT_ROWS, i = i0 + warp;
    const bool active = i < d.L;
    const uint8_t *mrow = mask ? mask + (bh / d.NH) * d.L : NULL;
    const lra_real *qh = q + bh * d.L * Dh, *kh = k + bh * d.L * Dh, *vh = v + bh * d.L * Dh;
    float *qs = Qs + warp * Dh;
    for (int c = lane; c < Dh; c += 32) qs[c] = active ? qh[(int64_t)i * Dh + c] : 0.0f;
    float o[CU_ATT_DPL];
    for (int t = 0; t < CU_ATT_DPL; t++) o[t] = 0;
    float m = -INFINITY, lsum = 0;
    int last = min(i0 + CU_ATT_ROWS, d.L) - 1;  // the block's last row
    int nk = d.causal ? last + 1 : d.L;
    for (int j0 = 0; j0 < nk; j0 += CU_ATT_TILE) {
        __syncthreads();  // the previous tile is no longer read
        for (int e = threadIdx.x; e < CU_ATT_TILE * Dh; e += blockDim.x) {
            int r = e / Dh, c = e % Dh, j = j0 + r;
            Ks[r * ks + c] = j < d.L ? kh[(int64_t)j * Dh + c] : 0.0f;
            Vs[r * Dh + c] = j < d.L ? vh[(int64_t)j * Dh + c] : 0.0f;
        }
        __syncthreads();
        if (!active) continue;
        int j = j0 + lane;
        bool vis = cu_att_visible(d, mrow, i, j);
        float s = -INFINITY;
        if (vis) {
            float acc = 0;
            for (int c = 0; c < Dh; c++) acc += qs[c] * Ks[lane * ks + c];
            s = d.scale * acc;
        }
        float mt = cu_warp_max(s);
        if (mt == -INFINITY) continue;  // no visible key in this tile (uniform over the warp)
        float mn = fmaxf(m, mt), corr = m == -INFINITY ? 0.0f : expf(m - mn);
        float p = vis ? expf(s - mn) : 0.0f;
        float ps = p;
        for (int o2 = 16; o2 > 0; o2 >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o2);
        lsum = lsum * corr + ps;
        m = mn;
        float pz = p * (vis ? cu_att_z(d, bh, i, j) : 0.0f);
        for (int t = 0; t < CU_ATT_DPL; t++) o[t] *= corr;
        for (int l = 0; l < CU_ATT_TILE; l++) {
            float pl = __shfl_sync(0xffffffffu, pz, l);
            if (pl == 0.0f) continue;  // uniform: every lane holds the same pl
            const float *vr = Vs + l * Dh;
            for (int t = 0; t < CU_ATT_DPL; t++) {
                int c = lane + 32 * t;
                if (c < Dh) o[t] += pl * vr[c];
            }
        }
    }
    if (!active) return;
    int64_t row = bh * d.L + i;
    float inv = m == -INFINITY ? 0.0f : 1.0f / lsum;
    for (int t = 0; t < CU_ATT_DPL; t++) {
        int c = lane + 32 * t;
        if (c < Dh) out[row * Dh + c] = o[t] * inv;
    }
    if (lane == 0) lse[row] = m == -INFINITY ? -INFINITY : (lra_real)((double)m + log((double)lsum));
}

static cu_att_dims cu_att_make(int B, int NH, int L, int Dh, lra_real scale, int causal, lra_real dropout_p,
                               uint64_t seed) {
    cu_att_dims d = { B, NH, L, Dh, causal, scale, dropout_p,
                      dropout_p < 1 ? (float)(1.0 / (1.0 - (double)dropout_p)) : 0.0f, seed };
    return d;
}

void cuda_attention_fwd(lra_backend *be, lra_real *out, lra_real *lse, const lra_real *q, const lra_real *k,
                        const lra_real *v, const uint8_t *mask, int B, int NH, int L, int Dh, lra_real scale,
                        int causal, lra_real dropout_p, uint64_t seed) {
    (void)be;
    if (B <= 0 || NH <= 0 || L <= 0 || Dh <= 0) return;
    LRA_ASSERT(Dh <= CU_ATT_DMAX);
    LRA_ASSERT((int64_t)B * NH <= 65535);
    cu_att_dims d = cu_att_make(B, NH, L, Dh, scale, causal, dropout_p, seed);
    size_t shmem = sizeof(float) * ((size_t)CU_ATT_TILE * (Dh + 1) + (size_t)CU_ATT_TILE * Dh + (size_t)CU_ATT_ROWS * Dh);
    dim3 grid((unsigned)((L + CU_ATT_ROWS - 1) / CU_ATT_ROWS), (unsigned)(B * NH));
    CU_LAUNCH_SHM(cu_att_fwd_kernel, grid, dim3(CU_ATT_ROWS * 32), shmem, out, lse, q, k, v, mask, d);
}

// ---- backward ----------------------------------------------------------------------------

// D (B NH L) = dO_i . O_i, in double, rounded to float (as on the CPU)
__global__ static void cu_att_D_kernel(lra_real *D, const lra_real *dout, const lra_real *out, int64_t rows, int Dh) {
    CU_FOR(r, rows) {
        double s = 0;
        for (int c = 0; c < Dh; c++) s += (double)dout[r * Dh + c] * out[r * Dh + c];
        D[r] = (lra_real)s;
    }
}

// S (BH, nq, L) = scale Q K^T -> P∘Z;  G (BH, nq, L) = dO V^T -> dS = P∘(Z∘G - D)
__global__ static void cu_att_ds_kernel(lra_real *S, lra_real *G, const lra_real *lse, const lra_real *D,
                                        const uint8_t *mask, cu_att_dims d, int i0, int nq, int need_ds) {
    int64_t n = (int64_t)d.B * d.NH * nq * d.L;
    CU_FOR(e, n) {
        int j = (int)(e % d.L);
        int64_t t = e / d.L;
        int r = (int)(t % nq);
        int64_t bh = t / nq;
        int i = i0 + r;
        const uint8_t *mrow = mask ? mask + (bh / d.NH) * d.L : NULL;
        float l = lse[bh * d.L + i], p = 0;
        if (l != -INFINITY && cu_att_visible(d, mrow, i, j)) p = expf(S[e] - l);
        if (p == 0.0f) {  // also the columns no product wrote
            if (need_ds) G[e] = 0;
            S[e] = 0;
            continue;
        }
        float z = cu_att_z(d, bh, i, j);
        if (need_ds) G[e] = p * (z * G[e] - D[bh * d.L + i]);
        S[e] = p * z;
    }
}

void cuda_attention_bwd(lra_backend *be, lra_real *dq, lra_real *dk, lra_real *dv, const lra_real *dout,
                        const lra_real *out, const lra_real *lse, const lra_real *q, const lra_real *k,
                        const lra_real *v, const uint8_t *mask, int B, int NH, int L, int Dh, lra_real scale,
                        int causal, lra_real dropout_p, uint64_t seed) {
    if (B <= 0 || NH <= 0 || L <= 0 || Dh <= 0 || (!dq && !dk && !dv)) return;
    cu_att_dims d = cu_att_make(B, NH, L, Dh, scale, causal, dropout_p, seed);
    const int64_t BH = (int64_t)B * NH, rows = BH * L, hs = (int64_t)L * Dh;
    LRA_ASSERT(BH <= INT32_MAX);
    int64_t nq64 = CU_ATT_BWD_ELEMS / (BH * L);
    if (nq64 > L) nq64 = L;
    if (nq64 > 32) nq64 &= ~(int64_t)31;
    if (nq64 < 1) nq64 = 1;
    const int nqmax = (int)nq64, need_ds = dq || dk;
    size_t bS = LRA_CUDA_ROUND(sizeof(lra_real) * BH * nqmax * L), bD = LRA_CUDA_ROUND(sizeof(lra_real) * rows);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, 2 * bS + bD), 0 };
    lra_real *S = (lra_real *)lra_cuda_take(&cv, bS), *G = (lra_real *)lra_cuda_take(&cv, bS);
    lra_real *D = (lra_real *)lra_cuda_take(&cv, bD);
    if (need_ds) CU_LAUNCH(cu_att_D_kernel, cu_grid(rows, CU_BLOCK), CU_BLOCK, D, dout, out, rows, Dh);
    for (int i0 = 0; i0 < L; i0 += nqmax) {
        int nq = L - i0 < nqmax ? L - i0 : nqmax;
        const int64_t ro = (int64_t)i0 * Dh, ss = (int64_t)nq * L;
        // keys a block can see: all, or [0, i0 + nq) when causal
        int nk = causal && i0 + nq < L ? i0 + nq : L;
        cuda_gemm(be, 0, 1, nq, nk, Dh, scale, q + ro, Dh, hs, k, Dh, hs, 0, S, L, ss, (int)BH);
        if (need_ds) cuda_gemm(be, 0, 1, nq, nk, Dh, 1, dout + ro, Dh, hs, v, Dh, hs, 0, G, L, ss, (int)BH);
        // columns [nk, L) are never read as visible (causal); the kernel zeroes them
        CU_LAUNCH(cu_att_ds_kernel, cu_grid(BH * ss, CU_BLOCK), CU_BLOCK, S, G, lse, D, mask, d, i0, nq, need_ds);
        if (dv) cuda_gemm(be, 1, 0, nk, Dh, nq, 1, S, L, ss, dout + ro, Dh, hs, 1, dv, Dh, hs, (int)BH);
        if (dq) cuda_gemm(be, 0, 0, nq, Dh, nk, scale, G, L, ss, k, Dh, hs, 1, dq + ro, Dh, hs, (int)BH);
        if (dk) cuda_gemm(be, 1, 0, nk, Dh, nq, scale, G, L, ss, q + ro, Dh, hs, 1, dk, Dh, hs, (int)BH);
    }
}
