// hippo.c: HiPPO-LegS matrices and their normal-plus-low-rank form
// (models.md 4), with two small eigensolvers of our own: for -i S (S the
// real skew-symmetric part) Householder tridiagonalisation + implicit QL,
// O(N^3) with small constants (N = 1024 in seconds); and a cyclic complex
// Jacobi method for general Hermitian matrices (slower, used as a cross-check).
// Host side, double.
#include "hippo.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void lra_hippo_legs_dense(int N, double *A, double *B, double *P) {
    for (int n = 0; n < N; n++) {
        if (B) B[n] = sqrt(2.0 * n + 1);
        if (P) P[n] = sqrt(n + 0.5);
        if (!A) continue;
        for (int k = 0; k < N; k++)
            A[(size_t)n * N + k] = n > k ? -sqrt(2.0 * n + 1) * sqrt(2.0 * k + 1) : n == k ? -(n + 1.0) : 0.0;
    }
}

// ---- Hermitian eigensolver ------------------------------------------------------

// The rotation J = diag(1, e^{-i phi}) R that zeroes H[p][q] = r e^{i phi}:
// diag(1, e^{-i phi}) makes the (p, q) block real symmetric [[a, r], [r, d]],
// then the real Jacobi rotation R = [[c, s], [-s, c]] with
// t = tan(theta) = sgn(h)/(|h| + sqrt(h^2 + 1)), h = (d - a)/(2r), diagonalises
// it: a' = a - t r, d' = d + t r (Numerical Recipes, section 11.1).
static void jacobi_rotate(int n, double complex *H, double complex *V, int p, int q) {
    double complex b = H[(size_t)p * n + q];
    double r = cabs(b);
    if (r == 0) return;
    double a = creal(H[(size_t)p * n + p]), d = creal(H[(size_t)q * n + q]);
    double h = (d - a) / (2 * r);
    double t = (h >= 0 ? 1.0 : -1.0) / (fabs(h) + sqrt(h * h + 1));
    double c = 1 / sqrt(1 + t * t), s = t * c;
    double complex e = conj(b) / r;  // e^{-i phi}
    double complex j00 = c, j01 = s, j10 = -s * e, j11 = c * e;
    for (int k = 0; k < n; k++) {  // H <- H J, V <- V J (columns p, q)
        double complex hp = H[(size_t)k * n + p], hq = H[(size_t)k * n + q];
        H[(size_t)k * n + p] = hp * j00 + hq * j10;
        H[(size_t)k * n + q] = hp * j01 + hq * j11;
        double complex vp = V[(size_t)k * n + p], vq = V[(size_t)k * n + q];
        V[(size_t)k * n + p] = vp * j00 + vq * j10;
        V[(size_t)k * n + q] = vp * j01 + vq * j11;
    }
    for (int k = 0; k < n; k++) {  // H <- J^H H (rows p, q)
        double complex hp = H[(size_t)p * n + k], hq = H[(size_t)q * n + k];
        H[(size_t)p * n + k] = conj(j00) * hp + conj(j10) * hq;
        H[(size_t)q * n + k] = conj(j01) * hp + conj(j11) * hq;
    }
    H[(size_t)p * n + q] = H[(size_t)q * n + p] = 0;
    H[(size_t)p * n + p] = a - t * r;
    H[(size_t)q * n + q] = d + t * r;
}

static double off_diagonal2(int n, const double complex *H) {
    double s = 0;
    for (int p = 0; p < n; p++)
        for (int q = 0; q < n; q++)
            if (p != q) s += creal(H[(size_t)p * n + q] * conj(H[(size_t)p * n + q]));
    return s;
}

// Sorts eigenpairs by w ascending (insertion sort; n is small).
static void sort_eigen(int n, double *w, double complex *V) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && w[j] < w[j - 1]; j--) {
            double tw = w[j]; w[j] = w[j - 1]; w[j - 1] = tw;
            for (int k = 0; k < n; k++) {
                double complex tv = V[(size_t)k * n + j];
                V[(size_t)k * n + j] = V[(size_t)k * n + j - 1];
                V[(size_t)k * n + j - 1] = tv;
            }
        }
}

int lra_hermitian_eig(int n, double *Hr, double *w, double *Vr) {
    double complex *H = (double complex *)Hr, *V = (double complex *)Vr;
    memset(V, 0, sizeof(double complex) * (size_t)n * n);
    double fro2 = 0;
    for (int i = 0; i < n; i++) {
        V[(size_t)i * n + i] = 1;
        H[(size_t)i * n + i] = creal(H[(size_t)i * n + i]);  // a Hermitian diagonal is real
    }
    for (size_t i = 0; i < (size_t)n * n; i++) fro2 += creal(H[i] * conj(H[i]));
    int sweeps = -1;
    double prev = INFINITY;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = off_diagonal2(n, H);
        // converged at rounding level, or stalled there
        if (off <= 1e-34 * fro2 || (off >= prev && off <= 1e-26 * fro2)) { sweeps = sweep; break; }
        prev = off;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) jacobi_rotate(n, H, V, p, q);
    }
    for (int i = 0; i < n; i++) w[i] = creal(H[(size_t)i * n + i]);
    sort_eigen(n, w, V);
    return sweeps;
}

