// cpu_backend.c: the CPU op table and the backend's lifetime.
#include "cpu.h"

#include <string.h>

static void cpu_free_backend(lra_backend *be);

static const lra_backend cpu_table = {
    .api_version    = LRA_BACKEND_API_VERSION,
    .name           = "cpu",
    .free_backend   = cpu_free_backend,
    .alloc          = cpu_alloc,
    .free           = cpu_free,
    .zero           = cpu_zero,
    .upload         = cpu_upload,
    .download       = cpu_download,
    .copy           = cpu_copy,
    .sync           = cpu_sync,
    .mem_stats      = cpu_mem_stats,
    .mem_reset_peak = cpu_mem_reset_peak,
    .fill           = cpu_fill,
    .axpby          = cpu_axpby,
    .add            = cpu_add,
    .mul            = cpu_mul,
    .mul_cols       = cpu_mul_cols,
    .mul_cols_bwd   = cpu_mul_cols_bwd,
    .mul_rows       = cpu_mul_rows,
    .sum_rows       = cpu_sum_rows,
    .sum            = cpu_sum,
    .sumsq          = cpu_sumsq,
    .permute_0213   = cpu_permute_0213,
    .gemm           = cpu_gemm,
    .bias_add       = cpu_bias_add,
    .fftconv_fwd    = cpu_fftconv_fwd,
    .fftconv_bwd    = cpu_fftconv_bwd,
    .scan_fwd       = cpu_scan_fwd,
    .scan_bwd       = cpu_scan_bwd,
    .vandermonde_fwd = cpu_vandermonde_fwd,
    .vandermonde_bwd = cpu_vandermonde_bwd,
    .cexp           = cpu_cexp,
    .cexp_bwd       = cpu_cexp_bwd,
    .cmul           = cpu_cmul,
    .cmul_bwd       = cpu_cmul_bwd,
    .attention_fwd  = cpu_attention_fwd,
    .attention_bwd  = cpu_attention_bwd,
    .layernorm_fwd  = cpu_layernorm_fwd,
    .layernorm_bwd  = cpu_layernorm_bwd,
    .batchnorm_fwd  = cpu_batchnorm_fwd,
    .batchnorm_bwd  = cpu_batchnorm_bwd,
    .scalenorm_fwd  = cpu_scalenorm_fwd,
    .scalenorm_bwd  = cpu_scalenorm_bwd,
    .act_fwd        = cpu_act_fwd,
    .act_bwd        = cpu_act_bwd,
    .glu_fwd        = cpu_glu_fwd,
    .glu_bwd        = cpu_glu_bwd,
    .dropout_fwd    = cpu_dropout_fwd,
    .dropout_bwd    = cpu_dropout_bwd,
    .embedding_fwd  = cpu_embedding_fwd,
    .embedding_bwd  = cpu_embedding_bwd,
    .meanpool_fwd   = cpu_meanpool_fwd,
    .meanpool_bwd   = cpu_meanpool_bwd,
    .xent_fwd       = cpu_xent_fwd,
    .xent_bwd       = cpu_xent_bwd,
    .adamw_step     = cpu_adamw_step,
    .clip_grad_norm = cpu_clip_grad_norm,
    .s4d_discretize_fwd = cpu_s4d_discretize_fwd,
    .s4d_discretize_bwd = cpu_s4d_discretize_bwd,
    .diag_ssm_step  = cpu_diag_ssm_step,
    .s4_kernel_fwd  = cpu_s4_kernel_fwd,
    .s4_kernel_bwd  = cpu_s4_kernel_bwd,
    .lru_params_fwd = cpu_lru_params_fwd,
    .lru_params_bwd = cpu_lru_params_bwd,
    .dwconv_fwd     = cpu_dwconv_fwd,
    .dwconv_bwd     = cpu_dwconv_bwd,
    .s5_discretize_fwd = cpu_s5_discretize_fwd,
    .s5_discretize_bwd = cpu_s5_discretize_bwd,
    .ema_kernel_fwd = cpu_ema_kernel_fwd,
    .ema_kernel_bwd = cpu_ema_kernel_bwd,
    .mega_attn_fwd  = cpu_mega_attn_fwd,
    .mega_attn_bwd  = cpu_mega_attn_bwd,
};

// The CPU model name from /proc/cpuinfo, for run records.
static void cpu_model_name(char *out, size_t cap) {
    snprintf(out, cap, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(out, cap, "%s", v);
        break;
    }
    fclose(f);
}

lra_backend *lra_backend_cpu_init(int n_threads, lra_err *err) {
    lra_backend *be = malloc(sizeof *be);
    lra_cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        lra_err_set(err, LRA_ENOMEM, "cpu backend: out of memory");
        return NULL;
    }
    *be = cpu_table;
    be->ctx = ctx;
#ifdef _OPENMP
    // OpenMP's thread count is process-wide: set it every time, all cores when n_threads <= 0
    omp_set_num_threads(n_threads > 0 ? n_threads : omp_get_num_procs());
    be->n_threads = omp_get_max_threads();
#else
    (void)n_threads;
    be->n_threads = 1;
#endif
    char model[100];
    cpu_model_name(model, sizeof model);
    snprintf(be->device, sizeof be->device, "%s (%d thread%s)", model, be->n_threads,
             be->n_threads == 1 ? "" : "s");
    return be;
}

static void cpu_free_backend(lra_backend *be) {
    lra_cpu_ctx *ctx = lra_cpu(be);
    lra_cpu_fft_free(ctx);
    free(ctx);
    free(be);
}
