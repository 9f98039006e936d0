// cpu_attention.c: multi-head softmax attention, forward and backward, one
// block of query rows at a time (FlashAttention memory: no (L, L) buffer).
//
// Per batch element b and head h, with s_ij = scale q_i.k_j and V(i) the keys
// query i may see (mask[b][j] = 1, or no mask; and j <= i when causal):
//   lse_i = log sum_{j in V(i)} exp(s_ij)      (-INFINITY when V(i) is empty)
//   P_ij  = exp(s_ij - lse_i) for j in V(i), else 0
//   out_i = sum_j P_ij Z_ij v_j                (0 when V(i) is empty)
// Dropout on the probabilities with probability p: Z_ij = keep_ij / (1 - p),
//   keep_ij = lra_rand_uniform(seed, ((b*NH + h)*L + i)*(uint64_t)L + j) >= p,
// a pure function of (seed, b, h, i, j), so that the CUDA kernel regenerates
// the same mask. dropout_p = 0: no dropout (Z = 1).
//
// Backward (Dao et al., "FlashAttention", 2022, Algorithm 4), P recomputed
// from q, k and the saved lse:
//   dV += (P∘Z)^T dO,  dP = (dO V^T)∘Z,  D_i = dO_i.O_i = sum_j P_ij dP_ij,
//   dS = P∘(dP - D_i),  dQ += scale dS K,  dK += scale dS^T Q.
// A row with an empty V(i) (lse_i = -INFINITY) has P = 0: output 0, no gradient.
//
// Work unit: ATT_BQ query rows against the keys [0, nk), where nk stops after
// the last real key of the batch element and, when causal, after the block's
// last row. Scores and probabilities live in per-thread (ATT_BQ, L) scratch,
// the block products go to OpenBLAS (its OpenMP build runs single-threaded
// inside our parallel regions). Forward threads over (b, h, query block), each
// task writing its own rows; backward over (b, h), so the thread that owns a
// head accumulates its dK, dV without races. No cross-thread reductions:
// results do not depend on the schedule.
#include "cpu.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#ifdef LRA_F64
#define att_gemm cblas_dgemm
#define att_exp  exp
#else
#define att_gemm cblas_sgemm
#define att_exp  expf
#endif

#define ATT_BQ 64  // query rows per block

// One head of one batch element.
typedef struct {
    const lra_real *q, *k, *v;  // (L, Dh) each
    const uint8_t  *mrow;       // (L) key mask of the batch element, or NULL
    int      L, Dh, causal;
    int      kend;              // keys [kend, L) are all padding
    lra_real scale;
    lra_real dp, zs;            // dropout probability, 1/(1-p) (0 when p >= 1)
    uint64_t seed, ctr;         // dropout counter of (i, j) = ctr + i*L + j
} att_head;

static att_head att_head_at(const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                            int64_t bh, int NH, int L, int Dh, lra_real scale, int causal,
                            lra_real dropout_p, uint64_t seed) {
    int64_t off = bh * L * Dh;
    att_head a = { .q = q + off, .k = k + off, .v = v + off, .L = L, .Dh = Dh, .causal = causal,
                   .kend = L, .scale = scale, .dp = dropout_p, .seed = seed,
                   .ctr = (uint64_t)bh * (uint64_t)L * (uint64_t)L };
    a.zs = dropout_p < 1 ? (lra_real)(1.0 / (1.0 - (double)dropout_p)) : 0;
    if (mask) {
        a.mrow = mask + (bh / NH) * L;
        while (a.kend > 0 && !a.mrow[a.kend - 1]) a.kend--;
    }
    return a;
}

// Keys a block of rows [i0, i0 + nq) can see lie in [0, nk).
static int att_block_keys(const att_head *a, int i0, int nq) {
    return a->causal && i0 + nq < a->kend ? i0 + nq : a->kend;
}

// Row i sees keys j < att_row_end (and mrow[j] != 0) inside [0, nk).
static int att_row_end(const att_head *a, int i, int nk) {
    return a->causal && i + 1 < nk ? i + 1 : nk;
}

