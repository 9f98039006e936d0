// cpu_loss.c: token embedding, masked mean pooling and softmax cross-entropy.
#include "cpu.h"

#include <math.h>
#include <string.h>

void cpu_embedding_fwd(lra_backend *be, lra_real *out, const int32_t *tokens, const lra_real *table, int64_t n,
                       int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) memcpy(out + i * C, table + (int64_t)tokens[i] * C, sizeof(lra_real) * (size_t)C);
}

// dtable[tokens[i]] += dout[i]. Rows of the table are shared between positions,
// so threads split the columns: every (token, column) belongs to one thread
// and the sum runs in position order (deterministic).
void cpu_embedding_bwd(lra_backend *be, lra_real *dtable, const lra_real *dout, const int32_t *tokens, int64_t n,
                       int C, int V) {
    (void)be;
    (void)V;
    if (!dtable) return;
#pragma omp parallel
    {
        int T = lra_omp_threads(), t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        int c0 = (int)((int64_t)C * t / T), c1 = (int)((int64_t)C * (t + 1) / T);
        for (int64_t i = 0; i < n; i++) {
            lra_real *dst = dtable + (int64_t)tokens[i] * C;
            const lra_real *src = dout + i * C;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

// number of real positions of row b
static int cpu_count_real(const uint8_t *mask, int b, int L) {
    if (!mask) return L;
    int n = 0;
    for (int t = 0; t < L; t++) n += mask[(int64_t)b * L + t] != 0;
    return n;
}

void cpu_meanpool_fwd(lra_backend *be, lra_real *out, const lra_real *inp, const uint8_t *mask, int B, int L, int C) {
    (void)be;
#pragma omp parallel
    {
        double *acc = malloc(sizeof(double) * (size_t)C);
        LRA_ASSERT(acc != NULL);
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            int n = cpu_count_real(mask, b, L);
            memset(acc, 0, sizeof(double) * (size_t)C);
            for (int t = 0; t < L; t++) {
                if (mask && !mask[(int64_t)b * L + t]) continue;
                const lra_real *x = inp + ((int64_t)b * L + t) * C;
                for (int c = 0; c < C; c++) acc[c] += x[c];
            }
            for (int c = 0; c < C; c++) out[(int64_t)b * C + c] = n ? (lra_real)(acc[c] / n) : 0;
        }
        free(acc);
    }
}

void cpu_meanpool_bwd(lra_backend *be, lra_real *dinp, const lra_real *dout, const uint8_t *mask, int B, int L,
                      int C) {
    (void)be;
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int n = cpu_count_real(mask, b, L);
        if (!n) continue;
        lra_real inv = (lra_real)(1.0 / n);
        for (int t = 0; t < L; t++) {
            if (mask && !mask[(int64_t)b * L + t]) continue;
            lra_real *dx = dinp + ((int64_t)b * L + t) * C;
            const lra_real *g = dout + (int64_t)b * C;
            for (int c = 0; c < C; c++) dx[c] += g[c] * inv;
        }
    }
}

// loss_b = logsumexp(z_b) - z_b[y_b], probs = softmax(z) (max subtracted).
double cpu_xent_fwd(lra_backend *be, lra_real *probs, lra_real *loss_per_example, const lra_real *logits,
                    const int32_t *labels, int B, int K) {
    (void)be;
    double total = 0;
    for (int b = 0; b < B; b++) {
        const lra_real *z = logits + (int64_t)b * K;
        lra_real *p = probs + (int64_t)b * K;
        double mx = z[0], s = 0;
        for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
        for (int k = 0; k < K; k++) p[k] = (lra_real)(exp((double)z[k] - mx) / s);
        double l = log(s) + mx - (double)z[labels[b]];
        loss_per_example[b] = (lra_real)l;
        total += l;
    }
    return B ? total / B : 0;
}

void cpu_xent_bwd(lra_backend *be, lra_real *dlogits, const lra_real *probs, const int32_t *labels, int B, int K,
                  lra_real dloss) {
    (void)be;
    if (!dlogits) return;
    lra_real s = dloss / (lra_real)B;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            dlogits[(int64_t)b * K + k] += s * (probs[(int64_t)b * K + k] - (lra_real)(k == labels[b]));
}
