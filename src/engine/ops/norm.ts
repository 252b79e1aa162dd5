/**
 * Normalisation over the last dimension: LayerNorm (PyTorch semantics, biased variance) and
 * RMSNorm (Hugging Face LlamaRMSNorm). The forward kernel saves per-row statistics as auxiliary
 * outputs (mean and rstd, or rstd alone); the backward is one fused kernel op that returns the
 * input gradient and the weight/bias gradients (deterministic column sums).
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';

declareNonDifferentiable(['layerNormGrad', 'rmsNormGrad', 'addRmsNormGrad'], "backward kernels of 'layerNorm' / 'rmsNorm' / 'addRmsNorm' (no double backward)");

export interface LayerNormAttrs { eps: number; hasWeight: boolean; hasBias: boolean }
export interface RmsNormAttrs { eps: number; hasWeight: boolean }
export type AddRmsNormAttrs = RmsNormAttrs;
/** addRmsNormGrad inputs: [sum, rstd, dy?, ds?, weight?] (which are present: the flags). */
export interface AddRmsNormGradAttrs { hasWeight: boolean; hasDy: boolean; hasDs: boolean }

function checkNormInputs(op: string, x: Tensor, params: [string, Tensor | null][], eps: number): number {
  if (x.dtype === 'int32') throw new Error(`op '${op}': expected a float tensor, got ${x.describe()}`);
  if (x.rank < 1) throw new Error(`op '${op}': input must have at least 1 dimension (normalised over the last), got ${x.describe()}`);
  const D = x.shape[x.rank - 1];
  if (D < 1) throw new Error(`op '${op}': the normalised (last) dimension of ${formatShape(x.shape)} is empty`);
  for (const [what, p] of params) {
    if (!p) continue;
    if (p.rank !== 1 || p.shape[0] !== D) throw new Error(`op '${op}': ${what} ${formatShape(p.shape)} must be [${D}] to match the last dimension of input ${formatShape(x.shape)}`);
    if (p.dtype !== x.dtype) throw new Error(`op '${op}': ${what} dtype ${p.dtype} differs from input dtype ${x.dtype} (${p.describe()} vs ${x.describe()})`);
  }
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new Error(`op '${op}': eps must be a finite number >= 0, got ${eps}`);
  return D;
}

/** Drops the saved statistics when no tape node will need them. */
function visible(outs: Tensor[]): Tensor {
  const y = outs[0];
  if (!y.node) for (let i = 1; i < outs.length; i++) outs[i].dispose();
  return y;
}

/**
 * LayerNorm over the last dimension of x [..., D]: (x − mean) / sqrt(var + eps) · weight + bias,
 * with the biased variance (PyTorch). weight and bias are [D] or null.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  checkNormInputs('layerNorm', x, [['weight', weight], ['bias', bias]], eps);
  const inputs = [x];
  if (weight) inputs.push(weight);
  if (bias) inputs.push(bias);
  return visible(runOp<LayerNormAttrs>('layerNorm', inputs, { eps, hasWeight: !!weight, hasBias: !!bias }));
}

/**
 * RMSNorm over the last dimension (Hugging Face LlamaRMSNorm):
 * y = x · rsqrt(mean(x²) + eps) · weight, weight [D] or null.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  checkNormInputs('rmsNorm', x, [['weight', weight]], eps);
  const inputs = weight ? [x, weight] : [x];
  return visible(runOp<RmsNormAttrs>('rmsNorm', inputs, { eps, hasWeight: !!weight }));
}

// layerNormGrad inputs: [x, mean, rstd, dy, weight?]; outputs: [dx, dweight?, dbias?].
registerGradient<LayerNormAttrs>('layerNorm', (dys, { inputs, outputs, attrs }) => {
  const dy = dys[0];
  if (!dy) return inputs.map(() => null);
  const [x] = inputs;
  const weight = attrs.hasWeight ? inputs[1] : null;
  const [, mean, rstd] = outputs;
  const gins = weight ? [x, mean, rstd, dy, weight] : [x, mean, rstd, dy];
  const g = runOp<LayerNormAttrs>('layerNormGrad', gins, attrs);
  return g;
});

// rmsNormGrad inputs: [x, rstd, dy, weight?]; outputs: [dx, dweight?].
registerGradient<RmsNormAttrs>('rmsNorm', (dys, { inputs, outputs, attrs }) => {
  const dy = dys[0];
  if (!dy) return inputs.map(() => null);
  const [x] = inputs;
  const weight = attrs.hasWeight ? inputs[1] : null;
  const rstd = outputs[1];
  const gins = weight ? [x, rstd, dy, weight] : [x, rstd, dy];
  return runOp<RmsNormAttrs>('rmsNormGrad', gins, attrs);
});

/**
 * The residual add fused into RMSNorm: returns [s, y] with s = x + r and y = rmsNorm(s, weight,
 * eps), in one pass over memory (forward and backward). x and r have the same shape [..., D].
 * Equal to `const s = add(x, r); const y = rmsNorm(s, weight, eps)`.
 */
export function addRmsNorm(x: Tensor, r: Tensor, weight: Tensor | null, eps = 1e-6): [Tensor, Tensor] {
  checkNormInputs('addRmsNorm', x, [['weight', weight]], eps);
  if (r.dtype !== x.dtype || r.rank !== x.rank || r.shape.some((d, i) => d !== x.shape[i])) {
    throw new Error(`op 'addRmsNorm': residual ${r.describe()} must have the shape and dtype of input ${x.describe()}`);
  }
  const inputs = weight ? [x, r, weight] : [x, r];
  const outs = runOp<AddRmsNormAttrs>('addRmsNorm', inputs, { eps, hasWeight: !!weight });
  if (!outs[0].node) outs[2].dispose();
  return [outs[0], outs[1]];
}

// addRmsNorm's gradient: one kernel gives d(x + r) = ds + RMSNorm'(dy); x and r both get it.
registerGradient<AddRmsNormAttrs>('addRmsNorm', (dys, { inputs, outputs, attrs }) => {
  const [ds, dy] = dys;
  if (!ds && !dy) return inputs.map(() => null);
  const gins = [outputs[0], outputs[2]];
  if (dy) gins.push(dy);
  if (ds) gins.push(ds);
  if (attrs.hasWeight) gins.push(inputs[2]);
  const g = runOp<AddRmsNormGradAttrs>('addRmsNormGrad', gins, { hasWeight: attrs.hasWeight, hasDy: !!dy, hasDs: !!ds });
  const dw = attrs.hasWeight ? (dy ? g[1] : null) : undefined;
  return dw === undefined ? [g[0], g[0]] : [g[0], g[0], dw];
});
