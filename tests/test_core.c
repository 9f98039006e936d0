// test_core.c: error context, random numbers, the backend registry and the
// CPU backend's memory accounting.
#include "check.h"

#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void test_err(void) {
    lra_err e = {0};
    int rc = lra_err_set(&e, LRA_EINVAL, "model.mixer: unknown mixer '%s'", "S5");
    T_CHECK(rc == LRA_EINVAL && e.code == LRA_EINVAL, "code returned and stored");
    T_CHECK(strcmp(e.msg, "model.mixer: unknown mixer 'S5'") == 0, "message: %s", e.msg);
    T_CHECK(strcmp(lra_err_name(LRA_ENOMEM), "out of memory") == 0, "name");
}

static void test_rng(void) {
    // a pure function of (seed, counter): same value whatever the order
    T_CHECK(lra_rand_bits(1, 5) == lra_rand_bits(1, 5), "repeatable");
    T_CHECK(lra_rand_bits(1, 5) != lra_rand_bits(2, 5), "seed matters");
    T_CHECK(lra_rand_bits(1, 5) != lra_rand_bits(1, 6), "counter matters");
    double s = 0, s2 = 0;
    int n = 200000, below = 0;
    for (int i = 0; i < n; i++) {
        float u = lra_rand_uniform(42, (uint64_t)i);
        T_CHECK(u >= 0.0f && u < 1.0f, "range");
        s += u; s2 += (double)u * u;
        below += u < 0.1f;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    T_CHECK(fabs(mean - 0.5) < 0.005, "mean %g", mean);
    T_CHECK(fabs(var - 1.0 / 12) < 0.002, "variance %g", var);
    T_CHECK(fabs(below / (double)n - 0.1) < 0.003, "P(u < 0.1) = %g", below / (double)n);
}

static void test_registry(void) {
    lra_err e = {0};
    T_CHECK(lra_backend_init("tpu", 1, &e) == NULL, "unknown backend refused");
    T_CHECK(strstr(e.msg, "unknown backend 'tpu' (known: cpu, cuda, cuda-tf32)") != NULL, "message: %s", e.msg);
    T_CHECK(lra_backend_available("cpu"), "cpu is always built");
    lra_backend *be = t_backend();
    T_CHECK(strcmp(be->name, "cpu") == 0 && be->api_version == LRA_BACKEND_API_VERSION, "table");
    const char *missing[64];
    int n = lra_backend_missing(be, missing, 64);
    for (int i = 0; i < n && i < 64; i++) T_CHECK(0, "cpu backend lacks op %s", missing[i]);
    T_CHECK(lra_backend_op_count() > 50, "op names listed");
    // threads <= 0 means all cores again, after a backend with 1 thread
    lra_backend *one = lra_backend_init("cpu", 1, &e), *all = lra_backend_init("cpu", 0, &e);
    T_CHECK(one && one->n_threads == 1, "1 thread");
    T_CHECK(all && all->n_threads >= 1 && strstr(all->device, "thread") != NULL, "all cores: %d", all ? all->n_threads : -1);
#ifdef _OPENMP
    T_CHECK(all && all->n_threads == omp_get_num_procs(), "all cores = %d", all ? all->n_threads : -1);
#endif
    lra_backend_free(one);
    lra_backend_free(all);
    T_CHECK(lra_backend_has_op(be, "scan_bwd") && !lra_backend_has_op(be, "no_such_op"), "has_op");
    if (!lra_backend_available("cuda")) {
        T_CHECK(lra_backend_init("cuda", 0, &e) == NULL && e.code == LRA_EUNSUPPORTED, "cuda refused");
        T_CHECK(strstr(e.msg, "built without CUDA") != NULL, "says why: %s", e.msg);
        T_CHECK(lra_backend_init("cuda-tf32", 0, &e) == NULL && strstr(e.msg, "built without CUDA") != NULL,
                "cuda-tf32 refused: %s", e.msg);
    }
}

static void test_memory(void) {
    lra_backend *be = t_backend();
    lra_mem_stats s0, s1, s2;
    be->mem_stats(be, &s0);
    be->mem_reset_peak(be);
    lra_err e = {0};
    void *a = be->alloc(be, 1000, &e);
    void *b = be->alloc(be, 3000, &e);
    T_CHECK(a && b && ((uintptr_t)a % 64) == 0 && ((uintptr_t)b % 64) == 0, "aligned allocations");
    be->mem_stats(be, &s1);
    T_CHECK(s1.bytes_in_use - s0.bytes_in_use == 4000, "in use %lld", (long long)(s1.bytes_in_use - s0.bytes_in_use));
    be->free(be, b);
    be->free(be, a);
    be->free(be, NULL);
    be->mem_stats(be, &s2);
    T_CHECK(s2.bytes_in_use == s0.bytes_in_use, "all returned");
    T_CHECK(s2.bytes_peak - s0.bytes_in_use == 4000, "peak %lld", (long long)(s2.bytes_peak - s0.bytes_in_use));
    T_CHECK(s2.host_rss_peak > 0, "peak RSS reported");
    // upload, copy, download, zero round trip
    lra_real host[7] = {1, 2, 3, 4, 5, 6, 7}, back[7];
    lra_real *d1 = be->alloc(be, sizeof host, &e), *d2 = be->alloc(be, sizeof host, &e);
    be->upload(be, d1, host, sizeof host);
    be->copy(be, d2, d1, sizeof host);
    be->zero(be, d1, sizeof host);
    be->download(be, back, d2, sizeof host);
    T_CHECK(memcmp(back, host, sizeof host) == 0, "round trip");
    be->download(be, back, d1, sizeof host);
    T_CHECK(back[0] == 0 && back[6] == 0, "zeroed");
    be->free(be, d1);
    be->free(be, d2);
    be->sync(be);
}

static void test_alloc_failure(void) {
    lra_backend *be = t_backend();
    lra_err e = {0};
    void *p = be->alloc(be, (size_t)1 << 62, &e);
    T_CHECK(p == NULL && e.code == LRA_ENOMEM, "huge allocation refused, not a crash");
    T_CHECK(strstr(e.msg, "cannot allocate") != NULL, "message: %s", e.msg);
    // sizes next to SIZE_MAX must not wrap around to a small block
    lra_mem_stats s0, s1;
    be->mem_stats(be, &s0);
    T_CHECK(be->alloc(be, SIZE_MAX - 16, &e) == NULL && e.code == LRA_ENOMEM, "SIZE_MAX - 16 refused");
    be->mem_stats(be, &s1);
    T_CHECK(s1.bytes_in_use == s0.bytes_in_use, "accounting untouched by a refused allocation");
}

static const t_case cases[] = {
    { "core/err", test_err },
    { "core/rng", test_rng },
    { "core/registry", test_registry },
    { "core/memory", test_memory },
    { "core/alloc_failure", test_alloc_failure },
};
T_MAIN(cases)
