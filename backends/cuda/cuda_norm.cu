// cuda_norm.cu: LayerNorm, BatchNorm and ScaleNorm, forward and backward, with
// the formulas of backends/cpu/cpu_norm.c. Statistics and reductions are in
// double; row statistics take one block per row, column sums (parameter
// gradients, batch statistics) go through fixed-order two-pass partial sums
// (no atomics), so results are the same from run to run.
#include "cuda.cuh"

#define CU_NORM_BLOCK 256
#define CU_CS_ROWS 8     // row lanes of the column-sum blocks
#define CU_CS_MAX_G 512  // row chunks of the column sums

// ---- two column sums at once ---------------------------------------------------------
// s1[c] = sum_r f1(r, c), s2[c] = sum_r f2(r, c) in double, with (f1, f2) given
// by the functor F: void operator()(int64_t r, int c, double &v1, double &v2).

template <class F>
__global__ static void cu_cs2_partial(double *partial, F f, int64_t R, int C, int64_t rows_per_chunk) {
    __shared__ double a1[CU_CS_ROWS][33], a2[CU_CS_ROWS][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    int64_t r0 = (int64_t)blockIdx.y * rows_per_chunk, r1 = min(r0 + rows_per_chunk, R);
    double s1 = 0, s2 = 0;
    if (c < C) {
        for (int64_t r = r0 + threadIdx.y; r < r1; r += CU_CS_ROWS) {
            double v1, v2;
            f(r, c, v1, v2);
            s1 += v1;
            s2 += v2;
        }
    }
    a1[threadIdx.y][threadIdx.x] = s1;
    a2[threadIdx.y][threadIdx.x] = s2;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int j = 1; j < CU_CS_ROWS; j++) {
            s1 += a1[j][threadIdx.x];
            s2 += a2[j][threadIdx.x];
        }
        partial[((int64_t)blockIdx.y * 2) * C + c] = s1;
        partial[((int64_t)blockIdx.y * 2 + 1) * C + c] = s2;
    }
}

// sums (2, C) = the partials added over chunks in order
__global__ static void cu_cs2_finish(double *sums, const double *partial, int G, int C) {
    CU_FOR(i, 2 * (int64_t)C) {
        int k = (int)(i / C), c = (int)(i % C);
        double s = 0;
        for (int g = 0; g < G; g++) s += partial[((int64_t)g * 2 + k) * C + c];
        sums[i] = s;
    }
}

// Chunks for R rows of C columns, and the scratch doubles the partials need.
static int64_t cu_cs2_chunks(int64_t R, int C, int64_t *rows_per_chunk) {
    int tiles = (C + 31) / 32;
    int64_t G = (2048 + tiles - 1) / tiles;
    if (G > CU_CS_MAX_G) G = CU_CS_MAX_G;
    int64_t gmax = (R + CU_CS_ROWS - 1) / CU_CS_ROWS;
    if (G > gmax) G = gmax;
    if (G < 1) G = 1;
    *rows_per_chunk = (R + G - 1) / G;
    return (R + *rows_per_chunk - 1) / *rows_per_chunk;
}

// sums (2, C) on the device, partial: scratch of 2 G C doubles
template <class F>
static void cu_cs2(double *sums, double *partial, F f, int64_t R, int C) {
    int64_t rpc, G = cu_cs2_chunks(R, C, &rpc);
    dim3 grid((unsigned)((C + 31) / 32), (unsigned)G), block(32, CU_CS_ROWS);
    CU_LAUNCH(cu_cs2_partial<F>, grid, block, partial, f, R, C, rpc);
    CU_LAUNCH(cu_cs2_finish, cu_grid(2 * (int64_t)C, CU_BLOCK), CU_BLOCK, sums, partial, (int)G, C);
}

static size_t cu_cs2_scratch(int64_t R, int C) {
    int64_t rpc, G = cu_cs2_chunks(R, C, &rpc);
    return LRA_CUDA_ROUND(sizeof(double) * 2 * (size_t)G * (size_t)C);
}

// ---- LayerNorm ---------------------------------------------------------------------------

__global__ static void cu_ln_fwd_kernel(lra_real *out, lra_real *mean, lra_real *rstd, const lra_real *inp,
                                        const lra_real *w, const lra_real *b, int64_t R, int C, double eps) {
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const lra_real *x = inp + r * C;
        double m = 0, v = 0;
        for (int c = threadIdx.x; c < C; c += blockDim.x) m += x[c];
        m = cu_block_sum(m) / C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) v += ((double)x[c] - m) * ((double)x[c] - m);
        v = cu_block_sum(v) / C;
        double s = 1.0 / sqrt(v + eps);
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            double n = ((double)x[c] - m) * s;
            out[r * C + c] = (lra_real)(n * (w ? (double)w[c] : 1.0) + (b ? (double)b[c] : 0.0));
        }
        if (threadIdx.x == 0) {
            mean[r] = (lra_real)m;
            rstd[r] = (lra_real)s;
        }
    }
}

