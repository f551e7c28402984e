import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, samplingParams, SamplingParamError, type SamplingParams } from '../../engine/sampler.js';
import { CpuBackend } from '../../kernels/cpu/backend.js';
import { freshRng, argmax, deviceDraws } from '../helpers.js';

const V = 50;
const randomLogits = (rng: { normal(): number }) => Float32Array.from({ length: V }, () => 2 * rng.normal());
const softmax = (x: ArrayLike<number>, t = 1) => {
  const mx = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp((v - mx) / t));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
};

test('greedy picks the argmax; top_k = 1 and a tiny top_p do too', () => {
  const { rng, seed } = freshRng();
  for (let i = 0; i < 20; i++) {
    const l = randomLogits(rng),
      best = argmax(l);
    assert.equal(new Sampler({ temperature: 0 }).sample(l).id, best, `seed ${seed}`);
    assert.equal(new Sampler({ temperature: 1, top_k: 1, seed: i }).sample(l).id, best, `top_k 1, seed ${seed}`);
    assert.equal(
      new Sampler({ temperature: 1.5, top_p: 1e-9, seed: i }).sample(l).id,
      best,
      `tiny top_p, seed ${seed}`,
    );
  }
});

test('the same seed gives the same tokens; other seeds give others', () => {
  const { rng, seed } = freshRng();
  const logits = Array.from({ length: 40 }, () => randomLogits(rng));
  const run = (s: number) => {
    const smp = new Sampler({ temperature: 1, seed: s });
    return logits.map((l) => smp.sample(l).id);
  };
  assert.deepEqual(run(seed), run(seed));
  assert.notDeepEqual(run(seed), run(seed + 1));
});

test('temperature sampling follows softmax(logits / T); top_k, top_p and min_p cut the right tokens', () => {
  const { rng, seed } = freshRng();
  const l = Float32Array.from({ length: 6 }, () => rng.normal());
  for (const T of [0.5, 1, 1.7]) {
    const smp = new Sampler({ temperature: T, seed }),
      n = 30000,
      counts = new Array(6).fill(0);
    for (let i = 0; i < n; i++) counts[smp.sample(l).id]++;
    softmax(l, T).forEach((p, i) =>
      assert.ok(Math.abs(counts[i] / n - p) < 0.015, `T=${T} token ${i}: ${counts[i] / n} vs ${p} (seed ${seed})`),
    );
  }
  const order = Array.from(l.keys()).sort((a, b) => l[b]! - l[a]!);
  const p = softmax(l);
  const seen = (params: object) => {
    const smp = new Sampler({ seed, ...params });
    const s = new Set<number>();
    for (let i = 0; i < 3000; i++) s.add(smp.sample(l).id);
    return s;
  };
  assert.deepEqual([...seen({ top_k: 2 })].sort(), order.slice(0, 2).sort());
  // top_p: the smallest prefix of the sorted distribution reaching top_p
  const cum = order.map((_, i) => order.slice(0, i + 1).reduce((s, j) => s + p[j]!, 0));
  const k = cum.findIndex((c) => c >= 0.6) + 1;
  assert.deepEqual([...seen({ top_p: 0.6 })].sort(), order.slice(0, k).sort());
  // min_p: tokens with p ≥ min_p · p_max
  const pmax = p[order[0]!]!;
  assert.deepEqual([...seen({ min_p: 0.3 })].sort(), order.filter((i) => p[i]! >= 0.3 * pmax).sort());
});

