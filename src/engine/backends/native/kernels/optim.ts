/** Native kernels for the in-place optimizer updates and gradient-norm helpers (native/src/optim.cc). */
import { registerKernel } from '../../../registry.js';
import type { AdamWAttrs, AdamWGroupAttrs, ScaleAttrs, SgdAttrs, SumOfSquaresAttrs } from '../../../ops/optim.js';
import type { AdamW8bitAttrs } from '../../../ops/optim8.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

declare module '../addon.js' {
  interface NativeAddon {
    /** Fused in-place AdamW over n float32 elements. */
    adamw(p: object, g: object, m: object, v: object, n: number, lr: number, beta1: number, beta2: number, eps: number,
      weightDecay: number, biasCorrection1: number, biasCorrection2: number): void;
    /** Fused in-place SGD (momentum buffer null when momentum is 0). */
    sgd(p: object, g: object, buf: object | null, n: number, lr: number, momentum: number, dampening: number, nesterov: boolean,
      weightDecay: number, firstStep: boolean): void;
    /** AdamW over a group: handles [p, g, m, v] per parameter, sizes and bias corrections per parameter. */
    adamwGroup(handles: object[], sizes: number[], lr: number, beta1: number, beta2: number, eps: number, weightDecay: number,
      biasCorrection1: number[], biasCorrection2: number[]): void;
    scaleInPlace(x: object, n: number, scale: number): void;
    /** Σ x² accumulated in double, deterministic. */
    sumSquares(x: object, n: number): number;
  }
}

const B = 'native';

registerKernel<AdamWAttrs>('adamwUpdate', B, ([p, g, m, v], a, be) => {
  addonOf(be).adamw(h(p), h(g), h(m), h(v), p.size, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.biasCorrection1, a.biasCorrection2);
  return [];
});

registerKernel<AdamWGroupAttrs>('adamwUpdateGroup', B, (inputs, a, be) => {
  const sizes: number[] = [];
  for (let k = 0; k < inputs.length; k += 4) sizes.push(inputs[k].size);
  addonOf(be).adamwGroup(inputs.map(h), sizes, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.biasCorrection1, a.biasCorrection2);
  return [];
});

registerKernel<SgdAttrs>('sgdUpdate', B, ([p, g, buf], a, be) => {
  addonOf(be).sgd(h(p), h(g), hOrNull(buf), p.size, a.lr, a.momentum, a.dampening, a.nesterov, a.weightDecay, a.firstStep);
  return [];
});

registerKernel<SumOfSquaresAttrs>('sumOfSquares', B, ([t], attrs, be) => {
  attrs.result = addonOf(be).sumSquares(h(t), t.size);
  return [];
});

registerKernel<ScaleAttrs>('scaleInPlace', B, ([t], { scale }, be) => {
  addonOf(be).scaleInPlace(h(t), t.size, scale);
  return [];
});

declare module '../addon.js' {
  interface NativeAddon {
    /** Fused in-place AdamW with 8-bit block-wise moments (codes as bytes, float32 absmax per block). */
    adamw8bit(p: object, g: object, mq: object, mAbsmax: object, vq: object, vAbsmax: object, codeS: object, codeU: object, n: number, blockSize: number,
      lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, biasCorrection1: number, biasCorrection2: number): void;
  }
}

registerKernel<AdamW8bitAttrs>('adamw8bitUpdate', B, ([p, g, mq, mAbs, vq, vAbs, codeS, codeU], a, be) => {
  addonOf(be).adamw8bit(h(p), h(g), h(mq), h(mAbs), h(vq), h(vAbs), h(codeS), h(codeU), a.n, a.blockSize, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.biasCorrection1, a.biasCorrection2);
  return [];
});
