"""lra_torch.py: an independent PyTorch implementation of lra's whole model
(models/model.h), written from the math of ../shared/reference/models.md
(sections 0.5, 1, 2) and the op contracts of backends/backend.h with plain
torch ops in float64, for two uses:
  - tests/ref/gen_model.py builds reference bundles with it (random weights
    and inputs -> logits, loss and gradients by autograd) that the C tests
    compare against (tests/test_model_ref.c);
  - tests/ref/check_bundle.py rebuilds a bundle written by `lra dump` and
    recomputes everything.

    m = LraModel(metadata["lra.model"], metadata["lra.task_shape"])
    m.load({name: array})                  # lra's parameter names and shapes
    logits, loss = m.forward(tokens, lengths, labels, training=False)
    grads = m.gradients(tokens, lengths, labels, training)   # name -> array

The model is built from the configuration string lra writes
(lra_model_config_string: "mixer=...;n_layers=...;...;mixer.<key>=...") and
the task shape ("vocab=...;n_classes=...;n_inputs=...;seq_len=...;
scalar_input=...;scalar_mean=...;scalar_std=..."). Batches are laid out as
lra does: sequence s = k B + e holds input k of example e (input-major), a
CLS slot at position 0 when pool=cls, masks from the lengths. Training mode
uses batch statistics in BatchNorm; every dropout must be 0 there (lra's
random streams are not reproduced), else ValueError.

Mixers: attention (models.md 2), s4d (models.md 3: Vandermonde kernel by
explicit sums), s4 (models.md 4: dense conjugate-extended system and its
power series, C recovered from C~), lru (models.md 6: the recurrence by an
explicit loop over time), hyena (models.md 8: implicit Sin-FFN
filters, gated long convolutions), s5 (models.md 5: the recurrence step by
step); convolutions by direct sums. Needs torch
(Debian python3-torch) and numpy.
"""
import math

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

MODEL_KEYS = ["mixer", "n_layers", "d_model", "norm", "norm_eps", "bn_momentum", "prenorm", "final_norm", "stage",
              "d_ffn", "ffn_act", "gelu", "dropout", "input_dropout", "tie_dropout", "pos", "pool", "combine",
              "head_hidden", "head_act", "linear_init", "head_init", "embed_std"]
TASK_KEYS = ["vocab", "n_classes", "n_inputs", "seq_len", "scalar_input", "scalar_mean", "scalar_std"]


def parse_kv(s, what):
    out = {}
    for item in s.split(";"):
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"{what}: malformed entry {item!r} in {s!r}")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def as_bool(v, key):
    table = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1}
    if v not in table:
        raise ValueError(f"{key}: expected a boolean, got {v!r}")
    return table[v]


def f32(x):
    """lra keeps hyperparameters (eps, momentum, scalar mean/std) as float."""
    return float(np.float32(x))


# ---- elementwise math (backend.h) ------------------------------------------------

def act(x, name):
    if name == "relu":
        return torch.clamp(x, min=0)
    if name == "gelu":  # erf form
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "silu":
        return x * torch.sigmoid(x)
    if name == "identity":
        return x
    raise ValueError(f"unknown activation {name!r}")


def linear(x, W, b=None):
    y = x @ W.t()
    return y + b if b is not None else y


# ---- model configuration -----------------------------------------------------------

class ModelConfig:
    def __init__(self, s):
        kv = parse_kv(s, "lra.model")
        missing = [k for k in MODEL_KEYS if k not in kv]
        if missing:
            raise ValueError(f"lra.model lacks {', '.join(missing)} (lra writes every key): {s!r}")
        unknown = [k for k in kv if k not in MODEL_KEYS and not k.startswith("mixer.")]
        if unknown:
            raise ValueError(f"lra.model: unknown keys {', '.join(unknown)}")
        self.mixer = kv["mixer"]
        self.mixer_kv = {k[6:]: v for k, v in kv.items() if k.startswith("mixer.")}
        self.n_layers, self.D, self.d_ffn = int(kv["n_layers"]), int(kv["d_model"]), int(kv["d_ffn"])
        self.norm, self.norm_eps, self.bn_momentum = kv["norm"], f32(kv["norm_eps"]), f32(kv["bn_momentum"])
        self.prenorm, self.final_norm = as_bool(kv["prenorm"], "prenorm"), as_bool(kv["final_norm"], "final_norm")
        self.stage, self.ffn_act, self.head_act = kv["stage"], kv["ffn_act"], kv["head_act"]
        self.gelu = {"erf": "gelu", "tanh": "gelu_tanh"}[kv["gelu"]]
        self.dropout, self.input_dropout = float(kv["dropout"]), float(kv["input_dropout"])
        self.pos, self.pool, self.combine = kv["pos"], kv["pool"], kv["combine"]
        hh = kv["head_hidden"]
        self.head_hidden = None if hh == "auto" else [] if hh in ("none", "") else [int(w) for w in hh.split(",")]
        for key, val, allowed in (("norm", self.norm, ("none", "layer", "batch", "scale")),
                                  ("stage", self.stage, ("none", "gelu", "glu", "half_glu1", "half_glu2", "full_glu")),
                                  ("pos", self.pos, ("none", "sinusoidal", "learned")),
                                  ("pool", self.pool, ("mean", "mean_all", "cls", "last")),
                                  ("combine", self.combine, ("concat", "nli"))):
            if val not in allowed:
                raise ValueError(f"lra.model: {key}={val!r} not one of {allowed}")


class TaskShape:
    def __init__(self, s):
        kv = parse_kv(s, "lra.task_shape")
        missing = [k for k in TASK_KEYS if k not in kv]
        if missing:
            raise ValueError(f"lra.task_shape lacks {', '.join(missing)}: {s!r}")
        self.vocab, self.n_classes = int(kv["vocab"]), int(kv["n_classes"])
        self.n_inputs, self.seq_len, self.scalar_input = int(kv["n_inputs"]), int(kv["seq_len"]), int(kv["scalar_input"])
        self.scalar_mean, self.scalar_std = f32(kv["scalar_mean"]), f32(kv["scalar_std"])
        if not self.scalar_input:
            self.scalar_mean, self.scalar_std = 0.0, 1.0