test('presence, frequency and repetition penalties change the choice as specified', () => {
  const l = Float32Array.from([2, 1.9, 0, -1]);
  const smp = new Sampler({ temperature: 0, presence_penalty: 0.2 });
  assert.equal(smp.sample(l).id, 0);
  smp.accept(0);
  assert.equal(smp.sample(l).id, 1, 'presence penalty 0.2 moves the choice off the repeated token');
  const f = new Sampler({ temperature: 0, frequency_penalty: 0.06 });
  f.accept(0);
  assert.equal(f.sample(l).id, 0, 'one occurrence × 0.06 is not enough');
  f.accept(0);
  assert.equal(f.sample(l).id, 1, 'two occurrences × 0.06 are');
  // repetition penalty covers the prompt too: logit 2 / 1.1 < 1.9
  assert.equal(new Sampler({ temperature: 0, repetition_penalty: 1.1 }, [0]).sample(l).id, 1);
  // positive logits are divided (2/5, 1.9/5 < 0.5) …
  assert.equal(
    new Sampler({ temperature: 0, repetition_penalty: 5 }, [0, 1]).sample(Float32Array.from([2, 1.9, 0.5, -1])).id,
    2,
  );
  // … negative ones multiplied (−1 × 3 = −3 < −1.5; dividing would have kept token 0 on top)
  assert.equal(
    new Sampler({ temperature: 0, repetition_penalty: 3 }, [0]).sample(Float32Array.from([-1, -1.5, -2])).id,
    1,
  );
});

test('banned ids (stop tokens before min_tokens) are never drawn', () => {
  const { rng, seed } = freshRng();
  const l = randomLogits(rng),
    best = argmax(l);
  assert.notEqual(new Sampler({ temperature: 0 }).sample(l, new Set([best])).id, best);
  const smp = new Sampler({ temperature: 1, seed });
  for (let i = 0; i < 500; i++) assert.notEqual(smp.sample(l, new Set([best])).id, best);
});

test('logprobs are the log-softmax of the raw logits, with sorted top alternatives', () => {
  const { rng } = freshRng();
  const l = randomLogits(rng);
  const t = new Sampler({ temperature: 0, logprobs: 5 }).sample(l);
  const p = softmax(l);
  assert.ok(Math.abs(t.logprob - Math.log(p[t.id]!)) < 1e-9);
  assert.equal(t.top!.length, 5);
  assert.equal(t.top![0]!.id, t.id);
  for (let i = 1; i < 5; i++) assert.ok(t.top![i - 1]!.logprob >= t.top![i]!.logprob);
  t.top!.forEach(({ id, logprob }) => assert.ok(Math.abs(logprob - Math.log(p[id]!)) < 1e-9));
  assert.equal(new Sampler({ temperature: 0 }).sample(l).top, undefined);
});

test('invalid parameters are rejected with the parameter named, never clamped', () => {
  const bad: [object, string][] = [
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: 2.5 }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ top_p: 0 }, 'top_p'],
    [{ top_p: 1.01 }, 'top_p'],
    [{ top_k: 2.5 }, 'top_k'],
    [{ top_k: -2 }, 'top_k'],
    [{ min_p: 1.5 }, 'min_p'],
    [{ presence_penalty: 3 }, 'presence_penalty'],
    [{ frequency_penalty: -2.01 }, 'frequency_penalty'],
    [{ repetition_penalty: 0 }, 'repetition_penalty'],
    [{ seed: 1.5 }, 'seed'],
    [{ seed: 2 ** 60 }, 'seed'],
    [{ logprobs: 21 }, 'logprobs'],
    [{ logprobs: -1 }, 'logprobs'],
    [{ temperature: '0.7' }, 'temperature'],
  ];
  for (const [p, param] of bad) {
    assert.throws(
      () => samplingParams(p),
      (e: unknown) => e instanceof SamplingParamError && e.param === param && e.message.includes(param),
      JSON.stringify(p),
    );
  }
  assert.deepEqual(samplingParams({ top_k: -1, temperature: 0, seed: -5 }).top_k, -1);
});

