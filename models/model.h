// model.h: the LRA model every mixer plugs into (models.md 1, lra.md 1.7):
//   encoder   token embedding (discrete inputs) or Linear(1 -> D) (scalar
//             pixels); optional CLS token and positional encoding
//   blocks    n_layers residual blocks:
//               x = x + drop(stage(mixer(norm1(x))))        (prenorm; postnorm
//               x = x + drop(ffn(norm2(x)))  if d_ffn > 0    normalises after
//                                                            the residual add)
//             stage is the mixer's output stage: none, gelu (S5 "gelu"),
//             glu (S4: GELU, dropout, Linear D -> 2D, GLU), half_glu1 and
//             half_glu2, full_glu (S5); ffn is the Transformer's position-wise MLP
//   final     norm (prenorm stacks)
//   head      pooling (masked mean, mean over all positions, CLS, last),
//             for two-input tasks (retrieval) a dual encoder with shared
//             weights whose pooled vectors u, v are combined as [u, v]
//             (LRA) or [u, v, u - v, u * v] (S4/S5 "nli"), then an MLP to
//             the classes.
// Parameters live in one flat buffer in spec order, with names such as
// "blocks.3.mixer.kernel.C" (models/README.md lists them); gradients and
// the AdamW moments use the same layout.
#ifndef LRA_MODEL_H
#define LRA_MODEL_H

#include "layer.h"
#include "nn.h"
#include "schedule.h"

typedef enum { LRA_STAGE_NONE = 0, LRA_STAGE_GELU, LRA_STAGE_GLU, LRA_STAGE_HALF_GLU1, LRA_STAGE_HALF_GLU2,
               LRA_STAGE_FULL_GLU, LRA_STAGE_COUNT } lra_stage;
typedef enum { LRA_POOL_MEAN = 0, LRA_POOL_MEAN_ALL, LRA_POOL_CLS, LRA_POOL_LAST, LRA_POOL_COUNT } lra_pool;
typedef enum { LRA_POS_NONE = 0, LRA_POS_SINUSOIDAL, LRA_POS_LEARNED, LRA_POS_COUNT } lra_pos;
typedef enum { LRA_COMBINE_CONCAT = 0, LRA_COMBINE_NLI, LRA_COMBINE_COUNT } lra_combine;
extern const char *const lra_stage_names[LRA_STAGE_COUNT + 1];
extern const char *const lra_pool_names[LRA_POOL_COUNT + 1];
extern const char *const lra_pos_names[LRA_POS_COUNT + 1];
extern const char *const lra_combine_names[LRA_COMBINE_COUNT + 1];

#define LRA_MAX_MIXER_KV 32
#define LRA_MAX_HEAD_LAYERS 4

// What the model needs to know about the task (from lra_task_info).
typedef struct {
    int   vocab;          // token ids in [0, vocab)
    int   n_classes;
    int   n_inputs;       // 1, or 2 for retrieval
    int   seq_len;        // L of each input
    int   scalar_input;   // 1: one real per position, (token/255 - mean)/std
    float scalar_mean, scalar_std;
} lra_model_task;

typedef struct {
    char         mixer[32];
    lra_kv       mixer_kv[LRA_MAX_MIXER_KV];   // "mixer.<key>" entries with the prefix removed
    int          n_mixer_kv;
    int          n_layers, d_model;
    lra_norm_cfg norm;
    int          prenorm, final_norm;
    lra_stage    stage;
    int          d_ffn;                        // 0: no FFN sub-block
    lra_act      ffn_act, gelu;                // gelu: LRA_ACT_GELU_ERF (PyTorch) or _TANH (JAX)
    float        dropout, input_dropout;
    int          tie_dropout;                  // one mask per (example, channel), shared over L (S4, S5)
    lra_pos      pos;
    lra_pool     pool;
    lra_combine  combine;
    int          head_hidden[LRA_MAX_HEAD_LAYERS], n_head_hidden;
    lra_act      head_act;
    lra_linear_init linear_init;               // stage and FFN Linear layers
    lra_linear_init head_init;                 // classifier head
    float        embed_std;                    // token embedding N(0, embed_std)
} lra_model_config;

// Reads the model keys (strict; messages name the key and where it came
// from). Defaults follow the paper of the mixer: attention gets the LRA
// Transformer block (LayerNorm prenorm, FFN, final norm, CLS... see
// models/README.md), SSMs the S4 block (BatchNorm, GLU stage, mean pool).
// kv entries "mixer.<key>" are passed to the mixer (pointers into kv: keep
// kv alive while the config is used).
int lra_model_config_parse(lra_model_config *c, const lra_kv *kv, int n_kv, lra_err *err);
// The known model keys, NULL-terminated (for help and YAML validation).
extern const char *const lra_model_keys[];
// Every resolved setting as "key=value" pairs joined by ';', with the
// mixer entries as given ("mixer.<key>=..."); lra_model_describe writes the
// same for a built model with the mixer's resolved hyperparameters (its
// defaults included) instead: the canonical config of run records,
// checkpoints and bundles, which lra_model_config_parse reads back.
int lra_model_config_string(const lra_model_config *c, char *out, size_t cap);