# ---- norms (backend.h: layernorm, batchnorm, scalenorm) ------------------------------

def norm_specs(cfg, D, prefix):
    if cfg.norm == "layer":
        return [(prefix + "weight", (D,), True), (prefix + "bias", (D,), True)]
    if cfg.norm == "batch":
        return [(prefix + "weight", (D,), True), (prefix + "bias", (D,), True),
                (prefix + "running_mean", (D,), False), (prefix + "running_var", (D,), False)]
    if cfg.norm == "scale":
        return [(prefix + "scalar", (1,), True)]
    return []


def norm_apply(cfg, p, prefix, x, training):
    """x (Bs, L, D). LayerNorm over D (biased variance); BatchNorm over all
    Bs L rows, padded positions included, batch statistics (biased) in
    training, running statistics in eval; ScaleNorm g x / sqrt(mean x^2 + eps)."""
    eps = cfg.norm_eps
    if cfg.norm == "layer":
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * p[prefix + "weight"] + p[prefix + "bias"]
    if cfg.norm == "batch":
        if training:
            rows = x.reshape(-1, x.shape[-1])
            mu = rows.mean(0)
            var = ((rows - mu) ** 2).mean(0)
        else:
            mu, var = p[prefix + "running_mean"], p[prefix + "running_var"]
        return (x - mu) / torch.sqrt(var + eps) * p[prefix + "weight"] + p[prefix + "bias"]
    if cfg.norm == "scale":
        return p[prefix + "scalar"] * x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps)
    return x


def batchnorm_running_update(cfg, x, running_mean, running_var, unbiased=True):
    """Running statistics after one training forward over x (Bs, L, D):
    running = (1 - momentum) running + momentum batch, unbiased batch variance
    (PyTorch)."""
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[0]
    mu = rows.mean(0)
    var = ((rows - mu) ** 2).sum(0) / (n - 1 if unbiased else n)
    m = cfg.bn_momentum
    return (1 - m) * running_mean + m * mu, (1 - m) * running_var + m * var


# ---- mixers -----------------------------------------------------------------------

class AttentionMixer:
    """Multi-head softmax self-attention without biases (models.md 2):
    y = concat_h(softmax(Q K^T / sqrt(Dh) + mask) V) Wo^T with padding keys
    masked, keys j > i hidden when causal, and a row whose keys are all
    masked giving 0 (lra's op)."""
    keys = ("heads", "d_qkv", "causal", "dropout")

    def __init__(self, kv, D, L):
        self.D = D
        self.NH = int(kv.get("heads", 4))
        self.E = int(kv.get("d_qkv", D))
        self.causal = as_bool(kv.get("causal", "0"), "mixer.causal")
        self.dropout = float(kv.get("dropout", 0))
        if self.E % self.NH:
            raise ValueError(f"mixer.heads={self.NH} does not divide d_qkv={self.E}")

    def specs(self):
        D, E = self.D, self.E
        return [("q_proj.weight", (E, D), True), ("k_proj.weight", (E, D), True),
                ("v_proj.weight", (E, D), True), ("out_proj.weight", (D, E), True)]

    def dropouts(self):
        return {"mixer.dropout": self.dropout}

    def forward(self, p, x, mask, training):
        Bs, L, _ = x.shape
        NH, Dh = self.NH, self.E // self.NH

        def heads(W):  # (Bs, L, E) -> (Bs, NH, L, Dh)
            return linear(x, W).reshape(Bs, L, NH, Dh).permute(0, 2, 1, 3)

        q, k, v = heads(p["q_proj.weight"]), heads(p["k_proj.weight"]), heads(p["v_proj.weight"])
        s = torch.einsum("bhid,bhjd->bhij", q, k) / math.sqrt(Dh)
        allowed = mask[:, None, None, :].expand(Bs, NH, L, L).clone()
        if self.causal:
            allowed &= torch.ones(L, L, dtype=torch.bool).tril()
        s = s.masked_fill(~allowed, -math.inf)
        any_key = allowed.any(-1, keepdim=True)
        s = torch.where(any_key, s, torch.zeros_like(s))      # keeps softmax finite on empty rows
        prob = torch.softmax(s, -1) * any_key                  # empty rows -> 0
        o = torch.einsum("bhij,bhjd->bhid", prob, v).permute(0, 2, 1, 3).reshape(Bs, L, self.E)
        return linear(o, p["out_proj.weight"])


def cplx(t):
    """(..., 2) real view -> complex tensor (autograd flows to the real view)."""
    return t[..., 0] + 1j * t[..., 1]


def causal_or_two_sided_conv(K, u):
    """y (Bs, H, L) from K (H, CH, L), u (Bs, H, L) by direct sums (models.md
    0.2): y_t = sum_{j<=t} K0[j] u_{t-j} (+ sum_{i>=0} K1[i] u_{t+1+i} with a
    second channel, S4's two-sided layout)."""
    L = u.shape[-1]
    t = torch.arange(L)
    d = t[:, None] - t[None, :]  # lag t - s
    T = torch.where(d >= 0, K[:, 0][:, d.clamp(min=0)], torch.zeros(()))
    if K.shape[1] == 2:
        T = T + torch.where(d < 0, K[:, 1][:, (-d - 1).clamp(min=0)], torch.zeros(()))
    return torch.einsum("hts,bhs->bht", T, u)


