/**
 * Loads the native addon. Before it (and with it OpenBLAS) is loaded, OPENBLAS_CORETYPE is set
 * to SkylakeX on AVX-512 CPUs: Debian's OpenBLAS mis-detects such virtual CPUs and silently runs
 * an SSE3 kernel about 5x slower. A value the user already set is never overridden.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Handle = object;

/** The functions the C++ addon exports (see native/src). Buffers are opaque handles. */
export interface NativeAddon {
  /** An owner object; `.h` is the handle kernels take. */
  /** zero false: contents undefined (malloc instead of calloc). */
  alloc(bytes: number, zero?: boolean): { h: Handle };
  /** Takes the owner alloc returned. */
  free(owner: { h: Handle }): void;
  write(h: Handle, data: ArrayBufferView, byteOffset?: number): void;
  read(h: Handle, into: ArrayBufferView, byteOffset?: number): void;
  copy(src: Handle, dst: Handle, srcByteOffset: number, dstByteOffset: number, bytes: number): void;
  fill(h: Handle, value: number, count: number): void;
  fillInt(h: Handle, value: number, count: number): void;
  memory(): [number, number, number];
  castF32ToI32(src: Handle, dst: Handle, n: number): void;
  castI32ToF32(src: Handle, dst: Handle, n: number): void;
  info(): { blas: string; coreName: string; blasThreads: number; blasParallel: number; threads: number };
  setNumThreads(n: number): void;
  matmul(a: Handle, b: Handle, c: Handle, m: number, n: number, k: number, transA: boolean, transB: boolean,
    batch: number, strideA: number, strideB: number, strideC: number, alpha: number, beta: number, builtinGemm?: boolean): void;
  binary(op: number, a: Handle, b: Handle, c: Handle, shape: number[], stridesA: number[], stridesB: number[]): void;
  unary(op: number, x: Handle, y: Handle, n: number, p1: number, p2: number): void;
  unaryGrad(op: number, x: Handle | null, y: Handle | null, dy: Handle, dx: Handle, n: number, p1: number): void;
  swiglu(g: Handle, u: Handle, y: Handle, n: number): void;
  swigluGrad(g: Handle, u: Handle, dy: Handle, dg: Handle, du: Handle, n: number): void;
  sumToShape(x: Handle, out: Handle, inShape: number[], outStrides: number[], outSize: number): void;
  broadcastTo(x: Handle, out: Handle, outShape: number[], inStrides: number[]): void;
  addRowVector(y: Handle, b: Handle, rows: number, cols: number): void;
}

export interface CoreTypeDecision {
  /** The value in force when OpenBLAS initialised (undefined: OpenBLAS auto-detects). */
  value: string | undefined;
  /** Whether StackWise set it (false: the user did, or it was not needed). */
  setByUs: boolean;
}

function cpuHasAvx512(): boolean {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    return /\bavx512f\b/.test(info);
  } catch {
    return false;
  }
}

export const coreType: CoreTypeDecision = { value: process.env.OPENBLAS_CORETYPE, setByUs: false };

function decideCoreType(): void {
  if (process.env.OPENBLAS_CORETYPE === undefined && cpuHasAvx512()) {
    process.env.OPENBLAS_CORETYPE = 'SkylakeX';
    coreType.value = 'SkylakeX';
    coreType.setByUs = true;
  }
}

/**
 * OpenMP's default barrier spin (300k iterations) is tuned for a machine of our own. On a shared
 * 2-core machine, a thread that spins while its partner is descheduled holds the core that
 * partner needs: a training step measured 4× slower under load. A short spin keeps the quiet-
 * machine speed (measured equal) and yields quickly under load. Read by libgomp when the addon
 * loads; a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is never overridden.
 */
function decideSpinCount(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) process.env.GOMP_SPINCOUNT = '10000';
}

function addonPath(): string {
  // An explicit path (also how tests simulate a missing or broken addon).
  if (process.env.STACKWISE_NATIVE_ADDON) return process.env.STACKWISE_NATIVE_ADDON;
  // dist/src/engine/backends/native → repository root is five levels up; src/... is four.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 7; i++) {
    const p = join(dir, 'build', 'Release', 'stackwise_native.node');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return join(process.cwd(), 'build', 'Release', 'stackwise_native.node');
}

let loaded: NativeAddon | null | undefined;
let loadError: string | null = null;

/** The addon, or null when it cannot be loaded (the reason is in `nativeLoadError()`). */
export function loadNativeAddon(): NativeAddon | null {
  if (loaded !== undefined) return loaded;
  decideCoreType();
  decideSpinCount();
  const path = addonPath();
  try {
    const require = createRequire(import.meta.url);
    loaded = require(path) as NativeAddon;
    const info = loaded.info();
    if (info.blas !== 'openblas') {
      process.stderr.write('[stackwise] native addon built without OpenBLAS: using its own blocked GEMM (slower). ' +
        'Install libopenblas-openmp-dev and run `npm run build:native` for full speed.\n');
    }
  } catch (e) {
    loaded = null;
    loadError = (e as Error).message;
  }
  return loaded;
}

export function nativeLoadError(): string | null {
  return loadError;
}
