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
// dimensions d = lane + 32 k. Head widths 64 and 128 take a register-tiled
// kernel instead (64 x 64 tiles, below), the same algorithm at several
// times the arithmetic intensity. Nothing of size L x L exists anywhere.
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


// ---- forward, register-tiled (head widths 64 and 128) -------------------------------------------
// The same online softmax for a block of CU_AT_BQ = 64 query rows against key
// tiles of CU_AT_BK = 64: 256 threads as a 16 x 16 grid (ty, tx), thread
// (ty, tx) owns rows ty*4 .. ty*4+3 of the block, score columns tx*4 .. +3 of
// the tile and output columns tx*OC .. +OC-1 (OC = DH/16). S = Q K^T and
// O += (P∘Z) V are register-blocked 4 x 4 and 4 x OC products over operands
// staged in shared memory (Q and K transposed and P transposed, so that every
// operand is one float4 load); a row's max and sum combine over the 16 lanes
// of its half-warp by shuffles. The row statistics are those of the simple
// kernel above, so the two agree to rounding.

#define CU_AT_BQ 64
#define CU_AT_BK 64
#define CU_AT_P  (CU_AT_BQ + 4)  // padded pitch of the transposed tiles (float4-aligned)

template <int DH>
static size_t cu_at_shmem(void) {
    return sizeof(float) * ((size_t)DH * CU_AT_P * 2 + (size_t)CU_AT_BK * (DH + 4) + (size_t)CU_AT_BK * CU_AT_P);
}

template <int DH>
__global__ static void __launch_bounds__(256)
cu_att_fwd_tiled(lra_real *out, lra_real *lse, const lra_real *q, const lra_real *k, const lra_real *v,
                 const uint8_t *mask, cu_att_dims d) {
    constexpr int OC = DH / 16, VP = DH + 4;
    extern __shared__ float sm[];
    float *QsT = sm;                      // (DH, CU_AT_P): QsT[c][r] = q[i0 + r][c]
    float *KsT = QsT + DH * CU_AT_P;      // (DH, CU_AT_P): KsT[c][j] = k[j0 + j][c]
    float *Vs = KsT + DH * CU_AT_P;       // (CU_AT_BK, VP)
    float *PsT = Vs + CU_AT_BK * VP;      // (CU_AT_BK, CU_AT_P): PsT[j][r] = P∘Z of (r, j)
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int64_t bh = blockIdx.y;
    const int L = d.L, i0 = blockIdx.x * CU_AT_BQ;
    const uint8_t *mrow = mask ? mask + (bh / d.NH) * L : NULL;
    const lra_real *qh = q + bh * L * DH, *kh = k + bh * L * DH, *vh = v + bh * L * DH;

    for (int e = tid; e < CU_AT_BQ * DH / 4; e += 256) {  // Q block, transposed
        int r = e / (DH / 4), c4 = (e % (DH / 4)) * 4, i = i0 + r;
        float4 x = i < L ? *(const float4 *)(qh + (int64_t)i * DH + c4) : make_float4(0, 0, 0, 0);
        QsT[(c4 + 0) * CU_AT_P + r] = x.x;
        QsT[(c4 + 1) * CU_AT_P + r] = x.y;
        QsT[(c4 + 2) * CU_AT_P + r] = x.z;
        QsT[(c4 + 3) * CU_AT_P + r] = x.w;
    }
    float o[4][OC], m[4], l[4];
    for (int a = 0; a < 4; a++) {
        m[a] = -INFINITY;
        l[a] = 0;
        for (int b = 0; b < OC; b++) o[a][b] = 0;
    }
    const int last = min(i0 + CU_AT_BQ, L) - 1;
    const int nk = d.causal ? last + 1 : L;
    for (int j0 = 0; j0 < nk; j0 += CU_AT_BK) {
        __syncthreads();  // the previous tile is no longer read (and Q is in place)
        for (int e = tid; e < CU_AT_BK * DH / 4; e += 256) {
            int r = e / (DH / 4), c4 = (e % (DH / 4)) * 4, j = j0 + r;
            float4 x = make_float4(0, 0, 0, 0), y = x;
            if (j < L) {
                x = *(const float4 *)(kh + (int64_t)j * DH + c4);
                y = *(const float4 *)(vh + (int64_t)j * DH + c4);
            }
            KsT[(c4 + 0) * CU_AT_P + r] = x.x;
            KsT[(c4 + 1) * CU_AT_P + r] = x.y;
            KsT[(c4 + 2) * CU_AT_P + r] = x.z;
            KsT[(c4 + 3) * CU_AT_P + r] = x.w;
            *(float4 *)(Vs + r * VP + c4) = y;
        }
        __syncthreads();
        // S (4 x 4) = Q K^T of the thread's rows and columns
        float sc[4][4];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) sc[a][b] = 0;
#pragma unroll 8
        for (int c = 0; c < DH; c++) {
            float4 qa = *(const float4 *)(QsT + c * CU_AT_P + ty * 4);
            float4 kb = *(const float4 *)(KsT + c * CU_AT_P + tx * 4);
            float qv[4] = { qa.x, qa.y, qa.z, qa.w }, kv[4] = { kb.x, kb.y, kb.z, kb.w };
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < 4; b++) sc[a][b] += qv[a] * kv[b];
        }
        // online softmax per row; P∘Z into PsT
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int i = i0 + ty * 4 + a;
            bool vis[4];
            float mt = -INFINITY;
