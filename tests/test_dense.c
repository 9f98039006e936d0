// test_dense.c: GEMM (every transpose, strides, batches, alpha/beta), bias
// add, and a linear layer y = x W^T + b built from them, whose backward (two
// transposed GEMMs and a column sum) is checked by finite differences.
#include "check.h"

#include <math.h>

// C = alpha op(A) op(B) + beta C in double
static void ref_gemm(double *C, int tA, int tB, int M, int N, int K, double alpha, const lra_real *A, int lda,
                     const lra_real *B, int ldb, double beta, const lra_real *C0, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = tA ? A[(int64_t)k * lda + m] : A[(int64_t)m * lda + k];
                double b = tB ? B[(int64_t)n * ldb + k] : B[(int64_t)k * ldb + n];
                s += a * b;
            }
            C[(int64_t)m * ldc + n] = alpha * s + beta * C0[(int64_t)m * ldc + n];
        }
}

static void check_gemm(int tA, int tB, int M, int N, int K, int pad, int batch) {
    lra_backend *be = t_backend();
    int lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
    int64_t sA = (int64_t)(tA ? K : M) * lda + 3, sB = (int64_t)(tB ? N : K) * ldb + 1, sC = (int64_t)M * ldc + 2;
    lra_real *A = t_guarded(sA * batch), *B = t_guarded(sB * batch), *C = t_guarded(sC * batch);
    lra_real *C0 = t_guarded(sC * batch);
    t_rand_fill(A, sA * batch, 1, -1, 1);
    t_rand_fill(B, sB * batch, 2, -1, 1);
    t_rand_fill(C0, sC * batch, 3, -1, 1);
    for (int64_t i = 0; i < sC * batch; i++) C[i] = C0[i];
    double alpha = 0.75, beta = -0.5;
    be->gemm(be, tA, tB, M, N, K, (lra_real)alpha, A, lda, sA, B, ldb, sB, (lra_real)beta, C, ldc, sC, batch);
    double *want = malloc(sizeof(double) * (size_t)(sC * batch));
    for (int64_t i = 0; i < sC * batch; i++) want[i] = C0[i];  // padding columns untouched
    for (int i = 0; i < batch; i++)
        ref_gemm(want + i * sC, tA, tB, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C0 + i * sC, ldc);
    char what[96];
    snprintf(what, sizeof what, "gemm tA=%d tB=%d M=%d N=%d K=%d batch=%d", tA, tB, M, N, K, batch);
    t_close(what, C, want, sC * batch, T_FWD_TOL * (K + 1));
    t_guard_ok(C, what);
    free(want);
    t_guarded_free(A); t_guarded_free(B); t_guarded_free(C); t_guarded_free(C0);
}

static void test_gemm(void) {
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            check_gemm(tA, tB, 7, 5, 3, 0, 1);
            check_gemm(tA, tB, 1, 9, 13, 2, 1);
            check_gemm(tA, tB, 6, 4, 11, 1, 5);   // batched, padded leading dims, gaps between matrices
        }
    check_gemm(0, 1, 130, 67, 96, 0, 1);
    check_gemm(1, 0, 33, 17, 257, 3, 9);
}

static void test_bias_add(void) {
    lra_backend *be = t_backend();
    int64_t R = 9; int C = 7;
    lra_real *out = t_guarded(R * C), *bias = t_guarded(C);
    t_rand_fill(out, R * C, 4, -1, 1);
    t_rand_fill(bias, C, 5, -1, 1);
    double *want = malloc(sizeof(double) * (size_t)(R * C));
    for (int64_t i = 0; i < R * C; i++) want[i] = (double)out[i] + bias[i % C];
    be->bias_add(be, out, bias, R, C);
    t_close("bias_add", out, want, R * C, T_FWD_TOL);
    t_guard_ok(out, "bias_add out");
    free(want);
    t_guarded_free(out); t_guarded_free(bias);
}

// linear layer: y (R, O) = x (R, I) W^T (O, I) + b (O)
typedef struct { int64_t R; int I, O; lra_real *x, *W, *b, *y, *P; } lin_ctx;

