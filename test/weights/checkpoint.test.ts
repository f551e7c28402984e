import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile, copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint } from '../../weights/checkpoint.js';
import { parseConfig, parseArch, ATTENTION_TYPES, toConfigJson } from '../../weights/config.js';
import { presetSpec } from '../../weights/presets.js';
import { writeRandomCheckpoint } from '../../weights/init.js';
import { SafetensorsFile, writeSafetensors } from '../../weights/safetensors.js';
import { encodeFloats } from '../../weights/dtype.js';
import { openModel } from '../../engine/open.js';
import { freshRng, tempDir, tinyCheckpoint, maxAbs } from '../helpers.js';

const sha = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

test('attention_type: the paper strings and the aliases', () => {
  assert.equal(parseArch('squared__sm_norm__A_mask_type_neg_softplus__in_conv_k_2'), '2mamba');
  assert.equal(parseArch('exp__sm_norm__A_mask_type_neg_softplus__in_conv_k_2'), '2mamba-e');
  assert.equal(parseArch('softmax'), 'softmax');
  assert.equal(parseArch('2Mamba-E'), '2mamba-e');
  assert.throws(() => parseArch('linear'), /unsupported attention_type "linear"/);
  const cfg = toConfigJson(presetSpec('2mamba', 'tiny'));
  assert.equal(cfg.attention_type, ATTENTION_TYPES['2mamba']);
  for (const k of [
    'hidden_size',
    'intermediate_size',
    'num_attention_heads',
    'num_hidden_layers',
    'vocab_size',
    'rms_norm_eps',
    'tie_word_embeddings',
    'max_position_embeddings',
    'bos_token_id',
    'eos_token_id',
  ])
    assert.ok(k in cfg, k);
  assert.throws(() => parseConfig({ ...cfg, rope_scaling: { type: 'llama3' } }), /rope_scaling .* is not supported/);
  assert.throws(
    () => parseConfig({ ...cfg, attention_type: undefined, model_type: 'gpt2', architectures: [] }),
    /no "attention_type"/,
  );
  assert.throws(() => parseConfig({ ...cfg, hidden_size: 0 }), /"hidden_size" must be a positive integer/);
  const hf = parseConfig(
    { ...cfg, attention_type: undefined, num_key_value_heads: 1 },
    new Set(['model.layers.0.self_attn.q_proj.weight']),
  );
  assert.deepEqual([hf.arch, hf.naming, hf.rope?.convention, hf.kvHeads], ['softmax', 'hf', 'half', 1]);
});

test('fury init is deterministic: same seed → same bytes, another seed → other weights', async () => {
  const spec = presetSpec('2mamba-e', 'tiny');
  const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
  await writeRandomCheckpoint(spec, a, { seed: 7 });
  await writeRandomCheckpoint(spec, b, { seed: 7 });
  await writeRandomCheckpoint(spec, c, { seed: 8 });
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json'])
    assert.equal(await sha(join(a, f)), await sha(join(b, f)), f);
  assert.notEqual(await sha(join(a, 'model.safetensors')), await sha(join(c, 'model.safetensors')));
  const f16 = await tempDir();
  await writeRandomCheckpoint(spec, f16, { seed: 7, dtype: 'F16' });
  const ck = await loadCheckpoint(f16);
  assert.equal(ck.tensors.get('model.embed_tokens.weight')!.dtype, 'F16');
  await ck.close();
});