class SSMConvMixer:
    """y = K * u + D u per channel with u = x with padded positions zeroed
    (S4Block's length mask); K (H, CH, L) from the subclass's kernel()."""

    def __init__(self, kv, D, L, who):
        self.D, self.L_max, self.who = D, L, who
        self.N = int(kv.get("d_state", 64))
        if self.N % 2:
            raise ValueError(f"{who}.d_state must be even, got {self.N}")
        self.Nc = self.N // 2
        self.CH = 2 if as_bool(kv.get("bidirectional", "0"), who + ".bidirectional") else 1
        self.dt_exp = {"softplus": 0, "exp": 1}[kv.get("dt_transform", "softplus")]

    def n_ssm(self, v):
        S = self.D if v in ("null", "none") else int(v)
        if S < 1 or self.D % S:
            raise ValueError(f"{self.who}.n_ssm={v} does not divide D={self.D}")
        return S

    def dropouts(self):
        return {}

    def dt(self, p):
        inv = p["kernel.inv_dt"][:, 0]
        return torch.exp(inv) if self.dt_exp else torch.log1p(torch.exp(-inv.abs())) + inv.clamp(min=0)

    def rows(self, t):
        """(S, ...) -> (H, ...): channel h uses SSM copy h mod S."""
        return t[torch.arange(self.D) % t.shape[0]]

    def forward(self, p, x, mask, training):
        u = x.permute(0, 2, 1) * mask.double()[:, None, :]
        K = self.kernel(p, x.shape[1])
        y = causal_or_two_sided_conv(K, u) + p["D"][0][None, :, None] * u
        return y.permute(0, 2, 1)


class S4DMixer(SSMConvMixer):
    """S4D (models.md 3): K_c[l] = 2 Re sum_n W_cn z_n^l with x = dt A,
    A = -exp(A_real) - i A_imag; ZOH: z = e^x, W = C B (e^x - 1)/A; bilinear:
    z = (1 + x/2)/(1 - x/2), W = C B dt/(1 - x/2). Explicit sums in float64."""
    keys = ("d_state", "init", "disc", "dt_min", "dt_max", "dt_transform", "n_ssm", "bidirectional")

    def __init__(self, kv, D, L):
        super().__init__(kv, D, L, "mixer.s4d")
        self.S = self.n_ssm(kv.get("n_ssm", "1"))
        self.disc = kv.get("disc", "zoh")
        if self.disc not in ("zoh", "bilinear"):
            raise ValueError(f"mixer.s4d.disc={self.disc!r}")

    def specs(self):
        H, S, Nc, CH = self.D, self.S, self.Nc, self.CH
        return [("D", (1, H), True), ("kernel.inv_dt", (H, 1), True), ("kernel.C", (CH, H, Nc, 2), True),
                ("kernel.B", (1, S, Nc, 2), True), ("kernel.A_real", (S, Nc), True), ("kernel.A_imag", (S, Nc), True)]

    def kernel(self, p, L):
        dt = self.dt(p)[:, None]                                                   # (H, 1)
        A = self.rows(-torch.exp(p["kernel.A_real"]) - 1j * p["kernel.A_imag"])    # (H, Nc)
        B = self.rows(cplx(p["kernel.B"][0]))
        C = cplx(p["kernel.C"])                                                     # (CH, H, Nc)
        x = dt * A
        if self.disc == "zoh":
            W, logz = C * B * (torch.exp(x) - 1) / A, x
        else:
            W, logz = C * B * dt / (1 - x / 2), torch.log((1 + x / 2) / (1 - x / 2))
        l = torch.arange(L, dtype=torch.float64)
        zl = torch.exp(logz[..., None] * l)                                         # (H, Nc, L)
        K = 2 * torch.einsum("chn,hnl->chl", W, zl).real
        return K.permute(1, 0, 2)                                                   # (H, CH, L)


class S4Mixer(SSMConvMixer):
    """S4 DPLR (models.md 4), by the dense power series: per channel the
    conjugate-extended system A = diag(Lf) - Pf Pf^H (Lf = [Lambda, conj Lambda],
    Pf, Bf likewise), bilinear Abar = (I - dt/2 A)^-1 (I + dt/2 A),
    Bbar = dt (I - dt/2 A)^-1 Bf, C from the stored C~ = C (I - Abar^L_max),
    K[l] = Re Cf Abar^l Bbar. L_max is the model's sequence length."""
    keys = ("d_state", "dt_min", "dt_max", "dt_transform", "n_ssm", "bidirectional", "rank")

    def __init__(self, kv, D, L):
        super().__init__(kv, D, L, "mixer.s4")
        self.S = self.n_ssm(kv.get("n_ssm", "1"))
        if int(kv.get("rank", 1)) != 1:
            raise ValueError("mixer.s4.rank: only rank 1")

    def specs(self):
        H, S, Nc, CH = self.D, self.S, self.Nc, self.CH
        return [("D", (1, H), True), ("kernel.inv_dt", (H, 1), True), ("kernel.C", (CH, H, Nc, 2), True),
                ("kernel.B", (1, S, Nc, 2), True), ("kernel.A_real", (S, Nc), True),
                ("kernel.A_imag", (S, Nc), True), ("kernel.P", (1, S, Nc, 2), True)]

    def kernel(self, p, L):
        if L > self.L_max:
            raise ValueError(f"mixer.s4: length {L} above L_max {self.L_max}")
        H, N = self.D, self.N
        dt = self.dt(p)[:, None, None]                                               # (H, 1, 1)
        lam = self.rows(-torch.exp(p["kernel.A_real"]) - 1j * p["kernel.A_imag"])     # (H, Nc)
        P, B = self.rows(cplx(p["kernel.P"][0])), self.rows(cplx(p["kernel.B"][0]))
        ext = lambda z: torch.cat([z, z.conj()], -1)                                  # noqa: E731
        lf, Pf, Bf = ext(lam), ext(P), ext(B)                                         # (H, N)
        I = torch.eye(N, dtype=torch.complex128).expand(H, N, N)
        A = torch.diag_embed(lf) - Pf[:, :, None] * Pf.conj()[:, None, :]
        M = I - dt / 2 * A
        Ab = torch.linalg.solve(M, I + dt / 2 * A)                                    # (H, N, N)
        Bb = dt[..., 0] * torch.linalg.solve(M, Bf[..., None])[..., 0]                # (H, N)
        AL = torch.linalg.matrix_power(Ab, self.L_max)
        Ct = ext(cplx(p["kernel.C"]))                                                 # (CH, H, N)
        # C (I - Abar^L) = C~  <=>  (I - Abar^L)^T C^T = C~^T
        Cf = torch.linalg.solve((I - AL).transpose(1, 2)[None], Ct[..., None])[..., 0]
        taps, s = [], Bb
        for _ in range(L):
            taps.append(torch.einsum("chn,hn->ch", Cf, s).real)
            s = torch.einsum("hmn,hn->hm", Ab, s)
        return torch.stack(taps, -1).permute(1, 0, 2)                                 # (H, CH, L)


