/** Reference kernels for reductions (sum/mean over axes, max with arg-max, argmax). */
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import type { Backend } from '../../../backend.js';
import { reducedShape, reductionPlan, splitAt, type AxisAttrs, type MaxGradAttrs, type SumAttrs } from '../../../ops/reduce.js';
import { floats, ints } from '../backend.js';

const B = 'reference';

registerKernel<SumAttrs>('sum', B, ([x], { axes, keepDims, scale }, be) => {
  const t = allocTensor(be, reducedShape(x.shape, axes, keepDims), x.dtype);
  const Y = floats(t, 'sum');
  // Every stage accumulates in float64; the result is rounded once at the end.
  let cur: ArrayLike<number> = floats(x, 'sum');
  for (const { outer, reduce, inner } of reductionPlan(x.shape, axes)) {
    const next = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < reduce; r++) {
        const base = (o * reduce + r) * inner;
        for (let j = 0; j < inner; j++) next[o * inner + j] += cur[base + j];
      }
    }
    cur = next;
  }
  for (let i = 0; i < Y.length; i++) Y[i] = cur[i] * scale;
  return [t];
});

/** NaN counts as the largest value; ties keep the first position. */
function maxAlong(x: Tensor, axis: number, op: string): { vals: Float64Array; idx: Int32Array } {
  const X = floats(x, op);
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  const vals = new Float64Array(outer * inner), idx = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let best = X[o * reduce * inner + j], at = 0;
      for (let r = 1; r < reduce && !Number.isNaN(best); r++) {
        const v = X[(o * reduce + r) * inner + j];
        if (v > best || Number.isNaN(v)) { best = v; at = r; }
      }
      vals[o * inner + j] = best;
      idx[o * inner + j] = at;
    }
  }
  return { vals, idx };
}

registerKernel<AxisAttrs>('max', B, ([x], { axis, keepDims }, be: Backend) => {
  const shape = reducedShape(x.shape, [axis], keepDims);
  const v = allocTensor(be, shape, x.dtype), i = allocTensor(be, shape, 'int32');
  const r = maxAlong(x, axis, 'max');
  floats(v, 'max').set(r.vals);
  ints(i, 'max').set(r.idx);
  return [v, i];
});

registerKernel<AxisAttrs>('argmax', B, ([x], { axis }, be) => {
  const i = allocTensor(be, reducedShape(x.shape, [axis], false), 'int32');
  ints(i, 'argmax').set(maxAlong(x, axis, 'argmax').idx);
  return [i];
});

registerKernel<MaxGradAttrs>('maxGrad', B, ([dy, idx], { axis, shape }, be) => {
  const t = allocTensor(be, shape, dy.dtype);
  const D = floats(dy, 'maxGrad'), I = ints(idx, 'maxGrad'), O = floats(t, 'maxGrad');
  const { outer, reduce, inner } = splitAt(shape, axis);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) O[(o * reduce + I[o * inner + j]) * inner + j] = D[o * inner + j];
  }
  return [t];
});
