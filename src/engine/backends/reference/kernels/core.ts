/** Reference kernels for creation, elementwise, broadcasting and matmul ops. */
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import { broadcastShapes, broadcastStrides, sizeOf } from '../../../shape.js';
import type { FillAttrs, CastAttrs } from '../../../ops/creation.js';
import type { ReshapeAttrs, SumToShapeAttrs } from '../../../ops/shape-ops.js';
import type { UnaryAttrs, UnaryGradAttrs, UnaryOp } from '../../../ops/unary.js';
import { matmulShape, type MatmulAttrs } from '../../../ops/matmul.js';
import { linearGroupLayers, type LinearGroupAttrs } from '../../../ops/linear-group.js';
import { data, floats } from '../backend.js';

const B = 'reference';

registerKernel<FillAttrs>('fill', B, (_in, { shape, dtype, value }, be) => {
  const t = allocTensor(be, shape, dtype);
  data(t).fill(value);
  return [t];
});

registerKernel('copy', B, ([x], _a, be) => {
  const t = allocTensor(be, x.shape, x.dtype);
  data(t).set(data(x));
  return [t];
});

registerKernel<CastAttrs>('cast', B, ([x], { dtype }, be) => {
  const t = allocTensor(be, x.shape, dtype);
  const src = data(x), dst = data(t);
  for (let i = 0; i < src.length; i++) dst[i] = dtype === 'int32' ? Math.trunc(src[i]) : src[i];
  return [t];
});

registerKernel<ReshapeAttrs>('reshape', B, ([x], { shape }) => [x.viewAs(shape)]);

/** Visits every index of `shape`, giving the flat output index and the offsets into operands. */
function forEachBroadcast(shape: readonly number[], strides: number[][], fn: (i: number, offs: number[]) => void): void {
  const n = sizeOf(shape), nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const offs = strides.map(() => 0);
  for (let i = 0; i < n; i++) {
    fn(i, offs);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < strides.length; k++) offs[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < strides.length; k++) offs[k] -= strides[k][d] * shape[d];
      idx[d] = 0;
    }
  }
}

const BINARY: Record<string, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  maximum: (x, y) => (x > y || Number.isNaN(x) ? x : y),
  minimum: (x, y) => (x < y || Number.isNaN(x) ? x : y),
  equalMask: (x, y) => (x === y ? 1 : 0),
};

for (const [op, f] of Object.entries(BINARY)) {
  registerKernel(op, B, ([a, b], _attrs, be) => {
    const shape = broadcastShapes(a.shape, b.shape, op);
    const t = allocTensor(be, shape, a.dtype);
    const A = floats(a, op), Bv = floats(b, op), C = floats(t, op);
    forEachBroadcast(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)], (i, [oa, ob]) => {
      C[i] = f(A[oa], Bv[ob]);
    });
    return [t];
  });
}

registerKernel<SumToShapeAttrs>('sumToShape', B, ([x], { shape }, be) => {
  const t = allocTensor(be, shape, x.dtype);
  const X = floats(x, 'sumToShape'), Y = floats(t, 'sumToShape');
  forEachBroadcast(x.shape, [broadcastStrides(shape, x.shape)], (i, [o]) => { Y[o] += X[i]; });
  return [t];
});

registerKernel<SumToShapeAttrs>('broadcastTo', B, ([x], { shape }, be) => {
  const t = allocTensor(be, shape, x.dtype);
  const X = floats(x, 'broadcastTo'), Y = floats(t, 'broadcastTo');
  forEachBroadcast(shape, [broadcastStrides(x.shape, shape)], (i, [o]) => { Y[i] = X[o]; });
  return [t];
});

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const K = Math.sqrt(2 / Math.PI);
function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for gradient checks; use a series / continued fraction.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = x, term = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for the tails.
  let f = ax, c = ax, d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = ax + an * d; d = 1 / d;
    c = ax + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return x > 0 ? 1 - erfc : erfc - 1;
}

const UNARY: Record<UnaryOp, (x: number, p1: number, p2: number) => number> = {
  neg: (x) => -x, exp: Math.exp, log: Math.log, sqrt: Math.sqrt, rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh, sigmoid: sig, relu: (x) => (x > 0 ? x : 0), abs: Math.abs, square: (x) => x * x,
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(K * (x + 0.044715 * x * x * x))),
  geluErf: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  silu: (x) => x * sig(x), affine: (x, a, b) => x * a + b, pow: (x, p) => Math.pow(x, p), reciprocal: (x) => 1 / x,
};

/** Derivative given x (or y for the ops the gradient computes from the output). */
const UNARY_GRAD: Record<UnaryOp, (v: number, p1: number) => number> = {
  neg: () => -1, exp: (y) => y, log: (x) => 1 / x, sqrt: (y) => 0.5 / y, rsqrt: (y) => -0.5 * y * y * y,
  tanh: (y) => 1 - y * y, sigmoid: (y) => y * (1 - y), relu: (x) => (x > 0 ? 1 : 0),
  abs: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), square: (x) => 2 * x,
  geluTanh: (x) => {
    const t = Math.tanh(K * (x + 0.044715 * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x);
  },
  geluErf: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI),
  silu: (x) => { const s = sig(x); return s * (1 + x * (1 - s)); },
  affine: (_x, a) => a, pow: (x, p) => p * Math.pow(x, p - 1), reciprocal: (y) => -y * y,
};

