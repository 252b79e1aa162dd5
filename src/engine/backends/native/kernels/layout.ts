/** Native kernels for layout ops (native/src/layout.cc). */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import { broadcastShapes, broadcastStrides } from '../../../shape.js';
import { splitAt } from '../../../ops/reduce.js';
import {
  permutedShape, type ConcatAttrs, type IndexSelectAttrs, type IndexSelectGradAttrs, type NarrowAttrs, type NarrowGradAttrs,
  type TransposeAttrs,
} from '../../../ops/layout.js';
import { h } from '../backend.js';
import { addonOf } from './core.js';

declare module '../addon.js' {
  interface NativeAddon {
    /** Permuting copy of 4-byte elements: output dim i is input dim perm[i]. */
    permute(x: object, out: object, shape: number[], perm: number[]): void;
    /** dst[dstOff + r * dstStride + j] = src[srcOff + r * srcStride + j] for r < rows, j < rowLen (elements). */
    copyRows(src: object, dst: object, rows: number, rowLen: number, srcStride: number, srcOff: number, dstStride: number, dstOff: number): void;
    /** out[o, i, :] = x[o, ids[i], :]; throws naming the first id out of [0, size). */
    indexSelect(x: object, ids: object, out: object, outer: number, size: number, inner: number, n: number): void;
    /** dx (zero-filled) [o, ids[i], :] += dy[o, i, :], deterministic. */
    indexSelectGrad(dy: object, ids: object, dx: object, outer: number, size: number, inner: number, n: number): void;
    /** out = mask != 0 ? a : b with broadcast strides. */
    where(mask: object, a: object, b: object, out: object, shape: number[], stridesMask: number[], stridesA: number[], stridesB: number[], maskIsFloat: boolean): void;
  }
}

const B = 'native';

registerKernel<TransposeAttrs>('transpose', B, ([x], { perm }, be) => {
  const t = allocTensor(be, permutedShape(x.shape, perm), x.dtype);
  addonOf(be).permute(h(x), h(t), [...x.shape], perm);
  return [t];
});

registerKernel<ConcatAttrs>('concat', B, (xs, { axis }, be) => {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((p, x) => p + x.shape[axis], 0);
  const t = allocTensor(be, shape, xs[0].dtype);
  const { outer, inner } = splitAt(shape, axis);
  const outRow = shape[axis] * inner;
  let at = 0;
  const ad = addonOf(be);
  for (const x of xs) {
    const row = x.shape[axis] * inner;
    ad.copyRows(h(x), h(t), outer, row, row, 0, outRow, at);
    at += row;
  }
  return [t];
});

registerKernel<NarrowAttrs>('narrow', B, ([x], { axis, start, length }, be) => {
  const shape = [...x.shape];
  shape[axis] = length;
  const t = allocTensor(be, shape, x.dtype);
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  addonOf(be).copyRows(h(x), h(t), outer, length * inner, reduce * inner, start * inner, length * inner, 0);
  return [t];
});

registerKernel<NarrowGradAttrs>('narrowGrad', B, ([dy], { axis, start, shape }, be) => {
  const t = allocTensor(be, shape, dy.dtype);
  const { outer, reduce, inner } = splitAt(shape, axis);
  const row = dy.shape[axis] * inner;
  addonOf(be).copyRows(h(dy), h(t), outer, row, row, 0, reduce * inner, start * inner);
  return [t];
});

registerKernel<IndexSelectAttrs>('indexSelect', B, ([x, ids], { axis }, be) => {
  const shape = [...x.shape];
  shape[axis] = ids.size;
  const t = allocTensor(be, shape, x.dtype);
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  addonOf(be).indexSelect(h(x), h(ids), h(t), outer, reduce, inner, ids.size);
  return [t];
});

registerKernel<IndexSelectGradAttrs>('indexSelectGrad', B, ([dy, ids], { axis, shape }, be) => {
  const t = allocTensor(be, shape, dy.dtype);
  const { outer, reduce, inner } = splitAt(shape, axis);
  addonOf(be).indexSelectGrad(h(dy), h(ids), h(t), outer, reduce, inner, ids.size);
  return [t];
});

registerKernel('where', B, ([mask, a, b], _attrs, be) => {
  const shape = broadcastShapes(broadcastShapes(a.shape, b.shape, `op 'where'`), mask.shape, `op 'where' (mask)`);
  const t = allocTensor(be, shape, a.dtype);
  addonOf(be).where(h(mask), h(a), h(b), h(t), shape, broadcastStrides(mask.shape, shape), broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape), mask.dtype !== 'int32');
  return [t];
});
