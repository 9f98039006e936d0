// cpu_cplx.h: complex numbers in double over the interleaved (re, im) real
// views the ops take, shared by the SSM discretisation ops (cpu_ssm.c,
// cpu_s5.c).
#ifndef LRA_CPU_CPLX_H
#define LRA_CPU_CPLX_H

#include "../core.h"

#include <complex.h>
#include <math.h>

typedef double complex cplx;

// element i of a complex array stored as (re, im) pairs: load, store, add
static inline cplx ld(const lra_real *p, int64_t i) { return (double)p[2 * i] + I * (double)p[2 * i + 1]; }
static inline void st(lra_real *p, int64_t i, cplx v) {
    p[2 * i] = (lra_real)creal(v);
    p[2 * i + 1] = (lra_real)cimag(v);
}
static inline void acc(lra_real *p, int64_t i, cplx v) {
    p[2 * i] += (lra_real)creal(v);
    p[2 * i + 1] += (lra_real)cimag(v);
}

// e^x - 1 without cancellation for small |x|: expm1(a) cos b - 2 sin^2(b/2) + i e^a sin b.
static inline cplx cexpm1(cplx x) {
    double a = creal(x), b = cimag(x), s = sin(b / 2);
    return expm1(a) * cos(b) - 2 * s * s + I * exp(a) * sin(b);
}

#endif // LRA_CPU_CPLX_H
