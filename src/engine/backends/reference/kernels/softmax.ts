/** Reference kernels for softmax, logSoftmax, crossEntropy and their gradients. */
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import { splitAt } from '../../../ops/reduce.js';
import type { CrossEntropyAttrs, SoftmaxAttrs } from '../../../ops/softmax.js';
import { floats, ints } from '../backend.js';

const B = 'reference';

registerKernel<SoftmaxAttrs>('softmax', B, ([x], { axis, log }, be) => {
  const t = allocTensor(be, x.shape, x.dtype);
  const X = floats(x, 'softmax'), Y = floats(t, 'softmax');
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const at = (r: number) => (o * reduce + r) * inner + j;
      let m = -Infinity;
      for (let r = 0; r < reduce; r++) m = Math.max(m, X[at(r)]);
      let s = 0;
      for (let r = 0; r < reduce; r++) s += Math.exp(X[at(r)] - m);
      const ls = Math.log(s);
      for (let r = 0; r < reduce; r++) Y[at(r)] = log ? X[at(r)] - m - ls : Math.exp(X[at(r)] - m) / s;
    }
  }
  return [t];
});

registerKernel<SoftmaxAttrs>('softmaxGrad', B, ([y, dy], { axis, log }, be) => {
  const t = allocTensor(be, y.shape, y.dtype);
  const Y = floats(y, 'softmaxGrad'), D = floats(dy, 'softmaxGrad'), G = floats(t, 'softmaxGrad');
  const { outer, reduce, inner } = splitAt(y.shape, axis);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const at = (r: number) => (o * reduce + r) * inner + j;
      let s = 0;
      for (let r = 0; r < reduce; r++) s += log ? D[at(r)] : D[at(r)] * Y[at(r)];
      for (let r = 0; r < reduce; r++) {
        const k = at(r);
        G[k] = log ? D[k] - Math.exp(Y[k]) * s : Y[k] * (D[k] - s);
      }
    }
  }
  return [t];
});

function checkTargets(T: Int32Array, V: number, ignoreIndex: number, op: string): void {
  for (let i = 0; i < T.length; i++) {
    const t = T[i];
    if (t !== ignoreIndex && (t < 0 || t >= V)) {
      throw new Error(`op '${op}': row ${i}: target ${t} is out of range [0, ${V}) and is not the ignoreIndex ${ignoreIndex}`);
    }
  }
}

/** Σ wᵢ over non-ignored rows. */
function denominator(T: Int32Array, W: ArrayLike<number> | null, ignoreIndex: number): number {
  let d = 0;
  for (let i = 0; i < T.length; i++) if (T[i] !== ignoreIndex) d += W ? W[i] : 1;
  return d;
}

function weightsOf(w: Tensor | undefined, op: string): Float32Array | Float64Array | null {
  return w ? floats(w, op) : null;
}

registerKernel<CrossEntropyAttrs>('crossEntropy', B, ([logits, targets, weights], { ignoreIndex, sum }, be) => {
  const [N, V] = logits.shape;
  const X = floats(logits, 'crossEntropy'), T = ints(targets, 'crossEntropy'), W = weightsOf(weights, 'crossEntropy');
  checkTargets(T, V, ignoreIndex, 'crossEntropy');
  const loss = allocTensor(be, [], logits.dtype), lse = allocTensor(be, [N], logits.dtype);
  const L = floats(lse, 'crossEntropy');
  let S = 0;
  for (let i = 0; i < N; i++) {
    if (T[i] === ignoreIndex) continue;
    const row = i * V;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, X[row + j]);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(X[row + j] - m);
    const ls = Math.log(s);
    L[i] = m + ls;
    S += (W ? W[i] : 1) * (m - X[row + T[i]] + ls);
  }
  const D = denominator(T, W, ignoreIndex);
  floats(loss, 'crossEntropy')[0] = sum ? S : D === 0 ? 0 : S / D;
  return [loss, lse];
});

registerKernel<CrossEntropyAttrs>('crossEntropyGrad', B, ([logits, targets, lse, loss, dy, weights], { ignoreIndex, sum, weightGrad }, be) => {
  const [N, V] = logits.shape;
  const X = floats(logits, 'crossEntropyGrad'), T = ints(targets, 'crossEntropyGrad'), W = weightsOf(weights, 'crossEntropyGrad');
  checkTargets(T, V, ignoreIndex, 'crossEntropyGrad');
  const L = floats(lse, 'crossEntropyGrad');
  const g = floats(dy, 'crossEntropyGrad')[0], lossV = floats(loss, 'crossEntropyGrad')[0];
  const D = denominator(T, W, ignoreIndex);
  const dl = allocTensor(be, logits.shape, logits.dtype);
  const G = floats(dl, 'crossEntropyGrad');
  const dw = weightGrad ? allocTensor(be, [N], logits.dtype) : null;
  const GW = dw ? floats(dw, 'crossEntropyGrad') : null;
  if (!sum && D === 0) return dw ? [dl, dw] : [dl];
  const norm = sum ? 1 : 1 / D;
  for (let i = 0; i < N; i++) {
    if (T[i] === ignoreIndex) continue;
    const row = i * V;
    const scale = (W ? W[i] : 1) * norm * g;
    for (let j = 0; j < V; j++) G[row + j] = Math.exp(X[row + j] - L[i]) * scale;
    G[row + T[i]] -= scale;
    if (GW) {
      const nll = L[i] - X[row + T[i]];
      GW[i] = g * (sum ? nll : (nll - lossV) / D);
    }
  }
  return dw ? [dl, dw] : [dl];
});
