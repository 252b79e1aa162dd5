/**
 * The attention family:
 * - `Attention`: softmax attention with n_kv_heads (MHA / GQA / MQA), optional RoPE (HF-Llama
 *   rotate-half layout, per head on q and k), causal or bidirectional, combined with a key
 *   padding mask.
 * - `LatentAttention` (MLA, DeepSeek-V2 style): keys and values are up-projected from a shared
 *   low-rank latent c_kv = W_dkv x; optional low-rank queries; optional decoupled RoPE dims
 *   carried by one rotary key shared by all heads.
 * - `LinearAttention`: kernelised attention, linear in sequence length:
 *   out_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / φ(q_i)ᵀ Σ_j φ(k_j), over j ≤ i when causal (computed chunk by
 *   chunk with a running state), over all non-padded j when bidirectional. Feature maps:
 *   'elu1', φ(x) = elu(x) + 1 (Katharopoulos et al. 2020); 'favor', Performer's FAVOR+
 *   (Choromanski et al. 2021): positive orthogonal random features
 *   φ(x) = exp(ωx − |x|²/2) / √m of x = q·D^(-1/4) (k likewise), whose inner products estimate
 *   the softmax kernel exp(q·k/√D) without bias. ω ([m, D], rows orthogonal in blocks of D, each
 *   scaled by the norm of a Gaussian vector) is drawn once from `linear.seed`: it is fixed, not
 *   trained, and the same in every block built from one config (so copies of a block and a
 *   reloaded model compute the same function).
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { forwardSharedInput, Linear, RMSNorm, type LinearOptions } from './layers.js';
import { deriveSeed, type TensorPlacement } from './init.js';
import type { LinearAttentionConfig, MlaConfig } from './config.js';
import { ATTENTION_KINDS, type AttentionKind } from './kinds.js';

/** Per-call inputs shared by every block of a forward pass. */
export interface ForwardContext {
  /** [B, S] padding mask, 1 = real token, 0 = padding (keys with 0 get no attention). */
  keyMask?: Tensor | null;
  /** Position ids, int32 [S] or [B, S] (default 0..S-1 + positionOffset). */
  positions?: Tensor | null;
  positionOffset?: number;
  /** Seed of this forward call's dropout masks (e.g. the training step); optional. */
  seed?: number;
}

export interface AttentionOptions extends TensorPlacement {
  dModel: number;
  nHeads: number;
  nKvHeads?: number;
  headDim?: number;
  causal: boolean;
  /** RoPE base; null/undefined = no rotary embedding. */
  ropeTheta?: number | null;
  rotaryDim?: number;
  qkvBias?: boolean;
  outBias?: boolean;
  seed: number;
  /** Init of the projection weights (default normal 0.02). */
  init?: LinearOptions['init'];
  /** MLA sizes (LatentAttention only). */
  mla?: MlaConfig;
  /** Chunk length of causal linear attention (LinearAttention only), default 64. */
  chunkSize?: number;
  /** Feature map of linear attention (LinearAttention only; default elu1). */
  linear?: LinearAttentionConfig;
}

/** Common shape bookkeeping of the attention modules. */
export abstract class AttentionBase extends Module {
  abstract readonly kind: AttentionKind;
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  /** Causal (decoder) or bidirectional (encoder); may be switched at any time. */
  causal: boolean;
  readonly ropeTheta: number | null;
  readonly rotaryDim: number | undefined;

  constructor(opts: AttentionOptions) {
    super();
    this.dModel = opts.dModel;
    this.nHeads = opts.nHeads;
    this.nKvHeads = opts.nKvHeads ?? opts.nHeads;
    this.headDim = opts.headDim ?? opts.dModel / opts.nHeads;
    if (!Number.isInteger(this.headDim) || this.headDim < 1) {
      throw new Error(`attention: d_model ${opts.dModel} is not divisible by n_heads ${opts.nHeads} (pass headDim explicitly)`);
    }
    if (!Number.isInteger(this.nKvHeads) || this.nKvHeads < 1 || this.nHeads % this.nKvHeads !== 0) {
      throw new Error(`attention: n_kv_heads ${this.nKvHeads} must be a positive divisor of n_heads ${this.nHeads}`);
    }
    this.causal = opts.causal;
    this.ropeTheta = opts.ropeTheta ?? null;
    this.rotaryDim = opts.rotaryDim;
    if (this.ropeTheta !== null) {
      const rd = this.rotaryDim ?? this.headDim;
      if (rd % 2 !== 0 || rd > this.headDim) throw new Error(`attention: rotary dimension ${rd} must be even and at most head_dim ${this.headDim}`);
    }
  }

