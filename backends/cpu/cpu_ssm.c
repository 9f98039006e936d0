// cpu_ssm.c: S4D discretisation (parameters -> Vandermonde inputs, and its
// adjoint) and the step of diagonal SSMs (models.md 3, 0.4).
//
// Gradient conventions (models.md 0.1): grad z = dl/dRe z + i dl/dIm z;
// holomorphic w = f(v): grad v += conj(f'(v)) grad w (R1); real p feeding a
// complex w: dl/dp += Re(conj(grad w) dw/dp) (R3). With x = dt A:
//   ZOH:      E = B (e^x - 1)/A:  grad B += conj((e^x - 1)/A) gE,
//             grad x += conj(B e^x / A) gE,  grad A += -conj(B (e^x - 1)/A^2) gE
//   bilinear: E = B dt/(1 - x/2): grad B += conj(dt/(1 - x/2)) gE,
//             grad x += conj(B dt / (2 (1 - x/2)^2)) gE,  dl/ddt += Re(conj(gE) B/(1 - x/2));
//             w = log((1 + x/2)/(1 - x/2)): dw/dx = 1/(1 - x^2/4)
//   x = dt A: grad A += dt grad x, dl/ddt += Re(conj(grad x) A)
//   A = -exp(A_real) - i A_imag: dl/dA_real = -exp(A_real) Re grad A, dl/dA_imag = -Im grad A
//   dt = softplus(p): dl/dp = sigmoid(p) dl/ddt;  dt = exp(p): dl/dp = dt dl/ddt.
#include "cpu.h"
#include "cpu_cplx.h"

static double dt_of(double p, int dt_exp) { return dt_exp ? exp(p) : (p > 30 ? p : log1p(exp(p))); }
static double ddt_dp(double p, int dt_exp) { return dt_exp ? exp(p) : 1 / (1 + exp(-p)); }

void cpu_s4d_discretize_fwd(lra_backend *be, lra_real *w, lra_real *coef, const lra_real *inv_dt,
                            const lra_real *A_real, const lra_real *A_imag, const lra_real *B, const lra_real *C,
                            int H, int S, int Nc, int CH, int bilinear, int dt_exp) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < H; h++) {
        int s = h % S;
        double dt = dt_of(inv_dt[h], dt_exp);
        for (int n = 0; n < Nc; n++) {
            int64_t sn = (int64_t)s * Nc + n;
            cplx A = -exp((double)A_real[sn]) - I * (double)A_imag[sn], x = dt * A, Bn = ld(B, sn), E, wv;
            if (bilinear) {
                E = Bn * dt / (1 - x / 2);
                wv = clog((1 + x / 2) / (1 - x / 2));
            } else {
                E = Bn * cexpm1(x) / A;
                wv = x;
            }
            for (int c = 0; c < CH; c++) {
                int64_t o = ((int64_t)h * CH + c) * Nc + n;
                st(w, o, wv);
                st(coef, o, 2 * ld(C, ((int64_t)c * H + h) * Nc + n) * E);
            }
        }
    }
}

// Channel h's contributions; dA, dB of row s = h % S are accumulated by the
// thread that owns s (channels h = s, s + S, ...), so no two threads write one row.
static void discretize_bwd_channel(int h, lra_real *dinv_dt, cplx *gA, cplx *gB, lra_real *dC, const lra_real *dw,
                                   const lra_real *dcoef, const lra_real *inv_dt, const lra_real *A_real,
                                   const lra_real *A_imag, const lra_real *B, const lra_real *C, int H, int S, int Nc,
                                   int CH, int bilinear, int dt_exp) {
    int s = h % S;
    double p = inv_dt[h], dt = dt_of(p, dt_exp), gdt = 0;
    for (int n = 0; n < Nc; n++) {
        int64_t sn = (int64_t)s * Nc + n;
        cplx A = -exp((double)A_real[sn]) - I * (double)A_imag[sn], x = dt * A, Bn = ld(B, sn);
        cplx em1 = cexpm1(x), F = bilinear ? dt / (1 - x / 2) : em1 / A;  // E = B F
        cplx gE = 0, gw = 0;
        for (int c = 0; c < CH; c++) {
            int64_t o = ((int64_t)h * CH + c) * Nc + n, co = ((int64_t)c * H + h) * Nc + n;
            cplx g = dcoef ? ld(dcoef, o) : 0;
            if (dC) acc(dC, co, conj(2 * Bn * F) * g);
            gE += conj(2 * ld(C, co)) * g;
            if (dw) gw += ld(dw, o);
        }
        gB[n] += conj(F) * gE;
        cplx gx, gAn;
        if (bilinear) {
            cplx d = 1 - x / 2;
            gx = conj(Bn * dt / (2 * d * d)) * gE + conj(1 / (1 - x * x / 4)) * gw;
            gdt += creal(conj(gE) * Bn / d);
            gAn = 0;
        } else {
            gx = conj(Bn * (em1 + 1) / A) * gE + gw;
            gAn = -conj(Bn * em1 / (A * A)) * gE;
        }
        gAn += dt * gx;
        gdt += creal(conj(gx) * A);
        gA[n] += gAn;
    }
    if (dinv_dt) dinv_dt[h] += (lra_real)(ddt_dp(p, dt_exp) * gdt);
}

void cpu_s4d_discretize_bwd(lra_backend *be, lra_real *dinv_dt, lra_real *dA_real, lra_real *dA_imag,
                            lra_real *dB, lra_real *dC, const lra_real *dw, const lra_real *dcoef,
                            const lra_real *inv_dt, const lra_real *A_real, const lra_real *A_imag,
                            const lra_real *B, const lra_real *C, int H, int S, int Nc, int CH, int bilinear,
                            int dt_exp) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < S; s++) {
        cplx *gA = calloc((size_t)Nc * 2, sizeof *gA), *gB = gA + Nc;
        LRA_ASSERT(gA);
        for (int h = s; h < H; h += S)
            discretize_bwd_channel(h, dinv_dt, gA, gB, dC, dw, dcoef, inv_dt, A_real, A_imag, B, C, H, S, Nc, CH,
                                   bilinear, dt_exp);
        for (int n = 0; n < Nc; n++) {
            int64_t sn = (int64_t)s * Nc + n;
            if (dA_real) dA_real[sn] += (lra_real)(-exp((double)A_real[sn]) * creal(gA[n]));
            if (dA_imag) dA_imag[sn] += (lra_real)(-cimag(gA[n]));
            if (dB) acc(dB, sn, gB[n]);
        }
        free(gA);
    }
}

void cpu_diag_ssm_step(lra_backend *be, lra_real *y, lra_real *state, const lra_real *u, const lra_real *z,
                       const lra_real *coef, int B, int R, int N) {
    (void)be;
    int64_t rows = (int64_t)B * R;
#pragma omp parallel for schedule(static)
    for (int64_t br = 0; br < rows; br++) {
        int64_t r = br % R;
        double uu = u[br], sum = 0;
        for (int n = 0; n < N; n++) {
            int64_t o = br * N + n, rn = r * N + n;
            cplx sv = ld(z, rn) * ld(state, o) + uu;
            st(state, o, sv);
            sum += creal(ld(coef, rn) * sv);
        }
        y[br] = (lra_real)sum;
    }
}
