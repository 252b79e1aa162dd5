/** Native kernels for creation, elementwise, broadcasting and matmul ops. */
import type { Backend } from '../../../backend.js';
import { registerKernel } from '../../../registry.js';
import { allocOutput, allocTensor } from '../../../tensor.js';
import { broadcastShapes, broadcastStrides } from '../../../shape.js';
import type { FillAttrs, CastAttrs } from '../../../ops/creation.js';
import type { ReshapeAttrs, SumToShapeAttrs } from '../../../ops/shape-ops.js';
import { UNARY_CODES, type UnaryAttrs, type UnaryGradAttrs } from '../../../ops/unary.js';
import { matmulShape, type MatmulAttrs } from '../../../ops/matmul.js';
import { linearGroupLayers, type LinearGroupAttrs } from '../../../ops/linear-group.js';
import type { NativeAddon } from '../addon.js';
import { h, type NativeBackend } from '../backend.js';

const B = 'native';
export const addonOf = (be: Backend): NativeAddon => (be as NativeBackend).addon;

registerKernel<FillAttrs>('fill', B, (_in, { shape, dtype, value }, be) => {
  const t = allocTensor(be, shape, dtype);
  if (value !== 0) {
    if (dtype === 'int32') addonOf(be).fillInt(h(t), value, t.size);
    else addonOf(be).fill(h(t), value, t.size);
  }
  return [t];
});

registerKernel('copy', B, ([x], _a, be) => {
  const t = allocOutput(be, x.shape, x.dtype);
  addonOf(be).copy(h(x), h(t), 0, 0, x.bytes);
  return [t];
});

registerKernel<CastAttrs>('cast', B, ([x], { dtype }, be) => {
  const t = allocTensor(be, x.shape, dtype);
  if (x.dtype === 'float32' && dtype === 'int32') addonOf(be).castF32ToI32(h(x), h(t), x.size);
  else if (x.dtype === 'int32' && dtype === 'float32') addonOf(be).castI32ToF32(h(x), h(t), x.size);
  else throw new Error(`op 'cast': ${x.dtype} → ${dtype} is not supported on the native backend`);
  return [t];
});

registerKernel<ReshapeAttrs>('reshape', B, ([x], { shape }) => [x.viewAs(shape)]);

const BINARY_CODES: Record<string, number> = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, equalMask: 6 };
for (const [op, code] of Object.entries(BINARY_CODES)) {
  registerKernel(op, B, ([a, b], _attrs, be) => {
    if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error(`op '${op}': native backend computes float32, got ${a.describe()} and ${b.describe()}`);
    const shape = broadcastShapes(a.shape, b.shape, op);
    const t = allocOutput(be, shape, 'float32');
    addonOf(be).binary(code, h(a), h(b), h(t), shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    return [t];
  });
}

registerKernel<SumToShapeAttrs>('sumToShape', B, ([x], { shape }, be) => {
  const t = allocOutput(be, shape, x.dtype);
  addonOf(be).sumToShape(h(x), h(t), [...x.shape], broadcastStrides(shape, x.shape), t.size);
  return [t];
});

registerKernel<SumToShapeAttrs>('broadcastTo', B, ([x], { shape }, be) => {
  const t = allocTensor(be, shape, x.dtype);
  addonOf(be).broadcastTo(h(x), h(t), [...shape], broadcastStrides(x.shape, shape));
  return [t];
});

registerKernel<UnaryAttrs>('unary', B, ([x], { op, p1, p2 }, be) => {
  const t = allocOutput(be, x.shape, x.dtype);
  addonOf(be).unary(UNARY_CODES[op], h(x), h(t), x.size, p1, p2);
  return [t];
});

registerKernel<UnaryGradAttrs & { fromOutput: boolean }>('unaryGrad', B, ([v, dy], { op, p1, fromOutput }, be) => {
  const t = allocOutput(be, v.shape, v.dtype);
  addonOf(be).unaryGrad(UNARY_CODES[op], fromOutput ? null : h(v), fromOutput ? h(v) : null, h(dy), h(t), v.size, p1);
  return [t];
});

registerKernel('swiglu', B, ([g, u], _a, be) => {
  const t = allocOutput(be, g.shape, g.dtype);
  addonOf(be).swiglu(h(g), h(u), h(t), g.size);
  return [t];
});

registerKernel('swigluGrad', B, ([g, u, dy], _a, be) => {
  const dg = allocOutput(be, g.shape, g.dtype), du = allocOutput(be, g.shape, g.dtype);
  addonOf(be).swigluGrad(h(g), h(u), h(dy), h(dg), h(du), g.size);
  return [dg, du];
});

registerKernel<MatmulAttrs>('matmul', B, ([a, b], attrs, be) => {
  const { M, N, K, batch, sharedB, outShape } = matmulShape(a.shape, b.shape, attrs);
  const t = allocOutput(be, outShape, a.dtype);
  addonOf(be).matmul(h(a), h(b), h(t), M, N, K, attrs.transA, attrs.transB, batch, M * K, sharedB ? 0 : K * N, M * N, 1, 0);
  return [t];
});

registerKernel('linear', B, ([x, w, bias], _a, be) => {
  const [outF, inF] = w.shape;
  const rows = x.size / inF;
  const t = allocOutput(be, [...x.shape.slice(0, -1), outF], x.dtype);
  const ad = addonOf(be);
  ad.matmul(h(x), h(w), h(t), rows, outF, inF, false, true, 1, 0, 0, 0, 1, 0);
  if (bias) ad.addRowVector(h(t), h(bias), rows, outF);
  return [t];
});

registerKernel<LinearGroupAttrs>('linearGroup', B, (inputs, attrs, be) => {
  const x = inputs[0];
  const inF = x.shape[x.rank - 1], rows = x.size / inF;
  const ad = addonOf(be);
  return linearGroupLayers(inputs, attrs).map(({ weight, bias }) => {
    const outF = weight.shape[0];
    const t = allocOutput(be, [...x.shape.slice(0, -1), outF], x.dtype);
    ad.matmul(h(x), h(weight), h(t), rows, outF, inF, false, true, 1, 0, 0, 0, 1, 0);
    if (bias) ad.addRowVector(h(t), h(bias), rows, outF);
    return t;
  });
});

// dX = Σ dy_i · W_i: the first GEMM writes, the others accumulate (beta = 1), in layer order.
registerKernel('linearGroupGradInput', B, (pairs, _a, be) => {
  const inF = pairs[1].shape[1], rows = pairs[0].shape[0];
  const t = allocOutput(be, [rows, inF], pairs[0].dtype);
  const ad = addonOf(be);
  for (let i = 0; i < pairs.length; i += 2) {
    ad.matmul(h(pairs[i]), h(pairs[i + 1]), h(t), rows, inF, pairs[i + 1].shape[0], false, false, 1, 0, 0, 0, 1, i === 0 ? 0 : 1);
  }
  return [t];
});
