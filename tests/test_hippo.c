// test_hippo.c: HiPPO-LegS NPLR form (models/hippo.c): the Jacobi eigensolver
// on random Hermitian matrices; the skew-symmetric solver (Householder + QL)
// on random skew matrices, against Jacobi; for LegS the eigenvalues of N = 8 (models.md
// 3), Re Lambda = -1/2, ascending order, and A = V (Lambda - P~ P~*) V* with
// B = V B~ over the conjugate-completed basis, to fp64 rounding; the N = 8
// values of P~ and B~ that torch.linalg.eigh gives (signs aligned to our
// convention, first eigenvector component >= 0); bad N.
#include "../models/hippo.h"
#include "t.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>

static double complex cx(const double *p, size_t i) { return p[2 * i] + I * p[2 * i + 1]; }

static double unif(uint64_t seed, uint64_t i) { return (double)(lra_rand_bits(seed, i) >> 11) * 0x1p-53 * 2 - 1; }

static void test_jacobi_random(void) {
    for (int n = 1; n <= 24; n += 5) {
        size_t nn = (size_t)n * n;
        double complex *H = malloc(sizeof *H * nn), *H0 = malloc(sizeof *H0 * nn), *V = malloc(sizeof *V * nn);
        double *w = malloc(sizeof *w * n);
        for (int p = 0; p < n; p++)
            for (int q = 0; q <= p; q++) {
                double complex z = unif(n, 2 * (p * n + q)) + I * (p == q ? 0 : unif(n, 2 * (p * n + q) + 1));
                H0[(size_t)p * n + q] = z;
                H0[(size_t)q * n + p] = conj(z);
            }
        for (size_t i = 0; i < nn; i++) H[i] = H0[i];
        int sweeps = lra_hermitian_eig(n, (double *)H, w, (double *)V);
        T_CHECK(sweeps >= 0 && sweeps < 20, "n=%d: %d sweeps", n, sweeps);
        double worst_h = 0, worst_u = 0;
        for (int p = 0; p < n; p++)
            for (int q = 0; q < n; q++) {
                double complex hv = 0, vv = 0;  // (H V)_{pq} - w_q V_{pq};  (V* V)_{pq} - delta
                for (int k = 0; k < n; k++) {
                    hv += H0[(size_t)p * n + k] * V[(size_t)k * n + q];
                    vv += conj(V[(size_t)k * n + p]) * V[(size_t)k * n + q];
                }
                worst_h = fmax(worst_h, cabs(hv - w[q] * V[(size_t)p * n + q]));
                worst_u = fmax(worst_u, cabs(vv - (p == q)));
            }
        T_CHECK(worst_h < 1e-13 && worst_u < 1e-13, "n=%d: |HV - VW| %.3g, |V*V - I| %.3g", n, worst_h, worst_u);
        for (int i = 1; i < n; i++) T_CHECK(w[i] >= w[i - 1], "n=%d: not ascending at %d", n, i);
        free(H); free(H0); free(V); free(w);
    }
}

