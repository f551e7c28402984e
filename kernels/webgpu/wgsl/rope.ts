// RoPE in place on the Q and K heads of each row at its position (spec/2mamba.md §7). CPU twin: kernels/cpu/rope.ts.
import type { Op } from '../../ops.js';
import {
  type Dispatch,
  type DispatchContext,
  type Family,
  type Kernel,
  defineParams,
  dispatch,
  header,
  ro,
  rw,
  variant,
  wgFor,
  WG,
  WG_INDEX,
} from './common.js';

export const ROPE_PARAMS = defineParams({ heads: 'u32', kvHeads: 'u32', headDim: 'u32', interleaved: 'u32' });

// RoPE in place on the Q and K heads of each row at its position.
const ropeSource = () => `${header(ROPE_PARAMS)}
${rw(2, 'x')}
${ro(3, 'freqs')}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let H = prm.heads; let Hkv = prm.kvHeads; let d = prm.headDim; let half = d / 2u;
  let per = (H + Hkv) * half; let i = ${WG_INDEX};
  if (i >= nRows() * per) { return; }
  let r = i / per; let k = i % per; let head = k / half; let m = k % half;
  let width = (H + 2u * Hkv) * d; let base = r * width + head * d;
  let pos = f32(seqPos(rowSeq(r)) + rowT(r));
  let ang = pos * freqs[m]; let cs = cos(ang); let sn = sin(ang);
  var a = base + m; var b = base + m + half;
  if (prm.interleaved == 1u) { a = base + 2u * m; b = a + 1u; }
  let xa = x[a]; let xb = x[b];
  x[a] = xa * cs - xb * sn;
  x[b] = xb * cs + xa * sn;
}`;

const rope: Kernel<object> & { params: typeof ROPE_PARAMS } = {
  name: 'rope',
  params: ROPE_PARAMS,
  bindings: () => ['rw', 'ro'],
  source: () => ropeSource(),
};

export const ropeFamily: Family = {
  ops: ['rope'],
  dispatch(op: Op, c: DispatchContext): Dispatch[] {
    if (op.op !== 'rope') throw new Error(`rope family: no op ${op.op}`);
    const { heads, kvHeads, headDim } = op.layout;
    return [
      dispatch(
        rope,
        {},
        [op.qkv, op.freqs],
        { heads, kvHeads, headDim, interleaved: op.convention === 'interleaved' ? 1 : 0 },
        wgFor((c.rows * (heads + kvHeads) * headDim) / 2),
      ),
    ];
  },
  variants: () => [variant(rope, {})],
};
