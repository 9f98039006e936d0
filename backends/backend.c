// backend.c: the registry of compute backends and the table of op names used
// to report what a backend lacks.
#include "backend.h"

#include <stddef.h>
#include <string.h>

lra_backend *lra_backend_cpu_init(int n_threads, lra_err *err);
#ifdef LRA_HAVE_CUDA
lra_backend *lra_backend_cuda_init(int n_threads, lra_err *err);
lra_backend *lra_backend_cuda_tf32_init(int n_threads, lra_err *err);
#endif

const char *const lra_act_names[LRA_ACT_COUNT] = {
    "identity", "relu", "gelu_tanh", "gelu_erf", "silu", "sigmoid", "softplus", "tanh", "sin",
};

// ---- op names ----------------------------------------------------------------

typedef void (*lra_fnptr)(void);
typedef struct { const char *name; size_t offset; } lra_op_entry;
#define LRA_OP(f) { #f, offsetof(lra_backend, f) }

static const lra_op_entry lra_ops[] = {
    LRA_OP(free_backend),
    LRA_OP(alloc),
    LRA_OP(free),
    LRA_OP(zero),
    LRA_OP(upload),
    LRA_OP(download),
    LRA_OP(copy),
    LRA_OP(sync),
    LRA_OP(mem_stats),
    LRA_OP(mem_reset_peak),
    LRA_OP(fill),
    LRA_OP(axpby),
    LRA_OP(add),
    LRA_OP(mul),
    LRA_OP(mul_cols),
    LRA_OP(mul_cols_bwd),
    LRA_OP(mul_rows),
    LRA_OP(sum_rows),
    LRA_OP(sum),
    LRA_OP(sumsq),
    LRA_OP(permute_0213),
    LRA_OP(gemm),
    LRA_OP(bias_add),
    LRA_OP(fftconv_fwd),
    LRA_OP(fftconv_bwd),
    LRA_OP(scan_fwd),
    LRA_OP(scan_bwd),
    LRA_OP(vandermonde_fwd),
    LRA_OP(vandermonde_bwd),
    LRA_OP(cexp),
    LRA_OP(cexp_bwd),
    LRA_OP(cmul),
    LRA_OP(cmul_bwd),
    LRA_OP(attention_fwd),
    LRA_OP(attention_bwd),
    LRA_OP(layernorm_fwd),
    LRA_OP(layernorm_bwd),
    LRA_OP(batchnorm_fwd),
    LRA_OP(batchnorm_bwd),
    LRA_OP(scalenorm_fwd),
    LRA_OP(scalenorm_bwd),
    LRA_OP(act_fwd),
    LRA_OP(act_bwd),
    LRA_OP(glu_fwd),
    LRA_OP(glu_bwd),
    LRA_OP(dropout_fwd),
    LRA_OP(dropout_bwd),
    LRA_OP(embedding_fwd),
    LRA_OP(embedding_bwd),
    LRA_OP(meanpool_fwd),
    LRA_OP(meanpool_bwd),
    LRA_OP(xent_fwd),
    LRA_OP(xent_bwd),
    LRA_OP(adamw_step),
    LRA_OP(clip_grad_norm),
    LRA_OP(s4d_discretize_fwd),
    LRA_OP(s4d_discretize_bwd),
    LRA_OP(diag_ssm_step),
    LRA_OP(s4_kernel_fwd),
    LRA_OP(s4_kernel_bwd),
    LRA_OP(lru_params_fwd),
    LRA_OP(lru_params_bwd),
    LRA_OP(dwconv_fwd),
    LRA_OP(dwconv_bwd),
    LRA_OP(s5_discretize_fwd),
    LRA_OP(s5_discretize_bwd),
    LRA_OP(ema_kernel_fwd),
    LRA_OP(ema_kernel_bwd),
    LRA_OP(mega_attn_fwd),
    LRA_OP(mega_attn_bwd),
};
#undef LRA_OP
#define LRA_N_OPS ((int)(sizeof lra_ops / sizeof lra_ops[0]))

