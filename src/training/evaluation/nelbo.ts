/**
 * The negative ELBO of a masked-diffusion LM: an upper bound on −log p(x) of each window, so
 * exp(NELBO / tokens) bounds the model's perplexity from above (MDLM, SEDD and LLaDA report it).
 *
 * Continuous time (`maskedDiffusionNelbo`, MDLM eq. 10): with the absorbing process masking each
 * token independently with probability r(t) (α_t = 1 − r(t)),
 *   NELBO(x) = ∫₀¹ r′(t)/r(t) · E_{z ~ q_r(·|x)} [ Σ_{i masked in z} −log p_θ(x_i | z, t) ] dt,
 * and a change of variables makes it ∫₀¹ (1/r) E[…] dr whatever the schedule r(t) (MDLM §3.2: the
 * continuous-time bound is invariant to it); a model with a time embedding is given r, as in
 * training. Drawing r uniformly with a Bernoulli(r) mask weighted 1/r (the training estimator) has
 * infinite variance here (P(one mask) ≈ L·r, weight 1/r). Integrating r out given the number k of
 * masked positions gives the same bound with bounded terms:
 *   NELBO(x) = Σ_{k=1}^{L} (1/k) · E_{m ~ uniform k-subset, r ~ Beta(k, L−k+1)} [ Σ_{i ∈ m} −log p_θ(x_i | x_{∖m}, r) ]
 * (Σ_{|m|=k} ∫ r^{k−1}(1−r)^{L−k} dr = C(L,k)·B(k, L−k+1) = 1/k), the any-order form MDLM's
 * 'exact' selection trains with. Each window gets `samples` draws of k stratified over 1..L
 * (one jittered draw per stratum, as MDLM's low-discrepancy sampler); the standard error pairs
 * neighbouring strata (the collapsed-strata estimator: conservative).
 *
 * Depth unroll (`depthUnrollNelbo`): the bound of a time-as-depth model as it samples. The sampler
 * (sampling/diffusion.ts `depthUnrollSample`) starts from an all-masked window, runs stack k, reads
 * the head out and unmasks down to the next stack's noise level, writing the revealed tokens into
 * the residual stream. As a generative model that is a discrete-time absorbing diffusion on the
 * ladder s₀ = 1 > s₁ = levels[1] > … > s_N = 0 whose denoiser at step k is "stacks 0..k with the
 * tokens revealed so far injected"; its discrete-time NELBO (MDLM eq. 8) is
 *   E_q Σ_k (s_k − s_{k+1}) / s_k · Σ_{i masked at step k} −log p_θ^{(k)}(x_i | z_0..z_k),
 * with the forward chain's nested masks (position i masked at step k iff u_i < s_k, u_i ~ U[0,1)).
 * The sampler's confidence ordering of the unmasked positions is a heuristic on top; the bound is
 * that of random-order unmasking at the ladder's rates through the same computation.
 *
 * Every draw comes from a generator keyed by (seed, window, draw): the estimate does not depend on
 * the batch size or on what was drawn before.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { Model } from '../../nn/index.js';
import type { Tokenizer } from '../../data/index.js';
import { rngFor } from '../../data/rng.js';
import { NoiseSchedule } from '../objectives/noise.js';
import { inference } from '../sampling/common.js';

/** Which bound an estimate is of. */
export type NelboKind = 'continuous' | 'depth_unroll';

export interface NelboOptions {
  /** The [MASK] id. */
  maskTokenId: number;
  /** Monte Carlo draws per window (≥ 2, so that the standard error can be estimated). */
  samples: number;
  /** Seed of the draws (default 0). */
  seed?: number;
  /** Rows (window × draw) per forward pass (default 16). */
  batchSize?: number;
  /** Called after each forward pass with (rows done, rows in all). */
  onProgress?: (done: number, total: number) => void;
}

export interface NelboEstimate {
  bound: NelboKind;
  windows: number;
  seq_len: number;
  /** Tokens bounded: windows × seq_len. */
  tokens: number;
  /** Draws per window. */
  samples: number;
  /** The NELBO in nats per token and its Monte Carlo standard error. */
  nelbo: number;
  nelbo_se: number;
  /** exp(nelbo): an upper bound on the perplexity (in expectation), and its standard error (delta method). */
  perplexity_bound: number;
  perplexity_bound_se: number;
  /** The NELBO summed over every window (nats) and its standard error. */
  total_nats: number;
  total_nats_se: number;
}

