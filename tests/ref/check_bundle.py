#!/usr/bin/env python3
"""check_bundle.py: verifies bundles written by `lra dump` with PyTorch.

    /usr/bin/python3 tests/ref/check_bundle.py [--fresh] FILE.safetensors ...

For each bundle (models/checkpoint.h format) it rebuilds the model of its
"lra.model" and "lra.task_shape" metadata in PyTorch (tests/ref/lra_torch.py,
float64, written from the math independently of the C code), loads every
"param.*" tensor, runs the forward pass of "lra.mode" on "input.*", and
compares logits and loss, then every "grad.*" tensor (autograd of the mean
cross-entropy). Errors are max |lra - torch| / max |torch| per tensor (as the
C tests measure them); it prints the worst of each kind and exits 1 when an
output is above 1e-4 or a gradient above 1e-3 (lra runs in float32), 2 when a
bundle cannot be checked (unknown mixer, dropout on in train mode, ...).

A gradient that is zero by the math (below 1e-10 of the model's largest in
float64: the encoder bias when BatchNorm in training follows it everywhere,
a bias just before a postnorm BatchNorm) is float32 cancellation noise in
lra: it must stay below 1e-4 of the largest gradient.

--fresh: the bundle comes from a freshly initialised model (what `lra dump`
writes): in train mode the BatchNorm running statistics it holds must then
be one momentum update from mean 0, variance 1 with this batch's statistics
(PyTorch convention, unbiased variance); checked as an output.

`make check-dump` runs `lra dump` on a few tasks and configurations and
checks every bundle with this script.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lra_torch  # noqa: E402
import st_read  # noqa: E402

TOL_OUT, TOL_GRAD = 1e-4, 1e-3
ZERO, TOL_ZERO = 1e-10, 1e-4  # a gradient below ZERO x the largest is zero by the math


def rel_err(got, ref, floor=0.0):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, floor, 1e-30)
    return float(np.abs(got - ref).max() / scale) if ref.size else 0.0


def check(path, fresh):
    t, meta = st_read.load(path)
    if meta.get("lra.format") != "bundle":
        raise ValueError(f"not an lra bundle (lra.format is {meta.get('lra.format')!r})")
    model = lra_torch.LraModel(meta["lra.model"], meta["lra.task_shape"])
    model.load(t, prefix="param.")
    training = meta["lra.mode"] == "train"
    tok, lens, labels = t["input.tokens"], t["input.lengths"], t["input.labels"]
    stats = {}
    if training and fresh and model.cfg.norm == "batch":
        # the forward that lra ran started from the initial statistics (0, 1)
        for name in list(model.p):
            if name.endswith("running_mean"):
                model.p[name].data.zero_()
            elif name.endswith("running_var"):
                model.p[name].data.fill_(1.0)
        stats = model.running_stats(tok, lens)
    logits, loss, grads = model.gradients(tok, lens, labels, training)
    out = {"logits": rel_err(t["logits"], logits), "loss": rel_err(t["loss"], loss)}
    for name, ref in stats.items():
        out["param." + name] = rel_err(t["param." + name], ref)
    gscale = max(float(np.abs(g).max()) for g in grads.values())
    gerr, zerr = {}, {}
    for name, ref in grads.items():
        key = "grad." + name
        if key not in t:
            raise ValueError(f"tensor {key} missing")
        if float(np.abs(ref).max()) <= ZERO * gscale:
            # zero by the math (the encoder bias under BatchNorm in training, a
            # bias just before a postnorm BatchNorm): lra's value is float32
            # cancellation noise, measured against the largest gradient
            zerr[name] = rel_err(t[key], ref, floor=gscale)
        else:
            gerr[name] = rel_err(t[key], ref)
    wo = max(out, key=out.get)
    worst = sorted(gerr, key=gerr.get, reverse=True)
    wz = max(zerr, key=zerr.get) if zerr else None
    ok = out[wo] <= TOL_OUT and gerr[worst[0]] <= TOL_GRAD and (wz is None or zerr[wz] <= TOL_ZERO)
    print(f"{'ok  ' if ok else 'FAIL'} {path}: {model.cfg.mixer} {meta['lra.mode']}, "
          f"{len(model.specs)} tensors; loss lra {float(t['loss']):.7f} torch {loss:.7f}")
    print(f"     outputs: logits {out['logits']:.2e}, loss {out['loss']:.2e}"
          + (f", running stats {max(v for k, v in out.items() if k.startswith('param.')):.2e}" if stats else "")
          + f" (max {TOL_OUT:g})")
    print(f"     gradients: worst {', '.join(f'{n} {gerr[n]:.2e}' for n in worst[:3])} (max {TOL_GRAD:g})")
    if wz:
        print(f"     zero gradients: {', '.join(sorted(zerr))}: worst {zerr[wz]:.2e} of the largest gradient "
              f"(max {TOL_ZERO:g})")
    return ok, out[wo], gerr[worst[0]]


def main(argv):
    fresh = "--fresh" in argv
    files = [a for a in argv if a != "--fresh"]
    if not files:
        sys.exit(__doc__)
    status, wo, wg = 0, 0.0, 0.0
    for path in files:
        try:
            ok, eo, eg = check(path, fresh)
        except (ValueError, KeyError) as e:
            print(f"ERROR {path}: {e}")
            status = 2
            continue
        wo, wg = max(wo, eo), max(wg, eg)
        if not ok and status == 0:
            status = 1
    print(f"{len(files)} bundles: worst output error {wo:.2e}, worst gradient error {wg:.2e}"
          + ("" if status == 0 else " -- FAILED"))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
