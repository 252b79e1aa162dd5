/** Registers the backends: reference always; native when its addon loads. The default is
 * native when available (override with STACKWISE_BACKEND=reference|native). */
import { registerBackend, setDefaultBackendChooser } from './backend-registry.js';
import { referenceBackend } from './backends/reference/index.js';
import { loadNativeAddon, nativeLoadError, NativeBackend } from './backends/native/index.js';
import './backends/reference/kernels/index.js';
import './backends/native/kernels/index.js';
import { initThreads } from './threads.js';

registerBackend(referenceBackend);
const addon = loadNativeAddon();
export const nativeBackend: NativeBackend | null = addon ? new NativeBackend(addon) : null;
if (nativeBackend) {
  registerBackend(nativeBackend);
  initThreads({ set: (n) => addon!.setNumThreads(n) }, addon!.info().threads);
}

let warned = false;
setDefaultBackendChooser(() => {
  const wanted = process.env.STACKWISE_BACKEND;
  if (wanted === 'reference') return 'reference';
  if (nativeBackend) return 'native';
  if (wanted === 'native' || !warned) {
    warned = true;
    process.stderr.write(`[stackwise] native addon unavailable (${nativeLoadError() ?? 'not built'}); using the slow reference backend. ` +
      'Install a C++ toolchain and libopenblas-openmp-dev (Debian: apt-get install g++ make python3 libopenblas-openmp-dev), then run `npm run build:native`.\n');
  }
  if (wanted === 'native') throw new Error('STACKWISE_BACKEND=native but the native addon could not be loaded');
  return 'reference';
});
