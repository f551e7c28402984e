"""Fidelity checks of the training code (issue 17), in float64: is what train/ optimises the model fury serves?

1. 2Mamba's attention core three ways (spec §5): the parallel form train.py uses, the recurrent form fury decodes with
   (S, n), and a chunked form (carried S, n between chunks, chunk-local cumulative decays): outputs and the gradients
   of a random linear loss with respect to q, k, v and the log-decays A agree.
2. torch.autograd.gradcheck of the parallel form (finite differences against autograd).
3. Whole models: forward (parallel) logits == decode_logits (recurrent / KV) for 2Mamba, 2Mamba with value
   discretisation (spec §9.2), 2Mamba-E and softmax.
4. Parameterisation against the paper's code (gmongaras/2Mamba2Furious, GPT_Trainer/LlamaDecoderLayerClean.py):
   A = −softplus(W_A x) with W_A a bias-free projection of the layer input (there: extra columns of qkv_proj), the
   window-2 depthwise conv with bias on q, k, v only, every Linear initialised N(0, 0.02) (Hugging Face's
   _init_weights), conv1d at PyTorch's default; printed from the model so a change shows.

usage: python3 train/fidelity.py OUT.json
"""
import json
import math
import sys

import torch

from fury_ref import Config, Model, phi, DEN_FLOOR

torch.manual_seed(0)
DT = torch.float64


def parallel(q, k, v, A, s):
    T = q.shape[-2]
    C = A.cumsum(-1)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    w = ((q @ k.transpose(-1, -2)) * s) ** 2 * torch.exp((C[..., :, None] - C[..., None, :]).masked_fill(~mask, -math.inf))
    return (w @ v) / w.sum(-1, keepdim=True).clamp_min(DEN_FLOOR)


