// cuda_optim.cu: AdamW over flat parameter groups and global-norm clipping.
#include "cuda.cuh"

// AdamW (Loshchilov & Hutter 2019, Algorithm 2), the PyTorch form, in double
// exactly as on the CPU: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr wd p; p -= lr (m / bc1) / (sqrt(v / bc2) + eps).
__global__ static void cu_adamw_kernel(lra_real *p, const lra_real *g, lra_real *m, lra_real *v, int64_t n,
                                       double lr, double wd, float beta1, float beta2, float eps, double bc1,
                                       double bc2) {
    CU_FOR(i, n) {
        double gi = g[i];
        double mi = beta1 * (double)m[i] + (1.0 - beta1) * gi;
        double vi = beta2 * (double)v[i] + (1.0 - beta2) * gi * gi;
        m[i] = (lra_real)mi;
        v[i] = (lra_real)vi;
        double pi = p[i];
        pi -= lr * wd * pi;
        pi -= lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
        p[i] = (lra_real)pi;
    }
}

void cuda_adamw_step(lra_backend *be, lra_real *params, const lra_real *grads, lra_real *m, lra_real *v,
                     const lra_param_group *groups, int n_groups, float beta1, float beta2, float eps, int64_t t) {
    (void)be;
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    for (int gi = 0; gi < n_groups; gi++) {  // groups is host memory
        const lra_param_group *G = &groups[gi];
        if (G->count <= 0) continue;
        int64_t o = G->offset;
        CU_LAUNCH(cu_adamw_kernel, cu_grid(G->count, CU_BLOCK), CU_BLOCK, params + o, grads + o, m + o, v + o,
                  G->count, (double)G->lr, (double)G->weight_decay, beta1, beta2, eps, bc1, bc2);
    }
}

__global__ static void cu_scale_kernel(lra_real *x, lra_real s, int64_t n) {
    CU_FOR(i, n) x[i] *= s;
}

// ||grads||_2 in double; scaled by max_norm / (norm + 1e-6) when above max_norm > 0
double cuda_clip_grad_norm(lra_backend *be, lra_real *grads, int64_t n, double max_norm) {
    double norm = sqrt(cuda_sumsq(be, grads, n));
    if (max_norm > 0 && norm > max_norm && n > 0) {
        lra_real s = (lra_real)(max_norm / (norm + 1e-6));
        CU_LAUNCH(cu_scale_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, grads, s, n);
    }
    return norm;
}
