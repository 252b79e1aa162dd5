/** Runs an op: checks its inputs, dispatches to the registered kernel for their backend and
 * records a tape node when a gradient may be needed. */
import { getDefaultBackend } from './backend-registry.js';
import { getKernel } from './registry.js';
import type { Tensor } from './tensor.js';
import { isGradEnabled } from './autograd.js';
import type { Backend } from './backend.js';
import { profilingActive, recordOp } from './profiler.js';

export function runOp<A>(op: string, inputs: Tensor[], attrs: A, backend?: Backend): Tensor[] {
  let be = backend;
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    if (t.isDisposed) throw new Error(`op '${op}': input ${i} (${t.describe()}) was used after it was disposed`);
    if (!be) be = t.backend;
    else if (t.backend !== be) throw new Error(`op '${op}': inputs live on different backends ('${be.name}' and '${t.backend.name}' for input ${i})`);
  }
  be ??= getDefaultBackend();
  const kernel = getKernel<A>(op, be.name);
  let outputs: Tensor[];
  if (profilingActive()) {
    const t0 = performance.now();
    outputs = kernel(inputs, attrs, be);
    recordOp(op, performance.now() - t0);
  } else {
    outputs = kernel(inputs, attrs, be);
  }
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
