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
// model config), "lra.optim_step", plus the caller's entries (training step,
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

// Adds every parameter of m under prefix + name (e.g. "param.") to w, copied
// to host memory in *hold (released by the caller with free()).
int lra_checkpoint_add_params(const lra_model *m, lra_st_writer *w, const char *prefix, const lra_real *src,
                              lra_real **hold, lra_err *err);

#endif // LRA_CHECKPOINT_H