typedef struct {
    float  lr, weight_decay;        // the decay and no-decay groups (no-decay: wd 0)
    float  ssm_lr;                  // SSM group (wd 0); <= 0: lr
    float  dt_lr;                   // SSM step size (wd 0); <= 0: ssm_lr (S4 with lr.dt set) or lr
    int    dt_global;               // 1: dt trains at lr (S4 `lr.dt: null`, S5 dt_global)
    float  beta1, beta2, eps;
    double clip;                    // global-norm clip, 0 = none
    lra_schedule schedule;
} lra_optim_config;
void lra_optim_defaults(lra_optim_config *o);  // AdamW(0.9, 0.999, 1e-8), lr 1e-3, constant

typedef struct lra_block lra_block;

typedef struct {
    lra_model_config cfg;
    lra_model_task   task;
    lra_backend     *be;
    int B_max, L;            // examples per batch, positions per sequence (+1 with CLS)
    int Bs_max;              // sequences per batch = B_max * n_inputs

    // parameters: specs (full names) and per-tensor pointers into the arenas
    int             n_params;
    lra_param_spec *specs;
    lra_real      **p, **g;
    lra_real       *params, *grads, *adam_m, *adam_v;  // flat (n_real)
    int64_t         n_real, n_trainable;
    int64_t         opt_step;                          // AdamW steps taken

    int        p_encoder, p_pos, p_cls, p_final, p_head;  // first spec index of each part, -1 if absent
    lra_block *blocks;

    // activations (one arena) and buffers of the last forward pass
    lra_real *arena;
    int64_t   arena_size;
    lra_real **xs;           // n_layers + 1 residual streams (Bs, L, D)
    lra_real *pe;            // (L, D) sinusoidal table or NULL
    lra_real *final_out, *final_stats, *pooled, *feat, *head_act_buf, *logits, *probs, *loss_ex;
    lra_real *scratch;       // shared temporaries (max over layers)
    int32_t  *tokens, *labels;   // backend copies
    uint8_t  *mask, *poolmask;   // (Bs, L)
    lra_real *maskf, *poolmaskf, *xin;
    int       padded;             // the batch has a padding position: mixers get the masks
    int       B, training;       // of the last forward
    uint64_t  seed;
    int       have_labels;
    double    loss;              // mean cross-entropy of the last forward (with labels)
} lra_model;

// One batch on the host, as tasks write it: tokens (B, n_inputs, seq_len),
// lengths (B, n_inputs), labels (B) or NULL.
typedef struct {
    int            B;
    const int32_t *tokens, *lengths, *labels;
} lra_batch;

int  lra_model_build(lra_model *m, const lra_model_config *cfg, const lra_model_task *task, lra_backend *be,
                     int B_max, uint64_t seed, lra_err *err);
void lra_model_free(lra_model *m);
// Forward pass; logits (B, K) in m->logits (backend memory); with labels
// also the loss (m->loss) and the probabilities. training: dropout and batch
// statistics; seed: the dropout stream of this step.
int  lra_model_forward(lra_model *m, const lra_batch *b, int training, uint64_t seed, lra_err *err);
void lra_model_zero_grad(lra_model *m);
// Backward of the last forward (which needs labels): accumulates gradients.
int  lra_model_backward(lra_model *m, lra_err *err);
// One AdamW step at 0-based `step` of the schedule: clips, updates every
// trainable tensor with its group's lr and weight decay. Returns the
// gradient norm before clipping in *grad_norm (may be NULL).
int  lra_model_step(lra_model *m, const lra_optim_config *o, int64_t step, double *grad_norm, lra_err *err);
// The AdamW parameter groups (merged contiguous ranges) for step: at most
// 2 * n_params entries written into out; returns the count.
int  lra_model_param_groups(const lra_model *m, const lra_optim_config *o, int64_t step, lra_param_group *out);
int  lra_model_describe(const lra_model *m, char *out, size_t cap);
// The same canonical config for a configuration that is not built (run
// validation): the mixer is configured alone for the task's length; an
// invalid mixer setting is an error naming it.
int  lra_model_config_describe(const lra_model_config *c, const lra_model_task *task, char *out, size_t cap,
                               lra_err *err);
// Index of the spec called name, or -1.
int  lra_model_find_param(const lra_model *m, const char *name);

#endif // LRA_MODEL_H
