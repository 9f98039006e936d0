#!/usr/bin/env python3
"""gen_lru.py OUTDIR: reference files for the LRU mixer (models/lru.c),
computed from the LRU paper (Orvieto et al. 2023, App. A; models.md 6) with
PyTorch autograd in float64, the recurrence by an explicit loop over time
and the projections by einsum, so nothing is shared with lra's
implementation:

  lambda = exp(-exp(nu_log) + i exp(theta_log)),  B_norm = (B_re + i B_im) exp(gamma_log)[:, None]
  x_k = lambda x_{k-1} + B_norm u_k,  x_{-1} = 0
  y_k = Re(C x_k) + D u_k,  C = C_re + i C_im
  bidirectional: x'_k = lambda x'_{k+1} + B_norm u_k (x'_L = 0), y_k += Re(C' x'_k),
                 C' = the columns [N, 2N) of C_re, C_im
u = x with padded positions zeroed. Parameters are drawn as the paper's
initialisation (ring [r_min, r_max], phase [0, max_phase], gamma = sqrt(1 -
|lambda|^2), B parts N(0, 1/(2H)), C parts N(0, 1/N)), then perturbed so
that the test does not depend on the initial relation between gamma and nu.
Writes the t_mixer_refcheck format (tests/mixer_check.h). Run: make ref.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import save  # noqa: E402

torch.set_default_dtype(torch.float64)


def scan(lam, b, reverse):
    """x_k = lam x_{k-1} + b_k over dim 1 of b (B, L, N), from a zero state."""
    L = b.shape[1]
    xs, x = [None] * L, torch.zeros_like(b[:, 0])
    for k in (range(L - 1, -1, -1) if reverse else range(L)):
        x = lam * x + b[:, k]
        xs[k] = x
    return torch.stack(xs, 1)


def layer(p, x, mask, N, CH):
    u = x * mask[..., None]
    lam = torch.exp(-torch.exp(p["nu_log"]) + 1j * torch.exp(p["theta_log"]))  # (N)
    Bn = torch.complex(p["B_re"], p["B_im"]) * torch.exp(p["gamma_log"])[:, None]  # (N, H)
    C = torch.complex(p["C_re"], p["C_im"])  # (H, CH N)
    b = torch.einsum("nh,blh->bln", Bn, u.to(Bn.dtype))
    y = p["D"] * u
    for c in range(CH):
        xs = scan(lam, b, reverse=c == 1)
        y = y + torch.einsum("hn,bln->blh", C[:, c * N:(c + 1) * N], xs).real
    return y


def make(out, name, H, B, L, N, r_min, r_max, phase, bidir, masked, seed):
    rng = np.random.default_rng(seed)
    CH = 2 if bidir else 1
    u1, u2 = rng.uniform(size=N), rng.uniform(size=N)
    nu = -0.5 * np.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2)
    p = {
        "nu_log": np.log(nu),
        "theta_log": np.log(phase * u2),
        "gamma_log": 0.5 * np.log(-np.expm1(-2 * nu)) + 0.1 * rng.standard_normal(N),
        "B_re": rng.standard_normal((N, H)) / np.sqrt(2 * H),
        "B_im": rng.standard_normal((N, H)) / np.sqrt(2 * H),
        "C_re": rng.standard_normal((H, CH * N)) / np.sqrt(N),
        "C_im": rng.standard_normal((H, CH * N)) / np.sqrt(N),
        "D": rng.standard_normal(H),
    }
    x = rng.uniform(-1, 1, (B, L, H))
    dy = rng.uniform(-1, 1, (B, L, H))
    mask = np.ones((B, L), np.uint8)
    if masked:
        mask[-1, L - 4:] = 0
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tp, tx, torch.tensor(mask, dtype=torch.float64), N, CH)
    (y * torch.tensor(dy)).sum().backward()
    t = {"x": x, "dy": dy, "y": y.detach().numpy(), "dx": tx.grad.numpy()}
    for k, v in tp.items():
        t["param." + k] = v.detach().numpy()
        t["grad." + k] = v.grad.numpy()
    if masked:
        t["mask"] = mask
    kv = f"d_state={N};r_min={r_min};r_max={r_max};max_phase={phase};bidirectional={'true' if bidir else 'false'}"
    save(os.path.join(out, name), t, {"mixer": "lru", "kv": kv, "D": H, "B": B, "L": L})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    make(out, "lru_causal.safetensors", H=4, B=2, L=12, N=6, r_min=0.0, r_max=0.99, phase=6.28, bidir=False,
         masked=False, seed=1)
    make(out, "lru_causal_mask.safetensors", H=5, B=2, L=16, N=8, r_min=0.9, r_max=0.999, phase=0.314, bidir=False,
         masked=True, seed=2)
    make(out, "lru_bidir_mask.safetensors", H=6, B=2, L=10, N=4, r_min=0.5, r_max=0.9, phase=3.14, bidir=True,
         masked=True, seed=3)


if __name__ == "__main__":
    main()
