/**
 * Masked-diffusion sampling.
 *
 * - `diffusionSample`: start all-masked (a prompt or template may fix some tokens), run the
 *   model `steps` times; at each step every masked position proposes a token (argmax, or sampled)
 *   and the most confident proposals are committed so that the masked count follows the schedule
 *   (linear or cosine in the step), reaching zero at the last step.
 * - `depthUnrollSample` (time-as-depth): one pass through stacks 1..N. After stack k the head reads
 *   the hidden state out, and the most confident masked positions are committed until the masked
 *   share is r_{k+1} (the next stack's noise level; 0 after the last). Committed tokens are
 *   written into the residual stream (h += E[token] − E[MASK] at those positions) so later stacks
 *   see them as inputs, like the corrupted input at their training noise. Stops early when nothing
 *   is masked.
 *
 * Time-as-input: a model with a time embedding is given, at every model call, the masked share of
 * the sequence (masked positions / length) as its noise ratio r. The depth unroll embeds the
 * starting share once and, when it writes committed tokens into the residual stream (reinject),
 * also moves the time embedding to the new share (h += T(r_new) − T(r_old)), so every stack sees
 * the noise level its input now has.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { Model } from '../../nn/index.js';
import { rngFor } from '../../data/rng.js';
import { NoiseSchedule } from '../objectives/noise.js';
import { checkSamplingOptions, sampleToken, type SamplingOptions } from './logits.js';
import { checkIds, inference, logitsFor, maskedShares, row } from './common.js';

export interface MaskedStartOptions {
  maskTokenId: number;
  /** Total length (with `prompt`: the prompt, then masks). */
  length?: number;
  /** Tokens fixed at the start. */
  prompt?: readonly number[];
  /** Or: the whole starting sequence; every maskTokenId in it is generated. */
  template?: readonly number[];
}

export interface DiffusionSampleOptions extends MaskedStartOptions, SamplingOptions {
  /** Denoising steps (model calls); default: the number of masked positions (one token per step). */
  steps?: number;
  /** Masked share after step s of T: 'linear' 1 − s/T (default) or 'cosine' cos(π/2 · s/T). */
  schedule?: 'linear' | 'cosine';
  /** Default 0: greedy proposals. */
  temperature?: number;
  seed?: number;
}

export interface SampleTraceStep {
  /** Step (diffusion) or stack index (depth unroll). */
  index: number;
  /** Positions committed at this step. */
  committed: number[];
  /** Masked positions left after it. */
  remaining: number;
}

export interface DiffusionSampleResult {
  ids: number[];
  trace: SampleTraceStep[];
}

function startSequence(o: MaskedStartOptions, vocab: number, who: string): Int32Array {
  if (!Number.isInteger(o.maskTokenId) || o.maskTokenId < 0 || o.maskTokenId >= vocab) throw new Error(`${who}: maskTokenId ${o.maskTokenId} is outside the vocabulary [0, ${vocab})`);
  if (o.template) {
    if (o.prompt || o.length !== undefined) throw new Error(`${who}: give either a template or length/prompt, not both`);
    checkIds(o.template, vocab, `${who}: template`);
    return Int32Array.from(o.template);
  }
  const prompt = o.prompt ?? [];
  checkIds(prompt, vocab, `${who}: prompt`);
  const L = o.length ?? prompt.length;
  if (!Number.isInteger(L) || L < 1 || L < prompt.length) throw new Error(`${who}: length must be an integer ≥ max(1, prompt length ${prompt.length}), found ${o.length}`);
  const x = new Int32Array(L).fill(o.maskTokenId);
  x.set(prompt);
  return x;
}

function maskedPositions(x: Int32Array, mask: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i] === mask) out.push(i);
  return out;
}

/** Commits the `n` most confident proposals (ties: lower position first). */
function commit(x: Int32Array, proposals: { position: number; token: number; prob: number }[], n: number): number[] {
  const chosen = [...proposals].sort((a, b) => b.prob - a.prob || a.position - b.position).slice(0, n);
  for (const p of chosen) x[p.position] = p.token;
  return chosen.map((p) => p.position).sort((a, b) => a - b);
}