  abstract forward(x: Tensor, ctx?: ForwardContext): Tensor;

  /**
   * Forward FLOPs per token of the attention core (scores and mixing, not the projections, whose
   * matrices are counted as parameters): softmax attention 4·S·H·D (half that under a causal mask).
   */
  coreFlopsPerToken(seqLen: number): number {
    return 4 * (this.causal ? (seqLen + 1) / 2 : seqLen) * this.nHeads * this.headDim;
  }

  protected rope(x: Tensor, ctx: ForwardContext, rotaryDim?: number): Tensor {
    if (this.ropeTheta === null) return x;
    return E.rope(x, {
      theta: this.ropeTheta,
      positionOffset: ctx.positionOffset ?? 0,
      positions: ctx.positions ?? undefined,
      rotaryDim: rotaryDim ?? this.rotaryDim,
    });
  }

  protected heads(t: Tensor, n: number, d = this.headDim): Tensor {
    const [B, S] = t.shape;
    return E.reshape(t, [B, S, n, d]);
  }
}

function linearOpts(opts: AttentionOptions, name: string, bias: boolean): LinearOptions {
  return { bias, seed: deriveSeed(opts.seed, name), init: opts.init, dtype: opts.dtype, backend: opts.backend };
}

/** Softmax attention with separate q/k/v/o projections (children 'q', 'k', 'v', 'o'). */
export class Attention extends AttentionBase {
  readonly kind = 'standard' as const;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;

  constructor(opts: AttentionOptions) {
    super(opts);
    const { dModel } = opts;
    const qkvBias = opts.qkvBias ?? false;
    this.q = this.registerModule('q', new Linear(dModel, this.nHeads * this.headDim, linearOpts(opts, 'q', qkvBias)));
    this.k = this.registerModule('k', new Linear(dModel, this.nKvHeads * this.headDim, linearOpts(opts, 'k', qkvBias)));
    this.v = this.registerModule('v', new Linear(dModel, this.nKvHeads * this.headDim, linearOpts(opts, 'v', qkvBias)));
    this.o = this.registerModule('o', new Linear(this.nHeads * this.headDim, dModel, linearOpts(opts, 'o', opts.outBias ?? false)));
  }

  forward(x: Tensor, ctx: ForwardContext = {}): Tensor {
    const [B, S] = x.shape;
    const [qf, kf, vf] = forwardSharedInput(x, [this.q, this.k, this.v], ctx.seed);
    let q = this.heads(qf, this.nHeads);
    let k = this.heads(kf, this.nKvHeads);
    const v = this.heads(vf, this.nKvHeads);
    q = this.rope(q, ctx);
    k = this.rope(k, ctx);
    const out = E.attention(q, k, v, { causal: this.causal, keyMask: ctx.keyMask ?? undefined, scale: 1 / Math.sqrt(this.headDim) });
    return this.o.forward(E.reshape(out, [B, S, this.nHeads * this.headDim]), ctx.seed);
  }
}

/**
 * Multi-head latent attention. Children: 'q' (or 'q_a', 'q_norm', 'q_b' with a query rank),
 * 'kv_a' (d → kvRank + ropeDim: the latent and the shared rotary key), 'kv_norm', 'kv_b'
 * (kvRank → heads × (headDim - ropeDim) keys and heads × headDim values), 'o'.
 * headDim is the q·k dimension per head (its last ropeDim dims carry the decoupled RoPE);
 * values use headDim too. n_kv_heads does not apply (keys/values come per head from the latent).
 */
