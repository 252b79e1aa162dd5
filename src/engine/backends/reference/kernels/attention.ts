/** Reference kernels of the attention family: exact, row by row, float32 and float64. */
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import type { AttentionAttrs } from '../../../ops/attention.js';
import type { Backend } from '../../../backend.js';
import { data, floats } from '../backend.js';

const B_ = 'reference';

interface Layout {
  B: number; S: number; Sk: number; H: number; Hkv: number; D: number;
  q: Float32Array | Float64Array; k: Float32Array | Float64Array; v: Float32Array | Float64Array;
  mask: ArrayLike<number> | null;
}

function layout(op: string, q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | undefined): Layout {
  const [B, S, H, D] = q.shape;
  const [, Sk, Hkv] = k.shape;
  return { B, S, Sk, H, Hkv, D, q: floats(q, op), k: floats(k, op), v: floats(v, op), mask: keyMask ? data(keyMask) : null };
}

/** Calls fn(b, h, g, i, probs, lse) for every query row with its softmax probabilities over the
 * keys (0 for hidden keys; all 0 and lse = -Infinity when no key is visible). */
function forEachRow(L: Layout, { causal, scale }: AttentionAttrs,
  fn: (b: number, h: number, g: number, i: number, p: Float64Array, lse: number) => void): void {
  const { B, S, Sk, H, Hkv, D, q, k, mask } = L;
  const group = H / Hkv;
  const s = new Float64Array(Sk), p = new Float64Array(Sk);
  const visible = new Uint8Array(Sk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < S; i++) {
        const qo = ((b * S + i) * H + h) * D;
        let m = -Infinity;
        for (let j = 0; j < Sk; j++) {
          visible[j] = (!causal || j <= i + Sk - S) && (!mask || mask[b * Sk + j] !== 0) ? 1 : 0;
          if (!visible[j]) continue;
          const ko = ((b * Sk + j) * Hkv + g) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          s[j] = dot * scale;
          if (s[j] > m) m = s[j];
        }
        let sum = 0;
        for (let j = 0; j < Sk; j++) {
          p[j] = visible[j] ? Math.exp(s[j] - m) : 0;
          sum += p[j];
        }
        if (m === -Infinity) { fn(b, h, g, i, p, -Infinity); continue; }
        for (let j = 0; j < Sk; j++) p[j] /= sum;
        fn(b, h, g, i, p, m + Math.log(sum));
      }
    }
  }
}

registerKernel<AttentionAttrs>('attention', B_, ([q, k, v, keyMask], attrs, be) => {
  const L = layout('attention', q, k, v, keyMask);
  const { B, S, Sk, H, Hkv, D } = L;
  const out = allocTensor(be, q.shape, q.dtype);
  const lse = allocTensor(be, [B, H, S], q.dtype);
  const O = floats(out, 'attention'), LSE = floats(lse, 'attention'), V = L.v;
  forEachRow(L, attrs, (b, h, g, i, p, l) => {
    LSE[(b * H + h) * S + i] = l;
    const oo = ((b * S + i) * H + h) * D;
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let j = 0; j < Sk; j++) if (p[j] !== 0) acc += p[j] * V[((b * Sk + j) * Hkv + g) * D + d];
      O[oo + d] = acc;
    }
  });
  return [out, lse];
});

// Inputs: q, k, v, lse, dOut[, keyMask] → dq, dk, dv. The probabilities are recomputed
// exactly (the saved lse is only needed by the native kernel); dS = P ⊙ (dP − Σ P·dP).
registerKernel<AttentionAttrs>('attentionGrad', B_, ([q, k, v, , dOut, keyMask], attrs, be) => attentionGrad(q, k, v, dOut, keyMask, attrs, be));
// Inputs: q, k, v, out, lse, dOut[, keyMask]: the same exact gradient (out and lse unused).
registerKernel<AttentionAttrs>('attentionGradOut', B_, ([q, k, v, , , dOut, keyMask], attrs, be) => attentionGrad(q, k, v, dOut, keyMask, attrs, be));

function attentionGrad(q: Tensor, k: Tensor, v: Tensor, dOut: Tensor, keyMask: Tensor | undefined, attrs: AttentionAttrs, be: Backend): Tensor[] {
  const L = layout('attentionGrad', q, k, v, keyMask);
  const { S, Sk, H, Hkv, D } = L;
  const dq = allocTensor(be, q.shape, q.dtype), dk = allocTensor(be, k.shape, k.dtype), dv = allocTensor(be, v.shape, v.dtype);
  // Accumulate in float64 and round once at the end.
  const DQ = new Float64Array(dq.size), DK = new Float64Array(dk.size), DV = new Float64Array(dv.size);
  const DO = floats(dOut, 'attentionGrad');
  const Q = L.q, K = L.k, V = L.v, scale = attrs.scale;
  const dp = new Float64Array(Sk);
  forEachRow(L, attrs, (b, h, g, i, p, l) => {
    if (l === -Infinity) return;
    const qo = ((b * S + i) * H + h) * D;
    let delta = 0;
    for (let j = 0; j < Sk; j++) {
      dp[j] = 0;
      if (p[j] === 0) continue;
      const ko = ((b * Sk + j) * Hkv + g) * D;
      let acc = 0;
      for (let d = 0; d < D; d++) {
        acc += DO[qo + d] * V[ko + d];
        DV[ko + d] += p[j] * DO[qo + d];
      }
      dp[j] = acc;
      delta += p[j] * acc;
    }
    for (let j = 0; j < Sk; j++) {
      if (p[j] === 0) continue;
      const ds = p[j] * (dp[j] - delta) * scale;
      const ko = ((b * Sk + j) * Hkv + g) * D;
      for (let d = 0; d < D; d++) {
        DQ[qo + d] += ds * K[ko + d];
        DK[ko + d] += ds * Q[qo + d];
      }
    }
  });
  floats(dq, 'attentionGrad').set(DQ);
  floats(dk, 'attentionGrad').set(DK);
  floats(dv, 'attentionGrad').set(DV);
  return [dq, dk, dv];
}
