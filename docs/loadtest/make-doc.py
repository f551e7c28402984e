import json, os
def load(p): return json.load(open(p)) if os.path.exists(p) else None
h = {a: load(f'docs/loadtest/h100-{a}/loadtest.json') for a in ['2mamba', 'softmax', '2mamba-e']}
cpu = load('docs/loadtest/cpu/loadtest.json')
def cells_table(res):
    out = ['| context | concurrency | ok | TTFT p50 / p99 ms | TPOT p50 ms | ITL p50 ms | E2E p50 ms | out tok/s |', '|---|---|---|---|---|---|---|---|']
    for c in res['cells']:
        out.append(f"| {c['context']} | {c['concurrency']} | {c['ok']}/{c['requests']} | {c['ttft_ms']['p50']:.0f} / {c['ttft_ms']['p99']:.0f} | {c['tpot_ms']['p50']:.1f} | {c['itl_ms']['p50']:.1f} | {c['e2e_ms']['p50']:.0f} | {c['output_token_throughput']:.1f} |")
    return '\n'.join(out)
mamba = h['2mamba']['results'][0]; sm = h['softmax']['results'][0]; me = h['2mamba-e']['results'][0]
mrow = {m['context']: m for m in mamba['memory']}
rows = ['| context | 2Mamba peak bytes | softmax held bytes (tokens × B/token) | softmax allocated (16-token pages) | 2Mamba-E allocated | softmax held > 2Mamba? |', '|---|---|---|---|---|---|']
for s, e in zip(sm['memory'], me['memory']):
    c = s['context']; mb = mrow[c]['peak_bytes']
    rows.append(f"| {c} | {mb:,} | {s['held_bytes']:,} | {s['peak_bytes']:,} | {e['peak_bytes']:,} | {'**yes**' if s['held_bytes'] > mb else 'no'} |")
first = min(m['context'] for m in sm['memory'] if m['held_bytes'] > mrow[m['context']]['peak_bytes'])
ratio = mamba['info']['state_bytes_per_request'] / sm['info']['kv_bytes_per_token']
def tp(res, ctx, conc=1):
    c = next(x for x in res['cells'] if x['context'] == ctx and x['concurrency'] == conc); return c