class LRUMixer:
    """LRU (models.md 6): lambda = exp(-exp(nu_log) + i exp(theta_log)),
    B_norm = (B_re + i B_im) exp(gamma_log), x_k = lambda x_{k-1} + B_norm u_k,
    y = Re(C x) + D u with u = x with padded positions zeroed; bidirectional:
    a reverse-time scan over the same B_norm u read by C's columns N..2N-1."""
    keys = ("d_state", "r_min", "r_max", "max_phase", "bidirectional")

    def __init__(self, kv, D, L):
        self.D, self.N = D, int(kv.get("d_state", 256))
        self.CH = 2 if as_bool(kv.get("bidirectional", "0"), "mixer.lru.bidirectional") else 1

    def specs(self):
        N, H, CH = self.N, self.D, self.CH
        return [("nu_log", (N,), True), ("theta_log", (N,), True), ("gamma_log", (N,), True),
                ("B_re", (N, H), True), ("B_im", (N, H), True), ("C_re", (H, CH * N), True),
                ("C_im", (H, CH * N), True), ("D", (H,), True)]

    def dropouts(self):
        return {}

    def forward(self, p, x, mask, training):
        u = x * mask.double()[:, :, None]
        lam = torch.exp(-torch.exp(p["nu_log"]) + 1j * torch.exp(p["theta_log"]))
        Bn = (p["B_re"] + 1j * p["B_im"]) * torch.exp(p["gamma_log"])[:, None]
        C = p["C_re"] + 1j * p["C_im"]
        b = torch.einsum("nh,blh->bln", Bn, u + 0j)
        y = p["D"] * u
        L, N = u.shape[1], self.N
        for c in range(self.CH):
            xs, st = [None] * L, torch.zeros_like(b[:, 0])
            for k in (range(L - 1, -1, -1) if c else range(L)):
                st = lam * st + b[:, k]
                xs[k] = st
            y = y + torch.einsum("hn,bln->blh", C[:, c * N:(c + 1) * N], torch.stack(xs, 1)).real
        return y


class HyenaMixer:
    """Hyena, order N (models.md 8, the code form of safari's HyenaOperator):
    u = in_proj(x); depthwise causal short filter of width K; padded positions
    zeroed; split x_0 .. x_{N-1}, v; filter h = FFN(z[0:L]) with Sin(a) =
    sin(freq a), times exp(-t |deltas|) + shift; for o < N-1:
    v <- h_o * (v x_{N-1-o}) + bias_o (v x_{N-1-o}); y = out_proj(v x_0).
    Bidirectional: filter row 2 (o D + d) + r, r = 1 the anti-causal taps
    (S4's two-sided layout). Convolutions by direct sums."""
    keys = ("order", "filter_order", "emb_dim", "num_inner_mlps", "w", "short_filter_order", "dropout",
            "bidirectional", "fast_decay_pct", "slow_decay_pct", "target", "shift")

    def __init__(self, kv, D, L):
        self.D, self.L_max = D, L
        self.N = int(kv.get("order", 2))
        self.F = int(kv.get("filter_order", 64))
        self.E = int(kv.get("emb_dim", 3))
        self.NI = int(kv.get("num_inner_mlps", 2))
        self.K = int(kv.get("short_filter_order", 3))
        self.dropout = float(kv.get("dropout", 0))
        self.shift = float(kv.get("shift", 0))
        self.CH = 2 if as_bool(kv.get("bidirectional", "0"), "mixer.bidirectional") else 1

    def specs(self):
        D, N, F, E, NI = self.D, self.N, self.F, self.E, self.NI
        W, Df = (N + 1) * D, (N - 1) * D
        f = "filter_fn.implicit_filter."
        out = [("in_proj.weight", (W, D), True), ("in_proj.bias", (W,), True), ("out_proj.weight", (D, D), True),
               ("out_proj.bias", (D,), True), ("short_filter.weight", (W, 1, self.K), True),
               ("short_filter.bias", (W,), True), ("filter_fn.bias", (Df,), True),
               ("filter_fn.pos_emb.z", (1, self.L_max, E), True), ("filter_fn.pos_emb.t", (1, self.L_max, 1), False),
               ("filter_fn.modulation.deltas", (1, 1, self.CH * Df), False), (f + "1.freq", (1, F), True)]
        for j in range(NI + 1):
            out += [(f + f"{2 * j}.weight", (F, F if j else E), True), (f + f"{2 * j}.bias", (F,), True)]
        return out + [(f + f"{2 * NI + 2}.weight", (self.CH * Df, F), True)]

    def dropouts(self):
        return {"mixer.dropout": self.dropout}

    def forward(self, p, x, mask, training):
        Bs, L, D = x.shape
        N, K = self.N, self.K
        u = linear(x, p["in_proj.weight"], p["in_proj.bias"]).permute(0, 2, 1)  # (Bs, W, L)
        w = p["short_filter.weight"][:, 0]                                         # (W, K)
        sc = p["short_filter.bias"][None, :, None] + torch.zeros_like(u)
        for j in range(K):
            lag = K - 1 - j
            sc = sc + w[:, j, None] * torch.nn.functional.pad(u, (lag, 0))[..., :L]
        sc = sc * mask.double()[:, None, :]
        xs = [sc[:, i * D:(i + 1) * D] for i in range(N + 1)]
        f = "filter_fn.implicit_filter."
        a = p["filter_fn.pos_emb.z"][0, :L]
        for j in range(self.NI + 1):
            a = torch.sin(p[f + "1.freq"] * linear(a, p[f + f"{2 * j}.weight"], p[f + f"{2 * j}.bias"]))
        h = linear(a, p[f + f"{2 * self.NI + 2}.weight"])                          # (L, C)
        h = h * (torch.exp(-p["filter_fn.pos_emb.t"][0, :L] * p["filter_fn.modulation.deltas"][0].abs()) + self.shift)
        k = h.T.reshape(N - 1, D, self.CH, L)
        bias = p["filter_fn.bias"].reshape(N - 1, D)
        v = xs[N]
        for o in range(N - 1):
            g = v * xs[N - 1 - o]
            v = causal_or_two_sided_conv(k[o], g) + bias[o][None, :, None] * g
        return linear((v * xs[0]).permute(0, 2, 1), p["out_proj.weight"], p["out_proj.bias"])


