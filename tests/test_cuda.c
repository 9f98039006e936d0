// test_cuda.c: CUDA vs CPU parity, op by op (float build only).
//
// Every op name of struct lra_backend (lra_backend_op_name) becomes one case
// "cuda/<op>", run by the function op_tests[] gives for it:
// - no CUDA backend here (no device, no driver, or a build without CUDA):
//   every case is skipped with the reason from lra_backend_init;
// - the CUDA backend lacks the op: skipped "(the cuda backend lacks this op)";
// - otherwise both backends run on the same fresh random inputs (uploaded to
//   the GPU) and the downloaded GPU results are compared with the CPU's.
// An op name that op_tests[] does not know is a FAILED case, so a new op
// cannot go untested silently.
//
// Comparisons: t_close_r, the largest |GPU - CPU| over the largest |CPU|
// value, <= TOL = 1e-5 unless a case states why it needs more (long float
// sums, FFT round-off). Non-finite CPU values (an -inf log-sum-exp) must be
// matched exactly. Every GPU buffer carries guard zones of D_GUARD bytes on
// both sides, filled with a pattern and checked after each download and at the
// end of the case; outputs start as NaN; inputs must come back unchanged.
//
// LRA_TEST_CUDA_AS=cpu runs the parity cases against a second CPU backend in
// place of CUDA: a self-check of this harness on a machine without a GPU.
#include "check.h"
#include "../models/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOL 1e-5

// ---- the backend under test -------------------------------------------------------

// A backend created on first use: be, or NULL with the reason in err and why.
typedef struct {
    lra_backend *be;
    int          tried;
    lra_err      err;
    char         why[600];
} lazy_backend;

static lazy_backend t_gpu_lb, t_tf32_lb;  // "cuda" (or its stand-in), "cuda-tf32"

static void lazy_release(void) {
    lra_backend_free(t_tf32_lb.be);
    lra_backend_free(t_gpu_lb.be);
    t_tf32_lb.be = t_gpu_lb.be = NULL;
}

// name NULL: the backend is unavailable for the reason in why_not
static lra_backend *lazy_open(lazy_backend *lb, const char *name, const char *why_not) {
    static int registered;
    if (!lb->tried) {
        lb->tried = 1;
        if (name) lb->be = lra_backend_init(name, 0, &lb->err);
        if (lb->be && !registered) registered = !atexit(lazy_release);
        if (!lb->be) snprintf(lb->why, sizeof lb->why, "%s", name ? lb->err.msg : why_not);
    }
    return lb->be;
}

// The CUDA backend (or its stand-in), created on first use; NULL when
// unavailable, with the reason in t_gpu_why.
static lra_backend *t_gpu(void) {
    const char *as = getenv("LRA_TEST_CUDA_AS");
    return lazy_open(&t_gpu_lb, as && *as ? as : "cuda", NULL);
}
#define t_gpu_why t_gpu_lb.why
#define t_gpu_err t_gpu_lb.err

// Skips the case unless both backends have `op`.
#define NEED(op)                                                   \
    do {                                                           \
        if (!t_gpu()) T_SKIP(t_gpu_why);                           \
        if (!t_gpu()->op) T_SKIP("the cuda backend lacks this op");       \
        if (!t_backend()->op) T_SKIP("the cpu backend lacks this op");    \
    } while (0)

__attribute__((format(printf, 1, 2))) static const char *tag(const char *fmt, ...) {
    static char buf[8][160];
    static int k;
    char *b = buf[k++ & 7];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "test_cuda: out of host memory\n"); exit(2); }
    return p;
}

// ---- buffers of one case --------------------------------------------------------------
// Device buffers: [D_GUARD pattern bytes][data][D_GUARD pattern bytes]; the
// data stays 256-byte aligned like cudaMalloc's. Host buffers: t_guarded
// reals or plain bytes. d_done() checks and frees everything of the case.

#define D_GUARD      256
#define D_GUARD_BYTE 0xA5
#define D_MAX        64

typedef struct {
    unsigned char *base;   // device block of bytes + 2 D_GUARD
    size_t         bytes;  // data bytes
    unsigned char *orig;   // inputs: host copy of the data, to prove it unchanged
    char           what[48];
} d_buf;

static d_buf d_bufs[D_MAX];
static int   d_n;
static void *h_bufs[4 * D_MAX];
static int   h_real[4 * D_MAX];  // 1: t_guarded, 0: malloc
static int   h_n;

static void *h_keep(void *p, int real) {
    if (h_n == 4 * D_MAX) { fprintf(stderr, "test_cuda: too many host buffers in one case\n"); exit(2); }
    h_bufs[h_n] = p;
    h_real[h_n++] = real;
    return p;
}

static void *h_mem(size_t bytes) { return h_keep(xmalloc(bytes), 0); }
static lra_real *h_nan(int64_t n) { return h_keep(t_guarded(n), 1); }

static lra_real *h_rand(int64_t n, uint64_t seed, double lo, double hi) {
    lra_real *x = h_nan(n);
    t_rand_fill(x, n, seed, lo, hi);
    return x;
}

// Uploads host (bytes; NULL: all bytes 0xFF, a NaN in every float) into a new
// guarded device buffer; returns the device data pointer.
static void *d_put(const void *host, size_t bytes, int input, const char *what) {
    lra_backend *g = t_gpu();
    if (d_n == D_MAX) { fprintf(stderr, "test_cuda: too many device buffers in one case\n"); exit(2); }
    size_t total = bytes + 2 * D_GUARD;
    lra_err e = {0};
    unsigned char *base = g->alloc(g, total, &e);
    if (!base) { fprintf(stderr, "test_cuda: %s\n", e.msg); exit(2); }
    unsigned char *stage = xmalloc(total);
    memset(stage, D_GUARD_BYTE, D_GUARD);
    memset(stage + D_GUARD + bytes, D_GUARD_BYTE, D_GUARD);
    if (host) memcpy(stage + D_GUARD, host, bytes);
    else memset(stage + D_GUARD, 0xFF, bytes);
    g->upload(g, base, stage, total);
    d_buf *b = &d_bufs[d_n++];
    b->base = base;
    b->bytes = bytes;
    b->orig = input ? stage : NULL;
    if (!input) free(stage);
    snprintf(b->what, sizeof b->what, "%s", what);
    return base + D_GUARD;
}

static d_buf *d_find(const void *d) {
    for (int i = 0; i < d_n; i++)
        if (d_bufs[i].base + D_GUARD == (const unsigned char *)d) return &d_bufs[i];
    fprintf(stderr, "test_cuda: %p is not a guarded device buffer of this case\n", d);
    exit(2);
}

// Downloads the whole block of b; fails the case when a guard changed.
// Returns the staging copy (free it) whose data starts at + D_GUARD.
static unsigned char *d_pull(const char *file, int line, const d_buf *b, const char *what) {
    lra_backend *g = t_gpu();
    size_t total = b->bytes + 2 * D_GUARD;
    unsigned char *stage = xmalloc(total);
    g->download(g, stage, b->base, total);
    for (size_t i = 0; i < D_GUARD; i++) {
        int lo = stage[i] != D_GUARD_BYTE, hi = stage[D_GUARD + b->bytes + i] != D_GUARD_BYTE;
        if (lo || hi) {
            t_fail_at(file, line, "%s (%s): out-of-bounds write %s the device buffer (%zu bytes)", what, b->what,
                      lo ? "before" : "after", b->bytes);
            break;
        }
    }
    return stage;
}

#define d_get(host, d, what) d_get_at(__FILE__, __LINE__, host, d, what)
static void d_get_at(const char *file, int line, void *host, const void *d, const char *what) {
    d_buf *b = d_find(d);
    unsigned char *stage = d_pull(file, line, b, what);
    memcpy(host, stage + D_GUARD, b->bytes);
    free(stage);
}

// Checks every buffer of the case (guards; inputs unchanged) and frees them all.
#define d_done() d_done_at(__FILE__, __LINE__)
static void d_done_at(const char *file, int line) {
    lra_backend *g = t_gpu();
    for (int i = 0; i < d_n; i++) {
        d_buf *b = &d_bufs[i];
        unsigned char *stage = d_pull(file, line, b, "at the end");
        if (b->orig && memcmp(stage + D_GUARD, b->orig + D_GUARD, b->bytes) != 0)
            t_fail_at(file, line, "input %s was modified on the device", b->what);
        free(stage);
        free(b->orig);
        g->free(g, b->base);
    }
    d_n = 0;
    for (int i = 0; i < h_n; i++) {
        if (h_real[i]) t_guarded_free(h_bufs[i]);
        else free(h_bufs[i]);
    }
    h_n = 0;
}

// A tensor on both sides: h for the CPU (t_guarded), d for the GPU.
typedef struct {
    lra_real *h, *d;
    int64_t   n;
} pair;

static const pair none = { NULL, NULL, 0 };

#define RB(n) ((size_t)(n) * sizeof(lra_real))

// random input in [lo, hi)
static pair in_rand(int64_t n, uint64_t seed, double lo, double hi, const char *what) {
    pair p = { h_rand(n, seed, lo, hi), NULL, n };
    p.d = d_put(p.h, RB(n), 1, what);
    return p;
}

// input with the given host values (kept by the caller until d_done)
static pair in_from(lra_real *h, int64_t n, const char *what) {
    pair p = { h, d_put(h, RB(n), 1, what), n };
    return p;
}

// output that starts as NaN on both sides
static pair out_nan(int64_t n, const char *what) {
    pair p = { h_nan(n), d_put(NULL, RB(n), 0, what), n };
    return p;
}

// in-out buffer (accumulated gradient, running statistics) starting random
static pair out_rand(int64_t n, uint64_t seed, double lo, double hi, const char *what) {
    pair p = { h_rand(n, seed, lo, hi), NULL, n };
    p.d = d_put(p.h, RB(n), 0, what);
    return p;
}

// integer or byte input on both sides
static void *in_bytes(const void *h, size_t bytes, const char *what) { return d_put(h, bytes, 1, what); }

// Downloads the GPU result d (n) and compares it with the CPU result ref (a
// t_guarded buffer, whose guards are checked too).
#define cmp(what, d, ref, n, tol) cmp_at(__FILE__, __LINE__, what, d, ref, n, tol)
static void cmp_at(const char *file, int line, const char *what, const lra_real *d, const lra_real *ref, int64_t n,
                   double tol) {
    lra_real *got = xmalloc(RB(n)), *want = xmalloc(RB(n));
    d_get_at(file, line, got, d, what);
    t_guard_ok_at(file, line, ref, what);
    int64_t bad = 0, first = 0;
    double got_first = 0;
    for (int64_t i = 0; i < n; i++) {
        want[i] = ref[i];
        if (isfinite(ref[i]) && isfinite(got[i])) continue;
        int same = isnan(ref[i]) ? isnan(got[i]) : got[i] == ref[i];
        if (!same && bad++ == 0) { first = i; got_first = got[i]; }
        got[i] = want[i] = 0;  // matched (or counted): leave it out of the error
    }
    if (bad)
        t_fail_at(file, line, "%s: %lld non-finite mismatches, first at [%lld]: got %.9g, want %.9g", what,
                  (long long)bad, (long long)first, got_first, (double)ref[first]);
    else
        t_close_r_at(file, line, what, got, want, n, tol);
    free(got);
    free(want);
}

#define cmp_pair(what, p, tol) cmp_at(__FILE__, __LINE__, what, (p).d, (p).h, (p).n, tol)

// |got - want| <= tol scale
#define cmp_scalar(what, got, want, scale, tol)                                                           \
    T_CHECK(fabs((double)(got) - (double)(want)) <= (tol) * (scale), "%s: got %.17g, want %.17g (tol %g x %g)", \
            what, (double)(got), (double)(want), (double)(tol), (double)(scale))

// ---- init failure and memory accounting -------------------------------------------------

// Expected shape of the error when no device can be used.
static void check_init_error(int code, const char *msg) {
    const char *prefix = "backend 'cuda': no CUDA device available (cudaGetDeviceCount: ";
    size_t len = strlen(msg);
    T_CHECK(code == LRA_EUNSUPPORTED, "code %d, want LRA_EUNSUPPORTED", code);
    T_CHECK(strncmp(msg, prefix, strlen(prefix)) == 0 && len > strlen(prefix) + 1 && msg[len - 1] == ')',
            "message: \"%s\"", msg);
}

// --init-probe: what lra_backend_init("cuda") says, as "<code> <message>".
static int init_probe(void) {
    lra_err e = {0};
    lra_backend *be = lra_backend_init("cuda", 0, &e);
    if (be) {
        printf("created %s\n", be->device);
        lra_backend_free(be);
        return 1;
    }
    printf("%d %s\n", e.code, e.msg);
    return 0;
}

static void test_init_message(void) {
    if (!lra_backend_available("cuda")) T_SKIP("this build has no CUDA backend");
    lra_backend *g = t_gpu();
    if (!g) {
        check_init_error(t_gpu_err.code, t_gpu_err.msg);
        T_SKIP(t_gpu_why);  // the message of the real failure was checked above
    }
    if (strcmp(g->name, "cuda") != 0) T_SKIP("the backend under test is a stand-in");
    // A device is present: run this program again with every device hidden.
    char self[4096], cmd[4300], out[1024] = "";
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) T_SKIP("cannot find this program's path to rerun it");
    self[k] = 0;
    snprintf(cmd, sizeof cmd, "CUDA_VISIBLE_DEVICES=-1 '%s' --init-probe 2>/dev/null", self);
    FILE *f = popen(cmd, "r");
    T_CHECK(f != NULL, "popen %s", cmd);
    if (!f) return;
    if (!fgets(out, sizeof out, f)) out[0] = 0;
    pclose(f);
    out[strcspn(out, "\n")] = 0;
    int code = -1, at = 0;
    T_CHECK(sscanf(out, "%d %n", &code, &at) == 1, "probe output: \"%s\"", out);
    check_init_error(code, out + at);
}

static void test_memory_accounting(void) {
    lra_backend *g = t_gpu();
    if (!g) T_SKIP(t_gpu_why);
    lra_err e = {0};
    lra_mem_stats s0, s;
    g->mem_stats(g, &s0);
    T_CHECK(s0.bytes_in_use >= 0 && s0.bytes_peak >= s0.bytes_in_use, "start: in use %lld, peak %lld",
            (long long)s0.bytes_in_use, (long long)s0.bytes_peak);
    void *a = g->alloc(g, 1000, &e), *b = g->alloc(g, 3 << 20, &e), *c = g->alloc(g, 77, &e);
    T_CHECK(a && b && c, "alloc: %s", e.msg);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use - s0.bytes_in_use == 1000 + (3 << 20) + 77, "in use +%lld",
            (long long)(s.bytes_in_use - s0.bytes_in_use));
    T_CHECK(s.bytes_peak >= s.bytes_in_use, "peak >= in use");
    g->free(g, b);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use - s0.bytes_in_use == 1077, "after free: +%lld",
            (long long)(s.bytes_in_use - s0.bytes_in_use));
    T_CHECK(s.bytes_peak >= s0.bytes_in_use + 1077 + (3 << 20), "peak remembers the freed block");
    g->mem_reset_peak(g);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_peak == s.bytes_in_use, "reset peak: %lld vs %lld", (long long)s.bytes_peak,
            (long long)s.bytes_in_use);
    if (strcmp(g->name, "cuda") == 0) {
        T_CHECK(s.host_rss_peak == 0, "host_rss_peak %lld on a GPU backend", (long long)s.host_rss_peak);
        // far more than any device holds: NULL and a message, counters untouched
        lra_err big = {0};
        void *p = g->alloc(g, (size_t)1 << 52, &big);
        T_CHECK(p == NULL && big.code == LRA_ENOMEM && strstr(big.msg, "cannot allocate") != NULL,
                "huge alloc: code %d, \"%s\"", big.code, big.msg);
        if (p) g->free(g, p);
        lra_mem_stats s2;
        g->mem_stats(g, &s2);
        T_CHECK(s2.bytes_in_use == s.bytes_in_use, "failed alloc not counted");
        // the failure left no error behind for later ops
        lra_real v[3] = { 0 };
        lra_real *d = g->alloc(g, sizeof v, &e);
        T_CHECK(d != NULL, "alloc after a failed one: %s", e.msg);
        if (d) {
            g->fill(g, d, (lra_real)2.5, 3);
            g->download(g, v, d, sizeof v);
            T_CHECK(v[0] == 2.5f && v[2] == 2.5f, "fill after a failed alloc");
            g->free(g, d);
        }
    }
    g->free(g, a);
    g->free(g, c);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use == s0.bytes_in_use, "all freed: %lld vs %lld", (long long)s.bytes_in_use,
            (long long)s0.bytes_in_use);
}

// ---- memory ops ------------------------------------------------------------------------------

static void op_free_backend(void) {
    NEED(free_backend);
    lra_backend *g = t_gpu();
    lra_err e = {0};
    lra_backend *b2 = lra_backend_init(g->name, 0, &e);
    T_CHECK(b2 != NULL, "a second instance: %s", e.msg);
    if (!b2) return;
    T_CHECK(b2->api_version == LRA_BACKEND_API_VERSION && strcmp(b2->name, g->name) == 0, "table");
    T_CHECK(b2->device[0] != 0, "device named");
    if (strcmp(b2->name, "cuda") == 0) T_CHECK(b2->n_threads == 0, "n_threads %d on a GPU", b2->n_threads);
    lra_real x[5] = { 1, 2, 3, 4, 5 }, y[5] = { 0 };
    void *p = b2->alloc(b2, sizeof x, &e);
    T_CHECK(p != NULL, "alloc on the second instance: %s", e.msg);
    if (p) {
        b2->upload(b2, p, x, sizeof x);
        b2->download(b2, y, p, sizeof y);
        b2->free(b2, p);
    }
    T_CHECK(memcmp(x, y, sizeof x) == 0, "round trip on the second instance");
    b2->free_backend(b2);
    // the first instance is untouched
    pair z = out_nan(5, "z");
    g->fill(g, z.d, (lra_real)3, 5);
    t_backend()->fill(t_backend(), z.h, (lra_real)3, 5);
    cmp_pair("fill after freeing another instance", z, 0);
    d_done();
}

