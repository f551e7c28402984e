// Model shapes: tiny for tests and CI, small and medium as in the paper (spec/2mamba.md §3.1).
import type { Arch, ModelSpec } from './config.js';

export type PresetName = 'tiny' | 'small' | 'medium';

const SHAPES: Record<
  PresetName,
  Pick<ModelSpec, 'hidden' | 'intermediate' | 'heads' | 'headDim' | 'layers' | 'vocab' | 'maxPositions'>
> = {
  tiny: { hidden: 128, intermediate: 256, heads: 2, headDim: 64, layers: 2, vocab: 512, maxPositions: 2048 },
  small: { hidden: 1024, intermediate: 2048, heads: 16, headDim: 64, layers: 20, vocab: 32000, maxPositions: 2048 },
  medium: { hidden: 1536, intermediate: 3072, heads: 24, headDim: 64, layers: 27, vocab: 32000, maxPositions: 8192 },
};

export const PRESETS = Object.keys(SHAPES) as PresetName[];

export function presetSpec(arch: Arch, preset: PresetName): ModelSpec {
  const s = SHAPES[preset];
  return {
    arch,
    ...s,
    kvHeads: s.heads,
    eps: 1e-5,
    tieEmbeddings: false,
    bosId: 1,
    eosIds: [2],
    rope: arch === 'softmax' ? { convention: 'interleaved', theta: 10000 } : null,
    naming: 'paper',
  };
}