// Scores s (nk) of one row -> probabilities P (visible keys, else 0), in
// place; returns lse, or -INFINITY when the row sees no key.
static lra_real att_softmax_row(lra_real *s, int nk, int jend, const uint8_t *mrow) {
    lra_real mx = -INFINITY;
    for (int j = 0; j < jend; j++)
        if ((!mrow || mrow[j]) && s[j] > mx) mx = s[j];
    if (mx == -INFINITY) {
        memset(s, 0, sizeof(lra_real) * (size_t)nk);
        return -INFINITY;
    }
    double sum = 0;  // >= 1: the max term is exp(0)
    for (int j = 0; j < jend; j++) {
        lra_real e = (!mrow || mrow[j]) ? att_exp(s[j] - mx) : 0;
        s[j] = e;
        sum += e;
    }
    for (int j = jend; j < nk; j++) s[j] = 0;
    lra_real inv = (lra_real)(1.0 / sum);
    for (int j = 0; j < jend; j++) s[j] *= inv;
    return (lra_real)((double)mx + log(sum));
}

// Scores s (nk) of one row -> P = exp(s - lse) on visible keys, else 0.
static void att_probs_row(lra_real *s, int nk, int jend, const uint8_t *mrow, lra_real lse) {
    if (lse == -INFINITY) {
        memset(s, 0, sizeof(lra_real) * (size_t)nk);
        return;
    }
    for (int j = 0; j < jend; j++) s[j] = (!mrow || mrow[j]) ? att_exp(s[j] - lse) : 0;
    for (int j = jend; j < nk; j++) s[j] = 0;
}

// p (jend) *= Z of row i: kept entries scaled by 1/(1-p), dropped ones 0.
static void att_dropout_row(lra_real *p, int jend, const att_head *a, int i) {
    uint64_t c0 = a->ctr + (uint64_t)i * (uint64_t)a->L;
    for (int j = 0; j < jend; j++)
        if (p[j] != 0) p[j] = lra_rand_uniform(a->seed, c0 + (uint64_t)j) >= a->dp ? p[j] * a->zs : 0;
}

// Rows [i0, i0 + nq) of one head: out (nq, Dh), lse (nq); S (nq, L) scratch.
static void att_fwd_block(lra_real *out, lra_real *lse, lra_real *S, const att_head *a, int i0, int nq) {
    int nk = att_block_keys(a, i0, nq), Dh = a->Dh;
    if (nk == 0) {  // no real key at all
        memset(out, 0, sizeof(lra_real) * (size_t)nq * (size_t)Dh);
        for (int r = 0; r < nq; r++) lse[r] = -INFINITY;
        return;
    }
    // S (nq, nk) = scale Q_blk K^T
    att_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, Dh, a->scale, a->q + (int64_t)i0 * Dh, Dh,
             a->k, Dh, 0, S, nk);
    for (int r = 0; r < nq; r++) {
        int i = i0 + r, jend = att_row_end(a, i, nk);
        lse[r] = att_softmax_row(S + (int64_t)r * nk, nk, jend, a->mrow);
        if (a->dp > 0) att_dropout_row(S + (int64_t)r * nk, jend, a, i);
    }
    // out (nq, Dh) = (P∘Z) V
    att_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, Dh, nk, 1, S, nk, a->v, Dh, 0, out, Dh);
}

void cpu_attention_fwd(lra_backend *be, lra_real *out, lra_real *lse,
                       const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                       int B, int NH, int L, int Dh, lra_real scale, int causal,
                       lra_real dropout_p, uint64_t seed) {
    (void)be;
    if (B <= 0 || NH <= 0 || L <= 0 || Dh <= 0) return;
    int nblk = (L + ATT_BQ - 1) / ATT_BQ;
    int64_t ntask = (int64_t)B * NH * nblk;
#pragma omp parallel
    {
        lra_real *S = malloc(sizeof(lra_real) * (size_t)ATT_BQ * (size_t)L);  // (ATT_BQ, L)
        LRA_ASSERT(S != NULL);
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntask; t++) {
            int64_t bh = t / nblk;
            int i0 = (int)(t % nblk) * ATT_BQ, nq = L - i0 < ATT_BQ ? L - i0 : ATT_BQ;
            att_head a = att_head_at(q, k, v, mask, bh, NH, L, Dh, scale, causal, dropout_p, seed);
            att_fwd_block(out + (bh * L + i0) * Dh, lse + bh * L + i0, S, &a, i0, nq);
        }
        free(S);
    }
}

