// hippo.h: HiPPO-LegS in normal-plus-low-rank form (models.md 4), host side,
// double precision, for the initial values of S4D-LegS and S4-DPLR.
#ifndef LRA_HIPPO_H
#define LRA_HIPPO_H

#include "../backends/core.h"

// Dense HiPPO-LegS of state size N (models.md 4): A (N, N) row-major with
// A[n][k] = -sqrt(2n+1) sqrt(2k+1) for n > k, -(n+1) for n = k, 0 for n < k;
// B (N) = sqrt(2n+1); P (N) = sqrt(n + 1/2), so that A + P P^T = -I/2 + S with
// S skew-symmetric. Any pointer may be NULL.
void lra_hippo_legs_dense(int N, double *A, double *B, double *P);

// HiPPO-LegS in normal-plus-low-rank form, state size N (even, 2..4096):
// Lambda, P, B: Nc = N/2 complex values each, interleaved (re, im): the modes
// of the normal part A + P P^T = V (Lambda) V* that have negative imaginary
// part (conjugates dropped), P = V* P_legs, B = V* B_legs (no clipping:
// callers clip Im B as their model does). Then A = V (Lambda - P~ P~*) V* over
// the full (conjugate-completed) basis.
//
// Order and phase, as the official state-spaces/s4 `nplr` (models/s4/s4.py)
// produces them: modes sorted by Im Lambda ascending (most negative first;
// for N = 8: -19.857, -5.354, -1.958, -0.4275), Re Lambda = -1/2 exactly (the
// reference takes the mean of the computed diagonal of A + P P^T, -1/2 up to
// rounding). Each eigenvector is scaled to have a real first
// component; LAPACK's zheevd (behind torch.linalg.eigh) gives a real first
// component too, but its sign is the solver's: we take it >= 0, so P and B of
// a mode may differ from PyTorch's by a common factor -1 (which leaves the
// S4/S4D models equivalent in distribution: C is symmetric).
// Eigen-decomposition of the Hermitian -i S by lra_skew_eig (no LAPACK). Returns LRA_EINVAL for a bad N,
// LRA_ENOMEM when out of memory.
int lra_hippo_legs_nplr(int N, double *Lambda, double *P, double *B, lra_err *err);
// The same, also writing the kept eigenvectors V (N, N/2)c (row-major, column
// j = mode j; V may be NULL): A + P P^T = 2 Re(V Lambda V*), B_legs = 2 Re(V B).
int lra_hippo_legs_nplr_basis(int N, double *Lambda, double *P, double *B, double *V, lra_err *err);

// Eigen-decomposition of a Hermitian matrix H (n, n), complex interleaved
// (row-major, n*n complex), by cyclic Jacobi rotations: eigenvalues w (n)
// ascending, eigenvectors as the columns of V (n, n)c, orthonormal. H is
// overwritten. Returns the number of sweeps used (< 0: did not converge).
int lra_hermitian_eig(int n, double *H, double *w, double *V);

// Eigen-decomposition of the Hermitian matrix -i S for a real skew-symmetric
// S (n, n) (row-major, overwritten): eigenvalues w (n) ascending, orthonormal
// eigenvectors as the columns of V (n, n)c, each with a real first component
// (sign not normalised). Householder reduction to a skew tridiagonal T, the
// diagonal similarity diag((-i)^k) that makes -i T real symmetric, implicit
// QL. Returns 0, or -1 when QL does not converge or memory runs out.
int lra_skew_eig(int n, double *S, double *w, double *V);

#endif // LRA_HIPPO_H
