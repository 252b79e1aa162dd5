/**
 * Reductions: sum and mean over any set of axes, max (with its arg-max as an auxiliary output)
 * and argmax along one axis. Negative axes count from the end.
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import type { Shape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { broadcastTo, reshape } from './shape-ops.js';
import { mulScalar } from './unary.js';

declareNonDifferentiable(['argmax'], 'integer output (indices)');
declareNonDifferentiable(['maxGrad'], "backward kernel of 'max' (no double backward)");

/** `axes` normalised, unique and ascending; `scale` multiplies the sums (1/count for mean). */
export interface SumAttrs { axes: number[]; keepDims: boolean; scale: number }
/** One normalised axis. */
export interface AxisAttrs { axis: number; keepDims: boolean }
/** Gradient of max: scatter dy to the arg-max positions of an input of `shape`. */
export interface MaxGradAttrs { axis: number; shape: number[] }

/** One stage of a reduction: the input viewed as [outer, reduce, inner], reduced over the middle. */
export interface ReduceStage { outer: number; reduce: number; inner: number }

/** A normalised axis of `x`; throws naming the op and the shape when it is out of range. */
export function axisOf(x: Tensor, axis: number, op: string): number {
  const r = x.rank;
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= r) {
    throw new Error(`op '${op}': axis ${axis} is out of range for ${x.describe()} (rank ${r}; valid axes are ${r === 0 ? 'none' : `${-r}..${r - 1}`})`);
  }
  return a;
}

/** The dimensions of `shape` around `axis` as [outer, size, inner]. */
export function splitAt(shape: Shape, axis: number): ReduceStage {
  let outer = 1, inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return { outer, reduce: shape[axis], inner };
}

/** Output shape of reducing `axes` (normalised) of `shape`. */
export function reducedShape(shape: Shape, axes: readonly number[], keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

/**
 * Plans a multi-axis reduction as a sequence of single-group reductions: runs of adjacent
 * reduced axes are merged and reduced from the innermost run outwards, so every stage is a
 * plain [outer, reduce, inner] reduction of the previous stage's result.
 */
export function reductionPlan(shape: Shape, axes: readonly number[]): ReduceStage[] {
  // Merge adjacent dimensions of the same kind: groups of (size, reduced).
  const groups: { size: number; reduced: boolean }[] = [];
  shape.forEach((d, i) => {
    const reduced = axes.includes(i);
    const last = groups[groups.length - 1];
    if (last && last.reduced === reduced) last.size *= d;
    else groups.push({ size: d, reduced });
  });
  const stages: ReduceStage[] = [];
  for (let g = groups.length - 1; g >= 0; g--) {
    if (!groups[g].reduced) continue;
    let outer = 1, inner = 1;
    for (let k = 0; k < g; k++) outer *= groups[k].size;
    for (let k = g + 1; k < groups.length; k++) if (!groups[k].reduced) inner *= groups[k].size;
    stages.push({ outer, reduce: groups[g].size, inner });
  }
  return stages;
}

/** The visible output; auxiliary outputs are freed at once when no tape node needs them. */
export function visibleOutput(outs: Tensor[]): Tensor {
  const y = outs[0];
  if (!y.node) for (let i = 1; i < outs.length; i++) outs[i].dispose();
  return y;
}

function normalizeAxes(x: Tensor, axes: number | number[] | undefined, op: string): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  if (!Array.isArray(list)) throw new Error(`op '${op}': axes must be a number or an array of numbers, got ${String(axes)}`);
  const out = list.map((a) => axisOf(x, a, op));
  const seen = new Set<number>();
  for (let i = 0; i < out.length; i++) {
    if (seen.has(out[i])) throw new Error(`op '${op}': axis ${list[i]} is repeated in [${list.join(', ')}] for ${x.describe()}`);
    seen.add(out[i]);
  }
  return out.sort((a, b) => a - b);
}

function checkFloat(x: Tensor, op: string): void {
  if (x.dtype === 'int32') throw new Error(`op '${op}': expected a float tensor, got ${x.describe()}`);
}

function reduceSum(op: 'sum' | 'mean', x: Tensor, axes: number | number[] | undefined, keepDims: boolean): Tensor {
  checkFloat(x, op);
  const list = normalizeAxes(x, axes, op);
  let count = 1;
  for (const a of list) count *= x.shape[a];
  const scale = op === 'mean' ? 1 / count : 1;
  return runOp<SumAttrs>('sum', [x], { axes: list, keepDims, scale })[0];
}

/** Sum over `axes` (all axes when omitted: a scalar of shape []; an empty list reduces nothing,
 * as in NumPy). Accumulates in float64 on both backends. */
export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return reduceSum('sum', x, axes, keepDims);
}

/** Mean over `axes` (all axes when omitted). The mean over zero elements is NaN. */
export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return reduceSum('mean', x, axes, keepDims);
}

registerGradient<SumAttrs>('sum', (dys, { inputs: [x], attrs }) => {
  const kept = reshape(dys[0]!, reducedShape(x.shape, attrs.axes, true));
  const b = broadcastTo(kept, x.shape);
  return [attrs.scale === 1 ? b : mulScalar(b, attrs.scale)];
});

/** Largest value along `axis`. Its gradient goes to the first position holding the maximum;
 * NaN counts as the largest value (the first NaN is selected). */
export function max(x: Tensor, axis: number, keepDims = false): Tensor {
  checkFloat(x, 'max');
  const a = axisOf(x, axis, 'max');
  if (x.shape[a] === 0) throw new Error(`op 'max': axis ${axis} of ${x.describe()} is empty`);
  return visibleOutput(runOp<AxisAttrs>('max', [x], { axis: a, keepDims }));
}

registerGradient<AxisAttrs>('max', (dys, { inputs: [x], outputs: [, idx], attrs }) => {
  if (!dys[0]) return [null];
  return [runOp<MaxGradAttrs>('maxGrad', [dys[0], idx], { axis: attrs.axis, shape: [...x.shape] })[0]];
});

/** Index (int32) of the first largest value along `axis`; the axis is removed. No gradient. */
export function argmax(x: Tensor, axis: number): Tensor {
  checkFloat(x, 'argmax');
  const a = axisOf(x, axis, 'argmax');
  if (x.shape[a] === 0) throw new Error(`op 'argmax': axis ${axis} of ${x.describe()} is empty`);
  return runOp<AxisAttrs>('argmax', [x], { axis: a, keepDims: false })[0];
}

