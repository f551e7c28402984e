// The width-2 causal conv of 2Mamba / 2Mamba-E (spec/2mamba.md §4.2) and the decay front end −softplus(z) (§4.3).
// CPU twin: kernels/cpu/conv2.ts. The matmul family fuses the same front end into a projection's epilogue at decode.
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

export const CONV2_PARAMS = defineParams({ ch: 'u32', xStride: 'u32', heads: 'u32' });

/** −softplus(z) = −(max(z, 0) + log1p(exp(−|z|))), log1p without cancellation for small arguments. */
export const LOGDECAY = /* wgsl */ `fn logdecay(z: f32) -> f32 {
  let e = exp(-abs(z));
  let l1p = select(log(1.0 + e), e * (1.0 - e * (0.5 - e / 3.0)), e < 1e-4);
  return -(max(z, 0.0) + l1p);
}`;

/** The same front end as a projection's epilogue (decode steps: one row per sequence): `bindings(b)` declares the conv
 *  state, weights, bias, conv output and decay output from binding b; `body` stores the front end of projection output
 *  (row r, column c) = v: columns c < ch the window-2 conv with the slot's conv state (which v then replaces), the rest
 *  −softplus. Reads prm.ch and prm.heads. */
export const convEpilogue = {
  bindings: (b: number) => `${rw(b, 'cst')}
${ro(b + 1, 'cw')}
${ro(b + 2, 'cb')}
${rw(b + 3, 'cout')}
${rw(b + 4, 'la')}
${LOGDECAY}`,
  access: ['rw', 'ro', 'ro', 'rw', 'rw'] as const,
  body: `      let ch = prm.ch; let sq = rowSeq(r);
      if (c < ch) {
        let si = seqSlot(sq) * ch + c;
        let prev = select(0.0, cst[si], seqPos(sq) > 0u);
        cout[r * ch + c] = cb[c] + cw[2u * c] * prev + cw[2u * c + 1u] * v;
        cst[si] = v;
      } else { la[r * prm.heads + c - ch] = logdecay(v); }`,
};

// One thread per (row, channel): out[t] = b + w0·x[t−1] + w1·x[t], with
// x[−1] from state[slot] (zero for a fresh sequence). The thread of a sequence's first row is the only one that
// reads the state, so it also writes the new one (the sequence's last raw row): no race between rows. The decay
// variant's extra threads (channels ch … ch+heads−1) write −softplus(z) of the decay logits after the conv channels.
const conv2Source = (decay: boolean) => `${header(CONV2_PARAMS)}
${ro(2, 'x')}
${rw(3, 'st')}
${ro(4, 'wt')}
${ro(5, 'bias')}
${rw(6, 'outp')}
${decay ? rw(7, 'la') : ''}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let ch = prm.ch; let xs = prm.xStride; let H = ${decay ? 'prm.heads' : '0u'}; let i = ${WG_INDEX};
  if (i >= nRows() * (ch + H)) { return; }
  let r = i / (ch + H); let c = i % (ch + H);
${decay ? `  if (c >= ch) { la[r * H + c - ch] = logdecay(x[r * xs + c]); return; }` : ''}
  let s = rowSeq(r); let t = rowT(r); let si = seqSlot(s) * ch + c;
  var prev: f32;
  if (t == 0u) {
    prev = select(0.0, st[si], seqPos(s) > 0u);
    st[si] = x[(r + seqRows(s) - 1u) * xs + c];
  } else { prev = x[(r - 1u) * xs + c]; }
  outp[r * ch + c] = bias[c] + wt[2u * c] * prev + wt[2u * c + 1u] * x[r * xs + c];
}
${decay ? LOGDECAY : ''}`;

