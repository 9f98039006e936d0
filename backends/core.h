// core.h: the few things every layer of lra shares: the scalar type, error
// context, always-on assertions and the counter-based random numbers.
//
// Dimension letters used across the code base (see README.md):
//   B batch, L sequence length, D model width, H channels of a mixer,
//   NH attention heads, Dh head width, N state size, V vocabulary, K classes,
//   R rows / C columns of a 2-D view.
#ifndef LRA_CORE_H
#define LRA_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

// lra_real: the floating-point type of every tensor. float in the normal
// build; a test build (-DLRA_F64) compiles the CPU backend in double so that
// finite-difference gradient checks reach 1e-7 agreement.
#ifdef LRA_F64
typedef double lra_real;
#define LRA_REAL_NAME "f64"
#else
typedef float lra_real;
#define LRA_REAL_NAME "f32"
#endif

// ----------------------------------------------------------------------------
// errors: library code returns a code and fills an lra_err; only main() exits.

enum {
    LRA_OK = 0,
    LRA_EINVAL,       // bad argument, shape or configuration
    LRA_EIO,          // file or data error
    LRA_ENOMEM,       // allocation failed
    LRA_EUNSUPPORTED, // backend lacks an op or was not built
    LRA_EDB,          // SQLite error
    LRA_EUSAGE,       // bad command line (exit status 2)
    LRA_EINTR,        // stopped on request (Ctrl-C; exit status 130)
    LRA_ECOUNT
};

typedef struct {
    int  code;       // LRA_OK when nothing went wrong
    char msg[512];   // human-readable, names the offending thing
} lra_err;

// Sets e (if not NULL) and returns code, so callers can `return lra_err_set(...)`.
int lra_err_set(lra_err *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
const char *lra_err_name(int code);

// Internal invariants only, never user input. Always on (not tied to NDEBUG).
void lra_assert_fail(const char *file, int line, const char *expr);
#define LRA_ASSERT(x) do { if (!(x)) lra_assert_fail(__FILE__, __LINE__, #x); } while (0)

// Smallest n >= min_n whose only prime factors are 2, 3, 5, 7: the FFT length
// of the long convolutions, the same on every backend (fast for FFTW and cuFFT).
int lra_fft_good_size(int min_n);

// ----------------------------------------------------------------------------
// counter-based random numbers: a value is a pure function of (seed, counter),
// so any element of a dropout mask or of a data set can be regenerated on the
// CPU or GPU, in any order, by any thread. splitmix64 finaliser (Steele et al.,
// "Fast splittable pseudorandom number generators", 2014).

#if defined(__CUDACC__)
#define LRA_HD __host__ __device__ __forceinline__
#else
#define LRA_HD static inline
#endif

LRA_HD uint64_t lra_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// 64 random bits for element `counter` of the stream `seed`.
LRA_HD uint64_t lra_rand_bits(uint64_t seed, uint64_t counter) {
    return lra_mix64(lra_mix64(seed) ^ counter);
}

// Uniform in [0, 1) with 24 bits, identical on every platform.
LRA_HD float lra_rand_uniform(uint64_t seed, uint64_t counter) {
    return (float)(lra_rand_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif
#endif // LRA_CORE_H