static void lin_forward(lin_ctx *c) {
    lra_backend *be = t_backend();
    be->gemm(be, 0, 1, (int)c->R, c->O, c->I, 1, c->x, c->I, 0, c->W, c->I, 0, 0, c->y, c->O, 0, 1);
    be->bias_add(be, c->y, c->b, c->R, c->O);
}

static double lin_loss(void *p) {
    lin_ctx *c = p;
    lin_forward(c);
    return t_project(c->y, c->P, c->R * c->O);
}

static void test_linear_grad(void) {
    lra_backend *be = t_backend();
    lin_ctx c = { .R = 6, .I = 5, .O = 3 };
    c.x = t_guarded(c.R * c.I); c.W = t_guarded(c.O * c.I); c.b = t_guarded(c.O);
    c.y = t_guarded(c.R * c.O); c.P = t_guarded(c.R * c.O);
    t_rand_fill(c.x, c.R * c.I, 6, -1, 1);
    t_rand_fill(c.W, c.O * c.I, 7, -1, 1);
    t_rand_fill(c.b, c.O, 8, -1, 1);
    t_rand_fill(c.P, c.R * c.O, 9, -1, 1);
    lin_forward(&c);
    lra_real *dx = t_guarded(c.R * c.I), *dW = t_guarded(c.O * c.I), *db = t_guarded(c.O);
    be->fill(be, dx, 0, c.R * c.I); be->fill(be, dW, 0, c.O * c.I); be->fill(be, db, 0, c.O);
    // dx = dy W, dW = dy^T x, db = sum_r dy (accumulating through beta = 1)
    be->gemm(be, 0, 0, (int)c.R, c.I, c.O, 1, c.P, c.O, 0, c.W, c.I, 0, 1, dx, c.I, 0, 1);
    be->gemm(be, 1, 0, c.O, c.I, (int)c.R, 1, c.P, c.O, 0, c.x, c.I, 0, 1, dW, c.I, 0, 1);
    be->sum_rows(be, db, c.P, c.R, c.O);
    t_gradcheck("linear dx", lin_loss, &c, c.x, c.R * c.I, dx, T_GRAD_TOL);
    t_gradcheck("linear dW", lin_loss, &c, c.W, c.O * c.I, dW, T_GRAD_TOL);
    t_gradcheck("linear db", lin_loss, &c, c.b, c.O, db, T_GRAD_TOL);
    t_guard_ok(dx, "dx"); t_guard_ok(dW, "dW"); t_guard_ok(db, "db");
    lra_real *v[] = { c.x, c.W, c.b, c.y, c.P, dx, dW, db };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) t_guarded_free(v[i]);
}

static void test_gemm_k0(void) {
    // K = 0: the product is empty, C = beta C
    lra_backend *be = t_backend();
    lra_real A[1] = {0}, B[1] = {0}, C[6] = {1, 2, 3, 4, 5, 6};
    be->gemm(be, 0, 0, 2, 3, 0, 1, A, 1, 0, B, 3, 0, (lra_real)0.5, C, 3, 0, 1);
    T_CHECK(C[0] == (lra_real)0.5 && C[5] == 3, "C scaled by beta: %g %g", (double)C[0], (double)C[5]);
    // beta = 0: C is not read, so NaN in a fresh output does not survive
    lra_real Cn[6] = { NAN, NAN, NAN, NAN, NAN, NAN };
    be->gemm(be, 0, 0, 2, 3, 0, 1, A, 1, 0, B, 3, 0, 0, Cn, 3, 0, 1);
    T_CHECK(Cn[0] == 0 && Cn[5] == 0, "beta 0 overwrites: %g %g", (double)Cn[0], (double)Cn[5]);
}

static const t_case cases[] = {
    { "dense/gemm", test_gemm },
    { "dense/gemm_k0", test_gemm_k0 },
    { "dense/bias_add", test_bias_add },
    { "dense/linear_grad", test_linear_grad },
};
T_MAIN(cases)