test('a checkpoint rejects missing tensors, wrong shapes and a mismatched attention_type', async () => {
  const dir = await tinyCheckpoint('2mamba', 1);
  const f = await SafetensorsFile.open(join(dir, 'model.safetensors'));
  const names = [...f.tensors.keys()];
  const tensors = await Promise.all(
    names.map(async (n) => ({
      name: n,
      dtype: f.info(n).dtype,
      shape: [...f.info(n).shape],
      data: await f.readBytes(n),
    })),
  );
  await f.close();
  const variant = async (edit: (t: typeof tensors) => typeof tensors, cfg?: Record<string, unknown>) => {
    const d = await tempDir();
    for (const n of ['tokenizer.json', 'tokenizer_config.json', 'config.json'])
      await copyFile(join(dir, n), join(d, n));
    if (cfg)
      await writeFile(
        join(d, 'config.json'),
        JSON.stringify({ ...JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')), ...cfg }),
      );
    await writeSafetensors(join(d, 'model.safetensors'), edit(tensors.map((t) => ({ ...t }))));
    return d;
  };
  await assert.rejects(
    loadCheckpoint(await variant((t) => t.filter((x) => x.name !== 'model.layers.1.mlp.up_proj.weight'))),
    /missing tensor "model\.layers\.1\.mlp\.up_proj\.weight"/,
  );
  await assert.rejects(
    loadCheckpoint(await variant((t) => t.map((x) => (x.name === 'model.norm.weight' ? { ...x, shape: [64, 2] } : x)))),
    /model\.safetensors: tensor "model\.norm\.weight": shape \[64, 2\] does not match the config's \[128\]/,
  );
  await assert.rejects(
    loadCheckpoint(await variant((t) => t, { attention_type: 'softmax' })),
    /has 2Mamba tensors .* will not guess/,
  );
  await assert.rejects(
    loadCheckpoint(await variant((t) => t.filter((x) => !x.name.includes('A_mask')))),
    /no self_attn.A_mask_proj/,
  );
  // the paper's junk attn_mask buffers load skipped; BOOL with a huge shape would not fit in memory
  const withMask = await variant((t) => [
    ...t,
    { name: 'model.layers.0.self_attn.attn_mask', dtype: 'BOOL', shape: [1, 1, 64, 64], data: new Uint8Array(4096) },
  ]);
  const ck = await loadCheckpoint(withMask);
  assert.deepEqual(ck.skipped, ['model.layers.0.self_attn.attn_mask']);
  assert.ok(!ck.tensors.has('model.layers.0.self_attn.attn_mask'));
  await ck.close();
  await assert.rejects(loadCheckpoint(join(dir, 'nope')), /no config\.json/);
  const noTok = await variant((t) => t);
  await rm(join(noTok, 'tokenizer.json'));
  await assert.rejects(loadCheckpoint(noTok), /no tokenizer\.json .* --tokenizer FILE/);
});

test('sharded checkpoints load through model.safetensors.index.json and give the same logits', async () => {
  const dir = await tinyCheckpoint('softmax', 3);
  const f = await SafetensorsFile.open(join(dir, 'model.safetensors'));
  const names = [...f.tensors.keys()];
  const shardOf = (i: number) => `model-0000${1 + (i % 2)}-of-00002.safetensors`;
  const sharded = await tempDir();
  for (const n of ['tokenizer.json', 'tokenizer_config.json', 'config.json'])
    await copyFile(join(dir, n), join(sharded, n));
  for (const s of [0, 1]) {
    const mine = names.filter((_, i) => i % 2 === s);
    await writeSafetensors(
      join(sharded, shardOf(s)),
      await Promise.all(
        mine.map(async (n) => ({
          name: n,
          dtype: f.info(n).dtype,
          shape: f.info(n).shape,
          data: await f.readBytes(n),
        })),
      ),
    );
  }
  await f.close();
  await writeFile(
    join(sharded, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(names.map((n, i) => [n, shardOf(i)])) }),
  );
  const ids = [1, 50, 60, 70, 80];
  const logits = async (d: string) => {
    const m = await openModel(d, { backend: 'cpu', slots: 1, kvTokens: 64 });
    const s = m.pool.open();
    const l = await m.pool.step([{ seq: s, ids }]);
    await m.close();
    return l;
  };
  assert.deepEqual(await logits(sharded), await logits(dir));
  // an index naming a tensor its shard lacks
  const idx = JSON.parse(await readFile(join(sharded, 'model.safetensors.index.json'), 'utf8'));
  idx.weight_map['model.norm.weight'] = shardOf(names.indexOf('model.norm.weight') + 1);
  await writeFile(join(sharded, 'model.safetensors.index.json'), JSON.stringify(idx));
  await assert.rejects(
    loadCheckpoint(sharded),
    /tensor "model\.norm\.weight" is listed in the index but missing from the shard/,
  );
});

/** Permute Q/K rows within each head: new[m] = old[2m], new[m + d/2] = old[2m + 1] (spec §7.2). */
function permuteRows(w: Float32Array, heads: number, d: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let m = 0; m < d / 2; m++) {
      out.set(w.subarray((h * d + 2 * m) * cols, (h * d + 2 * m + 1) * cols), (h * d + m) * cols);
      out.set(w.subarray((h * d + 2 * m + 1) * cols, (h * d + 2 * m + 2) * cols), (h * d + m + d / 2) * cols);
    }
  }
  return out;
}

/** Rewrite a paper softmax checkpoint as a HF LlamaForCausalLM one (q/k/v_proj, half-split RoPE), optionally
 *  with GQA where the paper model's K/V heads are duplicates. */