// ---- real skew-symmetric matrices: Householder + implicit QL ---------------------

// Householder reduction of the real skew-symmetric S (n, n) to tridiagonal
// form Q^T S Q = T with T[k+1][k] = e[k] = -T[k][k+1] (Golub & Van Loan 8.3.1,
// with the skew rank-2 update: for P = I - beta v v^T and p = S v, v^T S v = 0
// gives P S P = S + beta (v p^T - p v^T)). Q (n, n) is accumulated; step k
// acts on indices > k, so Q e_0 = e_0. S is overwritten.
static void skew_tridiagonalize(int n, double *S, double *Q, double *e, double *v, double *p) {
    for (int i = 0; i < n * n; i++) Q[i] = 0;
    for (int i = 0; i < n; i++) Q[(size_t)i * n + i] = 1;
    for (int k = 0; k + 2 < n; k++) {
        int m0 = k + 1;
        double norm = 0;
        for (int i = m0; i < n; i++) norm = hypot(norm, S[(size_t)i * n + k]);
        double x0 = S[(size_t)m0 * n + k], alpha = x0 > 0 ? -norm : norm;  // P x = alpha e_1
        e[k] = alpha;
        if (norm == 0) continue;
        for (int i = m0; i < n; i++) v[i] = S[(size_t)i * n + k];
        v[m0] -= alpha;
        double vtv = 0;
        for (int i = m0; i < n; i++) vtv += v[i] * v[i];
        double beta = 2 / vtv;
        for (int i = m0; i < n; i++) {  // p = S22 v
            double acc = 0;
            for (int j = m0; j < n; j++) acc += S[(size_t)i * n + j] * v[j];
            p[i] = acc;
        }
        for (int i = m0; i < n; i++)
            for (int j = m0; j < n; j++) S[(size_t)i * n + j] += beta * (v[i] * p[j] - p[i] * v[j]);
        for (int i = m0; i < n; i++) S[(size_t)i * n + k] = S[(size_t)k * n + i] = 0;
        S[(size_t)m0 * n + k] = alpha;
        S[(size_t)k * n + m0] = -alpha;
        for (int r = 0; r < n; r++) {  // Q <- Q P
            double q = 0;
            for (int j = m0; j < n; j++) q += Q[(size_t)r * n + j] * v[j];
            for (int j = m0; j < n; j++) Q[(size_t)r * n + j] -= beta * q * v[j];
        }
    }
    e[n - 2] = S[(size_t)(n - 1) * n + n - 2];
    e[n - 1] = 0;
}

// Eigenvalues d (n) and eigenvectors (rows of Zt (n, n), Zt[m][k] = component
// k of vector m, which must start as the identity) of the real symmetric
// tridiagonal matrix with diagonal d and off-diagonal e[k] = J[k][k+1]
// (e[n-1] unused), by the implicit QL method with Wilkinson shifts
// (Numerical Recipes 11.3, "tqli"). Returns -1 when an eigenvalue needs
// more than 60 iterations. d and e are overwritten.
static int tridiagonal_ql(int n, double *d, double *e, double *Zt) {
    for (int l = 0; l < n; l++) {
        int iter = 0, m;
        do {
            for (m = l; m < n - 1; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= 0x1p-53 * dd) break;
            }
            if (m == l) break;
            if (iter++ == 60) return -1;
            double g = (d[l + 1] - d[l]) / (2 * e[l]), r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
            double s = 1, c = 1, pp = 0;
            int i;
            for (i = m - 1; i >= l; i--) {
                double f = s * e[i], b = c * e[i];
                e[i + 1] = r = hypot(f, g);
                if (r == 0) {  // underflow: deflate and start again
                    d[i + 1] -= pp;
                    e[m] = 0;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - pp;
                r = (d[i] - g) * s + 2 * c * b;
                pp = s * r;
                d[i + 1] = g + pp;
                g = c * r - b;
                double *zi = Zt + (size_t)i * n, *zj = Zt + (size_t)(i + 1) * n;
                for (int k = 0; k < n; k++) {
                    double f2 = zj[k];
                    zj[k] = s * zi[k] + c * f2;
                    zi[k] = c * zi[k] - s * f2;
                }
            }
            if (r == 0 && i >= l) continue;
            d[l] -= pp;
            e[l] = g;
            e[m] = 0;
        } while (m != l);
    }
    return 0;
}

