#!/usr/bin/env python3
"""gen_hyena.py OUTDIR: reference files for the Hyena mixer (models/hyena.c),
computed from the operator of models.md 8 (Poli et al. 2023, code form: N-1
long filters, each gate before its convolution) with PyTorch autograd in
float64. Nothing is shared with lra's implementation: the short filter and
the long convolutions are explicit sums over taps (a Toeplitz matrix per
channel, no FFT), the window an explicit exponential.

  u = in_proj(x);  u[t] = b + sum_j w[j] u[t-2+j] (depthwise, causal, width 3)
  split x_0 .. x_{N-1}, v (padded positions zeroed)
  h = Wout Sin(.. Sin(W_0 z[0:L] + b_0) ..),  Sin(a) = sin(freq a)
  k[c][l] = h[l][c] (exp(-t_l |deltas_c|) + shift)
  v <- k_o * (v x_{N-1-o}) + bias_o (v x_{N-1-o}),  o = 0 .. N-2
  y = out_proj(v x_0)
Bidirectional: filter rows c = 2 (o D + d) + r, r = 0 causal taps on u[t-j],
r = 1 anti-causal taps on u[t+1+i] (S4's two-sided layout).
Writes the t_mixer_refcheck format (tests/mixer_check.h). Run: make ref.
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import save  # noqa: E402

torch.set_default_dtype(torch.float64)


def toeplitz(kf, kb, L):
    """(C, L, L) matrices T[t, s] = kf[t - s] (s <= t), kb[s - t - 1] (s > t)."""
    t = torch.arange(L)[:, None]
    s = torch.arange(L)[None, :]
    lag = (t - s).clamp(min=0)
    T = kf[:, lag] * (s <= t)
    if kb is not None:
        T = T + kb[:, (s - t - 1).clamp(min=0)] * (s > t)
    return T


def layer(p, x, mask, N, NI, CH, shift):
    Bsz, L, D = x.shape
    u = x @ p["in_proj.weight"].T + p["in_proj.bias"]                     # (B, L, W)
    w = p["short_filter.weight"][:, 0, :]                                  # (W, K)
    K = w.shape[1]
    sc = p["short_filter.bias"].expand_as(u).clone()
    for j in range(K):
        lag = K - 1 - j
        sc[:, lag:] = sc[:, lag:] + w[:, j] * u[:, :L - lag]
    sc = sc * mask[..., None]
    xs = [sc[..., i * D:(i + 1) * D] for i in range(N + 1)]
    v = xs[N]
    # implicit filters
    f = "filter_fn.implicit_filter."
    a = p["filter_fn.pos_emb.z"][0, :L]
    for j in range(NI + 1):
        a = torch.sin(p[f + "1.freq"] * (a @ p[f + f"{2 * j}.weight"].T + p[f + f"{2 * j}.bias"]))
    h = a @ p[f + f"{2 * NI + 2}.weight"].T                                 # (L, C)
    t = p["filter_fn.pos_emb.t"][0, :L]                                     # (L, 1)
    h = h * (torch.exp(-t * p["filter_fn.modulation.deltas"][0].abs()) + shift)
    k = h.T.reshape(N - 1, D, CH, L)
    bias = p["filter_fn.bias"].reshape(N - 1, D)
    for o in range(N - 1):
        g = v * xs[N - 1 - o]                                               # (B, L, D)
        T = toeplitz(k[o, :, 0], k[o, :, 1] if CH == 2 else None, L)       # (D, L, L)
        v = torch.einsum("dts,bsd->btd", T, g) + bias[o] * g
    y = v * xs[0]
    return y @ p["out_proj.weight"].T + p["out_proj.bias"]


def make(out, name, D, B, L, N, F, E, NI, bidir, shift, masked, seed):
    rng = np.random.default_rng(seed)
    CH = 2 if bidir else 1
    W, Df = (N + 1) * D, (N - 1) * D
    C = CH * Df
    f = "filter_fn.implicit_filter."
    bands = (E - 1) // 2
    tl = np.linspace(0, 1, L)
    fb = np.linspace(1e-4, bands - 1, bands)
    wl = 2 * math.pi * np.arange(L) / L
    z = np.concatenate([tl[:, None], np.cos(fb * wl[:, None]), -np.sin(fb * wl[:, None])], -1)
    deltas = np.repeat(np.linspace(math.log(0.3) / 1.5, math.log(0.3) / 0.3, Df), CH)
    p = {
        "in_proj.weight": rng.uniform(-1, 1, (W, D)) / math.sqrt(D),
        "in_proj.bias": rng.uniform(-0.5, 0.5, W),
        "out_proj.weight": rng.uniform(-1, 1, (D, D)) / math.sqrt(D),
        "out_proj.bias": rng.uniform(-0.5, 0.5, D),
        "short_filter.weight": rng.uniform(-1, 1, (W, 1, 3)) / math.sqrt(3),
        "short_filter.bias": rng.uniform(-0.5, 0.5, W),
        "filter_fn.bias": rng.standard_normal(Df),
        "filter_fn.pos_emb.z": (z + 0.05 * rng.standard_normal(z.shape))[None],
        "filter_fn.pos_emb.t": tl[None, :, None],
        "filter_fn.modulation.deltas": deltas[None, None],
        f + "1.freq": 1 + 0.3 * rng.standard_normal((1, F)),
    }
    for j in range(NI + 1):
        fan = F if j else E
        p[f + f"{2 * j}.weight"] = rng.uniform(-1, 1, (F, fan)) / math.sqrt(fan)
        p[f + f"{2 * j}.bias"] = rng.uniform(-1, 1, F) / math.sqrt(fan)
    p[f + f"{2 * NI + 2}.weight"] = rng.uniform(-1, 1, (C, F)) / math.sqrt(F)
    buffers = ("filter_fn.pos_emb.t", "filter_fn.modulation.deltas")
    x = rng.uniform(-1, 1, (B, L, D))
    dy = rng.uniform(-1, 1, (B, L, D))
    mask = np.ones((B, L), np.uint8)
    if masked:
        mask[-1, L - 3:] = 0
    tp = {k: torch.tensor(v, requires_grad=k not in buffers) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tp, tx, torch.tensor(mask, dtype=torch.float64), N, NI, CH, shift)
    (y * torch.tensor(dy)).sum().backward()
    t = {"x": x, "dy": dy, "y": y.detach().numpy(), "dx": tx.grad.numpy()}
    for k, v in tp.items():
        t["param." + k] = v.detach().numpy()
        if v.grad is not None:
            t["grad." + k] = v.grad.numpy()
    if masked:
        t["mask"] = mask
    kv = (f"order={N};filter_order={F};emb_dim={E};num_inner_mlps={NI};"
          f"bidirectional={'true' if bidir else 'false'};shift={shift}")
    save(os.path.join(out, name), t, {"mixer": "hyena", "kv": kv, "D": D, "B": B, "L": L})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    make(out, "hyena_causal_mask.safetensors", D=4, B=2, L=12, N=2, F=8, E=3, NI=2, bidir=False, shift=0.0,
         masked=True, seed=1)
    make(out, "hyena_bidir_order3.safetensors", D=3, B=2, L=10, N=3, F=6, E=5, NI=1, bidir=True, shift=0.1,
         masked=True, seed=2)
    make(out, "hyena_causal_order3.safetensors", D=5, B=1, L=9, N=3, F=7, E=7, NI=0, bidir=False, shift=0.0,
         masked=False, seed=3)


if __name__ == "__main__":
    main()
