// cuda_dense.cu: GEMM through cuBLAS and the bias broadcast.
#include "cuda.cuh"

// C (M, N) = beta C for each of `batch` matrices: the K = 0 case, defined as
// on the CPU (with beta = 0, C is not read, as in BLAS).
__global__ static void cu_scale_matrices_kernel(lra_real *C, lra_real beta, int M, int N, int ldc, int64_t strideC,
                                                int batch) {
    int64_t n = (int64_t)batch * M * N;
    CU_FOR(i, n) {
        int64_t col = i % N, t = i / N;
        int64_t row = t % M, b = t / M;
        lra_real *c = &C[b * strideC + row * ldc + col];
        *c = beta == 0 ? 0 : beta * *c;
    }
}

// cuBLAS is column-major; a row-major (R, C) matrix with row stride ld is the
// column-major (C, R) matrix of its transpose with the same ld. So the
// row-major product C = op(A) op(B) is computed as the column-major
//   C^T (N, M) = op(B)^T (N, K) op(A)^T (K, M),
// i.e. cuBLAS gets (B, A) in that order, with m = N, n = M and the same
// transpose flags: with transB = 0, the column-major view of the stored B is
// already B^T (N, K), CUBLAS_OP_N; with transB = 1 it is (B^T)^T, CUBLAS_OP_T.
void cuda_gemm(lra_backend *be, int transA, int transB, int M, int N, int K, lra_real alpha, const lra_real *A,
               int lda, int64_t strideA, const lra_real *B, int ldb, int64_t strideB, lra_real beta, lra_real *C,
               int ldc, int64_t strideC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    if (K <= 0) {
        int64_t n = (int64_t)batch * M * N;
        CU_LAUNCH(cu_scale_matrices_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, C, beta, M, N, ldc, strideC, batch);
        return;
    }
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasSgemmStridedBatched(lra_cuda(be)->blas, opB, opA, N, M, K, &alpha,
                                           B, ldb, (long long)strideB,
                                           A, lda, (long long)strideA, &beta,
                                           C, ldc, (long long)strideC, batch));
}

// out (R, C) += bias (C)
__global__ static void cu_bias_add_kernel(lra_real *out, const lra_real *bias, int64_t n, int C) {
    CU_FOR(i, n) out[i] += bias[i % C];
}

void cuda_bias_add(lra_backend *be, lra_real *out, const lra_real *bias, int64_t R, int C) {
    (void)be;
    int64_t n = R * C;
    if (n > 0) CU_LAUNCH(cu_bias_add_kernel, cu_grid(n, CU_BLOCK), CU_BLOCK, out, bias, n, C);
}
