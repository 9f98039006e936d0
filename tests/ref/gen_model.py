#!/usr/bin/env python3
"""gen_model.py OUTDIR: reference bundles of the whole lra model from PyTorch.

Random weights and inputs (numpy, fixed seeds, float64) for a few small
configurations; tests/ref/lra_torch.py (written from the math, independent of
the C code) computes logits, the mean cross-entropy and every gradient by
autograd; each case is written to OUTDIR/model_<case>.safetensors in the
bundle format of models/checkpoint.h ("lra.model" in the format of
lra_model_config_string, "lra.task_shape", "lra.mode"; "param.*", "input.*",
"logits", "loss", "grad.*"). tests/test_model_ref.c checks lra against them
with t_model_refcheck; `make ref` regenerates them (they are committed, each
well under 100 KB).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lra_torch  # noqa: E402
import st_write  # noqa: E402

# lra_model_config_string's order
ORDER = lra_torch.MODEL_KEYS


def model_string(d):
    s = ";".join(f"{k}={d[k]}" for k in ORDER)
    return s + "".join(f";{k}={v}" for k, v in d.items() if k.startswith("mixer."))


def task_string(vocab, n_classes, n_inputs, seq_len, scalar=0, mean=0, std=1):
    return (f"vocab={vocab};n_classes={n_classes};n_inputs={n_inputs};seq_len={seq_len};scalar_input={scalar};"
            f"scalar_mean={mean:.9g};scalar_std={std:.9g}")


TRANSFORMER = dict(mixer="attention", n_layers=2, d_model=8, norm="layer", norm_eps="1e-06", bn_momentum="0.1",
                   prenorm=1, final_norm=1, stage="none", d_ffn=16, ffn_act="gelu_tanh", gelu="tanh", dropout="0.1",
                   input_dropout="0.1", tie_dropout=0, pos="sinusoidal", pool="cls", combine="concat",
                   head_hidden="16", head_act="relu", linear_init="xavier", head_init="flax", embed_std="1")
SSM_BLOCK = dict(TRANSFORMER, norm="batch", norm_eps="1e-05", stage="glu", d_ffn=0, ffn_act="gelu", gelu="erf",
                 dropout="0", input_dropout="0", tie_dropout=1, pos="none", pool="mean", combine="nli",
                 head_hidden="none", head_act="gelu", linear_init="torch", head_init="torch")

# name -> (model keys, task shape, mode, lengths (B, n_inputs), seed)
CASES = {
    # (i) the LRA Transformer: LayerNorm prenorm, FFN, CLS, sinusoidal
    # positions, head Dense(d_ffn) ReLU; token inputs, ragged (one empty)
    "transformer": (dict(TRANSFORMER, **{"mixer.heads": 2}), task_string(11, 5, 1, 10), "eval",
                    [[10], [6], [0]], 1),
    # (ii) postnorm BatchNorm + GLU stage + masked mean pool, scalar pixels,
    # training mode (batch statistics; every dropout 0)
    "bn_glu_scalar": (dict(SSM_BLOCK, mixer="attention", prenorm=0, final_norm=0, **{"mixer.heads": 2}),
                      task_string(256, 4, 1, 9, 1, 0.48, 0.25), "train", [[9], [5], [7]], 2),
    # (iii) dual input, NLI features [u, v, u - v, u v], half_glu1 stage,
    # ScaleNorm, FFN with SiLU, mean over all positions
    "dual_nli": (dict(SSM_BLOCK, mixer="attention", norm="scale", norm_eps="1e-05", stage="half_glu1", d_ffn=12,
                      ffn_act="silu", pool="mean_all", head_hidden="8", **{"mixer.heads": 2}),
                 task_string(9, 2, 2, 7), "eval", [[7, 3], [2, 7], [5, 5]], 3),
    # causal attention (d_qkv != d_model), BatchNorm prenorm in eval
    # (running statistics), half_glu2 stage, learned positions, last-token
    # pooling, no hidden head layer; an empty sequence has no key at all
    "causal_last": (dict(TRANSFORMER, norm="batch", norm_eps="1e-05", stage="half_glu2", gelu="erf", d_ffn=12,
                         ffn_act="relu", pos="learned", pool="last", head_hidden="none",
                         **{"mixer.heads": 3, "mixer.d_qkv": 6, "mixer.causal": 1}),
                    task_string(7, 3, 1, 8), "eval", [[8], [3], [0], [1]], 4),
    # dual encoder with [u, v] and CLS on scalar inputs, GELU stage,
    # LayerNorm postnorm, no positions, two hidden head layers
    "dual_concat_cls": (dict(TRANSFORMER, prenorm=0, final_norm=0, stage="gelu", pos="none", d_ffn=8,
                             head_hidden="12,6", **{"mixer.heads": 1}),
                        task_string(256, 2, 2, 6, 1, 0.5, 0.3), "eval", [[6, 2], [4, 6]], 5),
    # (iv) S4D in the S4 block: BatchNorm prenorm (eval: running statistics),
    # GELU -> Linear -> GLU stage, final norm, masked mean; ZOH, n_ssm 2
    "s4d": (dict(SSM_BLOCK, mixer="s4d", combine="concat",
                 **{"mixer.d_state": 8, "mixer.n_ssm": 2, "mixer.disc": "zoh"}),
            task_string(10, 3, 1, 11), "eval", [[11], [4], [0]], 6),
    # S4D two-sided (bidirectional), bilinear, exp dt, retrieval-style dual
    # NLI head with a hidden GELU layer, BatchNorm in training
    "s4d_dual_train": (dict(SSM_BLOCK, mixer="s4d", head_hidden="8",
                            **{"mixer.d_state": 6, "mixer.n_ssm": 1, "mixer.disc": "bilinear",
                               "mixer.dt_transform": "exp", "mixer.bidirectional": 1}),
                       task_string(9, 2, 2, 8), "train", [[8, 5], [3, 8]], 7),
    # (v) S4 (DPLR, C~ for L_max = the model's length): causal, LayerNorm
    # prenorm, last-token pooling, learned positions
    "s4": (dict(SSM_BLOCK, mixer="s4", norm="layer", pos="learned", pool="last", combine="concat",
                **{"mixer.d_state": 6, "mixer.n_ssm": 2}),
           task_string(10, 3, 1, 9), "eval", [[9], [5], [1]], 8),
    # S4 two-sided, postnorm BatchNorm in training, scalar inputs, exp dt
    "s4_bidir_train": (dict(SSM_BLOCK, mixer="s4", prenorm=0, final_norm=0, combine="concat",
                            **{"mixer.d_state": 4, "mixer.n_ssm": 1, "mixer.bidirectional": 1,
                               "mixer.dt_transform": "exp"}),
                       task_string(256, 2, 1, 8, 1, 0.45, 0.2), "train", [[8], [6], [3]], 9),
    # (vi) LRU in the LRU block (Flax BatchNorm prenorm in eval, tanh GELU,
    # GLU stage, no final norm), masked mean over ragged lengths
    "lru": (dict(SSM_BLOCK, mixer="lru", bn_momentum="0.01", final_norm=0, gelu="tanh", head_act="gelu_tanh",
                 linear_init="flax", head_init="flax", combine="concat", **{"mixer.d_state": 6}),
            task_string(10, 3, 1, 11), "eval", [[11], [4], [0]], 10),
    # LRU bidirectional, BatchNorm in training, retrieval-style dual NLI head
    "lru_bidir_train": (dict(SSM_BLOCK, mixer="lru", bn_momentum="0.01", final_norm=0, gelu="tanh", head_hidden="8",
                             **{"mixer.d_state": 4, "mixer.bidirectional": 1, "mixer.r_min": 0.5}),
                        task_string(9, 2, 2, 8), "train", [[8, 5], [3, 8]], 11),
    # (v) Hyena (order 2, causal) in the S4 block, BatchNorm eval, ragged
    # lengths (the padding mask inside the operator), mean pool
    "hyena": (dict(SSM_BLOCK, mixer="hyena", combine="concat",
                   **{"mixer.filter_order": 6, "mixer.emb_dim": 5, "mixer.num_inner_mlps": 1}),
              task_string(10, 3, 1, 9), "eval", [[9], [5], [0]], 10),
    # Hyena order 3, bidirectional, shifted window, dual NLI head, BatchNorm training
    "hyena_bidir_train": (dict(SSM_BLOCK, mixer="hyena", head_hidden="8",
                               **{"mixer.order": 3, "mixer.filter_order": 5, "mixer.bidirectional": 1,
                                  "mixer.shift": 0.1}),
                          task_string(9, 2, 2, 7), "train", [[7, 4], [3, 7]], 11),
    # (vi) S5 in its block: BatchNorm prenorm (eval), half_glu1 with tanh GELU,
    # no final norm, masked mean; ZOH, conj_sym, J = 2 blocks, causal
    "s5": (dict(SSM_BLOCK, mixer="s5", stage="half_glu1", gelu="tanh", head_act="gelu_tanh", final_norm=0,
                bn_momentum="0.05", combine="concat", linear_init="flax", head_init="flax",
                **{"mixer.ssm_size": 8, "mixer.blocks": 2}),
           task_string(10, 3, 1, 9), "eval", [[9], [4], [0]], 10),
    # S5 bidirectional (C1, C2), bilinear, full_glu, dual NLI head,
    # BatchNorm in training (Flax momentum, biased running variance)
    "s5_dual_train": (dict(SSM_BLOCK, mixer="s5", stage="full_glu", gelu="tanh", head_hidden="8", final_norm=0,
                           bn_momentum="0.05",
                           **{"mixer.ssm_size": 6, "mixer.blocks": 1, "mixer.disc": "bilinear",
                              "mixer.bidirectional": 1, "mixer.C_init": "lecun_normal"}),
                      task_string(9, 2, 2, 7), "train", [[7, 4], [3, 7]], 11),
    # (vi) MEGA: the mixer is the whole sub-layer (its LayerNorm postnorm,
    # gates, residual), SiLU FFN with norm2, softmax over full length, [u, v]
    "mega": (dict(SSM_BLOCK, mixer="mega", norm="layer", prenorm=0, final_norm=0, stage="none", d_ffn=12,
                  ffn_act="silu", combine="concat", head_hidden="8",
                  **{"mixer.ndim": 3, "mixer.z_dim": 4, "mixer.v_dim": 10, "mixer.norm": "layer",
                     "mixer.prenorm": 0}),
             task_string(9, 2, 2, 8), "eval", [[8, 5], [3, 8]], 10),
    # MEGA-chunk, laplace, BatchNorm prenorm in training (the image tasks),
    # causal EMA with truncation, scalar inputs (no final norm: a training
    # BatchNorm there would leave the last bias a zero gradient)
    "mega_chunk_train": (dict(SSM_BLOCK, mixer="mega", stage="none", d_ffn=8, ffn_act="silu", combine="concat",
                              final_norm=0,
                              **{"mixer.ndim": 2, "mixer.z_dim": 3, "mixer.v_dim": 6, "mixer.attn": "laplace",
                                 "mixer.chunk": 4, "mixer.bidirectional": 0, "mixer.truncation": 5,
                                 "mixer.norm": "batch", "mixer.prenorm": 1}),
                         task_string(256, 3, 1, 12, 1, 0.45, 0.2), "train", [[12], [7], [2]], 11),
}


def lru_param(base, shape, rng):
    """LRU parameters near their initial distributions (models.md 6), |lambda|
    in [0.5, 0.99], gamma perturbed away from sqrt(1 - |lambda|^2)."""
    if base == "nu_log":
        return np.log(-np.log(rng.uniform(0.5, 0.99, shape)))
    if base == "theta_log":
        return np.log(rng.uniform(0.05, 3.0, shape))
    if base == "gamma_log":
        return rng.uniform(-2, -0.2, shape)
    if base == "D":
        return rng.normal(0, 1, shape)
    return rng.normal(0, 1, shape) / np.sqrt(shape[-1])  # B_re, B_im, C_re, C_im


def ssm_param(base, shape, rng, kv):
    """S4/S4D parameters near their initial distributions (models.md 3, 4),
    perturbed so that every entry has its own gradient."""
    cn = lambda shape: rng.normal(0, np.sqrt(0.5), shape + (2,))  # noqa: E731  complex normal as (.., 2)
    if base == "D":
        return rng.normal(0, 1, shape)
    if base == "inv_dt":
        dt = np.exp(rng.uniform(np.log(0.05), np.log(0.4), shape))
        return np.log(dt) if kv.get("mixer.dt_transform") == "exp" else np.log(np.expm1(dt))
    if base == "A_real":
        return np.log(0.5) + 0.3 * rng.uniform(-1, 1, shape)
    if base == "A_imag":
        return np.pi * np.arange(shape[-1]) * (1 + 0.2 * rng.uniform(-1, 1, shape)) + 0.1
    if base == "B":
        b = 0.3 * cn(shape[:-1])
        b[..., 0] += 1
        return b
    if base == "P":  # any P keeps diag(Lambda) - P P^* stable (Re Lambda < 0)
        return 0.7 * cn(shape[:-1])
    return cn(shape[:-1])  # C (C~ for S4)


def s5_param(base, shape, rng):
    """S5 parameters near their initial distributions (models.md 5), perturbed."""
    if base == "Lambda_re":
        return -0.5 + 0.2 * rng.uniform(-1, 1, shape)
    if base == "Lambda_im":
        return rng.uniform(-6, 6, shape)
    if base == "log_step":
        return rng.uniform(np.log(0.05), np.log(0.4), shape)
    if base == "D":
        return rng.normal(0, 1, shape)
    return rng.normal(0, np.sqrt(0.5), shape)  # B, C, C1, C2


def random_param(name, shape, rng, kv):
    """Weights away from lra's initial values, so every path is exercised."""
    base = name.rsplit(".", 1)[-1]
    if ".mixer." in name and kv["mixer"] in ("s4d", "s4"):
        return ssm_param(base, shape, rng, kv)
    if ".mixer." in name and kv["mixer"] == "lru":
        return lru_param(base, shape, rng)
    if ".mixer." in name and kv["mixer"] == "s5":
        return s5_param(base, shape, rng)
    if name == "encoder.weight" and shape[1] != 1:
        return rng.normal(0, 1, shape)
    if base == "running_mean":
        return rng.normal(0, 0.2, shape)
    if base == "running_var":
        return rng.uniform(0.5, 1.5, shape)
    if base == "scalar" or (base == "weight" and len(shape) == 1):  # norm gains
        return 1 + 0.2 * rng.normal(0, 1, shape)
    if len(shape) == 1:
        return 0.2 * rng.normal(0, 1, shape)
    if name == "pos_embedding":
        return 0.3 * rng.normal(0, 1, shape)
    return rng.normal(0, 1, shape) / np.sqrt(shape[-1])


