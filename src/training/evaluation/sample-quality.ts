/**
 * Sample quality the way masked-diffusion papers report it (MDLM, SEDD, ReMDM): generate samples
 * with the model's own sampler, then
 * - generative perplexity: the perplexity a separate causal judge model assigns to the samples'
 *   text (low = fluent under the judge; greedy or repetitive text also scores low, hence)
 * - unigram entropy: the entropy (nats) of the token distribution within each sample, averaged
 *   over samples; degenerate repetition shows as low entropy.
 * The same figures of real text (windows of the evaluation split) give the yardstick.
 */
import * as E from '../../engine/index.js';
import type { Model } from '../../nn/index.js';
import type { Tokenizer } from '../../data/index.js';
import { NoiseSchedule } from '../objectives/noise.js';
import { generate } from '../sampling/clm.js';
import { depthUnrollSample, diffusionSample } from '../sampling/diffusion.js';
import { inference } from '../sampling/common.js';
import type { SamplingOptions } from '../sampling/logits.js';

/** How a run samples: left to right, masked diffusion (steps), or the time-as-depth unroll. */
export type SamplerKind = 'clm' | 'diffusion' | 'depth';

export interface GenerateSamplesOptions extends SamplingOptions {
  sampler: SamplerKind;
  count: number;
  /** Tokens per sample. */
  length: number;
  seed?: number;
  /** Diffusion: denoising steps (default: one token per step). */
  steps?: number;
  /** Depth unroll: the noise level of each stack. */
  schedule?: NoiseSchedule | readonly number[];
  /** Diffusion and depth: the [MASK] id. */
  maskTokenId?: number;
  /** CLM: the token a document starts after (samples start a new document). */
  startTokenId?: number;
}

/**
 * `count` samples of `length` tokens each, sample c drawn with seed + c. CLM samples continue
 * `startTokenId` (not included in the result); diffusion and depth samples fill an all-masked
 * window. Temperature defaults to 1 (ancestral sampling) for every sampler.
 */
export function generateSamples(model: Model, opts: GenerateSamplesOptions): number[][] {
  const who = 'generateSamples';
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`${who}: count must be a positive integer, found ${opts.count}`);
  if (!Number.isInteger(opts.length) || opts.length < 1) throw new Error(`${who}: length must be a positive integer, found ${opts.length}`);
  const sampling: SamplingOptions = { temperature: opts.temperature ?? 1, ...(opts.topK !== undefined ? { topK: opts.topK } : {}), ...(opts.topP !== undefined ? { topP: opts.topP } : {}), excludeIds: opts.excludeIds ?? [] };
  const out: number[][] = [];
  for (let c = 0; c < opts.count; c++) {
    const seed = (opts.seed ?? 0) + c;
    if (opts.sampler === 'clm') {
      if (opts.startTokenId === undefined) throw new Error(`${who}: a causal sampler needs startTokenId (the token documents follow)`);
      const r = generate(model, [[opts.startTokenId]], { maxNewTokens: opts.length, seed, ...sampling });
      out.push(r.generated[0]!);
    } else {
      if (opts.maskTokenId === undefined) throw new Error(`${who}: the ${opts.sampler} sampler needs maskTokenId`);
      const template = new Array<number>(opts.length).fill(opts.maskTokenId);
      if (opts.sampler === 'depth') {
        if (!opts.schedule) throw new Error(`${who}: the depth unroll needs the noise schedule (one level per stack)`);
        if (opts.steps !== undefined) throw new Error(`${who}: the depth unroll takes one step per stack; leave steps out`);
        out.push(depthUnrollSample(model, { template, maskTokenId: opts.maskTokenId, seed, schedule: opts.schedule, ...sampling }).ids);
      } else {
        out.push(diffusionSample(model, { template, maskTokenId: opts.maskTokenId, seed, ...(opts.steps !== undefined ? { steps: opts.steps } : {}), ...sampling }).ids);
      }
    }
  }
  return out;
}

/** Entropy (nats) of the unigram distribution of `ids`. */
export function unigramEntropy(ids: ArrayLike<number>): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) counts.set(ids[i]!, (counts.get(ids[i]!) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / ids.length;
    h -= p * Math.log(p);
  }
  return h;
}

/** A causal judge: its model, tokenizer (none: it reads the samples' ids) and window length. */
export interface Judge {
  model: Model;
  tokenizer: Tokenizer | undefined;
  /** Longest context it is given (its training seq_len): longer texts are scored in windows. */
  seqLen: number;
  /** The token its documents follow (EOS); the first window of a text is scored after it. */
  startTokenId: number;
}

