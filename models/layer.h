// layer.h: what every sequence mixer implements, and the pieces the model and
// the mixers share: the call context, parameter specs, optimiser groups,
// initialisers and a bump allocator for activation buffers.
//
// A mixer maps x (B, L, D) to y (B, L, D), row-major, in backend memory.
// Gradient contract (the same as the backend ops):
// - forward writes y (=) and keeps in its activation buffer what backward
//   needs; it never modifies x.
// - backward ACCUMULATES (+=) into dx and into every parameter gradient; it
//   never modifies dy. The model zeroes all gradients once per step.
// - forward and backward of one call share the same ctx (B, L, seed, mask).
// Mixers do all arithmetic on tensor data through the backend op table, so
// every backend runs them unchanged; host code only orchestrates (and builds
// initial values, which are then uploaded).
#ifndef LRA_LAYER_H
#define LRA_LAYER_H

#include "../backends/backend.h"
#include "../backends/kv.h"

// ---- call context ---------------------------------------------------------
typedef struct {
    lra_backend    *be;
    int             B, L;      // batch and length of this call (<= the sizes built for)
    int             training;  // dropout on; BatchNorm uses batch statistics
    uint64_t        seed;      // random stream of this call (dropout); layers salt it
    const uint8_t  *mask;      // (B, L) backend memory, 1 = real position, NULL = all real
    const lra_real *maskf;     // the same mask as 0/1 reals, NULL = all real
} lra_ctx;

// A layer's own random stream: seed of the call mixed with a per-site salt.
static inline uint64_t lra_ctx_stream(const lra_ctx *ctx, uint64_t salt) {
    return lra_mix64(ctx->seed ^ lra_mix64(salt));
}

// ---- parameters -------------------------------------------------------------
// Optimiser group of a parameter tensor (models.md 10, lra.md 5): weights
// with decay; biases, norms, embeddings without; SSM parameters (A, B, P,
// Lambda, ...) with their own learning rate and no decay; the SSM step size
// with its own optional learning rate; buffers (BatchNorm running statistics)
// are saved in checkpoints but never trained.
typedef enum {
    LRA_GROUP_DECAY = 0,
    LRA_GROUP_NO_DECAY,
    LRA_GROUP_SSM,
    LRA_GROUP_SSM_DT,
    LRA_GROUP_BUFFER,
    LRA_GROUP_SSM_DECAY,  // the SSM learning rate with weight decay (S5 opt_config BandCdecay: B)
    LRA_GROUP_COUNT
} lra_group;
extern const char *const lra_group_names[LRA_GROUP_COUNT];  // "decay", "no_decay", "ssm", "ssm_dt", "buffer", "ssm_decay"

#define LRA_PARAM_NAME_MAX 64

// One parameter tensor: name relative to its layer ("log_dt", "C"), shape in
// PyTorch order (complex parameters stored as a real view end in 2), group.
typedef struct {
    char      name[LRA_PARAM_NAME_MAX];
    int       ndim;
    int64_t   shape[4];
    lra_group group;
} lra_param_spec;

int64_t lra_spec_numel(const lra_param_spec *s);
// Fills spec n when out is not NULL and returns n + 1, so spec tables are
// built (and counted, with out = NULL) by one code path:
//   n = lra_spec_set(out, n, "C", LRA_GROUP_DECAY, 4, LRA_SHAPE(c, H, N, 2));
int lra_spec_set(lra_param_spec *out, int n, const char *name, lra_group group, int ndim, const int64_t *shape);
#define LRA_SHAPE(...) ((const int64_t[]){ __VA_ARGS__ })

// ---- initialisation (host side, deterministic in the seed) ------------------
// A sequential stream of random numbers for filling initial values.
typedef struct { uint64_t seed, counter; } lra_init_rng;
static inline lra_init_rng lra_init_rng_new(uint64_t seed, uint64_t salt) {
    lra_init_rng r = { lra_mix64(seed ^ lra_mix64(salt)), 0 };
    return r;
}
double lra_init_uniform01(lra_init_rng *r);  // [0, 1), 53 bits
double lra_init_normal01(lra_init_rng *r);   // standard normal (Box-Muller)

void lra_init_const(lra_real *x, int64_t n, double value);
void lra_init_uniform(lra_real *x, int64_t n, lra_init_rng *r, double lo, double hi);
void lra_init_normal(lra_real *x, int64_t n, lra_init_rng *r, double std);
// Normal truncated to [-2 std, 2 std] (redrawn), as jax truncated_normal.
void lra_init_trunc_normal(lra_real *x, int64_t n, lra_init_rng *r, double std);
// Xavier/Glorot uniform: U(+-sqrt(6 / (fan_in + fan_out))).
void lra_init_xavier_uniform(lra_real *x, int64_t n, lra_init_rng *r, int fan_in, int fan_out);
// lecun_normal of Flax: truncated normal with variance 1/fan_in after truncation.
void lra_init_lecun_normal(lra_real *x, int64_t n, lra_init_rng *r, int fan_in);
// PyTorch nn.Linear default (weight and bias): U(+-1/sqrt(fan_in)).
void lra_init_torch_linear(lra_real *x, int64_t n, lra_init_rng *r, int fan_in);

