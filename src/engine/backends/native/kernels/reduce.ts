/** Native kernels for reductions (native/src/reduce.cc). */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import { reducedShape, reductionPlan, splitAt, type AxisAttrs, type MaxGradAttrs, type SumAttrs } from '../../../ops/reduce.js';
import { h } from '../backend.js';
import { addonOf } from './core.js';

declare module '../addon.js' {
  interface NativeAddon {
    /** Sums x through the stages (flattened [outer, reduce, inner] triples) into out, times scale. */
    reduceSum(x: object, out: object, xSize: number, stages: number[], scale: number): void;
    /** Max along the middle axis of [outer, reduce, inner]; vals may be null (argmax only). */
    maxAxis(x: object, vals: object | null, idx: object, outer: number, reduce: number, inner: number): void;
    /** Scatters dy [outer, inner] to dx [outer, reduce, inner] at idx. dx must be zero-filled. */
    maxAxisGrad(dy: object, idx: object, dx: object, outer: number, reduce: number, inner: number): void;
  }
}

const B = 'native';

registerKernel<SumAttrs>('sum', B, ([x], { axes, keepDims, scale }, be) => {
  const t = allocTensor(be, reducedShape(x.shape, axes, keepDims), x.dtype);
  const stages = reductionPlan(x.shape, axes).flatMap((s) => [s.outer, s.reduce, s.inner]);
  addonOf(be).reduceSum(h(x), h(t), x.size, stages, scale);
  return [t];
});

registerKernel<AxisAttrs>('max', B, ([x], { axis, keepDims }, be) => {
  const shape = reducedShape(x.shape, [axis], keepDims);
  const v = allocTensor(be, shape, x.dtype), i = allocTensor(be, shape, 'int32');
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  addonOf(be).maxAxis(h(x), h(v), h(i), outer, reduce, inner);
  return [v, i];
});

registerKernel<AxisAttrs>('argmax', B, ([x], { axis }, be) => {
  const i = allocTensor(be, reducedShape(x.shape, [axis], false), 'int32');
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  addonOf(be).maxAxis(h(x), null, h(i), outer, reduce, inner);
  return [i];
});

registerKernel<MaxGradAttrs>('maxGrad', B, ([dy, idx], { axis, shape }, be) => {
  const t = allocTensor(be, shape, dy.dtype);
  const { outer, reduce, inner } = splitAt(shape, axis);
  addonOf(be).maxAxisGrad(h(dy), h(idx), h(t), outer, reduce, inner);
  return [t];
});