// The same with 4 channels per thread (ch and the x row stride multiples of 4): vec4 loads and stores (prefill's
// [qkv | A] rows are 3E + H wide; one thread per channel moved them at a fifth of the copy rate on an H100). `half`:
// x as f16 (gemm_mma's f16 out where the projection runs on tensor cores: half the bytes written and read).
const conv2x4Source = (decay: boolean, half: boolean) => `${header(CONV2_PARAMS)}
${ro(2, 'x', half ? 'vec2<u32>' : 'vec4<f32>')}
${rw(3, 'st', 'vec4<f32>')}
${ro(4, 'wt', 'vec4<f32>')}
${ro(5, 'bias', 'vec4<f32>')}
${rw(6, 'outp', 'vec4<f32>')}
${decay ? rw(7, 'la') : ''}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let Q = prm.ch / 4u; let xs = prm.xStride / 4u; let H = ${decay ? 'prm.heads' : '0u'}; let i = ${WG_INDEX};
  if (i >= nRows() * (Q + H)) { return; }
  let r = i / (Q + H); let c = i % (Q + H);
${decay ? `  if (c >= Q) { let e = r * prm.xStride + prm.ch + c - Q; la[r * H + c - Q] = logdecay(xv(e / 4u)[e % 4u]); return; }` : ''}
  let s = rowSeq(r); let t = rowT(r); let si = seqSlot(s) * Q + c;
  var prev: vec4<f32>;
  if (t == 0u) {
    prev = select(vec4<f32>(0.0), st[si], seqPos(s) > 0u);
    st[si] = xv((r + seqRows(s) - 1u) * xs + c);
  } else { prev = xv((r - 1u) * xs + c); }
  let w01 = wt[2u * c]; let w23 = wt[2u * c + 1u]; // (w0, w1) of channels 4c … 4c + 3
  outp[r * Q + c] = bias[c] + vec4<f32>(w01.x, w01.z, w23.x, w23.z) * prev + vec4<f32>(w01.y, w01.w, w23.y, w23.w) * xv(r * xs + c);
}
${
  half
    ? 'fn xv(i: u32) -> vec4<f32> { let u = x[i]; return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)); }'
    : 'fn xv(i: u32) -> vec4<f32> { return x[i]; }'
}
${decay ? LOGDECAY : ''}`;

const conv2: Kernel<{ decay: boolean; x4: boolean; half: boolean }> & { params: typeof CONV2_PARAMS } = {
  name: 'conv2',
  params: CONV2_PARAMS,
  bindings: (v) => (v.decay ? ['ro', 'rw', 'ro', 'ro', 'rw', 'rw'] : ['ro', 'rw', 'ro', 'ro', 'rw']),
  source: (v) => (v.x4 ? conv2x4Source(v.decay, v.half) : conv2Source(v.decay)),
};

/** Whether conv2 can read this op's x as f16 (the vec4 kernel: ch and the row stride multiples of 4). */
export const conv2TakesHalf = (op: Extract<Op, { op: 'conv2' }>) => op.ch % 4 === 0 && (op.xStride ?? op.ch) % 4 === 0;

/** conv2's dispatch; `x16`: read x from this buffer of f16 values instead (conv2TakesHalf). */
export function conv2Dispatch(
  op: Extract<Op, { op: 'conv2' }>,
  c: DispatchContext,
  x16: string | null = null,
): Dispatch {
  const heads = op.decay?.heads ?? 0,
    xStride = op.xStride ?? op.ch,
    x4 = conv2TakesHalf(op);
  if (x16 && !x4) throw new Error(`conv2: f16 x needs ch and the row stride multiples of 4 (ch ${op.ch})`);
  return dispatch(
    conv2,
    { decay: !!op.decay, x4, half: x16 !== null },
    [x16 ?? op.x, op.state, op.weight, op.bias, op.out, ...(op.decay ? [op.decay.out] : [])],
    { ch: op.ch, xStride, heads },
    wgFor(c.rows * ((x4 ? op.ch / 4 : op.ch) + heads)),
  );
}

export const conv2Family: Family = {
  ops: ['conv2'],
  dispatch(op: Op, c: DispatchContext): Dispatch[] {
    if (op.op !== 'conv2') throw new Error(`conv2 family: no op ${op.op}`);
    return [conv2Dispatch(op, c)];
  },
  variants: (_headDims, caps) =>
    [false, true].flatMap((decay) => [
      variant(conv2, { decay, x4: false, half: false }),
      variant(conv2, { decay, x4: true, half: false }),
      ...(caps.matrices !== 'off' ? [variant(conv2, { decay, x4: true, half: true })] : []),
    ]),
};