void cuda_layernorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd, const lra_real *inp,
                        const lra_real *w, const lra_real *b, int64_t R, int C, lra_real eps) {
    (void)be;
    if (R <= 0 || C <= 0) return;
    CU_LAUNCH(cu_ln_fwd_kernel, cu_grid(R, 1), CU_NORM_BLOCK, out, mean, rstd, inp, w, b, R, C, (double)eps);
}

// dinp += rstd (g - mean_c(g) - xhat mean_c(g xhat)), g = dout w
__global__ static void cu_ln_bwd_kernel(lra_real *dinp, const lra_real *dout, const lra_real *inp, const lra_real *w,
                                        const lra_real *mean, const lra_real *rstd, int64_t R, int C) {
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const lra_real *x = inp + r * C, *dy = dout + r * C;
        double m = mean[r], s = rstd[r], gm = 0, gxm = 0;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            double g = (double)dy[c] * (w ? (double)w[c] : 1.0);
            gm += g;
            gxm += g * ((double)x[c] - m) * s;
        }
        gm = cu_block_sum(gm) / C;
        gxm = cu_block_sum(gxm) / C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            double g = (double)dy[c] * (w ? (double)w[c] : 1.0), xh = ((double)x[c] - m) * s;
            dinp[r * C + c] += (lra_real)(s * (g - gm - xh * gxm));
        }
    }
}

// (dout xhat, dout) of LayerNorm's parameter gradients
struct cu_ln_param_f {
    const lra_real *dout, *inp, *mean, *rstd;
    int C;
    __device__ void operator()(int64_t r, int c, double &v1, double &v2) const {
        double dy = dout[r * C + c];
        v1 = dy * ((double)inp[r * C + c] - mean[r]) * rstd[r];
        v2 = dy;
    }
};

// out[c] += (float)sums[k C + c] for the wanted outputs
__global__ static void cu_add_sums_kernel(lra_real *o1, lra_real *o2, const double *sums, int C) {
    CU_FOR(c, (int64_t)C) {
        if (o1) o1[c] += (lra_real)sums[c];
        if (o2) o2[c] += (lra_real)sums[C + c];
    }
}

void cuda_layernorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db, const lra_real *dout,
                        const lra_real *inp, const lra_real *w, const lra_real *mean, const lra_real *rstd,
                        int64_t R, int C) {
    if (R <= 0 || C <= 0) return;
    if (dinp) CU_LAUNCH(cu_ln_bwd_kernel, cu_grid(R, 1), CU_NORM_BLOCK, dinp, dout, inp, w, mean, rstd, R, C);
    if (!dw && !db) return;
    size_t ps = cu_cs2_scratch(R, C), ss = LRA_CUDA_ROUND(sizeof(double) * 2 * (size_t)C);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, ps + ss), 0 };
    double *partial = (double *)lra_cuda_take(&cv, ps), *sums = (double *)lra_cuda_take(&cv, ss);
    cu_cs2(sums, partial, cu_ln_param_f{ dout, inp, mean, rstd, C }, R, C);
    CU_LAUNCH(cu_add_sums_kernel, cu_grid(C, CU_BLOCK), CU_BLOCK, dw, db, sums, C);
}

// ---- BatchNorm ---------------------------------------------------------------------------

// (x, 0) and ((x - m[c])^2, 0): the two passes of the batch statistics
struct cu_bn_sum_f {
    const lra_real *x;
    const double *m;  // NULL: first pass
    int C;
    __device__ void operator()(int64_t r, int c, double &v1, double &v2) const {
        double v = x[r * C + c];
        if (m) v = (v - m[c]) * (v - m[c]);
        v1 = v;
        v2 = 0;
    }
};