class S5Mixer:
    """S5 (models.md 5): Lambda = Lambda_re (clipped to <= -1e-4 with
    clip_eigs) + i Lambda_im, dt = exp(log_step), ZOH Lbar = e^{dt Lambda},
    Bbar = (Lbar - 1)/Lambda B~ or bilinear; x_k = Lbar x_{k-1} + Bbar u_k
    step by step (reverse time for the second direction),
    y = s Re(C1 x [+ C2 x_rev]) + D u, s = 2 with conj_sym; u = x with padded
    positions zeroed."""
    keys = ("ssm_size", "blocks", "C_init", "disc", "dt_min", "dt_max", "conj_sym", "bidirectional", "clip_eigs",
            "opt_config")

    def __init__(self, kv, D, L):
        self.D = D
        P = int(kv.get("ssm_size", 256))
        self.conj = as_bool(kv.get("conj_sym", "1"), "mixer.conj_sym")
        self.Pc = P // 2 if self.conj else P
        self.bidir = as_bool(kv.get("bidirectional", "0"), "mixer.bidirectional")
        self.clip = as_bool(kv.get("clip_eigs", "0"), "mixer.clip_eigs")
        self.disc = kv.get("disc", "zoh")
        self.two_c = self.bidir and kv.get("C_init", "trunc_standard_normal") != "complex_normal"

    def specs(self):
        H, Pc = self.D, self.Pc
        out = [("Lambda_re", (Pc,), True), ("Lambda_im", (Pc,), True), ("B", (Pc, H, 2), True),
               ("log_step", (Pc, 1), True), ("D", (H,), True)]
        if self.two_c:
            return out + [("C1", (H, Pc, 2), True), ("C2", (H, Pc, 2), True)]
        return out + [("C", (H, (2 if self.bidir else 1) * Pc, 2), True)]

    def dropouts(self):
        return {}

    def forward(self, p, x, mask, training):
        re = torch.clamp(p["Lambda_re"], max=-1e-4) if self.clip else p["Lambda_re"]
        lam = re + 1j * p["Lambda_im"]
        dt = torch.exp(p["log_step"][:, 0])
        if self.disc == "bilinear":
            lbar = (1 + dt * lam / 2) / (1 - dt * lam / 2)
            bbar = (dt / (1 - dt * lam / 2))[:, None] * cplx(p["B"])
        else:
            lbar = torch.exp(dt * lam)
            bbar = ((lbar - 1) / lam)[:, None] * cplx(p["B"])
        u = x * mask.double()[..., None]
        bu = torch.einsum("nh,blh->bln", bbar, u + 0j)
        if self.two_c:
            Cs = [cplx(p["C1"]), cplx(p["C2"])]
        else:
            C = cplx(p["C"])
            Cs = [C[:, :self.Pc], C[:, self.Pc:]] if self.bidir else [C]
        L = x.shape[1]
        y = p["D"] * u
        for d, C in enumerate(Cs):
            state, xs = torch.zeros_like(bu[:, 0]), [None] * L
            for k in (range(L) if d == 0 else range(L - 1, -1, -1)):
                state = lbar * state + bu[:, k]
                xs[k] = state
            y = y + (2 if self.conj else 1) * torch.einsum("hn,bln->blh", C, torch.stack(xs, 1)).real
        return y


class NormConfig:
    """The norm settings of a mixer that brings its own norm (MEGA)."""

    def __init__(self, norm, eps, momentum):
        self.norm, self.norm_eps, self.bn_momentum = norm, eps, momentum