static void op_alloc(void) {
    NEED(alloc);
    lra_backend *g = t_gpu();
    static const size_t sizes[] = { 0, 1, 3, 64, 1000, 4096, 1 << 20, 12345679 };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    void *p[NS];
    lra_err e = {0};
    lra_mem_stats s0, s;
    g->mem_stats(g, &s0);
    int64_t total = 0;
    for (int i = 0; i < NS; i++) {
        p[i] = g->alloc(g, sizes[i], &e);
        T_CHECK(p[i] != NULL || sizes[i] == 0, "alloc(%zu): %s", sizes[i], e.msg);
        T_CHECK((uintptr_t)p[i] % 64 == 0, "alloc(%zu) is 64-byte aligned", sizes[i]);
        for (int j = 0; j < i; j++) T_CHECK(!p[i] || p[i] != p[j], "blocks %d and %d are distinct", i, j);
        total += (int64_t)sizes[i];
    }
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use - s0.bytes_in_use == total, "in use +%lld, want +%lld",
            (long long)(s.bytes_in_use - s0.bytes_in_use), (long long)total);
    // every byte of the largest block holds data
    size_t big = sizes[NS - 1];
    unsigned char *h = h_mem(big), *back = h_mem(big);
    for (size_t i = 0; i < big; i++) h[i] = (unsigned char)lra_rand_bits(3, i);
    if (p[NS - 1]) {
        g->upload(g, p[NS - 1], h, big);
        g->download(g, back, p[NS - 1], big);
        T_CHECK(memcmp(h, back, big) == 0, "round trip through %zu bytes", big);
    }
    for (int i = 0; i < NS; i++) g->free(g, p[i]);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use == s0.bytes_in_use, "all freed");
    d_done();
}

static void op_free(void) {
    NEED(free);
    lra_backend *g = t_gpu();
    g->free(g, NULL);  // a no-op
    enum { NB = 600 };
    void *p[NB];
    size_t sz[NB];
    lra_err e = {0};
    lra_mem_stats s0, s;
    g->mem_stats(g, &s0);
    int64_t live = 0;
    for (int i = 0; i < NB; i++) {
        sz[i] = 16 + (size_t)(lra_rand_bits(5, (uint64_t)i) % 5000);
        p[i] = g->alloc(g, sz[i], &e);
        T_CHECK(p[i] != NULL, "alloc %d: %s", i, e.msg);
        if (p[i]) g->upload(g, p[i], &i, sizeof i);
        live += (int64_t)sz[i];
    }
    for (int i = 0; i < NB; i += 2) {  // every other block
        g->free(g, p[i]);
        live -= (int64_t)sz[i];
        p[i] = NULL;
    }
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use - s0.bytes_in_use == live, "in use +%lld, want +%lld",
            (long long)(s.bytes_in_use - s0.bytes_in_use), (long long)live);
    for (int i = 1; i < NB; i += 2) {
        int v = -1;
        if (p[i]) g->download(g, &v, p[i], sizeof v);
        T_CHECK(v == i, "block %d still holds its data (%d)", i, v);
    }
    for (int i = NB - 1; i >= 0; i--) g->free(g, p[i]);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use == s0.bytes_in_use, "all freed");
}

static unsigned char *h_rand_bytes(size_t n, uint64_t seed) {
    unsigned char *h = h_mem(n);
    for (size_t i = 0; i < n; i++) h[i] = (unsigned char)(1 + lra_rand_bits(seed, i) % 255);
    return h;
}

static void op_zero(void) {
    NEED(zero);
    lra_backend *g = t_gpu();
    size_t n = 1000;
    unsigned char *h = h_rand_bytes(n, 6), *got = h_mem(n);
    unsigned char *d = d_put(h, n, 0, "buf");
    g->zero(g, d + 13, 501);
    memset(h + 13, 0, 501);
    g->zero(g, d + 999, 0);  // nothing
    g->zero(g, d, 1);
    memset(h, 0, 1);
    d_get(got, d, "buf");
    T_CHECK(memcmp(got, h, n) == 0, "zeroed ranges");
    d_done();
}

static void op_upload(void) {
    NEED(upload);
    lra_backend *g = t_gpu();
    size_t n = 4000;
    unsigned char *h = h_rand_bytes(n, 7), *src = h_rand_bytes(n, 8), *got = h_mem(n);
    unsigned char *d = d_put(h, n, 0, "buf");
    g->upload(g, d + 5, src, 777);
    memcpy(h + 5, src, 777);
    g->upload(g, d + n - 3, src + 100, 3);
    memcpy(h + n - 3, src + 100, 3);
    g->upload(g, d, src, 0);
    d_get(got, d, "buf");
    T_CHECK(memcmp(got, h, n) == 0, "uploaded ranges");
    d_done();
}

static void op_download(void) {
    NEED(download);
    lra_backend *g = t_gpu();
    size_t n = 4000, len = 333;
    unsigned char *h = h_rand_bytes(n, 9), *got = h_mem(len + 32);
    unsigned char *d = in_bytes(h, n, "buf");
    memset(got, 0xEE, len + 32);
    g->download(g, got + 16, d + 7, len);
    g->download(g, got, d, 0);
    T_CHECK(memcmp(got + 16, h + 7, len) == 0, "downloaded range");
    int outside = 0;
    for (size_t i = 0; i < 16; i++) outside += got[i] != 0xEE || got[16 + len + i] != 0xEE;
    T_CHECK(outside == 0, "download wrote outside its range");
    d_done();
}

static void op_copy(void) {
    NEED(copy);
    lra_backend *g = t_gpu();
    size_t n = 4096;
    unsigned char *h = h_rand_bytes(n, 10), *h2 = h_rand_bytes(n, 11), *got = h_mem(n);
    unsigned char *d = d_put(h, n, 0, "buf"), *d2 = d_put(h2, n, 0, "buf2");
    struct { size_t dst, src, len; } ops[] = {
        { 2048, 7, 1000 },  // disjoint
        { 10, 0, 3000 },    // overlapping, dst after src (memmove semantics)
        { 0, 10, 3000 },    // overlapping, dst before src
        { 5, 5, 100 },      // dst == src
        { 1, 0, 1 },        // adjacent
        { 100, 99, 2 },     // overlap by one byte
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        g->copy(g, d + ops[i].dst, d + ops[i].src, ops[i].len);
        memmove(h + ops[i].dst, h + ops[i].src, ops[i].len);
    }
    g->copy(g, d2 + 1, d + 3, n - 8);  // another block
    memcpy(h2 + 1, h + 3, n - 8);
    d_get(got, d, "buf");
    T_CHECK(memcmp(got, h, n) == 0, "copies within one block");
    d_get(got, d2, "buf2");
    T_CHECK(memcmp(got, h2, n) == 0, "copy between blocks");
    d_done();
}

static void op_sync(void) {
    NEED(sync);
    lra_backend *g = t_gpu(), *c = t_backend();
    int64_t n = (1 << 22) + 3;
    pair y = out_nan(n, "y");
    g->fill(g, y.d, (lra_real)0.5, n);
    g->sync(g);
    g->sync(g);
    c->fill(c, y.h, (lra_real)0.5, n);
    cmp_pair("fill then sync", y, 0);
    d_done();
}

static void op_mem_stats(void) {
    NEED(mem_stats);
    lra_backend *g = t_gpu();
    lra_mem_stats s0, s;
    g->mem_stats(g, &s0);
    T_CHECK(s0.bytes_peak >= s0.bytes_in_use && s0.bytes_in_use >= 0, "peak >= in use >= 0");
    if (strcmp(g->name, "cuda") == 0) T_CHECK(s0.host_rss_peak == 0, "host_rss_peak is 0 on a GPU");
    lra_err e = {0};
    void *p = g->alloc(g, 1 << 20, &e);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_in_use == s0.bytes_in_use + (1 << 20), "in use counts the block");
    T_CHECK(s.bytes_peak >= s.bytes_in_use, "peak follows");
    g->free(g, p);
}

static void op_mem_reset_peak(void) {
    NEED(mem_reset_peak);
    lra_backend *g = t_gpu();
    lra_mem_stats s;
    lra_err e = {0};
    void *p = g->alloc(g, 5 << 20, &e);
    g->free(g, p);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_peak >= s.bytes_in_use + (5 << 20), "peak holds the freed block");
    g->mem_reset_peak(g);
    g->mem_stats(g, &s);
    T_CHECK(s.bytes_peak == s.bytes_in_use, "reset: peak %lld, in use %lld", (long long)s.bytes_peak,
            (long long)s.bytes_in_use);
}

// ---- elementwise and reductions ---------------------------------------------------------
// Sizes include one above CU_MAX_GRID * CU_BLOCK = 2^20, so the grid-stride
// loops of the CUDA kernels go round more than once.

static const int64_t elem_n[] = { 1, 7, 1000, (1 << 21) + 7 };
#define N_ELEM ((int)(sizeof elem_n / sizeof elem_n[0]))

static void op_fill(void) {
    NEED(fill);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_ELEM; s++) {
        int64_t n = elem_n[s];
        pair y = out_nan(n, "y");
        c->fill(c, y.h, (lra_real)-1.25, n);
        g->fill(g, y.d, (lra_real)-1.25, n);
        cmp_pair(tag("fill n=%lld", (long long)n), y, 0);
        d_done();
    }
}

static void op_axpby(void) {
    NEED(axpby);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_ELEM; s++) {
        int64_t n = elem_n[s];
        pair x = in_rand(n, 20 + s, -2, 2, "x"), y = out_rand(n, 30 + s, -2, 2, "y");
        c->axpby(c, y.h, (lra_real)0.7, x.h, (lra_real)-1.3, n);
        g->axpby(g, y.d, (lra_real)0.7, x.d, (lra_real)-1.3, n);
        c->axpby(c, y.h, (lra_real)1, x.h, (lra_real)0, n);  // y = x
        g->axpby(g, y.d, (lra_real)1, x.d, (lra_real)0, n);
        c->axpby(c, y.h, (lra_real)-0.25, x.h, (lra_real)3, n);
        g->axpby(g, y.d, (lra_real)-0.25, x.d, (lra_real)3, n);
        cmp_pair(tag("axpby n=%lld", (long long)n), y, TOL);
        d_done();
    }
}

typedef void (*binary_op)(lra_backend *, lra_real *, const lra_real *, const lra_real *, int64_t);

// out = a op b, then in place: a2 = a2 op b
static void check_binary(const char *name, binary_op fc, binary_op fg) {
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_ELEM; s++) {
        int64_t n = elem_n[s];
        pair a = in_rand(n, 40 + s, -2, 2, "a"), b = in_rand(n, 50 + s, -2, 2, "b");
        pair out = out_nan(n, "out"), a2 = out_rand(n, 40 + s, -2, 2, "a2");
        fc(c, out.h, a.h, b.h, n);
        fg(g, out.d, a.d, b.d, n);
        cmp_pair(tag("%s n=%lld", name, (long long)n), out, TOL);
        fc(c, a2.h, a2.h, b.h, n);
        fg(g, a2.d, a2.d, b.d, n);
        fc(c, a2.h, b.h, a2.h, n);
        fg(g, a2.d, b.d, a2.d, n);
        cmp_pair(tag("%s in place n=%lld", name, (long long)n), a2, TOL);
        d_done();
    }
}

static void op_add(void) {
    NEED(add);
    check_binary("add", t_backend()->add, t_gpu()->add);
}

static void op_mul(void) {
    NEED(mul);
    check_binary("mul", t_backend()->mul, t_gpu()->mul);
}

typedef struct { int64_t R; int C; } shape2;
static const shape2 rc_shapes[] = { { 1, 1 }, { 13, 7 }, { 1000, 33 }, { 3, 5000 }, { 70001, 3 }, { 2, 1 } };
#define N_RC ((int)(sizeof rc_shapes / sizeof rc_shapes[0]))

typedef void (*bcast_fn)(lra_backend *be, lra_real *out, const lra_real *inp, const lra_real *v, int64_t R, int C);

// out (R, C) = inp scaled along the columns (v of C: mul_cols) or the rows (v of R: mul_rows)
static void check_bcast(const char *name, bcast_fn fc, bcast_fn fg, int by_row, uint64_t seed) {
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_RC; s++) {
        int64_t R = rc_shapes[s].R, n = R * rc_shapes[s].C;
        int C = rc_shapes[s].C;
        pair inp = in_rand(n, seed + s, -2, 2, "inp"), v = in_rand(by_row ? R : C, seed + 10 + s, -2, 2, "v");
        pair out = out_nan(n, "out");
        fc(c, out.h, inp.h, v.h, R, C);
        fg(g, out.d, inp.d, v.d, R, C);
        cmp_pair(tag("%s R=%lld C=%d", name, (long long)R, C), out, TOL);
        d_done();
    }
}

static void op_mul_cols(void) {
    NEED(mul_cols);
    check_bcast("mul_cols", t_backend()->mul_cols, t_gpu()->mul_cols, 0, 60);
}

static void op_mul_rows(void) {
    NEED(mul_rows);
    check_bcast("mul_rows", t_backend()->mul_rows, t_gpu()->mul_rows, 1, 80);
}

static void op_mul_cols_bwd(void) {
    NEED(mul_cols_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_RC; s++) {
        for (int var = 0; var < 3; var++) {  // both gradients, dinp only, dv only
            int64_t R = rc_shapes[s].R, n = R * rc_shapes[s].C;
            int C = rc_shapes[s].C;
            pair dout = in_rand(n, 80 + s, -1, 1, "dout"), inp = in_rand(n, 90 + s, -2, 2, "inp");
            pair v = in_rand(C, 100 + s, -2, 2, "v");
            pair dinp = var != 2 ? out_rand(n, 110 + s, -1, 1, "dinp") : none;
            pair dv = var != 1 ? out_rand(C, 120 + s, -1, 1, "dv") : none;
            c->mul_cols_bwd(c, dinp.h, dv.h, dout.h, inp.h, v.h, R, C);
            g->mul_cols_bwd(g, dinp.d, dv.d, dout.d, inp.d, v.d, R, C);
            if (dinp.h) cmp_pair(tag("mul_cols_bwd dinp R=%lld C=%d var %d", (long long)R, C, var), dinp, TOL);
            if (dv.h) cmp_pair(tag("mul_cols_bwd dv R=%lld C=%d var %d", (long long)R, C, var), dv, TOL);
            d_done();
        }
    }
}

static void op_sum_rows(void) {
    NEED(sum_rows);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s <= N_RC; s++) {
        int64_t R = s < N_RC ? rc_shapes[s].R : 0;  // R = 0: nothing added
        int C = s < N_RC ? rc_shapes[s].C : 4;
        pair inp = in_rand(R * C, 130 + s, -1, 1, "inp"), out = out_rand(C, 140 + s, -1, 1, "out");
        c->sum_rows(c, out.h, inp.h, R, C);
        g->sum_rows(g, out.d, inp.d, R, C);
        cmp_pair(tag("sum_rows R=%lld C=%d", (long long)R, C), out, TOL);
        d_done();
    }
}

// Both sides add float values in double, in different orders: the difference
// is bounded by n u sum|x| with u = 2^-53; 1e-10 sum|x| covers n up to 10^6
// at worst and is ~1e5 times the typical error.
static void check_sum(int square) {
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s <= N_ELEM; s++) {
        int64_t n = s < N_ELEM ? elem_n[s] : 0;
        pair x = in_rand(n, 150 + s, -1, 1.5, "x");
        double sa = 0;
        for (int64_t i = 0; i < n; i++) sa += square ? (double)x.h[i] * x.h[i] : fabs((double)x.h[i]);
        double want = square ? c->sumsq(c, x.h, n) : c->sum(c, x.h, n);
        double got = square ? g->sumsq(g, x.d, n) : g->sum(g, x.d, n);
        cmp_scalar(tag("%s n=%lld", square ? "sumsq" : "sum", (long long)n), got, want, sa, 1e-10);
        d_done();
    }
}

static void op_sum(void) {
    NEED(sum);
    check_sum(0);
}

static void op_sumsq(void) {
    NEED(sumsq);
    check_sum(1);
}