export class LatentAttention extends AttentionBase {
  readonly kind = 'mla' as const;
  readonly kvRank: number;
  readonly qRank: number;
  readonly ropeDim: number;
  readonly latentNorm: boolean;

  constructor(opts: AttentionOptions) {
    super({ ...opts, nKvHeads: opts.nHeads });
    const mla = opts.mla;
    if (!mla) throw new Error('LatentAttention: the mla option ({kvRank, qRank?, ropeDim?}) is required');
    this.kvRank = mla.kvRank;
    this.qRank = mla.qRank ?? 0;
    this.ropeDim = this.ropeTheta === null ? 0 : (mla.ropeDim ?? 0);
    this.latentNorm = mla.latentNorm ?? true;
    if (!Number.isInteger(this.kvRank) || this.kvRank < 1) throw new Error(`LatentAttention: kvRank must be a positive integer, got ${this.kvRank}`);
    if (this.ropeDim % 2 !== 0 || this.ropeDim >= this.headDim) throw new Error(`LatentAttention: ropeDim ${this.ropeDim} must be even and below head_dim ${this.headDim}`);
    const { dModel } = opts;
    const H = this.nHeads, D = this.headDim, Dn = D - this.ropeDim;
    const bias = opts.qkvBias ?? false;
    const place = { dtype: opts.dtype, backend: opts.backend };
    if (this.qRank > 0) {
      this.registerModule('q_a', new Linear(dModel, this.qRank, linearOpts(opts, 'q_a', bias)));
      if (this.latentNorm) this.registerModule('q_norm', new RMSNorm(this.qRank, place));
      this.registerModule('q_b', new Linear(this.qRank, H * D, linearOpts(opts, 'q_b', bias)));
    } else {
      this.registerModule('q', new Linear(dModel, H * D, linearOpts(opts, 'q', bias)));
    }
    this.registerModule('kv_a', new Linear(dModel, this.kvRank + this.ropeDim, linearOpts(opts, 'kv_a', bias)));
    if (this.latentNorm) this.registerModule('kv_norm', new RMSNorm(this.kvRank, place));
    this.registerModule('kv_b', new Linear(this.kvRank, H * (Dn + D), linearOpts(opts, 'kv_b', bias)));
    this.registerModule('o', new Linear(H * D, dModel, linearOpts(opts, 'o', opts.outBias ?? false)));
  }

  private child<M extends Module>(name: string): M {
    return this.getModule(name) as M;
  }

  forward(x: Tensor, ctx: ForwardContext = {}): Tensor {
    const [B, S] = x.shape;
    const H = this.nHeads, D = this.headDim, R = this.ropeDim, Dn = D - R;
    // The two projections of x: queries (or their latent) and the kv latent with the rotary key.
    const [qx, kva] = forwardSharedInput(x, [this.child<Linear>(this.qRank > 0 ? 'q_a' : 'q'), this.child<Linear>('kv_a')], ctx.seed);
    let qFlat: Tensor;
    if (this.qRank > 0) {
      let cq = qx;
      if (this.latentNorm) cq = this.child<RMSNorm>('q_norm').forward(cq);
      qFlat = this.child<Linear>('q_b').forward(cq, ctx.seed);
    } else {
      qFlat = qx;
    }
    let q = E.reshape(qFlat, [B, S, H, D]);
    // Latent and rotary key.
    let ckv = R > 0 ? E.narrow(kva, 2, 0, this.kvRank) : kva;
    if (this.latentNorm) ckv = this.child<RMSNorm>('kv_norm').forward(ckv);
    const kvb = E.reshape(this.child<Linear>('kv_b').forward(ckv, ctx.seed), [B, S, H, Dn + D]);
    let k = E.narrow(kvb, 3, 0, Dn);
    const v = E.narrow(kvb, 3, Dn, D);
    if (R > 0) {
      const qNope = E.narrow(q, 3, 0, Dn);
      const qRot = this.rope(E.narrow(q, 3, Dn, R), ctx, R);
      q = E.concat([qNope, qRot], 3);
      const kRot = this.rope(E.reshape(E.narrow(kva, 2, this.kvRank, R), [B, S, 1, R]), ctx, R);
      k = E.concat([k, E.broadcastTo(kRot, [B, S, H, R])], 3);
    } else if (this.ropeTheta !== null) {
      q = this.rope(q, ctx);
      k = this.rope(k, ctx);
    }
    const out = E.attention(q, k, v, { causal: this.causal, keyMask: ctx.keyMask ?? undefined, scale: 1 / Math.sqrt(D) });
    return this.child<Linear>('o').forward(E.reshape(out, [B, S, H * D]), ctx.seed);
  }
}