// the per-channel statistics: st (2, C) = (mean, rstd) in double
__global__ static void cu_bn_stats_kernel(double *st, lra_real *mean, lra_real *rstd, lra_real *running_mean,
                                          lra_real *running_var, const double *s_mean, const double *s_var, int64_t R,
                                          int C, double eps, double mom, double unb, int training) {
    CU_FOR(c, (int64_t)C) {
        double m, s;
        if (training) {
            m = s_mean[c] / (double)R;
            double v = s_var[c] / (double)R;
            s = 1.0 / sqrt(v + eps);
            if (running_mean) running_mean[c] = (lra_real)((1 - mom) * running_mean[c] + mom * m);
            if (running_var) running_var[c] = (lra_real)((1 - mom) * running_var[c] + mom * v * unb);
        } else {
            m = running_mean[c];
            s = 1.0 / sqrt((double)running_var[c] + eps);
        }
        st[c] = m;
        st[C + c] = s;
        mean[c] = (lra_real)m;
        rstd[c] = (lra_real)s;
    }
}

__global__ static void cu_bn_apply_kernel(lra_real *out, const lra_real *inp, const double *st, const lra_real *w,
                                          const lra_real *b, int64_t R, int C) {
    CU_FOR(i, R * C) {
        int c = (int)(i % C);
        out[i] = (lra_real)(((double)inp[i] - st[c]) * st[C + c] * (w ? (double)w[c] : 1.0) + (b ? (double)b[c] : 0.0));
    }
}

// keeps only the first sum: sums (2, C) -> the mean in the first row
__global__ static void cu_div_kernel(double *m, const double *sums, int C, double R) {
    CU_FOR(c, (int64_t)C) m[c] = sums[c] / R;
}

void cuda_batchnorm_fwd(lra_backend *be, lra_real *out, lra_real *mean, lra_real *rstd, lra_real *running_mean,
                        lra_real *running_var, const lra_real *inp, const lra_real *w, const lra_real *b, int64_t R,
                        int C, lra_real eps, lra_real momentum, int unbiased_running, int training) {
    if (C <= 0) return;
    size_t ps = cu_cs2_scratch(R > 0 ? R : 1, C), cs = LRA_CUDA_ROUND(sizeof(double) * 2 * (size_t)C);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, ps + 4 * cs), 0 };
    double *partial = (double *)lra_cuda_take(&cv, ps), *s1 = (double *)lra_cuda_take(&cv, cs);
    double *m = (double *)lra_cuda_take(&cv, cs), *s2 = (double *)lra_cuda_take(&cv, cs);
    double *st = (double *)lra_cuda_take(&cv, cs);
    double unb = (unbiased_running && R > 1) ? (double)R / (double)(R - 1) : 1.0;
    if (training) {
        cu_cs2(s1, partial, cu_bn_sum_f{ inp, NULL, C }, R, C);
        CU_LAUNCH(cu_div_kernel, cu_grid(C, CU_BLOCK), CU_BLOCK, m, s1, C, (double)R);
        cu_cs2(s2, partial, cu_bn_sum_f{ inp, m, C }, R, C);
    }
    CU_LAUNCH(cu_bn_stats_kernel, cu_grid(C, CU_BLOCK), CU_BLOCK, st, mean, rstd, running_mean, running_var, s1, s2,
              R, C, (double)eps, (double)momentum, unb, training);
    if (R > 0) CU_LAUNCH(cu_bn_apply_kernel, cu_grid(R * C, CU_BLOCK), CU_BLOCK, out, inp, st, w, b, R, C);
}

// (dout, dout (x - mean[c]))
struct cu_bn_grad_f {
    const lra_real *dout, *inp, *mean;
    int C;
    __device__ void operator()(int64_t r, int c, double &v1, double &v2) const {
        double dy = dout[r * C + c];
        v1 = dy;
        v2 = dy * ((double)inp[r * C + c] - (double)mean[c]);
    }
};

// dw += sdyx rstd, db += sdy; co (3, C) = (w rstd, mean_r(dout), mean_r(dout xhat) rstd)
__global__ static void cu_bn_coef_kernel(double *co, lra_real *dw, lra_real *db, const double *sums,
                                         const lra_real *w, const lra_real *rstd, int64_t R, int C) {
    CU_FOR(c, (int64_t)C) {
        double s = rstd[c], sdy = sums[c], sdyx = sums[C + c];
        if (dw) dw[c] += (lra_real)(sdyx * s);
        if (db) db[c] += (lra_real)sdy;
        co[c] = (w ? (double)w[c] : 1.0) * s;
        co[C + c] = sdy / (double)R;
        co[2 * C + c] = sdyx * s * s / (double)R;
    }
}

__global__ static void cu_bn_dinp_kernel(lra_real *dinp, const lra_real *dout, const lra_real *inp,
                                         const lra_real *mean, const double *co, int64_t R, int C, int training) {
    CU_FOR(i, R * C) {
        int c = (int)(i % C);
        double dy = dout[i];
        if (training) dinp[i] += (lra_real)(co[c] * (dy - co[C + c] - ((double)inp[i] - (double)mean[c]) * co[2 * C + c]));
        else dinp[i] += (lra_real)(co[c] * dy);
    }
}

