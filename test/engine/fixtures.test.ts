// The shipped models against golden fixtures written by the PyTorch reference in fp32 (train/export.py): tokenizer ids,
// the top-32 logits at the last prompt position, and 32 greedy tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openModel } from '../../engine/open.js';
import { generate } from '../../engine/generate.js';
import { Scheduler, type RequestSpec } from '../../engine/scheduler.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FIXTURES = join(root, 'test', 'fixtures');
/** Tolerance on logits: fp32 on both sides from the same bf16 weights; measured |Δ| ≤ 5e-6. */
const LOGIT_TOL = 1e-4;
// An f16 KV cache rounds every K and V by up to 2^-11 relative: the attention outputs move by about that much, and the
// logits (|ℓ| ≈ 10) by ~1e-3 after the layers (measured 1.3e-4 on the softmax fixture; with the tensor cores' f16
// products too, 6.7e-4 on an H100); greedy tokens must not change.
const LOGIT_TOL_F16_KV = 5e-3;

interface Fixture {
  model: string;
  arch: string;
  prompts: { text: string; ids: number[]; top_ids: number[]; top_logits: number[]; greedy: number[] }[];
}

const gpuSkip = await import('../../kernels/webgpu/device.js')
  .then((d) => d.openGpu())
  .then(
    (g) => {
      g.device.destroy();
      return false;
    },
    (e: Error) => {
      if (process.env.CI) throw e;
      return `no WebGPU adapter: ${e.message}`;
    },
  );

for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
  const fx = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Fixture;
  const runs: ['cpu' | 'webgpu', 'f32' | 'f16'][] = [
    ['cpu', 'f32'],
    ['webgpu', 'f32'],
    ...(fx.arch === '2mamba' ? [] : [['webgpu', 'f16'] as ['webgpu', 'f16']]),
  ];
  for (const [backend, kvDtype] of runs)
    test(
      `${fx.model} on ${backend}${fx.arch === '2mamba' ? '' : ` (${kvDtype} KV)`} matches the PyTorch reference (tokenizer, logits, greedy tokens)`,
      { skip: backend === 'webgpu' && gpuSkip },
      async () => {
        const tol = kvDtype === 'f16' ? LOGIT_TOL_F16_KV : LOGIT_TOL;
        // the f32 run keeps every product in f32 (tensor cores off); the f16-KV run takes the default (tensor cores where
        // the adapter has them: f16 products, within the same tolerance as the f16 cache)
        const matrices = backend === 'webgpu' && kvDtype === 'f32' ? 'off' : undefined;
        const m = await openModel(join(root, 'models', fx.model), {
          backend,
          kvDtype,
          matrices,
          slots: 1,
          kvTokens: 256,
        });
        try {
          assert.equal(m.model.spec.arch, fx.arch);
          for (const p of fx.prompts) {
            assert.deepEqual(m.tokenizer.encode(p.text), p.ids, `tokenizer ids of ${JSON.stringify(p.text)}`);
            const seq = m.pool.open();
            const logits = await m.pool.step([{ seq, ids: p.ids }]);
            m.pool.close(seq);
            p.top_ids.forEach((id, i) => {
              const d = Math.abs(logits[id]! - p.top_logits[i]!);
              assert.ok(
                d <= tol,
                `${JSON.stringify(p.text)}: logit of ${id} is ${logits[id]}, reference ${p.top_logits[i]} (|Δ| ${d})`,
              );
            });
            let best = 0;
            for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
            assert.equal(best, p.top_ids[0]);
            const out: number[] = [];
            for await (const t of generate(m.pool, p.ids, {
              maxTokens: 32,
              sampling: { temperature: 0 },
              ignoreEos: true,
            }))
              out.push(t.id);
            assert.deepEqual(out, p.greedy, `greedy continuation of ${JSON.stringify(p.text)}`);
          }
        } finally {
          await m.close();
        }
      },
    );
}