def make_case(name, spec, outdir):
    keys, shape, mode, lengths, seed = spec
    rng = np.random.default_rng(1000 + seed)
    model = lra_torch.LraModel(model_string(keys), shape)
    task = model.task
    params = {n: random_param(n, s, rng, keys) for n, s, _ in model.specs}
    if "cls" in params:
        params["cls"] = 0.5 * rng.normal(0, 1, params["cls"].shape)
    model.load(params)
    lengths = np.array(lengths, np.int32)
    B = lengths.shape[0]
    hi = 256 if task.scalar_input else task.vocab
    tokens = rng.integers(0, hi, (B, task.n_inputs, task.seq_len)).astype(np.int32)
    labels = rng.integers(0, task.n_classes, B).astype(np.int32)
    logits, loss, grads = model.gradients(tokens, lengths, labels, training=mode == "train")
    tensors = {"param." + n: v for n, v in params.items()}
    tensors.update({"grad." + n: v for n, v in grads.items()})
    tensors.update({"input.tokens": tokens, "input.lengths": lengths, "input.labels": labels,
                    "logits": logits, "loss": np.array(loss)})
    meta = {"lra.format": "bundle", "lra.version": "1", "lra.model": model_string(keys), "lra.task_shape": shape,
            "lra.mode": mode, "generator": "tests/ref/gen_model.py", "case": name}
    path = os.path.join(outdir, f"model_{name}.safetensors")
    st_write.save(path, tensors, meta)
    print(f"  {path}: {len(model.specs)} parameter tensors, loss {loss:.6f}, {os.path.getsize(path)} bytes")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(outdir, exist_ok=True)
    for name, spec in CASES.items():
        if spec[0]["mixer"] in lra_torch.MIXERS:
            make_case(name, spec, outdir)


if __name__ == "__main__":
    main()