void cuda_batchnorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dw, lra_real *db, const lra_real *dout,
                        const lra_real *inp, const lra_real *w, const lra_real *mean, const lra_real *rstd,
                        int64_t R, int C, int training) {
    if ((!dinp && !dw && !db) || C <= 0 || R <= 0) return;
    size_t ps = cu_cs2_scratch(R, C), cs = LRA_CUDA_ROUND(sizeof(double) * 3 * (size_t)C);
    lra_cuda_carve cv = { (char *)lra_cuda_scratch(be, ps + 2 * cs), 0 };
    double *partial = (double *)lra_cuda_take(&cv, ps), *sums = (double *)lra_cuda_take(&cv, cs);
    double *co = (double *)lra_cuda_take(&cv, cs);
    cu_cs2(sums, partial, cu_bn_grad_f{ dout, inp, mean, C }, R, C);
    CU_LAUNCH(cu_bn_coef_kernel, cu_grid(C, CU_BLOCK), CU_BLOCK, co, dw, db, sums, w, rstd, R, C);
    if (dinp) CU_LAUNCH(cu_bn_dinp_kernel, cu_grid(R * C, CU_BLOCK), CU_BLOCK, dinp, dout, inp, mean, co, R, C, training);
}

// ---- ScaleNorm -----------------------------------------------------------------------------

__global__ static void cu_sn_fwd_kernel(lra_real *out, lra_real *rstd, const lra_real *inp, const lra_real *g,
                                        int64_t R, int C, double eps) {
    double gg = g[0];
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const lra_real *x = inp + r * C;
        double ss = 0;
        for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)x[c] * x[c];
        ss = cu_block_sum(ss);
        double s = 1.0 / sqrt(ss / C + eps);
        for (int c = threadIdx.x; c < C; c += blockDim.x) out[r * C + c] = (lra_real)(gg * x[c] * s);
        if (threadIdx.x == 0) rstd[r] = (lra_real)s;
    }
}

void cuda_scalenorm_fwd(lra_backend *be, lra_real *out, lra_real *rstd, const lra_real *inp, const lra_real *g,
                        int64_t R, int C, lra_real eps) {
    (void)be;
    if (R <= 0 || C <= 0) return;
    CU_LAUNCH(cu_sn_fwd_kernel, cu_grid(R, 1), CU_NORM_BLOCK, out, rstd, inp, g, R, C, (double)eps);
}

// dinp_j += g rstd (dout_j - x_j rstd^2 mean_c(dout x)); rowg[r] = rstd sum_c dout x
__global__ static void cu_sn_bwd_kernel(lra_real *dinp, double *rowg, const lra_real *dout, const lra_real *inp,
                                        const lra_real *g, const lra_real *rstd, int64_t R, int C) {
    double gg = g[0];
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const lra_real *x = inp + r * C, *dy = dout + r * C;
        double s = rstd[r], dyx = 0;
        for (int c = threadIdx.x; c < C; c += blockDim.x) dyx += (double)dy[c] * x[c];
        dyx = cu_block_sum(dyx);
        if (threadIdx.x == 0) rowg[r] = dyx * s;
        if (dinp) {
            double k = s * s * dyx / C;
            for (int c = threadIdx.x; c < C; c += blockDim.x)
                dinp[r * C + c] += (lra_real)(gg * s * ((double)dy[c] - x[c] * k));
        }
    }
}

// dg[0] += sum_r rowg[r]: one block, fixed order
__global__ static void cu_sn_dg_kernel(lra_real *dg, const double *rowg, int64_t R) {
    double s = 0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += rowg[r];
    s = cu_block_sum(s);
    if (threadIdx.x == 0) dg[0] += (lra_real)s;
}

void cuda_scalenorm_bwd(lra_backend *be, lra_real *dinp, lra_real *dg, const lra_real *dout, const lra_real *inp,
                        const lra_real *g, const lra_real *rstd, int64_t R, int C) {
    if ((!dinp && !dg) || R <= 0 || C <= 0) return;
    double *rowg = (double *)lra_cuda_scratch(be, sizeof(double) * (size_t)R);
    CU_LAUNCH(cu_sn_bwd_kernel, cu_grid(R, 1), CU_NORM_BLOCK, dinp, rowg, dout, inp, g, rstd, R, C);
    if (dg) CU_LAUNCH(cu_sn_dg_kernel, 1, 1024, dg, rowg, R);
}
