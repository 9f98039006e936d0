// check.h: helpers shared by the op tests: the CPU backend under test, random
// inputs, guarded buffers that catch out-of-bounds writes, comparisons with a
// worst-element report, and central finite-difference gradient checks.
//
// Gradient checks reduce outputs with a fixed random projection,
// loss = sum_i R_i y_i (accumulated in double), never a plain sum: a plain sum
// hides wrong softmax and normalisation gradients. Built twice: in the f64
// build (-DLRA_F64) the backend computes in double and checks are tight
// (1e-6); in the f32 build they are loose but still catch wrong formulas.
#ifndef LRA_CHECK_H
#define LRA_CHECK_H

#include "../backends/backend.h"
#include "t.h"

#ifdef LRA_F64
#define T_FWD_TOL  1e-10   // forward vs double reference
#define T_GRAD_TOL 1e-6    // analytic vs finite difference
#define T_FD_STEP  1e-6
#else
#define T_FWD_TOL  2e-5
#define T_GRAD_TOL 3e-2
#define T_FD_STEP  1e-2
#endif

// The CPU backend, created on first use and shared by the cases of one program
// (threads: $LRA_TEST_THREADS, default all cores).
lra_backend *t_backend(void);

// Deterministic uniform values in [lo, hi).
void t_rand_fill(lra_real *x, int64_t n, uint64_t seed, double lo, double hi);
void t_rand_fill_d(double *x, int64_t n, uint64_t seed, double lo, double hi);

// Buffers of n values with guard zones before and after, filled with a bit
// pattern; t_guard_ok reports (as a test failure) any guard value changed.
// The contents start as NaN so that an output the op forgets to write shows.
lra_real *t_guarded(int64_t n);
void      t_guarded_free(lra_real *p);
int       t_guard_ok_at(const char *file, int line, const lra_real *p, const char *what);
#define t_guard_ok(p, what) t_guard_ok_at(__FILE__, __LINE__, p, what)
// Same for int32/uint8 inputs is not needed: inputs are only read.

// Compares got (n) with the double reference ref: fails when
// max_i |got - ref| / (|ref|_inf + 1e-30) > tol, naming the worst index.
int t_close_at(const char *file, int line, const char *what, const lra_real *got,
               const double *ref, int64_t n, double tol);
#define t_close(what, got, ref, n, tol) t_close_at(__FILE__, __LINE__, what, got, ref, n, tol)
// Same with a lra_real reference.
int t_close_r_at(const char *file, int line, const char *what, const lra_real *got,
                 const lra_real *ref, int64_t n, double tol);
#define t_close_r(what, got, ref, n, tol) t_close_r_at(__FILE__, __LINE__, what, got, ref, n, tol)

// sum_i y_i R_i in double
double t_project(const lra_real *y, const lra_real *R, int64_t n);

// Gradient check of one input: loss(ctx) recomputes the forward pass and
// returns the projected loss; analytic holds dloss/dx from the backward op.
// Checks x[0], x[n-1] and up to 64 further random coordinates with a central
// difference of step T_FD_STEP * max(1, |x_i|); the error metric is
// |a - fd| / max(|a| + |fd|, 1e-3 * max|analytic|). Fails naming the worst.
typedef double (*t_loss_fn)(void *ctx);
int t_gradcheck_at(const char *file, int line, const char *what, t_loss_fn loss, void *ctx,
                   lra_real *x, int64_t n, const lra_real *analytic, double tol);
#define t_gradcheck(what, loss, ctx, x, n, analytic, tol) \
    t_gradcheck_at(__FILE__, __LINE__, what, loss, ctx, x, n, analytic, tol)
// The same with another relative step than T_FD_STEP (a larger one for
// layers whose loss carries large terms that do not depend on x).
int t_gradcheck_step_at(const char *file, int line, const char *what, t_loss_fn loss, void *ctx,
                        lra_real *x, int64_t n, const lra_real *analytic, double tol, double step);
// The same with an absolute noise level of the difference quotients (float
// losses): the error's denominator is at least noise / tol, so that
// |a - fd| <= noise always passes.
int t_gradcheck_noise_at(const char *file, int line, const char *what, t_loss_fn loss, void *ctx,
                         lra_real *x, int64_t n, const lra_real *analytic, double tol, double step, double noise);

// The OpenMP thread count of the process (1 without OpenMP), and setting it,
// for thread-invariance checks.
int  t_threads_get(void);
void t_threads_set(int n);

#endif // LRA_CHECK_H
