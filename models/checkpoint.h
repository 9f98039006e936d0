// checkpoint.h: model checkpoints and reference bundles in the safetensors
// format (models/safetensors.h), which PyTorch users load with
// safetensors.torch.load_file. Tensor names are the model's parameter names
// (models/README.md lists them and their shapes); complex SSM parameters are
// real views with a trailing dimension 2, as torch.view_as_real gives.
//
// Checkpoint: every parameter (buffers included) under its name, with the
// optimiser state as "optim.exp_avg.<name>" and "optim.exp_avg_sq.<name>"
// (PyTorch AdamW's state names) for trainable tensors; metadata
// "lra.format" = "checkpoint", "lra.version", "lra.model" (the resolved
// model config, mixer defaults included: lra_model_describe), "lra.optim_step", plus the caller's entries (training step,
// RNG state, task, run config).
#ifndef LRA_CHECKPOINT_H
#define LRA_CHECKPOINT_H

#include "model.h"
#include "safetensors.h"

#define LRA_CHECKPOINT_VERSION "1"

// Writes path atomically. extra: caller metadata (keys must not start with "lra.").
int lra_checkpoint_save(const lra_model *m, const char *path, const lra_kv *extra, int n_extra, lra_err *err);
// Loads parameters (and the optimiser state when with_optimizer) into a
// model built with the same configuration: every tensor must be present with
// the same shape (F32 or F64; converted), else LRA_EIO naming the file and
// the tensor. Tensors of the file the model lacks are an error too.
int lra_checkpoint_load(lra_model *m, const char *path, int with_optimizer, lra_err *err);

// Loads the tensors prefix + name of an open file into the flat buffer dst
// (backend memory: params, adam_m or adam_v) of m, every tensor present with
// its model shape (buffers skipped unless with_buffers).
int lra_checkpoint_load_set(lra_model *m, lra_st_file *f, const char *path, const char *prefix, int with_buffers,
                            lra_real *dst, lra_err *err);

// Adds the tensors of the flat buffer src (params, grads or an AdamW
// moment, backend memory) under prefix + name (e.g. "param.") to w, buffers
// (BatchNorm running statistics) only when with_buffers; copied to host
// memory in *hold (released by the caller with free()).
int lra_checkpoint_add_params(const lra_model *m, lra_st_writer *w, const char *prefix, const lra_real *src,
                              int with_buffers, lra_real **hold, lra_err *err);

// ---- reference bundles ("lra dump") ------------------------------------------
// Everything another framework needs to check one training step of lra on
// identical weights and inputs: metadata "lra.format" = "bundle",
// "lra.model" (resolved config), "lra.task_shape" (vocab, n_classes,
// n_inputs, seq_len, scalar_input, scalar_mean, scalar_std as k=v;...),
// "lra.mode" (eval|train) plus the caller's entries; tensors
// "param.<name>" (every parameter), "input.tokens" I32 (B, n_inputs, seq_len),
// "input.lengths" I32 (B, n_inputs), "input.labels" I32 (B), "logits"
// (B, K), "loss" (scalar: mean cross-entropy) and "grad.<name>" (every
// trainable parameter), in the build's real type.
// Call after lra_model_forward (with labels) and lra_model_backward on b.
int lra_bundle_write(const lra_model *m, const lra_batch *b, const char *path, const lra_kv *extra, int n_extra,
                     lra_err *err);
// The task shape as written in "lra.task_shape", and parsed back.
int lra_task_shape_string(const lra_model_task *t, char *out, size_t cap);
int lra_task_shape_parse(const char *s, lra_model_task *t, lra_err *err);

#endif // LRA_CHECKPOINT_H