/** φ(x) = elu(x) + 1 = relu(x) + exp(min(x, 0)), positive everywhere. */
export function eluPlusOne(x: Tensor): Tensor {
  const zero = E.zeros([1], { dtype: x.dtype, backend: x.backend });
  return E.add(E.relu(x), E.exp(E.minimum(x, zero)));
}

/**
 * FAVOR+'s projection: `m` rows of dimension `d`, drawn from `seed`. Rows come in blocks of d
 * mutually orthogonal directions (Gram–Schmidt on a Gaussian matrix, in float64), each row scaled
 * by the norm of an independent Gaussian d-vector, so every row is marginally N(0, I) while rows
 * of a block are exactly orthogonal (lower variance than i.i.d. features). Row-major [m, d].
 */
export function orthogonalRandomFeatures(m: number, d: number, seed: number): Float64Array {
  if (!Number.isInteger(m) || m < 1 || !Number.isInteger(d) || d < 1) throw new Error(`orthogonalRandomFeatures: m and d must be positive integers, found ${m} and ${d}`);
  const rand = E.seededRandom(seed);
  const gauss = (): number => {
    const u1 = Math.max(rand(), 1e-300), u2 = rand();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  };
  const out = new Float64Array(m * d);
  for (let start = 0; start < m; start += d) {
    const rows = Math.min(d, m - start);
    const block: Float64Array[] = [];
    for (let r = 0; r < rows; r++) {
      let v = Float64Array.from({ length: d }, gauss);
      for (let pass = 0; pass < 2; pass++) { // twice: re-orthogonalisation keeps rounding out
        for (const u of block) {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += v[i]! * u[i]!;
          for (let i = 0; i < d; i++) v[i]! -= dot * u[i]!;
        }
      }
      let norm = 0;
      for (let i = 0; i < d; i++) norm += v[i]! * v[i]!;
      norm = Math.sqrt(norm);
      if (!(norm > 1e-8)) { r--; continue; } // a degenerate draw (probability ~0): draw again
      v = v.map((x) => x / norm);
      block.push(v);
      let chi = 0;
      for (let i = 0; i < d; i++) { const g = gauss(); chi += g * g; }
      const scale = Math.sqrt(chi);
      for (let i = 0; i < d; i++) out[(start + r) * d + i] = v[i]! * scale;
    }
  }
  return out;
}

/** Kernelised linear attention (children 'q', 'k', 'v', 'o'); see the file comment. */
export class LinearAttention extends AttentionBase {
  readonly kind = 'linear' as const;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly chunkSize: number;
  /** Added to the normaliser φ(q)·Σφ(k) (which is > 0 unless every key is padding). */
  readonly eps = 1e-6;
  readonly featureMap: 'elu1' | 'favor';
  /** Feature dimension: head_dim for elu1, the number of random features m for favor. */
  readonly features: number;
  private readonly featureSeed: number;
  /** ω per (backend, dtype), made on first use (it is a constant, never a parameter). */
  private readonly omegas = new Map<string, Tensor>();

