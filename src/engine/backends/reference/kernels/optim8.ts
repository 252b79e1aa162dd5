/**
 * Reference kernel of the 8-bit block-wise AdamW update (ops/optim8.ts): the native kernel's
 * arithmetic in float32 (Math.fround at every step), block by block.
 */
import { registerKernel } from '../../../registry.js';
import type { AdamW8bitAttrs } from '../../../ops/optim8.js';
import { floats, ints } from '../backend.js';

const f = Math.fround;

/** Nearest code (ties to the lower one) in a sorted 256-entry map. */
function nearestCode(code: ArrayLike<number>, x: number): number {
  if (x <= code[0]!) return 0;
  if (x >= code[255]!) return 255;
  let lo = 0, hi = 255;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (code[mid]! <= x) lo = mid; else hi = mid;
  }
  return f(x - code[lo]!) <= f(code[hi]! - x) ? lo : hi;
}

/** The int32 storage of an 8-bit state tensor as its bytes (little-endian, as the native kernel sees it). */
function bytesOf(words: Int32Array, n: number): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, n);
}

registerKernel<AdamW8bitAttrs>('adamw8bitUpdate', 'reference', ([param, grad, mq, mAbs, vq, vAbs, codeS, codeU], a) => {
  const P = floats(param!, 'adamw8bitUpdate'), G = floats(grad!, 'adamw8bitUpdate');
  const MA = floats(mAbs!, 'adamw8bitUpdate'), VA = floats(vAbs!, 'adamw8bitUpdate');
  const CS = floats(codeS!, 'adamw8bitUpdate'), CU = floats(codeU!, 'adamw8bitUpdate');
  const n = a.n, bs = a.blockSize;
  const M = bytesOf(ints(mq!, 'adamw8bitUpdate'), n), V = bytesOf(ints(vq!, 'adamw8bitUpdate'), n);
  const decay = f(1 - a.lr * a.weightDecay);
  const b1 = f(a.beta1), b2 = f(a.beta2), c1 = f(1 - a.beta1), c2 = f(1 - a.beta2);
  const stepSize = f(a.lr / a.biasCorrection1), bc2Sqrt = f(Math.sqrt(a.biasCorrection2)), eps = f(a.eps);
  const mBuf = new Float32Array(bs), vBuf = new Float32Array(bs);
  for (let b = 0; b * bs < n; b++) {
    const s = b * bs, e = Math.min(n, s + bs);
    const ma = MA[b]!, va = VA[b]!;
    let mMax = 0, vMax = 0;
    for (let i = s; i < e; i++) {
      const g = G[i]!;
      const mi = f(f(b1 * f(CS[M[i]!]! * ma)) + f(c1 * g));
      const vi = f(f(b2 * f(CU[V[i]!]! * va)) + f(f(c2 * g) * g));
      mBuf[i - s] = mi;
      vBuf[i - s] = vi;
      mMax = Math.max(mMax, Math.abs(mi));
      vMax = Math.max(vMax, vi);
      const pi = f(P[i]! * decay);
      P[i] = f(pi - f(stepSize * f(mi / f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps))));
    }
    MA[b] = mMax;
    VA[b] = vMax;
    for (let i = s; i < e; i++) {
      M[i] = nearestCode(CS, mMax > 0 ? f(mBuf[i - s]! / mMax) : 0);
      const vc = nearestCode(CU, vMax > 0 ? f(vBuf[i - s]! / vMax) : 0);
      V[i] = vc === 0 && vBuf[i - s]! > 0 ? 1 : vc;
    }
  }
  return [];
});
