// cpu_scan.c: diagonal linear recurrence and its adjoint (models.md 0.3).
//
// Per batch b and mode n, complex and elementwise over N:
//   forward time   x_t = a_t x_{t-1} + b_t,   x_{-1} = x0 (or 0)
//   reverse time   x_t = a_t x_{t+1} + b_t,   x_L  = x0 (or 0)
// Both are one loop over steps s = 0..L-1 visiting t = s, or t = L-1-s with
// LRA_SCAN_REVERSE; "prev" is the time visited one step earlier, "next" one
// step later. x_t reaches x_next only through a_next x_t, so for a real loss
// (PyTorch's complex gradient, models.md 0.1 R5: w = a v gives grad v += conj(a) grad w)
// the adjoint visits the steps backwards:
//   g_t   = dx_t + h,   h = conj(a_next) g_next  (0 at the last step)
//   db_t += g_t
//   da_t += conj(x_prev) g_t                     (x_prev of the first step: x0 or 0)
//   dx0  += conj(a_first) g_first                (h after the loop)
// With LRA_SCAN_TIME_INVARIANT a (N)c is shared and da sums over b and t.
//
// Every (b, n) series is independent: threads take tiles of (b, a block of
// SCAN_BLOCK modes), loop over time outside and over the block's modes inside
// (N is innermost in memory, so the inner loops are contiguous). The carried
// state (x in forward, h in backward) is kept in double, so long scans with
// |a| close to 1 do not accumulate rounding. The time-invariant da is summed
// in double per (b, n) by the one thread owning the tile, then over b in a
// fixed order: no races, and the same bits for any thread count.
#include "cpu.h"

#include <string.h>

#define SCAN_BLOCK 32            // complex modes per tile
#define SCAN_PAR_MIN (1 << 14)   // fewer complex steps B L N than this run on one thread

static inline int64_t scan_row(int bi, int s, int L, int N, int rev) {
    int t = rev ? L - 1 - s : s;
    return ((int64_t)bi * L + t) * N * 2;  // offset of (bi, t, 0) in a (B, L, N)c tensor
}

// Forward of batch bi, modes [n0, n0 + nb).
static void scan_fwd_tile(lra_real *x,         // (B, L, N)c
                          const lra_real *a,   // (B, L, N)c or (N)c
                          const lra_real *b,   // (B, L, N)c
                          const lra_real *x0,  // (B, N)c or NULL
                          int bi, int n0, int nb, int L, int N, int flags) {
    int rev = (flags & LRA_SCAN_REVERSE) != 0, tv = !(flags & LRA_SCAN_TIME_INVARIANT);
    double st[2 * SCAN_BLOCK];  // x_prev of the block
    if (x0) {
        const lra_real *x0b = x0 + ((int64_t)bi * N + n0) * 2;
        for (int j = 0; j < 2 * nb; j++) st[j] = x0b[j];
    } else {
        memset(st, 0, sizeof st);
    }
    for (int s = 0; s < L; s++) {
        int64_t row = scan_row(bi, s, L, N, rev) + 2 * n0;
        const lra_real *at = tv ? a + row : a + 2 * n0, *bt = b + row;
        lra_real *xt = x + row;
        for (int j = 0; j < nb; j++) {
            double ar = at[2 * j], ai = at[2 * j + 1], pr = st[2 * j], pi = st[2 * j + 1];
            double nr = ar * pr - ai * pi + bt[2 * j];
            double ni = ar * pi + ai * pr + bt[2 * j + 1];
            st[2 * j] = nr;
            st[2 * j + 1] = ni;
            xt[2 * j] = (lra_real)nr;
            xt[2 * j + 1] = (lra_real)ni;
        }
    }
}

void cpu_scan_fwd(lra_backend *be, lra_real *x, const lra_real *a, const lra_real *b,
                  const lra_real *x0, int B, int L, int N, int flags) {
    (void)be;
    if (B <= 0 || L <= 0 || N <= 0) return;
    int nblk = (N + SCAN_BLOCK - 1) / SCAN_BLOCK;
#pragma omp parallel for schedule(static) if ((int64_t)B * L * N >= SCAN_PAR_MIN)
    for (int64_t tile = 0; tile < (int64_t)B * nblk; tile++) {
        int bi = (int)(tile / nblk), n0 = (int)(tile % nblk) * SCAN_BLOCK;
        int nb = N - n0 < SCAN_BLOCK ? N - n0 : SCAN_BLOCK;
        scan_fwd_tile(x, a, b, x0, bi, n0, nb, L, N, flags);
    }
}

