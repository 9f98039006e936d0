"""bench_torch.py: the PyTorch side of `lra bench`: forward and backward time
and peak memory of the same one-block models in float32 PyTorch, written the
way the official implementations write them, so that the two can be compared
line by line (same CSV columns; impl = torch).

The model (harness/bench.c, models/config.c with n_layers = 1, dropout 0,
pool = mean, head_hidden = none): token embedding (vocab 16, N(0, 1)), one
residual block, final norm, mean over L, Linear(H -> 2), cross-entropy.
  attention  LRA Transformer block (models.md 1, 2): sinusoidal positions,
             x += Wo attn(LN(x)) (4 heads, d_qkv = H, no biases, matmul +
             softmax: torch 1.13 has no fused attention on CPU),
             x += W2 GELU_tanh(W1 LN(x) + b1) + b2 (d_ffn = 4H), LayerNorm
             eps 1e-6, final LayerNorm.
  s4d, s4    S4 block (models.md 1, 3, 4; state-spaces/s4 S4Block + FFTConv,
             transposed = false, bidirectional off, n_ssm 1, d_state 64):
             x += GLU(W GELU(K * u + D u) + b), u = BatchNorm(x), final
             BatchNorm. s4d: ZOH kernel by the naive log-Vandermonde product
             (exp broadcast over (H, N, L), SSMKernelDiag); s4: DPLR kernel by
             the naive Cauchy sums at the roots of unity, rank-1 Woodbury,
             irfft (SSMKernelDPLR, cauchy_naive); convolution by
             rfft/irfft at n = 2L (FFTConv).
  lru        LRU block (models.md 1, 6; the official JAX LRU and its
             SequenceLayer, lra's defaults for mixer=lru): x += GLU(W
             GELU_tanh(LRU(u)) + b), u = BatchNorm(x), no final norm; the
             LRU with d_state = 256 complex modes (--lru-d-state): B_norm u
             and Re(C x) by real matmuls, the recurrence by the official's
             associative scan (jax.lax.associative_scan's odd/even
             recursion, written in PyTorch, lambda broadcast over (B, L)).
  hyena      the same S4 block with the Hyena operator in place of K * u + D u
             (models.md 8; HazyResearch/safari standalone_hyena.py written out:
             order 2, filter_order 64, emb_dim 3, 2 inner Sin layers, short
             Conv1d of width 3, rfft/irfft at n = 2L with the bias term, GELU
             after out_proj as S4's FFTConv does).
  s5         S5 block (models.md 1, 5; lindermanlab/S5 SequenceLayer + S5SSM, the
             defaults of models/config.c: ssm_size 256, conj_sym, causal, ZOH,
             BatchNorm prenorm, half_glu1 with tanh GELU, no final norm):
             Lbar = exp(Lambda dt), Bbar = (Lbar - 1)/Lambda B~ (complex64),
             B u as a complex matmul, the recurrence by JAX's associative_scan
             algorithm (odd/even recursion, log depth) written with torch ops,
             y = 2 Re(C~ x) + D u; x += g * sigmoid(W g + b), g = GELU(y).
  mega       MEGA block (models.md 1, 7; facebookresearch/mega
             MovingAverageGatedAttention + NormalizedFeedForwardNetwork as
             the LRA encoder builds them, postnorm LayerNorm): bidirectional
             MultiHeadEMA (ndim 16, kernel by exp(l log q), FFT of size
             2(2L-1) on the left-padded input), v/mx/h projections
             (z = 64, v = 2H), single-head softmax attention with the simple
             relative bias (matmul + softmax, chunks of --mega-chunk when
             > 0), gated residual, LayerNorm; FFN H -> 2H -> H with SiLU,
             residual, LayerNorm; no final norm.
BatchNorm runs on the (B L, H) view: the same statistics as BatchNorm1d on
(B, H, L) as S4's Normalization does it, without its two transposes.
The attention mask is left out (every token is valid in the benchmark).

Each (mixer, L) point runs in a fresh subprocess, so ru_maxrss is the peak
of that point alone (it includes the PyTorch runtime, about 0.3 GB).

--device cuda runs the same models on the GPU in float32 (TF32 off), timed
with torch.cuda.synchronize() around each pass; attention then goes through
torch.nn.functional.scaled_dot_product_attention (PyTorch's fused kernels),
and peak_mib is torch.cuda.max_memory_allocated of the point.

usage: /usr/bin/python3 tests/ref/bench_torch.py --mixers attention,s4d,s4 \
         --lengths 1024,4096,16384 --batch 16 --width 256 --repeats 3 \
         --threads 2 --out results/bench_cpu.csv
"""
import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time