/**
 * The samples in the judge's ids: with tokenizers, each sample is decoded by the sampling run's
 * tokenizer piece by piece between its document separators (`separatorId`, its EOS) and the
 * pieces re-encoded by the judge's, joined by the judge's start token; without, the ids as they are.
 */
export function toJudgeIds(samples: readonly (readonly number[])[], judge: Judge, source: { tokenizer: Tokenizer | undefined; separatorId?: number }): number[][] {
  if (!judge.tokenizer || !source.tokenizer) {
    if (judge.tokenizer || source.tokenizer) throw new Error('judge: either both the sampling run and the judge read text (have tokenizers) or neither does');
    const V = judge.model.embedding.vocabSize;
    for (const s of samples) for (const t of s) if (t < 0 || t >= V) throw new Error(`judge: sample token ${t} is outside the judge's vocabulary [0, ${V}) (runs without a tokenizer must share their ids)`);
    return samples.map((s) => [...s]);
  }
  const tok = source.tokenizer;
  const jt = judge.tokenizer;
  return samples.map((s) => {
    const pieces: number[][] = [[]];
    for (const t of s) {
      if (source.separatorId !== undefined && t === source.separatorId) pieces.push([]);
      else pieces[pieces.length - 1]!.push(t);
    }
    const out: number[] = [];
    pieces.forEach((p, k) => {
      if (k > 0) out.push(judge.startTokenId);
      const text = tok.decode(p, { skipSpecial: true });
      if (text !== '') out.push(...jt.encode(text));
    });
    return out;
  });
}

export interface JudgeScore {
  /** exp(mean NLL per judge token): the generative perplexity. */
  perplexity: number;
  nll: number;
  /** Judge tokens scored. */
  tokens: number;
}

/**
 * The judge's perplexity of texts given as its own ids: each text follows the start token and is
 * scored in windows of at most seqLen predictions (each window conditioned on the text before it
 * within the window only).
 */
export function judgePerplexity(judge: Judge, texts: readonly (readonly number[])[]): JudgeScore {
  const S = judge.seqLen;
  if (!Number.isInteger(S) || S < 1) throw new Error(`judgePerplexity: seqLen must be a positive integer, found ${S}`);
  let nll = 0;
  let n = 0;
  inference(judge.model, () => {
    for (const t of texts) {
      const seq = [judge.startTokenId, ...t];
      for (let c = 0; c + 1 < seq.length; c += S) {
        const input = seq.slice(c, Math.min(seq.length - 1, c + S));
        const L = input.length;
        const target = seq.slice(c + 1, c + 1 + L);
        const s = E.tidy(() => {
          const x = E.tensor(Int32Array.from(input), [1, L], { dtype: 'int32', backend: judge.model.backend });
          const y = E.tensor(Int32Array.from(target), [1, L], { dtype: 'int32', backend: judge.model.backend });
          return E.crossEntropy(judge.model.forward(x).logits, y, { reduction: 'sum' }).item();
        });
        nll += s;
        n += L;
      }
    }
  });
  if (n === 0) throw new Error('judgePerplexity: the samples hold no token to score');
  return { perplexity: Math.exp(nll / n), nll: nll / n, tokens: n };
}

export interface SampleQuality {
  samples: number;
  length: number;
  generative_perplexity: number;
  judge_tokens: number;
  /** Mean over samples of each one's unigram entropy (nats), with its standard error. */
  entropy: number;
  entropy_se: number;
}

/** Generative perplexity under `judge` and mean unigram entropy of samples (ids of the sampling run). */
export function sampleQuality(samples: readonly (readonly number[])[], judge: Judge, source: { tokenizer: Tokenizer | undefined; separatorId?: number }): SampleQuality {
  if (samples.length === 0) throw new Error('sampleQuality: no samples');
  const score = judgePerplexity(judge, toJudgeIds(samples, judge, source));
  const hs = samples.map((s) => unigramEntropy(s));
  const mean = hs.reduce((a, b) => a + b, 0) / hs.length;
  const sd = hs.length > 1 ? Math.sqrt(hs.reduce((a, h) => a + (h - mean) ** 2, 0) / (hs.length - 1)) : 0;
  return {
    samples: samples.length,
    length: Math.max(...samples.map((s) => s.length)),
    generative_perplexity: score.perplexity,
    judge_tokens: score.tokens,
    entropy: mean,
    entropy_se: sd / Math.sqrt(hs.length),
  };
}
