/** Native kernels of the attention family: fused, tiled forward and backward (native/src/attention.cc). */
import { registerKernel } from '../../../registry.js';
import { allocOutput, type Tensor } from '../../../tensor.js';
import type { AttentionAttrs } from '../../../ops/attention.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

declare module '../addon.js' {
  interface NativeAddon {
    attentionForward(q: object, k: object, v: object, keyMask: object | null, maskIsInt: boolean, out: object, lse: object,
      B: number, S: number, Sk: number, H: number, Hkv: number, D: number, causal: boolean, scale: number): void;
    attentionBackward(q: object, k: object, v: object, out: object, lse: object, dOut: object, keyMask: object | null, maskIsInt: boolean,
      dq: object, dk: object, dv: object, B: number, S: number, Sk: number, H: number, Hkv: number, D: number, causal: boolean, scale: number): void;
    /** The micro-kernel path of the fused kernels: 'avx512' or 'avx2' (STACKWISE_SIMD forces one). */
    simdInfo(): string;
  }
}

const B_ = 'native';

function checkF32(op: string, ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'float32') throw new Error(`op '${op}': native backend computes float32, got ${t.describe()}`);
}

registerKernel<AttentionAttrs>('attention', B_, ([q, k, v, keyMask], { causal, scale }, be) => {
  checkF32('attention', [q, k, v]);
  const [B, S, H, D] = q.shape;
  const [, Sk, Hkv] = k.shape;
  const out = allocOutput(be, q.shape, 'float32');
  const lse = allocOutput(be, [B, H, S], 'float32');
  addonOf(be).attentionForward(h(q), h(k), h(v), hOrNull(keyMask), keyMask?.dtype === 'int32', h(out), h(lse),
    B, S, Sk, H, Hkv, D, causal, scale);
  return [out, lse];
});

function backward(be: Parameters<typeof addonOf>[0], q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor,
  keyMask: Tensor | undefined, { causal, scale }: AttentionAttrs): Tensor[] {
  const [B, S, H, D] = q.shape;
  const [, Sk, Hkv] = k.shape;
  const dq = allocOutput(be, q.shape, 'float32'), dk = allocOutput(be, k.shape, 'float32'), dv = allocOutput(be, v.shape, 'float32');
  addonOf(be).attentionBackward(h(q), h(k), h(v), h(out), h(lse), h(dOut), hOrNull(keyMask), keyMask?.dtype === 'int32',
    h(dq), h(dk), h(dv), B, S, Sk, H, Hkv, D, causal, scale);
  return [dq, dk, dv];
}

// The gradient of 'attention': the blocked backward needs the forward output (δ = rowsum(dO ⊙ O)).
registerKernel<AttentionAttrs>('attentionGradOut', B_, ([q, k, v, out, lse, dOut, keyMask], attrs, be) => {
  checkF32('attentionGradOut', [q, k, v, out, lse, dOut]);
  return backward(be, q, k, v, out, lse, dOut, keyMask, attrs);
});

// Without the forward output: recompute it (one forward pass), then the same backward.
registerKernel<AttentionAttrs>('attentionGrad', B_, ([q, k, v, , dOut, keyMask], attrs, be) => {
  checkF32('attentionGrad', [q, k, v, dOut]);
  const [B, S, H, D] = q.shape;
  const [, Sk, Hkv] = k.shape;
  const out = allocOutput(be, q.shape, 'float32');
  const lse = allocOutput(be, [B, H, S], 'float32');
  try {
    addonOf(be).attentionForward(h(q), h(k), h(v), hOrNull(keyMask), keyMask?.dtype === 'int32', h(out), h(lse),
      B, S, Sk, H, Hkv, D, attrs.causal, attrs.scale);
    return backward(be, q, k, v, out, lse, dOut, keyMask, attrs);
  } finally {
    out.dispose();
    lse.dispose();
  }
});