HEADER = "impl,device,threads,mixer,B,H,L,fwd_ms,bwd_ms,total_ms,tokens_per_s,peak_mib,rss_mib,params,status"
MIXERS = ("attention", "s4d", "s4", "s5", "lru", "hyena", "mega")


# ---- the model ------------------------------------------------------------------------

def associative_scan(torch, a, b):
    """Inclusive scan of x_k = a_k x_{k-1} + b_k over dim 1 (a, b (B, L, N)),
    by jax.lax.associative_scan's recursion: combine neighbouring pairs, scan
    the half-length sequence, then fill in the even positions."""
    L = b.shape[1]
    if L < 2:
        return b
    a0, b0, a1, b1 = a[:, 0:L - 1:2], b[:, 0:L - 1:2], a[:, 1::2], b[:, 1::2]
    odd = associative_scan(torch, a1 * a0, a1 * b0 + b1)   # x at positions 1, 3, 5, ...
    ae, be_ = a[:, 2::2], b[:, 2::2]                        # positions 2, 4, ...
    even = ae * odd[:, :ae.shape[1]] + be_
    even = torch.cat([b[:, :1], even], dim=1)               # x_0 = b_0
    out = torch.stack([even[:, :odd.shape[1]], odd], dim=2).flatten(1, 2)
    return torch.cat([out, even[:, odd.shape[1]:]], dim=1)  # odd L: the last even position