int lra_skew_eig(int n, double *S, double *w, double *Vr) {
    double complex *V = (double complex *)Vr;
    if (n == 1) {
        w[0] = 0;
        V[0] = 1;
        return 0;
    }
    double *Q = malloc(sizeof(double) * (size_t)n * n), *Zt = malloc(sizeof(double) * (size_t)n * n);
    double *e = malloc(sizeof(double) * (size_t)n), *d = malloc(sizeof(double) * (size_t)n);
    double *v = malloc(sizeof(double) * (size_t)n), *p = malloc(sizeof(double) * (size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n), rc = -1;
    if (!Q || !Zt || !e || !d || !v || !p || !order) goto done;
    // -i S = Q (-i T) Q^T and D^H (-i T) D = J with D = diag((-i)^k): J is real
    // symmetric tridiagonal, zero diagonal, J[k][k+1] = e[k]. So V = Q D Z.
    skew_tridiagonalize(n, S, Q, e, v, p);
    for (int i = 0; i < n * n; i++) Zt[i] = 0;
    for (int i = 0; i < n; i++) {
        Zt[(size_t)i * n + i] = 1;
        d[i] = 0;
        order[i] = i;
    }
    if (tridiagonal_ql(n, d, e, Zt)) goto done;
    for (int i = 1; i < n; i++)  // ascending eigenvalues
        for (int j = i; j > 0 && d[order[j]] < d[order[j - 1]]; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    static const double complex mi_pow[4] = { 1, -I, -1, I };  // (-i)^k
    for (int m = 0; m < n; m++) {
        const double *z = Zt + (size_t)order[m] * n;
        w[m] = d[order[m]];
        for (int j = 0; j < n; j++) {
            double complex acc = 0;
            for (int k = 0; k < n; k++) acc += Q[(size_t)j * n + k] * z[k] * mi_pow[k & 3];
            V[(size_t)j * n + m] = acc;
        }
    }
    rc = 0;
done:
    free(Q); free(Zt); free(e); free(d); free(v); free(p); free(order);
    return rc;
}

// ---- NPLR form ------------------------------------------------------------------

int lra_hippo_legs_nplr_basis(int N, double *Lambda, double *P, double *B, double *Vout, lra_err *err) {
    if (N < 2 || N > 4096 || N % 2)
        return lra_err_set(err, LRA_EINVAL, "HiPPO-LegS: state size N = %d must be even and in [2, 4096]", N);
    size_t nn = (size_t)N * N;
    double *A = malloc(sizeof(double) * nn), *Bl = malloc(sizeof(double) * N), *Pl = malloc(sizeof(double) * N);
    double *w = malloc(sizeof(double) * N);
    double complex *H = malloc(sizeof(double complex) * nn), *V = malloc(sizeof(double complex) * nn);
    int rc = LRA_OK;
    if (!A || !Bl || !Pl || !w || !H || !V) {
        rc = lra_err_set(err, LRA_ENOMEM, "HiPPO-LegS: out of memory for N = %d", N);
        goto done;
    }
    lra_hippo_legs_dense(N, A, Bl, Pl);
    // A + P P^T = -I/2 + S exactly (-(n+1) + (n+1/2)); the reference takes the
    // mean of the computed diagonal, -1/2 up to rounding: we use -1/2 itself
    const double re = -0.5;
    // S = A + P P^T + I/2 from the strictly lower triangle (what eigh reads), skew
    double *S = (double *)H;  // (N, N) reals in the first half of H's storage
    for (int n = 0; n < N; n++) {
        S[(size_t)n * N + n] = 0;
        for (int k = 0; k < n; k++) {
            double s = A[(size_t)n * N + k] + Pl[n] * Pl[k];
            S[(size_t)n * N + k] = s;
            S[(size_t)k * N + n] = -s;
        }
    }
    if (lra_skew_eig(N, S, w, (double *)V) < 0) {
        rc = lra_err_set(err, LRA_EINVAL, "HiPPO-LegS: the eigensolver did not converge for N = %d", N);
        goto done;
    }
    // the first N/2 eigenpairs (ascending) have negative imaginary part
    for (int j = 0; j < N / 2; j++) {
        double complex v0 = V[j], ph = cabs(v0) > 0 ? conj(v0) / cabs(v0) : 1;  // first component real >= 0
        double complex pj = 0, bj = 0;
        for (int k = 0; k < N; k++) {
            double complex vk = k ? V[(size_t)k * N + j] * ph : cabs(v0);
            pj += conj(vk) * Pl[k];
            bj += conj(vk) * Bl[k];
        }
        if (Lambda) { Lambda[2 * j] = re; Lambda[2 * j + 1] = w[j]; }
        if (P) { P[2 * j] = creal(pj); P[2 * j + 1] = cimag(pj); }
        if (B) { B[2 * j] = creal(bj); B[2 * j + 1] = cimag(bj); }
        for (int k = 0; Vout && k < N; k++) {
            double complex vk = k ? V[(size_t)k * N + j] * ph : cabs(v0);
            Vout[2 * ((size_t)k * (N / 2) + j)] = creal(vk);
            Vout[2 * ((size_t)k * (N / 2) + j) + 1] = cimag(vk);
        }
    }
done:
    free(A); free(Bl); free(Pl); free(w); free(H); free(V);
    return rc;
}

int lra_hippo_legs_nplr(int N, double *Lambda, double *P, double *B, lra_err *err) {
    return lra_hippo_legs_nplr_basis(N, Lambda, P, B, NULL, err);
}
