// The prefill GEMM on tensor cores for f16 weights (issue 12): out[r, n] (+)= Σ_k x'[r, k] W[n, k], x' the prologue
// (none, rmsnorm, silu·mul) as in matmul.ts. The weights are not staged: each subgroup loads its 16×16 f16 fragments
// of W straight from the weight buffer (bound as array<f16>, column-major with stride K: W is [N][K]), so a K step
// costs only the x tile, staged once per workgroup as f16 with the prologue applied (activations rounded to f16,
// clamped to ±65504: 2⁻¹¹ relative, as the other tensor-core GEMM). rmsnorm's Σ x² accumulates from the staged
// tiles; its rsqrt(mean + eps) scales the finished rows.
//
// A workgroup: 64 × 64 outputs, 4 subgroups of 32, each a 32 × 32 quarter as 2 × 2 fragments of 16 × 16 (f32
// accumulators). The epilogue goes fragment by fragment through a 16 × 16 staging tile per subgroup (row scale,
// residual add, the bounds of partial tiles). The last column fragment of a matrix whose N is not a multiple of 16 is
// loaded from N − 16 (in bounds) and writes only its own columns. Requires K % 64 == 0 and N ≥ 16. Each K step of
// 64: the x values of the next step are loaded into registers while this one multiplies, and all weight fragments of
// the step are requested before the first product (a prefill GEMM otherwise waits on memory, not on tensor cores).
// `emulate`: the same staging and tile walk with the products in plain WGSL (lavapipe in CI).

const KC = 64; // the K step