def build_model(torch, mixer, H, L, heads, d_state, vocab=16, n_classes=2, lru_d_state=256, ssm_size=256, fused=False,
                mega_chunk=-1):
    nn, F = torch.nn, torch.nn.functional

    def c2r(x):
        return nn.Parameter(torch.view_as_real(x.to(torch.cfloat)).contiguous())

    class Attention(nn.Module):
        """Multi-head softmax attention, fused in_proj (3H, H) as nn.MultiheadAttention, no biases."""

        def __init__(self):
            super().__init__()
            self.nh = heads
            self.in_proj = nn.Linear(H, 3 * H, bias=False)
            self.out_proj = nn.Linear(H, H, bias=False)
            for w in (self.in_proj.weight.view(3, H, H)):
                nn.init.xavier_uniform_(w)
            nn.init.xavier_uniform_(self.out_proj.weight)

        def forward(self, x):
            Bn, Ln, _ = x.shape
            dh = H // self.nh
            q, k, v = self.in_proj(x).view(Bn, Ln, 3, self.nh, dh).permute(2, 0, 3, 1, 4)
            if fused:
                o = F.scaled_dot_product_attention(q, k, v)                     # (B, NH, L, Dh)
                return self.out_proj(o.transpose(1, 2).reshape(Bn, Ln, H))
            s = torch.matmul(q * (1.0 / math.sqrt(dh)), k.transpose(-1, -2))  # (B, NH, L, L)
            o = torch.matmul(s.softmax(dim=-1), v)                              # (B, NH, L, Dh)
            return self.out_proj(o.transpose(1, 2).reshape(Bn, Ln, H))

    class TransformerBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(H, eps=1e-6)
            self.attn = Attention()
            self.norm2 = nn.LayerNorm(H, eps=1e-6)
            self.fc1 = nn.Linear(H, 4 * H)
            self.fc2 = nn.Linear(4 * H, H)

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))

    class SSMKernel(nn.Module):
        """Shared parameters of S4D and S4 (state-spaces/s4 SSMKernelDiag names and shapes)."""

        def __init__(self, dplr):
            super().__init__()
            Nc = d_state // 2
            dt = torch.exp(torch.rand(H, 1) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
            self.inv_dt = nn.Parameter(torch.log(torch.expm1(dt)))           # softplus^-1
            if dplr:
                lam, P, B = legs_nplr(d_state)
                self.P = c2r(torch.from_numpy(P).view(1, 1, Nc))
            else:  # S4D-Lin
                lam = -0.5 - 1j * math.pi * torch.arange(Nc).numpy()
                B = torch.ones(Nc).numpy()
            lam = torch.from_numpy(lam)
            self.A_real = nn.Parameter(torch.log(-lam.real).float().view(1, Nc))
            self.A_imag = nn.Parameter((-lam.imag).float().view(1, Nc))
            self.B = c2r(torch.from_numpy(B).view(1, 1, Nc))
            self.C = c2r(torch.randn(1, H, Nc, dtype=torch.cfloat))

        def params(self):
            dt = F.softplus(self.inv_dt)                                    # (H, 1)
            A = (-torch.exp(self.A_real) - 1j * self.A_imag).expand(H, -1)  # (H, Nc), n_ssm = 1
            B = torch.view_as_complex(self.B).expand(1, H, -1)              # (1, H, Nc)
            return dt, A, B, torch.view_as_complex(self.C)                  # C (1, H, Nc)

    class S4DKernel(SSMKernel):
        def __init__(self):
            super().__init__(dplr=False)

        def forward(self, L):
            dt, A, B, C = self.params()
            dtA = dt * A
            C = B * C * (torch.exp(dtA) - 1.0) / A
            vand = torch.exp(dtA.unsqueeze(-1) * torch.arange(L, dtype=torch.float32, device=dtA.device))  # (H, Nc, L)
            return 2 * torch.einsum("chn,hnl->chl", C, vand).real                       # (1, H, L)

    class S4Kernel(SSMKernel):
        def __init__(self):
            super().__init__(dplr=True)
            omega = torch.tensor(complex(math.cos(2 * math.pi / L), -math.sin(2 * math.pi / L)), dtype=torch.cfloat)
            omega = omega ** torch.arange(L // 2 + 1)
            self.register_buffer("omega", omega, persistent=False)
            self.register_buffer("z", 2 * (1 - omega) / (1 + omega), persistent=False)

        def forward(self, L):
            dt, A, B, C = self.params()
            P = torch.view_as_complex(self.P).expand(1, H, -1)
            A = A * dt
            Bc = torch.cat([B, P], dim=-3)                       # (2, H, Nc)
            Cc = torch.cat([C, P.conj()], dim=-3)                # (2, H, Nc): [C, Q]
            v = Bc.unsqueeze(-3) * Cc.unsqueeze(-4) * dt         # (2, 2, H, Nc)
            v, w = torch.cat([v, v.conj()], -1), torch.cat([A, A.conj()], -1)
            r = (v.unsqueeze(-1) / (self.z - w.unsqueeze(-1))).sum(dim=-2)  # (2, 2, H, L/2+1)
            k_f = r[:-1, :-1] - r[:-1, -1:] * r[-1:, :-1] / (1 + r[-1:, -1:])
            k_f = k_f * 2 / (1 + self.omega)
            return torch.fft.irfft(k_f, n=L)[-1]                 # (1, H, L)

    class FFTConv(nn.Module):
        def __init__(self, kernel):
            super().__init__()
            self.D = nn.Parameter(torch.randn(1, H))
            self.kernel = kernel

        def forward(self, x):                                    # (B, L, H)
            u = x.transpose(-1, -2)                              # (B, H, L)
            Ln = u.size(-1)
            k = self.kernel(Ln)                                  # (1, H, L)
            k_f = torch.fft.rfft(k, n=2 * Ln)
            u_f = torch.fft.rfft(u, n=2 * Ln)
            y = torch.fft.irfft(u_f * k_f, n=2 * Ln)[..., :Ln]
            y = y + u * self.D.unsqueeze(-1)
            return F.gelu(y.transpose(-1, -2))

    class Sin(nn.Module):
        def __init__(self, dim, w=1.0):
            super().__init__()
            self.freq = nn.Parameter(w * torch.ones(1, dim))

        def forward(self, x):
            return torch.sin(self.freq * x)

    class HyenaFilter(nn.Module):
        """Implicit filter: FFN(positional embedding) times the exponential decay window."""

        def __init__(self, d, order=64, emb_dim=3, inner=2):
            super().__init__()
            self.bias = nn.Parameter(torch.randn(d))
            t = torch.linspace(0, 1, L)[None, :, None]
            w = 2 * math.pi * torch.linspace(0, L - 1, L)[None, :, None] / L
            bands = (emb_dim - 1) // 2
            f = torch.linspace(1e-4, bands - 1, bands)[None, None]
            z = torch.exp(-1j * f * w)
            self.z = nn.Parameter(torch.cat([t, z.real, z.imag], dim=-1))
            self.register_buffer("t", t)
            act = Sin(order)
            layers = [nn.Linear(emb_dim, order), act]
            for _ in range(inner):
                layers += [nn.Linear(order, order), act]
            layers.append(nn.Linear(order, d, bias=False))
            self.implicit_filter = nn.Sequential(*layers)
            deltas = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, d)[None, None]
            self.register_buffer("deltas", deltas)

        def filter(self, Ln):
            h = self.implicit_filter(self.z[:, :Ln])
            return h * torch.exp(-self.t[:, :Ln] * self.deltas.abs())

    class Hyena(nn.Module):
        """HyenaOperator of order 2 (safari standalone_hyena.py)."""

        def __init__(self):
            super().__init__()
            self.in_proj = nn.Linear(H, 3 * H)
            self.out_proj = nn.Linear(H, H)
            self.short_filter = nn.Conv1d(3 * H, 3 * H, 3, padding=2, groups=3 * H)
            self.filter_fn = HyenaFilter(H)

        def forward(self, x):                                    # (B, L, H)
            Ln = x.size(-2)
            u = self.in_proj(x).transpose(-1, -2)                # (B, 3H, L)
            uc = self.short_filter(u)[..., :Ln]
            x0, x1, v = uc.split(H, dim=1)
            k = self.filter_fn.filter(Ln)[0].transpose(0, 1)     # (H, L)
            v = v * x1
            n = 2 * Ln
            k_f = torch.fft.rfft(k, n=n) / n
            u_f = torch.fft.rfft(v, n=n)
            y = torch.fft.irfft(u_f * k_f, n=n, norm="forward")[..., :Ln]
            v = y + v * self.filter_fn.bias.unsqueeze(-1)
            return F.gelu(self.out_proj((v * x0).transpose(-1, -2)))

    class S4Block(nn.Module):
        def __init__(self, kernel):
            super().__init__()
            self.norm = nn.BatchNorm1d(H)
            self.layer = Hyena() if kernel is None else FFTConv(kernel)
            self.output_linear = nn.Linear(H, 2 * H)

        def forward(self, x):
            z = self.norm(x.reshape(-1, H)).view_as(x)
            return x + F.glu(self.output_linear(self.layer(z)), dim=-1)

    class LRU(nn.Module):
        """The official LRU's parameters (names, shapes, initialisation)."""

        def __init__(self, N, r_min=0.0, r_max=1.0, max_phase=6.28):
            super().__init__()
            u1, u2 = torch.rand(N), torch.rand(N)
            nu = -0.5 * torch.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2)
            self.nu_log = nn.Parameter(torch.log(nu))
            self.theta_log = nn.Parameter(torch.log(max_phase * u2))
            self.gamma_log = nn.Parameter(0.5 * torch.log(-torch.expm1(-2 * nu)))
            self.B_re = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))
            self.B_im = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))
            self.C_re = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
            self.C_im = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
            self.D = nn.Parameter(torch.randn(H))

        def forward(self, u):                                    # (B, L, H)
            lam = torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
            g = torch.exp(self.gamma_log).unsqueeze(-1)
            bu = torch.complex(u @ (self.B_re * g).t(), u @ (self.B_im * g).t())  # (B, L, N)
            x = associative_scan(torch, lam.expand_as(bu), bu)
            return x.real @ self.C_re.t() - x.imag @ self.C_im.t() + self.D * u

    class LRUBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.BatchNorm1d(H, momentum=0.01)
            self.lru = LRU(lru_d_state)
            self.output_linear = nn.Linear(H, 2 * H)

        def forward(self, x):
            z = self.norm(x.reshape(-1, H)).view_as(x)
            return x + F.glu(self.output_linear(F.gelu(self.lru(z), approximate="tanh")), dim=-1)
    def s5_scan(a, b):
        """Inclusive scan of x_k = a_k x_{k-1} + b_k over dim 1, as jax.lax.associative_scan
        computes it: combine pairs, scan the half-length sequence, fill in the rest."""
        n = a.size(1)
        if n < 2:
            return a, b
        a_odd, b_odd = s5_scan(a[:, 1::2] * a[:, 0:-1:2], a[:, 1::2] * b[:, 0:-1:2] + b[:, 1::2])
        if n % 2 == 0:
            a_ev, b_ev = a[:, 2::2] * a_odd[:, :-1], a[:, 2::2] * b_odd[:, :-1] + b[:, 2::2]
        else:
            a_ev, b_ev = a[:, 2::2] * a_odd, a[:, 2::2] * b_odd + b[:, 2::2]
        a_ev, b_ev = torch.cat([a[:, :1], a_ev], 1), torch.cat([b[:, :1], b_ev], 1)

        def interleave(e, o):
            out = torch.stack([e[:, :o.size(1)], o], 2).flatten(1, 2)
            return torch.cat([out, e[:, o.size(1):]], 1) if e.size(1) > o.size(1) else out
        return interleave(a_ev, a_odd), interleave(b_ev, b_odd)

    class S5SSM(nn.Module):
        def __init__(self):
            super().__init__()
            Pc = ssm_size // 2
            self.Lambda_re = nn.Parameter(torch.full((Pc,), -0.5))
            self.Lambda_im = nn.Parameter(-torch.linspace(0.1, 100.0, Pc))
            self.B = nn.Parameter(torch.randn(Pc, H, 2) / math.sqrt(2 * ssm_size))
            self.C = nn.Parameter(torch.randn(H, Pc, 2) / math.sqrt(ssm_size))
            self.D = nn.Parameter(torch.randn(H))
            self.log_step = nn.Parameter(torch.empty(Pc, 1).uniform_(math.log(1e-3), math.log(1e-1)))

        def forward(self, u):                                    # (B, L, H)
            lam = torch.complex(self.Lambda_re, self.Lambda_im)
            lbar = torch.exp(lam * torch.exp(self.log_step[:, 0]))
            bbar = ((lbar - 1) / lam)[:, None] * torch.view_as_complex(self.B)          # (Pc, H)
            bu = torch.complex(u, torch.zeros_like(u)) @ bbar.transpose(0, 1)          # (B, L, Pc)
            _, xs = s5_scan(lbar.expand_as(bu), bu)
            y = 2 * (xs @ torch.view_as_complex(self.C).transpose(0, 1)).real
            return y + self.D * u

    class S5Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.BatchNorm1d(H, momentum=0.05)
            self.seq = S5SSM()
            self.out2 = nn.Linear(H, H)

        def forward(self, x):
            z = self.norm(x.reshape(-1, H)).view_as(x)
            g = F.gelu(self.seq(z), approximate="tanh")
            return x + g * torch.sigmoid(self.out2(g))

    class MegaEMA(nn.Module):
        """fairseq MultiHeadEMA, bidirectional."""

        def __init__(self, ndim=16):
            super().__init__()
            self.ndim, self.scale = ndim, math.sqrt(1.0 / ndim)
            self.delta = nn.Parameter(torch.randn(2 * H, ndim, 1) * 0.2)
            self.alpha = nn.Parameter(torch.randn(2 * H, ndim, 1) * 0.2)
            sign = torch.ones(ndim, 1)
            sign[1::2] = -1
            self.beta = nn.Parameter(torch.randn(2 * H, ndim, 1) * 0.02 + sign)
            self.gamma = nn.Parameter(torch.randn(2 * H, ndim))
            self.omega = nn.Parameter(torch.randn(H))

        def forward(self, x):                                    # (B, L, H)
            Ln = x.size(1)
            p = torch.sigmoid(self.delta)
            q = 1.0 - p * torch.sigmoid(self.alpha)
            vander = torch.arange(Ln).to(p).view(1, 1, Ln) * torch.log(q)
            k = torch.einsum("dnl,dn->dl", (p * self.beta) * torch.exp(vander), self.gamma * self.scale)
            k1, k2 = torch.split(k, [H, H], dim=0)
            k = F.pad(k1, (Ln - 1, 0)) + F.pad(k2.flip(-1), (0, Ln - 1))
            u = F.pad(x.transpose(1, 2), (Ln - 1, 0))
            n = 2 * (2 * Ln - 1)
            y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., 2 * Ln - 2:3 * Ln - 2]
            return F.silu(y.transpose(1, 2) + x * self.omega)

    class MegaLayer(nn.Module):
        """MovingAverageGatedAttention (postnorm LayerNorm) and the normalised FFN."""

        def __init__(self, z=64, chunk=mega_chunk):
            super().__init__()
            v = 2 * H
            self.z, self.v, self.chunk = z, v, chunk
            self.move = MegaEMA()
            self.v_proj = nn.Linear(H, v)
            self.mx_proj = nn.Linear(H, z + v + 2 * H)
            self.h_proj = nn.Linear(v, H)
            for m in (self.v_proj, self.mx_proj, self.h_proj):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            self.gamma = nn.Parameter(torch.randn(2, z) * 0.02)
            self.beta = nn.Parameter(torch.zeros(2, z))
            self.M = chunk if chunk > 0 else L
            self.rel_pos_bias = nn.Parameter(torch.randn(2 * self.M - 1) * 0.02)
            self.norm = nn.LayerNorm(H)
            self.fc1, self.fc2, self.norm2 = nn.Linear(H, 2 * H), nn.Linear(2 * H, H), nn.LayerNorm(H)

        def rel_bias(self, C):  # b[i, j] = w[M - 1 + j - i], fairseq's pad/tile construction
            b = self.rel_pos_bias[self.M - C:self.M + C - 1]
            t = torch.tile(F.pad(b, (0, C)), (C,))[:-C].view(C, 3 * C - 2)
            r = (2 * C - 1) // 2
            return t[:, r:t.size(1) - r]

        def forward(self, x):
            Bn, Ln, _ = x.shape
            residual = x
            v = F.silu(self.v_proj(x))
            mx = self.move(x)
            u, zr, hx = torch.split(self.mx_proj(mx), [H, self.z + self.v, H], dim=-1)
            u = torch.sigmoid(u)
            z, r = torch.split(F.silu(zr), [self.z, self.v], dim=-1)
            q, k = torch.unbind(z.unsqueeze(2) * self.gamma + self.beta, dim=2)
            C = self.chunk if 0 < self.chunk < Ln else Ln
            q, k = q.reshape(Bn, Ln // C, C, self.z), k.reshape(Bn, Ln // C, C, self.z)
            vv = v.reshape(Bn, Ln // C, C, self.v)
            qk = torch.matmul(q * self.z ** -0.5, k.transpose(2, 3)) + self.rel_bias(C)
            h = torch.matmul(qk.softmax(dim=-1), vv).view(Bn, Ln, self.v)
            h = F.silu(hx + self.h_proj(h * r))
            x = self.norm(torch.addcmul(residual, u, h - residual))
            return self.norm2(x + self.fc2(F.silu(self.fc1(x))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(vocab, H)
            if mixer == "mega":
                self.pe = None
                self.block = MegaLayer()
                self.final_norm = None
            elif mixer == "s5":
                self.pe, self.final_norm = None, None
                self.block = S5Block()
            elif mixer == "attention":
                self.register_buffer("pe", sinusoid(torch, L, H), persistent=False)
                self.block = TransformerBlock()
                self.final_norm = nn.LayerNorm(H, eps=1e-6)
            elif mixer == "lru":
                self.pe, self.final_norm = None, None
                self.block = LRUBlock()
            else:
                self.pe = None
                self.block = S4Block(None if mixer == "hyena" else S4DKernel() if mixer == "s4d" else S4Kernel())
                self.final_norm = nn.BatchNorm1d(H)
            self.head = nn.Linear(H, n_classes)

        def forward(self, tokens, labels):
            x = self.encoder(tokens)
            if self.pe is not None:
                x = x + self.pe
            x = self.block(x)
            if self.final_norm is None:
                pass
            elif self.pe is not None:
                x = self.final_norm(x)
            else:
                x = self.final_norm(x.reshape(-1, H)).view_as(x)
            return F.cross_entropy(self.head(x.mean(dim=1)), labels)

    return Model()


def sinusoid(torch, L, D):
    """pe[p, 2i] = sin(p / 10000^(2i/D)), pe[p, 2i+1] = cos(...)  (lra.md 1.7)"""
    p = torch.arange(L, dtype=torch.float64).unsqueeze(1)
    freq = torch.pow(10000.0, -(torch.arange(D) // 2 * 2).double() / D)
    pe = p * freq
    pe[:, 1::2] = torch.cos(pe[:, 1::2])
    pe[:, 0::2] = torch.sin(pe[:, 0::2])
    return pe.float()


def legs_nplr(N):
    """HiPPO-LegS in normal plus low-rank form (models.md 4): Lambda, P, B of the
    N/2 modes with negative imaginary part, Im B clipped to [-2, 2]."""
    import numpy as np
    q = np.arange(N, dtype=np.float64)
    r = np.sqrt(2 * q + 1)
    A = -np.where(q[:, None] > q[None, :], np.outer(r, r), 0.0) - np.diag(q + 1)
    P = np.sqrt(q + 0.5)
    S = A + np.outer(P, P)
    w_im, V = np.linalg.eigh(-1j * (S - np.diag(np.diag(S))))
    idx = np.argsort(w_im)[: N // 2]
    V = V[:, idx]
    lam = np.mean(np.diag(S)) + 1j * w_im[idx]
    B = V.conj().T @ r
    B = B.real + 1j * np.clip(B.imag, -2, 2)
    return lam, V.conj().T @ P, B


# ---- one point (child process) --------------------------------------------------------

def run_point(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    cuda = a.device == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    B, H, L = a.batch, a.width, a.length
    model = build_model(torch, a.mixer, H, L, a.heads, a.d_state, lru_d_state=a.lru_d_state, ssm_size=a.ssm_size,
                        fused=cuda, mega_chunk=a.mega_chunk).to(a.device)
    model.train()
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(1, 16, (B, L), generator=g).to(a.device)
    labels = (torch.arange(B) % 2).to(a.device)
    fw, bw = [], []
    for r in range(-1, a.repeats):
        sync()
        t0 = time.perf_counter()
        loss = model(tokens, labels)
        sync()
        t1 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss.backward()
        sync()
        t2 = time.perf_counter()
        if not math.isfinite(loss.item()):
            raise FloatingPointError("loss is %r" % loss.item())
        if r >= 0:
            fw.append((t1 - t0) * 1e3)
            bw.append((t2 - t1) * 1e3)
    fw.sort()
    bw.sort()
    out = {"fwd_ms": fw[len(fw) // 2], "bwd_ms": bw[len(bw) // 2], "params": n_params,
           "threads": 0 if cuda else torch.get_num_threads()}
    if cuda:
        out["peak_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
        out["device"] = torch.cuda.get_device_name()
    return out


def child_main(a):
    try:
        out = run_point(a)
        out["status"] = "ok"
    except MemoryError:
        out = {"status": "out of memory"}
    except RuntimeError as e:  # torch.cuda.OutOfMemoryError is one
        msg = str(e)
        out = {"status": "out of memory" if "alloc" in msg or "memory" in msg else "error: " + msg[:80]}
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("BENCH_RESULT " + json.dumps(out), flush=True)


# ---- the driver -------------------------------------------------------------------------

def estimate_gib(a, mixer, L):
    """Rough peak of one point: lra's activation rule (24 B L H reals) plus the
    L x L scores of attention (scores, probabilities, their gradients) or the
    broadcast kernel tensors of the naive SSM kernels (value, saved operands,
    gradient)."""
    B, H, Nc = a.batch, a.width, a.d_state // 2
    est = 4.0 * B * L * H * 24
    if mixer == "attention":
        if a.device != "cuda":  # the GPU's fused attention keeps no L x L tensor
            est += 4.0 * B * a.heads * L * L * 4
    elif mixer == "mega":
        C = a.mega_chunk if 0 < a.mega_chunk < L else L
        est += 4.0 * B * L * C * 4 + 4.0 * B * L * H * 16
    elif mixer == "s4d":
        est += 8.0 * H * Nc * L * 4
    elif mixer == "lru":
        est += 8.0 * B * L * a.lru_d_state * 12   # complex scan operands, levels and gradients
    elif mixer == "hyena":
        est += 4.0 * B * L * H * 16
    else:
        est += 8.0 * 4 * H * 2 * Nc * (L // 2 + 1) * 3
    return est / 2 ** 30


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def run_child(a, mixer, L):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--mixer", mixer, "--length", str(L),
           "--batch", str(a.batch), "--width", str(a.width), "--repeats", str(a.repeats),
           "--threads", str(a.threads), "--heads", str(a.heads), "--d-state", str(a.d_state),
           "--lru-d-state", str(a.lru_d_state),
           "--ssm-size", str(a.ssm_size), "--device", a.device,
           "--mega-chunk", str(a.mega_chunk)]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    if p.returncode < 0:
        sig = signal.Signals(-p.returncode).name
        return {"status": "killed (%s%s)" % (sig, ", out of memory?" if sig == "SIGKILL" else "")}
    tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "failed (exit %d: %s)" % (p.returncode, tail[:80])}


def main():
    ap = argparse.ArgumentParser(description="PyTorch side of `lra bench` (same models, same CSV).")
    ap.add_argument("--mixers", default=",".join(MIXERS))
    ap.add_argument("--lengths", default="1024,4096,16384")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-state", type=int, default=64)
    ap.add_argument("--lru-d-state", type=int, default=256, help="lru: complex modes (lra's mixer default)")
    ap.add_argument("--ssm-size", type=int, default=256, help="S5 state size P (lra's mixer default)")
    ap.add_argument("--mega-chunk", type=int, default=-1, help="MEGA chunk size (-1: full attention); "
                    "lra bench: --model mixer.chunk=C")
    ap.add_argument("--max-gib", type=float, default=16.0)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--out")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mixer", help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads <= 0:
        a.threads = os.cpu_count() or 1
    if a.child:
        return child_main(a)
    mixers = [m for m in a.mixers.split(",") if m]
    bad = [m for m in mixers if m not in MIXERS]
    if bad:
        ap.error("--mixers: unknown %s (known: %s)" % (",".join(bad), ",".join(MIXERS)))
    lengths = [int(x) for x in a.lengths.split(",") if x]
    if not lengths or min(lengths) < 1 or a.batch < 1 or a.width < 1 or a.repeats < 1:
        ap.error("lengths, batch, width and repeats must be positive")
    if a.width % a.heads:
        ap.error("--heads must divide --width")
    device = "%s (%d thread%s)" % (cpu_name(), a.threads, "" if a.threads == 1 else "s")
    if a.device == "cuda":
        import torch
        device = torch.cuda.get_device_name()
    csv = None
    if a.out:
        fresh = not os.path.exists(a.out)
        csv = open(a.out, "a")
        if fresh:
            csv.write(HEADER + "\n")
    print("torch bench on %s: one block per mixer, B=%d, H=%d, fwd+bwd, median of %d"
          % (device, a.batch, a.width, a.repeats))
    print("%-10s %7s %10s %10s %10s %12s %10s %10s" % ("mixer", "L", "fwd ms", "bwd ms", "total ms", "tokens/s",
                                                      "peak MiB", "params"))
    for mixer in mixers:
        for L in lengths:
            if estimate_gib(a, mixer, L) > a.max_gib:
                r = {"status": "skipped (over --max-gib)"}
            else:
                r = run_child(a, mixer, L)
            ok = r["status"] == "ok"
            fw, bw = r.get("fwd_ms", 0.0), r.get("bwd_ms", 0.0)
            total = fw + bw
            tps = a.batch * L / (total / 1e3) if ok else 0.0
            rss = r.get("rss_mib", 0.0)
            peak = r.get("peak_mib", rss)
            if ok:
                print("%-10s %7d %10.1f %10.1f %10.1f %12.0f %10.0f %10d"
                      % (mixer, L, fw, bw, total, tps, peak, r["params"]))
            else:
                print("%-10s %7d %s" % (mixer, L, r["status"]))
            sys.stdout.flush()
            if csv:
                status = r["status"].replace(",", ";").replace('"', "'")
                csv.write('torch,"%s",%d,%s,%d,%d,%d,%.3f,%.3f,%.3f,%.1f,%.1f,%.1f,%d,%s\n'
                          % (device, r.get("threads", 0 if a.device == "cuda" else a.threads), mixer, a.batch, a.width, L, fw, bw, total, tps,
                             peak, rss, r.get("params", 0), status))
                csv.flush()
    if csv:
        csv.close()


if __name__ == "__main__":
    main()