// ---- activation buffers -----------------------------------------------------
// A bump allocator over one region: layers carve the buffers they keep in the
// same order in forward and backward. With base NULL it only counts, which is
// how act_size/scratch_size are computed from the same code path.
typedef struct { lra_real *base; int64_t used, cap; } lra_carve;
lra_real *lra_carve_take(lra_carve *c, int64_t n);  // n reals, 16-element aligned

// ---- mixers -----------------------------------------------------------------
typedef struct lra_mixer lra_mixer;

typedef struct {
    const char *name;     // registry name: "attention", "s4d", "s4", ...
    const char *summary;  // one line for listings
    // Parses the mixer's parameters (strict: unknown key or bad value is an
    // error naming the key and where it came from) into m->hp (owned by the
    // mixer, released by free). m->D and m->L_max are set before the call.
    int  (*configure)(lra_mixer *m, const lra_kv *kv, int n_kv, lra_err *err);
    // Writes the parameter specs (out may be NULL) and returns their count.
    int  (*param_specs)(const lra_mixer *m, lra_param_spec *out);
    // Initial values into host arrays, one per spec, in spec order.
    void (*init)(const lra_mixer *m, lra_real *const *host, uint64_t seed);
    // Reals forward keeps for backward (act) and temporaries of one call
    // (scratch, shared with other layers), for a call of size (B, L).
    int64_t (*act_size)(const lra_mixer *m, int B, int L);
    int64_t (*scratch_size)(const lra_mixer *m, int B, int L);
    int  (*forward)(lra_mixer *m, const lra_ctx *ctx, lra_real *y, const lra_real *x, lra_err *err);
    int  (*backward)(lra_mixer *m, const lra_ctx *ctx, lra_real *dx, const lra_real *dy, const lra_real *x,
                     lra_err *err);
    // Recurrent inference, NULL when the mixer has none (attention). state
    // holds state_size(B) reals (zero = empty history); step_prepare runs once
    // after the parameters change; step consumes x (B, D), one position, and
    // writes y (B, D) equal to position t of the forward pass in convolution
    // mode (causal mixers only).
    int64_t (*state_size)(const lra_mixer *m, int B);
    int  (*step_prepare)(lra_mixer *m, lra_backend *be, lra_err *err);
    int  (*step)(lra_mixer *m, const lra_ctx *ctx, lra_real *state, lra_real *y, const lra_real *x,
                 lra_err *err);
    // Releases hp and anything step_prepare allocated (backend memory too).
    void (*free)(lra_mixer *m, lra_backend *be);
    // Every hyperparameter as resolved (defaults included) as "key=value"
    // pairs joined by ';', in the keys configure accepts: the canonical
    // mixer config of run records and checkpoints. Returns LRA_OK, or
    // LRA_EINVAL when cap is too small.
    int  (*describe)(const lra_mixer *m, char *out, size_t cap);
    // 1 when forward returns the whole residual sub-layer, its own norm,
    // gating and residual included (MEGA): the block then puts no norm1,
    // stage, dropout or residual around the mixer.
    int  residual_inside;
} lra_mixer_vtable;

struct lra_mixer {
    const lra_mixer_vtable *vt;
    int        D;        // width of x and y
    int        L_max;    // longest sequence it is built for (SSM kernel length)
    void      *hp;       // mixer-private: hyperparameters, step buffers
    int        n_params;
    lra_real **p, **g;   // per spec: value and gradient (backend memory; g NULL for buffers)
    lra_real  *act;      // act_size(B_max, L_max) reals
    lra_real  *scratch;  // scratch_size(B_max, L_max) reals, shared
};

// ---- registry (models/mixer.c) ----------------------------------------------
int                      lra_mixer_count(void);
const lra_mixer_vtable  *lra_mixer_at(int i);
// NULL and an error listing the known mixers when name is unknown.
const lra_mixer_vtable  *lra_mixer_find(const char *name, lra_err *err);

// A mixer on its own (tests, benchmarks): configured, parameters and
// gradients allocated and initialised from seed, buffers for (B_max, L_max).
// The model does the same with shared arenas.
typedef struct {
    lra_mixer       m;
    lra_backend    *be;
    lra_param_spec *specs;
    int             B_max;
    lra_real       *params, *grads;  // flat, in spec order
    int64_t         n_real;          // reals in params (= grads)
} lra_mixer_solo;
int  lra_mixer_solo_new(lra_mixer_solo *s, lra_backend *be, const char *name, const lra_kv *kv, int n_kv,
                        int D, int B_max, int L_max, uint64_t seed, lra_err *err);
void lra_mixer_solo_free(lra_mixer_solo *s);

#endif // LRA_LAYER_H
