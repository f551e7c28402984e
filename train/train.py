"""Train one architecture on the corpus (same shape, data order, token budget and optimiser for all three).
usage: python3 train.py --arch 2mamba --data DIR --out DIR --steps N [--batch 32 --context 1024]"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from fury_ref import Config, Model, save_checkpoint, load_checkpoint
from data import passkey_example, EOS, BOS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--data", required=True, help="dir with train.bin, valid.bin, tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--passkey-frac", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=1e9, help="stop early (and say so) past this wall time")
    ap.add_argument("--init", help="start from this checkpoint's weights (the instruction phase)")
    ap.add_argument("--chat-frac", type=float, default=0.0,
                    help="share of rows from the instruction set (chat-train.bin), loss on the answers only")
    ap.add_argument("--dt", action="store_true", help="2Mamba with value discretisation (spec 9.2; an ablation)")
    a = ap.parse_args()
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(a.data, "tokenizer.json"))
    train = np.fromfile(os.path.join(a.data, "train.bin"), dtype=np.uint16)
    valid = np.fromfile(os.path.join(a.data, "valid.bin"), dtype=np.uint16)
    torch.manual_seed(a.seed)
    dev = "cuda"
    cfg = Config(arch=a.arch, max_positions=a.context, dt_values=a.dt)
    model = load_checkpoint(a.init, dev) if a.init else Model(cfg).to(dev)
    cfg = model.cfg
    if tok.token_to_id("<|im_end|>") is not None:  # the chat tokenizer: <|im_end|> ends a reply as </s> ends a text
        cfg.eos = [EOS, tok.token_to_id("<|im_end|>")]
    chat = chat_mask = None
    if a.chat_frac > 0:
        chat = np.fromfile(os.path.join(a.data, "chat-train.bin"), dtype=np.uint16)
        chat_mask = np.fromfile(os.path.join(a.data, "chat-train-mask.bin"), dtype=np.uint8)
    cvalid = os.path.join(a.data, "chat-valid.bin")
    cv = None
    if os.path.exists(cvalid):  # held-out instruction answers: loss on the answer tokens of 16 fixed windows
        ids = np.fromfile(cvalid, dtype=np.uint16)
        m = np.fromfile(os.path.join(a.data, "chat-valid-mask.bin"), dtype=np.uint8)
        n = min(16, len(ids) // (a.context + 1))
        cv = (torch.tensor(np.stack([ids[i * (a.context + 1):(i + 1) * (a.context + 1)].astype(np.int64) for i in range(n)]), device=dev),
              torch.tensor(np.stack([m[i * (a.context + 1):(i + 1) * (a.context + 1)].astype(np.float32) for i in range(n)]), device=dev))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    sched = lambda s: min(1.0, (s + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / a.steps))))
    rng = random.Random(a.seed)  # identical data order for every architecture
    T = a.context
    # fixed validation windows for the curve
    vwin = torch.tensor(np.stack([valid[i:i + T + 1].astype(np.int64) for i in range(0, 16 * (T + 1), T + 1)]), device=dev)
    # (init: the checkpoint's last two path parts, no machine paths)
    log = {"arch": a.arch, "params": n_params, "batch": a.batch, "context": T, "lr": a.lr, "steps": a.steps,
           "init": a.init and "/".join(os.path.normpath(a.init).split(os.sep)[-2:]), "chat_frac": a.chat_frac, "dt_values": a.dt, "curve": []}
    t0 = time.time()
    tokens = 0
    for step in range(a.steps):
        rows, masks = [], []
        for _ in range(a.batch):
            if chat is not None and rng.random() < a.chat_frac:
                s0 = rng.randint(0, len(chat) - T - 2)
                rows.append(chat[s0:s0 + T + 1].astype(np.int64))
                masks.append(chat_mask[s0:s0 + T + 1].astype(np.float32))
                continue
            masks.append(np.ones(T + 1, dtype=np.float32))
            if rng.random() < a.passkey_frac:
                L = rng.randint(T // 4, T)
                ids, key = passkey_example(tok, train, L, rng)
                ids = ids + tok.encode(f" {key}.", add_special_tokens=False).ids + [EOS]
                if len(ids) < T + 1:
                    s = rng.randint(0, len(train) - T - 2)
                    ids = ids + [int(t) for t in train[s:s + T + 1 - len(ids)]]
                rows.append(np.array(ids[:T + 1], dtype=np.int64))
            else:
                s = rng.randint(0, len(train) - T - 2)
                rows.append(train[s:s + T + 1].astype(np.int64))
        batch = torch.tensor(np.stack(rows), device=dev)
        weight = torch.tensor(np.stack(masks), device=dev)[:, 1:].reshape(-1)
        for g in opt.param_groups:
            g["lr"] = a.lr * sched(step)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(batch[:, :-1])
        per = F.cross_entropy(logits.float().view(-1, cfg.vocab), batch[:, 1:].reshape(-1), reduction="none")
        loss = (per * weight).sum() / weight.sum().clamp_min(1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        tokens += batch[:, :-1].numel()
        if step % 25 == 0 or step == a.steps - 1:
            entry = {"step": step, "tokens": tokens, "train_loss": round(loss.item(), 4), "lr": opt.param_groups[0]["lr"],
                     "elapsed_s": round(time.time() - t0, 1)}
            if step % 250 == 0 or step == a.steps - 1:
                model.eval()
                with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                    vl = F.cross_entropy(model(vwin[:, :-1]).float().view(-1, cfg.vocab), vwin[:, 1:].reshape(-1))
                model.train()
                entry["valid_loss"] = round(vl.item(), 4)
                if cv is not None:
                    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                        per = F.cross_entropy(model(cv[0][:, :-1]).float().view(-1, cfg.vocab), cv[0][:, 1:].reshape(-1),
                                              reduction="none")
                    w = cv[1][:, 1:].reshape(-1)
                    entry["chat_valid_loss"] = round(((per * w).sum() / w.sum()).item(), 4)
            log["curve"].append(entry)
            print(json.dumps(entry), flush=True)
        if time.time() - t0 > a.max_seconds:
            log["stopped_early_at_step"] = step
            print(f"stopping early at step {step} (time budget)", flush=True)
            break
    log["tokens_seen"] = tokens
    log["train_seconds"] = round(time.time() - t0, 1)
    save_checkpoint(model, a.out, tokenizer_dir=a.data)
    with open(os.path.join(a.out, "train_log.json"), "w") as f:
        json.dump(log, f)


if __name__ == "__main__":
    main()