static void op_permute_0213(void) {
    NEED(permute_0213);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const int64_t shapes[][4] = {
        { 1, 1, 1, 1 }, { 2, 3, 5, 7 }, { 2, 37, 33, 1 }, { 3, 300, 257, 1 }, { 2, 64, 5, 16 },
        { 1, 1, 100, 1 }, { 4, 70, 3, 1 }, { 1, 1000, 1, 3 }, { 5, 31, 65, 1 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t A = shapes[s][0], Bd = shapes[s][1], Cd = shapes[s][2], Dd = shapes[s][3], n = A * Bd * Cd * Dd;
        pair inp = in_rand(n, 160 + s, -1, 1, "inp"), out = out_nan(n, "out");
        c->permute_0213(c, out.h, inp.h, A, Bd, Cd, Dd);
        g->permute_0213(g, out.d, inp.d, A, Bd, Cd, Dd);
        cmp_pair(tag("permute_0213 (%lld, %lld, %lld, %lld)", (long long)A, (long long)Bd, (long long)Cd,
                     (long long)Dd),
                 out, 0);
        d_done();
    }
}

// ---- dense -------------------------------------------------------------------------------

// The GEMM cases on g (the "cuda" backend, or "cuda-tf32" with TF32_TOL).
static void gemm_parity(lra_backend *g, double tol) {
    lra_backend *c = t_backend();
    // pad: extra columns of lda/ldb/ldc; gap: extra values between batch
    // items (-1: stride 0, the same A or B for every item)
    static const struct {
        int tA, tB, M, N, K, padA, padB, padC, batch, gapA, gapB, gapC;
        float alpha, beta;
        int nan_c;  // C starts as NaN (beta must be 0: C is not read)
    } cases[] = {
        { 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1.0f, 0.0f, 1 },
        { 0, 0, 17, 13, 29, 0, 0, 0, 1, 0, 0, 0, 1.0f, 0.0f, 0 },
        { 1, 0, 33, 17, 65, 3, 0, 5, 3, 0, 0, 0, 0.5f, 1.0f, 0 },
        { 0, 1, 20, 31, 7, 0, 2, 1, 2, 5, 3, 2, -1.0f, 0.25f, 0 },
        { 1, 1, 9, 40, 50, 1, 1, 0, 4, 0, 0, 7, 1.5f, -2.0f, 0 },
        { 0, 0, 12, 10, 8, 0, 0, 0, 5, 0, -1, 0, 1.0f, 0.0f, 1 },   // shared B
        { 1, 0, 16, 24, 32, 0, 0, 0, 3, -1, 4, 0, 1.0f, 1.0f, 0 },  // shared A
        { 0, 0, 5, 6, 0, 0, 0, 2, 2, 0, 0, 0, 1.0f, 0.5f, 0 },      // K = 0: C = beta C
        { 0, 1, 256, 200, 300, 0, 0, 0, 2, 0, 0, 0, 1.0f, 0.0f, 0 },
        { 1, 1, 1, 300, 1000, 0, 0, 0, 1, 0, 0, 0, 1.0f, 0.0f, 0 },
        { 0, 0, 1000, 1, 3, 0, 0, 0, 1, 0, 0, 0, 2.0f, 1.0f, 0 },
    };
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        int tA = cases[s].tA, tB = cases[s].tB, M = cases[s].M, N = cases[s].N, K = cases[s].K;
        int batch = cases[s].batch;
        // stored matrices: A (M, K) or (K, M), B (K, N) or (N, K), C (M, N)
        int rA = tA ? K : M, cA = tA ? M : K, rB = tB ? N : K, cB = tB ? K : N;
        int lda = cA + cases[s].padA, ldb = cB + cases[s].padB, ldc = N + cases[s].padC;
        if (lda < 1) lda = 1;
        if (ldb < 1) ldb = 1;
        int64_t szA = (int64_t)rA * lda, szB = (int64_t)rB * ldb, szC = (int64_t)M * ldc;
        int64_t sA = cases[s].gapA < 0 ? 0 : szA + cases[s].gapA, sB = cases[s].gapB < 0 ? 0 : szB + cases[s].gapB;
        int64_t sC = szC + cases[s].gapC;
        int64_t nA = (batch - 1) * sA + szA, nB = (batch - 1) * sB + szB, nC = (batch - 1) * sC + szC;
        pair A = in_rand(nA, 170 + s, -1, 1, "A"), B = in_rand(nB, 180 + s, -1, 1, "B");
        lra_real *hc = h_rand(nC, 190 + s, -1, 1);
        if (cases[s].nan_c)
            for (int i = 0; i < batch; i++)
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) hc[i * sC + (int64_t)m * ldc + n] = (lra_real)NAN;
        pair C = { hc, d_put(hc, RB(nC), 0, "C"), nC };
        lra_real al = cases[s].alpha, be = cases[s].beta;
        c->gemm(c, tA, tB, M, N, K, al, A.h, lda, sA, B.h, ldb, sB, be, C.h, ldc, sC, batch);
        g->gemm(g, tA, tB, M, N, K, al, A.d, lda, sA, B.d, ldb, sB, be, C.d, ldc, sC, batch);
        // the whole buffer: the padding of C must be left alone
        cmp_pair(tag("gemm %s tA=%d tB=%d M=%d N=%d K=%d batch=%d", g->name, tA, tB, M, N, K, batch), C, tol);
        d_done();
    }
}

static void op_gemm(void) {
    NEED(gemm);
    gemm_parity(t_gpu(), TOL);
}

// ---- TF32 ---------------------------------------------------------------------------------------
// "cuda-tf32" lets cuBLAS round GEMM inputs to TF32 (a 10-bit mantissa: unit
// round-off 2^-11 = 4.9e-4) and accumulate in FP32. A product then carries up
// to ~1e-3 relative error and a K-term dot product about sqrt(K) 2.5e-4 of
// the largest |a||b| sum; against the largest |C| the GEMM cases stay under
// TF32_TOL = 2e-3. Whole models on it: losses over the short training run
// within TF32_TRAIN_TOL = 2e-2 of the CPU's (relative, floor 1).
#define TF32_TOL       2e-3
#define TF32_TRAIN_TOL 2e-2

// The "cuda-tf32" backend, NULL (reason in t_tf32_why) where there is none,
// or where the backend under test is a stand-in.
static lra_backend *t_tf32(void) {
    int real = t_gpu() && strcmp(t_gpu()->name, "cuda") == 0;
    return lazy_open(&t_tf32_lb, real ? "cuda-tf32" : NULL,
                     t_gpu() ? "the backend under test is a stand-in" : t_gpu_why);
}
#define t_tf32_why t_tf32_lb.why

// md = largest |got - want|, mw = largest |want|
static void max_abs_diff(const lra_real *got, const lra_real *want, int64_t n, double *md, double *mw) {
    *md = *mw = 0;
    for (int64_t i = 0; i < n; i++) {
        *md = fmax(*md, fabs((double)got[i] - (double)want[i]));
        *mw = fmax(*mw, fabs((double)want[i]));
    }
}

// largest |d - want| over the largest |want|, d downloaded from the GPU
static double rel_err(const lra_real *d, const lra_real *want, int64_t n) {
    lra_real *got = xmalloc(RB(n));
    t_gpu()->download(t_gpu(), got, d, RB(n));
    double md, mw;
    max_abs_diff(got, want, n, &md, &mw);
    free(got);
    return md / (mw > 0 ? mw : 1);
}

// The GEMM cases within TF32_TOL; then one 256 x 2048 x 256 product, whose
// TF32 error must be well above the FP32 backend's (the tensor cores are in
// use) and within TF32_TOL.
static void test_tf32_gemm(void) {
    lra_backend *t = t_tf32(), *c = t_backend(), *g = t_gpu();
    if (!t) T_SKIP(t_tf32_why);
    T_CHECK(strcmp(t->name, "cuda-tf32") == 0, "name %s", t->name);
    gemm_parity(t, TF32_TOL);
    const int M = 256, N = 256, K = 2048;
    pair A = in_rand((int64_t)M * K, 201, -1, 1, "A"), B = in_rand((int64_t)K * N, 202, -1, 1, "B");
    pair C32 = out_nan((int64_t)M * N, "C fp32"), Ct = out_nan((int64_t)M * N, "C tf32");
    c->gemm(c, 0, 0, M, N, K, 1, A.h, K, 0, B.h, N, 0, 0, C32.h, N, 0, 1);
    g->gemm(g, 0, 0, M, N, K, 1, A.d, K, 0, B.d, N, 0, 0, C32.d, N, 0, 1);
    t->gemm(t, 0, 0, M, N, K, 1, A.d, K, 0, B.d, N, 0, 0, Ct.d, N, 0, 1);
    double e32 = rel_err(C32.d, C32.h, (int64_t)M * N), et = rel_err(Ct.d, C32.h, (int64_t)M * N);
    printf("    %dx%dx%d: fp32 error %.3g, tf32 error %.3g (relative to max |C|)\n", M, K, N, e32, et);
    T_CHECK(et <= TF32_TOL, "tf32 error %.3g > %.3g", et, TF32_TOL);
    T_CHECK(et > 8 * e32, "tf32 error %.3g is not above fp32's %.3g: TF32 is not in use", et, e32);
    d_done();
}

static void op_bias_add(void) {
    NEED(bias_add);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_RC; s++) {
        int64_t R = rc_shapes[s].R, n = R * rc_shapes[s].C;
        int C = rc_shapes[s].C;
        pair bias = in_rand(C, 200 + s, -1, 1, "bias"), out = out_rand(n, 210 + s, -1, 1, "out");
        c->bias_add(c, out.h, bias.h, R, C);
        g->bias_add(g, out.d, bias.d, R, C);
        cmp_pair(tag("bias_add R=%lld C=%d", (long long)R, C), out, TOL);
        d_done();
    }
}

// ---- long convolution --------------------------------------------------------------------
// FFT round-off is relative to the norms of the whole signals rather than to
// each output, and cuFFT and FFTW order their butterflies differently: 1e-4.

#define FFT_TOL 1e-4

static const struct { int B, H, L; lra_conv_mode mode; } conv_cases[] = {
    { 1, 1, 1, LRA_CONV_CAUSAL },   { 2, 3, 7, LRA_CONV_CAUSAL },         { 2, 3, 7, LRA_CONV_BIDIRECTIONAL },
    { 1, 4, 100, LRA_CONV_CAUSAL }, { 3, 2, 257, LRA_CONV_BIDIRECTIONAL }, { 2, 5, 1000, LRA_CONV_CAUSAL },
    { 1, 2, 4096, LRA_CONV_BIDIRECTIONAL },
};
#define N_CONV ((int)(sizeof conv_cases / sizeof conv_cases[0]))

static void op_fftconv_fwd(void) {
    NEED(fftconv_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_CONV; s++) {
        int B = conv_cases[s].B, H = conv_cases[s].H, L = conv_cases[s].L;
        lra_conv_mode mode = conv_cases[s].mode;
        int64_t n = (int64_t)B * H * L, nk = (int64_t)H * L * (mode == LRA_CONV_BIDIRECTIONAL ? 2 : 1);
        pair u = in_rand(n, 220 + s, -1, 1, "u"), k = in_rand(nk, 230 + s, -1, 1, "k"), y = out_nan(n, "y");
        c->fftconv_fwd(c, y.h, u.h, k.h, B, H, L, mode);
        g->fftconv_fwd(g, y.d, u.d, k.d, B, H, L, mode);
        cmp_pair(tag("fftconv_fwd B=%d H=%d L=%d mode %d", B, H, L, (int)mode), y, FFT_TOL);
        d_done();
    }
}

static void op_fftconv_bwd(void) {
    NEED(fftconv_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_CONV; s++) {
        for (int var = 0; var < 3; var++) {  // both, du only, dk only
            int B = conv_cases[s].B, H = conv_cases[s].H, L = conv_cases[s].L;
            lra_conv_mode mode = conv_cases[s].mode;
            int64_t n = (int64_t)B * H * L, nk = (int64_t)H * L * (mode == LRA_CONV_BIDIRECTIONAL ? 2 : 1);
            pair u = in_rand(n, 240 + s, -1, 1, "u"), k = in_rand(nk, 250 + s, -1, 1, "k");
            pair dy = in_rand(n, 260 + s, -1, 1, "dy");
            pair du = var != 2 ? out_rand(n, 270 + s, -1, 1, "du") : none;
            pair dk = var != 1 ? out_rand(nk, 280 + s, -1, 1, "dk") : none;
            c->fftconv_bwd(c, du.h, dk.h, dy.h, u.h, k.h, B, H, L, mode);
            g->fftconv_bwd(g, du.d, dk.d, dy.d, u.d, k.d, B, H, L, mode);
            if (du.h) cmp_pair(tag("fftconv_bwd du B=%d H=%d L=%d mode %d", B, H, L, (int)mode), du, FFT_TOL);
            if (dk.h) cmp_pair(tag("fftconv_bwd dk B=%d H=%d L=%d mode %d", B, H, L, (int)mode), dk, FFT_TOL);
            d_done();
        }
    }
}

// ---- diagonal linear recurrence ------------------------------------------------------------
// With |a| <= 0.99 a float error is carried for ~1/(1 - |a|) = 100 steps, and
// a parallel scan on the GPU associates the products differently from the
// sequential CPU loop: 5e-5 (1e-4 for da summed over B and L when time invariant).

#define SCAN_TOL 5e-5

// n complex numbers r e^{i theta}, r in [rmin, rmax), theta in [-pi, pi)
static lra_real *h_polar(int64_t n, uint64_t seed, double rmin, double rmax) {
    lra_real *z = h_nan(2 * n);
    for (int64_t i = 0; i < n; i++) {
        double r = rmin + (rmax - rmin) * lra_rand_uniform(seed, 2 * (uint64_t)i);
        double th = M_PI * (2.0 * lra_rand_uniform(seed, 2 * (uint64_t)i + 1) - 1.0);
        z[2 * i] = (lra_real)(r * cos(th));
        z[2 * i + 1] = (lra_real)(r * sin(th));
    }
    return z;
}

static const struct { int B, L, N, flags, x0; } scan_cases[] = {
    { 1, 1, 1, 0, 0 },
    { 2, 7, 3, 0, 1 },
    { 2, 7, 3, LRA_SCAN_REVERSE, 1 },
    { 2, 100, 5, LRA_SCAN_TIME_INVARIANT, 0 },
    { 2, 100, 5, LRA_SCAN_TIME_INVARIANT | LRA_SCAN_REVERSE, 1 },
    { 1, 1000, 4, 0, 1 },
    { 3, 257, 16, LRA_SCAN_REVERSE, 0 },
    { 2, 513, 64, LRA_SCAN_TIME_INVARIANT, 1 },
};
#define N_SCAN ((int)(sizeof scan_cases / sizeof scan_cases[0]))

static void op_scan_fwd(void) {
    NEED(scan_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_SCAN; s++) {
        int B = scan_cases[s].B, L = scan_cases[s].L, N = scan_cases[s].N, fl = scan_cases[s].flags;
        int64_t n = (int64_t)B * L * N, na = fl & LRA_SCAN_TIME_INVARIANT ? N : n;
        pair a = in_from(h_polar(na, 300 + s, 0.5, 0.99), 2 * na, "a");
        pair b = in_rand(2 * n, 310 + s, -1, 1, "b");
        pair x0 = scan_cases[s].x0 ? in_rand(2 * (int64_t)B * N, 320 + s, -1, 1, "x0") : none;
        pair x = out_nan(2 * n, "x");
        c->scan_fwd(c, x.h, a.h, b.h, x0.h, B, L, N, fl);
        g->scan_fwd(g, x.d, a.d, b.d, x0.d, B, L, N, fl);
        cmp_pair(tag("scan_fwd B=%d L=%d N=%d flags %d x0 %d", B, L, N, fl, scan_cases[s].x0), x, SCAN_TOL);
        d_done();
    }
    // b and x one float off an 8-byte boundary: the single-pass kernel reads
    // float2 and must leave such pointers to the multi-pass path
    for (int fl = 0; fl < 4; fl++) {
        const int B = 2, L = 300, N = 40;
        int64_t n = (int64_t)B * L * N, na = fl & LRA_SCAN_TIME_INVARIANT ? N : n;
        pair a = in_from(h_polar(na, 330 + fl, 0.5, 0.99), 2 * na, "a");
        pair b = in_rand(2 * n + 1, 340 + fl, -1, 1, "b"), x = out_rand(2 * n + 1, 350 + fl, -1, 1, "x");
        c->scan_fwd(c, x.h + 1, a.h, b.h + 1, NULL, B, L, N, fl);
        g->scan_fwd(g, x.d + 1, a.d, b.d + 1, NULL, B, L, N, fl);
        cmp_pair(tag("scan_fwd unaligned b, x flags %d", fl), x, SCAN_TOL);
        d_done();
    }
}