class MegaMixer:
    """MEGA's moving-average gated attention sub-layer (models.md 7; paper
    eq. 3-15), its own norm and gated residual included (residual_inside):
      Xn = norm(X) (prenorm), V = SiLU(Xn Wv + bv),
      X' = SiLU(EMA(Xn) + omega Xn), EMA by explicit kernel sums and a
      Toeplitz product (two-sided: lag 0 counted by both halves),
      [u | z | r | hx] = X' Wmx + b, Q/K = kappa Z + mu (Z = SiLU(z)),
      A = softmax(Q K^T / sqrt(z) + b_rel) over the real keys of each chunk
      (all keys when none is real) or laplace(Q K^T / n + b_rel) * keymask,
      H = SiLU(hx + (A V * SiLU(r)) Wh + bh), out = X + sigmoid(u) (H - X),
      Y = norm(out) (postnorm)."""
    keys = ("ndim", "z_dim", "v_dim", "attn", "chunk", "bidirectional", "truncation", "max_positions", "dropout",
            "norm", "prenorm", "norm_eps", "bn_momentum")
    residual_inside = True

    def __init__(self, kv, D, L):
        self.D, self.L_max = D, L
        self.N, self.z = int(kv.get("ndim", 16)), int(kv.get("z_dim", 64))
        self.v = int(kv.get("v_dim", 2 * D))
        self.attn = kv.get("attn", "softmax")
        chunk = int(kv.get("chunk", -1))
        self.chunk = chunk if chunk > 0 else -1
        self.CH = 2 if as_bool(kv.get("bidirectional", "1"), "mixer.bidirectional") else 1
        self.trunc = int(kv.get("truncation", 0))
        self.M = self.chunk if self.chunk > 0 else int(kv.get("max_positions", L))
        self.dropout = float(kv.get("dropout", 0))
        self.prenorm = as_bool(kv.get("prenorm", "0"), "mixer.prenorm")
        self.ncfg = NormConfig(kv.get("norm", "layer"), f32(kv.get("norm_eps", "1e-05")),
                               f32(kv.get("bn_momentum", "0.1")))

    def specs(self):
        D, R, N, z, v = self.D, self.CH * self.D, self.N, self.z, self.v
        return [("move.delta", (R, N, 1), True), ("move.alpha", (R, N, 1), True), ("move.beta", (R, N, 1), True),
                ("move.gamma", (R, N), True), ("move.omega", (D,), True), ("v_proj.weight", (v, D), True),
                ("v_proj.bias", (v,), True), ("mx_proj.weight", (2 * D + z + v, D), True),
                ("mx_proj.bias", (2 * D + z + v,), True), ("h_proj.weight", (D, v), True), ("h_proj.bias", (D,), True),
                ("gamma", (2, z), True), ("beta", (2, z), True), ("rel_pos_bias.rel_pos_bias", (2 * self.M - 1,), True)
                ] + norm_specs(self.ncfg, D, "norm.norm.")

    def dropouts(self):
        return {"mixer.dropout": self.dropout}

    def ema(self, p, xn, mask):
        L, D = xn.shape[1], self.D
        Lk = min(self.trunc, L) if self.trunc > 0 else L
        P = torch.sigmoid(p["move.delta"][..., 0])
        Q = 1 - P * torch.sigmoid(p["move.alpha"][..., 0])
        coef = p["move.gamma"] * p["move.beta"][..., 0] * P / math.sqrt(self.N)
        ls = torch.arange(L)
        k = torch.einsum("rn,rnl->rl", coef, Q[..., None] ** ls) * (ls < Lk)
        d = ls[:, None] - ls[None, :]  # lag t - s
        T = torch.where(d >= 0, k[:D][:, d.clamp(min=0)], torch.zeros(()))
        if self.CH == 2:
            T = T + torch.where(d <= 0, k[D:][:, (-d).clamp(min=0)], torch.zeros(()))
        return torch.einsum("hts,bsh->bth", T, xn * mask.double()[..., None])

    def attention(self, p, q, k, v, mask):
        Bs, L, _ = q.shape
        C = self.chunk if 0 < self.chunk < L else L
        K = L // C
        q, k, v = q.reshape(Bs, K, C, -1), k.reshape(Bs, K, C, -1), v.reshape(Bs, K, C, -1)
        m = mask.reshape(Bs, K, 1, C)
        i = torch.arange(C)
        bias = p["rel_pos_bias.rel_pos_bias"][self.M - 1 + i[None, :] - i[:, None]]
        s = torch.einsum("bkid,bkjd->bkij", q, k)
        if self.attn == "softmax":
            real = m | ~m.any(-1, keepdim=True)
            s = (s / math.sqrt(self.z) + bias).masked_fill(~real, -math.inf)
            a = torch.softmax(s, -1)
        else:
            n = m.double().sum(-1, keepdim=True).clamp(min=1)
            a = 0.5 * (1 + torch.erf((s / n + bias - 0.707107) / (0.282095 * math.sqrt(2.0)))) * m.double()
        return torch.einsum("bkij,bkjd->bkid", a, v).reshape(Bs, L, -1)

    def forward(self, p, x, mask, training, norm):
        D, z, v = self.D, self.z, self.v
        xn = norm(x) if self.prenorm else x
        V = act(linear(xn, p["v_proj.weight"], p["v_proj.bias"]), "silu")
        mx = act(self.ema(p, xn, mask) + p["move.omega"] * xn, "silu")
        u, zz, r, hx = torch.split(linear(mx, p["mx_proj.weight"], p["mx_proj.bias"]), [D, z, v, D], -1)
        Z = act(zz, "silu")
        q, k = Z * p["gamma"][0] + p["beta"][0], Z * p["gamma"][1] + p["beta"][1]
        O = self.attention(p, q, k, V, mask)
        H = act(hx + linear(O * act(r, "silu"), p["h_proj.weight"], p["h_proj.bias"]), "silu")
        out = x + torch.sigmoid(u) * (H - x)
        return out if self.prenorm else norm(out)


MIXERS = {"attention": AttentionMixer, "s4d": S4DMixer, "s4": S4Mixer, "s5": S5Mixer, "lru": LRUMixer,
          "hyena": HyenaMixer, "mega": MegaMixer}


# ---- the model ----------------------------------------------------------------------

