// hippo.c: HiPPO-LegS and its normal-plus-low-rank diagonalisation (models.md
// 4), with a small Hermitian eigensolver (cyclic Jacobi), all in double on
// the host: it runs once per layer at initialisation.
#include "hippo.h"

#include <complex.h>
#include <math.h>
#include <string.h>

typedef double complex cplx;

// One Jacobi rotation zeroing A[p][q]: with e = A[p][q] / |A[p][q]| the
// unitary U = diag(1, conj(e)) R (R the real rotation of the phased 2x2
// problem) gives A <- U* A U, V <- V U.
static void jacobi_rotate(int n, cplx *A, cplx *V, int p, int q) {
    cplx apq = A[p * n + q];
    double b = cabs(apq);
    if (b == 0) return;
    cplx e = apq / b;
    double theta = (creal(A[q * n + q]) - creal(A[p * n + p])) / (2 * b);
    double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
    double c = 1 / sqrt(t * t + 1), s = t * c;
    cplx upq = s, uqp = -s * conj(e), uqq = c * conj(e);
    for (int r = 0; r < n; r++) {  // columns: A U, V U
        cplx arp = A[r * n + p], arq = A[r * n + q];
        A[r * n + p] = arp * c + arq * uqp;
        A[r * n + q] = arp * upq + arq * uqq;
        cplx vrp = V[r * n + p], vrq = V[r * n + q];
        V[r * n + p] = vrp * c + vrq * uqp;
        V[r * n + q] = vrp * upq + vrq * uqq;
    }
    for (int k = 0; k < n; k++) {  // rows: U* (A U)
        cplx apk = A[p * n + k], aqk = A[q * n + k];
        A[p * n + k] = c * apk + conj(uqp) * aqk;
        A[q * n + k] = conj(upq) * apk + conj(uqq) * aqk;
    }
    A[p * n + q] = A[q * n + p] = 0;
}

static double off_norm(int n, const cplx *A) {
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j) s += creal(A[i * n + j] * conj(A[i * n + j]));
    return sqrt(s);
}

int lra_hermitian_eig(int n, double *Ad, double *w, double *Vd, lra_err *err) {
    cplx *A = malloc(sizeof *A * (size_t)n * n), *V = calloc((size_t)n * n, sizeof *V);
    int *order = malloc(sizeof *order * (size_t)n);
    if (!A || !V || !order) {
        free(A), free(V), free(order);
        return lra_err_set(err, LRA_ENOMEM, "hermitian_eig: out of memory (n = %d)", n);
    }
    double scale = 0;
    for (int i = 0; i < n * n; i++) {
        A[i] = Ad[2 * i] + I * Ad[2 * i + 1];
        scale += creal(A[i] * conj(A[i]));
    }
    for (int i = 0; i < n; i++) V[i * n + i] = 1;
    scale = sqrt(scale);
    int sweep = 0;
    for (; sweep < 100 && off_norm(n, A) > 1e-15 * scale; sweep++)
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) jacobi_rotate(n, A, V, p, q);
    int ok = off_norm(n, A) <= 1e-13 * scale + 1e-300;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)  // insertion sort by eigenvalue
        for (int j = i; j > 0 && creal(A[order[j] * n + order[j]]) < creal(A[order[j - 1] * n + order[j - 1]]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < n; k++) {
        w[k] = creal(A[order[k] * n + order[k]]);
        for (int r = 0; r < n; r++) {
            Vd[2 * (r * n + k)] = creal(V[r * n + order[k]]);
            Vd[2 * (r * n + k) + 1] = cimag(V[r * n + order[k]]);
        }
    }
    free(A), free(V), free(order);
    return ok ? LRA_OK : lra_err_set(err, LRA_EINVAL, "hermitian_eig: no convergence after %d sweeps (n = %d)", sweep, n);
}

int lra_hippo_legs_nplr(int N, double *Lambda, double *P, double *B, lra_err *err) {
    if (N < 2 || N % 2) return lra_err_set(err, LRA_EINVAL, "HiPPO-LegS: state size must be even and >= 2, got %d", N);
    double *H = calloc((size_t)2 * N * N, sizeof *H), *w = malloc(sizeof *w * (size_t)N);
    double *V = malloc(sizeof *V * (size_t)2 * N * N);
    if (!H || !w || !V) {
        free(H), free(w), free(V);
        return lra_err_set(err, LRA_ENOMEM, "HiPPO-LegS: out of memory (N = %d)", N);
    }
    // S = A + P P^T + I/2 is real skew-symmetric; H = -i S is Hermitian with
    // eigenvalues w, so S = V diag(i w) V*.
    for (int n = 0; n < N; n++)
        for (int k = 0; k < N; k++) {
            double a = n > k ? -sqrt(2.0 * n + 1) * sqrt(2.0 * k + 1) : n == k ? -(n + 1.0) : 0;
            double s = a + sqrt(n + 0.5) * sqrt(k + 0.5) + (n == k ? 0.5 : 0);
            H[2 * (n * N + k) + 1] = -s;
        }
    int rc = lra_hermitian_eig(N, H, w, V, err);
    for (int j = 0; !rc && j < N / 2; j++) {  // ascending w: the first N/2 are negative
        Lambda[2 * j] = -0.5;
        Lambda[2 * j + 1] = w[j];
        double pr = 0, pi = 0, br = 0, bi = 0;
        for (int n = 0; n < N; n++) {  // V* x: sum_n conj(V[n][j]) x_n
            double vr = V[2 * (n * N + j)], vi = -V[2 * (n * N + j) + 1];
            pr += vr * sqrt(n + 0.5), pi += vi * sqrt(n + 0.5);
            br += vr * sqrt(2.0 * n + 1), bi += vi * sqrt(2.0 * n + 1);
        }
        P[2 * j] = pr, P[2 * j + 1] = pi, B[2 * j] = br, B[2 * j + 1] = bi;
    }
    free(H), free(w), free(V);
    return rc;
}