/** `head`: the kernel header (MATMUL_PARAMS and the step meta, from matmul.ts). */
export const gemmTc16Source = (head: string, pro: 'none' | 'norm' | 'silu', emulate: boolean) => {
  const enables = `enable f16;\n${emulate ? '' : 'enable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'}`;
  const frag = (i: number, j: number) => `m${i}${j}`;
  // the first column of fragment column j of this subgroup (clamped in bounds) and the first it writes
  const colStart = /* wgsl */ `fn colFirst(c: u32, N: u32) -> u32 { return min(c, N - 16u); }`;
  const products = emulate
    ? /* wgsl */ `
    for (var k = 0u; k < ${KC}u; k++) {
      let a = f32(As[row * ${KC}u + k]);
      for (var j = 0u; j < 32u; j++) {
        acc[j] += a * f32(wh[min(c0 + hk * 32u + j, N - 1u) * K + k0 + k]);
      }
    }`
    : // the K step's weight fragments are all requested before the first product (their latencies overlap)
      [0, 16, 32, 48]
        .map(
          (kk) => `
    let b0_${kk} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&wh, cb0 * K + k0 + ${kk}u, true, K);
    let b1_${kk} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>>(&wh, cb1 * K + k0 + ${kk}u, true, K);`,
        )
        .join('') +
      [0, 16, 32, 48]
        .map(
          (kk) => `
    {
      let a0 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&As, qr * ${KC}u + ${kk}u, false, ${KC}u);
      let a1 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>>(&As, (qr + 16u) * ${KC}u + ${kk}u, false, ${KC}u);
      m00 = subgroupMatrixMultiplyAccumulate(a0, b0_${kk}, m00); m01 = subgroupMatrixMultiplyAccumulate(a0, b1_${kk}, m01);
      m10 = subgroupMatrixMultiplyAccumulate(a1, b0_${kk}, m10); m11 = subgroupMatrixMultiplyAccumulate(a1, b1_${kk}, m11);
    }`,
        )
        .join('');
  const write = /* wgsl */ `
fn put(r: u32, c: u32, v: f32) {
  let oi = r * prm.N + c;
  outp[oi] = select(v, outp[oi] + v, prm.add == 1u);
}`;
  const epilogue = emulate
    ? /* wgsl */ `
  let r = r0 + row;
  if (r < Rt) {
    for (var j = 0u; j < 32u; j++) {
      let c = c0 + hk * 32u + j;
      if (c < N) { put(r, c, acc[j] * rs[row]); }
    }
  }`
    : [0, 1]
        .flatMap((i) =>
          [0, 1].map(
            (j) => /* wgsl */ `
  workgroupBarrier();
  subgroupMatrixStore(&stg, sg * 256u, ${frag(i, j)}, false, 16u);
  workgroupBarrier();
  for (var u = 0u; u < 8u; u++) {
    let e = lane * 8u + u; let lr = qr + ${16 * i}u + e / 16u; let r = r0 + lr; let c = cb${j} + e % 16u;
    if (r < Rt && c >= c0 + qc + ${16 * j}u && c < N) { put(r, c, stg[sg * 256u + e] * rs[lr]); }
  }`,
          ),
        )
        .join('');
  return `${enables}${head}
@group(0) @binding(2) var<storage, read> wh: array<f16>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> outp: array<f32>;
${pro === 'norm' ? '@group(0) @binding(5) var<storage, read> nw: array<vec4<f32>>;' : ''}
fn silu4(g: vec4<f32>) -> vec4<f32> { return g / (vec4<f32>(1.0) + exp(-g)); }
${colStart}${write}
var<workgroup> As: array<f16, ${64 * KC}>; // the x tile [row][k]
var<workgroup> ssp: array<f32, 128>;
var<workgroup> rs: array<f32, 64>; // each row's scale (rmsnorm; else 1)
${emulate ? '' : 'var<workgroup> stg: array<f32, 1024>; // a 16 × 16 staging tile per subgroup'}
@compute @workgroup_size(128) fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>${
    emulate ? '' : ', @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32'
  }) {
  let K = prm.K; let N = prm.N; let Rt = nRows();
  let c0 = wg.x * 64u; let r0 = wg.y * 64u;
  let XS = ${pro === 'silu' ? '2u' : '1u'} * K / 4u; // vec4s per x row (silu: the row holds gate and up, 2K wide)
  let row = l.x / 2u; let hk = l.x % 2u; // staging: a row and half of the K step (32 values); emulated: 32 columns
  let xr = min(r0 + row, Rt - 1u) * XS;
${
  emulate
    ? '  var acc: array<f32, 32>;'
    : `  let qr = (sg % 2u) * 32u; let qc = (sg / 2u) * 32u;
  let cb0 = colFirst(c0 + qc, N); let cb1 = colFirst(c0 + qc + 16u, N);
${[0, 1].flatMap((i) => [0, 1].map((j) => `  var ${frag(i, j)} = subgroup_matrix_result<f32, 16, 16>();`)).join('\n')}`
}
  var ss = 0.0;
  // this thread's x values of the next K step, loaded while the current one multiplies
  var px: array<vec4<f32>, 8>;
${pro === 'silu' ? '  var pu: array<vec4<f32>, 8>;' : ''}
  for (var j = 0u; j < 8u; j++) { px[j] = x[xr + hk * 8u + j];${pro === 'silu' ? ' pu[j] = x[xr + hk * 8u + j + K / 4u];' : ''} }
  for (var k0 = 0u; k0 < K; k0 += ${KC}u) {
    workgroupBarrier(); // the previous tile's products are done
    for (var j = 0u; j < 8u; j++) {
      var a = px[j];
${pro === 'silu' ? '      a = silu4(a) * pu[j];' : ''}
${pro === 'norm' ? '      ss += dot(a, a); a *= nw[k0 / 4u + hk * 8u + j];' : ''}
      let o = row * ${KC}u + hk * 32u + 4u * j;
      As[o] = f16(clamp(a.x, -65504.0, 65504.0)); As[o + 1u] = f16(clamp(a.y, -65504.0, 65504.0));
      As[o + 2u] = f16(clamp(a.z, -65504.0, 65504.0)); As[o + 3u] = f16(clamp(a.w, -65504.0, 65504.0));
    }
    workgroupBarrier();
    if (k0 + ${KC}u < K) {
      let xn = xr + (k0 + ${KC}u) / 4u + hk * 8u;
      for (var j = 0u; j < 8u; j++) { px[j] = x[xn + j];${pro === 'silu' ? ' pu[j] = x[xn + j + K / 4u];' : ''} }
    }
${products}
  }
  ssp[l.x] = ss;
  workgroupBarrier();
  if (hk == 0u) { rs[row] = ${pro === 'norm' ? '1.0 / sqrt((ssp[l.x] + ssp[l.x + 1u]) / f32(K) + prm.eps)' : '1.0'}; }
  workgroupBarrier();
${epilogue}
}`;
};
