// linear.c: the Linear layer, y = x W^T + b (PyTorch layout: W (O, I)), and
// the initialisation styles of the references (models.md 0.5).
#include "nn.h"

#include <math.h>

const char *const lra_linear_init_names[LRA_LINEAR_INIT_COUNT + 1] = { "torch", "flax", "xavier", NULL };

void lra_linear_fwd(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *W, const lra_real *b,
                    int64_t R, int I, int O) {
    be->gemm(be, 0, 1, (int)R, O, I, 1, x, I, 0, W, I, 0, 0, y, O, 0, 1);
    if (b) be->bias_add(be, y, b, R, O);
}

void lra_linear_bwd(lra_backend *be, lra_real *dx, lra_real *dW, lra_real *db, const lra_real *dy,
                    const lra_real *x, const lra_real *W, int64_t R, int I, int O) {
    if (dW) be->gemm(be, 1, 0, O, I, (int)R, 1, dy, O, 0, x, I, 0, 1, dW, I, 0, 1);
    if (db) be->sum_rows(be, db, dy, R, O);
    if (dx) be->gemm(be, 0, 0, (int)R, I, O, 1, dy, O, 0, W, I, 0, 1, dx, I, 0, 1);
}

void lra_linear_init_fill(lra_real *W, lra_real *b, int I, int O, lra_linear_init how, lra_init_rng *r) {
    int64_t n = (int64_t)I * O;
    switch (how) {
    case LRA_LINEAR_TORCH:
        lra_init_torch_linear(W, n, r, I);
        if (b) lra_init_torch_linear(b, O, r, I);
        break;
    case LRA_LINEAR_FLAX:
        lra_init_lecun_normal(W, n, r, I);
        if (b) lra_init_const(b, O, 0);
        break;
    default:
        lra_init_xavier_uniform(W, n, r, I, O);
        if (b) lra_init_normal(b, O, r, 1e-6);
        break;
    }
}
