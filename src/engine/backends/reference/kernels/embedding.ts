/** Reference kernels of the embedding family: gather and its scatter-add gradient. */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import type { EmbeddingGradAttrs } from '../../../ops/embedding.js';
import { floats, ints } from '../backend.js';

const B = 'reference';

function multiIndex(shape: readonly number[], flat: number): string {
  const idx = new Array<number>(shape.length);
  let rem = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = rem % shape[d];
    rem = Math.floor(rem / shape[d]);
  }
  return `[${idx.join(', ')}]`;
}

/** Throws for the first id outside [0, V). */
function checkIds(op: string, I: Int32Array, shape: readonly number[], V: number): void {
  for (let n = 0; n < I.length; n++) {
    const id = I[n];
    if (id < 0 || id >= V) {
      throw new Error(`op '${op}': id ${id} at position ${n} (index ${multiIndex(shape, n)} of ids [${shape.join(', ')}]) is out of range [0, ${V}) for a weight with ${V} rows`);
    }
  }
}

registerKernel('embedding', B, ([weight, ids], _a, be) => {
  const op = 'embedding';
  const [V, D] = weight.shape;
  const W = floats(weight, op), I = ints(ids, op);
  checkIds(op, I, ids.shape, V);
  const y = allocTensor(be, [...ids.shape, D], weight.dtype);
  const Y = floats(y, op);
  for (let n = 0; n < I.length; n++) Y.set(W.subarray(I[n] * D, I[n] * D + D), n * D);
  return [y];
});

registerKernel<EmbeddingGradAttrs>('embeddingGrad', B, ([ids, dy], { vocab }, be) => {
  const op = 'embeddingGrad';
  const D = dy.shape[dy.rank - 1];
  const I = ints(ids, op), G = floats(dy, op);
  checkIds(op, I, ids.shape, vocab);
  const dw = allocTensor(be, [vocab, D], dy.dtype);
  const DW = floats(dw, op);
  // Position order: the same summation order as the native kernel.
  for (let n = 0; n < I.length; n++) {
    const o = I[n] * D, g = n * D;
    for (let j = 0; j < D; j++) DW[o + j] += G[g + j];
  }
  return [dw];
});
