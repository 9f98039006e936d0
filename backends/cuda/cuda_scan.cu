// cuda_scan.cu: diagonal linear recurrence and its adjoint (models.md 0.3) as
// a chunked parallel scan.
//
// The recurrence visits steps s = 0..L-1 at times t(s) = s, or L-1-s with
// LRA_SCAN_REVERSE (the contract and the adjoint are written out in
// backends/cpu/cpu_scan.c). Each step is the affine map X -> a X + b, and a
// composition of affine maps is affine, so L is cut into chunks of CU_SCAN_T
// steps and (Blelloch, "Prefix sums and their applications", 1990):
//   1. every (b, chunk, n) composes its chunk's maps from a zero state:
//      X_end = P X_start + S,  P = prod a, S = the chunk's scan from 0;
//   2. every (b, n) runs the short recurrence over chunks, start_{c+1} =
//      P_c start_c + S_c, from x0 (or 0);
//   3. every (b, chunk, n) reruns its chunk from its true start, writing x.
// The adjoint is the same three passes in the opposite step order, with the
// map g_s = conj(a_{t(s+1)}) g_{s+1} + dx_{t(s)}; pass 3 also writes db and
// da (the time-invariant da is summed per (b, chunk) in double, then over b
// and chunks in a fixed order: deterministic, no atomics). Carried states and
// chunk maps are in double, like the CPU's carried state. Threads of a warp
// take consecutive n, so every access to (B, L, N)c rows is coalesced.
#include "cuda.cuh"

#define CU_SCAN_T 64  // steps per chunk

struct cu_scan_dims {
    int B, L, N, nch, rev, tv;
};

// offset (in complex numbers) of (b, t(s), n)
__device__ __forceinline__ int64_t cu_scan_at(const cu_scan_dims &d, int b, int s, int n) {
    int t = d.rev ? d.L - 1 - s : s;
    return ((int64_t)b * d.L + t) * d.N + n;
}

__device__ __forceinline__ cu_cd cu_scan_a(const cu_scan_dims &d, const lra_real *a, int b, int s, int n) {
    return d.tv ? cd_ld(a, cu_scan_at(d, b, s, n)) : cd_ld(a, n);
}

// ---- forward ----------------------------------------------------------------------

// pass 1: P, S (B, nch, N) of every chunk
__global__ static void cu_scan_fwd_chunks(cu_cd *P, cu_cd *S, const lra_real *a, const lra_real *bb, cu_scan_dims d) {
    CU_FOR(i, (int64_t)d.B * d.nch * d.N) {
        int n = (int)(i % d.N), c = (int)((i / d.N) % d.nch), b = (int)(i / ((int64_t)d.N * d.nch));
        int s0 = c * CU_SCAN_T, s1 = min(s0 + CU_SCAN_T, d.L);
        cu_cd p = cd(1, 0), x = cd(0, 0);
#pragma unroll 8
        for (int s = s0; s < s1; s++) {
            cu_cd at = cu_scan_a(d, a, b, s, n);
            x = at * x + cd_ld(bb, cu_scan_at(d, b, s, n));
            p = at * p;
        }
        P[i] = p;
        S[i] = x;
    }
}

// pass 2: S (B, nch, N) becomes the start state of every chunk
__global__ static void cu_scan_fwd_carry(cu_cd *S, const cu_cd *P, const lra_real *x0, cu_scan_dims d) {
    CU_FOR(i, (int64_t)d.B * d.N) {
        int n = (int)(i % d.N), b = (int)(i / d.N);
        cu_cd carry = x0 ? cd_ld(x0, i) : cd(0, 0);
        for (int c = 0; c < d.nch; c++) {
            int64_t j = ((int64_t)b * d.nch + c) * d.N + n;
            cu_cd s = S[j];
            S[j] = carry;
            carry = P[j] * carry + s;
        }
    }
}

// pass 3: x from each chunk's start
__global__ static void cu_scan_fwd_apply(lra_real *x, const cu_cd *start, const lra_real *a, const lra_real *bb,
                                         cu_scan_dims d) {
    CU_FOR(i, (int64_t)d.B * d.nch * d.N) {
        int n = (int)(i % d.N), c = (int)((i / d.N) % d.nch), b = (int)(i / ((int64_t)d.N * d.nch));
        int s0 = c * CU_SCAN_T, s1 = min(s0 + CU_SCAN_T, d.L);
        cu_cd xs = start[i];
#pragma unroll 8
        for (int s = s0; s < s1; s++) {
            int64_t o = cu_scan_at(d, b, s, n);
            xs = cu_scan_a(d, a, b, s, n) * xs + cd_ld(bb, o);
            cd_st(x, o, xs);
        }
    }
}


