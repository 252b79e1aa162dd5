// The TrainingMachine's evaluation pass: loss, NLL and perplexity of the model on the validation
// batches of the current data plane.
//
// Separate from the step loop because it is a different regime — no gradients, every module in
// eval mode (restored afterwards, whatever each one was), full logits instead of the fused
// head + loss, a fixed dropout seed — and it touches none of the machine's training state. The
// machine records the result (last evaluation, metrics log, callbacks). Package-internal.

import * as E from '../engine/index.js';
import type { Tokenizer } from '../data/index.js';
import { DataAdapter, type BatchSource, type DataBatch, type ModelAdapter } from '../framework/index.js';
import type { EvalMetrics } from './hooks.js';
import { preparedLoss } from './objectives/loss.js';
import { maskedDiffusionNelbo } from './evaluation/nelbo.js';
import { tokenByteLengths } from './evaluation/text-eval.js';

/** Draws per validation window of the NELBO bound when training.eval_elbo_samples is unset. */
export const DEFAULT_EVAL_ELBO_SAMPLES = 4;

/** UTF-8 bytes of every token id, per tokenizer (built once: a pass over the vocabulary). */
const BYTE_LENGTHS = new WeakMap<Tokenizer, Uint32Array>();

/**
 * Bytes per token id of a causal run's text (undefined: the data has no tokenizer — raw ids of a
 * synthetic corpus — or the objective is not causal, where bits per byte comes from the bound).
 */
function byteLengthsOf(data: BatchSource): Uint32Array | undefined {
  if (!(data instanceof DataAdapter) || data.plane.objective !== 'clm') return undefined;
  const tok = data.source.tokenizer;
  if (!tok) return undefined;
  let lengths = BYTE_LENGTHS.get(tok);
  if (!lengths) BYTE_LENGTHS.set(tok, (lengths = tokenByteLengths(tok)));
  return lengths;
}

/** Where the evaluation happens (the machine's position). */
export interface EvalPoint {
  step: number;
  t: number;
  phase: string;
  phaseIndex: number;
}

/**
 * @internal Scores `data`'s validation batches at `at`; undefined when there are none (or none
 * scores a position). `loss` is the objective's (weighted) loss, `nll` the unweighted one.
 */
export function evaluateModel(model: ModelAdapter, data: BatchSource, at: EvalPoint, reason: EvalMetrics['reason'], opts: { elboSamples?: number } = {}): EvalMetrics | undefined {
  const { step, t } = at;
  const batches = data.evalBatches?.(step, t) ?? [];
  if (batches.length === 0) return undefined;
  const modes = model.model.namedModules().map(([, m]) => [m, m.training] as const);
  model.model.eval();
  let lossSum = 0;
  let nllSum = 0;
  let scored = 0;
  let tokens = 0;
  // Bits per byte (as `stackwise eval` counts it): the NLL of the targets that are text (special
  // tokens such as EOS stand for no bytes) over the UTF-8 bytes they stand for.
  const byteLengths = byteLengthsOf(data);
  let textNll = 0;
  let bytes = 0;
  const backend = model.model.backend;
  try {
    for (const batch of batches) {
      if (batch.scored === 0) continue;
      const [loss, nll] = E.noGrad(() => E.tidy(() => {
        const ids = E.tensor(batch.inputIds, [batch.batch, batch.seqLen], { dtype: 'int32', backend });
        const logits = model.forward(ids, { seed: 0, step, timeRatios: batch.ratios });
        const l = preparedLoss(logits, batch).item();
        const n = batch.weights ? preparedLoss(logits, { ...batch, weights: undefined }).item() : l;
        if (byteLengths) {
          const text = new Int32Array(batch.targets.length).fill(-100);
          let count = 0;
          batch.targets.forEach((id, i) => {
            if (id === -100 || !(byteLengths[id]! > 0)) return;
            text[i] = id;
            count++;
            bytes += byteLengths[id]!;
          });
          if (count > 0) textNll += preparedLoss(logits, { targets: text, weights: undefined }).item()! * count;
        }
        return [l, n];
      }));
      lossSum += loss! * batch.scored;
      nllSum += nll! * batch.scored;
      scored += batch.scored;
      tokens += batch.tokens;
    }
  } finally {
    for (const [m, mode] of modes) m.training = mode;
  }
  if (scored === 0) return undefined;
  const nll = nllSum / scored;
  const bound = diffusionBound(model, data, batches, opts.elboSamples ?? 0);
  return {
    step,
    t,
    phase: at.phase,
    phase_index: at.phaseIndex,
    loss: lossSum / scored,
    nll,
    perplexity: Math.exp(nll),
    batches: batches.length,
    tokens,
    scored,
    reason,
    ...(byteLengths && bytes > 0 ? { bytes, bits_per_byte: textNll / (Math.LN2 * bytes) } : {}),
    ...bound,
  };
}

/**
 * Masked diffusion: the continuous-time NELBO bound of the validation windows (evaluation/nelbo.ts),
 * `samples` stratified draws per window from seed 0. The clean windows are the batches' inputs
 * with their masked positions restored from the targets.
 */
function diffusionBound(model: ModelAdapter, data: BatchSource, batches: readonly DataBatch[], samples: number): Pick<EvalMetrics, 'nelbo' | 'nelbo_se' | 'perplexity_bound' | 'elbo_samples'> {
  const spec = data.getBatchSpec();
  if (samples < 2 || spec.objective !== 'diffusion' || spec.mask_token_id === undefined || batches.length === 0) return {};
  const S = batches[0]!.seqLen;
  const clean = new Int32Array(batches.reduce((n, b) => n + b.batch * b.seqLen, 0));
  let off = 0;
  for (const b of batches) {
    for (let i = 0; i < b.inputIds.length; i++) clean[off + i] = b.targets[i] === -100 ? b.inputIds[i]! : b.targets[i]!;
    off += b.inputIds.length;
  }
  const e = maskedDiffusionNelbo(model.model, clean, S, { maskTokenId: spec.mask_token_id, samples, seed: 0, batchSize: batches[0]!.batch });
  return { nelbo: e.nelbo, nelbo_se: e.nelbo_se, perplexity_bound: e.perplexity_bound, elbo_samples: samples };
}
