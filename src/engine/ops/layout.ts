/**
 * Layout ops, all copies: transpose (any permutation), concat, narrow (a slice along one axis),
 * split, indexSelect (gather along an axis) and where (select by a mask). They work for every
 * dtype; gradients flow to float inputs.
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { broadcastShapes, formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { zeros } from './creation.js';
import { sumToShape } from './shape-ops.js';
import { axisOf } from './reduce.js';

declareNonDifferentiable(['indexSelectGrad', 'narrowGrad'], "backward kernels of 'indexSelect' / 'narrow' (no double backward)");

export interface TransposeAttrs { perm: number[] }
export interface ConcatAttrs { axis: number }
export interface NarrowAttrs { axis: number; start: number; length: number }
/** Gradient of narrow: dy placed at [start, start + length) of a zero tensor of `shape`. */
export interface NarrowGradAttrs { axis: number; start: number; shape: number[] }
export interface IndexSelectAttrs { axis: number }
export interface IndexSelectGradAttrs { axis: number; shape: number[] }

/** Shape of `x` with `perm` applied: out[i] = shape[perm[i]]. */
export function permutedShape(shape: readonly number[], perm: readonly number[]): number[] {
  return perm.map((p) => shape[p]);
}

/**
 * A permuting copy: output dimension i is input dimension perm[i]. Without `perm`, swaps the
 * last two dimensions (a matrix transpose for 2-D tensors).
 */
export function transpose(x: Tensor, perm?: number[]): Tensor {
  const r = x.rank;
  let p: number[];
  if (perm === undefined) {
    if (r < 2) throw new Error(`op 'transpose': without a permutation the tensor needs at least 2 dimensions, got ${x.describe()}`);
    p = x.shape.map((_, i) => i);
    p[r - 2] = r - 1;
    p[r - 1] = r - 2;
  } else {
    if (!Array.isArray(perm) || perm.length !== r) throw new Error(`op 'transpose': permutation [${perm}] must list each of the ${r} axes of ${x.describe()} once`);
    p = perm.map((a) => (Number.isInteger(a) && a < 0 ? a + r : a));
    const seen = new Set<number>();
    p.forEach((a, i) => {
      if (!Number.isInteger(a) || a < 0 || a >= r) throw new Error(`op 'transpose': permutation entry ${perm[i]} is out of range for ${x.describe()} (rank ${r})`);
      if (seen.has(a)) throw new Error(`op 'transpose': permutation [${perm.join(', ')}] repeats axis ${perm[i]} (${x.describe()})`);
      seen.add(a);
    });
  }
  return runOp<TransposeAttrs>('transpose', [x], { perm: p })[0];
}

registerGradient<TransposeAttrs>('transpose', (dys, { attrs: { perm } }) => {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => { inv[p] = i; });
  return [runOp<TransposeAttrs>('transpose', [dys[0]!], { perm: inv })[0]];
});

/** Joins tensors along `axis`; all other dimensions must match. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error(`op 'concat': expected a non-empty array of tensors`);
  const first = xs[0];
  const a = axisOf(first, axis, 'concat');
  xs.forEach((t, k) => {
    if (t.dtype !== first.dtype) throw new Error(`op 'concat': tensor ${k} (${t.describe()}) has dtype ${t.dtype}, tensor 0 has ${first.dtype}`);
    const ok = t.rank === first.rank && t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!ok) throw new Error(`op 'concat': tensor ${k} has shape ${formatShape(t.shape)}, which differs from tensor 0's ${formatShape(first.shape)} outside axis ${axis}`);
  });
  return runOp<ConcatAttrs>('concat', xs, { axis: a })[0];
}

registerGradient<ConcatAttrs>('concat', (dys, { inputs, attrs: { axis } }) => {
  let start = 0;
  return inputs.map((x) => {
    const length = x.shape[axis];
    const g = x.requiresGrad ? runOp<NarrowAttrs>('narrow', [dys[0]!], { axis, start, length })[0] : null;
    start += length;
    return g;
  });
});

/** Elements [start, start + length) along `axis` (a copy). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = axisOf(x, axis, 'narrow');
  const d = x.shape[a];
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > d) {
    throw new Error(`op 'narrow': range [${start}, ${start + length}) (start ${start}, length ${length}) is outside [0, ${d}] along axis ${axis} of ${x.describe()}`);
  }
  return runOp<NarrowAttrs>('narrow', [x], { axis: a, start, length })[0];
}

registerGradient<NarrowAttrs>('narrow', (dys, { inputs: [x], attrs: { axis, start } }) =>
  [runOp<NarrowGradAttrs>('narrowGrad', [dys[0]!], { axis, start, shape: [...x.shape] })[0]]);

/** Splits `x` along `axis` into consecutive pieces of the given sizes (which must add up). */
export function split(x: Tensor, axis: number, sizes: number[]): Tensor[] {
  const a = axisOf(x, axis, 'split');
  if (!Array.isArray(sizes) || sizes.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`op 'split': sizes [${sizes}] must be non-negative integers`);
  const total = sizes.reduce((p, s) => p + s, 0);
  if (total !== x.shape[a]) throw new Error(`op 'split': sizes [${sizes.join(', ')}] add up to ${total}, but axis ${axis} of ${x.describe()} has ${x.shape[a]}`);
  let start = 0;
  return sizes.map((s) => {
    const t = narrow(x, a, start, s);
    start += s;
    return t;
  });
}

/**
 * Gathers slices of `x` along `axis` at the int32 positions `ids` ([n]): the result has n in
 * place of that dimension. Repeated ids are allowed; the gradient adds up their contributions.
 * Ids outside [0, size) throw (checked by the kernels).
 */
export function indexSelect(x: Tensor, axis: number, ids: Tensor): Tensor {
  const a = axisOf(x, axis, 'indexSelect');
  if (ids.dtype !== 'int32' || ids.rank !== 1) throw new Error(`op 'indexSelect': ids must be a 1-D int32 tensor, got ${ids.describe()}`);
  return runOp<IndexSelectAttrs>('indexSelect', [x, ids], { axis: a })[0];
}

registerGradient<IndexSelectAttrs>('indexSelect', (dys, { inputs: [x, ids], attrs: { axis } }) =>
  [runOp<IndexSelectGradAttrs>('indexSelectGrad', [dys[0]!, ids], { axis, shape: [...x.shape] })[0], null]);

/**
 * Elementwise choice: a where `mask` is nonzero, b elsewhere. The three shapes broadcast
 * together. `mask` may be int32 or float; a and b share a dtype.
 */
export function where(mask: Tensor, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`op 'where': a (${a.describe()}) and b (${b.describe()}) must have the same dtype`);
  broadcastShapes(broadcastShapes(a.shape, b.shape, `op 'where'`), mask.shape, `op 'where' (mask)`);
  return runOp('where', [mask, a, b], {})[0];
}

registerGradient('where', (dys, { inputs: [mask, a, b] }) => {
  const dy = dys[0]!;
  const zero = zeros([], { dtype: dy.dtype, backend: dy.backend });
  const da = a.requiresGrad ? sumToShape(runOp('where', [mask, dy, zero], {})[0], a.shape) : null;
  const db = b.requiresGrad ? sumToShape(runOp('where', [mask, zero, dy], {})[0], b.shape) : null;
  return [null, da, db];
});