export function diffusionSample(model: Model, opts: DiffusionSampleOptions): DiffusionSampleResult {
  const who = 'diffusionSample';
  checkSamplingOptions(opts, who);
  const Vn = model.embedding.vocabSize;
  const x = startSequence(opts, Vn, who);
  const mask = opts.maskTokenId;
  const S = x.length;
  const m0 = maskedPositions(x, mask).length;
  const T = opts.steps ?? m0;
  if (!Number.isInteger(T) || T < 1) throw new Error(`${who}: steps must be a positive integer, found ${opts.steps}`);
  const shape = opts.schedule ?? 'linear';
  if (shape !== 'linear' && shape !== 'cosine') throw new Error(`${who}: schedule must be 'linear' or 'cosine', found '${String(shape)}'`);
  const so: SamplingOptions = { ...opts, temperature: opts.temperature ?? 0, excludeIds: [...(opts.excludeIds ?? []), mask] };
  const seed = opts.seed ?? 0;
  const trace: SampleTraceStep[] = [];
  inference(model, () => {
    for (let s = 1; s <= T; s++) {
      const masked = maskedPositions(x, mask);
      if (masked.length === 0) break;
      const share = s === T ? 0 : shape === 'linear' ? 1 - s / T : Math.cos((Math.PI / 2) * (s / T));
      const keep = Math.min(masked.length, Math.floor(m0 * share + 1e-9));
      const n = masked.length - keep;
      if (n === 0) { trace.push({ index: s - 1, committed: [], remaining: masked.length }); continue; }
      const logits = logitsFor(model, x, 1, S, maskedShares(model, x, 1, S, mask));
      const proposals = masked.map((i) => ({ position: i, ...sampleToken(row(logits, 0, i, S, Vn), so, rngFor(seed, s, i)) }));
      const committed = commit(x, proposals, n);
      trace.push({ index: s - 1, committed, remaining: masked.length - n });
    }
  });
  return { ids: [...x], trace };
}

export interface DepthUnrollOptions extends MaskedStartOptions, SamplingOptions {
  /** Noise level of each stack (leftmost = noisiest); one per stack of the rack. */
  schedule: NoiseSchedule | readonly number[];
  /** Write committed tokens into the residual stream (default true). */
  reinject?: boolean;
  temperature?: number;
  seed?: number;
}

export interface DepthUnrollResult extends DiffusionSampleResult {
  /** Stacks run before everything was unmasked. */
  stacksUsed: number;
}

export function depthUnrollSample(model: Model, opts: DepthUnrollOptions): DepthUnrollResult {
  const who = 'depthUnrollSample';
  checkSamplingOptions(opts, who);
  const Vn = model.embedding.vocabSize;
  const x = startSequence(opts, Vn, who);
  const mask = opts.maskTokenId;
  const S = x.length;
  const schedule = opts.schedule instanceof NoiseSchedule ? opts.schedule : new NoiseSchedule([...opts.schedule]);
  const stacks = model.rack.stacks.toArray();
  if (schedule.numStacks !== stacks.length) throw new Error(`${who}: the noise schedule has ${schedule.numStacks} levels but the rack has ${stacks.length} stacks (one level per stack)`);
  const so: SamplingOptions = { ...opts, temperature: opts.temperature ?? 0, excludeIds: [...(opts.excludeIds ?? []), mask] };
  const seed = opts.seed ?? 0;
  const reinject = opts.reinject ?? true;
  const m0 = maskedPositions(x, mask).length;
  const trace: SampleTraceStep[] = [];
  let used = 0;
  inference(model, () => E.tidy(() => {
    const be = model.backend;
    const idsT = (a: Int32Array): Tensor => E.tensor(a, [1, S], { dtype: 'int32', backend: be });
    const time = model.timeEmbedding;
    const timeOf = (share: number): Tensor => E.reshape(time!.forward([share]), [1, 1, time!.dModel]);
    let share = m0 / S;
    let h = model.embedding.forward(idsT(x));
    if (time) h = E.add(h, timeOf(share));
    for (let k = 0; k < stacks.length; k++) {
      const masked = maskedPositions(x, mask);
      if (masked.length === 0) break;
      h = stacks[k]!.forward(h, {});
      used = k + 1;
      const next = k + 1 < stacks.length ? schedule.ratio(k + 1) : 0;
      const keep = Math.min(masked.length, Math.floor(m0 * next + 1e-9));
      const n = masked.length - keep;
      if (n === 0) { trace.push({ index: k, committed: [], remaining: masked.length }); continue; }
      const logits = model.head.forward(h).toArray() as Float32Array;
      const proposals = masked.map((i) => ({ position: i, ...sampleToken(row(logits, 0, i, S, Vn), so, rngFor(seed, k, i)) }));
      const before = x.slice();
      const committed = commit(x, proposals, n);
      trace.push({ index: k, committed, remaining: masked.length - n });
      if (reinject && k + 1 < stacks.length) {
        h = E.add(h, E.sub(model.embedding.token.forward(idsT(x)), model.embedding.token.forward(idsT(before))));
        if (time) {
          const next = (masked.length - n) / S;
          h = E.add(h, E.sub(timeOf(next), timeOf(share)));
          share = next;
        }
      }
    }
    return null;
  }));
  return { ids: [...x], trace, stacksUsed: used };
}