// Every function pointer of the table must be named above: adding a field
// without a name fails to compile here.
_Static_assert(sizeof(lra_backend) ==
                   offsetof(lra_backend, free_backend) + sizeof lra_ops / sizeof lra_ops[0] * sizeof(lra_fnptr),
               "lra_ops[] must list every op of struct lra_backend");

int lra_backend_op_count(void) { return LRA_N_OPS; }
const char *lra_backend_op_name(int i) { return (i >= 0 && i < LRA_N_OPS) ? lra_ops[i].name : NULL; }

static int lra_op_present(const lra_backend *be, int i) {
    lra_fnptr fn;
    memcpy(&fn, (const char *)be + lra_ops[i].offset, sizeof fn);
    return fn != NULL;
}

int lra_backend_has_op(const lra_backend *be, const char *op) {
    for (int i = 0; i < LRA_N_OPS; i++)
        if (strcmp(lra_ops[i].name, op) == 0) return lra_op_present(be, i);
    return 0;
}

int lra_backend_missing(const lra_backend *be, const char **names, int cap) {
    int n = 0;
    for (int i = 0; i < LRA_N_OPS; i++) {
        if (lra_op_present(be, i)) continue;
        if (n < cap) names[n] = lra_ops[i].name;
        n++;
    }
    return n;
}

// ---- registry ----------------------------------------------------------------

typedef struct {
    const char *name;
    lra_backend *(*init)(int n_threads, lra_err *err);  // NULL: not compiled in
    const char *why_missing;
} lra_backend_entry;

static const lra_backend_entry lra_backends[] = {
    { "cpu", lra_backend_cpu_init, NULL },
#ifdef LRA_HAVE_CUDA
    { "cuda", lra_backend_cuda_init, NULL },
    { "cuda-tf32", lra_backend_cuda_tf32_init, NULL },  // GEMMs on TF32 tensor cores
#else
#define LRA_NO_CUDA_WHY                                                                       \
    "this lra binary was built without CUDA (nvcc was not found, or NO_CUDA=1 was given); " \
    "rebuild with 'make CUDA=1' on a machine with the CUDA toolkit"
    { "cuda", NULL, LRA_NO_CUDA_WHY },
    { "cuda-tf32", NULL, LRA_NO_CUDA_WHY },
#endif
};
#define LRA_N_BACKENDS ((int)(sizeof lra_backends / sizeof lra_backends[0]))

int lra_backend_count(void) { return LRA_N_BACKENDS; }
const char *lra_backend_name(int i) { return (i >= 0 && i < LRA_N_BACKENDS) ? lra_backends[i].name : NULL; }

int lra_backend_available(const char *name) {
    for (int i = 0; i < LRA_N_BACKENDS; i++)
        if (strcmp(lra_backends[i].name, name) == 0) return lra_backends[i].init != NULL;
    return 0;
}

lra_backend *lra_backend_init(const char *name, int n_threads, lra_err *err) {
    for (int i = 0; i < LRA_N_BACKENDS; i++) {
        const lra_backend_entry *e = &lra_backends[i];
        if (strcmp(e->name, name) != 0) continue;
        if (!e->init) {
            lra_err_set(err, LRA_EUNSUPPORTED, "backend '%s' is unavailable: %s", name, e->why_missing);
            return NULL;
        }
        lra_backend *be = e->init(n_threads, err);
        if (be && be->api_version != LRA_BACKEND_API_VERSION) {
            lra_err_set(err, LRA_EUNSUPPORTED, "backend '%s' was built for api version %d, lra expects %d",
                        name, be->api_version, LRA_BACKEND_API_VERSION);
            be->free_backend(be);
            return NULL;
        }
        return be;
    }
    char known[256] = "";
    for (int i = 0; i < LRA_N_BACKENDS; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, lra_backends[i].name, sizeof known - strlen(known) - 1);
    }
    lra_err_set(err, LRA_EINVAL, "unknown backend '%s' (known: %s)", name, known);
    return NULL;
}

void lra_backend_free(lra_backend *be) {
    if (be) be->free_backend(be);
}