// wall-clock seconds
static double t_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A long scan (B = 16, L = 16384, N = 64, 256 MiB per tensor) against the
// CPU, in both directions and both kinds of a; the GPU's time is reported
// as bandwidth over the bytes the recurrence must move (a, b read, x written:
// 24 bytes per complex step when time varying, 16 when time invariant), next
// to what a device-to-device copy reaches on the same buffers.
static void op_scan_large(void) {
    NEED(scan_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    const int B = 16, L = 16384, N = 64;
    const int64_t n = (int64_t)B * L * N;
    for (int fl = 0; fl < 4; fl++) {
        int64_t na = fl & LRA_SCAN_TIME_INVARIANT ? N : n;
        pair a = in_from(h_polar(na, 950 + fl, 0.5, 0.999), 2 * na, "a");
        pair b = in_rand(2 * n, 960 + fl, -1, 1, "b"), x = out_nan(2 * n, "x");
        c->scan_fwd(c, x.h, a.h, b.h, NULL, B, L, N, fl);
        g->scan_fwd(g, x.d, a.d, b.d, NULL, B, L, N, fl);
        g->sync(g);
        double t0 = t_seconds();
        for (int r = 0; r < 5; r++) g->scan_fwd(g, x.d, a.d, b.d, NULL, B, L, N, fl);
        g->sync(g);
        double dt = (t_seconds() - t0) / 5, bytes = (double)n * (na == n ? 24 : 16);
        // the bound: a device copy of b into x (8 bytes per complex step read, 8 written)
        t0 = t_seconds();
        for (int r = 0; r < 5; r++) g->copy(g, x.d, b.d, RB(2 * n));
        g->sync(g);
        double copy_bw = 16.0 * (double)n / ((t_seconds() - t0) / 5);
        printf("    scan_fwd B=%d L=%d N=%d flags %d: %.3f ms, %.0f GB/s (device copy %.0f GB/s: %.2fx the bound)\n", B,
               L, N, fl, dt * 1e3, bytes / dt / 1e9, copy_bw / 1e9, copy_bw / (bytes / dt));
        g->scan_fwd(g, x.d, a.d, b.d, NULL, B, L, N, fl);
        cmp_pair(tag("scan_fwd large flags %d", fl), x, SCAN_TOL);
        d_done();
    }
}

static void op_scan_bwd(void) {
    NEED(scan_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_SCAN; s++) {
        for (int var = 0; var < 2; var++) {  // every gradient; db only
            int B = scan_cases[s].B, L = scan_cases[s].L, N = scan_cases[s].N, fl = scan_cases[s].flags;
            int ti = fl & LRA_SCAN_TIME_INVARIANT, has_x0 = scan_cases[s].x0;
            int64_t n = (int64_t)B * L * N, na = ti ? N : n, n0 = (int64_t)B * N;
            pair a = in_from(h_polar(na, 330 + s, 0.5, 0.99), 2 * na, "a");
            lra_real *hb = h_rand(2 * n, 340 + s, -1, 1);
            pair x0 = has_x0 ? in_rand(2 * n0, 350 + s, -1, 1, "x0") : none;
            lra_real *hx = h_nan(2 * n);
            c->scan_fwd(c, hx, a.h, hb, x0.h, B, L, N, fl);  // the saved forward output
            pair x = in_from(hx, 2 * n, "x"), dx = in_rand(2 * n, 360 + s, -1, 1, "dx");
            pair da = var == 0 ? out_rand(2 * na, 370 + s, -1, 1, "da") : none;
            pair db = out_rand(2 * n, 380 + s, -1, 1, "db");
            pair dx0 = var == 0 && has_x0 ? out_rand(2 * n0, 390 + s, -1, 1, "dx0") : none;
            c->scan_bwd(c, da.h, db.h, dx0.h, dx.h, x.h, a.h, x0.h, B, L, N, fl);
            g->scan_bwd(g, da.d, db.d, dx0.d, dx.d, x.d, a.d, x0.d, B, L, N, fl);
            const char *t = tag("B=%d L=%d N=%d flags %d x0 %d", B, L, N, fl, has_x0);
            if (da.h) cmp_pair(tag("scan_bwd da %s", t), da, ti ? 1e-4 : SCAN_TOL);
            cmp_pair(tag("scan_bwd db %s", t), db, SCAN_TOL);
            if (dx0.h) cmp_pair(tag("scan_bwd dx0 %s", t), dx0, SCAN_TOL);
            d_done();
        }
    }
}

// ---- SSM kernel helpers ----------------------------------------------------------------------
// exp(l w) in float carries a relative error of about u |l Re w|, which grows
// with l up to L = 4096: 1e-4.

#define VANDER_TOL 1e-4

static const struct { int H, N, L; } vander_cases[] = { { 1, 1, 1 }, { 3, 4, 17 }, { 2, 64, 1000 }, { 5, 7, 4096 } };
#define N_VANDER ((int)(sizeof vander_cases / sizeof vander_cases[0]))

// w (n)c with Re w in [-0.01, -1e-4) (decaying), Im w in [-100, 100)
static lra_real *h_ssm_w(int64_t n, uint64_t seed) {
    lra_real *w = h_nan(2 * n);
    for (int64_t i = 0; i < n; i++) {
        w[2 * i] = (lra_real)(-1e-4 - 0.01 * lra_rand_uniform(seed, 2 * (uint64_t)i));
        w[2 * i + 1] = (lra_real)(100.0 * (2.0 * lra_rand_uniform(seed, 2 * (uint64_t)i + 1) - 1.0));
    }
    return w;
}

static void op_vandermonde_fwd(void) {
    NEED(vandermonde_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_VANDER; s++) {
        int H = vander_cases[s].H, N = vander_cases[s].N, L = vander_cases[s].L;
        int64_t hn = (int64_t)H * N;
        pair cc = in_rand(2 * hn, 400 + s, -1, 1, "c"), w = in_from(h_ssm_w(hn, 410 + s), 2 * hn, "w");
        pair K = out_nan((int64_t)H * L, "K");
        c->vandermonde_fwd(c, K.h, cc.h, w.h, H, N, L);
        g->vandermonde_fwd(g, K.d, cc.d, w.d, H, N, L);
        cmp_pair(tag("vandermonde_fwd H=%d N=%d L=%d", H, N, L), K, VANDER_TOL);
        d_done();
    }
}

static void op_vandermonde_bwd(void) {
    NEED(vandermonde_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_VANDER; s++) {
        for (int var = 0; var < 3; var++) {  // both, dc only, dw only
            int H = vander_cases[s].H, N = vander_cases[s].N, L = vander_cases[s].L;
            int64_t hn = (int64_t)H * N;
            pair cc = in_rand(2 * hn, 420 + s, -1, 1, "c"), w = in_from(h_ssm_w(hn, 430 + s), 2 * hn, "w");
            pair dK = in_rand((int64_t)H * L, 440 + s, -1, 1, "dK");
            pair dc = var != 2 ? out_rand(2 * hn, 450 + s, -1, 1, "dc") : none;
            pair dw = var != 1 ? out_rand(2 * hn, 460 + s, -1, 1, "dw") : none;
            c->vandermonde_bwd(c, dc.h, dw.h, dK.h, cc.h, w.h, H, N, L);
            g->vandermonde_bwd(g, dc.d, dw.d, dK.d, cc.d, w.d, H, N, L);
            if (dc.h) cmp_pair(tag("vandermonde_bwd dc H=%d N=%d L=%d", H, N, L), dc, VANDER_TOL);
            if (dw.h) cmp_pair(tag("vandermonde_bwd dw H=%d N=%d L=%d", H, N, L), dw, VANDER_TOL);
            d_done();
        }
    }
}

// ---- S4 DPLR kernel -------------------------------------------------------------------
// Cauchy sums in double on both sides; the transforms of length Lk run in
// float: the tolerance of the long Vandermonde sums.

static const struct { int H, S, Nc, CH, Lk, L, dt_exp; } s4k_cases[] = {
    { 1, 1, 1, 1, 1, 1, 0 }, { 4, 2, 3, 2, 16, 11, 1 }, { 8, 1, 32, 2, 1024, 1000, 0 }, { 6, 6, 4, 1, 4097, 4000, 0 },
};
#define N_S4K ((int)(sizeof s4k_cases / sizeof s4k_cases[0]))

// S4-like parameters: dt in [0.001, 0.1] (softplus^-1 or log), A_real near
// log 0.5, A_imag in [0.2, 50), P, B, C in [-1, 1)^2
static void s4k_inputs(pair *in, int s, uint64_t seed) {
    int H = s4k_cases[s].H, S = s4k_cases[s].S, Nc = s4k_cases[s].Nc, CH = s4k_cases[s].CH;
    int64_t sn = (int64_t)S * Nc;
    lra_real *dt = h_nan(H);
    for (int h = 0; h < H; h++) {
        double d = exp(log(0.001) + log(100.0) * lra_rand_uniform(seed, (uint64_t)h));
        dt[h] = (lra_real)(s4k_cases[s].dt_exp ? log(d) : log(expm1(d)));
    }
    in[0] = in_from(dt, H, "inv_dt");
    in[1] = in_rand(sn, seed + 1, log(0.5) - 0.3, log(0.5) + 0.3, "A_real");
    in[2] = in_rand(sn, seed + 2, 0.2, 50, "A_imag");
    in[3] = in_rand(2 * sn, seed + 3, -1, 1, "P");
    in[4] = in_rand(2 * sn, seed + 4, -1, 1, "B");
    in[5] = in_rand(2 * (int64_t)CH * H * Nc, seed + 5, -1, 1, "C");
}

static void op_s4_kernel_fwd(void) {
    NEED(s4_kernel_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_S4K; s++) {
        int H = s4k_cases[s].H, S = s4k_cases[s].S, Nc = s4k_cases[s].Nc, CH = s4k_cases[s].CH;
        int Lk = s4k_cases[s].Lk, L = s4k_cases[s].L, de = s4k_cases[s].dt_exp;
        pair in[6];
        s4k_inputs(in, s, 500 + 10 * s);
        pair K = out_nan((int64_t)H * CH * L, "K");
        c->s4_kernel_fwd(c, K.h, in[0].h, in[1].h, in[2].h, in[3].h, in[4].h, in[5].h, H, S, Nc, CH, Lk, L, de);
        g->s4_kernel_fwd(g, K.d, in[0].d, in[1].d, in[2].d, in[3].d, in[4].d, in[5].d, H, S, Nc, CH, Lk, L, de);
        cmp_pair(tag("s4_kernel_fwd H=%d S=%d Nc=%d CH=%d Lk=%d L=%d", H, S, Nc, CH, Lk, L), K, VANDER_TOL);
        d_done();
    }
}

static void op_s4_kernel_bwd(void) {
    NEED(s4_kernel_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const char *const names[6] = { "dinv_dt", "dA_real", "dA_imag", "dP", "dB", "dC" };
    for (int s = 0; s < N_S4K; s++) {
        for (int var = 0; var < 2; var++) {  // all gradients; only dC and dA_imag
            int H = s4k_cases[s].H, S = s4k_cases[s].S, Nc = s4k_cases[s].Nc, CH = s4k_cases[s].CH;
            int Lk = s4k_cases[s].Lk, L = s4k_cases[s].L, de = s4k_cases[s].dt_exp;
            int64_t sn = (int64_t)S * Nc, n[6] = { H, sn, sn, 2 * sn, 2 * sn, 2 * (int64_t)CH * H * Nc };
            pair in[6], d[6];
            s4k_inputs(in, s, 600 + 10 * s);
            pair dK = in_rand((int64_t)H * CH * L, 690 + s, -1, 1, "dK");
            for (int i = 0; i < 6; i++)
                d[i] = var == 0 || i == 2 || i == 5 ? out_rand(n[i], 700 + 10 * s + i, -1, 1, names[i]) : none;
            c->s4_kernel_bwd(c, d[0].h, d[1].h, d[2].h, d[3].h, d[4].h, d[5].h, dK.h, in[0].h, in[1].h, in[2].h,
                             in[3].h, in[4].h, in[5].h, H, S, Nc, CH, Lk, L, de);
            g->s4_kernel_bwd(g, d[0].d, d[1].d, d[2].d, d[3].d, d[4].d, d[5].d, dK.d, in[0].d, in[1].d, in[2].d,
                             in[3].d, in[4].d, in[5].d, H, S, Nc, CH, Lk, L, de);
            for (int i = 0; i < 6; i++)
                if (d[i].h)
                    cmp_pair(tag("s4_kernel_bwd %s H=%d S=%d Nc=%d CH=%d Lk=%d L=%d", names[i], H, S, Nc, CH, Lk, L),
                             d[i], VANDER_TOL);
            d_done();
        }
    }
}

// ---- S4D discretisation and diagonal SSM step ------------------------------------
#define SSM_TOL 1e-5
static const struct { int H, S, Nc, CH, bilinear, dt_exp; } s4d_cases[] = {
    { 1, 1, 1, 1, 0, 0 }, { 8, 1, 32, 2, 1, 0 }, { 64, 64, 16, 1, 0, 1 }, { 6, 3, 7, 2, 1, 1 } };
#define N_S4D ((int)(sizeof s4d_cases / sizeof s4d_cases[0]))

static void op_s4d_discretize_fwd(void) {
    NEED(s4d_discretize_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_S4D; s++) {
        int H = s4d_cases[s].H, S = s4d_cases[s].S, Nc = s4d_cases[s].Nc, CH = s4d_cases[s].CH;
        int64_t no = 2 * (int64_t)H * CH * Nc;
        pair dt = in_rand(H, 700 + s, -7, -0.5, "inv_dt"), ar = in_rand((int64_t)S * Nc, 710 + s, -1.6, 0.4, "A_real");
        pair ai = in_rand((int64_t)S * Nc, 720 + s, 0, 30, "A_imag"), b = in_rand(2 * (int64_t)S * Nc, 730 + s, -1, 1, "B");
        pair cc = in_rand(2 * (int64_t)CH * H * Nc, 740 + s, -1, 1, "C");
        pair w = out_nan(no, "w"), coef = out_nan(no, "coef");
        c->s4d_discretize_fwd(c, w.h, coef.h, dt.h, ar.h, ai.h, b.h, cc.h, H, S, Nc, CH, s4d_cases[s].bilinear, s4d_cases[s].dt_exp);
        g->s4d_discretize_fwd(g, w.d, coef.d, dt.d, ar.d, ai.d, b.d, cc.d, H, S, Nc, CH, s4d_cases[s].bilinear, s4d_cases[s].dt_exp);
        cmp_pair(tag("s4d_discretize_fwd w case %d", s), w, SSM_TOL);
        cmp_pair(tag("s4d_discretize_fwd coef case %d", s), coef, SSM_TOL);
        d_done();
    }
}

static void op_s4d_discretize_bwd(void) {
    NEED(s4d_discretize_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_S4D; s++) {
        int H = s4d_cases[s].H, S = s4d_cases[s].S, Nc = s4d_cases[s].Nc, CH = s4d_cases[s].CH;
        int64_t no = 2 * (int64_t)H * CH * Nc;
        pair dt = in_rand(H, 750 + s, -7, -0.5, "inv_dt"), ar = in_rand((int64_t)S * Nc, 760 + s, -1.6, 0.4, "A_real");
        pair ai = in_rand((int64_t)S * Nc, 770 + s, 0, 30, "A_imag"), b = in_rand(2 * (int64_t)S * Nc, 780 + s, -1, 1, "B");
        pair cc = in_rand(2 * (int64_t)CH * H * Nc, 790 + s, -1, 1, "C");
        pair dw = in_rand(no, 800 + s, -1, 1, "dw"), dcoef = in_rand(no, 810 + s, -1, 1, "dcoef");
        pair gdt = out_rand(H, 820 + s, -1, 1, "dinv_dt"), gar = out_rand((int64_t)S * Nc, 830 + s, -1, 1, "dA_real");
        pair gai = out_rand((int64_t)S * Nc, 840 + s, -1, 1, "dA_imag"), gb = out_rand(2 * (int64_t)S * Nc, 850 + s, -1, 1, "dB");
        pair gc = out_rand(2 * (int64_t)CH * H * Nc, 860 + s, -1, 1, "dC");
        c->s4d_discretize_bwd(c, gdt.h, gar.h, gai.h, gb.h, gc.h, dw.h, dcoef.h, dt.h, ar.h, ai.h, b.h, cc.h, H, S, Nc, CH,
                              s4d_cases[s].bilinear, s4d_cases[s].dt_exp);
        g->s4d_discretize_bwd(g, gdt.d, gar.d, gai.d, gb.d, gc.d, dw.d, dcoef.d, dt.d, ar.d, ai.d, b.d, cc.d, H, S, Nc, CH,
                              s4d_cases[s].bilinear, s4d_cases[s].dt_exp);
        cmp_pair(tag("s4d_discretize_bwd dinv_dt case %d", s), gdt, SSM_TOL);
        cmp_pair(tag("s4d_discretize_bwd dA_real case %d", s), gar, SSM_TOL);
        cmp_pair(tag("s4d_discretize_bwd dA_imag case %d", s), gai, SSM_TOL);
        cmp_pair(tag("s4d_discretize_bwd dB case %d", s), gb, SSM_TOL);
        cmp_pair(tag("s4d_discretize_bwd dC case %d", s), gc, SSM_TOL);
        d_done();
    }
}

static void op_diag_ssm_step(void) {
    NEED(diag_ssm_step);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const struct { int B, R, N; } cases[] = { { 1, 1, 1 }, { 16, 256, 32 }, { 3, 7, 5 } };
    for (int s = 0; s < 3; s++) {
        int B = cases[s].B, R = cases[s].R, N = cases[s].N;
        pair st = out_rand(2 * (int64_t)B * R * N, 870 + s, -1, 1, "state"), z = in_rand(2 * (int64_t)R * N, 880 + s, -0.7, 0.7, "z");
        pair cf = in_rand(2 * (int64_t)R * N, 890 + s, -1, 1, "coef"), u = in_rand((int64_t)B * R, 900 + s, -1, 1, "u");
        pair y = out_nan((int64_t)B * R, "y");
        c->diag_ssm_step(c, y.h, st.h, u.h, z.h, cf.h, B, R, N);
        g->diag_ssm_step(g, y.d, st.d, u.d, z.d, cf.d, B, R, N);
        cmp_pair(tag("diag_ssm_step y B=%d R=%d N=%d", B, R, N), y, SSM_TOL);
        cmp_pair(tag("diag_ssm_step state B=%d R=%d N=%d", B, R, N), st, SSM_TOL);
        d_done();
    }
}

// ---- S5 discretisation ---------------------------------------------------------------
static const struct { int Pc, H, bilinear, clip; } s5_cases[] = {
    { 1, 1, 0, 0 }, { 16, 64, 1, 0 }, { 128, 128, 0, 1 }, { 7, 5, 1, 1 } };
#define N_S5 ((int)(sizeof s5_cases / sizeof s5_cases[0]))

static void s5_inputs(pair *in, int s, uint64_t seed) {
    int Pc = s5_cases[s].Pc, H = s5_cases[s].H;
    in[0] = in_rand(Pc, seed, -1.5, 0.2, "Lambda_re");
    in[1] = in_rand(Pc, seed + 1, -20, 20, "Lambda_im");
    in[2] = in_rand(Pc, seed + 2, -7, -0.7, "log_step");
    in[3] = in_rand(2 * (int64_t)Pc * H, seed + 3, -1, 1, "B");
}

static void op_s5_discretize_fwd(void) {
    NEED(s5_discretize_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_S5; s++) {
        int Pc = s5_cases[s].Pc, H = s5_cases[s].H, bl = s5_cases[s].bilinear, cl = s5_cases[s].clip;
        pair in[4];
        s5_inputs(in, s, 900 + 10 * s);
        pair a = out_nan(2 * (int64_t)Pc, "abar"), b = out_nan(2 * (int64_t)Pc * H, "bbar");
        c->s5_discretize_fwd(c, a.h, b.h, in[0].h, in[1].h, in[2].h, in[3].h, Pc, H, bl, cl);
        g->s5_discretize_fwd(g, a.d, b.d, in[0].d, in[1].d, in[2].d, in[3].d, Pc, H, bl, cl);
        cmp_pair(tag("s5_discretize_fwd abar case %d", s), a, SSM_TOL);
        cmp_pair(tag("s5_discretize_fwd bbar case %d", s), b, SSM_TOL);
        d_done();
    }
}

static void op_s5_discretize_bwd(void) {
    NEED(s5_discretize_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const char *const names[4] = { "dLambda_re", "dLambda_im", "dlog_step", "dB" };
    for (int s = 0; s < N_S5; s++) {
        int Pc = s5_cases[s].Pc, H = s5_cases[s].H, bl = s5_cases[s].bilinear, cl = s5_cases[s].clip;
        int64_t n[4] = { Pc, Pc, Pc, 2 * (int64_t)Pc * H };
        pair in[4], d[4];
        s5_inputs(in, s, 950 + 10 * s);
        pair da = in_rand(2 * (int64_t)Pc, 990 + s, -1, 1, "dabar"), db = in_rand(2 * (int64_t)Pc * H, 995 + s, -1, 1, "dbbar");
        for (int i = 0; i < 4; i++) d[i] = out_rand(n[i], 1000 + 10 * s + i, -1, 1, names[i]);
        c->s5_discretize_bwd(c, d[0].h, d[1].h, d[2].h, d[3].h, da.h, db.h, in[0].h, in[1].h, in[2].h, in[3].h, Pc, H, bl, cl);
        g->s5_discretize_bwd(g, d[0].d, d[1].d, d[2].d, d[3].d, da.d, db.d, in[0].d, in[1].d, in[2].d, in[3].d, Pc, H, bl, cl);
        for (int i = 0; i < 4; i++) cmp_pair(tag("s5_discretize_bwd %s case %d", names[i], s), d[i], SSM_TOL);
        d_done();
    }
}

static const int64_t cplx_n[] = { 1, 7, 1001, (1 << 20) + 3 };
#define N_CPLX ((int)(sizeof cplx_n / sizeof cplx_n[0]))

// z (n)c with Re z in [-3, 1), Im z in [-20, 20)
static lra_real *h_cexp_arg(int64_t n, uint64_t seed) {
    lra_real *z = h_nan(2 * n);
    for (int64_t i = 0; i < n; i++) {
        z[2 * i] = (lra_real)(-3.0 + 4.0 * lra_rand_uniform(seed, 2 * (uint64_t)i));
        z[2 * i + 1] = (lra_real)(20.0 * (2.0 * lra_rand_uniform(seed, 2 * (uint64_t)i + 1) - 1.0));
    }
    return z;
}

static void op_cexp(void) {
    NEED(cexp);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_CPLX; s++) {
        int64_t n = cplx_n[s];
        lra_real *hz = h_cexp_arg(n, 470 + s);
        pair z = in_from(hz, 2 * n, "z"), out = out_nan(2 * n, "out");
        pair z2 = { h_cexp_arg(n, 470 + s), NULL, 2 * n };  // in place
        z2.d = d_put(z2.h, RB(2 * n), 0, "z2");
        c->cexp(c, out.h, z.h, n);
        g->cexp(g, out.d, z.d, n);
        cmp_pair(tag("cexp n=%lld", (long long)n), out, TOL);
        c->cexp(c, z2.h, z2.h, n);
        g->cexp(g, z2.d, z2.d, n);
        cmp_pair(tag("cexp in place n=%lld", (long long)n), z2, TOL);
        d_done();
    }
}

static void op_cexp_bwd(void) {
    NEED(cexp_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_CPLX; s++) {
        int64_t n = cplx_n[s];
        pair z = in_from(h_cexp_arg(n, 480 + s), 2 * n, "z"), dout = in_rand(2 * n, 490 + s, -1, 1, "dout");
        pair dz = out_rand(2 * n, 500 + s, -1, 1, "dz");
        c->cexp_bwd(c, dz.h, dout.h, z.h, n);
        g->cexp_bwd(g, dz.d, dout.d, z.d, n);
        cmp_pair(tag("cexp_bwd n=%lld", (long long)n), dz, TOL);
        d_done();
    }
}

static void op_cmul(void) {
    NEED(cmul);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_CPLX; s++) {
        int64_t n = cplx_n[s];
        pair a = in_rand(2 * n, 510 + s, -2, 2, "a"), b = in_rand(2 * n, 520 + s, -2, 2, "b");
        pair out = out_nan(2 * n, "out"), a2 = out_rand(2 * n, 510 + s, -2, 2, "a2");
        c->cmul(c, out.h, a.h, b.h, n);
        g->cmul(g, out.d, a.d, b.d, n);
        cmp_pair(tag("cmul n=%lld", (long long)n), out, TOL);
        c->cmul(c, a2.h, a2.h, b.h, n);
        g->cmul(g, a2.d, a2.d, b.d, n);
        c->cmul(c, a2.h, b.h, a2.h, n);
        g->cmul(g, a2.d, b.d, a2.d, n);
        cmp_pair(tag("cmul in place n=%lld", (long long)n), a2, TOL);
        d_done();
    }
}

static void op_cmul_bwd(void) {
    NEED(cmul_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_CPLX; s++) {
        for (int var = 0; var < 3; var++) {
            int64_t n = cplx_n[s];
            pair a = in_rand(2 * n, 530 + s, -2, 2, "a"), b = in_rand(2 * n, 540 + s, -2, 2, "b");
            pair dout = in_rand(2 * n, 550 + s, -1, 1, "dout");
            pair da = var != 2 ? out_rand(2 * n, 560 + s, -1, 1, "da") : none;
            pair db = var != 1 ? out_rand(2 * n, 570 + s, -1, 1, "db") : none;
            c->cmul_bwd(c, da.h, db.h, dout.h, a.h, b.h, n);
            g->cmul_bwd(g, da.d, db.d, dout.d, a.d, b.d, n);
            if (da.h) cmp_pair(tag("cmul_bwd da n=%lld", (long long)n), da, TOL);
            if (db.h) cmp_pair(tag("cmul_bwd db n=%lld", (long long)n), db, TOL);
            d_done();
        }
    }
}

// ---- attention ----------------------------------------------------------------------------------
// Forward: probabilities times values summed over up to L keys in float: 2e-5.
// Backward: D_i = dO_i.O_i and dP - D_i cancel, and dK, dV sum over L queries: 1e-4.

#define ATT_FWD_TOL 2e-5
#define ATT_BWD_TOL 1e-4

static const struct {
    int   B, NH, L, Dh;
    int   mask;  // 0: none, 1: padded tails, 2: padded tails and batch element 0 all padding
    int   causal;
    float p;
} att_cases[] = {
    { 1, 1, 1, 1, 0, 0, 0.0f },      { 2, 3, 17, 8, 1, 0, 0.0f },    { 2, 2, 33, 16, 1, 1, 0.0f },
    { 2, 2, 65, 32, 2, 0, 0.1f },    { 2, 4, 130, 64, 1, 1, 0.2f },  { 1, 1, 200, 8, 0, 1, 0.0f },
    { 3, 2, 70, 24, 2, 1, 0.0f },    { 1, 2, 300, 128, 2, 0, 0.1f }, { 2, 2, 257, 64, 0, 0, 0.0f },
    { 2, 1, 129, 128, 1, 1, 0.0f },
};
#define N_ATT ((int)(sizeof att_cases / sizeof att_cases[0]))

// mask (B, L): batch element b keeps L - (3b + 1) mod L real tokens (at least 1)
static uint8_t *h_att_mask(int B, int L, int kind) {
    uint8_t *m = h_mem((size_t)B * L);
    for (int b = 0; b < B; b++) {
        int real = L - (3 * b + 1) % L;
        if (kind == 2 && b == 0) real = 0;
        for (int t = 0; t < L; t++) m[(int64_t)b * L + t] = t < real;
    }
    return m;
}

static void op_attention_fwd(void) {
    NEED(attention_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_ATT; s++) {
        int B = att_cases[s].B, NH = att_cases[s].NH, L = att_cases[s].L, Dh = att_cases[s].Dh;
        int causal = att_cases[s].causal;
        lra_real p = att_cases[s].p, scale = (lra_real)(1.0 / sqrt((double)Dh));
        int64_t n = (int64_t)B * NH * L * Dh, nl = (int64_t)B * NH * L;
        pair q = in_rand(n, 600 + s, -2, 2, "q"), k = in_rand(n, 610 + s, -2, 2, "k");
        pair v = in_rand(n, 620 + s, -1, 1, "v");
        uint8_t *hm = att_cases[s].mask ? h_att_mask(B, L, att_cases[s].mask) : NULL;
        uint8_t *dm = hm ? in_bytes(hm, (size_t)B * L, "mask") : NULL;
        pair out = out_nan(n, "out"), lse = out_nan(nl, "lse");
        c->attention_fwd(c, out.h, lse.h, q.h, k.h, v.h, hm, B, NH, L, Dh, scale, causal, p, 77);
        g->attention_fwd(g, out.d, lse.d, q.d, k.d, v.d, dm, B, NH, L, Dh, scale, causal, p, 77);
        const char *t = tag("B=%d NH=%d L=%d Dh=%d mask %d causal %d p %g", B, NH, L, Dh, att_cases[s].mask, causal,
                            (double)p);
        cmp_pair(tag("attention_fwd out %s", t), out, ATT_FWD_TOL);
        cmp_pair(tag("attention_fwd lse %s", t), lse, ATT_FWD_TOL);
        d_done();
    }
}

static void op_attention_bwd(void) {
    NEED(attention_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_ATT; s++) {
        for (int var = 0; var < 2; var++) {  // every gradient; dk and dv only
            int B = att_cases[s].B, NH = att_cases[s].NH, L = att_cases[s].L, Dh = att_cases[s].Dh;
            int causal = att_cases[s].causal;
            lra_real p = att_cases[s].p, scale = (lra_real)(1.0 / sqrt((double)Dh));
            int64_t n = (int64_t)B * NH * L * Dh, nl = (int64_t)B * NH * L;
            pair q = in_rand(n, 630 + s, -2, 2, "q"), k = in_rand(n, 640 + s, -2, 2, "k");
            pair v = in_rand(n, 650 + s, -1, 1, "v"), dout = in_rand(n, 660 + s, -1, 1, "dout");
            uint8_t *hm = att_cases[s].mask ? h_att_mask(B, L, att_cases[s].mask) : NULL;
            uint8_t *dm = hm ? in_bytes(hm, (size_t)B * L, "mask") : NULL;
            lra_real *ho = h_nan(n), *hl = h_nan(nl);
            c->attention_fwd(c, ho, hl, q.h, k.h, v.h, hm, B, NH, L, Dh, scale, causal, p, 91);
            pair out = in_from(ho, n, "out"), lse = in_from(hl, nl, "lse");
            pair dq = var == 0 ? out_rand(n, 670 + s, -1, 1, "dq") : none;
            pair dk = out_rand(n, 680 + s, -1, 1, "dk"), dv = out_rand(n, 690 + s, -1, 1, "dv");
            c->attention_bwd(c, dq.h, dk.h, dv.h, dout.h, out.h, lse.h, q.h, k.h, v.h, hm, B, NH, L, Dh, scale,
                             causal, p, 91);
            g->attention_bwd(g, dq.d, dk.d, dv.d, dout.d, out.d, lse.d, q.d, k.d, v.d, dm, B, NH, L, Dh, scale,
                             causal, p, 91);
            const char *t = tag("B=%d NH=%d L=%d Dh=%d mask %d causal %d p %g", B, NH, L, Dh, att_cases[s].mask,
                                causal, (double)p);
            if (dq.h) cmp_pair(tag("attention_bwd dq %s", t), dq, ATT_BWD_TOL);
            cmp_pair(tag("attention_bwd dk %s", t), dk, ATT_BWD_TOL);
            cmp_pair(tag("attention_bwd dv %s", t), dv, ATT_BWD_TOL);
            d_done();
        }
    }
}

// ---- normalisation ---------------------------------------------------------------------------
// Backward: the GPU reduces over C (and dw, db over R) in a different order,
// and dinp = rstd (g - mean(g) - xhat mean(g xhat)) cancels: 5e-5.

#define NORM_BWD_TOL 5e-5

static const shape2 norm_shapes[] = { { 1, 1 }, { 7, 13 }, { 1000, 64 }, { 3, 4097 }, { 4097, 3 } };
#define N_NORM ((int)(sizeof norm_shapes / sizeof norm_shapes[0]))

static void op_layernorm_fwd(void) {
    NEED(layernorm_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_NORM; s++) {
        for (int affine = 0; affine < 2; affine++) {
            int64_t R = norm_shapes[s].R, n = R * norm_shapes[s].C;
            int C = norm_shapes[s].C;
            pair x = in_rand(n, 700 + s, 2, 4, "inp");  // offset mean: catches E[x^2] - E[x]^2
            pair w = affine ? in_rand(C, 710 + s, 0.5, 1.5, "w") : none;
            pair b = affine ? in_rand(C, 720 + s, -1, 1, "b") : none;
            pair out = out_nan(n, "out"), mean = out_nan(R, "mean"), rstd = out_nan(R, "rstd");
            c->layernorm_fwd(c, out.h, mean.h, rstd.h, x.h, w.h, b.h, R, C, (lra_real)1e-5);
            g->layernorm_fwd(g, out.d, mean.d, rstd.d, x.d, w.d, b.d, R, C, (lra_real)1e-5);
            const char *t = tag("R=%lld C=%d affine %d", (long long)R, C, affine);
            cmp_pair(tag("layernorm_fwd out %s", t), out, TOL);
            cmp_pair(tag("layernorm_fwd mean %s", t), mean, TOL);
            cmp_pair(tag("layernorm_fwd rstd %s", t), rstd, TOL);
            d_done();
        }
    }
}

static void op_layernorm_bwd(void) {
    NEED(layernorm_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_NORM; s++) {
        for (int var = 0; var < 3; var++) {  // affine, all gradients; affine, dinp only; no affine
            int64_t R = norm_shapes[s].R, n = R * norm_shapes[s].C;
            int C = norm_shapes[s].C, affine = var != 2;
            pair x = in_rand(n, 730 + s, 2, 4, "inp"), dout = in_rand(n, 740 + s, -1, 1, "dout");
            pair w = affine ? in_rand(C, 750 + s, 0.5, 1.5, "w") : none;
            lra_real *hb = affine ? h_rand(C, 760 + s, -1, 1) : NULL;
            lra_real *ho = h_nan(n), *hmean = h_nan(R), *hrstd = h_nan(R);
            c->layernorm_fwd(c, ho, hmean, hrstd, x.h, w.h, hb, R, C, (lra_real)1e-5);
            pair mean = in_from(hmean, R, "mean"), rstd = in_from(hrstd, R, "rstd");
            pair dinp = out_rand(n, 770 + s, -1, 1, "dinp");
            pair dw = var == 0 ? out_rand(C, 780 + s, -1, 1, "dw") : none;
            pair db = var == 0 ? out_rand(C, 790 + s, -1, 1, "db") : none;
            c->layernorm_bwd(c, dinp.h, dw.h, db.h, dout.h, x.h, w.h, mean.h, rstd.h, R, C);
            g->layernorm_bwd(g, dinp.d, dw.d, db.d, dout.d, x.d, w.d, mean.d, rstd.d, R, C);
            const char *t = tag("R=%lld C=%d var %d", (long long)R, C, var);
            cmp_pair(tag("layernorm_bwd dinp %s", t), dinp, NORM_BWD_TOL);
            if (dw.h) cmp_pair(tag("layernorm_bwd dw %s", t), dw, NORM_BWD_TOL);
            if (db.h) cmp_pair(tag("layernorm_bwd db %s", t), db, NORM_BWD_TOL);
            d_done();
        }
    }
}

// BatchNorm needs R >= 2 rows for the unbiased running variance.
static const shape2 bn_shapes[] = { { 2, 1 }, { 7, 13 }, { 1000, 64 }, { 4097, 3 }, { 3, 600 } };
#define N_BN ((int)(sizeof bn_shapes / sizeof bn_shapes[0]))

static void op_batchnorm_fwd(void) {
    NEED(batchnorm_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_BN; s++) {
        for (int mode = 0; mode < 4; mode++) {  // training x unbiased_running
            int training = mode & 1, unbiased = mode >> 1;
            int64_t R = bn_shapes[s].R, n = R * bn_shapes[s].C;
            int C = bn_shapes[s].C;
            pair x = in_rand(n, 800 + s, 1, 3, "inp"), w = in_rand(C, 810 + s, 0.5, 1.5, "w");
            pair b = in_rand(C, 820 + s, -1, 1, "b");
            pair out = out_nan(n, "out"), mean = out_nan(C, "mean"), rstd = out_nan(C, "rstd");
            pair rm = out_rand(C, 830 + s, -0.5, 0.5, "running_mean"), rv = out_rand(C, 840 + s, 0.5, 2, "running_var");
            c->batchnorm_fwd(c, out.h, mean.h, rstd.h, rm.h, rv.h, x.h, w.h, b.h, R, C, (lra_real)1e-5,
                             (lra_real)0.1, unbiased, training);
            g->batchnorm_fwd(g, out.d, mean.d, rstd.d, rm.d, rv.d, x.d, w.d, b.d, R, C, (lra_real)1e-5,
                             (lra_real)0.1, unbiased, training);
            const char *t = tag("R=%lld C=%d training %d unbiased %d", (long long)R, C, training, unbiased);
            cmp_pair(tag("batchnorm_fwd out %s", t), out, TOL);
            cmp_pair(tag("batchnorm_fwd mean %s", t), mean, TOL);
            cmp_pair(tag("batchnorm_fwd rstd %s", t), rstd, TOL);
            cmp_pair(tag("batchnorm_fwd running_mean %s", t), rm, TOL);
            cmp_pair(tag("batchnorm_fwd running_var %s", t), rv, TOL);
            d_done();
        }
    }
}

static void op_batchnorm_bwd(void) {
    NEED(batchnorm_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_BN; s++) {
        for (int var = 0; var < 3; var++) {  // training, all; eval, all; training, dinp only
            int training = var != 1;
            int64_t R = bn_shapes[s].R, n = R * bn_shapes[s].C;
            int C = bn_shapes[s].C;
            pair x = in_rand(n, 850 + s, 1, 3, "inp"), w = in_rand(C, 860 + s, 0.5, 1.5, "w");
            pair dout = in_rand(n, 870 + s, -1, 1, "dout");
            lra_real *hb = h_rand(C, 880 + s, -1, 1), *ho = h_nan(n), *hmean = h_nan(C), *hrstd = h_nan(C);
            lra_real *hrm = h_rand(C, 890 + s, -0.5, 0.5), *hrv = h_rand(C, 900 + s, 0.5, 2);
            c->batchnorm_fwd(c, ho, hmean, hrstd, hrm, hrv, x.h, w.h, hb, R, C, (lra_real)1e-5, (lra_real)0.1, 1,
                             training);
            pair mean = in_from(hmean, C, "mean"), rstd = in_from(hrstd, C, "rstd");
            pair dinp = out_rand(n, 910 + s, -1, 1, "dinp");
            pair dw = var != 2 ? out_rand(C, 920 + s, -1, 1, "dw") : none;
            pair db = var != 2 ? out_rand(C, 930 + s, -1, 1, "db") : none;
            c->batchnorm_bwd(c, dinp.h, dw.h, db.h, dout.h, x.h, w.h, mean.h, rstd.h, R, C, training);
            g->batchnorm_bwd(g, dinp.d, dw.d, db.d, dout.d, x.d, w.d, mean.d, rstd.d, R, C, training);
            const char *t = tag("R=%lld C=%d var %d", (long long)R, C, var);
            cmp_pair(tag("batchnorm_bwd dinp %s", t), dinp, NORM_BWD_TOL);
            if (dw.h) cmp_pair(tag("batchnorm_bwd dw %s", t), dw, NORM_BWD_TOL);
            if (db.h) cmp_pair(tag("batchnorm_bwd db %s", t), db, NORM_BWD_TOL);
            d_done();
        }
    }
}

static void op_scalenorm_fwd(void) {
    NEED(scalenorm_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_NORM; s++) {
        int64_t R = norm_shapes[s].R, n = R * norm_shapes[s].C;
        int C = norm_shapes[s].C;
        pair x = in_rand(n, 940 + s, -2, 2, "inp"), gg = in_rand(1, 950 + s, 0.5, 2, "g");
        pair out = out_nan(n, "out"), rstd = out_nan(R, "rstd");
        c->scalenorm_fwd(c, out.h, rstd.h, x.h, gg.h, R, C, (lra_real)1e-5);
        g->scalenorm_fwd(g, out.d, rstd.d, x.d, gg.d, R, C, (lra_real)1e-5);
        cmp_pair(tag("scalenorm_fwd out R=%lld C=%d", (long long)R, C), out, TOL);
        cmp_pair(tag("scalenorm_fwd rstd R=%lld C=%d", (long long)R, C), rstd, TOL);
        d_done();
    }
}

static void op_scalenorm_bwd(void) {
    NEED(scalenorm_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_NORM; s++) {
        for (int var = 0; var < 3; var++) {  // both, dinp only, dg only
            int64_t R = norm_shapes[s].R, n = R * norm_shapes[s].C;
            int C = norm_shapes[s].C;
            pair x = in_rand(n, 960 + s, -2, 2, "inp"), gg = in_rand(1, 970 + s, 0.5, 2, "g");
            pair dout = in_rand(n, 980 + s, -1, 1, "dout");
            lra_real *ho = h_nan(n), *hr = h_nan(R);
            c->scalenorm_fwd(c, ho, hr, x.h, gg.h, R, C, (lra_real)1e-5);
            pair rstd = in_from(hr, R, "rstd");
            pair dinp = var != 2 ? out_rand(n, 990 + s, -1, 1, "dinp") : none;
            pair dg = var != 1 ? out_rand(1, 1000 + s, -1, 1, "dg") : none;
            c->scalenorm_bwd(c, dinp.h, dg.h, dout.h, x.h, gg.h, rstd.h, R, C);
            g->scalenorm_bwd(g, dinp.d, dg.d, dout.d, x.d, gg.d, rstd.d, R, C);
            const char *t = tag("R=%lld C=%d var %d", (long long)R, C, var);
            if (dinp.h) cmp_pair(tag("scalenorm_bwd dinp %s", t), dinp, NORM_BWD_TOL);
            // dg is one sum over all R C products
            if (dg.h) cmp_pair(tag("scalenorm_bwd dg %s", t), dg, 1e-4);
            d_done();
        }
    }
}

// ---- activations ---------------------------------------------------------------------------
// A bulk range and the tails (|x| up to 50: overflow of exp, saturation).

static const lra_real act_tails[] = { -50, -20, -8.5f, -3, -1e-3f, 2e-3f, 0.5f, 3, 8.5f, 20, 50 };
#define N_TAILS ((int64_t)(sizeof act_tails / sizeof act_tails[0]))

static void op_act_fwd(void) {
    NEED(act_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int act = 0; act < LRA_ACT_COUNT; act++) {
        for (int part = 0; part < 2; part++) {
            int64_t n = part ? N_TAILS : 100003;
            lra_real *hx = part ? h_nan(n) : h_rand(n, 1100 + act, -8, 8);
            if (part) memcpy(hx, act_tails, sizeof act_tails);
            pair x = in_from(hx, n, "inp"), out = out_nan(n, "out");
            c->act_fwd(c, out.h, x.h, n, (lra_act)act);
            g->act_fwd(g, out.d, x.d, n, (lra_act)act);
            cmp_pair(tag("act_fwd %s %s", lra_act_names[act], part ? "tails" : "bulk"), out, TOL);
            d_done();
        }
    }
}

static void op_act_bwd(void) {
    NEED(act_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int act = 0; act < LRA_ACT_COUNT; act++) {
        for (int part = 0; part < 2; part++) {
            int64_t n = part ? N_TAILS : 100003;
            lra_real *hx = part ? h_nan(n) : h_rand(n, 1110 + act, -8, 8);
            if (part) memcpy(hx, act_tails, sizeof act_tails);
            pair x = in_from(hx, n, "inp"), dout = in_rand(n, 1120 + act, -1, 1, "dout");
            pair dinp = out_rand(n, 1130 + act, -1, 1, "dinp");
            c->act_bwd(c, dinp.h, dout.h, x.h, n, (lra_act)act);
            g->act_bwd(g, dinp.d, dout.d, x.d, n, (lra_act)act);
            cmp_pair(tag("act_bwd %s %s", lra_act_names[act], part ? "tails" : "bulk"), dinp, TOL);
            d_done();
        }
    }
}

static void op_glu_fwd(void) {
    NEED(glu_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_RC; s++) {
        int64_t R = rc_shapes[s].R, n = R * rc_shapes[s].C;
        int C = rc_shapes[s].C;
        pair x = in_rand(2 * n, 1140 + s, -6, 6, "inp"), out = out_nan(n, "out");
        c->glu_fwd(c, out.h, x.h, R, C);
        g->glu_fwd(g, out.d, x.d, R, C);
        cmp_pair(tag("glu_fwd R=%lld C=%d", (long long)R, C), out, TOL);
        d_done();
    }
}

static void op_glu_bwd(void) {
    NEED(glu_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_RC; s++) {
        int64_t R = rc_shapes[s].R, n = R * rc_shapes[s].C;
        int C = rc_shapes[s].C;
        pair x = in_rand(2 * n, 1150 + s, -6, 6, "inp"), dout = in_rand(n, 1160 + s, -1, 1, "dout");
        pair dinp = out_rand(2 * n, 1170 + s, -1, 1, "dinp");
        c->glu_bwd(c, dinp.h, dout.h, x.h, R, C);
        g->glu_bwd(g, dinp.d, dout.d, x.d, R, C);
        cmp_pair(tag("glu_bwd R=%lld C=%d", (long long)R, C), dinp, TOL);
        d_done();
    }
}

// The masks come from lra_rand_uniform on both sides: any difference in the
// counter formula shows as an O(1) error.
static const struct { int64_t A, M, C; } drop_shapes[] = { { 1, 1, 1 }, { 2, 7, 5 }, { 3, 100, 33 }, { 4, 1000, 64 } };
static const float drop_p[] = { 0.0f, 0.1f, 0.5f };

static void op_dropout_fwd(void) {
    NEED(dropout_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (size_t s = 0; s < sizeof drop_shapes / sizeof drop_shapes[0]; s++)
        for (int pi = 0; pi < 3; pi++)
            for (int tied = 0; tied < 2; tied++) {
                int64_t A = drop_shapes[s].A, M = drop_shapes[s].M, C = drop_shapes[s].C, n = A * M * C;
                lra_real p = drop_p[pi];
                pair x = in_rand(n, 1180 + s, -2, 2, "inp"), out = out_nan(n, "out");
                pair x2 = out_rand(n, 1180 + s, -2, 2, "inp2");  // in place
                c->dropout_fwd(c, out.h, x.h, A, M, C, p, 555, tied);
                g->dropout_fwd(g, out.d, x.d, A, M, C, p, 555, tied);
                c->dropout_fwd(c, x2.h, x2.h, A, M, C, p, 556, tied);
                g->dropout_fwd(g, x2.d, x2.d, A, M, C, p, 556, tied);
                const char *t = tag("(%lld, %lld, %lld) p %g tied %d", (long long)A, (long long)M, (long long)C,
                                    (double)p, tied);
                cmp_pair(tag("dropout_fwd %s", t), out, TOL);
                cmp_pair(tag("dropout_fwd in place %s", t), x2, TOL);
                d_done();
            }
}

static void op_dropout_bwd(void) {
    NEED(dropout_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (size_t s = 0; s < sizeof drop_shapes / sizeof drop_shapes[0]; s++)
        for (int pi = 0; pi < 3; pi++)
            for (int tied = 0; tied < 2; tied++) {
                int64_t A = drop_shapes[s].A, M = drop_shapes[s].M, C = drop_shapes[s].C, n = A * M * C;
                lra_real p = drop_p[pi];
                pair dout = in_rand(n, 1190 + s, -1, 1, "dout"), dinp = out_rand(n, 1200 + s, -1, 1, "dinp");
                c->dropout_bwd(c, dinp.h, dout.h, A, M, C, p, 557, tied);
                g->dropout_bwd(g, dinp.d, dout.d, A, M, C, p, 557, tied);
                cmp_pair(tag("dropout_bwd (%lld, %lld, %lld) p %g tied %d", (long long)A, (long long)M, (long long)C,
                             (double)p, tied),
                         dinp, TOL);
                d_done();
            }
}

// ---- embedding, pooling, loss ----------------------------------------------------------------

static int32_t *h_ints(int64_t n, int V, uint64_t seed) {
    int32_t *t = h_mem(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) t[i] = (int32_t)(lra_rand_bits(seed, (uint64_t)i) % (uint64_t)V);
    return t;
}

static const struct { int V, C; int64_t n; } emb_cases[] = {
    { 1, 1, 1 }, { 10, 7, 33 }, { 1000, 64, 4096 }, { 5, 130, 1000 }, { 300, 8, 200000 }, { 16, 256, 65536 },
};
#define N_EMB ((int)(sizeof emb_cases / sizeof emb_cases[0]))

static void op_embedding_fwd(void) {
    NEED(embedding_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_EMB; s++) {
        int V = emb_cases[s].V, C = emb_cases[s].C;
        int64_t n = emb_cases[s].n;
        int32_t *ht = h_ints(n, V, 1210 + s);
        int32_t *dt = in_bytes(ht, sizeof(int32_t) * (size_t)n, "tokens");
        pair table = in_rand((int64_t)V * C, 1220 + s, -1, 1, "table"), out = out_nan(n * C, "out");
        c->embedding_fwd(c, out.h, ht, table.h, n, C);
        g->embedding_fwd(g, out.d, dt, table.d, n, C);
        cmp_pair(tag("embedding_fwd V=%d C=%d n=%lld", V, C, (long long)n), out, 0);
        d_done();
    }
}

// Repeated tokens: the GPU adds the rows in another order (a GEMM against
// the one-hot matrix for small vocabularies), both in float.
static void op_embedding_bwd(void) {
    NEED(embedding_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_EMB; s++) {
        int V = emb_cases[s].V, C = emb_cases[s].C;
        int64_t n = emb_cases[s].n;
        int32_t *ht = h_ints(n, V, 1230 + s);
        int32_t *dt = in_bytes(ht, sizeof(int32_t) * (size_t)n, "tokens");
        pair dout = in_rand(n * C, 1240 + s, -1, 1, "dout");
        pair dtable = out_rand((int64_t)V * C, 1250 + s, -1, 1, "dtable");
        c->embedding_bwd(c, dtable.h, dout.h, ht, n, C, V);
        g->embedding_bwd(g, dtable.d, dout.d, dt, n, C, V);
        cmp_pair(tag("embedding_bwd V=%d C=%d n=%lld", V, C, (long long)n), dtable, TOL);
        d_done();
    }
}

static const struct { int B, L, C, mask; } pool_cases[] = {
    { 1, 1, 1, 0 }, { 2, 7, 5, 1 }, { 3, 100, 33, 2 }, { 4, 1000, 64, 1 }, { 2, 4096, 3, 0 },
};
#define N_POOL ((int)(sizeof pool_cases / sizeof pool_cases[0]))

static void op_meanpool_fwd(void) {
    NEED(meanpool_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_POOL; s++) {
        int B = pool_cases[s].B, L = pool_cases[s].L, C = pool_cases[s].C;
        uint8_t *hm = pool_cases[s].mask ? h_att_mask(B, L, pool_cases[s].mask) : NULL;
        uint8_t *dm = hm ? in_bytes(hm, (size_t)B * L, "mask") : NULL;
        pair x = in_rand((int64_t)B * L * C, 1260 + s, -2, 2, "inp"), out = out_nan((int64_t)B * C, "out");
        c->meanpool_fwd(c, out.h, x.h, hm, B, L, C);
        g->meanpool_fwd(g, out.d, x.d, dm, B, L, C);
        cmp_pair(tag("meanpool_fwd B=%d L=%d C=%d mask %d", B, L, C, pool_cases[s].mask), out, TOL);
        d_done();
    }
}

static void op_meanpool_bwd(void) {
    NEED(meanpool_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_POOL; s++) {
        int B = pool_cases[s].B, L = pool_cases[s].L, C = pool_cases[s].C;
        uint8_t *hm = pool_cases[s].mask ? h_att_mask(B, L, pool_cases[s].mask) : NULL;
        uint8_t *dm = hm ? in_bytes(hm, (size_t)B * L, "mask") : NULL;
        pair dout = in_rand((int64_t)B * C, 1270 + s, -1, 1, "dout");
        pair dinp = out_rand((int64_t)B * L * C, 1280 + s, -1, 1, "dinp");
        c->meanpool_bwd(c, dinp.h, dout.h, hm, B, L, C);
        g->meanpool_bwd(g, dinp.d, dout.d, dm, B, L, C);
        cmp_pair(tag("meanpool_bwd B=%d L=%d C=%d mask %d", B, L, C, pool_cases[s].mask), dinp, TOL);
        d_done();
    }
}

static const struct { int B, K; } xent_cases[] = { { 1, 2 }, { 7, 10 }, { 33, 1000 }, { 2500, 3 }, { 5, 1 } };
#define N_XENT ((int)(sizeof xent_cases / sizeof xent_cases[0]))

// logits in [-10, 10), example 0 scaled to [-100, 100) (exp overflows in float
// without the max subtracted)
static lra_real *h_logits(int B, int K, uint64_t seed) {
    lra_real *z = h_rand((int64_t)B * K, seed, -10, 10);
    for (int k = 0; k < K; k++) z[k] *= 10;
    return z;
}

static void op_xent_fwd(void) {
    NEED(xent_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_XENT; s++) {
        int B = xent_cases[s].B, K = xent_cases[s].K;
        int64_t n = (int64_t)B * K;
        int32_t *hy = h_ints(B, K, 1290 + s);
        int32_t *dy = in_bytes(hy, sizeof(int32_t) * (size_t)B, "labels");
        pair z = in_from(h_logits(B, K, 1300 + s), n, "logits");
        pair probs = out_nan(n, "probs"), loss = out_nan(B, "loss_per_example");
        double want = c->xent_fwd(c, probs.h, loss.h, z.h, hy, B, K);
        double got = g->xent_fwd(g, probs.d, loss.d, z.d, dy, B, K);
        const char *t = tag("B=%d K=%d", B, K);
        cmp_pair(tag("xent_fwd probs %s", t), probs, TOL);
        cmp_pair(tag("xent_fwd loss_per_example %s", t), loss, TOL);
        // both sum per-example losses computed in double, in example order
        cmp_scalar(tag("xent_fwd mean %s", t), got, want, 1 + fabs(want), 1e-9);
        d_done();
    }
}

static void op_xent_bwd(void) {
    NEED(xent_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_XENT; s++) {
        int B = xent_cases[s].B, K = xent_cases[s].K;
        int64_t n = (int64_t)B * K;
        int32_t *hy = h_ints(B, K, 1310 + s);
        int32_t *dy = in_bytes(hy, sizeof(int32_t) * (size_t)B, "labels");
        lra_real *hp = h_nan(n), *hl = h_nan(B);
        c->xent_fwd(c, hp, hl, h_logits(B, K, 1320 + s), hy, B, K);
        pair probs = in_from(hp, n, "probs"), dz = out_rand(n, 1330 + s, -1, 1, "dlogits");
        c->xent_bwd(c, dz.h, probs.h, hy, B, K, (lra_real)0.7);
        g->xent_bwd(g, dz.d, probs.d, dy, B, K, (lra_real)0.7);
        cmp_pair(tag("xent_bwd B=%d K=%d", B, K), dz, TOL);
        d_done();
    }
}

// ---- optimiser ------------------------------------------------------------------------------

static void op_adamw_step(void) {
    NEED(adamw_step);
    lra_backend *c = t_backend(), *g = t_gpu();
    int64_t n = 10007;
    // [7000, 8000) belongs to no group and must not move; one group is empty
    const lra_param_group groups[] = {
        { 0, 3000, 1e-3f, 0.01f }, { 3000, 4000, 3e-4f, 0.0f }, { 7000, 0, 1.0f, 1.0f }, { 8000, 2007, 1e-2f, 0.1f },
    };
    pair p = out_rand(n, 1400, -1, 1, "params"), m = out_rand(n, 1410, -0.1, 0.1, "m");
    pair v = out_rand(n, 1420, 0, 0.01, "v");
    lra_real *p0 = h_nan(n);
    memcpy(p0, p.h, RB(n));
    static const int64_t steps[] = { 1, 2, 1000 };
    for (int k = 0; k < 3; k++) {
        pair gr = in_rand(n, 1430 + k, -1, 1, "grads");
        c->adamw_step(c, p.h, gr.h, m.h, v.h, groups, 4, 0.9f, 0.999f, 1e-8f, steps[k]);
        g->adamw_step(g, p.d, gr.d, m.d, v.d, groups, 4, 0.9f, 0.999f, 1e-8f, steps[k]);
    }
    cmp_pair("adamw_step params", p, TOL);
    cmp_pair("adamw_step m", m, TOL);
    cmp_pair("adamw_step v", v, TOL);
    lra_real *got = h_nan(n);
    d_get(got, p.d, "params");
    T_CHECK(memcmp(got + 7000, p0 + 7000, RB(1000)) == 0, "parameters outside every group are unchanged");
    d_done();
}

static void op_clip_grad_norm(void) {
    NEED(clip_grad_norm);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const double max_norms[] = { 100, 1e4, 0 };  // clips; below the limit; no limit
    for (int k = 0; k < 3; k++) {
        for (int s = 0; s < N_ELEM; s++) {
            int64_t n = elem_n[s];
            pair gr = out_rand(n, 1440 + s, -1, 1, "grads");
            double want = c->clip_grad_norm(c, gr.h, n, max_norms[k]);
            double got = g->clip_grad_norm(g, gr.d, n, max_norms[k]);
            const char *t = tag("n=%lld max_norm %g", (long long)n, max_norms[k]);
            cmp_scalar(tag("clip_grad_norm norm %s", t), got, want, want, 1e-10);
            cmp_pair(tag("clip_grad_norm grads %s", t), gr, TOL);
            d_done();
        }
    }
}

// ---- LRU parameterisation -----------------------------------------------------------------------
static const struct { int N, H, CH; } lru_cases[] = { { 1, 1, 1 }, { 64, 32, 2 }, { 7, 5, 1 } };
#define N_LRU ((int)(sizeof lru_cases / sizeof lru_cases[0]))

static void lru_inputs(pair *in, int s, uint64_t seed) {
    int N = lru_cases[s].N, H = lru_cases[s].H, CH = lru_cases[s].CH;
    in[0] = in_rand(N, seed, -3, 1, "nu_log");
    in[1] = in_rand(N, seed + 1, -2, 1.8, "theta_log");
    in[2] = in_rand(N, seed + 2, -2, 0, "gamma_log");
    in[3] = in_rand((int64_t)N * H, seed + 3, -1, 1, "B_re");
    in[4] = in_rand((int64_t)N * H, seed + 4, -1, 1, "B_im");
    in[5] = in_rand((int64_t)H * CH * N, seed + 5, -1, 1, "C_re");
    in[6] = in_rand((int64_t)H * CH * N, seed + 6, -1, 1, "C_im");
}

static void op_lru_params_fwd(void) {
    NEED(lru_params_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_LRU; s++) {
        int N = lru_cases[s].N, H = lru_cases[s].H, CH = lru_cases[s].CH;
        pair in[7];
        lru_inputs(in, s, 1200 + 10 * s);
        pair lam = out_nan(2 * (int64_t)N, "lambda"), bw = out_nan(2 * (int64_t)N * H, "Bw");
        pair cw = out_nan(2 * (int64_t)H * CH * N, "Cw");
        c->lru_params_fwd(c, lam.h, bw.h, cw.h, in[0].h, in[1].h, in[2].h, in[3].h, in[4].h, in[5].h, in[6].h, N, H, CH);
        g->lru_params_fwd(g, lam.d, bw.d, cw.d, in[0].d, in[1].d, in[2].d, in[3].d, in[4].d, in[5].d, in[6].d, N, H, CH);
        cmp_pair(tag("lru_params_fwd lambda N=%d H=%d CH=%d", N, H, CH), lam, TOL);
        cmp_pair(tag("lru_params_fwd Bw N=%d H=%d CH=%d", N, H, CH), bw, TOL);
        cmp_pair(tag("lru_params_fwd Cw N=%d H=%d CH=%d", N, H, CH), cw, TOL);
        d_done();
    }
}

static void op_lru_params_bwd(void) {
    NEED(lru_params_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const char *const names[] = { "dnu_log", "dtheta_log", "dgamma_log", "dB_re", "dB_im", "dC_re", "dC_im" };
    for (int s = 0; s < N_LRU; s++) {
        int N = lru_cases[s].N, H = lru_cases[s].H, CH = lru_cases[s].CH;
        int64_t n[7] = { N, N, N, (int64_t)N * H, (int64_t)N * H, (int64_t)H * CH * N, (int64_t)H * CH * N };
        pair in[7], d[7];
        lru_inputs(in, s, 1300 + 10 * s);
        pair dlam = in_rand(2 * (int64_t)N, 1390 + s, -1, 1, "dlambda"), dbw = in_rand(2 * (int64_t)N * H, 1395 + s, -1, 1, "dBw");
        pair dcw = in_rand(2 * (int64_t)H * CH * N, 1398 + s, -1, 1, "dCw");
        for (int i = 0; i < 7; i++) d[i] = out_rand(n[i], 1400 + 10 * s + i, -1, 1, names[i]);
        c->lru_params_bwd(c, d[0].h, d[1].h, d[2].h, d[3].h, d[4].h, d[5].h, d[6].h, dlam.h, dbw.h, dcw.h, in[0].h,
                          in[1].h, in[2].h, in[3].h, in[4].h, N, H, CH);
        g->lru_params_bwd(g, d[0].d, d[1].d, d[2].d, d[3].d, d[4].d, d[5].d, d[6].d, dlam.d, dbw.d, dcw.d, in[0].d,
                          in[1].d, in[2].d, in[3].d, in[4].d, N, H, CH);
        for (int i = 0; i < 7; i++) cmp_pair(tag("lru_params_bwd %s N=%d H=%d CH=%d", names[i], N, H, CH), d[i], TOL);
        d_done();
    }
}

// ---- depthwise causal short convolution ----------------------------------------------------
typedef struct { int B, L, C, K; } dwc_shape;
static const dwc_shape dwc_cases[] = { { 2, 11, 5, 3 }, { 1, 1, 3, 3 }, { 3, 7, 4, 1 }, { 2, 3000, 96, 3 }, { 1, 2, 6, 4 } };
#define N_DWC ((int)(sizeof dwc_cases / sizeof dwc_cases[0]))

static void op_dwconv_fwd(void) {
    NEED(dwconv_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_DWC; s++) {
        for (int var = 0; var < 2; var++) {  // with and without bias
            dwc_shape d = dwc_cases[s];
            int64_t n = (int64_t)d.B * d.L * d.C;
            pair x = in_rand(n, 1500 + s, -2, 2, "x"), w = in_rand((int64_t)d.C * d.K, 1510 + s, -1, 1, "w");
            pair bias = var ? in_rand(d.C, 1520 + s, -1, 1, "bias") : none, y = out_nan(n, "y");
            c->dwconv_fwd(c, y.h, x.h, w.h, bias.h, d.B, d.L, d.C, d.K);
            g->dwconv_fwd(g, y.d, x.d, w.d, bias.d, d.B, d.L, d.C, d.K);
            cmp_pair(tag("dwconv_fwd B=%d L=%d C=%d K=%d bias %d", d.B, d.L, d.C, d.K, var), y, TOL);
            d_done();
        }
    }
}

static void op_dwconv_bwd(void) {
    NEED(dwconv_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_DWC; s++) {
        for (int var = 0; var < 3; var++) {  // all gradients, dx only, dw and dbias only
            dwc_shape d = dwc_cases[s];
            int64_t n = (int64_t)d.B * d.L * d.C, nw = (int64_t)d.C * d.K;
            pair dy = in_rand(n, 1530 + s, -1, 1, "dy"), x = in_rand(n, 1540 + s, -2, 2, "x");
            pair w = in_rand(nw, 1550 + s, -1, 1, "w");
            pair dx = var != 2 ? out_rand(n, 1560 + s, -1, 1, "dx") : none;
            pair dw = var != 1 ? out_rand(nw, 1570 + s, -1, 1, "dw") : none;
            pair db = var != 1 ? out_rand(d.C, 1580 + s, -1, 1, "dbias") : none;
            c->dwconv_bwd(c, dx.h, dw.h, db.h, dy.h, x.h, w.h, d.B, d.L, d.C, d.K);
            g->dwconv_bwd(g, dx.d, dw.d, db.d, dy.d, x.d, w.d, d.B, d.L, d.C, d.K);
            // dw, dbias sum B L products in float on the GPU
            if (dx.h) cmp_pair(tag("dwconv_bwd dx B=%d L=%d C=%d K=%d var %d", d.B, d.L, d.C, d.K, var), dx, TOL);
            if (dw.h) cmp_pair(tag("dwconv_bwd dw B=%d L=%d C=%d K=%d var %d", d.B, d.L, d.C, d.K, var), dw, 1e-4);
            if (db.h) cmp_pair(tag("dwconv_bwd dbias B=%d L=%d C=%d K=%d var %d", d.B, d.L, d.C, d.K, var), db, 1e-4);
            d_done();
        }
    }
}

// ---- the case list -----------------------------------------------------------------------------


// ---- whole models ----------------------------------------------------------------------------
// Every registered mixer in its default block (models/config.c), two layers,
// dropout on, ragged lengths: the CPU and GPU models get the same parameters
// (the CPU's, uploaded), the same batch and the same dropout seed; the
// logits, the loss and every gradient must match. Then a short AdamW run on
// both from the same start, whose per-step losses must agree.
//
// Tolerances: float differences of every op (FFT, parallel scan, attention
// sums in another order) pass through two residual blocks with batch
// statistics, the head and the loss: 1e-4 for the logits and loss, 1e-3 for
// the gradients (relative to the largest of each). Over the training run
// each step's loss within 1e-3 of the CPU's (relative, floor 1).

#define MODEL_FWD_TOL  1e-4
#define MODEL_GRAD_TOL 1e-3
#define TRAIN_TOL      1e-3
#define MODEL_B 4
#define MODEL_L 100
#define TRAIN_STEPS 25

static const lra_model_task model_task = { .vocab = 12, .n_classes = 4, .n_inputs = 1, .seq_len = MODEL_L };

typedef struct {
    int32_t tokens[MODEL_B * MODEL_L], lengths[MODEL_B], labels[MODEL_B];
    lra_batch b;
} model_batch;

// ragged lengths, tokens in [1, vocab), labels from the tokens (learnable)
static void model_batch_make(model_batch *mb, uint64_t seed) {
    for (int e = 0; e < MODEL_B; e++) {
        int len = MODEL_L - (int)(lra_rand_bits(seed, 1000 + (uint64_t)e) % (MODEL_L / 2));
        mb->lengths[e] = len;
        int cnt = 0;
        for (int l = 0; l < MODEL_L; l++) {
            int32_t t = l < len ? 1 + (int32_t)(lra_rand_bits(seed, (uint64_t)(e * MODEL_L + l)) % 11) : 0;
            mb->tokens[e * MODEL_L + l] = t;
            cnt += t > 6;
        }
        mb->labels[e] = (int32_t)((cnt * 4) / (len + 1));
    }
    mb->b = (lra_batch){ MODEL_B, mb->tokens, mb->lengths, mb->labels };
}

// Builds the model of `mixer` on be; 0 and a failed case when it cannot.
static int model_make(lra_model *m, const char *mixer, lra_backend *be) {
    char mx[64];
    snprintf(mx, sizeof mx, "%s", mixer);
    lra_kv kv[4] = { { "mixer", mx, "test" }, { "n_layers", "2", "test" }, { "d_model", "32", "test" },
                     { "dropout", "0.1", "test" } };
    lra_model_config cfg;
    lra_err err = { 0 };
    if (lra_model_config_parse(&cfg, kv, 4, &err) || lra_model_build(m, &cfg, &model_task, be, MODEL_B, 7, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s on %s: %s", mixer, be->name, err.msg);
        return 0;
    }
    return 1;
}

// A CPU model and one on gpu of `mixer` with the CPU's parameters on both.
static int model_pair(lra_model *c, lra_model *g, const char *mixer, lra_backend *gpu) {
    if (!model_make(c, mixer, t_backend())) return 0;
    if (!model_make(g, mixer, gpu)) {
        lra_model_free(c);
        return 0;
    }
    T_CHECK(c->n_real == g->n_real, "%s: %lld vs %lld parameters", mixer, (long long)c->n_real, (long long)g->n_real);
    if (c->n_real != g->n_real) {
        lra_model_free(c);
        lra_model_free(g);
        return 0;
    }
    t_gpu()->upload(t_gpu(), g->params, c->params, RB(c->n_real));
    return 1;
}

// GPU buffer d (n) against the host buffer want
static void model_cmp(const char *what, const lra_real *d, const lra_real *want, int64_t n, double tol, int quiet) {
    lra_real *got = xmalloc(RB(n));
    t_gpu()->download(t_gpu(), got, d, RB(n));
    double md, mw;
    max_abs_diff(got, want, n, &md, &mw);
    if (!quiet) printf("    %s: max |gpu - cpu| %.3g, max |cpu| %.3g\n", what, md, mw);
    t_close_r(what, got, want, n, tol);
    free(got);
}

static void model_parity(const char *mixer) {
    if (!t_gpu()) T_SKIP(t_gpu_why);
    if (lra_backend_missing(t_gpu(), NULL, 0) > 0) T_SKIP("the cuda backend lacks ops");
    lra_model c, g;
    if (!model_pair(&c, &g, mixer, t_gpu())) return;
    model_batch mb;
    model_batch_make(&mb, 11);
    lra_err err = { 0 };
    T_CHECK(lra_model_forward(&c, &mb.b, 1, 1234, &err) == 0, "cpu forward: %s", err.msg);
    T_CHECK(lra_model_forward(&g, &mb.b, 1, 1234, &err) == 0, "gpu forward: %s", err.msg);
    model_cmp(tag("%s logits", mixer), g.logits, c.logits, (int64_t)MODEL_B * model_task.n_classes, MODEL_FWD_TOL, 0);
    cmp_scalar(tag("%s loss", mixer), g.loss, c.loss, fmax(1.0, fabs(c.loss)), MODEL_FWD_TOL);
    lra_model_zero_grad(&c);
    lra_model_zero_grad(&g);
    T_CHECK(lra_model_backward(&c, &err) == 0, "cpu backward: %s", err.msg);
    T_CHECK(lra_model_backward(&g, &err) == 0, "gpu backward: %s", err.msg);
    model_cmp(tag("%s all gradients", mixer), g.grads, c.grads, c.n_real, MODEL_GRAD_TOL, 0);
    for (int i = 0; i < c.n_params; i++) {  // per tensor, so that a small one cannot hide
        if (!c.g[i]) continue;
        int64_t n = lra_spec_numel(&c.specs[i]);
        model_cmp(tag("%s d%s", mixer, c.specs[i].name), g.g[i], c.g[i], n, MODEL_GRAD_TOL * 10, 1);
    }
    lra_model_free(&c);
    lra_model_free(&g);
}

// 25 AdamW steps on the CPU and on gpu; every step's loss within tol.
static void model_train_on(const char *mixer, lra_backend *gpu, double tol) {
    if (lra_backend_missing(gpu, NULL, 0) > 0) T_SKIP("the cuda backend lacks ops");
    lra_model c, g;
    if (!model_pair(&c, &g, mixer, gpu)) return;
    lra_optim_config o;
    lra_optim_defaults(&o);
    o.lr = 3e-3f;
    o.clip = 1.0;
    model_batch mb[4];
    for (int k = 0; k < 4; k++) model_batch_make(&mb[k], 100 + (uint64_t)k);
    lra_err err = { 0 };
    double first = 0, last = 0, worst = 0;
    for (int step = 0; step < TRAIN_STEPS; step++) {
        lra_model *ms[2] = { &c, &g };
        double loss[2], gn[2];
        for (int k = 0; k < 2; k++) {
            int rc = lra_model_forward(ms[k], &mb[step % 4].b, 1, 500 + (uint64_t)step, &err);
            if (!rc) {
                lra_model_zero_grad(ms[k]);
                rc = lra_model_backward(ms[k], &err);
            }
            loss[k] = ms[k]->loss;
            if (!rc) rc = lra_model_step(ms[k], &o, step, &gn[k], &err);
            if (rc) {
                t_fail_at(__FILE__, __LINE__, "%s step %d on %s: %s", mixer, step, ms[k]->be->name, err.msg);
                goto done;
            }
        }
        double d = fabs(loss[1] - loss[0]) / fmax(1.0, fabs(loss[0]));
        worst = fmax(worst, d);
        T_CHECK(d <= tol, "%s step %d: %s loss %.9g, cpu loss %.9g", mixer, step, gpu->name, loss[1], loss[0]);
        if (step < 4) first += loss[0] / 4;
        if (step >= TRAIN_STEPS - 4) last += loss[0] / 4;
    }
    printf("    %s on %s: loss %.4f -> %.4f over %d steps, largest relative gpu/cpu difference %.3g\n", mixer,
           gpu->name, first, last, TRAIN_STEPS, worst);
    T_CHECK(last < first, "%s: the loss did not decrease (%.6g -> %.6g)", mixer, first, last);
done:
    lra_model_free(&c);
    lra_model_free(&g);
}

static void model_train(const char *mixer) {
    if (!t_gpu()) T_SKIP(t_gpu_why);
    model_train_on(mixer, t_gpu(), TRAIN_TOL);
}

// Training on "cuda-tf32": attention (GEMM-heavy) and S5 (GEMMs around a scan).
static void test_tf32_train_attention(void) {
    if (!t_tf32()) T_SKIP(t_tf32_why);
    model_train_on("attention", t_tf32(), TF32_TRAIN_TOL);
}

static void test_tf32_train_s5(void) {
    if (!t_tf32()) T_SKIP(t_tf32_why);
    model_train_on("s5", t_tf32(), TF32_TRAIN_TOL);
}

// One case function per registry slot (cases take no arguments); a registry
// longer than MODEL_SLOTS fails cuda/model/too_many_mixers.
#define MODEL_SLOTS 12
#define MODEL_SLOT(k)                                                                  \
    static void model_parity_##k(void) { model_parity(lra_mixer_at(k)->name); }        \
    static void model_train_##k(void) { model_train(lra_mixer_at(k)->name); }
MODEL_SLOT(0) MODEL_SLOT(1) MODEL_SLOT(2) MODEL_SLOT(3) MODEL_SLOT(4) MODEL_SLOT(5)
MODEL_SLOT(6) MODEL_SLOT(7) MODEL_SLOT(8) MODEL_SLOT(9) MODEL_SLOT(10) MODEL_SLOT(11)
#undef MODEL_SLOT
static void (*const model_parity_fns[MODEL_SLOTS])(void) = {
    model_parity_0, model_parity_1, model_parity_2, model_parity_3, model_parity_4,  model_parity_5,
    model_parity_6, model_parity_7, model_parity_8, model_parity_9, model_parity_10, model_parity_11,
};
static void (*const model_train_fns[MODEL_SLOTS])(void) = {
    model_train_0, model_train_1, model_train_2, model_train_3, model_train_4,  model_train_5,
    model_train_6, model_train_7, model_train_8, model_train_9, model_train_10, model_train_11,
};

static void model_too_many(void) {
    T_CHECK(0, "more mixers than MODEL_SLOTS in tests/test_cuda.c: raise it");
}

// ---- MEGA: EMA kernel and attention weights ------------------------------------------
// Kernel powers and sums in double on both sides; the weights are rowwise
// softmax / erf values of float scores.

static const struct { int H, N, CH, Lk, L; } ema_cases_cu[] = {
    { 1, 1, 1, 1, 1 }, { 4, 3, 2, 16, 11 }, { 8, 16, 2, 1024, 1000 }, { 6, 16, 1, 300, 4000 },
};
#define N_EMA_CU ((int)(sizeof ema_cases_cu / sizeof ema_cases_cu[0]))

static void ema_inputs(pair *in, int64_t RN, uint64_t seed) {
    in[0] = in_rand(RN, seed, -1, 1, "delta");
    in[1] = in_rand(RN, seed + 1, -1, 1, "alpha");
    in[2] = in_rand(RN, seed + 2, -1.5, 1.5, "beta");
    in[3] = in_rand(RN, seed + 3, -1.5, 1.5, "gamma");
}

static void op_ema_kernel_fwd(void) {
    NEED(ema_kernel_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_EMA_CU; s++) {
        int H = ema_cases_cu[s].H, N = ema_cases_cu[s].N, CH = ema_cases_cu[s].CH, Lk = ema_cases_cu[s].Lk;
        int L = ema_cases_cu[s].L;
        pair in[4];
        ema_inputs(in, (int64_t)CH * H * N, 1500 + 10 * s);
        pair K = out_nan((int64_t)H * CH * L, "K");
        c->ema_kernel_fwd(c, K.h, in[0].h, in[1].h, in[2].h, in[3].h, H, N, CH, Lk, L, (lra_real)0.25);
        g->ema_kernel_fwd(g, K.d, in[0].d, in[1].d, in[2].d, in[3].d, H, N, CH, Lk, L, (lra_real)0.25);
        cmp_pair(tag("ema_kernel_fwd H=%d N=%d CH=%d Lk=%d L=%d", H, N, CH, Lk, L), K, TOL);
        d_done();
    }
}

static void op_ema_kernel_bwd(void) {
    NEED(ema_kernel_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    static const char *const names[4] = { "ddelta", "dalpha", "dbeta", "dgamma" };
    for (int s = 0; s < N_EMA_CU; s++) {
        int H = ema_cases_cu[s].H, N = ema_cases_cu[s].N, CH = ema_cases_cu[s].CH, Lk = ema_cases_cu[s].Lk;
        int L = ema_cases_cu[s].L;
        int64_t RN = (int64_t)CH * H * N;
        pair in[4], d[4];
        ema_inputs(in, RN, 1600 + 10 * s);
        pair dK = in_rand((int64_t)H * CH * L, 1690 + s, -1, 1, "dK");
        for (int i = 0; i < 4; i++) d[i] = out_rand(RN, 1700 + 10 * s + i, -1, 1, names[i]);
        c->ema_kernel_bwd(c, d[0].h, d[1].h, d[2].h, d[3].h, dK.h, in[0].h, in[1].h, in[2].h, in[3].h, H, N, CH, Lk,
                          L, (lra_real)0.25);
        g->ema_kernel_bwd(g, d[0].d, d[1].d, d[2].d, d[3].d, dK.d, in[0].d, in[1].d, in[2].d, in[3].d, H, N, CH, Lk,
                          L, (lra_real)0.25);
        for (int i = 0; i < 4; i++)
            cmp_pair(tag("ema_kernel_bwd %s H=%d N=%d CH=%d Lk=%d L=%d", names[i], H, N, CH, Lk, L), d[i], VANDER_TOL);
        d_done();
    }
}

static const struct { int B, NK, C, M, kind, mask; } mega_att_cases[] = {
    { 1, 1, 1, 1, 0, 0 }, { 2, 1, 33, 40, 0, 1 }, { 2, 4, 16, 16, 1, 1 }, { 3, 2, 70, 70, 0, 2 }, { 1, 1, 257, 300, 1, 0 },
};
#define N_MEGA_ATT ((int)(sizeof mega_att_cases / sizeof mega_att_cases[0]))

static void op_mega_attn_fwd(void) {
    NEED(mega_attn_fwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_MEGA_ATT; s++) {
        int B = mega_att_cases[s].B, NK = mega_att_cases[s].NK, C = mega_att_cases[s].C, M = mega_att_cases[s].M;
        int kind = mega_att_cases[s].kind, L = NK * C;
        int64_t n = (int64_t)B * L * C;
        pair S = in_rand(n, 1800 + s, -3, 3, "S"), w = in_rand(2 * (int64_t)M - 1, 1810 + s, -1, 1, "w");
        uint8_t *hm = mega_att_cases[s].mask ? h_att_mask(B, L, mega_att_cases[s].mask) : NULL;
        uint8_t *dm = hm ? in_bytes(hm, (size_t)B * L, "mask") : NULL;
        pair A = out_nan(n, "A");
        c->mega_attn_fwd(c, A.h, S.h, w.h, hm, B, NK, C, M, (lra_real)0.125, kind);
        g->mega_attn_fwd(g, A.d, S.d, w.d, dm, B, NK, C, M, (lra_real)0.125, kind);
        cmp_pair(tag("mega_attn_fwd B=%d NK=%d C=%d M=%d kind %d mask %d", B, NK, C, M, kind, mega_att_cases[s].mask),
                 A, TOL);
        d_done();
    }
}

static void op_mega_attn_bwd(void) {
    NEED(mega_attn_bwd);
    lra_backend *c = t_backend(), *g = t_gpu();
    for (int s = 0; s < N_MEGA_ATT; s++) {
        int B = mega_att_cases[s].B, NK = mega_att_cases[s].NK, C = mega_att_cases[s].C, M = mega_att_cases[s].M;
        int kind = mega_att_cases[s].kind, L = NK * C;
        int64_t n = (int64_t)B * L * C, nw = 2 * (int64_t)M - 1;
        pair S = in_rand(n, 1900 + s, -3, 3, "S"), w = in_rand(nw, 1910 + s, -1, 1, "w");
        pair dA = in_rand(n, 1920 + s, -1, 1, "dA");
        uint8_t *hm = mega_att_cases[s].mask ? h_att_mask(B, L, mega_att_cases[s].mask) : NULL;
        uint8_t *dm = hm ? in_bytes(hm, (size_t)B * L, "mask") : NULL;
        lra_real *ha = h_nan(n);
        c->mega_attn_fwd(c, ha, S.h, w.h, hm, B, NK, C, M, (lra_real)0.125, kind);
        pair A = in_from(ha, n, "A");
        pair dS = out_rand(n, 1930 + s, -1, 1, "dS"), dw = out_rand(nw, 1940 + s, -1, 1, "dw");
        c->mega_attn_bwd(c, dS.h, dw.h, dA.h, A.h, S.h, w.h, hm, B, NK, C, M, (lra_real)0.125, kind);
        g->mega_attn_bwd(g, dS.d, dw.d, dA.d, A.d, S.d, w.d, dm, B, NK, C, M, (lra_real)0.125, kind);
        const char *t = tag("B=%d NK=%d C=%d M=%d kind %d mask %d", B, NK, C, M, kind, mega_att_cases[s].mask);
        cmp_pair(tag("mega_attn_bwd dS %s", t), dS, TOL);
        cmp_pair(tag("mega_attn_bwd dw %s", t), dw, TOL);
        d_done();
    }
}

typedef struct {
    const char *op;
    void (*fn)(void);
} op_test;

#define OP(name) { #name, op_##name }
static const op_test op_tests[] = {
    OP(free_backend),    OP(alloc),           OP(free),          OP(zero),          OP(upload),
    OP(download),        OP(copy),            OP(sync),          OP(mem_stats),     OP(mem_reset_peak),
    OP(fill),            OP(axpby),           OP(add),           OP(mul),           OP(mul_cols),
    OP(mul_cols_bwd),    OP(mul_rows),        OP(sum_rows),      OP(sum),           OP(sumsq),
    OP(permute_0213),    OP(gemm),            OP(bias_add),        OP(fftconv_fwd),   OP(fftconv_bwd),   OP(scan_fwd),
    OP(scan_bwd),        OP(vandermonde_fwd), OP(vandermonde_bwd), OP(cexp),        OP(cexp_bwd),
    OP(cmul),            OP(cmul_bwd),        OP(attention_fwd), OP(attention_bwd), OP(layernorm_fwd),
    OP(layernorm_bwd),   OP(batchnorm_fwd),   OP(batchnorm_bwd), OP(scalenorm_fwd), OP(scalenorm_bwd),
    OP(act_fwd),         OP(act_bwd),         OP(glu_fwd),       OP(glu_bwd),       OP(dropout_fwd),
    OP(dropout_bwd),     OP(embedding_fwd),   OP(embedding_bwd), OP(meanpool_fwd),  OP(meanpool_bwd),
    OP(xent_fwd),        OP(xent_bwd),        OP(adamw_step),    OP(clip_grad_norm),    OP(s4_kernel_fwd),
    OP(s4_kernel_bwd),   OP(s4d_discretize_fwd), OP(s4d_discretize_bwd), OP(diag_ssm_step),
    OP(lru_params_fwd),  OP(lru_params_bwd),
    OP(dwconv_fwd),      OP(dwconv_bwd),
    OP(s5_discretize_fwd), OP(s5_discretize_bwd),
    OP(ema_kernel_fwd),  OP(ema_kernel_bwd),  OP(mega_attn_fwd), OP(mega_attn_bwd),
};
#undef OP
#define N_OP_TESTS ((int)(sizeof op_tests / sizeof op_tests[0]))

static void op_untested(void) {
    T_CHECK(0, "this op of struct lra_backend has no parity test: add it to op_tests[] in tests/test_cuda.c");
}

static void op_stale(void) {
    T_CHECK(0, "op_tests[] in tests/test_cuda.c names an op that struct lra_backend no longer has");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--init-probe") == 0) return init_probe();
    int n_ops = lra_backend_op_count(), n = 0;
    int n_mix = lra_mixer_count();
    t_case *cases = xmalloc(sizeof *cases * (size_t)(8 + n_ops + N_OP_TESTS + 2 * n_mix));
    char **names = xmalloc(sizeof *names * (size_t)(n_ops + N_OP_TESTS + 2 * n_mix));
    int n_names = 0;
    cases[n++] = (t_case){ "cuda/init_message", test_init_message };
    cases[n++] = (t_case){ "cuda/memory_accounting", test_memory_accounting };
    cases[n++] = (t_case){ "cuda/scan_large", op_scan_large };
    cases[n++] = (t_case){ "cuda/tf32/gemm", test_tf32_gemm };
    cases[n++] = (t_case){ "cuda/tf32/train/attention", test_tf32_train_attention };
    cases[n++] = (t_case){ "cuda/tf32/train/s5", test_tf32_train_s5 };
    for (int i = 0; i < n_ops; i++) {
        const char *op = lra_backend_op_name(i);
        void (*fn)(void) = op_untested;
        for (int j = 0; j < N_OP_TESTS; j++)
            if (strcmp(op_tests[j].op, op) == 0) fn = op_tests[j].fn;
        char *name = names[n_names++] = xmalloc(strlen(op) + 6);
        sprintf(name, "cuda/%s", op);
        cases[n++] = (t_case){ name, fn };
    }
    for (int j = 0; j < N_OP_TESTS; j++) {
        int known = 0;
        for (int i = 0; i < n_ops; i++) known |= strcmp(op_tests[j].op, lra_backend_op_name(i)) == 0;
        if (known) continue;
        char *name = names[n_names++] = xmalloc(strlen(op_tests[j].op) + 6);
        sprintf(name, "cuda/%s", op_tests[j].op);
        cases[n++] = (t_case){ name, op_stale };
    }
    for (int k = 0; k < n_mix && k < MODEL_SLOTS; k++) {
        const char *mx = lra_mixer_at(k)->name;
        char *name = names[n_names++] = xmalloc(strlen(mx) + 16);
        sprintf(name, "cuda/model/%s", mx);
        cases[n++] = (t_case){ name, model_parity_fns[k] };
        name = names[n_names++] = xmalloc(strlen(mx) + 16);
        sprintf(name, "cuda/train/%s", mx);
        cases[n++] = (t_case){ name, model_train_fns[k] };
    }
    if (n_mix > MODEL_SLOTS) cases[n++] = (t_case){ "cuda/model/too_many_mixers", model_too_many };
    int rc = t_main(argc, argv, cases, n);
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(cases);
    return rc;
}
