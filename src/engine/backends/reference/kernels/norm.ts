/** Reference kernels of the norm family: LayerNorm and RMSNorm, forward and fused backward.
 * Sums run in float64 (JavaScript numbers), in row order. */
import { registerKernel, getKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import type { LayerNormAttrs, RmsNormAttrs, AddRmsNormAttrs, AddRmsNormGradAttrs } from '../../../ops/norm.js';
import { floats } from '../backend.js';

const B = 'reference';

function rowsOf(x: Tensor): { rows: number; D: number; statShape: number[] } {
  const D = x.shape[x.rank - 1];
  return { rows: D === 0 ? 0 : x.size / D, D, statShape: x.shape.slice(0, -1) };
}

registerKernel<LayerNormAttrs>('layerNorm', B, (inputs, { eps, hasWeight, hasBias }, be) => {
  const x = inputs[0];
  const op = 'layerNorm';
  const { rows, D, statShape } = rowsOf(x);
  const X = floats(x, op);
  const W = hasWeight ? floats(inputs[1], op) : null;
  const Bv = hasBias ? floats(inputs[hasWeight ? 2 : 1], op) : null;
  const y = allocTensor(be, x.shape, x.dtype);
  const mean = allocTensor(be, statShape, x.dtype), rstd = allocTensor(be, statShape, x.dtype);
  const Y = floats(y, op), M = floats(mean, op), R = floats(rstd, op);
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let s = 0;
    for (let j = 0; j < D; j++) s += X[o + j];
    const m = s / D;
    let v = 0;
    for (let j = 0; j < D; j++) { const d = X[o + j] - m; v += d * d; }
    const rs = 1 / Math.sqrt(v / D + eps);
    M[r] = m;
    R[r] = rs;
    for (let j = 0; j < D; j++) {
      let t = (X[o + j] - m) * rs;
      if (W) t *= W[j];
      if (Bv) t += Bv[j];
      Y[o + j] = t;
    }
  }
  return [y, mean, rstd];
});

registerKernel<LayerNormAttrs>('layerNormGrad', B, (inputs, { hasWeight, hasBias }, be) => {
  const [x, mean, rstd, dy] = inputs;
  const op = 'layerNormGrad';
  const { rows, D } = rowsOf(x);
  const X = floats(x, op), M = floats(mean, op), R = floats(rstd, op), DY = floats(dy, op);
  const W = hasWeight ? floats(inputs[4], op) : null;
  const dx = allocTensor(be, x.shape, x.dtype);
  const DX = floats(dx, op);
  const dwAcc = hasWeight ? new Float64Array(D) : null;
  const dbAcc = hasBias ? new Float64Array(D) : null;
  const xhat = new Float64Array(D), g = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const o = r * D, m = M[r], rs = R[r];
    let sg = 0, sgx = 0;
    for (let j = 0; j < D; j++) {
      const xh = (X[o + j] - m) * rs;
      const gj = W ? DY[o + j] * W[j] : DY[o + j];
      xhat[j] = xh; g[j] = gj;
      sg += gj; sgx += gj * xh;
      if (dwAcc) dwAcc[j] += DY[o + j] * xh;
      if (dbAcc) dbAcc[j] += DY[o + j];
    }
    const a = sg / D, b = sgx / D;
    for (let j = 0; j < D; j++) DX[o + j] = rs * (g[j] - a - xhat[j] * b);
  }
  const outs = [dx];
  if (dwAcc) { const t = allocTensor(be, [D], x.dtype); floats(t, op).set(dwAcc); outs.push(t); }
  if (dbAcc) { const t = allocTensor(be, [D], x.dtype); floats(t, op).set(dbAcc); outs.push(t); }
  return outs;
});

registerKernel<RmsNormAttrs>('rmsNorm', B, (inputs, { eps, hasWeight }, be) => {
  const x = inputs[0];
  const op = 'rmsNorm';
  const { rows, D, statShape } = rowsOf(x);
  const X = floats(x, op);
  const W = hasWeight ? floats(inputs[1], op) : null;
  const y = allocTensor(be, x.shape, x.dtype), rstd = allocTensor(be, statShape, x.dtype);
  const Y = floats(y, op), R = floats(rstd, op);
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let s = 0;
    for (let j = 0; j < D; j++) s += X[o + j] * X[o + j];
    const rs = 1 / Math.sqrt(s / D + eps);
    R[r] = rs;
    for (let j = 0; j < D; j++) Y[o + j] = W ? W[j] * (X[o + j] * rs) : X[o + j] * rs;
  }
  return [y, rstd];
});

registerKernel<RmsNormAttrs>('rmsNormGrad', B, (inputs, { hasWeight }, be) => {
  const [x, rstd, dy] = inputs;
  const op = 'rmsNormGrad';
  const { rows, D } = rowsOf(x);
  const X = floats(x, op), R = floats(rstd, op), DY = floats(dy, op);
  const W = hasWeight ? floats(inputs[3], op) : null;
  const dx = allocTensor(be, x.shape, x.dtype);
  const DX = floats(dx, op);
  const dwAcc = hasWeight ? new Float64Array(D) : null;
  for (let r = 0; r < rows; r++) {
    const o = r * D, rs = R[r];
    let sgx = 0;
    for (let j = 0; j < D; j++) {
      const xh = X[o + j] * rs;
      sgx += (W ? DY[o + j] * W[j] : DY[o + j]) * xh;
      if (dwAcc) dwAcc[j] += DY[o + j] * xh;
    }
    const c = sgx / D;
    for (let j = 0; j < D; j++) {
      const gj = W ? DY[o + j] * W[j] : DY[o + j];
      DX[o + j] = rs * (gj - X[o + j] * rs * c);
    }
  }
  const outs = [dx];
  if (dwAcc) { const t = allocTensor(be, [D], x.dtype); floats(t, op).set(dwAcc); outs.push(t); }
  return outs;
});

// The fused residual add + RMSNorm: exactly the add followed by the rmsNorm kernel above.
registerKernel<AddRmsNormAttrs>('addRmsNorm', B, (inputs, attrs, be) => {
  const [x, r] = inputs;
  const op = 'addRmsNorm';
  const sum = allocTensor(be, x.shape, x.dtype);
  const S = floats(sum, op), X = floats(x, op), R = floats(r, op);
  for (let i = 0; i < S.length; i++) S[i] = X[i] + R[i];
  const [y, rstd] = getKernel<RmsNormAttrs>('rmsNorm', B)(attrs.hasWeight ? [sum, inputs[2]] : [sum], attrs, be);
  return [sum, y, rstd];
});

registerKernel<AddRmsNormGradAttrs>('addRmsNormGrad', B, (inputs, { hasWeight, hasDy, hasDs }, be) => {
  const [sum, rstd] = inputs;
  let i = 2;
  const dy = hasDy ? inputs[i++] : null;
  const ds = hasDs ? inputs[i++] : null;
  const w = hasWeight ? inputs[i++] : null;
  const op = 'addRmsNormGrad';
  const outs = dy
    ? getKernel<RmsNormAttrs>('rmsNormGrad', B)(w ? [sum, rstd, dy, w] : [sum, rstd, dy], { eps: 0, hasWeight }, be)
    : [allocTensor(be, sum.shape, sum.dtype)];
  const DX = floats(outs[0], op);
  if (!dy) DX.fill(0);
  if (ds) { const DS = floats(ds, op); for (let k = 0; k < DX.length; k++) DX[k] += DS[k]; }
  return outs;
});