budget = 40 * 2**30
adm = lambda info, ctx: info['max_concurrent_requests'] if info['kv_bytes_per_token'] == 0 else info.get('kv_cache_tokens', 0) // (16 * -(-(ctx + 32) // 16))
doc = f"""# Load tests: latency, capacity and memory per request across context lengths

Measured 2026-11-22 with `fury loadtest` (streaming `/v1/completions`, prompts of exactly `context` tokens of the
valid corpus split, `max_tokens` fixed with `ignore_eos`, temperature 0; TTFT / ITL / TPOT / E2E as defined by vLLM's
benchmark_serving, spec §10.1). Each cell sent 4 requests (H100) — small samples: read p50s, not p99s. Raw JSON,
per-run Markdown and SVG plots are under `docs/loadtest/`.

## H100: random-weight small-preset models (WebGPU)

One NVIDIA H100 80GB (driver 580.159.04, dawn.node 0.6.2), one model per server, `fury loadtest --spawn --backend webgpu
--memory-budget 40GiB --max-batch 32 --max-model-len 20000 --contexts 256,1024,4096,16384 --concurrency 1,4 --requests 4
--max-tokens 32`. Checkpoints: `fury init --preset small --dtype f16 --seed 0` (paper's small shape, 275M parameters).

**2Mamba** (`docs/loadtest/h100-2mamba/`)

{cells_table(mamba)}

**softmax** (`docs/loadtest/h100-softmax/`)

{cells_table(sm)}

**2Mamba-E** (`docs/loadtest/h100-2mamba-e/`)

{cells_table(me)}

What it shows: **2Mamba's time per output token is flat in the context** (TPOT p50 {tp(mamba,256)['tpot_ms']['p50']:.1f} ms at 256 tokens,
{tp(mamba,16384)['tpot_ms']['p50']:.1f} ms at 16384) while softmax's and 2Mamba-E's grow with the KV they read (softmax {tp(sm,256)['tpot_ms']['p50']:.1f} → {tp(sm,16384)['tpot_ms']['p50']:.1f} ms,
2Mamba-E {tp(me,256)['tpot_ms']['p50']:.1f} → {tp(me,16384)['tpot_ms']['p50']:.1f} ms). Prefill is the other side: TTFT at 16384 tokens is {tp(mamba,16384)['ttft_ms']['p50']/1000:.1f} s for 2Mamba
(~930 tokens/s, linear in the prompt) against {tp(sm,16384)['ttft_ms']['p50']/1000:.1f} s for softmax (quadratic, un-tiled attention); at short prompts softmax
prefills faster. Absolute speeds are those of fury's current WGSL kernels (`docs/perf.md`), not of the hardware.

## Memory per request and the crossover, from the server's own reports

Every number below is the server's `usage.memory` of one request (`max_tokens` 1) per context, and
`kv_bytes_per_token` from `GET /v1/models` — not the formula. fp32 state and KV, head dim 64.

{chr(10).join(rows)}

- **2Mamba is flat**: {mrow[256]['peak_bytes']:,} bytes (173.3 MB) per request at every context from 256 to 16384 tokens.
- **softmax grows linearly**: {sm['info']['kv_bytes_per_token']:,} bytes per token held; 2Mamba-E {me['info']['kv_bytes_per_token']:,} (K, V and C_j) plus a {me['info']['state_bytes_per_request']:,}-byte conv state.
- **Crossover**: the softmax request's held bytes pass 2Mamba's at **{first} tokens** (2Mamba / per-token = {ratio:.2f}; the paper's
  1058 for head dim 64). Counting allocated memory instead, whole 16-token pages reserved for prompt + max_tokens, the
  softmax request passes 2Mamba once it reserves 67 pages (1057–1072 tokens): allocation granularity moves the
  crossover by up to a page.

Plots of the three H100 runs together (`docs/loadtest/h100/`, merged by the tool's own report writer):
`memory-vs-context.svg` (with the crossover line), `ttft-vs-context.svg`, `throughput-vs-concurrency.svg`.

## Concurrency under one memory budget

At the longest context run (16384 prompt + 32 generated tokens) and the same `--memory-budget 40GiB` (state + KV per
model): 2Mamba admits **{mamba['info']['max_concurrent_requests']}** requests at once (capped by `--max-batch 32`; the budget alone holds
{budget // mamba['info']['state_bytes_per_request']} states of 173 MB, at any context), softmax **{adm(sm['info'], 16384)}** ({sm['info'].get('kv_cache_tokens', 0):,} KV tokens), 2Mamba-E **{adm(me['info'], 16384)}**.
Past that, requests wait in the bounded queue (`--max-queue`) and beyond it get **429** with `Retry-After`, never a
crash: `test/server/budget.test.ts` drives exactly this on every `npm test` (same budget: 6 2Mamba requests running vs
fewer softmax ones at a 4000-token context, 2 queued, the rest 429, no 5xx, memory back to idle).
"""
if cpu:
    doc += "\n## This machine (2 cores), the shipped models, CPU backend\n\n`fury loadtest --spawn --backend cpu --contexts 256,1024,4096 --concurrency 1,4 --requests 4 --max-tokens 16` on the three\nshipped 7.5M-parameter models (`docs/loadtest/cpu/`):\n\n"
    for r in cpu['results']:
        doc += f"**{r['model']}**\n\n{cells_table(r)}\n\n"
    doc += ("On two CPU cores 2Mamba's prefill runs at ~120 tokens/s whatever the length (the state update: 2080 × 64 values per\n"
            "head per token), so it is the slowest at 256–1024 tokens and the fastest at 4096, where the KV models' quadratic\n"
            "attention takes over (TTFT 33 s against 45–46 s). Decode at concurrency 1 shows the point of the model: 2Mamba's TPOT\n"
            "is 9.7–10 ms at every context, the KV models' grows from 7 ms at 256 to 42–46 ms at 4096. At concurrency 4 TPOT\n"
            "includes the other requests' chunked prefills interleaved with each decode step.\n")
open('docs/loadtest.md', 'w').write(doc)
print(len(doc))