def recurrent(q, k, v, A, s):
    B, H, T, d = q.shape
    S = torch.zeros(B, H, d * (d + 1) // 2, d, dtype=DT)
    n = torch.zeros(B, H, d * (d + 1) // 2, dtype=DT)
    ys = []
    for t in range(T):
        a = A[..., t].exp()[..., None]
        fk = phi(k[:, :, t] * s)
        S = a[..., None] * S + fk[..., None] * v[:, :, t, None, :]
        n = a * n + fk
        fq = phi(q[:, :, t])
        num = torch.einsum("bhp,bhpj->bhj", fq, S)
        den = torch.einsum("bhp,bhp->bh", fq, n).clamp_min(DEN_FLOOR)
        ys.append(num / den[..., None])
    return torch.stack(ys, 2)


def chunked(q, k, v, A, s, L):
    """Chunks of L tokens: inside a chunk the parallel form with chunk-local cumulative decays (every exponent ≤ 0),
    the carried state read through exp(c_i) and updated with exp(c_L − c_j), as fury's chunked prefill."""
    B, H, T, d = q.shape
    S = torch.zeros(B, H, d * (d + 1) // 2, d, dtype=DT)
    n = torch.zeros(B, H, d * (d + 1) // 2, dtype=DT)
    ys = []
    for c0 in range(0, T, L):
        qc, kc, vc, Ac = q[:, :, c0:c0 + L], k[:, :, c0:c0 + L], v[:, :, c0:c0 + L], A[..., c0:c0 + L]
        m = qc.shape[2]
        c = Ac.cumsum(-1)
        mask = torch.ones(m, m, dtype=torch.bool).tril()
        w = ((qc @ kc.transpose(-1, -2)) * s) ** 2 * torch.exp((c[..., :, None] - c[..., None, :]).masked_fill(~mask, -math.inf))
        fq = phi(qc)
        num = w @ vc + c.exp()[..., None] * torch.einsum("bhtp,bhpj->bhtj", fq, S)
        den = w.sum(-1) + c.exp() * torch.einsum("bhtp,bhp->bht", fq, n)
        ys.append(num / den.clamp_min(DEN_FLOOR)[..., None])
        tail = (c[..., -1:] - c).exp()  # exp(c_L − c_j)
        fk = phi(kc * s)
        S = c[..., -1].exp()[..., None, None] * S + torch.einsum("bht,bhtp,bhtj->bhpj", tail, fk, vc)
        n = c[..., -1].exp()[..., None] * n + torch.einsum("bht,bhtp->bhp", tail, fk)
    return torch.cat(ys, 2)


def core_checks():
    B, H, T, d = 2, 2, 13, 4
    s = 1 / math.sqrt(d)
    q, k, v = (torch.randn(B, H, T, d, dtype=DT, requires_grad=True) for _ in range(3))
    A = (-torch.nn.functional.softplus(torch.randn(B, H, T, dtype=DT) * 2)).requires_grad_(True)
    R = torch.randn(B, H, T, d, dtype=DT)
    out = {}
    grads = {}
    for name, f in (("parallel", lambda: parallel(q, k, v, A, s)), ("recurrent", lambda: recurrent(q, k, v, A, s)),
                    ("chunked_4", lambda: chunked(q, k, v, A, s, 4)), ("chunked_5", lambda: chunked(q, k, v, A, s, 5))):
        y = f()
        g = torch.autograd.grad((y * R).sum(), (q, k, v, A))
        out[name], grads[name] = y.detach(), g
    rep = {}
    for name in ("recurrent", "chunked_4", "chunked_5"):
        rep[name] = {
            "max_abs_diff_y": (out[name] - out["parallel"]).abs().max().item(),
            **{f"max_rel_diff_grad_{p}": ((a - b).abs().max() / b.abs().max()).item()
               for p, a, b in zip("qkvA", grads[name], grads["parallel"])},
        }
    small = [t.detach()[:1, :1, :6, :3].clone().requires_grad_(True) for t in (q, k, v)]
    a_small = A.detach()[:1, :1, :6].clone().requires_grad_(True)
    rep["gradcheck_parallel"] = torch.autograd.gradcheck(lambda *x: parallel(*x, 1 / math.sqrt(3)), (*small, a_small),
                                                         eps=1e-6, atol=1e-7)
    return rep


def model_checks():
    rep = {}
    ids = torch.randint(0, 64, (2, 11))
    for arch, dt in (("2mamba", False), ("2mamba", True), ("2mamba-e", False), ("softmax", False)):
        cfg = Config(arch=arch, hidden=32, intermediate=64, heads=2, layers=2, vocab=64, dt_values=dt)
        m = Model(cfg).to(DT)
        with torch.no_grad():
            for p in m.parameters():  # away from init so every path carries signal
                p.add_(torch.randn_like(p) * 0.05)
            a, b = m(ids), m.decode_logits(ids)
        rep[arch + ("+dt" if dt else "")] = {"max_abs_diff_logits_parallel_vs_decode": (a - b).abs().max().item()}
    return rep


def parameterisation():
    m = Model(Config(arch="2mamba"))
    at = m.model.layers[0].self_attn
    return {
        "A_mask_proj": {"shape": list(at.A_mask_proj.weight.shape), "bias": at.A_mask_proj.bias is not None,
                        "init_std": round(at.A_mask_proj.weight.std().item(), 4)},
        "qkv_proj_init_std": round(at.qkv_proj.weight.std().item(), 4),
        "conv1d": {"shape": list(at.conv1d.weight.shape), "bias": at.conv1d.bias is not None},
        "decay_at_init": "a = exp(-softplus(W_A x)) ~ 0.5 per token (W_A x ~ 0), as in the paper's code",
    }


def main():
    rep = {"core": core_checks(), "models": model_checks(), "parameterisation": parameterisation()}
    ok = (all(v["max_abs_diff_y"] < 1e-10 and all(x < 1e-9 for k, x in v.items() if k.startswith("max_rel"))
              for k, v in rep["core"].items() if isinstance(v, dict))
          and rep["core"]["gradcheck_parallel"]
          and all(v["max_abs_diff_logits_parallel_vs_decode"] < 1e-9 for v in rep["models"].values()))
    rep["all_passed"] = bool(ok)
    print(json.dumps(rep, indent=1))
    with open(sys.argv[1], "w") as f:
        json.dump(rep, f, indent=1)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
