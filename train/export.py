"""Golden fixtures, held-out loss and passkey accuracy of trained checkpoints, from the fp32 reference.
usage: python3 export.py --data DIR --fixtures DIR --report FILE MODEL_DIR..."""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from fury_ref import load_checkpoint
from data import passkey_example

PROMPTS = [
    "Call me Ishmael. Some years ago",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune,",
    "def fibonacci(n):\n    ",
    "The kernel's memory management",
]
PASSKEY_LENGTHS = [512, 1024, 2048, 4096]  # training length 1024: ½×, 1×, 2×, 4×


@torch.no_grad()
def greedy(m, ids, n):
    ids = list(ids)
    for _ in range(n):
        ids.append(int(m(torch.tensor([ids], device="cuda"))[0, -1].argmax()))
    return ids[-n:]


@torch.no_grad()
def valid_loss(m, valid, T, windows=None):
    n = (len(valid) - 1) // T if windows is None else windows
    total, count = 0.0, 0
    for b in range(0, n, 8):
        rows = [valid[i * T:i * T + T + 1].astype(np.int64) for i in range(b, min(n, b + 8))]
        x = torch.tensor(np.stack(rows), device="cuda")
        lg = m(x[:, :-1]).float()
        total += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
        count += x[:, 1:].numel()
    return total / count, count


@torch.no_grad()
def chat_loss(m, ids, mask, T):
    """Loss on the answer tokens of the held-out instruction set (packed windows of T + 1 tokens)."""
    total, count = 0.0, 0
    n = (len(ids) - 1) // T
    for b in range(0, n, 8):
        rng_ = range(b, min(n, b + 8))
        x = torch.tensor(np.stack([ids[i * T:i * T + T + 1].astype(np.int64) for i in rng_]), device="cuda")
        w = torch.tensor(np.stack([mask[i * T:i * T + T + 1].astype(np.float32) for i in rng_]), device="cuda")[:, 1:]
        lg = m(x[:, :-1]).float()
        per = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
        total += (per * w.reshape(-1)).sum().item()
        count += int(w.sum().item())
    return total / max(count, 1), count


@torch.no_grad()
def passkey(m, tok, valid, L, trials, seed):
    rng = random.Random(seed)
    ok = 0
    for g in range(0, trials, 4):
        exs = [passkey_example(tok, valid, L, rng) for _ in range(min(4, trials - g))]
        x = torch.tensor([e[0] for e in exs], device="cuda")
        for _ in range(7):
            x = torch.cat([x, m(x)[:, -1].argmax(-1, keepdim=True)], 1)
        for (ids, key), row in zip(exs, x[:, L:].tolist()):
            ok += key in tok.decode(row)
    return ok / trials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--passkey-trials", type=int, default=40)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.data, "tokenizer.json"))
    valid = np.fromfile(os.path.join(a.data, "valid.bin"), dtype=np.uint16)
    os.makedirs(a.fixtures, exist_ok=True)
    report = {}
    for d in a.models:
        name = os.path.basename(d.rstrip("/"))
        m = load_checkpoint(d, device="cuda", dtype=torch.float32).eval()
        t0 = time.time()
        fx = {"model": name, "arch": m.cfg.arch, "dtype": "fp32 reference from the bf16 checkpoint", "prompts": []}
        for text in PROMPTS:
            ids = tok.encode(text).ids
            with torch.no_grad():
                last = m(torch.tensor([ids], device="cuda"))[0, -1].double()
            top = torch.topk(last, 32)
            fx["prompts"].append({"text": text, "ids": ids, "top_ids": top.indices.tolist(),
                                  "top_logits": [round(v, 6) for v in top.values.tolist()], "greedy": greedy(m, ids, 32)})
        with open(os.path.join(a.fixtures, f"{name}.json"), "w") as f:
            json.dump(fx, f, indent=1)
        # the recurrent / KV decode of the trained model equals its parallel form
        x = torch.tensor([valid[:96].astype(np.int64)], device="cuda")
        with torch.no_grad():
            par = m.double()(x)
        dec = m.decode_logits(x)
        m.float()
        rel = ((dec - par).abs().max() / par.abs().max()).item()
        vl, vn = valid_loss(m, valid, 1024)
        sl, sn = valid_loss(m, valid, 1024, windows=4)
        pk = {str(L): passkey(m, tok, valid, L, a.passkey_trials, seed=L) for L in PASSKEY_LENGTHS} if a.passkey_trials else {}
        cpath = os.path.join(a.data, "chat-valid.bin")
        chat = {}
        if os.path.exists(cpath):
            cl, cn = chat_loss(m, np.fromfile(cpath, dtype=np.uint16),
                               np.fromfile(os.path.join(a.data, "chat-valid-mask.bin"), dtype=np.uint8), 1024)
            chat = {"chat_valid_answer_loss": cl, "chat_valid_answer_tokens": cn}
        report[name] = {"arch": m.cfg.arch, **chat, "valid_loss": vl, "valid_ppl": math.exp(vl), "valid_tokens": vn,
                        "valid_loss_first_4096": sl, "decode_vs_parallel_rel": rel, "passkey": pk,
                        "passkey_trials": a.passkey_trials, "seconds": round(time.time() - t0, 1)}
        print(name, json.dumps(report[name]), flush=True)
    with open(a.report, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