#pragma unroll
            for (int b = 0; b < 4; b++) {
                int j = j0 + tx * 4 + b;
                vis[b] = cu_att_visible(d, mrow, i, j);
                sc[a][b] = vis[b] ? d.scale * sc[a][b] : -INFINITY;
                mt = fmaxf(mt, sc[a][b]);
            }
            for (int o2 = 8; o2 > 0; o2 >>= 1) mt = fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, o2));
            float mn = fmaxf(m[a], mt);
            float corr = mn == -INFINITY ? 1.0f : (m[a] == -INFINITY ? 0.0f : expf(m[a] - mn));
            float ps = 0;
#pragma unroll
            for (int b = 0; b < 4; b++) {
                int j = j0 + tx * 4 + b;
                float p = vis[b] ? expf(sc[a][b] - mn) : 0.0f;
                ps += p;
                PsT[(tx * 4 + b) * CU_AT_P + ty * 4 + a] = (p != 0.0f && i < L) ? p * cu_att_z(d, bh, i, j) : 0.0f;
            }
            for (int o2 = 8; o2 > 0; o2 >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o2);
            l[a] = l[a] * corr + ps;
            m[a] = mn;
#pragma unroll
            for (int b = 0; b < OC; b++) o[a][b] *= corr;
        }
        __syncthreads();
        // O (4 x OC) += (P∘Z) V
#pragma unroll 4
        for (int j = 0; j < CU_AT_BK; j++) {
            float4 pa = *(const float4 *)(PsT + j * CU_AT_P + ty * 4);
            float pv[4] = { pa.x, pa.y, pa.z, pa.w }, vv[OC];
#pragma unroll
            for (int b = 0; b < OC; b += 4) {
                float4 x = *(const float4 *)(Vs + j * VP + tx * OC + b);
                vv[b] = x.x;
                vv[b + 1] = x.y;
                vv[b + 2] = x.z;
                vv[b + 3] = x.w;
            }
#pragma unroll
            for (int a = 0; a < 4; a++)
#pragma unroll
                for (int b = 0; b < OC; b++) o[a][b] += pv[a] * vv[b];
        }
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int i = i0 + ty * 4 + a;
        if (i >= L) continue;
        int64_t row = bh * L + i;
        float inv = m[a] == -INFINITY ? 0.0f : 1.0f / l[a];
#pragma unroll
        for (int b = 0; b < OC; b += 4) {
            float4 x = make_float4(o[a][b] * inv, o[a][b + 1] * inv, o[a][b + 2] * inv, o[a][b + 3] * inv);
            *(float4 *)(out + row * DH + tx * OC + b) = x;
        }
        if (tx == 0) lse[row] = m[a] == -INFINITY ? -INFINITY : (lra_real)((double)m[a] + log((double)l[a]));
    }
}

template <int DH>
static void cu_att_fwd_tiled_launch(lra_real *out, lra_real *lse, const lra_real *q, const lra_real *k,
                                    const lra_real *v, const uint8_t *mask, const cu_att_dims &d) {
    size_t shmem = cu_at_shmem<DH>();
    CU_CHECK(cudaFuncSetAttribute(cu_att_fwd_tiled<DH>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shmem));
    dim3 grid((unsigned)((d.L + CU_AT_BQ - 1) / CU_AT_BQ), (unsigned)(d.B * d.NH));
    CU_LAUNCH_SHM(cu_att_fwd_tiled<DH>, grid, 256, shmem, out, lse, q, k, v, mask, d);
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
    int aligned = (((uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)out) & 15) == 0;
    if (aligned && Dh == 64) return cu_att_fwd_tiled_launch<64>(out, lse, q, k, v, mask, d);
    if (aligned && Dh == 128) return cu_att_fwd_tiled_launch<128>(out, lse, q, k, v, mask, d);
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

// S (BH, nq, L) = scale Q K^T -> P∘Z;  G (BH, nq, L) = dO V^T -> dS = P∘(Z∘G - D).
// One block per row (bh, r) at a time, threads along the keys.
__global__ static void cu_att_ds_kernel(lra_real *S, lra_real *G, const lra_real *lse, const lra_real *D,
                                        const uint8_t *mask, cu_att_dims d, int i0, int nq, int need_ds) {
    const int L = d.L;
    const int64_t nrows = (int64_t)d.B * d.NH * nq;
    for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
        const int64_t bh = row / nq;
        const int i = i0 + (int)(row % nq);
        const uint8_t *mrow = mask ? mask + (bh / d.NH) * L : NULL;
        const float li = lse[bh * L + i], Di = need_ds ? D[bh * L + i] : 0.0f;
        lra_real *Sr = S + row * L, *Gr = G + row * L;
        for (int j = threadIdx.x; j < L; j += blockDim.x) {
            float p = 0;
            if (li != -INFINITY && cu_att_visible(d, mrow, i, j)) p = expf(Sr[j] - li);
            if (p == 0.0f) {  // also the columns no product wrote
                if (need_ds) Gr[j] = 0;
                Sr[j] = 0;
                continue;
            }
            float z = cu_att_z(d, bh, i, j);
            if (need_ds) Gr[j] = p * (z * Gr[j] - Di);
            Sr[j] = p * z;
        }
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
        CU_LAUNCH(cu_att_ds_kernel, cu_grid(BH * nq, 1), CU_BLOCK, S, G, lse, D, mask, d, i0, nq, need_ds);
        if (dv) cuda_gemm(be, 1, 0, nk, Dh, nq, 1, S, L, ss, dout + ro, Dh, hs, 1, dv, Dh, hs, (int)BH);
        if (dq) cuda_gemm(be, 0, 0, nq, Dh, nk, scale, G, L, ss, k, Dh, hs, 1, dq + ro, Dh, hs, (int)BH);
        if (dk) cuda_gemm(be, 1, 0, nk, Dh, nq, scale, G, L, ss, q + ro, Dh, hs, 1, dk, Dh, hs, (int)BH);
    }
}
