"""PyTorch reference of fury's three architectures (shared/spec/2mamba.md), in fury's checkpoint format (= the paper's).

Parallel forms for training and prefill; recurrent (2Mamba) and KV-cache (2Mamba-E, softmax) forms for decoding.
Tensor names: model.embed_tokens.weight, model.layers.{i}.{input_layernorm,post_attention_layernorm}.weight,
model.layers.{i}.self_attn.{qkv_proj,o_proj,A_mask_proj,conv1d}.*, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
model.norm.weight, lm_head.weight; softmax adds self_attn.rotary_emb.freqs (interleaved RoPE).
"""
import json
import math
import os
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

ATTENTION_TYPES = {
    "2mamba": "squared__sm_norm__A_mask_type_neg_softplus__in_conv_k_2",
    "2mamba-e": "exp__sm_norm__A_mask_type_neg_softplus__in_conv_k_2",
    "softmax": "softmax",
}
DEN_FLOOR = 1e-30  # the readout divides by max(den, DEN_FLOOR) in every path (spec §5.5), as fury does


def acc(t):
    """Accumulation precision: fp32, or f64 for an f64 model (the reference tests run in f64)."""
    return t if t.dtype == torch.float64 else t.float()


@dataclass
class Config:
    arch: str
    hidden: int = 256
    intermediate: int = 512
    heads: int = 4
    layers: int = 5
    vocab: int = 8192
    max_positions: int = 1024
    eps: float = 1e-5
    bos: int = 1
    eos: object = 2  # an id, or a list of ids ([</s>, <|im_end|>] for the chat models)
    dt_values: bool = False  # 2Mamba with value discretisation (spec 9.2): an ablation, fury does not serve it

    @property
    def head_dim(self):
        return self.hidden // self.heads

    def to_json(self):
        return {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "attention_type": ATTENTION_TYPES[self.arch] + ("__dt_on_values" if self.dt_values else ""),
            "hidden_size": self.hidden, "intermediate_size": self.intermediate,
            "num_attention_heads": self.heads, "num_key_value_heads": self.heads, "head_dim": self.head_dim,
            "num_hidden_layers": self.layers, "vocab_size": self.vocab, "rms_norm_eps": self.eps,
            "tie_word_embeddings": False, "max_position_embeddings": self.max_positions,
            "bos_token_id": self.bos, "eos_token_id": self.eos, "hidden_act": "silu", "attention_bias": False,
            "torch_dtype": "bfloat16", **({"rope_theta": 10000.0} if self.arch == "softmax" else {}),
        }


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = acc(x)
        return (acc(self.weight) * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps))).to(x.dtype)


def causal_conv2(r, weight, bias, prev=None):
    """Depthwise window-2 conv over raw projections r [B, T, C] (spec §4.2): c_t = b + w0·r_{t-1} + w1·r_t, r_{-1} = prev or 0."""
    w = weight.view(-1, 2)
    shifted = torch.cat([torch.zeros_like(r[:, :1]) if prev is None else prev[:, None], r[:, :-1]], dim=1)
    return bias + w[:, 0] * shifted + w[:, 1] * r


