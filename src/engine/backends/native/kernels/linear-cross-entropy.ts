/** Native kernel of linearCrossEntropy (native/src/linear_ce.cc). */
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import type { LinearCrossEntropyAttrs } from '../../../ops/linear-cross-entropy.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

declare module '../addon.js' {
  interface NativeAddon {
    /** Writes the loss (1 element) and, where a buffer is given, the gradients for dy = 1; throws on bad targets. */
    linearCrossEntropy(hidden: object, weight: object, bias: object | null, targets: object, weights: object | null, loss: object,
      dHidden: object | null, dWeight: object | null, dBias: object | null, dWeights: object | null,
      n: number, d: number, v: number, ignoreIndex: number, sum: boolean, chunkRows: number): void;
  }
}

registerKernel<LinearCrossEntropyAttrs>('linearCrossEntropy', 'native', (inputs, attrs, be) => {
  const [hidden, weight, targets] = inputs;
  const bias: Tensor | null = attrs.hasBias ? inputs[3] : null;
  const weights: Tensor | null = attrs.hasWeights ? inputs[attrs.hasBias ? 4 : 3] : null;
  const [N, d] = hidden.shape;
  const V = weight.shape[0];
  const dtype = hidden.dtype;
  const loss = allocTensor(be, [], dtype);
  const dh = attrs.gradHidden ? allocTensor(be, [N, d], dtype) : null;
  const dW = attrs.gradWeight ? allocTensor(be, [V, d], dtype) : null;
  const db = attrs.gradBias ? allocTensor(be, [V], dtype) : null;
  const dw = attrs.gradWeights ? allocTensor(be, [N], dtype) : null;
  addonOf(be).linearCrossEntropy(h(hidden), h(weight), hOrNull(bias), h(targets), hOrNull(weights), h(loss),
    hOrNull(dh), hOrNull(dW), hOrNull(db), hOrNull(dw), N, d, V, attrs.ignoreIndex, attrs.sum, attrs.chunkSize);
  const outs = [loss];
  for (const t of [dh, dW, db, dw]) if (t) outs.push(t);
  return outs;
});
