/**
 * MLM fill-in: every [MASK] of the input gets a token, all at once ('one-shot') or the most
 * confident one at a time ('iterative', re-running the model after each choice). A model with a
 * time embedding (trained by masked diffusion) is given the input's masked share as its noise
 * ratio at every model call, as diffusionSample does.
 */
import type { Model } from '../../nn/index.js';
import { rngFor } from '../../data/rng.js';
import { checkSamplingOptions, sampleToken, type SamplingOptions } from './logits.js';
import { checkIds, inference, logitsFor, maskedShares, row } from './common.js';

export interface FillMaskOptions extends SamplingOptions {
  maskTokenId: number;
  /** 'one-shot' (default) or 'iterative'. */
  mode?: 'one-shot' | 'iterative';
  /** Default 0: greedy. */
  temperature?: number;
  seed?: number;
}

export interface FillMaskResult {
  ids: number[];
  /** Filled positions in the order they were decided, with token and the model's probability of it (its confidence). */
  filled: { position: number; token: number; prob: number }[];
}

export function fillMask(model: Model, ids: readonly number[], opts: FillMaskOptions): FillMaskResult {
  const who = 'fillMask';
  checkSamplingOptions(opts, who);
  const Vn = model.embedding.vocabSize;
  checkIds(ids, Vn, who);
  const mask = opts.maskTokenId;
  if (!Number.isInteger(mask) || mask < 0 || mask >= Vn) throw new Error(`${who}: maskTokenId ${mask} is outside the vocabulary [0, ${Vn})`);
  const so: SamplingOptions = { ...opts, temperature: opts.temperature ?? 0, excludeIds: [...(opts.excludeIds ?? []), mask] };
  const cur = Int32Array.from(ids);
  const S = cur.length;
  const filled: FillMaskResult['filled'] = [];
  const seed = opts.seed ?? 0;
  inference(model, () => {
    for (let round = 0; ; round++) {
      const masked = [...cur.keys()].filter((i) => cur[i] === mask);
      if (masked.length === 0) return;
      const logits = logitsFor(model, cur, 1, S, maskedShares(model, cur, 1, S, mask));
      const picks = masked.map((i) => ({ position: i, ...sampleToken(row(logits, 0, i, S, Vn), so, rngFor(seed, round, i)) }));
      if ((opts.mode ?? 'one-shot') === 'one-shot') {
        for (const p of picks) { cur[p.position] = p.token; filled.push(p); }
        return;
      }
      const best = picks.reduce((a, p) => (p.prob > a.prob ? p : a));
      cur[best.position] = best.token;
      filled.push(best);
    }
  });
  return { ids: [...cur], filled };
}
