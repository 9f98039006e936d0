// cpu_optim.c: AdamW over flat parameter groups and global-norm clipping.
#include "cpu.h"

#include <math.h>

// AdamW (Loshchilov & Hutter 2019, Algorithm 2), the PyTorch form: the decay
// is decoupled and scaled by the learning rate, p -= lr * wd * p.
void cpu_adamw_step(lra_backend *be, lra_real *params, const lra_real *grads, lra_real *m, lra_real *v,
                    const lra_param_group *groups, int n_groups, float beta1, float beta2, float eps, int64_t t) {
    (void)be;
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    for (int g = 0; g < n_groups; g++) {
        const lra_param_group *G = &groups[g];
        double lr = G->lr, wd = G->weight_decay;
        lra_real *p = params + G->offset, *mg = m + G->offset, *vg = v + G->offset;
        const lra_real *gr = grads + G->offset;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < G->count; i++) {
            double gi = gr[i];
            double mi = beta1 * (double)mg[i] + (1.0 - beta1) * gi;
            double vi = beta2 * (double)vg[i] + (1.0 - beta2) * gi * gi;
            mg[i] = (lra_real)mi;
            vg[i] = (lra_real)vi;
            double pi = p[i];
            pi -= lr * wd * pi;
            pi -= lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
            p[i] = (lra_real)pi;
        }
    }
}

double cpu_clip_grad_norm(lra_backend *be, lra_real *grads, int64_t n, double max_norm) {
    double norm = sqrt(cpu_sumsq(be, grads, n));
    if (max_norm > 0 && norm > max_norm) {
        lra_real s = (lra_real)(max_norm / (norm + 1e-6));
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) grads[i] *= s;
    }
    return norm;
}