def rope_interleaved(x, freqs, offset=0):
    """x [B, H, T, d]; pairs (2m, 2m+1) rotated by (offset + t)·freqs[m] (spec §7.1)."""
    T = x.shape[2]
    xf = acc(x)
    pos = torch.arange(offset, offset + T, device=x.device, dtype=xf.dtype)
    ang = pos[:, None] * freqs.to(xf.dtype)[None, :]
    cos, sin = ang.cos(), ang.sin()
    x0, x1 = xf[..., 0::2], xf[..., 1::2]
    out = torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1).flatten(-2)
    return out.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        E, H = cfg.hidden, cfg.heads
        self.cfg = cfg
        self.qkv_proj = nn.Linear(E, 3 * E, bias=False)
        self.o_proj = nn.Linear(E, E, bias=False)
        if cfg.arch == "softmax":
            d = cfg.head_dim
            self.rotary_emb = nn.Module()
            self.rotary_emb.freqs = nn.Parameter(10000.0 ** (-torch.arange(0, d, 2).float() / d), requires_grad=False)
        else:
            self.A_mask_proj = nn.Linear(E, H, bias=False)
            self.conv1d = nn.Conv1d(3 * E, 3 * E, kernel_size=2, groups=3 * E, bias=True)
            if cfg.dt_values:
                self.dt_proj = nn.Linear(E, H, bias=False)

    def dt(self, x):
        """Value discretisation (spec 9.2): softplus(W_dt x) per head and token, [B, T, H]; None when off."""
        return F.softplus(acc(self.dt_proj(x))) if self.cfg.dt_values else None

    def heads(self, x):  # [B, T, E] -> [B, H, T, d]
        B, T, _ = x.shape
        return x.view(B, T, self.cfg.heads, self.cfg.head_dim).transpose(1, 2)

    def forward(self, x):
        cfg, B, T, E = self.cfg, x.shape[0], x.shape[1], self.cfg.hidden
        d = cfg.head_dim
        r = self.qkv_proj(x)
        if cfg.arch == "softmax":
            q, k, v = (self.heads(t) for t in r.split(E, dim=-1))
            q, k = rope_interleaved(q, self.rotary_emb.freqs), rope_interleaved(k, self.rotary_emb.freqs)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(d))
        else:
            c = causal_conv2(r, self.conv1d.weight, self.conv1d.bias)
            q, k, v = (self.heads(t) for t in c.split(E, dim=-1))
            dt = self.dt(x)
            if dt is not None:
                v = (acc(v) * dt.transpose(1, 2)[..., None]).to(v.dtype)
            A = -F.softplus(acc(self.A_mask_proj(x)))               # [B, T, H]
            C = A.cumsum(1).transpose(1, 2)                          # [B, H, T] inclusive cumulative log-decay
            diff = C[..., :, None] - C[..., None, :]                 # C_i - C_j
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            s = 1 / math.sqrt(d)
            with torch.autocast(x.device.type, enabled=False):  # the attention core stays fp32 under bf16 autocast
                if cfg.arch == "2mamba":
                    scores = (torch.matmul(acc(q), acc(k).transpose(-1, -2)) * s) ** 2
                    w = scores * torch.exp(diff.masked_fill(~mask, float("-inf")))
                    y = torch.matmul(w, acc(v)) / w.sum(-1, keepdim=True).clamp_min(DEN_FLOOR)
                else:  # 2mamba-e: softmax(s q·k + C_i - C_j)
                    bias = diff.masked_fill(~mask, float("-inf"))
                    y = F.scaled_dot_product_attention(acc(q), acc(k), acc(v), attn_mask=bias.to(acc(q).dtype), scale=s)
            y = y.to(x.dtype)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, E))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        self.mlp = MLP(cfg)

    def forward(self, h):
        h = h + self.self_attn(self.input_layernorm(h))
        return h + self.mlp(self.post_attention_layernorm(h))


class Inner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.hidden)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.eps)