// lra_skew_eig on random skew-symmetric S: residual of (-i S) V = V W,
// unitarity, real first components, and the eigenvalues of the Jacobi solver.
static void test_skew_random(void) {
    for (int n = 1; n <= 40; n += 13) {
        size_t nn = (size_t)n * n;
        double *S = malloc(sizeof *S * nn), *S0 = malloc(sizeof *S0 * nn), *w = malloc(sizeof *w * n);
        double *wj = malloc(sizeof *wj * n);
        double complex *V = malloc(sizeof *V * nn), *H = malloc(sizeof *H * nn), *Vj = malloc(sizeof *Vj * nn);
        for (int p = 0; p < n; p++)
            for (int q = 0; q <= p; q++) {
                double x = p == q ? 0 : unif(100 + n, (uint64_t)(p * n + q)) * (1 + p);  // graded rows
                S0[(size_t)p * n + q] = x;
                S0[(size_t)q * n + p] = -x;
            }
        for (size_t i = 0; i < nn; i++) {
            S[i] = S0[i];
            H[i] = -I * S0[i];
        }
        T_CHECK(lra_skew_eig(n, S, w, (double *)V) == 0, "n=%d: no convergence", n);
        lra_hermitian_eig(n, (double *)H, wj, (double *)Vj);
        double worst_h = 0, worst_u = 0, worst_w = 0, scale = 1e-300;
        for (int i = 0; i < n; i++) scale = fmax(scale, fabs(wj[i]));
        for (int p = 0; p < n; p++) {
            worst_w = fmax(worst_w, fabs(w[p] - wj[p]) / scale);
            T_CHECK(cimag(V[p]) == 0, "n=%d: first component of vector %d is not real", n, p);
            for (int q = 0; q < n; q++) {
                double complex hv = 0, vv = 0;
                for (int k = 0; k < n; k++) {
                    hv += -I * S0[(size_t)p * n + k] * V[(size_t)k * n + q];
                    vv += conj(V[(size_t)k * n + p]) * V[(size_t)k * n + q];
                }
                worst_h = fmax(worst_h, cabs(hv - w[q] * V[(size_t)p * n + q]) / scale);
                worst_u = fmax(worst_u, cabs(vv - (p == q)));
            }
        }
        T_CHECK(worst_h < 1e-13 && worst_u < 1e-13 && worst_w < 1e-13,
                "n=%d: |HV - VW| %.3g, |V*V - I| %.3g, eigenvalues vs Jacobi %.3g", n, worst_h, worst_u, worst_w);
        free(S); free(S0); free(w); free(wj); free(V); free(H); free(Vj);
    }
}

static void test_legs_n8(void) {
    double Lam[8], P[8], B[8];
    lra_err err = { 0 };
    T_CHECK(lra_hippo_legs_nplr(8, Lam, P, B, &err) == LRA_OK, "%s", err.msg);
    // torch.linalg.eigh of -i (A + P P^T), sorted, with each eigenvector's sign flipped to a first component >= 0
    const double im[4] = { -19.857410370970577, -5.354208515030874, -1.9577941509028063, -0.42748871228586144 };
    const double Bt[8] = { 0.1297750272955982, 5.153991945825175, 0.17144282224579632, 1.8358812374187303,
                           0.2907405540940694, 1.1384203124712253, 0.6076477031931377, 0.51952506832299 };
    const double Pt[8] = { 0.0917648018293864, 3.644422655073831, 0.12122838219576249, 1.2981640724319343,
                           0.20558461736585049, 0.804984722788912, 0.42967181150029815, 0.36735969880759073 };
    for (int j = 0; j < 4; j++) {
        T_CHECK(Lam[2 * j] == -0.5, "Re Lambda[%d] = %.17g", j, Lam[2 * j]);
        T_CHECK(fabs(Lam[2 * j + 1] - im[j]) < 1e-12, "Im Lambda[%d] = %.17g, want %.17g", j, Lam[2 * j + 1], im[j]);
    }
    // models.md 3 quotes the magnitudes 19.8574, 5.3542, 1.9578, 0.4275 to 4 decimals
    T_CHECK(fabs(Lam[1] + 19.8574) < 1e-4 && fabs(Lam[7] + 0.4275) < 1e-4, "models.md values");
    for (int i = 0; i < 8; i++) {
        T_CHECK(fabs(B[i] - Bt[i]) < 1e-12, "B[%d] = %.17g, torch %.17g", i, B[i], Bt[i]);
        T_CHECK(fabs(P[i] - Pt[i]) < 1e-12, "P[%d] = %.17g, torch %.17g", i, P[i], Pt[i]);
    }
}