// ---- forward in one pass (decoupled look-back) --------------------------------------------
// Merrill & Garland, "Single-pass parallel prefix scan with decoupled
// look-back" (2016), on the affine maps of the recurrence: a block takes a
// tile of CU_SL_TT = 8 x CU_SL_SUB steps of 32 modes of one example (lane =
// mode, warp w = the w-th run of CU_SL_SUB steps, held in registers; a and b
// read as float2, so the pointers must be 8-byte aligned), and
//   1. every thread composes its run's maps; warp 0 composes the 8 runs into
//      the tile's map (P, S) and publishes it (flag 1);
//   2. the block walks back over the earlier tiles of its (b, modes) row in
//      windows of 8 (one tile per warp, read in parallel), composing
//      published maps until it meets a published end state (flag 2; the
//      row's first tile publishes its end state at once, from x0 or 0); it
//      publishes the tile's end state (flag 2);
//   3. every warp starts its run from that state and writes x.
// Tiles take their index from an atomic counter in launch order, so every
// earlier tile of a row is already running: the walk cannot deadlock. The
// index runs over the rows (b, modes) first, so the resident blocks hold a
// few consecutive tiles of every row and the walks stay short. a and b are
// read once and x written once, the bandwidth bound of the recurrence.
// (Runs of 8 steps and 4 blocks per SM measured fastest on an H100: 1.8 TB/s
// time varying, against 1.4 TB/s for runs of 16 and the tile index along L.)

#define CU_SL_SUB 8
#define CU_SL_WARPS 8
#define CU_SL_TT (CU_SL_SUB * CU_SL_WARPS)

struct cu_sl_state {
    cu_cd *agg_p, *agg_s;  // (tiles, 32) published tile maps
    cu_cd *incl;           // (tiles, 32) published end states
    int *flag;             // (tiles, 32): 0 nothing, 1 map, 2 end state
    unsigned *counter;     // next tile index
};

__device__ __forceinline__ cu_cd cu_ld_cg(const cu_cd *p) {
    double2 v = __ldcg((const double2 *)p);
    return cd(v.x, v.y);
}

