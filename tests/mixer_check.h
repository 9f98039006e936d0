// mixer_check.h: checks every mixer gets the same way: finite-difference
// gradients of the input and of every trainable parameter, the accumulation
// contract, and the recurrent step against the convolution mode.
#ifndef LRA_MIXER_CHECK_H
#define LRA_MIXER_CHECK_H

#include "../models/layer.h"
#include "../models/checkpoint.h"
#include "check.h"

typedef struct {
    const char    *name;     // registry name
    const lra_kv  *kv;       // mixer parameters
    int            n_kv;
    int            D, B, L;
    const uint8_t *mask;     // (B, L) host, or NULL
    int            training; // dropout on (seeded, replayed identically)
    double         tol;      // FD tolerance (T_GRAD_TOL is a good start)
} t_mixer_case;

// Forward + backward with dy = R (random), then central differences on x and
// on each trainable parameter tensor (spec names in messages); also checks
// that backward accumulates (a second backward doubles every gradient) and
// that forward is deterministic. Returns 1 when everything passed.
int t_mixer_gradcheck(const t_mixer_case *c);
// The same with the trainable parameters redrawn U(-1, 1) first (rand_params,
// for layers whose initial values leave some paths below the finite
// differences' resolution) and a relative FD step (0: T_FD_STEP).
int t_mixer_gradcheck_opt(const t_mixer_case *c, int rand_params, double fd_step);

// Runs forward over (B, L) in convolution mode, then the recurrent step
// position by position from a zero state, and compares: max error relative
// to max |y| <= tol. Skips (returns 1) when the mixer has no step.
int t_mixer_stepcheck(const t_mixer_case *c, double tol);

// Parity with an independent reference (a PyTorch script under tests/ref/
// wrote the file): metadata "mixer", "kv" ("key=value;..."), "D", "B", "L";
// tensors (F64) "x", "dy", "y", "dx", "param.<spec name>" and
// "grad.<spec name>" for every parameter of the mixer, optional "mask" (U8,
// (B, L)). Loads the parameters, runs forward (eval mode) and backward with dy
// and compares y (max error / max |ref| <= tol_out) and dx and every gradient
// (<= tol_grad). A parameter missing from the file or of another shape fails.
int t_mixer_refcheck(const char *path, double tol_out, double tol_grad);

// Parity of the whole model with a reference bundle (models/checkpoint.h
// format, written by tests/ref/gen_model.py with PyTorch): builds the model
// from "lra.model" and "lra.task_shape", loads "param.*", runs forward in
// "lra.mode" on "input.*" and compares logits and loss (tol_out), then
// backward and every "grad.*" (tol_grad), each as max error / max |ref|.
int t_model_refcheck(const char *path, double tol_out, double tol_grad);

#endif // LRA_MIXER_CHECK_H
