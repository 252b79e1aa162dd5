/** Native kernels of the norm family: LayerNorm and RMSNorm (see native/src/norm.cc). */
import { registerKernel } from '../../../registry.js';
import { allocOutput, allocTensor, type Tensor } from '../../../tensor.js';
import type { LayerNormAttrs, RmsNormAttrs, AddRmsNormAttrs, AddRmsNormGradAttrs } from '../../../ops/norm.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

type Handle = object;
declare module '../addon.js' {
  interface NativeAddon {
    layerNorm(x: Handle, w: Handle | null, b: Handle | null, y: Handle, mean: Handle, rstd: Handle, rows: number, D: number, eps: number): void;
    layerNormGrad(x: Handle, w: Handle | null, mean: Handle, rstd: Handle, dy: Handle, dx: Handle, dw: Handle | null, db: Handle | null, rows: number, D: number): void;
    rmsNorm(x: Handle, w: Handle | null, y: Handle, rstd: Handle, rows: number, D: number, eps: number): void;
    rmsNormGrad(x: Handle, w: Handle | null, rstd: Handle, dy: Handle, dx: Handle, dw: Handle | null, rows: number, D: number): void;
    addRmsNorm(x: Handle, r: Handle, w: Handle | null, sum: Handle, y: Handle, rstd: Handle, rows: number, D: number, eps: number): void;
    addRmsNormGrad(sum: Handle, w: Handle | null, rstd: Handle, dy: Handle | null, ds: Handle | null, dx: Handle, dw: Handle | null, rows: number, D: number): void;
  }
}

const B = 'native';

function sizes(x: Tensor): { rows: number; D: number } {
  const D = x.shape[x.rank - 1];
  return { rows: x.size / D, D };
}

registerKernel<LayerNormAttrs>('layerNorm', B, (inputs, { eps, hasWeight, hasBias }, be) => {
  const x = inputs[0];
  const w = hasWeight ? inputs[1] : null;
  const b = hasBias ? inputs[hasWeight ? 2 : 1] : null;
  const { rows, D } = sizes(x);
  const statShape = x.shape.slice(0, -1);
  const y = allocTensor(be, x.shape, x.dtype);
  const mean = allocTensor(be, statShape, x.dtype), rstd = allocTensor(be, statShape, x.dtype);
  addonOf(be).layerNorm(h(x), hOrNull(w), hOrNull(b), h(y), h(mean), h(rstd), rows, D, eps);
  return [y, mean, rstd];
});

registerKernel<LayerNormAttrs>('layerNormGrad', B, (inputs, { hasWeight, hasBias }, be) => {
  const [x, mean, rstd, dy] = inputs;
  const w = hasWeight ? inputs[4] : null;
  const { rows, D } = sizes(x);
  const dx = allocTensor(be, x.shape, x.dtype);
  const dw = hasWeight ? allocTensor(be, [D], x.dtype) : null;
  const db = hasBias ? allocTensor(be, [D], x.dtype) : null;
  addonOf(be).layerNormGrad(h(x), hOrNull(w), h(mean), h(rstd), h(dy), h(dx), hOrNull(dw), hOrNull(db), rows, D);
  const outs = [dx];
  if (dw) outs.push(dw);
  if (db) outs.push(db);
  return outs;
});

registerKernel<RmsNormAttrs>('rmsNorm', B, (inputs, { eps, hasWeight }, be) => {
  const x = inputs[0];
  const w = hasWeight ? inputs[1] : null;
  const { rows, D } = sizes(x);
  const y = allocOutput(be, x.shape, x.dtype), rstd = allocOutput(be, x.shape.slice(0, -1), x.dtype);
  addonOf(be).rmsNorm(h(x), hOrNull(w), h(y), h(rstd), rows, D, eps);
  return [y, rstd];
});

registerKernel<RmsNormAttrs>('rmsNormGrad', B, (inputs, { hasWeight }, be) => {
  const [x, rstd, dy] = inputs;
  const w = hasWeight ? inputs[3] : null;
  const { rows, D } = sizes(x);
  const dx = allocOutput(be, x.shape, x.dtype);
  const dw = hasWeight ? allocTensor(be, [D], x.dtype) : null;
  addonOf(be).rmsNormGrad(h(x), hOrNull(w), h(rstd), h(dy), h(dx), hOrNull(dw), rows, D);
  return dw ? [dx, dw] : [dx];
});

registerKernel<AddRmsNormAttrs>('addRmsNorm', B, (inputs, { eps, hasWeight }, be) => {
  const [x, r] = inputs;
  const w = hasWeight ? inputs[2] : null;
  const { rows, D } = sizes(x);
  const sum = allocOutput(be, x.shape, x.dtype), y = allocOutput(be, x.shape, x.dtype);
  const rstd = allocOutput(be, x.shape.slice(0, -1), x.dtype);
  addonOf(be).addRmsNorm(h(x), h(r), hOrNull(w), h(sum), h(y), h(rstd), rows, D, eps);
  return [sum, y, rstd];
});

registerKernel<AddRmsNormGradAttrs>('addRmsNormGrad', B, (inputs, { hasWeight, hasDy, hasDs }, be) => {
  const [sum, rstd] = inputs;
  let i = 2;
  const dy = hasDy ? inputs[i++] : null;
  const ds = hasDs ? inputs[i++] : null;
  const w = hasWeight ? inputs[i++] : null;
  const { rows, D } = sizes(sum);
  const dx = allocOutput(be, sum.shape, sum.dtype);
  const dw = hasWeight && dy ? allocTensor(be, [D], sum.dtype) : null;
  addonOf(be).addRmsNormGrad(h(sum), hOrNull(w), h(rstd), hOrNull(dy), hOrNull(ds), h(dx), hOrNull(dw), rows, D);
  return dw ? [dx, dw] : [dx];
});
