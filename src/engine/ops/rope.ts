/**
 * Rotary position embeddings in the Hugging Face LLaMA "rotate_half" layout. For a head vector
 * x of size D and rd = rotaryDim (the first rd dims rotate, the rest pass through), with
 * half = rd / 2 and i < half:
 *   out[i]        = x[i] · cos − x[i + half] · sin
 *   out[i + half] = x[i + half] · cos + x[i] · sin
 * where angle = pos · inv_freq[i], inv_freq[i] = 1 / theta^(2i / rd). inv_freq, the angle and
 * cos/sin are computed in float32 exactly as transformers does, so results match it to ~1e-6.
 * The backward is the inverse rotation (the same fused kernel with the sine negated).
 */
import { registerGradient } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';

export interface RopeOptions {
  /** Base of the frequencies (default 10000). */
  theta?: number;
  /** Added to every position (default 0): the index of the first token of x in the sequence,
   * e.g. the KV-cache length during generation. Also added to explicit `positions`. */
  positionOffset?: number;
  /** Explicit positions, int32 [S] (shared by the batch) or [B, S]. Default: 0..S−1. */
  positions?: Tensor;
  /** Number of leading dims of each head that rotate (even; default D). */
  rotaryDim?: number;
}

export interface RopeAttrs {
  theta: number;
  positionOffset: number;
  rotaryDim: number;
  /** Rotate by −angle (the gradient). */
  inverse: boolean;
}

/** inv_freq[i] = 1 / theta^(2i / rd) computed in float32 like transformers'
 * `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`. */
export function ropeInvFreq(rotaryDim: number, theta: number): Float32Array {
  const half = rotaryDim / 2;
  const out = new Float32Array(half);
  const base = Math.fround(theta);
  for (let i = 0; i < half; i++) {
    const e = Math.fround((2 * i) / rotaryDim);
    const p = Math.fround(Math.pow(base, e));
    out[i] = Math.fround(1 / p);
  }
  return out;
}

/** Rotary embedding of x [B, S, H, D] (H may differ between q and k). */
export function rope(x: Tensor, opts: RopeOptions = {}): Tensor {
  const op = 'rope';
  if (x.dtype === 'int32') throw new Error(`op '${op}': expected a float tensor, got ${x.describe()}`);
  if (x.rank !== 4) throw new Error(`op '${op}': input must be [B, S, H, D] (4-D), got ${formatShape(x.shape)}`);
  const [B, S, , D] = x.shape;
  const theta = opts.theta ?? 10000;
  const positionOffset = opts.positionOffset ?? 0;
  const rotaryDim = opts.rotaryDim ?? D;
  if (typeof theta !== 'number' || !Number.isFinite(theta) || theta <= 0) throw new Error(`op '${op}': theta must be a finite number > 0, got ${theta}`);
  if (!Number.isSafeInteger(positionOffset)) throw new Error(`op '${op}': positionOffset must be an integer, got ${positionOffset}`);
  if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2 !== 0 || rotaryDim > D) {
    throw new Error(`op '${op}': rotaryDim must be an even integer in [2, D=${D}] for input ${formatShape(x.shape)}, got ${rotaryDim}`);
  }
  const pos = opts.positions;
  if (pos) {
    if (pos.dtype !== 'int32') throw new Error(`op '${op}': positions must be int32, got ${pos.describe()}`);
    const ok = (pos.rank === 1 && pos.shape[0] === S) || (pos.rank === 2 && pos.shape[0] === B && pos.shape[1] === S);
    if (!ok) throw new Error(`op '${op}': positions ${formatShape(pos.shape)} must be [S] = [${S}] or [B, S] = [${B}, ${S}] for input ${formatShape(x.shape)}`);
  }
  const attrs: RopeAttrs = { theta, positionOffset, rotaryDim, inverse: false };
  return runOp<RopeAttrs>(op, pos ? [x, pos] : [x], attrs)[0];
}

registerGradient<RopeAttrs>('rope', (dys, { inputs, attrs }) => {
  const dy = dys[0];
  if (!dy) return inputs.map(() => null);
  const pos = inputs[1];
  const dx = runOp<RopeAttrs>('rope', pos ? [dy, pos] : [dy], { ...attrs, inverse: !attrs.inverse })[0];
  return pos ? [dx, null] : [dx];
});
