// cpu_memory.c: allocation with byte accounting, host<->"device" copies
// (plain memcpy on the CPU) and the process's peak resident set.
#include "cpu.h"

#include <string.h>
#include <sys/resource.h>

#define CPU_ALIGN 64
// Each block carries its size in a 64-byte header so that free can account it.
typedef struct { size_t bytes; char pad[CPU_ALIGN - sizeof(size_t)]; } cpu_block_head;

void *cpu_alloc(lra_backend *be, size_t bytes, lra_err *err) {
    void *raw = NULL;
    if (bytes > (size_t)INT64_MAX - sizeof(cpu_block_head) ||
        posix_memalign(&raw, CPU_ALIGN, sizeof(cpu_block_head) + (bytes ? bytes : 1)) != 0) {
        lra_err_set(err, LRA_ENOMEM, "cpu backend: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    ((cpu_block_head *)raw)->bytes = bytes;
    lra_cpu_ctx *ctx = lra_cpu(be);
    long long now = atomic_fetch_add(&ctx->bytes_in_use, (long long)bytes) + (long long)bytes;
    long long peak = atomic_load(&ctx->bytes_peak);
    while (now > peak && !atomic_compare_exchange_weak(&ctx->bytes_peak, &peak, now)) {}
    return (char *)raw + sizeof(cpu_block_head);
}

void cpu_free(lra_backend *be, void *p) {
    if (!p) return;
    cpu_block_head *h = (cpu_block_head *)((char *)p - sizeof(cpu_block_head));
    atomic_fetch_sub(&lra_cpu(be)->bytes_in_use, (long long)h->bytes);
    free(h);
}

void cpu_zero(lra_backend *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) memset(p, 0, bytes);
}

void cpu_upload(lra_backend *be, void *dst, const void *src_host, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src_host, bytes);
}

void cpu_download(lra_backend *be, void *dst_host, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst_host, src, bytes);
}

void cpu_copy(lra_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
}

void cpu_sync(lra_backend *be) { (void)be; }

void cpu_mem_stats(lra_backend *be, lra_mem_stats *out) {
    lra_cpu_ctx *ctx = lra_cpu(be);
    out->bytes_in_use = atomic_load(&ctx->bytes_in_use);
    out->bytes_peak = atomic_load(&ctx->bytes_peak);
    struct rusage ru;
    out->host_rss_peak = getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_maxrss * 1024 : 0;
}

void cpu_mem_reset_peak(lra_backend *be) {
    lra_cpu_ctx *ctx = lra_cpu(be);
    atomic_store(&ctx->bytes_peak, atomic_load(&ctx->bytes_in_use));
}
