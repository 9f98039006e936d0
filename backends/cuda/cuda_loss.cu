// cuda_loss.cu: softmax cross-entropy with integer labels.
#include "cuda.cuh"

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