// Prompts of ≥ 64 tokens take the prefill GEMM (with FURY_MATRICES=on on a GPU with subgroup matrices: the tensor-core
// one, f16 tiles; and through the emulated tensor-core kernels on any adapter): the trained models' greedy
// continuations must not change. The fast CPU backend (tested against the reference) is the
// comparison. A 300-token prompt in chunks of 256; for 2Mamba also a 520-token one in one step, where its prefill on
// tensor cores runs two segments (512 + 8 rows) at once (the boundary slots and m2_scan; ~15 s emulated on lavapipe).
for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
  const fx = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Fixture;
  for (const [tokens, chunk, maxTokens] of [
    [300, undefined, 24],
    ...(fx.arch === '2mamba' ? ([[520, 520, 8]] as const) : []),
  ] as const)
    test(
      `${fx.model}: a ${tokens}-token prompt's greedy tokens on webgpu == on the CPU${chunk ? ' (one step)' : ''}`,
      { skip: gpuSkip },
      async () => {
        const ids = [
          fx.prompts[0]!.ids[0]!,
          ...Array.from({ length: tokens - 1 }, (_, i) => fx.prompts.flatMap((p) => p.ids.slice(1))[i % 40]!),
        ];
        const run = async (backend: 'cpu' | 'webgpu', matrices?: 'emulated') => {
          const m = await openModel(join(root, 'models', fx.model), { backend, matrices, slots: 1, kvTokens: 1024 });
          try {
            const out: number[] = [];
            const opts = { maxTokens, prefillChunk: chunk, sampling: { temperature: 0 }, ignoreEos: true };
            for await (const t of generate(m.pool, ids, opts)) out.push(t.id);
            return out;
          } finally {
            await m.close();
          }
        };
        const cpu = await run('cpu');
        assert.deepEqual(await run('webgpu'), cpu);
        // the tensor-core kernels' tile walks (f16 tiles, emulated in plain WGSL on adapters without subgroup matrices)
        assert.deepEqual(await run('webgpu', 'emulated'), cpu, 'through the emulated tensor-core kernels');
      },
    );
}

// A batch of 12 decodes every step with 12 rows: from 8 rows the projections (with f16 weights, and bf16 or f32 ones
// converted as staged) take the skinny tensor-core product where tensor cores run (real on a GPU with subgroup
// matrices, emulated on any adapter): the trained models' greedy tokens must not change.
for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
  const fx = JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Fixture;
  test(`${fx.model}: 12 requests decoded together on webgpu == on the CPU`, { skip: gpuSkip }, async () => {
    const pool = fx.prompts.flatMap((p) => p.ids.slice(1));
    const specs: RequestSpec[] = Array.from({ length: 12 }, (_, i) => ({
      promptIds: [
        fx.prompts[0]!.ids[0]!,
        ...Array.from({ length: 6 + 3 * i }, (_, j) => pool[(5 * i + j) % pool.length]!),
      ],
      maxTokens: 12,
      sampling: { temperature: 0 },
      ignoreEos: true,
    }));
    const run = async (backend: 'cpu' | 'webgpu', matrices?: 'emulated') => {
      const m = await openModel(join(root, 'models', fx.model), { backend, matrices, slots: 12, kvTokens: 1024 });
      try {
        const s = new Scheduler(m.pool, { maxBatch: 12, maxQueue: 12, tokenBudget: 512, prefillChunk: 512 });
        return await Promise.all(
          specs.map(
            (spec) =>
              new Promise<number[]>((res, rej) => {
                const ids: number[] = [];
                s.submit(spec, { onToken: (t) => ids.push(t.id), onEnd: () => res(ids), onError: rej });
              }),
          ),
        );
      } finally {
        await m.close();
      }
    };
    const cpu = await run('cpu');
    assert.deepEqual(await run('webgpu'), cpu);
    assert.deepEqual(await run('webgpu', 'emulated'), cpu, 'through the emulated tensor-core kernels');
  });
}