__global__ static void __launch_bounds__(CU_SL_WARPS * 32, 4)
cu_scan_fwd_lookback(lra_real *x, const lra_real *a, const lra_real *bb, const lra_real *x0, cu_scan_dims d,
                     cu_sl_state st, int ntt, int nnt) {
    __shared__ unsigned tile_sh;
    __shared__ cu_cd runP[CU_SL_WARPS][32], runS[CU_SL_WARPS][32], start_sh[CU_SL_WARPS][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (threadIdx.x == 0) tile_sh = atomicAdd(st.counter, 1u);
    __syncthreads();
    const unsigned tile = tile_sh, rows = (unsigned)d.B * nnt, row = tile % rows;
    const int tt = (int)(tile / rows), nt = (int)(row % nnt), b = (int)(row / nnt);
    const int n = nt * 32 + lane, s0 = tt * CU_SL_TT + warp * CU_SL_SUB;
    const bool live = n < d.N;
    float2 av[CU_SL_SUB], bv[CU_SL_SUB];  // the run's a and b, as stored (float)
    cu_cd p = cd(1, 0), acc = cd(0, 0);
#pragma unroll
    for (int j = 0; j < CU_SL_SUB; j++) {
        int s = s0 + j;
        if (live && s < d.L) {
            int64_t o = cu_scan_at(d, b, s, n), oa = d.tv ? o : n;
            av[j] = ((const float2 *)a)[oa];
            bv[j] = ((const float2 *)bb)[o];
        } else {
            av[j] = make_float2(1, 0);
            bv[j] = make_float2(0, 0);
        }
        cu_cd aj = cd(av[j].x, av[j].y);
        acc = aj * acc + cd(bv[j].x, bv[j].y);
        p = aj * p;
    }
    runP[warp][lane] = p;
    runS[warp][lane] = acc;
    __syncthreads();
    __shared__ cu_cd winP[CU_SL_WARPS][32], winS[CU_SL_WARPS][32];
    __shared__ int winF[CU_SL_WARPS][32];
    __shared__ cu_cd WP_sh[32], WS_sh[32], xin_sh[32];
    __shared__ int done_sh[32];
    const int64_t me = ((int64_t)row * ntt + tt) * 32 + lane;  // this tile's slot: (row, tt, lane)
    if (warp == 0) {
        // the tile's map and each run's offset inside the tile
        cu_cd TP = cd(1, 0), TS = cd(0, 0);
        for (int w = 0; w < CU_SL_WARPS; w++) {
            start_sh[w][lane] = TS;  // run w starts from TP_w x_in + TS_w (TP_w kept in runP)
            cu_cd rp = runP[w][lane], rs = runS[w][lane];
            runP[w][lane] = TP;
            TS = rp * TS + rs;
            TP = rp * TP;
        }
        runS[0][lane] = TP;  // the tile's map, kept for the end state
        runS[1][lane] = TS;
        WP_sh[lane] = cd(1, 0);
        WS_sh[lane] = cd(0, 0);
        done_sh[lane] = tt == 0;
        if (tt == 0) {
            xin_sh[lane] = (x0 && live) ? cd_ld(x0, (int64_t)b * d.N + n) : cd(0, 0);
        } else {
            st.agg_p[me] = TP;
            st.agg_s[me] = TS;
            __threadfence();
            atomicExch(&st.flag[me], 1);
        }
    }
    __syncthreads();
    // walk back over windows of CU_SL_WARPS earlier tiles, read in parallel
    // (warp w reads tile tt-1-w of the window), composed in order by warp 0
    for (int base = tt - 1; !__syncthreads_and(done_sh[lane]); base -= CU_SL_WARPS) {
        int kt = base - warp;  // tt index of the tile this warp reads
        if (kt >= 0 && !done_sh[lane]) {
            int64_t k = me - (int64_t)(tt - kt) * 32;  // tile kt of the same row
            int f;
            while ((f = atomicAdd(&st.flag[k], 0)) == 0) {
            }
            __threadfence();
            winF[warp][lane] = f;
            if (f == 2) winP[warp][lane] = cu_ld_cg(&st.incl[k]);
            else {
                winP[warp][lane] = cu_ld_cg(&st.agg_p[k]);
                winS[warp][lane] = cu_ld_cg(&st.agg_s[k]);
            }
        }
        __syncthreads();
        if (warp == 0 && !done_sh[lane]) {
            cu_cd WP = WP_sh[lane], WS = WS_sh[lane];
            for (int w = 0; w < CU_SL_WARPS && base - w >= 0; w++) {
                if (winF[w][lane] == 2) {  // an end state: x_in = W(e)
                    xin_sh[lane] = WP * winP[w][lane] + WS;
                    done_sh[lane] = 1;
                    break;
                }
                cu_cd kp = winP[w][lane], ks = winS[w][lane];
                WS = WP * ks + WS;  // W o K: x -> WP (kp x + ks) + WS
                WP = WP * kp;
            }
            WP_sh[lane] = WP;
            WS_sh[lane] = WS;
        }
    }
    if (warp == 0) {
        cu_cd xin = xin_sh[lane];
        st.incl[me] = runS[0][lane] * xin + runS[1][lane];
        __threadfence();
        atomicExch(&st.flag[me], 2);
        for (int w = 0; w < CU_SL_WARPS; w++) start_sh[w][lane] = runP[w][lane] * xin + start_sh[w][lane];
    }
    __syncthreads();
    cu_cd xs = start_sh[warp][lane];
#pragma unroll
    for (int j = 0; j < CU_SL_SUB; j++) {
        int s = s0 + j;
        xs = cd(av[j].x, av[j].y) * xs + cd(bv[j].x, bv[j].y);
        if (live && s < d.L) ((float2 *)x)[cu_scan_at(d, b, s, n)] = make_float2((float)xs.re, (float)xs.im);
    }
}

static cu_scan_dims cu_scan_make(int B, int L, int N, int flags) {
    cu_scan_dims d = { B, L, N, (L + CU_SCAN_T - 1) / CU_SCAN_T, (flags & LRA_SCAN_REVERSE) != 0,
                       !(flags & LRA_SCAN_TIME_INVARIANT) };
    return d;
}

void cuda_scan_fwd(lra_backend *be, lra_real *x, const lra_real *a, const lra_real *b, const lra_real *x0, int B,
                   int L, int N, int flags) {
    if (B <= 0 || L <= 0 || N <= 0) return;
    cu_scan_dims d = cu_scan_make(B, L, N, flags);
    int ntt = (L + CU_SL_TT - 1) / CU_SL_TT, nnt = (N + 31) / 32;
    int64_t tiles = (int64_t)B * nnt * ntt;
    int aligned = (((uintptr_t)x | (uintptr_t)a | (uintptr_t)b) & 7) == 0;
    if (tiles <= UINT32_MAX / 32 && aligned) {
        size_t bc = LRA_CUDA_ROUND(sizeof(cu_cd) * 32 * (size_t)tiles), bf = LRA_CUDA_ROUND(sizeof(int) * 32 * (size_t)tiles);
        lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, 3 * bc + bf + 256), 0 };
        cu_sl_state st;
        st.agg_p = (cu_cd *)lra_cuda_take(&cv, bc);
        st.agg_s = (cu_cd *)lra_cuda_take(&cv, bc);
        st.incl = (cu_cd *)lra_cuda_take(&cv, bc);
        st.flag = (int *)lra_cuda_take(&cv, bf);
        st.counter = (unsigned *)lra_cuda_take(&cv, sizeof(unsigned));
        // flags and counter are contiguous: one memset clears both
        CU_CHECK(cudaMemsetAsync(st.flag, 0, bf + sizeof(unsigned)));
        CU_LAUNCH(cu_scan_fwd_lookback, (unsigned)tiles, CU_SL_WARPS * 32, x, a, b, x0, d, st, ntt, nnt);
        return;
    }
    int64_t nc = (int64_t)B * d.nch * N;
    size_t bytes = LRA_CUDA_ROUND(sizeof(cu_cd) * nc);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, 2 * bytes), 0 };
    cu_cd *P = (cu_cd *)lra_cuda_take(&cv, bytes), *S = (cu_cd *)lra_cuda_take(&cv, bytes);
    CU_LAUNCH(cu_scan_fwd_chunks, cu_grid(nc, CU_BLOCK), CU_BLOCK, P, S, a, b, d);
    CU_LAUNCH(cu_scan_fwd_carry, cu_grid((int64_t)B * N, CU_BLOCK), CU_BLOCK, S, P, x0, d);
    CU_LAUNCH(cu_scan_fwd_apply, cu_grid(nc, CU_BLOCK), CU_BLOCK, x, S, a, b, d);
}

