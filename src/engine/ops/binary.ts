/** Elementwise binary ops with NumPy broadcasting. */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { broadcastShapes } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { sumToShape } from './shape-ops.js';
import { neg, square, affine } from './unary.js';

declareNonDifferentiable(['equalMask'], 'comparison: a 0/1 mask, piecewise constant');

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum';
export const BINARY_OPS: readonly BinaryOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'];

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`op '${op}': dtypes differ (${a.describe()} vs ${b.describe()})`);
  if (a.dtype === 'int32') throw new Error(`op '${op}': int32 tensors are not supported (${a.describe()})`);
  broadcastShapes(a.shape, b.shape, op);
  return runOp(op, [a, b], {})[0];
}

export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor): Tensor => binary('maximum', a, b);
export const minimum = (a: Tensor, b: Tensor): Tensor => binary('minimum', a, b);

registerGradient('add', (dys, { inputs: [a, b] }) => [sumToShape(dys[0]!, a.shape), sumToShape(dys[0]!, b.shape)]);
registerGradient('sub', (dys, { inputs: [a, b] }) => [sumToShape(dys[0]!, a.shape), sumToShape(neg(dys[0]!), b.shape)]);
registerGradient('mul', (dys, { inputs: [a, b] }) => [sumToShape(mul(dys[0]!, b), a.shape), sumToShape(mul(dys[0]!, a), b.shape)]);
registerGradient('div', (dys, { inputs: [a, b] }) => {
  const dy = dys[0]!;
  const da = div(dy, b);
  // d(a/b)/db = -a / b^2
  const db = neg(div(mul(dy, a), square(b)));
  return [sumToShape(da, a.shape), sumToShape(db, b.shape)];
});

/** Gradient of max/min: the selected side gets dy; ties send it to the first input. */
function selectGrad(op: 'maximum' | 'minimum') {
  return (dys: (Tensor | null)[], { inputs: [a, b], outputs: [y] }: { inputs: readonly Tensor[]; outputs: readonly Tensor[] }) => {
    const dy = dys[0]!;
    const fromA = runOp('equalMask', [a, y], {})[0]; // 1 where a was selected
    const da = mul(dy, fromA);
    const db = mul(dy, affine(fromA, -1, 1));
    return [sumToShape(da, a.shape), sumToShape(db, b.shape)];
  };
}
registerGradient('maximum', selectGrad('maximum'));
registerGradient('minimum', selectGrad('minimum'));
