// Helpers every kernel family of the WebAssembly module shares.

/** Sum of the four lanes as (l0 + l1) + (l2 + l3): the one order every kernel reduces in. */
export function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}
