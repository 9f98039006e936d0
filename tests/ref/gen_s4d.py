#!/usr/bin/env python3
"""gen_s4d.py OUTDIR: reference files for the S4D mixer (models/s4d.c),
computed from the math of models.md 3 with PyTorch autograd in float64:
the kernel by its explicit sum over modes, the convolution by direct sums
(no FFT), so nothing is shared with lra's implementation.

  A_n = -exp(A_real) - i A_imag,  dt = softplus(inv_dt) or exp(log_dt)
  ZOH:      K[l] = 2 Re sum_n C_n B_n (e^{dt A_n} - 1)/A_n e^{l dt A_n}
  bilinear: K[l] = 2 Re sum_n C_n B_n dt/(1 - dt A_n/2) z_n^l, z = (1 + dt A/2)/(1 - dt A/2)
  y[t] = sum_{j<=t} K_fwd[j] u[t-j] (+ sum_{i>=0} K_bwd[i] u[t+1+i]) + D u[t],
  u = x with padded positions zeroed; channel h uses the (A, B) row h % n_ssm.
Writes the t_mixer_refcheck format (tests/mixer_check.h). Run: make ref.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import save  # noqa: E402

torch.set_default_dtype(torch.float64)


def kernel(p, S, Nc, CH, H, L, bilinear, dt_exp):
    dt = torch.exp(p["dt"][:, 0]) if dt_exp else torch.nn.functional.softplus(p["dt"][:, 0])  # (H)
    A = -torch.exp(p["A_real"]) - 1j * p["A_imag"]                                            # (S, Nc)
    B = torch.complex(p["B"][0, ..., 0], p["B"][0, ..., 1])                                    # (S, Nc)
    C = torch.complex(p["C"][..., 0], p["C"][..., 1])                                          # (CH, H, Nc)
    rows = torch.arange(H) % S
    Ah, Bh = A[rows], B[rows]                                                                  # (H, Nc)
    x = dt[:, None] * Ah
    if bilinear:
        E = Bh * dt[:, None] / (1 - x / 2)
        z = (1 + x / 2) / (1 - x / 2)
        powers = torch.stack([z ** l for l in range(L)], -1)                                   # (H, Nc, L)
    else:
        E = Bh * (torch.exp(x) - 1) / Ah
        powers = torch.exp(x[..., None] * torch.arange(L))
    W = C * E[None]                                                                             # (CH, H, Nc)
    return 2 * torch.einsum("chn,hnl->chl", W, powers).real                                    # (CH, H, L)


def layer(p, x, mask, S, Nc, CH, bilinear, dt_exp):
    Bsz, L, H = x.shape
    u = x * mask[..., None]
    K = kernel(p, S, Nc, CH, H, L, bilinear, dt_exp)
    y = torch.zeros_like(u)
    for t in range(L):
        for j in range(t + 1):
            y[:, t] = y[:, t] + K[0, :, j] * u[:, t - j]
        if CH == 2:
            for i in range(L - 1 - t):
                y[:, t] = y[:, t] + K[1, :, i] * u[:, t + 1 + i]
    return y + p["D"][0] * u


def make(out, name, H, B, L, N, S, init, bilinear, dt_exp, bidir, masked, seed):
    rng = np.random.default_rng(seed)
    Nc, CH = N // 2, 2 if bidir else 1
    n = np.arange(Nc)
    a_imag = {"lin": np.pi * n, "inv": N / np.pi * (N / (2 * n + 1) - 1),
              "legs": np.array([19.8574, 5.3542, 1.9578, 0.4275])[:Nc]}[init]
    dt = np.exp(rng.uniform(np.log(0.01), np.log(0.2), (H, 1)))
    p = {
        "dt": np.log(dt) if dt_exp else np.log(np.expm1(dt)),
        "A_real": np.log(0.5) + 0.1 * rng.standard_normal((S, Nc)),
        "A_imag": np.tile(a_imag, (S, 1)) + 0.1 * rng.standard_normal((S, Nc)),
        "B": rng.standard_normal((1, S, Nc, 2)),
        "C": rng.standard_normal((CH, H, Nc, 2)) * np.sqrt(0.5),
        "D": rng.standard_normal((1, H)),
    }
    x = rng.uniform(-1, 1, (B, L, H))
    dy = rng.uniform(-1, 1, (B, L, H))
    mask = np.ones((B, L), np.uint8)
    if masked:
        mask[-1, L - 4:] = 0
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tp, tx, torch.tensor(mask, dtype=torch.float64), S, Nc, CH, bilinear, dt_exp)
    (y * torch.tensor(dy)).sum().backward()
    names = {"dt": "kernel.inv_dt", "A_real": "kernel.A_real", "A_imag": "kernel.A_imag", "B": "kernel.B", "C": "kernel.C", "D": "D"}
    t = {"x": x, "dy": dy, "y": y.detach().numpy(), "dx": tx.grad.numpy()}
    for k, v in tp.items():
        t["param." + names[k]] = v.detach().numpy()
        t["grad." + names[k]] = v.grad.numpy()
    if masked:
        t["mask"] = mask
    kv = (f"d_state={N};init={init};disc={'bilinear' if bilinear else 'zoh'};"
          f"dt_transform={'exp' if dt_exp else 'softplus'};n_ssm={S};bidirectional={'true' if bidir else 'false'}")
    save(os.path.join(out, name), t, {"mixer": "s4d", "kv": kv, "D": H, "B": B, "L": L})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    make(out, "s4d_lin_zoh_mask.safetensors", H=4, B=2, L=12, N=8, S=4, init="lin", bilinear=False, dt_exp=False,
         bidir=False, masked=True, seed=1)
    make(out, "s4d_inv_bilinear_bidir.safetensors", H=4, B=2, L=10, N=6, S=1, init="inv", bilinear=True,
         dt_exp=False, bidir=True, masked=False, seed=2)
    make(out, "s4d_legs_exp.safetensors", H=6, B=1, L=9, N=8, S=2, init="legs", bilinear=False, dt_exp=True,
         bidir=True, masked=True, seed=3)


if __name__ == "__main__":
    main()
