// cuda_memory.cu: device allocations with byte accounting, host<->device
// copies, and the backend's reduction scratch. Sizes are kept in a host-side
// open-addressing table keyed by the device pointer (linear probing, at most
// half full, backward-shift deletion: Knuth, TAOCP vol. 3, 6.4 Algorithm R),
// so that free never reads device memory.
#include "cuda.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lra_cuda_fail(const char *file, int line, const char *what, const char *msg) {
    fprintf(stderr, "%s:%d: cuda backend: %s failed: %s\n", file, line, what, msg);
    fflush(stderr);
    abort();
}

// ---- allocation table ----------------------------------------------------------

// home slot of p in a table of cap slots (cap a power of two)
static size_t cu_home(const void *p, size_t cap) {
    return (size_t)lra_mix64((uint64_t)(uintptr_t)p) & (cap - 1);
}

// slot holding p, or cap when absent
static size_t cu_find(const lra_cuda_ctx *ctx, const void *p) {
    if (ctx->cap == 0) return 0;
    for (size_t i = cu_home(p, ctx->cap);; i = (i + 1) & (ctx->cap - 1)) {
        if (ctx->blocks[i].ptr == p) return i;
        if (ctx->blocks[i].ptr == NULL) return ctx->cap;
    }
}

static void cu_place(lra_cuda_block *blocks, size_t cap, lra_cuda_block b) {
    size_t i = cu_home(b.ptr, cap);
    while (blocks[i].ptr) i = (i + 1) & (cap - 1);
    blocks[i] = b;
}

// Adds (p, bytes); returns 0, or -1 when the host is out of memory.
static int cu_table_put(lra_cuda_ctx *ctx, void *p, size_t bytes) {
    if (2 * (ctx->count + 1) > ctx->cap) {
        size_t cap = ctx->cap ? 2 * ctx->cap : 256;
        lra_cuda_block *blocks = (lra_cuda_block *)calloc(cap, sizeof *blocks);
        if (!blocks) return -1;
        for (size_t i = 0; i < ctx->cap; i++)
            if (ctx->blocks[i].ptr) cu_place(blocks, cap, ctx->blocks[i]);
        free(ctx->blocks);
        ctx->blocks = blocks;
        ctx->cap = cap;
    }
    lra_cuda_block b = { p, bytes };
    cu_place(ctx->blocks, ctx->cap, b);
    ctx->count++;
    return 0;
}

// Removes slot i and shifts back the entries of its probe run that would
// otherwise become unreachable.
static void cu_table_remove(lra_cuda_ctx *ctx, size_t i) {
    size_t mask = ctx->cap - 1;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (ctx->blocks[j].ptr == NULL) break;
        size_t k = cu_home(ctx->blocks[j].ptr, ctx->cap);
        // the entry at j may stay when its home k lies cyclically in (i, j]
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        ctx->blocks[i] = ctx->blocks[j];
        i = j;
    }
    ctx->blocks[i].ptr = NULL;
    ctx->blocks[i].bytes = 0;
    ctx->count--;
}

void lra_cuda_blocks_free(lra_cuda_ctx *ctx) {
    for (size_t i = 0; i < ctx->cap; i++)
        if (ctx->blocks[i].ptr) CU_CHECK(cudaFree(ctx->blocks[i].ptr));
    free(ctx->blocks);
    ctx->blocks = NULL;
    ctx->cap = ctx->count = 0;
}

// ---- allocation ------------------------------------------------------------------

void *cuda_alloc(lra_backend *be, size_t bytes, lra_err *err) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    void *p = NULL;
    // cudaMalloc aligns to 256 bytes; a 1-byte block keeps alloc(0) a real pointer
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // not sticky: clear it so that later launch checks do not see it
        lra_mem_stats s;
        cuda_mem_stats(be, &s);
        lra_err_set(err, LRA_ENOMEM, "backend 'cuda': cannot allocate %zu bytes on %s (%lld bytes in use): %s",
                    bytes, be->device, (long long)s.bytes_in_use, cudaGetErrorString(e));
        return NULL;
    }
    pthread_mutex_lock(&ctx->lock);
    int rc = cu_table_put(ctx, p, bytes);
    if (rc == 0) {
        ctx->bytes_in_use += (int64_t)bytes;
        if (ctx->bytes_in_use > ctx->bytes_peak) ctx->bytes_peak = ctx->bytes_in_use;
    }
    pthread_mutex_unlock(&ctx->lock);
    if (rc != 0) {
        CU_CHECK(cudaFree(p));
        lra_err_set(err, LRA_ENOMEM, "backend 'cuda': out of host memory for the allocation table");
        return NULL;
    }
    return p;
}

