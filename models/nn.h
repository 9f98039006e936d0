// nn.h: the small layers every model is built from besides the mixers:
// Linear, the three norms, and named initialisation styles. Each is a pair of
// functions over backend memory, forward writing (=), backward accumulating
// (+=) as everywhere.
#ifndef LRA_NN_H
#define LRA_NN_H

#include "layer.h"

// ---- Linear (models/linear.c) -------------------------------------------------
// y (R, O) = x (R, I) W^T + b with W (O, I) and b (O) or NULL (PyTorch layout).
void lra_linear_fwd(lra_backend *be, lra_real *y, const lra_real *x, const lra_real *W, const lra_real *b,
                    int64_t R, int I, int O);
// dx (R, I) += dy W;  dW (O, I) += dy^T x;  db (O) += column sums of dy.
void lra_linear_bwd(lra_backend *be, lra_real *dx, lra_real *dW, lra_real *db, const lra_real *dy,
                    const lra_real *x, const lra_real *W, int64_t R, int I, int O);

// How weights of Linear layers start (models.md 0.5): PyTorch (weight and
// bias U(+-1/sqrt(fan_in))), Flax (lecun_normal weight, zero bias) or the LRA
// Transformer's MLP (Xavier-uniform weight, bias N(0, 1e-6)).
typedef enum { LRA_LINEAR_TORCH = 0, LRA_LINEAR_FLAX, LRA_LINEAR_XAVIER, LRA_LINEAR_INIT_COUNT } lra_linear_init;
extern const char *const lra_linear_init_names[LRA_LINEAR_INIT_COUNT + 1];  // "torch", "flax", "xavier"
// Fills W (O, I) and b (O, may be NULL).
void lra_linear_init_fill(lra_real *W, lra_real *b, int I, int O, lra_linear_init how, lra_init_rng *r);

// ---- norms (models/norm.c) ----------------------------------------------------
typedef enum { LRA_NORM_NONE = 0, LRA_NORM_LAYER, LRA_NORM_BATCH, LRA_NORM_SCALE, LRA_NORM_COUNT } lra_norm_kind;
extern const char *const lra_norm_names[LRA_NORM_COUNT + 1];  // "none", "layer", "batch", "scale"

typedef struct {
    lra_norm_kind kind;
    float eps;             // LayerNorm 1e-5 (PyTorch) or 1e-6 (Flax); BatchNorm 1e-5
    float momentum;        // BatchNorm: weight of the new batch in the running stats
    int   unbiased_running;// BatchNorm: PyTorch (1) or Flax (0) running variance
} lra_norm_cfg;

// Parameters: layer: weight, bias (D); batch: weight, bias, running_mean,
// running_var (D; the last two are buffers); scale: scalar (1, MEGA).
// Appends the specs named prefix + name; returns the new count.
int  lra_norm_specs(const lra_norm_cfg *c, int D, const char *prefix, lra_param_spec *out, int n);
int  lra_norm_n_params(const lra_norm_cfg *c);
void lra_norm_init(const lra_norm_cfg *c, int D, lra_real *const *host);
// Reals of saved statistics for R rows of width D.
int64_t lra_norm_stats_size(const lra_norm_cfg *c, int64_t R, int D);
// y (R, D) = norm(x); p/g: the parameters and gradients of this norm, in
// spec order. training selects batch statistics (BatchNorm).
void lra_norm_fwd(lra_backend *be, const lra_norm_cfg *c, lra_real *const *p, lra_real *y, lra_real *stats,
                  const lra_real *x, int64_t R, int D, int training);
void lra_norm_bwd(lra_backend *be, const lra_norm_cfg *c, lra_real *const *p, lra_real *const *g, lra_real *dx,
                  const lra_real *dy, const lra_real *x, const lra_real *stats, int64_t R, int D, int training);

#endif // LRA_NN_H