class LraModel:
    def __init__(self, model_string, task_string):
        self.cfg = c = ModelConfig(model_string)
        self.task = t = TaskShape(task_string)
        if c.mixer not in MIXERS:
            raise ValueError(f"mixer {c.mixer!r} has no PyTorch reference here (known: {', '.join(MIXERS)})")
        if c.head_hidden is None:  # "auto" (model.c resolve_head)
            F = c.d_ffn if c.d_ffn > 0 else c.D
            if c.mixer == "attention":
                c.head_hidden = [F] + ([max(F // 2, 1)] if t.n_inputs == 2 else [])
            else:
                c.head_hidden = [c.D] if t.n_inputs == 2 else []
        self.cls = c.pool == "cls"
        self.L = t.seq_len + self.cls
        self.mixers = [MIXERS[c.mixer](c.mixer_kv, c.D, self.L) for _ in range(c.n_layers)]
        unknown = [k for k in c.mixer_kv if k not in MIXERS[c.mixer].keys]
        if unknown:
            raise ValueError(f"mixer {c.mixer}: unknown keys {', '.join(unknown)}")
        self.n_parts = 1 if t.n_inputs == 1 else 4 if c.combine == "nli" else 2
        self.specs = self._specs()
        self.p = None
        self.record = None  # prefix -> BatchNorm input of a training forward (running_stats)

    def _specs(self):
        """(name, shape, trainable) in lra's spec order (model.c model_specs)."""
        c, t, D = self.cfg, self.task, self.cfg.D
        out = []
        if t.scalar_input:
            out += [("encoder.weight", (D, 1), True), ("encoder.bias", (D,), True)]
        else:
            out += [("encoder.weight", (t.vocab, D), True)]
        if c.pos == "learned":
            out += [("pos_embedding", (self.L, D), True)]
        if self.cls:
            out += [("cls", (D,), True)]
        sw = 2 * D if c.stage in ("glu", "full_glu") else D if c.stage in ("half_glu1", "half_glu2") else 0
        for i, mx in enumerate(self.mixers):
            pre = f"blocks.{i}."
            if not getattr(mx, "residual_inside", False):
                out += norm_specs(c, D, pre + "norm1.")
            out += [(pre + "mixer." + n, s, tr) for n, s, tr in mx.specs()]
            if sw:
                out += [(pre + "stage.weight", (sw, D), True), (pre + "stage.bias", (sw,), True)]
            if c.d_ffn > 0:
                F = c.d_ffn
                out += norm_specs(c, D, pre + "norm2.")
                out += [(pre + "ffn.fc1.weight", (F, D), True), (pre + "ffn.fc1.bias", (F,), True),
                        (pre + "ffn.fc2.weight", (D, F), True), (pre + "ffn.fc2.bias", (D,), True)]
        if c.final_norm and c.norm != "none":
            out += norm_specs(c, D, "final_norm.")
        width = self.n_parts * D
        for j, o in enumerate(c.head_hidden + [t.n_classes]):
            out += [(f"head.{j}.weight", (o, width), True), (f"head.{j}.bias", (o,), True)]
            width = o
        return out

    def load(self, arrays, prefix=""):
        """arrays: name -> array with prefix + lra's names; every parameter
        must be there with its shape, and nothing else under prefix."""
        names = {n for n, _, _ in self.specs}
        extra = sorted(k[len(prefix):] for k in arrays if k.startswith(prefix) and k[len(prefix):] not in names)
        if extra:
            raise ValueError(f"tensors that are not parameters of this model: {', '.join(prefix + e for e in extra)}")
        self.p = {}
        for name, shape, trainable in self.specs:
            a = arrays.get(prefix + name)
            if a is None:
                raise ValueError(f"parameter {prefix + name} missing")
            if tuple(a.shape) != tuple(shape):
                raise ValueError(f"parameter {prefix + name}: shape {tuple(a.shape)}, expected {tuple(shape)}")
            self.p[name] = torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=trainable)

    def dropouts(self):
        d = {"dropout": self.cfg.dropout, "input_dropout": self.cfg.input_dropout}
        if self.mixers:
            d.update(self.mixers[0].dropouts())
        return d

    # -- batch layout (model.c upload_batch) --

    def layout(self, tokens, lengths):
        """tokens (B, n_inputs, seq_len), lengths (B, n_inputs) -> per sequence
        s = k B + e: tokens (Bs, L), real-position mask (Bs, L), pooling mask."""
        t, L, off = self.task, self.L, int(self.cls)
        tokens, lengths = np.asarray(tokens), np.asarray(lengths)
        B, n_in, Ls = tokens.shape
        if n_in != t.n_inputs or Ls != t.seq_len:
            raise ValueError(f"tokens of shape {tokens.shape}, task wants (B, {t.n_inputs}, {t.seq_len})")
        Bs = B * n_in
        tok = np.zeros((Bs, L), np.int64)
        mask = np.zeros((Bs, L), bool)
        pmask = np.zeros((Bs, L), bool)
        for e in range(B):
            for k in range(n_in):
                s, n = k * B + e, int(lengths[e, k])
                if not 0 <= n <= Ls:
                    raise ValueError(f"example {e} input {k}: length {n} outside [0, {Ls}]")
                tok[s, off:] = tokens[e, k]
                mask[s, off:off + n] = True
                mask[s, 0] |= bool(off)
                if self.cfg.pool == "mean":
                    pmask[s] = mask[s]
                elif self.cfg.pool == "mean_all":
                    pmask[s] = True
                elif self.cfg.pool == "cls":
                    pmask[s, 0] = True
                else:  # last real position (the first slot for an empty sequence)
                    pmask[s, off + n - 1 if n > 0 else off] = True
        if not t.scalar_input and (tok.min() < 0 or tok.max() >= t.vocab):
            raise ValueError(f"token outside [0, {t.vocab})")
        return B, torch.tensor(tok), torch.tensor(mask), torch.tensor(pmask)

    # -- forward --

    def encode(self, tok, training):
        c, t, p, D = self.cfg, self.task, self.p, self.cfg.D
        Bs, L = tok.shape
        if t.scalar_input:
            xin = (tok.double() / 255.0 - t.scalar_mean) / t.scalar_std
            if self.cls:
                xin[:, 0] = 0
            x = linear(xin[..., None], p["encoder.weight"], p["encoder.bias"])
        else:
            x = p["encoder.weight"][tok]
        if self.cls:
            x = torch.cat([p["cls"].expand(Bs, 1, D), x[:, 1:]], 1)
        if c.pos == "sinusoidal":
            pos = torch.arange(L, dtype=torch.float64)[:, None]
            i = torch.arange(D)
            freq = 10000.0 ** (-(i // 2 * 2).double() / D)
            x = x + torch.where(i % 2 == 1, torch.cos(pos * freq), torch.sin(pos * freq))
        elif c.pos == "learned":
            x = x + p["pos_embedding"]
        return x

    def norm(self, prefix, x, training, cfg=None):
        cfg = cfg or self.cfg
        if self.record is not None and training and cfg.norm == "batch":
            self.record[prefix] = (x.detach(), cfg)
        return norm_apply(cfg, self.p, prefix, x, training)

    def stage(self, p, pre, y):
        c = self.cfg
        if c.stage == "none":
            return y
        g = act(y, c.gelu)
        if c.stage == "gelu":
            return g
        z = linear(g, p[pre + "stage.weight"], p[pre + "stage.bias"])
        if c.stage in ("glu", "full_glu"):  # nn.GLU: first half * sigmoid(second half) (S5 full_glu: out1, out2 stacked)
            return z[..., :c.D] * torch.sigmoid(z[..., c.D:])
        return (g if c.stage == "half_glu1" else y) * torch.sigmoid(z)

    def block(self, i, x, mask, training):
        c, p, pre = self.cfg, self.p, f"blocks.{i}."
        mp = {n[len(pre) + 6:]: v for n, v in p.items() if n.startswith(pre + "mixer.")}
        mix = self.mixers[i]
        if getattr(mix, "residual_inside", False):  # the mixer is the whole first sub-block (MEGA)
            x1 = mix.forward(mp, x, mask, training,
                             lambda h: self.norm(pre + "mixer.norm.norm.", h, training, mix.ncfg))
        elif c.prenorm:
            x1 = x + self.stage(p, pre, mix.forward(mp, self.norm(pre + "norm1.", x, training), mask, training))
        else:
            x1 = self.norm(pre + "norm1.", x + self.stage(p, pre, mix.forward(mp, x, mask, training)), training)
        if c.d_ffn <= 0:
            return x1

        def ffn(h):
            a = act(linear(h, p[pre + "ffn.fc1.weight"], p[pre + "ffn.fc1.bias"]), c.ffn_act)
            return linear(a, p[pre + "ffn.fc2.weight"], p[pre + "ffn.fc2.bias"])

        if c.prenorm:
            return x1 + ffn(self.norm(pre + "norm2.", x1, training))
        return self.norm(pre + "norm2.", x1 + ffn(x1), training)

    def features(self, tokens, lengths, training=False):
        """The residual streams xs[0..n_layers] and the head's input features
        (pooled, combined for two inputs)."""
        if self.p is None:
            raise ValueError("no parameters loaded")
        if training:
            on = {k: v for k, v in self.dropouts().items() if v > 0}
            if on:
                raise ValueError("train mode needs every dropout at 0 for parity (lra's dropout streams are not "
                                 f"reproduced): {', '.join(f'{k}={v:g}' for k, v in on.items())}")
        c = self.cfg
        B, tok, mask, pmask = self.layout(tokens, lengths)
        xs = [self.encode(tok, training)]
        for i in range(c.n_layers):
            xs.append(self.block(i, xs[-1], mask, training))
        h = xs[-1]
        if c.final_norm and c.norm != "none":
            h = self.norm("final_norm.", h, training)
        w = pmask.double()[..., None]
        pooled = (h * w).sum(1) / w.sum(1).clamp(min=1)  # an empty row pools to 0
        u, v = pooled[:B], pooled[B:]
        if self.task.n_inputs == 1:
            feat = u
        elif c.combine == "concat":
            feat = torch.cat([u, v], -1)
        else:
            feat = torch.cat([u, v, u - v, u * v], -1)
        return xs, feat

    def forward(self, tokens, lengths, labels=None, training=False):
        c, p = self.cfg, self.p
        _, z = self.features(tokens, lengths, training)
        nh = len(c.head_hidden)
        for j in range(nh + 1):
            z = linear(z, p[f"head.{j}.weight"], p[f"head.{j}.bias"])
            if j < nh:
                z = act(z, c.head_act)
        loss = None
        if labels is not None:
            lab = torch.tensor(np.asarray(labels, dtype=np.int64))
            loss = -torch.log_softmax(z, -1).gather(1, lab[:, None]).mean()
        return z, loss

    def gradients(self, tokens, lengths, labels, training=False):
        """logits, loss (numpy) and name -> gradient of every trainable parameter."""
        for v in self.p.values():
            v.grad = None
        logits, loss = self.forward(tokens, lengths, labels, training)
        loss.backward()
        grads = {}
        for name, _, trainable in self.specs:
            if trainable:
                g = self.p[name].grad
                grads[name] = np.zeros(self.p[name].shape) if g is None else g.detach().numpy().copy()
        return logits.detach().numpy(), float(loss.detach()), grads

    def running_stats(self, tokens, lengths):
        """BatchNorm: name -> the running statistics after one lra training
        forward on this batch, starting from the loaded ones."""
        if self.cfg.norm != "batch" and all(getattr(m, "ncfg", self.cfg).norm != "batch" for m in self.mixers):
            return {}
        self.record = {}
        with torch.no_grad():
            self.features(tokens, lengths, training=True)
        seen, self.record = self.record, None
        out = {}
        for prefix, (x, cfg) in seen.items():
            # lra's LRU and S5 blocks keep Flax's biased running variance (models/config.c)
            m, v = batchnorm_running_update(cfg, x, self.p[prefix + "running_mean"], self.p[prefix + "running_var"],
                                            unbiased=self.cfg.mixer not in ("lru", "s5"))
            out[prefix + "running_mean"], out[prefix + "running_var"] = m.numpy(), v.numpy()
        return out
