// cuda_loss.cu: softmax cross-entropy with integer labels.
#include "cuda.cuh"

#include <stdlib.h>

#define CU_XENT_BLOCK 256
#define CU_XENT_CHUNK 1024  // per-example losses copied back per cudaMemcpy

// One block per example b (blocks loop over examples):
//   probs[b] = softmax(z_b) with the max subtracted, sums of exp in double,
//   loss_b = logsumexp(z_b) - z_b[y_b], stored in float and, for the mean, in double.
__global__ static void cu_xent_fwd_kernel(lra_real *probs, lra_real *loss_per_example, double *loss_d,
                                          const lra_real *logits, const int32_t *labels, int B, int K) {
    for (int b = blockIdx.x; b < B; b += gridDim.x) {
        const lra_real *z = logits + (int64_t)b * K;  // (K)
        lra_real *p = probs + (int64_t)b * K;         // (K)
        float mx = -INFINITY;
        for (int k = threadIdx.x; k < K; k += blockDim.x) mx = fmaxf(mx, z[k]);
        mx = cu_block_max(mx);
        double s = 0;
        for (int k = threadIdx.x; k < K; k += blockDim.x) s += exp((double)z[k] - mx);
        s = cu_block_sum(s);
        for (int k = threadIdx.x; k < K; k += blockDim.x) p[k] = (lra_real)(exp((double)z[k] - mx) / s);
        if (threadIdx.x == 0) {
            double l = log(s) + mx - (double)z[labels[b]];
            loss_per_example[b] = (lra_real)l;
            loss_d[b] = l;
        }
    }
}

double cuda_xent_fwd(lra_backend *be, lra_real *probs, lra_real *loss_per_example, const lra_real *logits,
                     const int32_t *labels, int B, int K) {
    if (B <= 0) return 0;
    double *loss_d = (double *)lra_cuda_scratch(be, sizeof(double) * (size_t)B);  // (B)
    CU_LAUNCH(cu_xent_fwd_kernel, cu_grid(B, 1), CU_XENT_BLOCK, probs, loss_per_example, loss_d, logits, labels,
              B, K);
    // the mean in example order, as on the CPU
    double host[CU_XENT_CHUNK], total = 0;
    for (int b0 = 0; b0 < B; b0 += CU_XENT_CHUNK) {
        int n = B - b0 < CU_XENT_CHUNK ? B - b0 : CU_XENT_CHUNK;
        CU_CHECK(cudaMemcpy(host, loss_d + b0, sizeof(double) * (size_t)n, cudaMemcpyDeviceToHost));
        for (int i = 0; i < n; i++) total += host[i];
    }
    return total / B;
}

// dlogits (B, K) += s (probs - onehot(labels)),  s = dloss / B
__global__ static void cu_xent_bwd_kernel(lra_real *dlogits, const lra_real *probs, const int32_t *labels, int K,
                                          int64_t n, lra_real s) {
    CU_FOR(i, n) {
        int64_t b = i / K;
        int k = (int)(i % K);
        dlogits[i] += s * (probs[i] - (lra_real)(k == labels[b]));
    }
}

void cuda_xent_bwd(lra_backend *be, lra_real *dlogits, const lra_real *probs, const int32_t *labels, int B, int K,
                   lra_real dloss) {
    (void)be;
    int64_t n = (int64_t)B * K;
    if (n <= 0 || !dlogits) return;
    lra_real s = dloss / (lra_real)B;
    CU_LAUNCH(cu_xent_bwd_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, dlogits, probs, labels, K, n, s);
}

// ---- embedding ------------------------------------------------------------------------

__global__ static void cu_embedding_fwd_kernel(lra_real *out, const int32_t *tokens, const lra_real *table, int64_t n,
                                               int C) {
    CU_FOR(i, n * C) out[i] = table[(int64_t)tokens[i / C] * C + i % C];
}

void cuda_embedding_fwd(lra_backend *be, lra_real *out, const int32_t *tokens, const lra_real *table, int64_t n,
                        int C) {
    (void)be;
    if (n > 0 && C > 0) CU_LAUNCH(cu_embedding_fwd_kernel, cu_grid(n * C, CU_BLOCK), CU_BLOCK, out, tokens, table, n, C);
}

// dtable[v][c] += sum of dout[i][c] over the positions i of token v, in
// position order: start (V + 1) and pos (n) list each token's positions (CSR).
__global__ static void cu_embedding_bwd_kernel(lra_real *dtable, const lra_real *dout, const int64_t *start,
                                               const int64_t *pos, int V, int C) {
    CU_FOR(i, (int64_t)V * C) {
        int64_t v = i / C, c = i % C;
        if (start[v] == start[v + 1]) continue;
        lra_real acc = dtable[i];
        for (int64_t k = start[v]; k < start[v + 1]; k++) acc += dout[pos[k] * C + c];
        dtable[i] = acc;
    }
}

