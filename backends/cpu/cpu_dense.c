// cpu_dense.c: GEMM through OpenBLAS (the OpenMP build of it: a call made
// inside one of our parallel regions runs on the calling thread only) and the
// bias broadcast.
#include "cpu.h"

#include <cblas.h>

#ifdef LRA_F64
#define cpu_blas_gemm cblas_dgemm
#else
#define cpu_blas_gemm cblas_sgemm
#endif

void cpu_gemm(lra_backend *be, int transA, int transB, int M, int N, int K, lra_real alpha, const lra_real *A,
              int lda, int64_t strideA, const lra_real *B, int ldb, int64_t strideB, lra_real beta, lra_real *C,
              int ldc, int64_t strideC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    enum CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    if (K <= 0) {  // an empty product: C = beta C, and with beta = 0 C is not read (BLAS)
        for (int i = 0; i < batch; i++)
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    lra_real *c = &C[i * strideC + (int64_t)m * ldc + n];
                    *c = beta == 0 ? 0 : beta * *c;
                }
        return;
    }
    // Many small products: one per thread. Few large ones: OpenBLAS threads each.
    if (batch >= be->n_threads && batch > 1) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < batch; i++)
            cpu_blas_gemm(CblasRowMajor, ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb,
                          beta, C + i * strideC, ldc);
    } else {
        for (int i = 0; i < batch; i++)
            cpu_blas_gemm(CblasRowMajor, ta, tb, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb,
                          beta, C + i * strideC, ldc);
    }
}

void cpu_bias_add(lra_backend *be, lra_real *out, const lra_real *bias, int64_t R, int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++) out[r * C + c] += bias[c];
}
