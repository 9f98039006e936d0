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

// onehot (rows, V) of tokens[0 .. rows)
__global__ static void cu_onehot_kernel(lra_real *onehot, const int32_t *tokens, int64_t rows, int V) {
    CU_FOR(i, rows * V) onehot[i] = (lra_real)(tokens[i / V] == (int32_t)(i % V));
}

#define CU_EMB_GEMM_MAX_V 512            // vocabularies up to this size take the GEMM
#define CU_EMB_ONEHOT ((int64_t)1 << 25)  // reals of one-hot rows per GEMM

// Small vocabularies: dtable (V, C) += onehot(tokens)^T dout, one cuBLAS GEMM
// per chunk of positions (fixed order: deterministic). Large ones: the
// positions are grouped by token on the host (a counting sort of the n token
// ids, stable) so that every (token, column) is summed by one thread in
// position order, like the CPU. Neither uses atomics.
void cuda_embedding_bwd(lra_backend *be, lra_real *dtable, const lra_real *dout, const int32_t *tokens, int64_t n,
                        int C, int V) {
    if (!dtable || n <= 0 || C <= 0 || V <= 0) return;
    if (V <= CU_EMB_GEMM_MAX_V) {
        int64_t rows = CU_EMB_ONEHOT / V;
        if (rows > n) rows = n;
        if (rows > INT32_MAX) rows = INT32_MAX;
        lra_real *onehot = (lra_real *)lra_cuda_scratch(be, sizeof(lra_real) * (size_t)rows * (size_t)V);
        for (int64_t r0 = 0; r0 < n; r0 += rows) {
            int64_t nr = n - r0 < rows ? n - r0 : rows;
            CU_LAUNCH(cu_onehot_kernel, cu_grid(nr * V, CU_BLOCK), CU_BLOCK, onehot, tokens + r0, nr, V);
            cuda_gemm(be, 1, 0, V, C, (int)nr, 1, onehot, V, 0, dout + r0 * C, C, 0, 1, dtable, C, 0, 1);
        }
        return;
    }
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

// out (B, C) in two passes: blocks of 32 columns x 8 position lanes sum one
// chunk of positions of example b in double (partial (G, B, C), counts
// (G, B)); then every (b, c) adds its G chunks in order (deterministic).
#define CU_POOL_LANES 8
#define CU_POOL_MAX_G 64
__global__ static void cu_meanpool_part_kernel(double *part, int *cnt, const lra_real *inp, const uint8_t *mask,
                                               int B, int L, int C, int per) {
    __shared__ double acc[CU_POOL_LANES][33];
    __shared__ int ns[CU_POOL_LANES];
    int b = blockIdx.y, g = blockIdx.z, c = blockIdx.x * 32 + threadIdx.x;
    int t0 = g * per, t1 = min(t0 + per, L);
    double s = 0;
    int n = 0;
    for (int t = t0 + threadIdx.y; t < t1; t += CU_POOL_LANES) {
        if (mask && !mask[(int64_t)b * L + t]) continue;
        n++;
        if (c < C) s += inp[((int64_t)b * L + t) * C + c];
    }
    acc[threadIdx.y][threadIdx.x] = s;
    if (threadIdx.x == 0) ns[threadIdx.y] = n;
    __syncthreads();
    if (threadIdx.y == 0) {
        int nt = ns[0];
        for (int j = 1; j < CU_POOL_LANES; j++) {
            s += acc[j][threadIdx.x];
            nt += ns[j];
        }
        if (c < C) part[((int64_t)g * B + b) * C + c] = s;
        if (threadIdx.x == 0 && blockIdx.x == 0) cnt[g * B + b] = nt;
    }
}

__global__ static void cu_meanpool_finish_kernel(lra_real *out, const double *part, const int *cnt, int B, int C,
                                                 int G) {
    CU_FOR(i, (int64_t)B * C) {
        int b = (int)(i / C);
        double s = 0;
        int64_t nt = 0;
        for (int g = 0; g < G; g++) {
            s += part[(int64_t)g * B * C + i];
            nt += cnt[g * B + b];
        }
        out[i] = nt ? (lra_real)(s / nt) : 0;
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
    if (B <= 0 || C <= 0) return;
    LRA_ASSERT(B <= 65535);
    int G = (L + 255) / 256;
    if (G > CU_POOL_MAX_G) G = CU_POOL_MAX_G;
    if (G < 1) G = 1;
    int per = (L + G - 1) / G;
    size_t bp = LRA_CUDA_ROUND(sizeof(double) * (size_t)G * B * C);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, bp + sizeof(int) * (size_t)G * B), 0 };
    double *part = (double *)lra_cuda_take(&cv, bp);
    int *cnt = (int *)lra_cuda_take(&cv, sizeof(int) * (size_t)G * B);
    CU_LAUNCH(cu_meanpool_part_kernel, dim3((unsigned)((C + 31) / 32), (unsigned)B, (unsigned)G),
              dim3(32, CU_POOL_LANES), part, cnt, inp, mask, B, L, C, per);
    CU_LAUNCH(cu_meanpool_finish_kernel, cu_grid((int64_t)B * C, CU_BLOCK), CU_BLOCK, out, part, cnt, B, C, G);
}

void cuda_meanpool_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const uint8_t *mask, int B, int L,
                       int C) {
    if (!dinp || B <= 0 || L <= 0 || C <= 0) return;
    lra_real *inv = (lra_real *)lra_cuda_scratch(be, sizeof(lra_real) * (size_t)B);
    CU_LAUNCH(cu_meanpool_inv_kernel, cu_grid(B, 1), CU_BLOCK, inv, mask, B, L);
    CU_LAUNCH(cu_meanpool_bwd_kernel, cu_grid((int64_t)B * L * C, CU_BLOCK), CU_BLOCK, dinp, dout, mask, inv, B, L, C);
}