// Adjoint of batch bi, modes [n0, n0 + nb) (file header). da_acc (B, N)c in
// double receives the time-invariant da; da the time-varying one.
static void scan_bwd_tile(lra_real *da,        // (B, L, N)c when time varying, else unused
                          double *da_acc,      // (B, N)c when time invariant and da wanted, else NULL
                          lra_real *db,        // (B, L, N)c or NULL
                          lra_real *dx0,       // (B, N)c or NULL
                          const lra_real *dx,  // (B, L, N)c
                          const lra_real *x,   // (B, L, N)c forward output
                          const lra_real *a,   // (B, L, N)c or (N)c
                          const lra_real *x0,  // (B, N)c or NULL
                          int bi, int n0, int nb, int L, int N, int flags) {
    int rev = (flags & LRA_SCAN_REVERSE) != 0, tv = !(flags & LRA_SCAN_TIME_INVARIANT);
    double g[2 * SCAN_BLOCK], h[2 * SCAN_BLOCK];  // g_t and h = conj(a_t) g_t
    memset(h, 0, sizeof h);
    double *acc = da_acc ? da_acc + ((int64_t)bi * N + n0) * 2 : NULL;
    const lra_real *x0b = x0 ? x0 + ((int64_t)bi * N + n0) * 2 : NULL;
    for (int s = L - 1; s >= 0; s--) {
        int64_t row = scan_row(bi, s, L, N, rev) + 2 * n0;
        const lra_real *at = tv ? a + row : a + 2 * n0, *dxt = dx + row;
        const lra_real *xp = s > 0 ? x + scan_row(bi, s - 1, L, N, rev) + 2 * n0 : x0b;  // x_prev
        for (int j = 0; j < 2 * nb; j++) g[j] = dxt[j] + h[j];
        for (int j = 0; j < nb; j++) {  // h = conj(a_t) g_t
            double ar = at[2 * j], ai = at[2 * j + 1], gr = g[2 * j], gi = g[2 * j + 1];
            h[2 * j] = ar * gr + ai * gi;
            h[2 * j + 1] = ar * gi - ai * gr;
        }
        if (db) {
            lra_real *dbt = db + row;
            for (int j = 0; j < 2 * nb; j++) dbt[j] += (lra_real)g[j];
        }
        if (!xp) continue;  // x_prev = 0 contributes nothing to da
        if (acc) {
            for (int j = 0; j < nb; j++) {  // conj(x_prev) g_t
                double pr = xp[2 * j], pi = xp[2 * j + 1], gr = g[2 * j], gi = g[2 * j + 1];
                acc[2 * j] += pr * gr + pi * gi;
                acc[2 * j + 1] += pr * gi - pi * gr;
            }
        } else if (da && tv) {
            lra_real *dat = da + row;
            for (int j = 0; j < nb; j++) {
                double pr = xp[2 * j], pi = xp[2 * j + 1], gr = g[2 * j], gi = g[2 * j + 1];
                dat[2 * j] += (lra_real)(pr * gr + pi * gi);
                dat[2 * j + 1] += (lra_real)(pr * gi - pi * gr);
            }
        }
    }
    if (dx0) {
        lra_real *d = dx0 + ((int64_t)bi * N + n0) * 2;
        for (int j = 0; j < 2 * nb; j++) d[j] += (lra_real)h[j];
    }
}

void cpu_scan_bwd(lra_backend *be, lra_real *da, lra_real *db, lra_real *dx0,
                  const lra_real *dx, const lra_real *x, const lra_real *a, const lra_real *x0,
                  int B, int L, int N, int flags) {
    (void)be;
    if (B <= 0 || L <= 0 || N <= 0) return;
    if (!da && !db && !dx0) return;
    int nblk = (N + SCAN_BLOCK - 1) / SCAN_BLOCK;
    double *da_acc = NULL;  // (B, N)c partial sums of the time-invariant da
    if (da && (flags & LRA_SCAN_TIME_INVARIANT)) {
        da_acc = calloc((size_t)B * N * 2, sizeof(double));
        LRA_ASSERT(da_acc != NULL);
    }
#pragma omp parallel for schedule(static) if ((int64_t)B * L * N >= SCAN_PAR_MIN)
    for (int64_t tile = 0; tile < (int64_t)B * nblk; tile++) {
        int bi = (int)(tile / nblk), n0 = (int)(tile % nblk) * SCAN_BLOCK;
        int nb = N - n0 < SCAN_BLOCK ? N - n0 : SCAN_BLOCK;
        scan_bwd_tile(da, da_acc, db, dx0, dx, x, a, x0, bi, n0, nb, L, N, flags);
    }
    if (da_acc) {
#pragma omp parallel for schedule(static) if ((int64_t)B * L * N >= SCAN_PAR_MIN)
        for (int i = 0; i < 2 * N; i++) {
            double s = 0;
            for (int bi = 0; bi < B; bi++) s += da_acc[(int64_t)bi * N * 2 + i];
            da[i] += (lra_real)s;
        }
        free(da_acc);
    }
}