// A = V_f (Lambda_f - P_f P_f^*) V_f^* with V_f = [V, conj V], Lambda_f = [Lambda, conj Lambda],
// P_f = [P, conj P]; B_legs = V_f B_f = 2 Re(V B); V_f unitary.
static void check_reconstruction(int N) {
    int Nc = N / 2;
    double *Lam = malloc(sizeof(double) * N), *P = malloc(sizeof(double) * N), *Bt = malloc(sizeof(double) * N);
    double *Vr = malloc(sizeof(double) * N * N), *A = malloc(sizeof(double) * N * N), *Bl = malloc(sizeof(double) * N);
    double complex *Vf = malloc(sizeof *Vf * N * N), *Lf = malloc(sizeof *Lf * N), *Pf = malloc(sizeof *Pf * N);
    double complex *Bf = malloc(sizeof *Bf * N);
    lra_err err = { 0 };
    T_CHECK(lra_hippo_legs_nplr_basis(N, Lam, P, Bt, Vr, &err) == LRA_OK, "N=%d: %s", N, err.msg);
    lra_hippo_legs_dense(N, A, Bl, NULL);
    for (int j = 0; j < Nc; j++) {
        Lf[j] = cx(Lam, j); Lf[j + Nc] = conj(Lf[j]);
        Pf[j] = cx(P, j); Pf[j + Nc] = conj(Pf[j]);
        Bf[j] = cx(Bt, j); Bf[j + Nc] = conj(Bf[j]);
        T_CHECK(Lam[2 * j] == -0.5 && Lam[2 * j + 1] < 0, "N=%d: Lambda[%d] = %g%+gi", N, j, Lam[2 * j], Lam[2 * j + 1]);
        if (j) T_CHECK(Lam[2 * j + 1] > Lam[2 * j - 1], "N=%d: Im Lambda not ascending at %d", N, j);
        T_CHECK(Vr[2 * j + 1] == 0 && Vr[2 * j] >= 0, "N=%d: phase of mode %d", N, j);
        for (int k = 0; k < N; k++) {
            Vf[(size_t)k * N + j] = cx(Vr, (size_t)k * Nc + j);
            Vf[(size_t)k * N + j + Nc] = conj(Vf[(size_t)k * N + j]);
        }
    }
    double amax = 0, ea = 0, eb = 0, eu = 0;
    double complex *W = malloc(sizeof *W * N * N);  // (Lambda_f - P_f P_f^*) V_f^*, then compared row by row
    for (int i = 0; i < N; i++)
        for (int k = 0; k < N; k++) {
            double complex acc = Lf[i] * conj(Vf[(size_t)k * N + i]), pv = 0;
            for (int j = 0; j < N; j++) pv += conj(Pf[j]) * conj(Vf[(size_t)k * N + j]);
            W[(size_t)i * N + k] = acc - Pf[i] * pv;
        }
    for (int n = 0; n < N * N; n++) amax = fmax(amax, fabs(A[n]));
    for (int n = 0; n < N; n++) {
        double complex b = 0;
        for (int j = 0; j < N; j++) b += Vf[(size_t)n * N + j] * Bf[j];
        eb = fmax(eb, cabs(b - Bl[n]) / sqrt(2.0 * N));
        for (int k = 0; k < N; k++) {
            double complex a = 0, u = 0;
            for (int i = 0; i < N; i++) {
                a += Vf[(size_t)n * N + i] * W[(size_t)i * N + k];
                u += conj(Vf[(size_t)i * N + n]) * Vf[(size_t)i * N + k];
            }
            ea = fmax(ea, cabs(a - A[(size_t)n * N + k]) / amax);
            eu = fmax(eu, cabs(u - (n == k)));
        }
    }
    free(W);
    T_CHECK(ea < 1e-12, "N=%d: A reconstruction error %.3g (relative to max |A| = %g)", N, ea, amax);
    T_CHECK(eb < 1e-12, "N=%d: B reconstruction error %.3g", N, eb);
    T_CHECK(eu < 1e-12, "N=%d: V_f not unitary: %.3g", N, eu);
    free(Lam); free(P); free(Bt); free(Vr); free(A); free(Bl); free(Vf); free(Lf); free(Pf); free(Bf);
}

static void test_reconstruction(void) {
    check_reconstruction(2);
    check_reconstruction(8);
    check_reconstruction(16);
    check_reconstruction(64);
    check_reconstruction(256);
}

static void test_bad_n(void) {
    double x[8];
    lra_err err = { 0 };
    T_CHECK(lra_hippo_legs_nplr(7, x, x, x, &err) == LRA_EINVAL && strstr(err.msg, "N = 7"), "odd: %s", err.msg);
    T_CHECK(lra_hippo_legs_nplr(0, x, x, x, &err) == LRA_EINVAL, "zero");
    T_CHECK(lra_hippo_legs_nplr(4, NULL, NULL, x, &err) == LRA_OK, "NULL outputs");
}

static const t_case cases[] = {
    { "hippo/jacobi_random", test_jacobi_random },
    { "hippo/skew_random", test_skew_random },
    { "hippo/legs_n8", test_legs_n8 },
    { "hippo/reconstruction", test_reconstruction },
    { "hippo/bad_n", test_bad_n },
};
T_MAIN(cases)
