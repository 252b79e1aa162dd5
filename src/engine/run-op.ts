/** Runs an op: checks its inputs, dispatches to the registered kernel for their backend and
 * records a tape node when a gradient may be needed. */
import { getDefaultBackend } from './backend-registry.js';
import { getKernel, mutatedInputsOf } from './registry.js';
import type { Tensor } from './tensor.js';
import { isGradEnabled } from './grad-mode.js';
import type { Backend } from './backend.js';
import { profilingActive, recordOp } from './profiler.js';
import { adaptThreads } from './threads.js';

let writeCheck = process.env.STACKWISE_CHECK_WRITES === '1';

/**
 * Turns the write check on or off (also on with STACKWISE_CHECK_WRITES=1): every op then
 * compares its inputs' bytes before and after the kernel and throws when a kernel wrote into an
 * input that its op does not declare with `registerInPlaceOp` (whose write version would then
 * not change). Slow; for tests. Returns the previous setting.
 */
export function setWriteCheck(on: boolean): boolean {
  const was = writeCheck;
  writeCheck = on;
  return was;
}

function bytesOf(t: Tensor): Uint8Array {
  const a = t.toArray();
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function runOp<A>(op: string, inputs: Tensor[], attrs: A, backend?: Backend): Tensor[] {
  let be = backend;
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    if (t.isDisposed) throw new Error(`op '${op}': input ${i} (${t.describe()}) was used after it was disposed`);
    if (!be) be = t.backend;
    else if (t.backend !== be) throw new Error(`op '${op}': inputs live on different backends ('${be.name}' and '${t.backend.name}' for input ${i})`);
  }
  be ??= getDefaultBackend();
  adaptThreads();
  const kernel = getKernel<A>(op, be.name);
  const mutated = mutatedInputsOf(op, inputs.length);
  const before = writeCheck ? inputs.map((t, i) => (mutated?.includes(i) ? null : bytesOf(t))) : null;
  let outputs: Tensor[];
  if (profilingActive()) {
    const t0 = performance.now();
    outputs = kernel(inputs, attrs, be);
    recordOp(op, performance.now() - t0);
  } else {
    outputs = kernel(inputs, attrs, be);
  }
  // Declared in-place writes change the write version (of the storage: views see it too).
  if (mutated) for (const i of mutated) inputs[i].markWritten();
  if (before) checkNoUndeclaredWrites(op, inputs, before);
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    const node = { op, inputs, outputs, attrs };
    for (const o of outputs) {
      if (o.dtype === 'int32') continue;
      o.node = node;
      o.requiresGrad = true;
    }
  }
  return outputs;
}

function checkNoUndeclaredWrites(op: string, inputs: Tensor[], before: (Uint8Array | null)[]): void {
  inputs.forEach((t, i) => {
    const b = before[i];
    if (!b || t.isDisposed) return;
    const a = bytesOf(t);
    if (a.length !== b.length || a.some((x, j) => x !== b[j])) {
      throw new Error(`op '${op}': the '${t.backend.name}' kernel wrote into input ${i} (${t.describe()}), but the op does not declare it with registerInPlaceOp, so its write version would not change`);
    }
  });
}