void cuda_free(lra_backend *be, void *p) {
    if (!p) return;
    lra_cuda_ctx *ctx = lra_cuda(be);
    pthread_mutex_lock(&ctx->lock);
    size_t i = cu_find(ctx, p);
    int known = i < ctx->cap;
    if (known) {
        ctx->bytes_in_use -= (int64_t)ctx->blocks[i].bytes;
        cu_table_remove(ctx, i);
    }
    pthread_mutex_unlock(&ctx->lock);
    if (!known) lra_cuda_fail(__FILE__, __LINE__, "free", "pointer was not allocated by this cuda backend");
    CU_CHECK(cudaFree(p));
}

void cuda_mem_stats(lra_backend *be, lra_mem_stats *out) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    pthread_mutex_lock(&ctx->lock);
    out->bytes_in_use = ctx->bytes_in_use;
    out->bytes_peak = ctx->bytes_peak;
    pthread_mutex_unlock(&ctx->lock);
    out->host_rss_peak = 0;
}

void cuda_mem_reset_peak(lra_backend *be) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    pthread_mutex_lock(&ctx->lock);
    ctx->bytes_peak = ctx->bytes_in_use;
    pthread_mutex_unlock(&ctx->lock);
}

void *lra_cuda_scratch(lra_backend *be, size_t bytes) {
    lra_cuda_ctx *ctx = lra_cuda(be);
    // the peak counts what the op needs on top of the live blocks: the
    // request, not the capacity left over from a larger earlier one
    pthread_mutex_lock(&ctx->lock);
    if (ctx->bytes_in_use + (int64_t)bytes > ctx->bytes_peak) ctx->bytes_peak = ctx->bytes_in_use + (int64_t)bytes;
    pthread_mutex_unlock(&ctx->lock);
    if (bytes <= ctx->scratch_bytes) return ctx->scratch;
    size_t want = ctx->scratch_bytes ? ctx->scratch_bytes : 4096;
    while (want < bytes) want *= 2;
    CU_CHECK(cudaFree(ctx->scratch));  // cudaFree waits for the kernels still using it
    ctx->scratch = NULL;
    ctx->scratch_bytes = 0;
    CU_CHECK(cudaMalloc(&ctx->scratch, want));
    ctx->scratch_bytes = want;
    return ctx->scratch;
}

// ---- copies ------------------------------------------------------------------------

void cuda_zero(lra_backend *be, void *p, size_t bytes) {
    (void)be;
    if (bytes) CU_CHECK(cudaMemset(p, 0, bytes));
}

void cuda_upload(lra_backend *be, void *dst, const void *src_host, size_t bytes) {
    (void)be;
    if (bytes) CU_CHECK(cudaMemcpy(dst, src_host, bytes, cudaMemcpyHostToDevice));
}

void cuda_download(lra_backend *be, void *dst_host, const void *src, size_t bytes) {
    (void)be;
    if (bytes) CU_CHECK(cudaMemcpy(dst_host, src, bytes, cudaMemcpyDeviceToHost));
}

// memmove semantics, as on the CPU: cudaMemcpy is undefined for overlapping
// ranges, so those go through a temporary block.
void cuda_copy(lra_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (!bytes || dst == src) return;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d + bytes <= s || s + bytes <= d) {
        CU_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
        return;
    }
    void *tmp = NULL;
    CU_CHECK(cudaMalloc(&tmp, bytes));
    CU_CHECK(cudaMemcpy(tmp, src, bytes, cudaMemcpyDeviceToDevice));
    CU_CHECK(cudaMemcpy(dst, tmp, bytes, cudaMemcpyDeviceToDevice));
    CU_CHECK(cudaFree(tmp));
}

void cuda_sync(lra_backend *be) {
    (void)be;
    CU_CHECK(cudaDeviceSynchronize());
}
