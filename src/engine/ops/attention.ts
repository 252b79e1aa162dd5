/**
 * Scaled dot-product attention in the [batch, seq, heads, head_dim] layout that the Linear
 * projections produce, with causal masking (bottom-right aligned, as with a KV cache), an
 * optional key padding mask and grouped-query attention (H query heads share H / Hkv kv heads).
 *
 * The 'attention' op has two outputs: the attention output [B, S, H, D] and, as an auxiliary
 * output for the gradient, the per-row logsumexp of the scaled, masked scores [B, H, S]
 * (-Infinity for a query row that sees no key). Its gradient is one fused op, 'attentionGrad',
 * which recomputes the probabilities from q, k and the logsumexp ('attentionGradOut', which also
 * reads the output for δ = rowsum(dOut ⊙ out); 'attentionGrad' without it recomputes the output).
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';

declareNonDifferentiable(['attentionGrad', 'attentionGradOut'], "backward kernels of 'attention' (no double backward)");

export interface AttentionOptions {
  /** Query i may attend key j only if j <= i + (Sk - S). */
  causal: boolean;
  /** [B, Sk]: nonzero (1) = attend, 0 = padding. float32/float64 or int32. */
  keyMask?: Tensor | null;
  /** Multiplies the scores q·k; default 1/sqrt(D). */
  scale?: number;
}

/** Attrs of 'attention', 'attentionGrad' and 'attentionGradOut'; inputs are [q, k, v] or
 * [q, k, v, keyMask] (attentionGrad: [q, k, v, lse, dOut] or [..., keyMask]; attentionGradOut,
 * the one the gradient uses: [q, k, v, out, lse, dOut] or [..., keyMask]; outputs [dq, dk, dv]). */
export interface AttentionAttrs {
  causal: boolean;
  scale: number;
}

/** The sizes of an attention call, read from validated shapes. */
export interface AttentionDims {
  B: number;
  S: number;
  Sk: number;
  H: number;
  Hkv: number;
  D: number;
}

/** Validates q, k, v (and keyMask) and returns the sizes; throws naming the op and the shapes. */
export function attentionDims(q: Tensor, k: Tensor, v: Tensor, keyMask?: Tensor | null): AttentionDims {
  const shapes = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}` +
    (keyMask ? `, keyMask ${formatShape(keyMask.shape)}` : '');
  const bad = (why: string) => new Error(`op 'attention': ${why} (${shapes}; expected q [B, S, H, D], k and v [B, Sk, Hkv, D], keyMask [B, Sk])`);
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw bad('q, k and v must be 4-D');
  const [B, S, H, D] = q.shape;
  const [Bk, Sk, Hkv, Dk] = k.shape;
  if (Bk !== B || v.shape[0] !== B) throw bad(`batch sizes differ: ${B}, ${Bk}, ${v.shape[0]}`);
  if (Dk !== D || v.shape[3] !== D) throw bad(`head dims differ: ${D}, ${Dk}, ${v.shape[3]}`);
  if (v.shape[1] !== Sk) throw bad(`k and v key lengths differ: ${Sk} vs ${v.shape[1]}`);
  if (v.shape[2] !== Hkv) throw bad(`k and v head counts differ: ${Hkv} vs ${v.shape[2]}`);
  if (Hkv === 0 || H % Hkv !== 0) throw bad(`query heads ${H} must be a multiple of kv heads ${Hkv}`);
  if (q.dtype !== k.dtype || q.dtype !== v.dtype || q.dtype === 'int32') {
    throw new Error(`op 'attention': expected float q, k, v of one dtype, got ${q.describe()}, ${k.describe()}, ${v.describe()}`);
  }
  if (keyMask) {
    if (keyMask.rank !== 2 || keyMask.shape[0] !== B || keyMask.shape[1] !== Sk) throw bad(`keyMask must be [${B}, ${Sk}]`);
  }
  return { B, S, Sk, H, Hkv, D };
}

/**
 * Softmax(q·kᵀ·scale + masks)·v per head. q: [B, S, H, D]; k, v: [B, Sk, Hkv, D] with H a
 * multiple of Hkv (query head h reads kv head floor(h / (H / Hkv))). With `causal`, query i sees
 * key j iff j <= i + (Sk - S); `keyMask` [B, Sk] hides the keys where it is 0. A query row that
 * sees no key outputs zeros (and gets a zero gradient). Returns [B, S, H, D].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  if (!opts || typeof opts.causal !== 'boolean') throw new Error(`op 'attention': opts.causal must be a boolean (got ${opts ? String(opts.causal) : 'no options'})`);
  const keyMask = opts.keyMask ?? null;
  const { D } = attentionDims(q, k, v, keyMask);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new Error(`op 'attention': scale must be a finite number, got ${String(scale)}`);
  const inputs = keyMask ? [q, k, v, keyMask] : [q, k, v];
  return runOp<AttentionAttrs>('attention', inputs, { causal: opts.causal, scale })[0];
}

registerGradient<AttentionAttrs>('attention', (dys, { inputs, outputs, attrs }) => {
  const dOut = dys[0];
  const [q, k, v, keyMask] = inputs;
  if (!dOut) return inputs.map(() => null);
  const ins = [q, k, v, outputs[0], outputs[1], dOut];
  if (keyMask) ins.push(keyMask);
  const [dq, dk, dv] = runOp<AttentionAttrs>('attentionGradOut', ins, attrs);
  return keyMask ? [dq, dk, dv, null] : [dq, dk, dv];
});
