/** Reference kernels for layout ops (transpose, concat, narrow, indexSelect, where). */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import { broadcastShapes, broadcastStrides, formatShape, sizeOf, stridesOf } from '../../../shape.js';
import { splitAt } from '../../../ops/reduce.js';
import {
  permutedShape, type ConcatAttrs, type IndexSelectAttrs, type IndexSelectGradAttrs, type NarrowAttrs, type NarrowGradAttrs,
  type TransposeAttrs,
} from '../../../ops/layout.js';
import { data, floats, ints } from '../backend.js';

const B = 'reference';

registerKernel<TransposeAttrs>('transpose', B, ([x], { perm }, be) => {
  const outShape = permutedShape(x.shape, perm);
  const t = allocTensor(be, outShape, x.dtype);
  const X = data(x), Y = data(t);
  const inStrides = stridesOf(x.shape);
  const s = perm.map((p) => inStrides[p]); // input stride of each output dimension
  const nd = outShape.length, n = Y.length;
  const idx = new Array<number>(nd).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    Y[i] = X[off];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      off += s[d];
      if (idx[d] < outShape[d]) break;
      off -= s[d] * outShape[d];
      idx[d] = 0;
    }
  }
  return [t];
});

registerKernel<ConcatAttrs>('concat', B, (xs, { axis }, be) => {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((p, x) => p + x.shape[axis], 0);
  const t = allocTensor(be, shape, xs[0].dtype);
  const Y = data(t);
  const { outer, inner } = splitAt(shape, axis);
  const outRow = shape[axis] * inner;
  let at = 0;
  for (const x of xs) {
    const X = data(x), row = x.shape[axis] * inner;
    for (let o = 0; o < outer; o++) Y.set(X.subarray(o * row, (o + 1) * row), o * outRow + at);
    at += row;
  }
  return [t];
});

registerKernel<NarrowAttrs>('narrow', B, ([x], { axis, start, length }, be) => {
  const shape = [...x.shape];
  shape[axis] = length;
  const t = allocTensor(be, shape, x.dtype);
  const X = data(x), Y = data(t);
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  const row = length * inner;
  for (let o = 0; o < outer; o++) {
    const from = (o * reduce + start) * inner;
    Y.set(X.subarray(from, from + row), o * row);
  }
  return [t];
});

registerKernel<NarrowGradAttrs>('narrowGrad', B, ([dy], { axis, start, shape }, be) => {
  const t = allocTensor(be, shape, dy.dtype);
  const D = data(dy), Y = data(t);
  const { outer, reduce, inner } = splitAt(shape, axis);
  const row = dy.shape[axis] * inner;
  for (let o = 0; o < outer; o++) Y.set(D.subarray(o * row, (o + 1) * row), (o * reduce + start) * inner);
  return [t];
});

function checkIds(I: Int32Array, size: number, op: string, what: string): void {
  for (let i = 0; i < I.length; i++) {
    if (I[i] < 0 || I[i] >= size) throw new Error(`op '${op}': ids[${i}] = ${I[i]} is out of range [0, ${size}) for ${what}`);
  }
}

registerKernel<IndexSelectAttrs>('indexSelect', B, ([x, ids], { axis }, be) => {
  const I = ints(ids, 'indexSelect');
  checkIds(I, x.shape[axis], 'indexSelect', `axis ${axis} of ${x.describe()}`);
  const shape = [...x.shape];
  shape[axis] = I.length;
  const t = allocTensor(be, shape, x.dtype);
  const X = data(x), Y = data(t);
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  const n = I.length;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      const from = (o * reduce + I[i]) * inner;
      Y.set(X.subarray(from, from + inner), (o * n + i) * inner);
    }
  }
  return [t];
});

registerKernel<IndexSelectGradAttrs>('indexSelectGrad', B, ([dy, ids], { axis, shape }, be) => {
  const I = ints(ids, 'indexSelectGrad');
  checkIds(I, shape[axis], 'indexSelectGrad', `axis ${axis} of ${formatShape(shape)}`);
  const t = allocTensor(be, shape, dy.dtype);
  const D = floats(dy, 'indexSelectGrad'), Y = floats(t, 'indexSelectGrad');
  const { outer, reduce, inner } = splitAt(shape, axis);
  const n = I.length;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      const to = (o * reduce + I[i]) * inner, from = (o * n + i) * inner;
      for (let j = 0; j < inner; j++) Y[to + j] += D[from + j];
    }
  }
  return [t];
});

registerKernel('where', B, ([mask, a, b], _attrs, be) => {
  const shape = broadcastShapes(broadcastShapes(a.shape, b.shape, `op 'where'`), mask.shape, `op 'where' (mask)`);
  const t = allocTensor(be, shape, a.dtype);
  const M = data(mask), A = data(a), Bv = data(b), Y = data(t);
  const strides = [broadcastStrides(mask.shape, shape), broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)];
  const nd = shape.length, n = sizeOf(shape);
  const idx = new Array<number>(nd).fill(0);
  const offs = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    Y[i] = M[offs[0]] !== 0 ? A[offs[1]] : Bv[offs[2]];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < 3; k++) offs[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < 3; k++) offs[k] -= strides[k][d] * shape[d];
      idx[d] = 0;
    }
  }
  return [t];
});