// ---- adjoint ----------------------------------------------------------------------------
// Steps are visited s = s1-1 .. s0 inside a chunk, chunks from last to first:
// g_s = alpha_s g_{s+1} + dx_{t(s)}, alpha_s = conj(a_{t(s+1)}), g_L = 0.

__device__ __forceinline__ cu_cd cu_scan_alpha(const cu_scan_dims &d, const lra_real *a, int b, int s, int n) {
    return s + 1 < d.L ? conj(cu_scan_a(d, a, b, s + 1, n)) : cd(0, 0);
}

__global__ static void cu_scan_bwd_chunks(cu_cd *P, cu_cd *S, const lra_real *a, const lra_real *dx, cu_scan_dims d) {
    CU_FOR(i, (int64_t)d.B * d.nch * d.N) {
        int n = (int)(i % d.N), c = (int)((i / d.N) % d.nch), b = (int)(i / ((int64_t)d.N * d.nch));
        int s0 = c * CU_SCAN_T, s1 = min(s0 + CU_SCAN_T, d.L);
        cu_cd p = cd(1, 0), g = cd(0, 0);
#pragma unroll 8
        for (int s = s1 - 1; s >= s0; s--) {
            cu_cd al = cu_scan_alpha(d, a, b, s, n);
            g = al * g + cd_ld(dx, cu_scan_at(d, b, s, n));
            p = al * p;
        }
        P[i] = p;
        S[i] = g;
    }
}