export class NelboError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NelboError';
  }
}

const CONTINUOUS_TAG = 0x6e656c62; // 'nelb'
const DEPTH_TAG = 0x64657074; // 'dept'

function checkInputs(model: Model, ids: Int32Array, seqLen: number, opts: NelboOptions, who: string): number {
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new NelboError(`${who}: seqLen must be a positive integer, found ${seqLen}`);
  if (ids.length === 0 || ids.length % seqLen !== 0) throw new NelboError(`${who}: expected whole windows of ${seqLen} tokens, found ${ids.length} ids`);
  if (!Number.isInteger(opts.samples) || opts.samples < 2) throw new NelboError(`${who}: samples (--elbo-samples) must be an integer ≥ 2 (two draws per window at least, to estimate the standard error), found ${opts.samples}`);
  const V = model.embedding.vocabSize;
  if (!Number.isInteger(opts.maskTokenId) || opts.maskTokenId < 0 || opts.maskTokenId >= V) throw new NelboError(`${who}: mask token id ${opts.maskTokenId} is outside the vocabulary [0, ${V})`);
  if (opts.batchSize !== undefined && !(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new NelboError(`${who}: batchSize must be a positive integer, found ${opts.batchSize}`);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (v < 0 || v >= V) throw new NelboError(`${who}: token id ${v} at window ${Math.floor(i / seqLen)}, position ${i % seqLen} is outside the vocabulary [0, ${V})`);
    if (v === opts.maskTokenId) throw new NelboError(`${who}: window ${Math.floor(i / seqLen)} holds the [MASK] id ${v} at position ${i % seqLen}; the text to bound must be clean`);
  }
  return ids.length / seqLen;
}

/** Log-probabilities [rows, S, V] of a batch as one flat array (log-softmax in the engine). */
function logProbs(logits: Tensor): Float32Array | Float64Array {
  return E.logSoftmax(logits, -1).toArray() as Float32Array;
}

/** One corrupted row: the masked positions of a window (ascending). */
export interface MaskedRow {
  window: number;
  masked: number[];
  /** The noise ratio given to a time-conditioned model. */
  ratio: number;
}

/**
 * Σ_{i ∈ masked} −log p_θ(x_i | z) for each row, z = the window with its masked positions set to
 * [MASK]: one plain forward pass per batch of rows. Rows with nothing masked score 0.
 */
export function maskedRowLosses(model: Model, ids: Int32Array, seqLen: number, rows: readonly MaskedRow[], maskTokenId: number, batchSize = 16, onBatch?: (done: number) => void): Float64Array {
  const S = seqLen;
  const V = model.embedding.vocabSize;
  const out = new Float64Array(rows.length);
  const live = rows.map((_, k) => k).filter((k) => rows[k]!.masked.length > 0);
  inference(model, () => {
    for (let b0 = 0; b0 < live.length; b0 += batchSize) {
      const part = live.slice(b0, b0 + batchSize);
      const B = part.length;
      const input = new Int32Array(B * S);
      part.forEach((k, b) => {
        const r = rows[k]!;
        input.set(ids.subarray(r.window * S, (r.window + 1) * S), b * S);
        for (const i of r.masked) input[b * S + i] = maskTokenId;
      });
      const lp = E.tidy(() => {
        const x = E.tensor(input, [B, S], { dtype: 'int32', backend: model.backend });
        const time = model.timeEmbedding ? { timeRatios: part.map((k) => rows[k]!.ratio) } : {};
        return logProbs(model.forward(x, time).logits);
      });
      part.forEach((k, b) => {
        const r = rows[k]!;
        let s = 0;
        for (const i of r.masked) s -= lp[(b * S + i) * V + ids[r.window * S + i]!]!;
        out[k] = s;
      });
      onBatch?.(Math.min(live.length, b0 + B));
    }
  });
  return out;
}

/** Summary of per-window estimates X_w and their variances. */
function summarise(bound: NelboKind, windows: number, seqLen: number, samples: number, perWindow: Float64Array, perWindowVar: Float64Array): NelboEstimate {
  let total = 0;
  let variance = 0;
  for (let w = 0; w < windows; w++) {
    total += perWindow[w]!;
    variance += perWindowVar[w]!;
  }
  const tokens = windows * seqLen;
  const nelbo = total / tokens;
  const se = Math.sqrt(variance) / tokens;
  const ppl = Math.exp(nelbo);
  return {
    bound, windows, seq_len: seqLen, tokens, samples,
    nelbo, nelbo_se: se, perplexity_bound: ppl, perplexity_bound_se: ppl * se,
    total_nats: total, total_nats_se: Math.sqrt(variance),
  };
}

/**
 * Variance of the stratified mean (1/N) Σ_j y_j with one draw per stratum: neighbouring strata
 * are collapsed into groups of two (the last of three when N is odd) and each group's sample
 * variance stands for its strata's — an overestimate when the integrand varies across strata.
 */
export function collapsedStrataVariance(y: ArrayLike<number>): number {
  const N = y.length;
  if (N < 2) throw new NelboError(`collapsedStrataVariance: needs at least 2 draws, found ${N}`);
  let v = 0;
  for (let g0 = 0; g0 < N; ) {
    const n = N - g0 === 3 ? 3 : 2;
    let mean = 0;
    for (let j = g0; j < g0 + n; j++) mean += y[j]! / n;
    let ss = 0;
    for (let j = g0; j < g0 + n; j++) ss += (y[j]! - mean) ** 2;
    // n strata of width 1/N, each sampled once: Var(Σ_{j∈g} y_j / N) ≈ n · s² / N².
    v += (n * (ss / (n - 1))) / (N * N);
    g0 += n;
  }
  return v;
}

/**
 * The stratified draws of window w: the masked count k_j = 1 + ⌊L·(j + v_j)/N⌋ (L = seqLen), the
 * k_j positions with the smallest of L uniform keys, and the ratio r = the k_j-th smallest key
 * (Beta(k, L − k + 1)-distributed: r's law given that k of L positions are masked).
 */
export function continuousDraws(window: number, seqLen: number, samples: number, seed: number): MaskedRow[] {
  const rows: MaskedRow[] = [];
  for (let j = 0; j < samples; j++) {
    const rng = rngFor(seed, CONTINUOUS_TAG, window, j);
    const k = Math.min(seqLen, 1 + Math.floor((seqLen * (j + rng.nextFloat())) / samples));
    const keys = Float64Array.from({ length: seqLen }, () => rng.nextFloat());
    const order = Array.from({ length: seqLen }, (_, i) => i).sort((a, b) => keys[a]! - keys[b]! || a - b);
    rows.push({ window, masked: order.slice(0, k).sort((a, b) => a - b), ratio: keys[order[k - 1]!]! });
  }
  return rows;
}

/**
 * The continuous-time MDLM NELBO of `ids` (whole windows of `seqLen` tokens, each bounded on its
 * own, as the model was trained), estimated with `samples` stratified draws per window.
 */
export function maskedDiffusionNelbo(model: Model, ids: Int32Array, seqLen: number, opts: NelboOptions): NelboEstimate {
  const who = 'maskedDiffusionNelbo';
  const W = checkInputs(model, ids, seqLen, opts, who);
  const N = opts.samples;
  const seed = opts.seed ?? 0;
  const rows: MaskedRow[] = [];
  for (let w = 0; w < W; w++) rows.push(...continuousDraws(w, seqLen, N, seed));
  const losses = maskedRowLosses(model, ids, seqLen, rows, opts.maskTokenId, opts.batchSize ?? 16, (d) => opts.onProgress?.(d, rows.length));
  const perWindow = new Float64Array(W);
  const perWindowVar = new Float64Array(W);
  for (let w = 0; w < W; w++) {
    const y = new Float64Array(N);
    // L · CE / k: k uniform on 1..L (stratified) stands for Σ_k (1/k) E[CE | k masked].
    for (let j = 0; j < N; j++) y[j] = (seqLen * losses[w * N + j]!) / rows[w * N + j]!.masked.length;
    perWindow[w] = y.reduce((a, b) => a + b, 0) / N;
    perWindowVar[w] = collapsedStrataVariance(y);
  }
  return summarise('continuous', W, seqLen, N, perWindow, perWindowVar);
}

/**
 * The masked shares the depth unroll walks through: s₀ = 1 (it starts all-masked), s_k = the
 * ratio of stack k for k ≥ 1, s_N = 0.
 */
export function depthLadder(schedule: NoiseSchedule | readonly number[]): number[] {
  const s = schedule instanceof NoiseSchedule ? schedule : new NoiseSchedule([...schedule]);
  const ladder = [1];
  for (let k = 1; k < s.numStacks; k++) ladder.push(s.ratio(k));
  ladder.push(0);
  return ladder;
}

/**
 * One trajectory of the depth unroll per row: `u[i]` places position i on the ladder (masked at
 * step k iff u[i] < ladder[k]). Returns each row's Σ_k (s_k − s_{k+1})/s_k Σ_{masked at k} −log p.
 * The computation is the sampler's (embedding + time embedding of the masked share, stack by
 * stack, the head read out after each, revealed tokens and the new share written into the
 * residual stream).
 */
export function depthUnrollRowLosses(model: Model, ids: Int32Array, seqLen: number, rows: readonly { window: number; u: Float64Array }[], ladder: readonly number[], maskTokenId: number, batchSize = 16, onBatch?: (done: number) => void): Float64Array {
  const S = seqLen;
  const V = model.embedding.vocabSize;
  const stacks = model.rack.stacks.toArray();
  if (ladder.length !== stacks.length + 1) throw new NelboError(`depthUnrollNelbo: the ladder has ${ladder.length - 1} steps but the rack has ${stacks.length} stacks (one level per stack)`);
  const out = new Float64Array(rows.length);
  const time = model.timeEmbedding;
  inference(model, () => {
    for (let b0 = 0; b0 < rows.length; b0 += batchSize) {
      const part = rows.slice(b0, b0 + batchSize);
      const B = part.length;
      const truth = new Int32Array(B * S);
      part.forEach((r, b) => truth.set(ids.subarray(r.window * S, (r.window + 1) * S), b * S));
      const maskedAt = (k: number): Int32Array => {
        const z = truth.slice();
        part.forEach((r, b) => { for (let i = 0; i < S; i++) if (r.u[i]! < ladder[k]!) z[b * S + i] = maskTokenId; });
        return z;
      };
      const shareOf = (z: Int32Array): number[] => part.map((_, b) => {
        let n = 0;
        for (let i = 0; i < S; i++) if (z[b * S + i] === maskTokenId) n++;
        return n / S;
      });
      const sums = new Float64Array(B);
      E.tidy(() => {
        const be = model.backend;
        const idsT = (a: Int32Array): Tensor => E.tensor(a, [B, S], { dtype: 'int32', backend: be });
        const timeOf = (shares: number[]): Tensor => E.reshape(time!.forward(shares), [B, 1, time!.dModel]);
        let z = maskedAt(0);
        let shares = shareOf(z);
        let h = model.embedding.forward(idsT(z));
        if (time) h = E.add(h, timeOf(shares));
        for (let k = 0; k < stacks.length; k++) {
          h = stacks[k]!.forward(h, {});
          const c = (ladder[k]! - ladder[k + 1]!) / ladder[k]!;
          if (c > 0) {
            const lp = E.tidy(() => logProbs(model.head.forward(h)));
            for (let p = 0; p < B * S; p++) if (z[p] === maskTokenId) sums[Math.floor(p / S)]! -= c * lp[p * V + truth[p]!]!;
          }
          if (k + 1 < stacks.length) {
            const next = maskedAt(k + 1);
            h = E.add(h, E.sub(model.embedding.token.forward(idsT(next)), model.embedding.token.forward(idsT(z))));
            if (time) {
              const nextShares = shareOf(next);
              h = E.add(h, E.sub(timeOf(nextShares), timeOf(shares)));
              shares = nextShares;
            }
            z = next;
          }
        }
        return null;
      });
      part.forEach((_, b) => { out[b0 + b] = sums[b]!; });
      onBatch?.(b0 + B);
    }
  });
  return out;
}

/**
 * The NELBO of the depth unroll through `schedule` (one level per stack; see the file comment),
 * with `samples` independent draws of the unmasking order per window.
 */
export function depthUnrollNelbo(model: Model, ids: Int32Array, seqLen: number, schedule: NoiseSchedule | readonly number[], opts: NelboOptions): NelboEstimate {
  const who = 'depthUnrollNelbo';
  const W = checkInputs(model, ids, seqLen, opts, who);
  const ladder = depthLadder(schedule);
  const N = opts.samples;
  const seed = opts.seed ?? 0;
  const rows: { window: number; u: Float64Array }[] = [];
  for (let w = 0; w < W; w++) {
    for (let j = 0; j < N; j++) {
      const rng = rngFor(seed, DEPTH_TAG, w, j);
      const u = new Float64Array(seqLen);
      for (let i = 0; i < seqLen; i++) u[i] = rng.nextFloat();
      rows.push({ window: w, u });
    }
  }
  const losses = depthUnrollRowLosses(model, ids, seqLen, rows, ladder, opts.maskTokenId, opts.batchSize ?? 16, (d) => opts.onProgress?.(d, rows.length));
  const perWindow = new Float64Array(W);
  const perWindowVar = new Float64Array(W);
  for (let w = 0; w < W; w++) {
    const y = losses.subarray(w * N, (w + 1) * N);
    const mean = y.reduce((a, b) => a + b, 0) / N;
    let ss = 0;
    for (const v of y) ss += (v - mean) ** 2;
    perWindow[w] = mean;
    perWindowVar[w] = ss / (N - 1) / N;
  }
  return summarise('depth_unroll', W, seqLen, N, perWindow, perWindowVar);
}

/** Bits per byte of `nats` spread over `bytes` bytes of UTF-8 text (null without bytes). */
export function bitsPerByte(nats: number, bytes: number): number | null {
  return bytes > 0 ? nats / (Math.LN2 * bytes) : null;
}

/** UTF-8 bytes of the text `ids` stand for (special tokens, such as the EOS between documents, count 0). */
export function utf8Bytes(tokenizer: Tokenizer, ids: ArrayLike<number>): number {
  return Buffer.byteLength(tokenizer.decode(ids, { skipSpecial: true }), 'utf8');
}

/** A bound with its bits per byte (null when the text's bytes are unknown). */
export interface LabelledBound extends NelboEstimate {
  label: string;
  bits_per_byte: number | null;
  bits_per_byte_se: number | null;
}

export interface DiffusionBounds {
  samples: number;
  seed: number;
  /** The plain model: the continuous-time bound, every stack on every input. */
  continuous: LabelledBound;
  /** Time-as-depth runs: the bound of the model as it samples (the depth unroll); else null. */
  depth_unroll: LabelledBound | null;
}

export interface DiffusionBoundsOptions extends Omit<NelboOptions, 'onProgress'> {
  /** UTF-8 bytes of the windows' text (for bits per byte), or null. */
  bytes: number | null;
  /** The depth unroll's noise levels (one per stack): also bound the model as it samples. */
  depthSchedule?: NoiseSchedule | readonly number[];
  onProgress?: (bound: NelboKind, done: number, total: number) => void;
}

function labelled(e: NelboEstimate, label: string, bytes: number | null): LabelledBound {
  const bpb = bytes === null ? null : bitsPerByte(e.total_nats, bytes);
  return { label, ...e, bits_per_byte: bpb, bits_per_byte_se: bpb === null ? null : bitsPerByte(e.total_nats_se, bytes!) };
}

/** The continuous-time bound of a masked-diffusion model, and its depth unroll's when a schedule is given. */
export function diffusionBounds(model: Model, ids: Int32Array, seqLen: number, opts: DiffusionBoundsOptions): DiffusionBounds {
  const base: NelboOptions = { maskTokenId: opts.maskTokenId, samples: opts.samples, seed: opts.seed ?? 0, ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}) };
  const continuous = maskedDiffusionNelbo(model, ids, seqLen, { ...base, onProgress: (d, t) => opts.onProgress?.('continuous', d, t) });
  const depth = opts.depthSchedule
    ? depthUnrollNelbo(model, ids, seqLen, opts.depthSchedule, { ...base, onProgress: (d, t) => opts.onProgress?.('depth_unroll', d, t) })
    : null;
  return {
    samples: opts.samples,
    seed: base.seed!,
    continuous: labelled(continuous, 'plain model (continuous-time bound)', opts.bytes),
    depth_unroll: depth ? labelled(depth, 'as it samples (depth unroll through the stacks)', opts.bytes) : null,
  };
}
