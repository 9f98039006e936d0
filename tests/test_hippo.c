// test_hippo.c: the Hermitian eigensolver and the HiPPO-LegS NPLR form
// (models/hippo.c): eigen-decomposition reconstructs random Hermitian
// matrices, the LegS skew part has the eigen-frequencies of models.md 3,
// the modes reproduce A = V (Lambda - P~ P~*) V* through norms and inner
// products that are invariant to the eigenvectors' phases.
#include "../models/hippo.h"
#include "check.h"

#include <string.h>

#include <math.h>

static void test_eig_random(void) {
    int sizes[] = { 1, 2, 5, 17 };
    for (int s = 0; s < 4; s++) {
        int n = sizes[s];
        double *A = malloc(sizeof(double) * 2 * n * n), *A0 = malloc(sizeof(double) * 2 * n * n);
        double *w = malloc(sizeof(double) * n), *V = malloc(sizeof(double) * 2 * n * n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double re = lra_rand_uniform(s, (uint64_t)(i * n + j)) - 0.5, im = i == j ? 0 : lra_rand_uniform(s + 9, (uint64_t)(i * n + j)) - 0.5;
                A[2 * (i * n + j)] = A[2 * (j * n + i)] = re;
                A[2 * (i * n + j) + 1] = im;
                A[2 * (j * n + i) + 1] = -im;
            }
        memcpy(A0, A, sizeof(double) * 2 * n * n);
        lra_err err = { 0 };
        T_CHECK(lra_hermitian_eig(n, A, w, V, &err) == 0, "%s", err.msg);
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {  // sum_k V_ik w_k conj(V_jk) = A_ij
                double re = 0, im = 0;
                for (int k = 0; k < n; k++) {
                    double ar = V[2 * (i * n + k)], ai = V[2 * (i * n + k) + 1];
                    double br = V[2 * (j * n + k)], bi = -V[2 * (j * n + k) + 1];
                    re += w[k] * (ar * br - ai * bi), im += w[k] * (ar * bi + ai * br);
                }
                worst = fmax(worst, hypot(re - A0[2 * (i * n + j)], im - A0[2 * (i * n + j) + 1]));
            }
        for (int k = 1; k < n; k++) T_CHECK(w[k - 1] <= w[k], "n=%d: eigenvalues not ascending", n);
        T_CHECK(worst < 1e-12, "n=%d: reconstruction error %.3g", n, worst);
        free(A), free(A0), free(w), free(V);
    }
}

static void test_legs_values(void) {
    double Lam[8], P[8], B[8];
    lra_err err = { 0 };
    T_CHECK(lra_hippo_legs_nplr(8, Lam, P, B, &err) == 0, "%s", err.msg);
    const double want[4] = { 19.8574, 5.3542, 1.9578, 0.4275 };  // |Im|, models.md 3 (N = 8)
    for (int k = 0; k < 4; k++) {
        T_CHECK(Lam[2 * k] == -0.5, "Re Lambda[%d] = %g", k, Lam[2 * k]);
        T_CHECK(fabs(-Lam[2 * k + 1] - want[k]) < 1e-4, "Im Lambda[%d] = %.6f, want -%.4f", k, Lam[2 * k + 1], want[k]);
    }
    T_CHECK(lra_hippo_legs_nplr(7, Lam, P, B, &err) == LRA_EINVAL, "odd N refused");
}

// With the conjugate modes, V is unitary: 2 sum |B~|^2 = |B|^2 = N^2,
// 2 sum |P~|^2 = |P|^2 = N^2/2, 2 Re sum conj(P~) B~ = P.B; and
// P~* diag(Lambda) ... : B^T A B = 2 Re sum conj(B~)(Lambda B~ - P~ (P~* B~))
// summed over the full set of modes.
static void test_legs_invariants(void) {
    for (int N = 2; N <= 64; N *= 2) {
        int Nc = N / 2;
        double *Lam = malloc(sizeof(double) * N), *P = malloc(sizeof(double) * N), *B = malloc(sizeof(double) * N);
        lra_err err = { 0 };
        T_CHECK(lra_hippo_legs_nplr(N, Lam, P, B, &err) == 0, "%s", err.msg);
        double bb = 0, pp = 0, pb_re = 0, pb_im = 0, pB = 0, bAb = 0, want_bAb = 0;
        for (int k = 0; k < Nc; k++) {
            bb += 2 * (B[2 * k] * B[2 * k] + B[2 * k + 1] * B[2 * k + 1]);
            pp += 2 * (P[2 * k] * P[2 * k] + P[2 * k + 1] * P[2 * k + 1]);
            pb_re += P[2 * k] * B[2 * k] + P[2 * k + 1] * B[2 * k + 1];  // Re conj(P) B
            pb_im += P[2 * k] * B[2 * k + 1] - P[2 * k + 1] * B[2 * k];
        }
        // P~* B~ over all modes is real (= P.B): 2 Re of the half sum
        double pstarb = 2 * pb_re;
        for (int k = 0; k < Nc; k++) {
            // conj(B) Lambda B = Lambda |B|^2 ; conj(B) P (P* B) = conj(B) P * pstarb
            double b2 = B[2 * k] * B[2 * k] + B[2 * k + 1] * B[2 * k + 1];
            double cbp = B[2 * k] * P[2 * k] + B[2 * k + 1] * P[2 * k + 1];  // Re conj(B) P
            bAb += 2 * (Lam[2 * k] * b2 - cbp * pstarb);
        }
        for (int n = 0; n < N; n++) {
            pB += sqrt(n + 0.5) * sqrt(2.0 * n + 1);
            for (int m = 0; m < N; m++) {
                double a = n > m ? -sqrt(2.0 * n + 1) * sqrt(2.0 * m + 1) : n == m ? -(n + 1.0) : 0;
                want_bAb += sqrt(2.0 * n + 1) * a * sqrt(2.0 * m + 1);
            }
        }
        (void)pb_im;
        T_CHECK(fabs(bb - (double)N * N) < 1e-9 * N * N, "N=%d: |B~|^2 %.12g vs %d", N, bb, N * N);
        T_CHECK(fabs(pp - N * N / 2.0) < 1e-9 * N * N, "N=%d: |P~|^2 %.12g", N, pp);
        T_CHECK(fabs(pstarb - pB) < 1e-9 * pB, "N=%d: P~*B~ %.12g vs %.12g", N, pstarb, pB);
        T_CHECK(fabs(bAb - want_bAb) < 1e-9 * fabs(want_bAb), "N=%d: B^T A B %.12g vs %.12g", N, bAb, want_bAb);
        free(Lam), free(P), free(B);
    }
}

static const t_case cases[] = {
    { "hippo/eig_random", test_eig_random },
    { "hippo/legs_values", test_legs_values },
    { "hippo/legs_invariants", test_legs_invariants },
};
T_MAIN(cases)
