#!/usr/bin/env python3
"""gen_mega.py OUTDIR: reference files for the MEGA mixer (models/mega.c),
computed from the equations of the MEGA paper (Ma et al., ICLR 2023, eq. 3-15;
models.md 7) with PyTorch autograd in float64: the EMA kernel by its explicit
sum over the h dims, the convolution by direct sums (no FFT), the attention
block by block with explicit masks, so nothing is shared with lra's code.

  p = sigmoid(delta), q = 1 - p sigmoid(alpha)
  k_c[l] = (1/sqrt(h)) sum_n gamma beta p q^l      (l < truncation)
  EMA(x)_t = sum_{j<=t} k_fwd[j] u_{t-j} (+ sum_{s>=0} k_bwd[s] u_{t+s})   u = x masked
  X' = SiLU(EMA(Xn) + omega Xn),  Xn = norm(X) if prenorm else X
  [u | z | r | hx] = X' Wmx^T + b,  phi = sigmoid(u), Z, R = SiLU(z), SiLU(r)
  Q, K = kappa_0 Z + mu_0, kappa_1 Z + mu_1,  V = SiLU(Xn Wv^T + bv)
  softmax: A = softmax(Q K^T / sqrt(z) + b_rel) over real keys of the chunk
  laplace: A = f(Q K^T / n_real + b_rel) * keymask
  H = SiLU(hx + ((A V) R) Wh^T + bh),  out = X + phi (H - X),  Y = norm(out) if postnorm
Writes the t_mixer_refcheck format (tests/mixer_check.h). Run: make ref.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import save  # noqa: E402

torch.set_default_dtype(torch.float64)


def ema_kernel(p, rows, N, Lk, L):
    P = torch.sigmoid(p["move.delta"][..., 0])                      # (rows, N)
    Q = 1 - P * torch.sigmoid(p["move.alpha"][..., 0])
    coef = p["move.gamma"] * p["move.beta"][..., 0] * P / math.sqrt(N)
    taps = [(coef * Q ** l).sum(-1) if l < Lk else torch.zeros(rows) for l in range(L)]
    return torch.stack(taps, -1)                                    # (rows, L)


def ema(p, xn, mask, N, bidir, trunc):
    Bsz, L, D = xn.shape
    Lk = min(trunc, L) if trunc > 0 else L
    k = ema_kernel(p, 2 * D if bidir else D, N, Lk, L)
    u = xn * mask[..., None]
    cols = []
    for t in range(L):
        acc = sum(k[:D, j] * u[:, t - j] for j in range(t + 1))
        if bidir:
            acc = acc + sum(k[D:, s] * u[:, t + s] for s in range(L - t))
        cols.append(acc)
    return torch.stack(cols, 1)                                     # (B, L, D)


def norm(kind, p, x, eps=1e-5):
    if kind == "layer":
        return F.layer_norm(x, x.shape[-1:], p["norm.norm.weight"], p["norm.norm.bias"], eps)
    if kind == "scale":
        return p["norm.norm.scalar"] * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)
    if kind == "batch":  # eval mode: running statistics
        return ((x - p["norm.norm.running_mean"]) / torch.sqrt(p["norm.norm.running_var"] + eps)
                * p["norm.norm.weight"] + p["norm.norm.bias"])
    return x


def attention(q, k, v, w, mask, C, M, kind, z):
    Bsz, L, _ = q.shape
    out = []
    for b in range(Bsz):
        blocks = []
        for c0 in range(0, L, C):
            qc, kc, vc, m = q[b, c0:c0 + C], k[b, c0:c0 + C], v[b, c0:c0 + C], mask[b, c0:c0 + C]
            bias = torch.stack([torch.stack([w[M - 1 + j - i] for j in range(C)]) for i in range(C)])
            real = m > 0
            if kind == "softmax":
                if not real.any():
                    real = torch.ones_like(real)
                s = qc @ kc.T / math.sqrt(z) + bias
                s = s.masked_fill(~real[None, :], float("-inf"))
                A = torch.softmax(s, -1)
            else:
                n = max(1.0, float(real.sum()))
                x = qc @ kc.T / n + bias
                A = 0.5 * (1 + torch.erf((x - 0.707107) / (0.282095 * math.sqrt(2.0)))) * m[None, :]
            blocks.append(A @ vc)
        out.append(torch.cat(blocks, 0))
    return torch.stack(out)


def layer(p, x, mask, cfg):
    D, N, z, v = cfg["D"], cfg["ndim"], cfg["z_dim"], cfg["v_dim"]
    L = x.shape[1]
    xn = norm(cfg["norm"], p, x) if cfg["prenorm"] else x
    V = F.silu(xn @ p["v_proj.weight"].T + p["v_proj.bias"])
    mx = F.silu(ema(p, xn, mask, N, cfg["bidir"], cfg["trunc"]) + p["move.omega"] * xn)
    base = mx @ p["mx_proj.weight"].T + p["mx_proj.bias"]
    u, zz, r, hx = torch.split(base, [D, z, v, D], -1)
    phi, Z, R = torch.sigmoid(u), F.silu(zz), F.silu(r)
    q = Z * p["gamma"][0] + p["beta"][0]
    k = Z * p["gamma"][1] + p["beta"][1]
    C = cfg["chunk"] if 0 < cfg["chunk"] < L else L
    M = cfg["chunk"] if cfg["chunk"] > 0 else cfg["maxpos"]
    O = attention(q, k, V, p["rel_pos_bias.rel_pos_bias"], mask, C, M, cfg["attn"], z)
    H = F.silu(hx + (O * R) @ p["h_proj.weight"].T + p["h_proj.bias"])
    out = x + phi * (H - x)
    return out if cfg["prenorm"] else norm(cfg["norm"], p, out)


def make(out, name, cfg, B, L, masked, seed):
    rng = np.random.default_rng(seed)
    D, N, z, v = cfg["D"], cfg["ndim"], cfg["z_dim"], cfg["v_dim"]
    R = 2 * D if cfg["bidir"] else D
    M = cfg["chunk"] if cfg["chunk"] > 0 else cfg["maxpos"]
    X = 2 * D + z + v
    u = lambda *s: rng.uniform(-1, 1, s)  # noqa: E731
    p = {
        "move.delta": u(R, N, 1), "move.alpha": u(R, N, 1),
        "move.beta": u(R, N, 1) + np.where(np.arange(N) % 2, -1.0, 1.0)[None, :, None], "move.gamma": u(R, N),
        "move.omega": u(D),
        "v_proj.weight": u(v, D) / math.sqrt(D), "v_proj.bias": 0.1 * u(v),
        "mx_proj.weight": u(X, D) / math.sqrt(D), "mx_proj.bias": 0.1 * u(X),
        "h_proj.weight": u(D, v) / math.sqrt(v), "h_proj.bias": 0.1 * u(D),
        "gamma": u(2, z), "beta": 0.5 * u(2, z), "rel_pos_bias.rel_pos_bias": 0.5 * u(2 * M - 1),
    }
    if cfg["norm"] == "layer":
        p.update({"norm.norm.weight": 1 + 0.2 * u(D), "norm.norm.bias": 0.2 * u(D)})
    elif cfg["norm"] == "scale":
        p["norm.norm.scalar"] = np.array([1.3])
    elif cfg["norm"] == "batch":
        p.update({"norm.norm.weight": 1 + 0.2 * u(D), "norm.norm.bias": 0.2 * u(D),
                  "norm.norm.running_mean": 0.3 * u(D), "norm.norm.running_var": 1 + 0.5 * u(D)})
    x = rng.uniform(-1, 1, (B, L, D))
    dy = rng.uniform(-1, 1, (B, L, D))
    mask = np.ones((B, L), np.uint8)
    if masked:
        mask[-1, L - 5:] = 0
    tp = {k: torch.tensor(val, requires_grad=not k.endswith(("running_mean", "running_var"))) for k, val in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    y = layer(tp, tx, torch.tensor(mask, dtype=torch.float64), cfg)
    (y * torch.tensor(dy)).sum().backward()
    t = {"x": x, "dy": dy, "y": y.detach().numpy(), "dx": tx.grad.numpy()}
    for k, val in tp.items():
        t["param." + k] = val.detach().numpy()
        if val.requires_grad:
            t["grad." + k] = val.grad.numpy()
    if masked:
        t["mask"] = mask
    kv = (f"ndim={N};z_dim={z};v_dim={v};attn={cfg['attn']};chunk={cfg['chunk']};"
          f"bidirectional={'true' if cfg['bidir'] else 'false'};truncation={cfg['trunc']};"
          f"max_positions={cfg['maxpos']};norm={cfg['norm']};prenorm={'true' if cfg['prenorm'] else 'false'}")
    save(os.path.join(out, name), t, {"mixer": "mega", "kv": kv, "D": D, "B": B, "L": L})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    base = {"D": 6, "ndim": 3, "z_dim": 4, "v_dim": 8, "trunc": 0, "maxpos": 12}
    make(out, "mega_softmax_bidir_layer.safetensors",
         dict(base, attn="softmax", chunk=-1, bidir=True, norm="layer", prenorm=False), B=2, L=10, masked=True, seed=1)
    make(out, "mega_laplace_chunk_batch.safetensors",
         dict(base, attn="laplace", chunk=4, bidir=True, norm="batch", prenorm=True, trunc=5), B=2, L=12, masked=True,
         seed=2)
    make(out, "mega_softmax_chunk_causal_scale.safetensors",
         dict(base, attn="softmax", chunk=3, bidir=False, norm="scale", prenorm=False), B=2, L=9, masked=False, seed=3)


if __name__ == "__main__":
    main()