test('device sampling (the sample op on the CPU backend): argmax at T = 0, softmax(logits / T) frequencies, seeded', async () => {
  const { rng, seed } = freshRng();
  const be = new CpuBackend();
  const rows = Array.from({ length: 30 }, () => randomLogits(rng));
  assert.deepEqual(
    await deviceDraws(
      be,
      rows,
      rows.map(() => ({ temperature: 0, seed: 1, draw: 0 })),
    ),
    rows.map((r) => argmax(r)),
    `seed ${seed}`,
  );
  // 6000 draws from one 8-token distribution (draw index = row): every frequency within 4.5σ of its probability
  const l = Float32Array.from({ length: 8 }, () => rng.normal()),
    T = 0.8,
    n = 6000,
    p = softmax(l, T);
  const got = await deviceDraws(
    be,
    Array.from({ length: n }, () => l),
    Array.from({ length: n }, (_, i) => ({ temperature: T, seed, draw: i })),
  );
  for (let k = 0; k < 8; k++) {
    const freq = got.filter((x) => x === k).length / n,
      sd = Math.sqrt((p[k]! * (1 - p[k]!)) / n);
    assert.ok(Math.abs(freq - p[k]!) < 4.5 * sd + 1e-9, `token ${k}: frequency ${freq} vs p ${p[k]} (seed ${seed})`);
  }
  // same (seed, draw) → same token; another seed → other tokens
  const again = await deviceDraws(
    be,
    Array.from({ length: 200 }, () => l),
    Array.from({ length: 200 }, (_, i) => ({ temperature: T, seed, draw: i })),
  );
  assert.deepEqual(again, got.slice(0, 200));
  const other = await deviceDraws(
    be,
    Array.from({ length: 200 }, () => l),
    Array.from({ length: 200 }, (_, i) => ({ temperature: T, seed: seed + 1, draw: i })),
  );
  assert.notDeepEqual(other, got.slice(0, 200));
});

test('Sampler.device: plain temperature / greedy requests sample on the device; anything the op cannot do stays on the host', () => {
  const dev = (p: Partial<SamplingParams>, banned?: Set<number>) => new Sampler(p).device({ vocab: 70, banned });
  assert.deepEqual(dev({ temperature: 0.7, seed: 5 }), { temperature: 0.7, seed: 5, draw: 0 });
  assert.equal(dev({ temperature: 1, top_k: 1, seed: 5 })!.temperature, 0, 'top_k = 1 is greedy');
  for (const p of [
    { top_p: 0.9 },
    { top_k: 5 },
    { min_p: 0.1 },
    { presence_penalty: 0.5 },
    { frequency_penalty: -1 },
    { repetition_penalty: 1.2 },
    { logprobs: 0 },
  ] as Partial<SamplingParams>[]) {
    assert.equal(dev({ temperature: 1, ...p }), null, JSON.stringify(p));
  }
  assert.equal(dev({ temperature: 1, logit_bias: { 3: 5 } }), null, 'logit_bias');
  // banned ids (EOS before min_tokens) and a grammar's allowed ids become the draw's mask
  const bits = (m: Int32Array) => Array.from({ length: 70 }, (_, i) => (m[i >> 5]! >>> (i & 31)) & 1);
  const banned = dev({ temperature: 1 }, new Set([2, 33, 69]))!.mask!;
  assert.equal(banned.length, 3);
  assert.deepEqual(
    bits(banned),
    Array.from({ length: 70 }, (_, i) => ([2, 33, 69].includes(i) ? 0 : 1)),
  );
  const allowed = Int32Array.from([0b1110, 1 << 1, 0]);
  const s0 = new Sampler({ temperature: 0 });
  assert.equal(s0.device({ vocab: 70, allowed })!.mask, allowed, 'a grammar mask goes as it is');
  const both = s0.device({ vocab: 70, allowed, banned: new Set([2]) })!.mask!;
  assert.deepEqual(
    bits(both).flatMap((b, i) => (b ? [i] : [])),
    [1, 3, 33],
  );
  assert.deepEqual(Array.from(allowed), [0b1110, 2, 0], 'the grammar mask is not changed');
  const s = new Sampler({ temperature: 1, seed: 9 });
  s.accept(4);
  s.accept(4);
  assert.equal(s.device({ vocab: 70 })!.draw, 2, 'the draw index counts accepted tokens');
});
