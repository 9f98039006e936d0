// hippo.h: HiPPO-LegS in normal-plus-low-rank form (models.md 4), on the
// host in double precision: the initial values of S4 (DPLR) and S4D-LegS.
#ifndef LRA_HIPPO_H
#define LRA_HIPPO_H

#include "../backends/core.h"

// HiPPO-LegS for state size N (even, >= 2): A_nk = -sqrt(2n+1) sqrt(2k+1)
// (n > k), -(n+1) (n = k), 0 (n < k); B_n = sqrt(2n+1); P_n = sqrt(n + 1/2)
// makes A + P P^T = -I/2 + S with S skew-symmetric. With S = V diag(i w) V*
// (V unitary), A = V (Lambda - P~ P~*) V* where Lambda = -1/2 + i w.
// Writes the Nc = N/2 modes with negative imaginary part (the others are
// their conjugates), ordered by imaginary part ascending (most negative
// first, as the official nplr), each as interleaved (re, im):
//   Lambda (Nc)c, P = V* P_legs (Nc)c, B = V* B_legs (Nc)c  (no clipping).
int lra_hippo_legs_nplr(int N, double *Lambda, double *P, double *B, lra_err *err);

// Eigen-decomposition of a Hermitian n x n matrix (row-major, interleaved
// complex; overwritten) by cyclic Jacobi rotations: eigenvalues w (n)
// ascending and orthonormal eigenvectors as the columns of V (n, n)c.
int lra_hermitian_eig(int n, double *A, double *w, double *V, lra_err *err);

#endif // LRA_HIPPO_H
