/** Turning a row of logits into a token: greedy, temperature, top-k, top-p (nucleus), seeded. */
import type { Xoshiro128 } from '../../data/rng.js';

export interface SamplingOptions {
  /** 0 = greedy (argmax); default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 / undefined = all). */
  topK?: number;
  /**
   * Keep the smallest set of most likely tokens whose probability reaches p (1 / undefined = all);
   * with topK, p applies to the top-k distribution renormalised (as Hugging Face's warpers chain).
   */
  topP?: number;
  /** Token ids that are never produced (e.g. [MASK], [PAD]). */
  excludeIds?: readonly number[];
}

export function checkSamplingOptions(o: SamplingOptions, who: string): void {
  const T = o.temperature ?? 1;
  if (!(T >= 0 && Number.isFinite(T))) throw new Error(`${who}: temperature must be a finite number ≥ 0, found ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new Error(`${who}: topK must be a non-negative integer, found ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new Error(`${who}: topP must be in (0, 1], found ${o.topP}`);
}

/**
 * The probability of every token after temperature, exclusions, top-k and top-p (zeros outside
 * the kept set; renormalised). Temperature 0 puts all mass on the argmax.
 */
export function tokenProbabilities(logits: ArrayLike<number>, o: SamplingOptions = {}): Float64Array {
  checkSamplingOptions(o, 'sampling');
  const Vn = logits.length;
  const T = o.temperature ?? 1;
  const excluded = new Set(o.excludeIds ?? []);
  const probs = new Float64Array(Vn);
  let best = -1;
  for (let v = 0; v < Vn; v++) if (!excluded.has(v) && (best < 0 || logits[v]! > logits[best]!)) best = v;
  if (best < 0) throw new Error('sampling: every token is excluded');
  if (T === 0) {
    probs[best] = 1;
    return probs;
  }
  const m = logits[best]!;
  let z = 0;
  for (let v = 0; v < Vn; v++) {
    if (excluded.has(v)) continue;
    const e = Math.exp((logits[v]! - m) / T);
    probs[v] = e;
    z += e;
  }
  for (let v = 0; v < Vn; v++) probs[v]! /= z;
  const k = o.topK ?? 0;
  const p = o.topP ?? 1;
  if ((k > 0 && k < Vn) || p < 1) {
    const order = Array.from({ length: Vn }, (_, i) => i).sort((a, b) => probs[b]! - probs[a]! || a - b);
    let keep = k > 0 ? Math.min(k, Vn) : Vn;
    if (p < 1) {
      let mass = 0;
      for (let i = 0; i < keep; i++) mass += probs[order[i]!]!;
      let c = 0;
      for (let i = 0; i < keep; i++) {
        c += probs[order[i]!]!;
        if (c >= p * mass - 1e-12) { keep = i + 1; break; }
      }
    }
    let kept = 0;
    for (let i = 0; i < Vn; i++) {
      if (i < keep) kept += probs[order[i]!]!;
      else probs[order[i]!] = 0;
    }
    for (let v = 0; v < Vn; v++) probs[v]! /= kept;
  }
  return probs;
}

/** Draws a token from `probs` with one uniform number (inverse CDF; ties to the lower id). */
export function drawFrom(probs: Float64Array, rng: Xoshiro128): number {
  const u = rng.nextFloat();
  let c = 0;
  let last = -1;
  for (let v = 0; v < probs.length; v++) {
    if (probs[v]! <= 0) continue;
    c += probs[v]!;
    last = v;
    if (u < c) return v;
  }
  return last;
}

/**
 * One token from a row of logits (greedy when temperature is 0). Returns the token and its
 * probability under the model: the softmax of the logits at temperature 1 with the excluded ids
 * removed, whatever temperature, top-k or top-p chose the token. That is the confidence the
 * masked samplers rank positions by (under greedy decoding the sampling distribution is one-hot,
 * so its probability, always 1, would rank nothing).
 */
export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Xoshiro128): { token: number; prob: number } {
  const probs = tokenProbabilities(logits, o);
  const T = o.temperature ?? 1;
  const token = T === 0 ? probs.indexOf(1) : drawFrom(probs, rng);
  const plain = T === 1 && (o.topK ?? 0) === 0 && (o.topP ?? 1) === 1;
  const model = plain ? probs : tokenProbabilities(logits, { excludeIds: o.excludeIds ?? [] });
  return { token, prob: model[token]! };
}