// The positions are grouped by token on the host (a counting sort of the n
// token ids, stable), so that every (token, column) is summed by one thread in
// position order, like the CPU: deterministic, no atomics.
void cuda_embedding_bwd(lra_backend *be, lra_real *dtable, const lra_real *dout, const int32_t *tokens, int64_t n,
                        int C, int V) {
    if (!dtable || n <= 0 || C <= 0 || V <= 0) return;
    int32_t *tok = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    int64_t *csr = (int64_t *)malloc(sizeof(int64_t) * ((size_t)V + 1 + (size_t)n));
    LRA_ASSERT(tok != NULL && csr != NULL);
    int64_t *start = csr, *pos = csr + V + 1;
    CU_CHECK(cudaMemcpy(tok, tokens, sizeof(int32_t) * (size_t)n, cudaMemcpyDeviceToHost));
    for (int v = 0; v <= V; v++) start[v] = 0;
    for (int64_t i = 0; i < n; i++) {
        LRA_ASSERT(tok[i] >= 0 && tok[i] < V);
        start[tok[i] + 1]++;
    }
    for (int v = 0; v < V; v++) start[v + 1] += start[v];
    int64_t *fill = (int64_t *)malloc(sizeof(int64_t) * (size_t)V);
    LRA_ASSERT(fill != NULL);
    for (int v = 0; v < V; v++) fill[v] = start[v];
    for (int64_t i = 0; i < n; i++) pos[fill[tok[i]]++] = i;
    size_t bytes = sizeof(int64_t) * ((size_t)V + 1 + (size_t)n);
    int64_t *d = (int64_t *)lra_cuda_scratch(be, bytes);
    CU_CHECK(cudaMemcpy(d, csr, bytes, cudaMemcpyHostToDevice));
    CU_LAUNCH(cu_embedding_bwd_kernel, cu_grid((int64_t)V * C, CU_BLOCK), CU_BLOCK, dtable, dout, d, d + V + 1, V, C);
    free(fill);
    free(csr);
    free(tok);
}

// ---- masked mean pooling ------------------------------------------------------------------

// out (B, C): one thread per (b, c), positions in order, sum in double
__global__ static void cu_meanpool_fwd_kernel(lra_real *out, const lra_real *inp, const uint8_t *mask, int B, int L,
                                              int C) {
    CU_FOR(i, (int64_t)B * C) {
        int64_t b = i / C, c = i % C;
        double acc = 0;
        int n = 0;
        for (int t = 0; t < L; t++) {
            if (mask && !mask[b * L + t]) continue;
            acc += inp[(b * L + t) * C + c];
            n++;
        }
        out[i] = n ? (lra_real)(acc / n) : 0;
    }
}

// inv (B) = 1/(number of real positions) (0 for none), one block per row
__global__ static void cu_meanpool_inv_kernel(lra_real *inv, const uint8_t *mask, int B, int L) {
    for (int b = blockIdx.x; b < B; b += gridDim.x) {
        double n = 0;
        for (int t = threadIdx.x; t < L; t += blockDim.x) n += mask ? (mask[(int64_t)b * L + t] != 0) : 1;
        n = cu_block_sum(n);
        if (threadIdx.x == 0) inv[b] = n > 0 ? (lra_real)(1.0 / n) : 0;
    }
}

__global__ static void cu_meanpool_bwd_kernel(lra_real *dinp, const lra_real *dout, const uint8_t *mask,
                                              const lra_real *inv, int B, int L, int C) {
    CU_FOR(i, (int64_t)B * L * C) {
        int64_t c = i % C, bt = i / C, b = bt / L;
        if ((mask && !mask[bt]) || inv[b] == 0) continue;
        dinp[i] += dout[b * C + c] * inv[b];
    }
}

void cuda_meanpool_fwd(lra_backend *be, lra_real *out, const lra_real *inp, const uint8_t *mask, int B, int L,
                       int C) {
    (void)be;
    if (B <= 0 || C <= 0) return;
    CU_LAUNCH(cu_meanpool_fwd_kernel, cu_grid((int64_t)B * C, CU_BLOCK), CU_BLOCK, out, inp, mask, B, L, C);
}

void cuda_meanpool_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const uint8_t *mask, int B, int L,
                       int C) {
    if (!dinp || B <= 0 || L <= 0 || C <= 0) return;
    lra_real *inv = (lra_real *)lra_cuda_scratch(be, sizeof(lra_real) * (size_t)B);
    CU_LAUNCH(cu_meanpool_inv_kernel, cu_grid(B, 1), CU_BLOCK, inv, mask, B, L);
    CU_LAUNCH(cu_meanpool_bwd_kernel, cu_grid((int64_t)B * L * C, CU_BLOCK), CU_BLOCK, dinp, dout, mask, inv, B, L, C);
}
