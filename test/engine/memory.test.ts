import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  memoryModel,
  twoMambaValuesPerHead,
  crossoverTokens,
  crossoverTokensExact,
  requestBytes,
} from '../../engine/memory/prices.js';
import { phiDim } from '../../kernels/ops.js';
import { presetSpec } from '../../weights/presets.js';
import { parameterCount } from '../../weights/names.js';

test('memory arithmetic of spec §11 and §15.8', () => {
  assert.equal(phiDim(64), 2080);
  assert.equal(twoMambaValuesPerHead(64), 135392);
  assert.equal(twoMambaValuesPerHead(64) * 4, 541568);
  const small = memoryModel(presetSpec('2mamba', 'small')),
    medium = memoryModel(presetSpec('2mamba', 'medium'));
  assert.equal(small.stateBytes, 20 * 16 * 541568); // 173.3 MB
  assert.equal((small.stateBytes / 1e6).toFixed(1), '173.3');
  assert.equal((medium.stateBytes / 1e6).toFixed(1), '350.9');
  assert.equal(small.kvBytesPerToken, 0);
  assert.equal(memoryModel(presetSpec('softmax', 'small')).kvBytesPerToken, 163840);
  assert.equal(memoryModel(presetSpec('softmax', 'medium')).kvBytesPerToken, 331776);
  assert.equal(memoryModel(presetSpec('2mamba-e', 'small')).kvBytesPerToken, 20 * 16 * 129 * 4);
  assert.equal(crossoverTokensExact(64), 1057.75);
  assert.equal(crossoverTokens(64), 1058);
  // an f16 cache halves K and V: twice the tokens before it outgrows the (f32) 2Mamba state
  assert.equal(crossoverTokensExact(64, 'f16'), 2115.5);
  assert.equal(memoryModel(presetSpec('softmax', 'small'), 'f16').kvBytesPerToken, 163840 / 2);
  assert.equal(memoryModel(presetSpec('2mamba-e', 'small'), 'f16').kvBytesPerToken, 20 * 16 * (128 * 2 + 4));
  // the whole-model crossover equals the per-head one: 2Mamba's bytes = softmax's at 1057.75 tokens
  const sm = presetSpec('softmax', 'small'),
    mb = presetSpec('2mamba', 'small');
  assert.ok(requestBytes(sm, 1057) < requestBytes(mb, 1057) && requestBytes(sm, 1058) > requestBytes(mb, 1058));
  assert.equal(requestBytes(mb, 10), requestBytes(mb, 1_000_000));
  const f16 = (t: number) => requestBytes(sm, t, 'f16');
  assert.ok(f16(2115) < requestBytes(mb, 2115) && f16(2116) > requestBytes(mb, 2116));
  assert.equal(parameterCount(presetSpec('2mamba', 'medium')), 736766976);
  assert.equal(parameterCount(presetSpec('2mamba', 'small')), 275805184);
  assert.equal(parameterCount(presetSpec('2mamba-e', 'small')), 275805184);
  assert.equal(parameterCount(presetSpec('softmax', 'small')), 275293824);
  assert.equal(parameterCount(presetSpec('softmax', 'medium')), 735399264);
});
