#!/usr/bin/env python3
"""gen_s5.py OUTDIR: reference files for the S5 mixer (models/s5.c),
computed from the S5 paper's equations (models.md 5) with PyTorch autograd
in complex128: an explicit step-by-step recurrence (no scan operator, no
conjugated state), so nothing is shared with lra's implementation.

  Lambda = min(Lambda_re, -1e-4) (clip_eigs) + i Lambda_im,  dt = exp(log_step)
  ZOH:      Lbar = exp(dt Lambda),  Bbar = (Lbar - 1)/Lambda B~
  bilinear: Lbar = (1 + dt Lambda/2)/(1 - dt Lambda/2),  Bbar = dt/(1 - dt Lambda/2) B~
  x_k = Lbar x_{k-1} + Bbar u_k (x_{-1} = 0), reverse: x'_k = Lbar x'_{k+1} + Bbar u_k
  y_k = s Re(C1 x_k [+ C2 x'_k]) + D u_k,  s = 2 with conj_sym else 1,
  u = x with padded positions zeroed.
Writes the t_mixer_refcheck format (tests/mixer_check.h). Run: make ref.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import save  # noqa: E402

torch.set_default_dtype(torch.float64)


def cpx(t):
    return torch.complex(t[..., 0], t[..., 1])


def layer(p, x, mask, Cs, conj_sym, bilinear, clip):
    re = torch.clamp(p["Lambda_re"], max=-1e-4) if clip else p["Lambda_re"]
    lam = torch.complex(re, p["Lambda_im"])                          # (Pc)
    dt = torch.exp(p["log_step"][:, 0])                               # (Pc)
    Bt = cpx(p["B"])                                                  # (Pc, H)
    if bilinear:
        den = 1 - dt * lam / 2
        lbar = (1 + dt * lam / 2) / den
        bbar = (dt / den)[:, None] * Bt
    else:
        lbar = torch.exp(dt * lam)
        bbar = ((lbar - 1) / lam)[:, None] * Bt
    u = x * mask[..., None]                                           # (B, L, H)
    bu = torch.einsum("nh,blh->bln", bbar, torch.complex(u, torch.zeros_like(u)))
    Bsz, L, _ = x.shape
    scale = 2.0 if conj_sym else 1.0
    y = p["D"] * u
    for d, C in enumerate(Cs):
        state = torch.zeros_like(bu[:, 0])
        xs = [None] * L
        for k in (range(L) if d == 0 else range(L - 1, -1, -1)):
            state = lbar * state + bu[:, k]
            xs[k] = state
        xs = torch.stack(xs, 1)                                       # (B, L, Pc)
        y = y + scale * torch.einsum("hn,bln->blh", C, xs).real
    return y


def make(out, name, H, B, L, P, J, bilinear, conj_sym, bidir, c_init, clip, masked, seed):
    rng = np.random.default_rng(seed)
    Pc = P // 2 if conj_sym else P
    p = {
        "Lambda_re": -0.5 + 0.2 * rng.standard_normal(Pc),
        "Lambda_im": rng.uniform(-8, 8, Pc),
        "B": rng.standard_normal((Pc, H, 2)) / np.sqrt(P),
        "log_step": rng.uniform(np.log(0.01), np.log(0.3), (Pc, 1)),
        "D": rng.standard_normal(H),
    }
    if clip:  # eigenvalues on both sides of the clip at -1e-4
        p["Lambda_re"][:2] = [0.2, -0.3]
    two_c = bidir and c_init != "complex_normal"
    if two_c:
        p["C1"] = rng.standard_normal((H, Pc, 2)) / np.sqrt(P)
        p["C2"] = rng.standard_normal((H, Pc, 2)) / np.sqrt(P)
    else:
        p["C"] = rng.standard_normal((H, (2 if bidir else 1) * Pc, 2)) * np.sqrt(0.5)
    x = rng.uniform(-1, 1, (B, L, H))
    dy = rng.uniform(-1, 1, (B, L, H))
    mask = np.ones((B, L), np.uint8)
    if masked:
        mask[-1, L - 4:] = 0
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    if two_c:
        Cs = [cpx(tp["C1"]), cpx(tp["C2"])]
    else:
        C = cpx(tp["C"])
        Cs = [C[:, :Pc], C[:, Pc:]] if bidir else [C]
    y = layer(tp, tx, torch.tensor(mask, dtype=torch.float64), Cs, conj_sym, bilinear, clip)
    (y * torch.tensor(dy)).sum().backward()
    t = {"x": x, "dy": dy, "y": y.detach().numpy(), "dx": tx.grad.numpy()}
    for k, v in tp.items():
        t["param." + k] = v.detach().numpy()
        t["grad." + k] = v.grad.numpy()
    if masked:
        t["mask"] = mask
    b = lambda v: "true" if v else "false"  # noqa: E731
    kv = (f"ssm_size={P};blocks={J};disc={'bilinear' if bilinear else 'zoh'};conj_sym={b(conj_sym)};"
          f"bidirectional={b(bidir)};C_init={c_init};clip_eigs={b(clip)}")
    save(os.path.join(out, name), t, {"mixer": "s5", "kv": kv, "D": H, "B": B, "L": L})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    make(out, "s5_zoh_mask.safetensors", H=4, B=2, L=12, P=8, J=2, bilinear=False, conj_sym=True, bidir=False,
         c_init="trunc_standard_normal", clip=False, masked=True, seed=1)
    make(out, "s5_bilinear_bidir.safetensors", H=5, B=2, L=10, P=12, J=1, bilinear=True, conj_sym=True, bidir=True,
         c_init="lecun_normal", clip=True, masked=False, seed=2)
    make(out, "s5_nonconj_bidir_cn.safetensors", H=3, B=2, L=9, P=6, J=3, bilinear=False, conj_sym=False,
         bidir=True, c_init="complex_normal", clip=False, masked=True, seed=3)


if __name__ == "__main__":
    main()
