// The WebAssembly module of the fast CPU backend (kernels/wasm/): every export, one family file each.
export { gemm } from './matmul';
export { step, chunked, chunkScratch } from './mamba2';
export { attend } from './attention';