async function asHfLlama(paperDir: string, kvHeads: number): Promise<string> {
  const ck = await loadCheckpoint(paperDir);
  const spec = ck.spec,
    E = spec.hidden,
    d = spec.headDim,
    H = spec.heads,
    out = await tempDir();
  const tensors = [];
  for (const name of ck.tensors.keys()) {
    if (name.endsWith('rotary_emb.freqs')) continue;
    const data = await ck.read(name);
    if (name.endsWith('qkv_proj.weight')) {
      const base = name.replace('qkv_proj.weight', '');
      const q = permuteRows(data.subarray(0, E * E), H, d, E);
      const k = permuteRows(data.subarray(E * E, 2 * E * E), H, d, E).subarray(0, kvHeads * d * E);
      const v = data.subarray(2 * E * E, 2 * E * E + kvHeads * d * E);
      tensors.push(
        { name: `${base}q_proj.weight`, dtype: 'F32', shape: [H * d, E], data: encodeFloats(q, 'F32') },
        { name: `${base}k_proj.weight`, dtype: 'F32', shape: [kvHeads * d, E], data: encodeFloats(k, 'F32') },
        { name: `${base}v_proj.weight`, dtype: 'F32', shape: [kvHeads * d, E], data: encodeFloats(v, 'F32') },
      );
    } else
      tensors.push({ name, dtype: 'F32', shape: [...ck.tensors.get(name)!.shape], data: encodeFloats(data, 'F32') });
  }
  await ck.close();
  await writeSafetensors(join(out, 'model.safetensors'), tensors);
  const cfg = JSON.parse(await readFile(join(paperDir, 'config.json'), 'utf8'));
  delete cfg.attention_type;
  await writeFile(
    join(out, 'config.json'),
    JSON.stringify({ ...cfg, num_key_value_heads: kvHeads, rope_theta: 10000 }),
  );
  for (const n of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(paperDir, n), join(out, n));
  return out;
}

async function allLogits(dir: string, ids: number[]): Promise<Float32Array> {
  const m = await openModel(dir, { backend: 'cpu', slots: 1, kvTokens: 256 });
  const l = await m.pool.step([{ seq: m.pool.open(), ids }], true);
  await m.close();
  return l;
}

test('a HF LlamaForCausalLM checkpoint (half-split RoPE) equals the paper softmax model with permuted Q/K rows', async () => {
  const { rng, seed } = freshRng();
  const ids = Array.from({ length: 40 }, () => 3 + Math.floor(rng.next() * 256));
  const paper = await tinyCheckpoint('softmax', seed % 1000);
  const hf = await asHfLlama(paper, 2);
  const ck = await loadCheckpoint(hf);
  assert.deepEqual([ck.spec.arch, ck.spec.naming, ck.spec.rope?.convention], ['softmax', 'hf', 'half']);
  await ck.close();
  const [a, b] = [await allLogits(paper, ids), await allLogits(hf, ids)];
  assert.ok(maxAbs(a, b) < 1e-5, `max |Δlogit| ${maxAbs(a, b)} (seed ${seed})`);
});

test('GQA: one KV head shared by two query heads equals a model whose two KV heads are equal', async () => {
  const { seed } = freshRng();
  const paper = await tinyCheckpoint('softmax', seed % 1000);
  // make the paper model's K and V heads identical (head 1 := head 0), so it is a GQA model in disguise
  const f = await SafetensorsFile.open(join(paper, 'model.safetensors'));
  const tensors = await Promise.all(
    [...f.tensors.keys()].map(async (n) => {
      const data = f.info(n).dtype === 'F32' ? await f.readF32(n) : null;
      if (data && n.endsWith('qkv_proj.weight')) {
        const E = 128,
          d = 64;
        for (const blk of [1, 2]) data.copyWithin((blk * E + d) * E, blk * E * E, (blk * E + d) * E);
      }
      return { name: n, dtype: 'F32', shape: [...f.info(n).shape], data: encodeFloats(data!, 'F32') };
    }),
  );
  await f.close();
  const dup = await tempDir();
  await writeSafetensors(join(dup, 'model.safetensors'), tensors);
  for (const n of ['tokenizer.json', 'tokenizer_config.json', 'config.json'])
    await copyFile(join(paper, n), join(dup, n));
  const gqa = await asHfLlama(dup, 1);
  assert.equal((await readFile(join(gqa, 'config.json'), 'utf8')).includes('"num_key_value_heads":1'), true);
  const ids = [1, 9, 99, 199, 29, 59, 89];
  const [a, b] = [await allLogits(dup, ids), await allLogits(gqa, ids)];
  assert.ok(maxAbs(a, b) < 1e-5, `max |Δlogit| ${maxAbs(a, b)}`);
});
