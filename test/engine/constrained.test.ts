// Constrained requests (engine/text/grammar.ts) draw on the device: the grammar's next-token mask goes with the draw
// (kernels/ops.ts sample), and a batch holding them still steps ahead, its forward submitted before the previous
// tokens come back and its draws once their masks are known. The tokens equal the host's draws under the same masks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { Engine } from '../../engine/engine.js';
import { Scheduler, type RequestSpec } from '../../engine/scheduler.js';
import type { SamplingParams } from '../../engine/sampler.js';
import { freshRng, tinyCheckpoint } from '../helpers.js';

const schema = {
  type: 'object',
  properties: { color: { enum: ['red', 'green', 'blue'] }, ok: { type: 'boolean' }, n: { enum: [1, 2, 3] } },
  required: ['color', 'ok', 'n'],
  additionalProperties: false,
};
const valid = new Ajv().compile(schema);

for (const arch of ['2mamba', 'softmax'] as const)
  test(`${arch}: constrained requests sample on the device with their masks, pipelined beside free ones; == host draws`, async () => {
    const { seed } = freshRng();
    const e = await Engine.open(await tinyCheckpoint(arch, seed % 97), 'm', {
      backend: 'cpu',
      maxBatch: 8,
      maxQueue: 16,
      memoryBudget: null,
      maxModelLen: 1024,
      tokenBudget: 256,
      prefillChunk: 64,
    });
    try {
      const compiled = await e.grammars.compile({ kind: 'json_schema', schema, strict: true }, 'response_format');
      const prompt = e.tokenizer.encode('Describe the sky as JSON.');
      const pool = (e.scheduler as unknown as { pool: Scheduler['pool'] }).pool;
      const run = async (sampling: Partial<SamplingParams>[]) => {
        const s = new Scheduler(pool, { maxBatch: 8, maxQueue: 16, tokenBudget: 256, prefillChunk: 64 });
        const out = await Promise.all(
          sampling.map(
            async (p, i) =>
              new Promise<{ ids: number[]; reason: string }>(async (resolve, reject) => {
                const free = i % 3 === 2;
                const spec: RequestSpec = {
                  promptIds: prompt,
                  maxTokens: free ? 40 : 60,
                  sampling: p,
                  ignoreEos: free,
                  ...(free ? {} : { constraint: await e.grammars.constraint(compiled) }),
                };
                const ids: number[] = [];
                s.submit(spec, {
                  onToken: (t) => ids.push(t.id),
                  onEnd: (reason) => resolve({ ids, reason }),
                  onError: reject,
                });
              }),
          ),
        );
        await s.idle();
        return { out, ahead: s.aheadSteps, steps: s.steps };
      };
      const draws: Partial<SamplingParams>[] = Array.from({ length: 6 }, (_, i) => ({
        temperature: i % 2 ? 0.9 : 0,
        seed: seed + i,
      }));
      const device = await run(draws);
      // greedy rows again with logprobs, which makes them sample on the host under the same masks
      const host = await run(draws.map((d) => (d.temperature === 0 ? { ...d, logprobs: 0 } : d)));
      device.out.forEach(({ ids, reason }, i) => {
        if (i % 3 === 2) return assert.equal(ids.length, 40);
        assert.equal(reason, 'stop', `request ${i} ends inside max_tokens (seed ${seed})`);
        const text = e.tokenizer.decode(ids);
        assert.ok(valid(JSON.parse(text)), `${text} (seed ${seed})`);
        if (draws[i]!.temperature === 0) assert.deepEqual(ids, host.out[i]!.ids, `greedy request ${i} (seed ${seed})`);
      });
      assert.ok(
        device.ahead >= device.steps / 2,
        `steps submitted ahead while constrained requests ran: ${device.ahead} of ${device.steps}`,
      );
      assert.equal(host.ahead, 0, 'host-sampled requests never step ahead');
    } finally {
      await e.close();
    }
  });