class Model(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("embed_tokens.weight") or name == "lm_head.weight":
                nn.init.normal_(p, std=0.02)

    def forward(self, ids):
        h = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            h = layer(h)
        return self.lm_head(self.model.norm(h))

    # ---------------- decoding (recurrent / KV forms) ----------------
    @torch.no_grad()
    def decode_logits(self, ids):
        """Logits at every position, computed token by token with the decode state (2Mamba: S, n, conv; KV models:
        a cache of post-conv / post-RoPE k, v and, for 2Mamba-E, C_j). Must equal forward(ids)."""
        cfg, E, H, d = self.cfg, self.cfg.hidden, self.cfg.heads, self.cfg.head_dim
        s = 1 / math.sqrt(d)
        B = ids.shape[0]
        st = [dict() for _ in self.model.layers]
        out = []
        for t in range(ids.shape[1]):
            h = self.model.embed_tokens(ids[:, t:t + 1])
            for li, layer in enumerate(self.model.layers):
                a, x = layer.self_attn, layer.input_layernorm(h)
                r = a.qkv_proj(x)[:, 0]
                S = st[li]
                if cfg.arch == "softmax":
                    q, k, v = (z.view(B, H, 1, d) for z in r.split(E, -1))
                    q, k = rope_interleaved(q, a.rotary_emb.freqs, t), rope_interleaved(k, a.rotary_emb.freqs, t)
                    S["k"] = k if t == 0 else torch.cat([S["k"], k], 2)
                    S["v"] = v if t == 0 else torch.cat([S["v"], v], 2)
                    logit = (q @ S["k"].transpose(-1, -2)) * s
                    y = torch.softmax(acc(logit), -1) @ acc(S["v"])
                else:
                    c = causal_conv2(r[:, None], a.conv1d.weight, a.conv1d.bias, S.get("r"))[:, 0]
                    S["r"] = r
                    q, k, v = (z.view(B, H, d).double() for z in c.split(E, -1))
                    dt = a.dt(x)
                    if dt is not None:
                        v = v * dt[:, 0].double()[..., None]
                    A = -F.softplus(a.A_mask_proj(x)[:, 0].double())  # [B, H]
                    if cfg.arch == "2mamba":
                        fk = phi(k * s)                                  # [B, H, D]
                        dec = A.exp()[..., None]
                        S["S"] = (dec[..., None] * S["S"] if t else 0) + fk[..., None] * v[..., None, :]
                        S["n"] = (dec * S["n"] if t else 0) + fk
                        fq = phi(q)
                        num = torch.einsum("bhp,bhpj->bhj", fq, S["S"])
                        den = torch.einsum("bhp,bhp->bh", fq, S["n"]).clamp_min(DEN_FLOOR)
                        y = (num / den[..., None])[:, :, None]
                    else:
                        Cn = (S["C"][..., -1] if t else 0) + A          # [B, H]
                        S["C"] = Cn[..., None] if t == 0 else torch.cat([S["C"], Cn[..., None]], -1)
                        S["k"] = k[:, :, None] if t == 0 else torch.cat([S["k"], k[:, :, None]], 2)
                        S["v"] = v[:, :, None] if t == 0 else torch.cat([S["v"], v[:, :, None]], 2)
                        logit = torch.einsum("bhd,bhjd->bhj", q, S["k"]) * s + (Cn[..., None] - S["C"])
                        y = (torch.softmax(logit, -1)[..., None] * S["v"]).sum(2)[:, :, None]
                y = y.to(h.dtype).transpose(1, 2).reshape(B, 1, E)
                h = h + a.o_proj(y)
                h = h + layer.mlp(layer.post_attention_layernorm(h))
            out.append(self.lm_head(self.model.norm(h)))
        return torch.cat(out, 1)


def phi(u):
    """Symmetric degree-2 feature map (spec §5.2): row-major upper triangle, √2 off the diagonal. u [..., d] -> [..., D]."""
    d = u.shape[-1]
    i, j = torch.triu_indices(d, d, device=u.device)
    c = torch.full(i.shape, math.sqrt(2.0), dtype=u.dtype, device=u.device)  # in u's dtype: an f32 √2 would leak
    c[i == j] = 1.0
    return c * u[..., i] * u[..., j]


def save_checkpoint(model: Model, out_dir: str, dtype=torch.bfloat16, tokenizer_dir: str | None = None):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    sd = {}
    for k, v in model.state_dict().items():
        keep_f32 = k.endswith("rotary_emb.freqs")
        sd[k] = v.detach().to(torch.float32 if keep_f32 else dtype).contiguous().cpu()
    save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(model.cfg.to_json(), f, indent=2)
    if tokenizer_dir:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            with open(os.path.join(tokenizer_dir, name)) as src, open(os.path.join(out_dir, name), "w") as dst:
                dst.write(src.read())


def load_checkpoint(path: str, device="cpu", dtype=torch.float32) -> Model:
    from safetensors.torch import load_file
    cfg_json = json.load(open(os.path.join(path, "config.json")))
    at = cfg_json["attention_type"]
    dt_values = at.endswith("__dt_on_values")
    arch = {v: k for k, v in ATTENTION_TYPES.items()}[at.removesuffix("__dt_on_values")]
    cfg = Config(arch=arch, hidden=cfg_json["hidden_size"], intermediate=cfg_json["intermediate_size"],
                 heads=cfg_json["num_attention_heads"], layers=cfg_json["num_hidden_layers"], vocab=cfg_json["vocab_size"],
                 max_positions=cfg_json["max_position_embeddings"], eps=cfg_json["rms_norm_eps"],
                 bos=cfg_json["bos_token_id"], eos=cfg_json["eos_token_id"], dt_values=dt_values)
    m = Model(cfg)
    sd = {k: v.to(dtype) for k, v in load_file(os.path.join(path, "model.safetensors")).items() if not k.endswith("attn_mask")}
    m.load_state_dict(sd, strict=True)
    return m.to(device)
