// cpu_fft.c: the FFTW plan cache of the CPU backend. Plans are created once
// per transform size under a lock (FFTW's planner is not thread-safe) and then
// executed from any thread with the new-array interface (which is).
#include "cpu.h"

// FFTW's planner and destroy_plan use process-wide state, so one lock for the
// whole process guards them (and the plan caches of all CPU backends): the
// only global of the CPU backend, forced by FFTW's design.
static pthread_mutex_t lra_fftw_lock = PTHREAD_MUTEX_INITIALIZER;

const lra_fft_plans *lra_cpu_fft_plans(lra_backend *be, int n) {
    lra_cpu_ctx *ctx = lra_cpu(be);
    const lra_fft_plans *found = NULL;
    pthread_mutex_lock(&lra_fftw_lock);
    for (int i = 0; i < ctx->n_fft_plans; i++)
        if (ctx->fft_plans[i].n == n) found = &ctx->fft_plans[i];
    if (!found && ctx->n_fft_plans < LRA_FFT_MAX_PLANS) {
        // plan on scratch arrays from fftw_malloc: executions must use arrays
        // with the same (SIMD) alignment, which fftw_malloc guarantees.
        lra_real *r = LRA_FFTW(malloc)(sizeof(lra_real) * (size_t)n);
        lra_fft_complex *c = LRA_FFTW(malloc)(sizeof(lra_fft_complex) * (size_t)(n / 2 + 1));
        if (r && c) {
            lra_fft_plans *p = &ctx->fft_plans[ctx->n_fft_plans];
            p->n = n;
            p->r2c = LRA_FFTW(plan_dft_r2c_1d)(n, r, c, FFTW_ESTIMATE);
            p->c2r = LRA_FFTW(plan_dft_c2r_1d)(n, c, r, FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
            if (p->r2c && p->c2r) {
                ctx->n_fft_plans++;
                found = p;
            } else {
                if (p->r2c) LRA_FFTW(destroy_plan)(p->r2c);
                if (p->c2r) LRA_FFTW(destroy_plan)(p->c2r);
            }
        }
        LRA_FFTW(free)(r);
        LRA_FFTW(free)(c);
    }
    pthread_mutex_unlock(&lra_fftw_lock);
    return found;
}

void lra_cpu_fft_free(lra_cpu_ctx *ctx) {
    pthread_mutex_lock(&lra_fftw_lock);
    for (int i = 0; i < ctx->n_fft_plans; i++) {
        LRA_FFTW(destroy_plan)(ctx->fft_plans[i].r2c);
        LRA_FFTW(destroy_plan)(ctx->fft_plans[i].c2r);
    }
    ctx->n_fft_plans = 0;
    pthread_mutex_unlock(&lra_fftw_lock);
}
