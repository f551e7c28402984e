// dawn.node (npm `webgpu`) device setup: the adapter's own limits (Dawn's defaults cap bindings at 128 MiB and buffers
// at 256 MiB), the NVIDIA f16 toggle, and a clear message when no adapter exists.
import { createRequire } from 'node:module';

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
  dawnVersion: string;
  /** A software rasteriser (Mesa's llvmpipe/lavapipe, SwiftShader): correct, but slower than the CPU backend. */
  software: boolean;
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
    globalsInstalled = true;
  }
  const gpu = mod.create(['enable-dawn-features=vulkan_enable_f16_on_nvidia,use_vulkan_memory_model']);
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
  // timestamp queries let `fury bench --profile` time each kernel on the GPU
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query' as GPUFeatureName] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const ai = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
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
      dawnVersion: dawnVersion(),
      software:
        (ai as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
        /llvmpipe|lavapipe|swiftshader|softpipe/i.test(
          `${ai.description} ${ai.vendor} ${ai.architecture} ${ai.device}`,
        ),
    },
  };
}
