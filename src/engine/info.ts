/** What the engine runs on: backend, BLAS library and core, threads. */
import { getDefaultBackend } from './backend-registry.js';
import { coreType } from './backends/native/index.js';
import { nativeBackend } from './setup.js';
import type { MemoryInfo } from './backend.js';

export interface EngineInfo {
  defaultBackend: string;
  native: boolean;
  blas: string | null;
  openblasCore: string | null;
  openblasCoretypeEnv: string | null;
  coretypeSetByStackwise: boolean;
  threads: number | null;
  blasThreads: number | null;
  /** OpenBLAS threading: 'openmp' shares our kernels' runtime; 'pthreads' would oversubscribe. */
  blasThreading: string | null;
  /** The micro-kernel path of the fused kernels (attention): 'avx512' or 'avx2'; STACKWISE_SIMD
   * forces one. */
  simd: string | null;
}

export function engineInfo(): EngineInfo {
  const i = nativeBackend?.addon.info();
  return {
    defaultBackend: getDefaultBackend().name,
    native: nativeBackend !== null,
    blas: i?.blas ?? null,
    openblasCore: i?.coreName ?? null,
    openblasCoretypeEnv: coreType.value ?? null,
    coretypeSetByStackwise: coreType.setByUs,
    threads: i?.threads ?? null,
    blasThreads: i?.blasThreads ?? null,
    blasThreading: i ? (['sequential', 'pthreads', 'openmp'][i.blasParallel] ?? 'unknown') : null,
    simd: nativeBackend ? nativeBackend.addon.simdInfo() : null,
  };
}

/** One thread count for our kernels and BLAS (they share the OpenMP runtime). */
export function setNumThreads(n: number): void {
  if (!nativeBackend) throw new Error('setNumThreads: the native backend is not loaded');
  nativeBackend.addon.setNumThreads(n);
}

export function memoryInfo(backend = getDefaultBackend()): MemoryInfo {
  return backend.memory();
}