// S becomes g_{s1} of every chunk (the adjoint state entering it)
__global__ static void cu_scan_bwd_carry(cu_cd *S, const cu_cd *P, cu_scan_dims d) {
    CU_FOR(i, (int64_t)d.B * d.N) {
        int n = (int)(i % d.N), b = (int)(i / d.N);
        cu_cd carry = cd(0, 0);
        for (int c = d.nch - 1; c >= 0; c--) {
            int64_t j = ((int64_t)b * d.nch + c) * d.N + n;
            cu_cd s = S[j];
            S[j] = carry;
            carry = P[j] * carry + s;
        }
    }
}

// pass 3: db, da (time varying) or the per-chunk da sums part (B, nch, N), dx0
__global__ static void cu_scan_bwd_apply(lra_real *da, cu_cd *part, lra_real *db, lra_real *dx0, const cu_cd *start,
                                         const lra_real *dx, const lra_real *x, const lra_real *a, const lra_real *x0,
                                         cu_scan_dims d) {
    CU_FOR(i, (int64_t)d.B * d.nch * d.N) {
        int n = (int)(i % d.N), c = (int)((i / d.N) % d.nch), b = (int)(i / ((int64_t)d.N * d.nch));
        int s0 = c * CU_SCAN_T, s1 = min(s0 + CU_SCAN_T, d.L);
        cu_cd g = start[i], acc = cd(0, 0);
#pragma unroll 8
        for (int s = s1 - 1; s >= s0; s--) {
            int64_t o = cu_scan_at(d, b, s, n);
            g = cu_scan_alpha(d, a, b, s, n) * g + cd_ld(dx, o);
            if (db) cd_acc(db, o, g);
            if (da) {
                int has_prev = s > 0 || x0;
                if (has_prev) {
                    cu_cd xp = s > 0 ? cd_ld(x, cu_scan_at(d, b, s - 1, n)) : cd_ld(x0, (int64_t)b * d.N + n);
                    cu_cd v = conj(xp) * g;
                    if (d.tv) cd_acc(da, o, v);
                    else acc += v;
                }
            }
        }
        if (part) part[i] = acc;
        if (dx0 && c == 0) cd_acc(dx0, (int64_t)b * d.N + n, conj(cu_scan_a(d, a, b, 0, n)) * g);
    }
}

// da (N)c += sum over (b, chunk) of part, in order
__global__ static void cu_scan_da_reduce(lra_real *da, const cu_cd *part, int rows, int N) {
    CU_FOR(n, (int64_t)N) {
        cu_cd s = cd(0, 0);
        for (int r = 0; r < rows; r++) s += part[(int64_t)r * N + n];
        cd_acc(da, n, s);
    }
}

void cuda_scan_bwd(lra_backend *be, lra_real *da, lra_real *db, lra_real *dx0, const lra_real *dx,
                   const lra_real *x, const lra_real *a, const lra_real *x0, int B, int L, int N, int flags) {
    if (B <= 0 || L <= 0 || N <= 0 || (!da && !db && !dx0)) return;
    cu_scan_dims d = cu_scan_make(B, L, N, flags);
    int64_t nc = (int64_t)B * d.nch * N;
    size_t bytes = LRA_CUDA_ROUND(sizeof(cu_cd) * nc);
    int ti_da = da && !d.tv;
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, (ti_da ? 3 : 2) * bytes), 0 };
    cu_cd *P = (cu_cd *)lra_cuda_take(&cv, bytes), *S = (cu_cd *)lra_cuda_take(&cv, bytes);
    cu_cd *part = ti_da ? (cu_cd *)lra_cuda_take(&cv, bytes) : NULL;
    CU_LAUNCH(cu_scan_bwd_chunks, cu_grid(nc, CU_BLOCK), CU_BLOCK, P, S, a, dx, d);
    CU_LAUNCH(cu_scan_bwd_carry, cu_grid((int64_t)B * N, CU_BLOCK), CU_BLOCK, S, P, d);
    CU_LAUNCH(cu_scan_bwd_apply, cu_grid(nc, CU_BLOCK), CU_BLOCK, da, part, db, dx0, S, dx, x, a, x0, d);
    if (ti_da) CU_LAUNCH(cu_scan_da_reduce, cu_grid(N, CU_BLOCK), CU_BLOCK, da, part, B * d.nch, N);
}