registerKernel<UnaryAttrs>('unary', B, ([x], { op, p1, p2 }, be) => {
  const t = allocTensor(be, x.shape, x.dtype);
  const X = floats(x, op), Y = floats(t, op), f = UNARY[op];
  for (let i = 0; i < X.length; i++) Y[i] = f(X[i], p1, p2);
  return [t];
});

registerKernel<UnaryGradAttrs>('unaryGrad', B, ([v, dy], { op, p1 }, be) => {
  const t = allocTensor(be, v.shape, v.dtype);
  const V = floats(v, op), D = floats(dy, op), O = floats(t, op), g = UNARY_GRAD[op];
  for (let i = 0; i < V.length; i++) O[i] = D[i] * g(V[i], p1);
  return [t];
});

registerKernel('swiglu', B, ([g, u], _a, be) => {
  const t = allocTensor(be, g.shape, g.dtype);
  const G = floats(g, 'swiglu'), U = floats(u, 'swiglu'), Y = floats(t, 'swiglu');
  for (let i = 0; i < G.length; i++) Y[i] = G[i] * sig(G[i]) * U[i];
  return [t];
});

registerKernel('swigluGrad', B, ([g, u, dy], _a, be) => {
  const dg = allocTensor(be, g.shape, g.dtype), du = allocTensor(be, g.shape, g.dtype);
  const G = floats(g, 'swigluGrad'), U = floats(u, 'swigluGrad'), D = floats(dy, 'swigluGrad');
  const DG = floats(dg, 'swigluGrad'), DU = floats(du, 'swigluGrad');
  for (let i = 0; i < G.length; i++) {
    const s = sig(G[i]);
    DU[i] = D[i] * G[i] * s;
    DG[i] = D[i] * U[i] * s * (1 + G[i] * (1 - s));
  }
  return [dg, du];
});

/** Plain triple loop over one batch entry; exactness over speed. */
function gemmRef(tA: boolean, tB: boolean, M: number, N: number, K: number, A: ArrayLike<number>, aOff: number,
  Bm: ArrayLike<number>, bOff: number, C: Float32Array | Float64Array, cOff: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = tA ? A[aOff + k * M + i] : A[aOff + i * K + k];
        const bv = tB ? Bm[bOff + j * K + k] : Bm[bOff + k * N + j];
        s += av * bv;
      }
      C[cOff + i * N + j] = s;
    }
  }
}

registerKernel<MatmulAttrs>('matmul', B, ([a, b], attrs, be) => {
  const { M, N, K, batch, sharedB, outShape } = matmulShape(a.shape, b.shape, attrs);
  const t = allocTensor(be, outShape, a.dtype);
  const A = floats(a, 'matmul'), Bm = floats(b, 'matmul'), C = floats(t, 'matmul');
  for (let p = 0; p < batch; p++) gemmRef(attrs.transA, attrs.transB, M, N, K, A, p * M * K, Bm, sharedB ? 0 : p * K * N, C, p * M * N);
  return [t];
});

registerKernel('linear', B, ([x, w, bias], _a, be) => {
  const [outF, inF] = w.shape;
  const rows = x.size / inF;
  const t = allocTensor(be, [...x.shape.slice(0, -1), outF], x.dtype);
  const X = floats(x, 'linear'), W = floats(w, 'linear'), Y = floats(t, 'linear');
  gemmRef(false, true, rows, outF, inF, X, 0, W, 0, Y, 0);
  if (bias) {
    const Bv = floats(bias, 'linear');
    for (let r = 0; r < rows; r++) for (let c = 0; c < outF; c++) Y[r * outF + c] += Bv[c];
  }
  return [t];
});


registerKernel<LinearGroupAttrs>('linearGroup', B, (inputs, attrs, be) => {
  const x = inputs[0];
  const inF = x.shape[x.rank - 1], rows = x.size / inF;
  const X = floats(x, 'linearGroup');
  return linearGroupLayers(inputs, attrs).map(({ weight, bias }) => {
    const outF = weight.shape[0];
    const t = allocTensor(be, [...x.shape.slice(0, -1), outF], x.dtype);
    const Y = floats(t, 'linearGroup');
    gemmRef(false, true, rows, outF, inF, X, 0, floats(weight, 'linearGroup'), 0, Y, 0);
    if (bias) {
      const Bv = floats(bias, 'linearGroup');
      for (let r = 0; r < rows; r++) for (let c = 0; c < outF; c++) Y[r * outF + c] += Bv[c];
    }
    return t;
  });
});

registerKernel('linearGroupGradInput', B, (pairs, _a, be) => {
  const inF = pairs[1].shape[1], rows = pairs[0].shape[0];
  const t = allocTensor(be, [rows, inF], pairs[0].dtype);
  const out = floats(t, 'linearGroupGradInput');
  const part = new Float64Array(rows * inF);
  for (let i = 0; i < pairs.length; i += 2) {
    gemmRef(false, false, rows, inF, pairs[i + 1].shape[0], floats(pairs[i], 'linearGroupGradInput'), 0, floats(pairs[i + 1], 'linearGroupGradInput'), 0, part, 0);
    for (let k = 0; k < part.length; k++) out[k] += part[k];
  }
  return [t];
});
