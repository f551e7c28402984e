// The tensor-core kernels' WGSL with the subgroup-matrix builtins replaced by plain functions, so an adapter without
// chromium_experimental_subgroup_matrix (lavapipe in CI) still parses and checks the rest of it: every identifier,
// type and the workgroup arrays each load and store names (a matrix load from a buffer the kernel does not declare
// fails here as it would on a GPU). What it cannot check: the builtins' own rules (fragment shapes, strides).
const MATRIX = /subgroup_matrix_(?:left|right|result)<\w+, \d+, \d+>/g;

/** `code` made compilable without subgroup matrices, or null when it uses none. */
export function stubMatrices(code: string): string | null {
  if (!code.includes('enable chromium_experimental_subgroup_matrix;')) return null;
  // each array the kernel declares: its element type, for a load/store stub of its own
  const arrays = new Map<string, string>();
  for (const m of code.matchAll(/var<[^>]*>\s+(\w+)\s*:\s*array<(\w+(?:<\w+>)?)/g)) arrays.set(m[1]!, m[2]!);
  const stubs = [...arrays]
    .map(
      ([name, t]) =>
        `fn sml_${name}(p: ${t}, o: u32, s: u32) -> SM { return SM(f32(o + s)); }\n` +
        `fn sms_${name}(p: ${t}, o: u32, m: SM, s: u32) {}`,
    )
    .join('\n');
  let out = code
    .replace('enable chromium_experimental_subgroup_matrix;', '')
    .replace('enable subgroups;', '')
    .replace(/subgroupMatrixLoad<subgroup_matrix_\w+<\w+, \d+, \d+>, \w+>\(&(\w+), /g, 'sml_$1($1[0], ')
    .replace(/subgroupMatrixStore<\w+>\(&(\w+), /g, 'sms_$1($1[0], ')
    .replace(/subgroupMatrixMultiplyAccumulate\(/g, 'smMma(')
    .replace(MATRIX, 'SM')
    // the subgroup builtins as values of other builtins (types checked, values meaningless)
    .replace(/@builtin\(subgroup_id\) (\w+): u32/, '@builtin(num_workgroups) $1_v: vec3<u32>')
    .replace(/@builtin\(subgroup_invocation_id\) (\w+): u32/, '@builtin(global_invocation_id) $1_v: vec3<u32>');
  const lets = [...code.matchAll(/@builtin\(subgroup(?:_invocation)?_id\) (\w+): u32/g)]
    .map((m) => `let ${m[1]} = ${m[1]}_v.x;`)
    .join(' ');
  out = out.replace(/(fn main\([^{]*?\)\s*\{)/, `$1 ${lets}`);
  return `${out}
struct SM { v: f32 }
fn smMma(a: SM, b: SM, c: SM) -> SM { return SM(a.v * b.v + c.v); }
${stubs}`;
}
