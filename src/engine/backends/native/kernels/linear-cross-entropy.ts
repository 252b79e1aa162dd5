/** Native kernel of linearCrossEntropy (native/src/linear_ce.cc). */
import { registerKernel } from '../../../registry.js';
import { linearCrossEntropyBuffers, type LinearCrossEntropyAttrs } from '../../../ops/linear-cross-entropy.js';
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
  const b = linearCrossEntropyBuffers(inputs, attrs, be);
  addonOf(be).linearCrossEntropy(h(b.hidden), h(b.weight), hOrNull(b.bias), h(b.targets), hOrNull(b.weights), h(b.loss),
    hOrNull(b.dHidden), hOrNull(b.dWeight), hOrNull(b.dBias), hOrNull(b.dWeights), b.N, b.d, b.V, attrs.ignoreIndex, attrs.sum, attrs.chunkSize);
  return b.outputs;
});
