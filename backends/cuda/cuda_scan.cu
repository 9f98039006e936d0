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

static cu_scan_dims cu_scan_make(int B, int L, int N, int flags) {
    cu_scan_dims d = { B, L, N, (L + CU_SCAN_T - 1) / CU_SCAN_T, (flags & LRA_SCAN_REVERSE) != 0,
                       !(flags & LRA_SCAN_TIME_INVARIANT) };
    return d;
}

void cuda_scan_fwd(lra_backend *be, lra_real *x, const lra_real *a, const lra_real *b, const lra_real *x0, int B,
                   int L, int N, int flags) {
    if (B <= 0 || L <= 0 || N <= 0) return;
    cu_scan_dims d = cu_scan_make(B, L, N, flags);
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
