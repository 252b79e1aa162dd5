/**
 * Causal-LM generation: greedy, temperature, top-k, top-p; seeded (token n of row b is drawn
 * with a generator keyed by (seed, b, n), so results do not depend on batch composition). The
 * model is re-run on the whole context at each step (no KV cache yet). A model with a time
 * embedding is refused: it was trained by masked diffusion, and left-to-right generation has no
 * noise ratio to give it.
 */
import * as E from '../../engine/index.js';
import type { Model } from '../../nn/index.js';
import { rngFor } from '../../data/rng.js';
import { checkSamplingOptions, sampleToken, type SamplingOptions } from './logits.js';
import { checkIds, inference } from './common.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  /** Stop a row once it produces this token (it is kept). */
  eosTokenId?: number;
  /** Context fed to the model (default: the learned position table's size, else everything). */
  maxContext?: number;
}

export interface GenerateResult {
  /** Prompt + generated tokens, per row. */
  sequences: number[][];
  /** Generated tokens only, per row. */
  generated: number[][];
}

/** Generates continuations of equal-length prompts (one row per prompt). */
export function generate(model: Model, prompts: readonly (readonly number[])[], opts: GenerateOptions): GenerateResult {
  const who = 'generate';
  if (model.timeEmbedding) throw new Error(`${who}: the model has a time embedding (time-as-input, trained by masked diffusion); causal generation has no noise ratio to give it: sample it with diffusionSample (stackwise sample --mode diffusion)`);
  checkSamplingOptions(opts, who);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new Error(`${who}: maxNewTokens must be a non-negative integer, found ${opts.maxNewTokens}`);
  if (prompts.length === 0) throw new Error(`${who}: no prompt given`);
  const L0 = prompts[0]!.length;
  if (L0 === 0) throw new Error(`${who}: prompts must hold at least one token`);
  prompts.forEach((p, b) => {
    if (p.length !== L0) throw new Error(`${who}: prompt ${b} has ${p.length} tokens but prompt 0 has ${L0}; generate equal-length prompts together (or one at a time)`);
    checkIds(p, model.embedding.vocabSize, `${who}: prompt ${b}`);
  });
  const table = model.embedding.position?.numEmbeddings;
  const maxContext = opts.maxContext ?? table ?? Infinity;
  if (!(maxContext >= 1)) throw new Error(`${who}: maxContext must be ≥ 1, found ${opts.maxContext}`);
  const B = prompts.length;
  const seqs = prompts.map((p) => [...p]);
  const done = new Array<boolean>(B).fill(false);
  const seed = opts.seed ?? 0;
  const Vn = model.embedding.vocabSize;
  inference(model, () => {
    for (let n = 0; n < opts.maxNewTokens && done.some((d) => !d); n++) {
      const L = Math.min(seqs[0]!.length, maxContext);
      const ids = new Int32Array(B * L);
      seqs.forEach((s, b) => ids.set(s.slice(s.length - L), b * L));
      const last = E.tidy(() => {
        const x = E.tensor(ids, [B, L], { dtype: 'int32', backend: model.backend });
        return E.narrow(model.forward(x).logits, 1, L - 1, 1).toArray();
      });
      for (let b = 0; b < B; b++) {
        if (done[b]) { seqs[b]!.push(seqs[b]![seqs[b]!.length - 1]!); continue; }
        const { token } = sampleToken(last.subarray(b * Vn, (b + 1) * Vn), opts, rngFor(seed, b, n));
        seqs[b]!.push(token);
        if (opts.eosTokenId !== undefined && token === opts.eosTokenId) done[b] = true;
      }
    }
  });
  // Rows that stopped early were padded with their last token to keep the batch rectangular.
  const generated = seqs.map((s, b) => {
    const g = s.slice(L0);
    const eos = opts.eosTokenId;
    if (eos !== undefined && done[b]) return g.slice(0, g.indexOf(eos) + 1);
    return g;
  });
  return { sequences: generated.map((g, b) => [...prompts[b]!, ...g]), generated };
}
