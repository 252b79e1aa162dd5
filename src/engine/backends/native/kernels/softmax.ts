/** Native kernels for softmax, logSoftmax and crossEntropy (native/src/softmax.cc). */
import { registerKernel } from '../../../registry.js';
import { allocOutput, allocTensor } from '../../../tensor.js';
import { splitAt } from '../../../ops/reduce.js';
import type { CrossEntropyAttrs, SoftmaxAttrs } from '../../../ops/softmax.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

declare module '../addon.js' {
  interface NativeAddon {
    softmax(x: object, y: object, outer: number, size: number, inner: number, log: boolean): void;
    softmaxGrad(y: object, dy: object, dx: object, outer: number, size: number, inner: number, log: boolean): void;
    /** Writes the loss (1 element) and the per-row logsumexp (0 for ignored rows); throws on bad targets. */
    crossEntropy(logits: object, targets: object, weights: object | null, loss: object, lse: object, n: number, v: number,
      ignoreIndex: number, sum: boolean): void;
    crossEntropyGrad(logits: object, targets: object, weights: object | null, lse: object, loss: object, dy: object,
      dlogits: object, dweights: object | null, n: number, v: number, ignoreIndex: number, sum: boolean): void;
  }
}

const B = 'native';

registerKernel<SoftmaxAttrs>('softmax', B, ([x], { axis, log }, be) => {
  const t = allocTensor(be, x.shape, x.dtype);
  const { outer, reduce, inner } = splitAt(x.shape, axis);
  addonOf(be).softmax(h(x), h(t), outer, reduce, inner, log);
  return [t];
});

registerKernel<SoftmaxAttrs>('softmaxGrad', B, ([y, dy], { axis, log }, be) => {
  const t = allocTensor(be, y.shape, y.dtype);
  const { outer, reduce, inner } = splitAt(y.shape, axis);
  addonOf(be).softmaxGrad(h(y), h(dy), h(t), outer, reduce, inner, log);
  return [t];
});

registerKernel<CrossEntropyAttrs>('crossEntropy', B, ([logits, targets, weights], { ignoreIndex, sum }, be) => {
  const [N, V] = logits.shape;
  const loss = allocTensor(be, [], logits.dtype), lse = allocTensor(be, [N], logits.dtype);
  addonOf(be).crossEntropy(h(logits), h(targets), hOrNull(weights), h(loss), h(lse), N, V, ignoreIndex, sum);
  return [loss, lse];
});

registerKernel<CrossEntropyAttrs>('crossEntropyGrad', B, ([logits, targets, lse, loss, dy, weights], { ignoreIndex, sum, weightGrad }, be) => {
  const [N, V] = logits.shape;
  const dl = allocOutput(be, logits.shape, logits.dtype); // every row written (zeros where ignored)
  const dw = weightGrad ? allocTensor(be, [N], logits.dtype) : null;
  addonOf(be).crossEntropyGrad(h(logits), h(targets), hOrNull(weights), h(lse), h(loss), h(dy), h(dl), hOrNull(dw), N, V, ignoreIndex, sum);
  return dw ? [dl, dw] : [dl];
});
