/**
 * Several Linear layers reading one input (q/k/v, SwiGLU's gate/up): y_i = x · W_iᵀ + b_i.
 *
 * The outputs, the weights and their gradients are those of separate `linear` calls (the
 * parameters stay separate tensors, so names, checkpoints, LoRA targets and quantized storage do
 * not change); what differs is the backward pass: separate linears each produce a dX that the
 * tape then adds up, one memory pass per extra layer, while here one op sums
 * dX = Σ_i dy_i · W_i inside the GEMMs (beta = 1 after the first).
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { matmul } from './matmul.js';
import { reshape, sumToShape } from './shape-ops.js';

/** hasBias[i]: layer i has a bias, right after its weight in the inputs [x, W_0, (b_0), W_1, …]. */
export interface LinearGroupAttrs { hasBias: readonly boolean[] }

/** The weights and biases of a linearGroup call, in layer order. */
export function linearGroupLayers(inputs: readonly Tensor[], { hasBias }: LinearGroupAttrs): { weight: Tensor; bias: Tensor | null }[] {
  const out: { weight: Tensor; bias: Tensor | null }[] = [];
  let k = 1;
  for (const b of hasBias) {
    const weight = inputs[k++];
    out.push({ weight, bias: b ? inputs[k++] : null });
  }
  return out;
}

/**
 * x · W_iᵀ + b_i for every layer i (weights [out_i, in], biases [out_i] or null), as one op whose
 * backward sums the input gradient in place. Returns one tensor per layer, [..., out_i].
 */
export function linearGroup(x: Tensor, weights: readonly Tensor[], biases?: readonly (Tensor | null | undefined)[]): Tensor[] {
  if (weights.length === 0) throw new Error(`op 'linearGroup': expected at least one weight`);
  if (biases && biases.length !== weights.length) throw new Error(`op 'linearGroup': ${weights.length} weights but ${biases.length} biases (pass null for a layer without one)`);
  const inF = x.shape[x.rank - 1];
  if (x.rank < 1 || x.dtype === 'int32') throw new Error(`op 'linearGroup': expected a float input, got ${x.describe()}`);
  const inputs: Tensor[] = [x];
  const hasBias: boolean[] = [];
  weights.forEach((w, i) => {
    if (w.rank !== 2 || w.shape[1] !== inF) throw new Error(`op 'linearGroup': weight ${i} must be [out, ${inF}] (input ${formatShape(x.shape)}), got ${w.describe()}`);
    if (w.dtype !== x.dtype) throw new Error(`op 'linearGroup': weight ${i} is ${w.dtype}, input is ${x.dtype}`);
    inputs.push(w);
    const b = biases?.[i] ?? null;
    if (b) {
      if (b.rank !== 1 || b.shape[0] !== w.shape[0]) throw new Error(`op 'linearGroup': bias ${i} ${formatShape(b.shape)} must be [${w.shape[0]}]`);
      if (b.dtype !== x.dtype) throw new Error(`op 'linearGroup': bias ${i} is ${b.dtype}, input is ${x.dtype}`);
      inputs.push(b);
    }
    hasBias.push(b !== null);
  });
  return runOp<LinearGroupAttrs>('linearGroup', inputs, { hasBias });
}

registerGradient<LinearGroupAttrs>('linearGroup', (dys, { inputs, attrs }) => {
  const x = inputs[0];
  const layers = linearGroupLayers(inputs, attrs);
  const inF = x.shape[x.rank - 1];
  const x2 = reshape(x, [-1, inF]);
  const grads: (Tensor | null)[] = [null];
  const pairs: Tensor[] = [];
  layers.forEach(({ weight, bias }, i) => {
    const dy = dys[i];
    const outF = weight.shape[0];
    const dy2 = dy ? reshape(dy, [-1, outF]) : null;
    if (dy2) pairs.push(dy2, weight);
    grads.push(dy2 && weight.requiresGrad ? matmul(dy2, x2, { transA: true }) : null);
    if (bias) grads.push(dy2 && bias.requiresGrad ? sumToShape(dy2, [outF]) : null);
  });
  if (x.requiresGrad && pairs.length > 0) grads[0] = reshape(runOp('linearGroupGradInput', pairs, {})[0], x.shape);
  return grads;
});

declareNonDifferentiable('linearGroupGradInput', 'backward kernel of linearGroup (Σ dy_i · W_i)');