// Rows [i0, i0 + nq) of one head: dq (nq, Dh) and dk, dv (L, Dh) += (NULL:
// skipped); dout, out (nq, Dh), lse (nq); P, G (nq, L) scratch.
static void att_bwd_block(lra_real *dq, lra_real *dk, lra_real *dv, lra_real *P, lra_real *G,
                          const lra_real *dout, const lra_real *out, const lra_real *lse,
                          const att_head *a, int i0, int nq) {
    int nk = att_block_keys(a, i0, nq), Dh = a->Dh;
    if (nk == 0) return;
    const lra_real *qb = a->q + (int64_t)i0 * Dh;
    // P (nq, nk) = exp(scale Q_blk K^T - lse)
    att_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, Dh, a->scale, qb, Dh, a->k, Dh, 0, P, nk);
    for (int r = 0; r < nq; r++)
        att_probs_row(P + (int64_t)r * nk, nk, att_row_end(a, i0 + r, nk), a->mrow, lse[r]);
    int need_ds = dq || dk;
    // G (nq, nk) = dO V^T, then dS = P∘(Z∘G - D) in place; P becomes P∘Z
    if (need_ds)
        att_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, Dh, 1, dout, Dh, a->v, Dh, 0, G, nk);
    for (int r = 0; r < nq; r++) {
        lra_real *pr = P + (int64_t)r * nk, *gr = G + (int64_t)r * nk;
        int jend = att_row_end(a, i0 + r, nk);
        if (need_ds) {
            double D = 0;  // D_i = dO_i . O_i
            for (int d = 0; d < Dh; d++) D += (double)dout[(int64_t)r * Dh + d] * out[(int64_t)r * Dh + d];
            if (a->dp > 0) {
                uint64_t c0 = a->ctr + (uint64_t)(i0 + r) * (uint64_t)a->L;
                for (int j = 0; j < jend; j++) {
                    if (pr[j] == 0) { gr[j] = 0; continue; }
                    lra_real z = lra_rand_uniform(a->seed, c0 + (uint64_t)j) >= a->dp ? a->zs : 0;
                    gr[j] = pr[j] * (z * gr[j] - (lra_real)D);
                    pr[j] *= z;
                }
            } else {
                for (int j = 0; j < jend; j++) gr[j] = pr[j] * (gr[j] - (lra_real)D);
            }
            for (int j = jend; j < nk; j++) gr[j] = 0;
        } else if (a->dp > 0) {
            att_dropout_row(pr, jend, a, i0 + r);
        }
    }
    // dV (nk, Dh) += (P∘Z)^T dO;  dQ_blk += scale dS K;  dK (nk, Dh) += scale dS^T Q_blk
    if (dv)
        att_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, Dh, nq, 1, P, nk, dout, Dh, 1, dv, Dh);
    if (dq)
        att_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, Dh, nk, a->scale, G, nk, a->k, Dh, 1, dq, Dh);
    if (dk)
        att_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, Dh, nq, a->scale, G, nk, qb, Dh, 1, dk, Dh);
}

void cpu_attention_bwd(lra_backend *be, lra_real *dq, lra_real *dk, lra_real *dv,
                       const lra_real *dout, const lra_real *out, const lra_real *lse,
                       const lra_real *q, const lra_real *k, const lra_real *v, const uint8_t *mask,
                       int B, int NH, int L, int Dh, lra_real scale, int causal,
                       lra_real dropout_p, uint64_t seed) {
    (void)be;
    if (B <= 0 || NH <= 0 || L <= 0 || Dh <= 0 || (!dq && !dk && !dv)) return;
    int64_t nbh = (int64_t)B * NH;
#pragma omp parallel
    {
        lra_real *P = malloc(sizeof(lra_real) * (size_t)ATT_BQ * (size_t)L);  // (ATT_BQ, L)
        lra_real *G = malloc(sizeof(lra_real) * (size_t)ATT_BQ * (size_t)L);  // (ATT_BQ, L)
        LRA_ASSERT(P != NULL && G != NULL);
#pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < nbh; bh++) {
            att_head a = att_head_at(q, k, v, mask, bh, NH, L, Dh, scale, causal, dropout_p, seed);
            int64_t off = bh * L * Dh;
            for (int i0 = 0; i0 < L; i0 += ATT_BQ) {
                int nq = L - i0 < ATT_BQ ? L - i0 : ATT_BQ;
                int64_t ro = off + (int64_t)i0 * Dh;
                att_bwd_block(dq ? dq + ro : NULL, dk ? dk + off : NULL, dv ? dv + off : NULL, P, G,
                              dout + ro, out + ro, lse + bh * L + i0, &a, i0, nq);
            }
        }
        free(P);
        free(G);
    }
}
