// dawn.node (npm `webgpu`) device setup: the adapter's own limits (Dawn's defaults cap bindings at 128 MiB and buffers
// at 256 MiB), the NVIDIA f16 toggle, dawn.node's ticks paced (ticks.ts), and a clear message when no adapter exists.
import { createRequire } from 'node:module';
import { dawnTickPacing, paceDawnTicks } from './ticks.js';
import { DAWN_TICK_US, DAWN_TOGGLES } from './tuning.js';

export class WebGpuUnavailableError extends Error {
  constructor(detail: string) {
    super(
      `no WebGPU adapter (${detail}): on a CPU machine install Mesa's lavapipe 25 ` +
        '(add bookworm-backports, then apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1), ' +
        'or run on a GPU host with its Vulkan driver; or use --backend cpu',
    );
    this.name = 'WebGpuUnavailableError';
  }
}

export interface GpuInfo {
  description: string;
  vendor: string;
  architecture: string;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** maxComputeWorkgroupStorageSize: workgroup memory per workgroup, bytes. */
  maxWorkgroupBytes: number;
  dawnVersion: string;
  /** A software rasteriser (Mesa's llvmpipe/lavapipe, SwiftShader): correct, but slower than the CPU backend. */
  software: boolean;
  /** Tensor cores reachable from WGSL: chromium-experimental-subgroup-matrix with a 16×16×16 f16 → f32 config, and
   *  subgroups of exactly 32 (the GEMM's 8 subgroups per workgroup of 256). */
  subgroupMatrices: boolean;
  /** dawn.node's device ticks run at most once per this many µs (ticks.ts; 0: unpaced). */
  tickUs: number;
}

export interface Gpu {
  device: GPUDevice;
  info: GpuInfo;
}

let globalsInstalled = false;

export function dawnVersion(): string {
  try {
    return createRequire(import.meta.url)('webgpu/package.json').version as string;
  } catch {
    const req = createRequire(import.meta.url);
    const main = req.resolve('webgpu');
    const pkg = main.slice(0, main.lastIndexOf('node_modules/webgpu') + 'node_modules/webgpu'.length);
    return (req(`${pkg}/package.json`) as { version: string }).version;
  }
}

export async function openGpu(): Promise<Gpu> {
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new WebGpuUnavailableError(`the webgpu package did not load: ${(e as Error).message}`);
  }
  if (!globalsInstalled) {
    Object.assign(globalThis, mod.globals);
    paceDawnTicks(DAWN_TICK_US);
    globalsInstalled = true;
  }
  // allow_unsafe_apis exposes chromium-experimental-subgroup-matrix (tensor cores through VK_KHR_cooperative_matrix)
  const gpu = mod.create([
    `enable-dawn-features=${['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', 'use_vulkan_memory_model', ...DAWN_TOGGLES].join(',')}`,
  ]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) throw new WebGpuUnavailableError('requestAdapter found none');
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
  };
  const ai = adapter.info as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    subgroupMatrixConfigs?: { componentType: string; resultComponentType: string; M: number; N: number; K: number }[];
  };
  const SGM = 'chromium-experimental-subgroup-matrix';
  const subgroupMatrices =
    adapter.features.has(SGM) &&
    adapter.features.has('shader-f16') &&
    ai.subgroupMinSize === 32 &&
    ai.subgroupMaxSize === 32 &&
    (ai.subgroupMatrixConfigs ?? []).some(
      (c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16,
    );
  // timestamp queries let `fury bench --profile` time each kernel on the GPU
  const requiredFeatures = [
    ...(adapter.features.has('timestamp-query') ? ['timestamp-query'] : []),
    // f16 tiles in workgroup memory: the tensor-core kernels and their emulated twins
    'shader-f16',
    ...(subgroupMatrices ? ['subgroups', SGM] : []),
  ].filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  // keep the instance alive as long as the device (dawn.node ends the process's hold when both are released)
  (device as unknown as { __gpu: unknown }).__gpu = gpu;
  return {
    device,
    info: {
      description: ai.description || ai.device || 'unknown adapter',
      vendor: ai.vendor ?? '',
      architecture: ai.architecture ?? '',
      subgroupMinSize: ai.subgroupMinSize ?? 0,
      subgroupMaxSize: ai.subgroupMaxSize ?? 0,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxWorkgroupBytes: l.maxComputeWorkgroupStorageSize,
      dawnVersion: dawnVersion(),
      subgroupMatrices,
      tickUs: dawnTickPacing()?.us ?? 0,
      software:
        (ai as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
        /llvmpipe|lavapipe|swiftshader|softpipe/i.test(
          `${ai.description} ${ai.vendor} ${ai.architecture} ${ai.device}`,
        ),
    },
  };
}