  constructor(opts: AttentionOptions) {
    super(opts);
    const { dModel } = opts;
    const qkvBias = opts.qkvBias ?? false;
    this.chunkSize = opts.linear?.chunkSize ?? opts.chunkSize ?? 64;
    this.featureMap = opts.linear?.featureMap ?? 'elu1';
    this.features = this.featureMap === 'favor' ? (opts.linear?.features ?? 2 * this.headDim) : this.headDim;
    this.featureSeed = opts.linear?.seed ?? 0;
    if (!Number.isInteger(this.features) || this.features < 1) throw new Error(`LinearAttention: features must be a positive integer, found ${this.features}`);
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 1) throw new Error(`LinearAttention: chunk size must be a positive integer, found ${this.chunkSize}`);
    this.q = this.registerModule('q', new Linear(dModel, this.nHeads * this.headDim, linearOpts(opts, 'q', qkvBias)));
    this.k = this.registerModule('k', new Linear(dModel, this.nKvHeads * this.headDim, linearOpts(opts, 'k', qkvBias)));
    this.v = this.registerModule('v', new Linear(dModel, this.nKvHeads * this.headDim, linearOpts(opts, 'v', qkvBias)));
    this.o = this.registerModule('o', new Linear(this.nHeads * this.headDim, dModel, linearOpts(opts, 'o', opts.outBias ?? false)));
  }

  /** [B, S, Hkv, D] → [B, H, S, D], repeating each kv head for its group of query heads. */
  private expand(t: Tensor): Tensor {
    const [B, S, Hkv, D] = t.shape;
    const g = this.nHeads / Hkv;
    let x = t;
    if (g > 1) x = E.reshape(E.broadcastTo(E.reshape(t, [B, S, Hkv, 1, D]), [B, S, Hkv, g, D]), [B, S, this.nHeads, D]);
    return E.transpose(x, [0, 2, 1, 3]);
  }

  forward(x: Tensor, ctx: ForwardContext = {}): Tensor {
    const [B, S] = x.shape;
    const H = this.nHeads, D = this.headDim;
    const [qf, kf, vf] = forwardSharedInput(x, [this.q, this.k, this.v], ctx.seed);
    let q = this.heads(qf, H);
    let k = this.heads(kf, this.nKvHeads);
    let v = this.heads(vf, this.nKvHeads);
    q = this.rope(q, ctx);
    k = this.rope(k, ctx);
    let fq: Tensor, fk: Tensor; // [B, H, S, F]
    if (this.featureMap === 'favor') {
      fq = this.favor(E.transpose(q, [0, 2, 1, 3]), 'query');
      fk = this.expand(E.transpose(this.favor(E.transpose(k, [0, 2, 1, 3]), 'key'), [0, 2, 1, 3]));
    } else {
      fq = E.transpose(eluPlusOne(q), [0, 2, 1, 3]);
      fk = this.expand(eluPlusOne(k));
    }
    const vv = this.expand(v);
    if (ctx.keyMask) {
      const m = E.reshape(ctx.keyMask.dtype === fk.dtype ? ctx.keyMask : E.cast(ctx.keyMask, fk.dtype), [B, 1, S, 1]);
      fk = E.mul(fk, m); // padded keys add nothing to the sums
    }
    const out = this.causal ? this.causalPass(fq, fk, vv) : this.fullPass(fq, fk, vv);
    const merged = E.reshape(E.transpose(out, [0, 2, 1, 3]), [B, S, H * D]);
    return this.o.forward(merged, ctx.seed);
  }

  /** The projection ω on x's backend and dtype, [m, D]. */
  private omega(x: Tensor): Tensor {
    const key = `${x.backend.name}:${x.dtype}`;
    let w = this.omegas.get(key);
    if (!w) {
      const values = orthogonalRandomFeatures(this.features, this.headDim, this.featureSeed);
      w = E.keep(E.tensor(x.dtype === 'float64' ? values : Float32Array.from(values), [this.features, this.headDim], { backend: x.backend, dtype: x.dtype }));
      this.omegas.set(key, w);
    }
    return w;
  }

  /**
   * FAVOR+ features of x [B, H, S, D] → [B, H, S, m]. The stabiliser subtracted before exp (the max
   * per query row; the max over all keys of a (batch, head)) scales a query's numerator and
   * denominator alike, or every key alike, so it cancels in the ratio; it is held constant.
   */
  private favor(x: Tensor, role: 'query' | 'key'): Tensor {
    const [B, H, S] = x.shape;
    const xs = E.mulScalar(x, this.headDim ** -0.25);
    const proj = E.matmul(xs, this.omega(x), { transB: true }); // [B, H, S, m]
    const half = E.mulScalar(E.sum(E.mul(xs, xs), [3], true), 0.5); // [B, H, S, 1]
    const logits = E.sub(proj, half);
    const stab = E.noGrad(() => (role === 'query'
      ? E.max(logits, 3, true)
      : E.reshape(E.max(E.reshape(logits, [B, H, S * this.features]), 2, true), [B, H, 1, 1])));
    return E.mulScalar(E.exp(E.sub(logits, stab)), 1 / Math.sqrt(this.features));
  }

  override dispose(): void {
    for (const w of this.omegas.values()) w.dispose();
    this.omegas.clear();
    super.dispose();
  }

  /** Forward FLOPs per token of the attention core (feature maps and the linear-time sums). */
  override coreFlopsPerToken(_seqLen: number): number {
    const width = this.nHeads * this.headDim;
    // φ(k)ᵀv and φ(q)·state: 2·F·D each per head; FAVOR+ adds the projections of q and k (2·D·m each).
    return this.featureMap === 'favor' ? 8 * this.features * width : 4 * this.features * width;
  }

  private fullPass(fq: Tensor, fk: Tensor, v: Tensor): Tensor {
    const kv = E.matmul(fk, v, { transA: true }); // [B, H, D, D]
    const num = E.matmul(fq, kv); // [B, H, S, D]
    const z = E.sum(fk, [2], true); // [B, H, 1, D]
    const den = E.addScalar(E.sum(E.mul(fq, z), [3], true), this.eps); // [B, H, S, 1]
    return E.div(num, den);
  }

  private causalPass(fq: Tensor, fk: Tensor, v: Tensor): Tensor {
    const S = fq.shape[2];
    const C = Math.max(1, Math.min(this.chunkSize, S));
    const outs: Tensor[] = [];
    let state: Tensor | null = null; // Σ φ(k) vᵀ over earlier chunks, [B, H, D, D]
    let zsum: Tensor | null = null; // Σ φ(k) over earlier chunks, [B, H, 1, D]
    const masks = new Map<number, Tensor>();
    for (let start = 0; start < S; start += C) {
      const len = Math.min(C, S - start);
      let tri = masks.get(len);
      if (!tri) {
        const m = new Float32Array(len * len);
        for (let i = 0; i < len; i++) for (let j = 0; j <= i; j++) m[i * len + j] = 1;
        tri = E.tensor(m, [len, len], { backend: fq.backend, dtype: fq.dtype });
        masks.set(len, tri);
      }
      const qc = E.narrow(fq, 2, start, len), kc = E.narrow(fk, 2, start, len), vc = E.narrow(v, 2, start, len);
      const scores = E.mul(E.matmul(qc, kc, { transB: true }), tri); // [B, H, len, len]
      let num = E.matmul(scores, vc);
      let den = E.sum(scores, [3], true);
      if (state && zsum) {
        num = E.add(num, E.matmul(qc, state));
        den = E.add(den, E.sum(E.mul(qc, zsum), [3], true));
      }
      outs.push(E.div(num, E.addScalar(den, this.eps)));
      const kvc = E.matmul(kc, vc, { transA: true });
      const zc = E.sum(kc, [2], true);
      state = state ? E.add(state, kvc) : kvc;
      zsum = zsum ? E.add(zsum, zc) : zc;
    }
    return outs.length === 1 ? outs[0] : E.concat(outs, 2);
  }
}

export function makeAttention(kind: AttentionKind, opts: AttentionOptions): AttentionBase {
  switch (kind) {
    case 'standard': return new Attention(opts);
    case 'mla': return new LatentAttention(opts);
    case 'linear': return new LinearAttention(opts);
    default: throw new Error(`attention: unknown kind '${String(kind)}' (expected one of ${ATTENTION_KINDS.map((k) => `'${k}'`).join(', ')})`);
  }
}
