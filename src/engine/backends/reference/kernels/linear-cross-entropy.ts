/**
 * Reference kernel of linearCrossEntropy: row by row in float64 (one row of logits at a time;
 * the chunk size only matters for the native kernel's memory and speed).
 */
import { registerKernel } from '../../../registry.js';
import { linearCrossEntropyBuffers, type LinearCrossEntropyAttrs } from '../../../ops/linear-cross-entropy.js';
import { floats, ints } from '../backend.js';

const B = 'reference';
const OP = 'linearCrossEntropy';

registerKernel<LinearCrossEntropyAttrs>(OP, B, (inputs, attrs, be) => {
  const buffers = linearCrossEntropyBuffers(inputs, attrs, be);
  const { hidden, weight, targets, bias, weights, N, d, V, loss, dHidden: dh, dWeight: dW, dBias: db, dWeights: dw } = buffers;
  const { ignoreIndex, sum } = attrs;
  const H = floats(hidden, OP), W = floats(weight, OP), T = ints(targets, OP);
  const Bv = bias ? floats(bias, OP) : null, Wt = weights ? floats(weights, OP) : null;
  for (let i = 0; i < N; i++) {
    const t = T[i];
    if (t !== ignoreIndex && (t < 0 || t >= V)) throw new Error(`op '${OP}': row ${i}: target ${t} is out of range [0, ${V}) and is not the ignoreIndex ${ignoreIndex}`);
  }
  let D = 0;
  for (let i = 0; i < N; i++) if (T[i] !== ignoreIndex) D += Wt ? Wt[i] : 1;
  const DH = dh ? floats(dh, OP) : null, DW = dW ? floats(dW, OP) : null, DB = db ? floats(db, OP) : null, DWt = dw ? floats(dw, OP) : null;
  // Float64 accumulators for the weight and bias gradients (summed over rows).
  const accW = DW ? new Float64Array(V * d) : null, accB = DB ? new Float64Array(V) : null;
  const norm = sum ? 1 : D === 0 ? 0 : 1 / D;
  const nll = new Float64Array(N);
  const z = new Float64Array(V);
  let S = 0;
  for (let i = 0; i < N; i++) {
    const t = T[i];
    if (t === ignoreIndex) continue;
    const h = i * d;
    let m = -Infinity;
    for (let j = 0; j < V; j++) {
      let s = Bv ? Bv[j] : 0;
      for (let k = 0; k < d; k++) s += H[h + k] * W[j * d + k];
      z[j] = s;
      m = Math.max(m, s);
    }
    let se = 0;
    for (let j = 0; j < V; j++) se += Math.exp(z[j] - m);
    const lse = m + Math.log(se);
    nll[i] = lse - z[t];
    const wi = Wt ? Wt[i] : 1;
    S += wi * nll[i];
    if (!DH && !accW && !accB) continue;
    const scale = wi * norm;
    for (let j = 0; j < V; j++) {
      const g = (Math.exp(z[j] - lse) - (j === t ? 1 : 0)) * scale;
      if (g === 0) continue;
      if (DH) for (let k = 0; k < d; k++) DH[h + k] += g * W[j * d + k];
      if (accW) for (let k = 0; k < d; k++) accW[j * d + k] += g * H[h + k];
      if (accB) accB[j] += g;
    }
  }
  const L = sum ? S : D === 0 ? 0 : S / D;
  floats(loss, OP)[0] = L;
  if (accW) DW!.set(accW);
  if (accB) DB!.set(accB);
  if (DWt) for (let i = 0; i < N; i++) DWt[i] = T[i] === ignoreIndex ? 0 : sum ? nll[i] : D === 0 ? 0 : (nll[i] - L) / D;
  return buffers.outputs;
});
