// block.h: one residual block of the model (models/block.c), used by
// models/model.c only.
#ifndef LRA_BLOCK_H
#define LRA_BLOCK_H

#include "model.h"

struct lra_block {
    lra_mixer mixer;
    int       index;                              // position in the stack (names, dropout streams)
    int       p_norm1, p_stage, p_norm2, p_ffn;   // first spec index of each part, -1 if absent
    int       p_mixer;                            // first spec index of the mixer's parameters
    lra_real *act;                                // block_act_size reals
};

// Appends the block's parameter specs ("blocks.<i>.norm1.weight", ...) after
// the mixer was configured; returns the new count.
int     lra_block_specs(const lra_model *m, lra_block *b, lra_param_spec *out, int n);
void    lra_block_init(const lra_model *m, const lra_block *b, lra_real *const *host, uint64_t seed);
// Reals the block keeps between forward and backward (its mixer's excluded),
// and temporaries of one call (its mixer's excluded), for Bs sequences.
int64_t lra_block_act_size(const lra_model *m, int Bs, int L);
int64_t lra_block_scratch_size(const lra_model *m, int Bs, int L);
// out (Bs, L, D) = block(x); ctx->seed is the block's own stream.
int     lra_block_forward(lra_model *m, lra_block *b, const lra_ctx *ctx, lra_real *out, const lra_real *x,
                          lra_err *err);
// dx += d out/d x applied to dout; parameter gradients accumulate.
int     lra_block_backward(lra_model *m, lra_block *b, const lra_ctx *ctx, lra_real *dx, const lra_real *dout,
                           const lra_real *x, lra_err *err);

#endif // LRA_BLOCK_H
