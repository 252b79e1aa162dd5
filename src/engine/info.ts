/** What the engine runs on: CPU, backend, BLAS library and core, threads. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { getDefaultBackend } from './backend-registry.js';
import { coreType } from './backends/native/index.js';
import { nativeBackend } from './setup.js';
import type { MemoryInfo } from './backend.js';
import { autoThreads, fixThreads, threadsAreAuto } from './threads.js';

export interface EngineInfo {
  /** The CPU by name, vendor, family and model (OpenBLAS's core name alone does not tell an AMD
   * EPYC with AVX-512 from an Intel Xeon: both run the SkylakeX kernels), and its core count. */
  cpu: string;
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
  /** Whether the thread count adapts to cores taken by other processes (setNumThreads('auto')). */
  threadsAuto: boolean;
}

export function engineInfo(): EngineInfo {
  const i = nativeBackend?.addon.info();
  return {
    cpu: cpuName(),
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
    threadsAuto: threadsAreAuto(),
  };
}

/** One thread count for our kernels and BLAS (they share the OpenMP runtime): a fixed n, or
 * 'auto' (the default) — as many as there are cores, fewer while other processes keep cores
 * busy (see threads.ts); `maxAuto` caps auto mode. Results are the same whatever the count. */
export function setNumThreads(n: number | 'auto', maxAuto?: number): void {
  if (!nativeBackend) throw new Error('setNumThreads: the native backend is not loaded');
  if (n === 'auto') autoThreads(maxAuto);
  else fixThreads(n);
}

export function memoryInfo(backend = getDefaultBackend()): MemoryInfo {
  return backend.memory();
}

let cpuNameCache: string | null = null;

/** "AMD EPYC (AuthenticAMD family 25 model 17), 2 cores": os.cpus()'s name, with the vendor,
 * family and model from /proc/cpuinfo where there is one. */
export function cpuName(): string {
  if (cpuNameCache !== null) return cpuNameCache;
  const list = cpus();
  let name = list[0]?.model.trim() || 'unknown CPU';
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim();
    const vendor = field('vendor_id'), family = field('cpu family'), model = field('model');
    if (vendor && family && model) name += ` (${vendor} family ${family} model ${model})`;
  } catch { /* not Linux: the name alone */ }
  cpuNameCache = `${name}, ${list.length} core${list.length === 1 ? '' : 's'}`;
  return cpuNameCache;
}
