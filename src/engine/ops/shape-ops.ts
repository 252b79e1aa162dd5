/** Reshaping (a view sharing storage) and reducing a broadcast gradient back to a shape. */
import { registerGradient } from '../registry.js';
import { runOp } from '../run-op.js';
import { broadcastShapes, formatShape, sameShape, sizeOf, type Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';

export interface ReshapeAttrs { shape: number[] }

/** Same elements, new shape; one dimension may be -1 (inferred). No copy is made. */
export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  const out = [...shape];
  const infer = out.indexOf(-1);
  if (infer >= 0) {
    if (out.lastIndexOf(-1) !== infer) throw new Error(`reshape: more than one -1 in ${formatShape(shape)}`);
    const known = out.reduce((a, d, i) => (i === infer ? a : a * d), 1);
    if (known === 0 || t.size % known !== 0) throw new Error(`reshape: cannot infer -1 in ${formatShape(shape)} for ${t.size} elements (from ${formatShape(t.shape)})`);
    out[infer] = t.size / known;
  }
  if (sizeOf(out) !== t.size) throw new Error(`reshape: ${formatShape(t.shape)} has ${t.size} elements, ${formatShape(out)} needs ${sizeOf(out)}`);
  return runOp<ReshapeAttrs>('reshape', [t], { shape: out })[0];
}
registerGradient<ReshapeAttrs>('reshape', (dys, { inputs }) => [reshape(dys[0]!, inputs[0].shape)]);

export function flatten(t: Tensor): Tensor {
  return reshape(t, [t.size]);
}

export interface SumToShapeAttrs { shape: number[] }

/** Sums `t` down to `shape`, which must broadcast to t's shape (the gradient of broadcasting). */
export function sumToShape(t: Tensor, shape: Shape): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const b = broadcastShapes(t.shape, shape, 'sumToShape');
  if (!sameShape(b, t.shape)) throw new Error(`sumToShape: ${formatShape(shape)} does not broadcast to ${formatShape(t.shape)}`);
  return runOp<SumToShapeAttrs>('sumToShape', [t], { shape: [...shape] })[0];
}
registerGradient<SumToShapeAttrs>('sumToShape', (dys, { inputs }) => [runOp('broadcastTo', [dys[0]!], { shape: [...inputs[0].shape] })[0]]);

/** Repeats `t` along broadcast dimensions to `shape` (a copy). */
export function broadcastTo(t: Tensor, shape: Shape): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const b = broadcastShapes(t.shape, shape, 'broadcastTo');
  if (!sameShape(b, shape)) throw new Error(`broadcastTo: ${formatShape(t.shape)} cannot be broadcast to ${formatShape(shape)}`);
  return runOp<SumToShapeAttrs>('broadcastTo', [t], { shape: [...shape] })[0];
}
registerGradient('broadcastTo', (dys, { inputs }) => [sumToShape(dys[0]!, inputs[0].shape)]);
