"""gen_s4.py: reference files for the S4 mixer (models/s4.c), from the math of
models.md 4 in float64 with torch autograd, independent of the Cauchy/Woodbury
route of the C code: per channel the conjugate-extended dense system
    A = diag(Lambda, conj Lambda) - P P^H,  P = [P, conj P],  B = [B, conj B],
its bilinear discretisation
    Abar = (I - dt/2 A)^-1 (I + dt/2 A),  Bbar = dt (I - dt/2 A)^-1 B,
C recovered from the stored C~ by C (I - Abar^L) = C~ (S4's C tilde for the
kernel length L = L_max), and the power series K[l] = C Abar^l Bbar; then the
convolution by direct sums (causal, or S4's two-sided layout: the second kernel
read from lag +1 backwards), the skip D u, and the length mask on the input.

Parameter values are HiPPO-LegS-like (numpy eigh of the skew part, as S4's
nplr), slightly perturbed so that every entry has its own gradient.

Writes <outdir>/s4_causal_mask.safetensors and <outdir>/s4_bidir.safetensors in
the format t_mixer_refcheck reads (tests/mixer_check.h).
usage: /usr/bin/python3 tests/ref/gen_s4.py tests/ref
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import save  # noqa: E402

torch.set_default_dtype(torch.float64)


def hippo_legs_nplr(N):
    """Lambda, P, B (N/2 complex each): modes of the LegS normal part with
    negative imaginary part, sorted ascending; P = V^* P_legs, B = V^* B_legs."""
    n = np.arange(N)
    A = np.where(n[:, None] > n[None, :], -np.sqrt(2 * n[:, None] + 1) * np.sqrt(2 * n[None, :] + 1), 0.0)
    A = A - np.diag(n + 1.0)
    P = np.sqrt(n + 0.5)
    B = np.sqrt(2 * n + 1.0)
    S = A + np.outer(P, P) + 0.5 * np.eye(N)  # skew-symmetric
    w, V = np.linalg.eigh(-1j * S)
    idx = np.argsort(w)[: N // 2]
    V = V[:, idx]
    lam = -0.5 + 1j * w[idx]
    return lam, V.conj().T @ P, V.conj().T @ B


def make_params(rng, H, S, N, CH, dt_exp):
    """Parameters in the spec shapes of models/s4.c (complex as (..., 2))."""
    Nc = N // 2
    lam, P, B = hippo_legs_nplr(N)
    B = B.real + 1j * np.clip(B.imag, -2, 2)
    dt = np.exp(rng.uniform(np.log(0.01), np.log(0.3), H))
    pert = lambda shape: 1 + 0.1 * rng.uniform(-1, 1, shape)  # noqa: E731
    A_real = np.log(-lam.real)[None, :] + 0.1 * rng.uniform(-1, 1, (S, Nc))
    A_imag = -lam.imag[None, :] * pert((S, Nc))
    Ps = P[None, :] * pert((S, Nc)) + 0.05j * rng.uniform(-1, 1, (S, Nc))
    Bs = B[None, :] * pert((S, Nc)) + 0.05j * rng.uniform(-1, 1, (S, Nc))
    C = (rng.standard_normal((CH, H, Nc)) + 1j * rng.standard_normal((CH, H, Nc))) * np.sqrt(0.5)
    ri = lambda z: np.stack([z.real, z.imag], axis=-1)  # noqa: E731
    return {
        "D": rng.standard_normal((1, H)),
        "kernel.inv_dt": (np.log(dt) if dt_exp else np.log(np.expm1(dt)))[:, None],
        "kernel.C": ri(C),
        "kernel.B": ri(Bs)[None],
        "kernel.A_real": A_real,
        "kernel.A_imag": A_imag,
        "kernel.P": ri(Ps)[None],
    }


def kernels(p, H, S, CH, L, dt_exp):
    """K (H, CH, L) from the dense system (module docstring)."""
    inv_dt = p["kernel.inv_dt"][:, 0]
    dt = torch.exp(inv_dt) if dt_exp else torch.nn.functional.softplus(inv_dt)
    lam = -torch.exp(p["kernel.A_real"]) - 1j * p["kernel.A_imag"]  # (S, Nc)
    Pc = torch.view_as_complex(p["kernel.P"][0].contiguous())
    Bc = torch.view_as_complex(p["kernel.B"][0].contiguous())
    Cc = torch.view_as_complex(p["kernel.C"].contiguous())  # (CH, H, Nc)
    K = []
    for h in range(H):
        s = h % S  # S4's repeat of the S rows over the H channels
        lf = torch.cat([lam[s], lam[s].conj()])
        Pf = torch.cat([Pc[s], Pc[s].conj()])
        Bf = torch.cat([Bc[s], Bc[s].conj()])
        N = lf.shape[0]
        I = torch.eye(N, dtype=torch.complex128)
        A = torch.diag(lf) - Pf[:, None] * Pf.conj()[None, :]
        M1 = I - dt[h] / 2 * A
        Ab = torch.linalg.solve(M1, I + dt[h] / 2 * A)
        Bb = dt[h] * torch.linalg.solve(M1, Bf[:, None])  # (N, 1)
        AL = torch.linalg.matrix_power(Ab, L)
        Kh = []
        for c in range(CH):
            Ct = torch.cat([Cc[c, h], Cc[c, h].conj()])[:, None]  # C~ as a column
            Ccol = torch.linalg.solve((I - AL).transpose(0, 1), Ct)  # (I - Abar^L)^T C^T = C~^T
            x, taps = Bb, []
            for _ in range(L):
                taps.append((Ccol.transpose(0, 1) @ x)[0, 0].real)
                x = Ab @ x
            Kh.append(torch.stack(taps))
        K.append(torch.stack(Kh))
    return torch.stack(K)


def conv(u, K, bidir):
    """y (B, H, L): direct sums, causal or the two-sided layout."""
    L = u.shape[-1]
    t = torch.arange(L)
    d = t[:, None] - t[None, :]  # lag t - s
    T = torch.where(d >= 0, K[:, 0][:, d.clamp(min=0)], torch.zeros(()))
    if bidir:
        T = T + torch.where(d < 0, K[:, 1][:, (-d - 1).clamp(min=0)], torch.zeros(()))
    return torch.einsum("hts,bhs->bht", T, u)


def case(path, seed, D, B, L, N, S, bidir, dt_exp, masked):
    rng = np.random.default_rng(seed)
    CH = 2 if bidir else 1
    params = {k: torch.tensor(v, requires_grad=True) for k, v in make_params(rng, D, S, N, CH, dt_exp).items()}
    x = torch.tensor(rng.uniform(-1, 1, (B, L, D)), requires_grad=True)
    dy = torch.tensor(rng.uniform(-1, 1, (B, L, D)))
    mask = np.ones((B, L), dtype=np.uint8)
    if masked:
        for b in range(B):
            mask[b, L - 3 * b:] = 0
    u = x.permute(0, 2, 1) * torch.tensor(mask, dtype=torch.float64)[:, None, :]  # S4Block's length mask
    K = kernels(params, D, S, CH, L, dt_exp)
    y = conv(u, K, bidir) + params["D"][0][None, :, None] * u
    y = y.permute(0, 2, 1)
    (y * dy).sum().backward()
    out = {"x": x.detach().numpy(), "dy": dy.numpy(), "y": y.detach().numpy(), "dx": x.grad.numpy()}
    for k, v in params.items():
        out["param." + k] = v.detach().numpy()
        out["grad." + k] = v.grad.numpy()
    if masked:
        out["mask"] = mask
    kv = "d_state=%d;n_ssm=%d;bidirectional=%s;dt_transform=%s" % (
        N, S, "true" if bidir else "false", "exp" if dt_exp else "softplus")
    save(path, out, {"mixer": "s4", "kv": kv, "D": D, "B": B, "L": L})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    case(os.path.join(out, "s4_causal_mask.safetensors"), 1, D=4, B=2, L=12, N=6, S=2, bidir=False, dt_exp=False,
         masked=True)
    case(os.path.join(out, "s4_bidir.safetensors"), 2, D=3, B=2, L=10, N=4, S=1, bidir=True, dt_exp=True,
         masked=False)


if __name__ == "__main__":
    main()
