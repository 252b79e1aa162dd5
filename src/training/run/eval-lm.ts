/**
 * Language-model evaluation of a loaded run: perplexity and bits per byte on a split of the run's
 * corpus (CLM, scored by training/evaluation's evaluateTokens), or masked-token accuracy and loss
 * (MLM / masked diffusion: 15% of the positions masked, seeded; a model with a time embedding is
 * given r = 0.15 for every row). New metrics of the same pass belong in LmEvalResult.
 */
import { resolve } from 'node:path';
import * as E from '../../engine/index.js';
import type { StorageFormat } from '../../engine/index.js';
import { Xoshiro128, combineSeeds, loadCorpus, splitDocuments, type CorpusSpec } from '../../data/index.js';
import { syntheticTokenData } from '../../framework/data-source.js';
import { inference } from '../sampling/index.js';
import { diffusionBounds, documentTokens, evaluateTokens, tokenByteLengths, utf8Bytes, type DiffusionBounds } from '../evaluation/index.js';
import { noProgress, type ProgressFactory, type ProgressSink } from './errors.js';
import { depthScheduleOf, type LoadedRun } from './load-run.js';

export interface EvalOptions {
  split?: 'val' | 'test';
  /** Evaluate on these files instead of a split: UTF-8 text (one document each) or .jsonl (one per line). */
  text?: string[];
  /** Field of each JSONL record that holds the text (default "text"). */
  jsonlField?: string;
  task?: 'lm' | 'sentiment' | 'samples';
  /** Masked diffusion: Monte Carlo draws per window of the NELBO bound (default DEFAULT_ELBO_SAMPLES). */
  elboSamples?: number;
  /** Seed of the NELBO draws / the samples (default 0). */
  seed?: number;
  /** --task samples: the causal run that judges the samples, how many, their length, sampling. */
  judge?: string;
  samples?: number;
  sampleLength?: number;
  temperature?: number;
  steps?: number;
  maxTokens?: number;
  /** --task sentiment: use only this many sentences (spread evenly over the corpus). */
  maxExamples?: number;
  batchSize?: number;
  seqLen?: number;
  backend?: string;
  /** Storage of the rack's linear weights while evaluating (see LoadRunOptions.loadFormat). */
  loadFormat?: StorageFormat;
}

export interface LmEvalResult {
  task: 'lm';
  checkpoint: string;
  step: number;
  objective: string;
  split: string;
  tokens: number;
  scored: number;
  loss: number;
  perplexity: number | null;
  /**
   * Tokenizer-independent: bits per UTF-8 byte of the scored text — CLM with a tokenizer: the
   * text tokens' negative log-likelihood; masked diffusion: the NELBO bound's.
   */
  bits_per_byte: number | null;
  masked_accuracy: number | null;
  /** UTF-8 bytes of the scored text (null without a tokenizer). */
  bytes: number | null;
  /** Masked diffusion: the NELBO perplexity bound(s). */
  nelbo: DiffusionBounds | null;
}

/** Monte Carlo draws per window of the NELBO bound when --elbo-samples is not given. */
export const DEFAULT_ELBO_SAMPLES = 8;

function corpusSpec(run: LoadedRun): CorpusSpec | null {
  const c = run.data?.corpus;
  if (!c) throw new Error('the run has no data plane: nothing to evaluate on');
  if (c.kind === 'synthetic') return null;
  if (c.kind === 'files') return { kind: 'files', paths: c.paths, format: c.format, jsonlField: c.jsonl_field };
  return { kind: c.kind };
}

/** The token ids of a split of the run's corpus (documents joined with EOS, as in training). */
export function splitTokens(run: LoadedRun, split: 'val' | 'test'): Int32Array {
  const data = run.data!;
  const spec = corpusSpec(run);
  if (spec === null) {
    if (split === 'test') throw new Error('a synthetic corpus has no test split; use --split val');
    const c = data.corpus as { vocab_size: number; tokens: number; seed: number; branching: number };
    const td = syntheticTokenData({ vocab_size: c.vocab_size, tokens: c.tokens, seed: c.seed, branching: c.branching, val: data.split.val, test: data.split.test });
    if (!td.validation) throw new Error('the synthetic corpus has no validation split (data.split.val is 0)');
    return td.validation.window(0, td.validation.length);
  }
  const docs = splitDocuments(loadCorpus(spec), data.split)[split];
  if (docs.length === 0) throw new Error(`the ${split} split of the corpus is empty (data.split.${split} = ${data.split[split]})`);
  return documentTokens(run.tokenizer!, docs);
}

/**
 * A progress sink for a pass that reports (done, total) as it goes: the bar is made when the
 * first batch reports the total.
 */
export function passProgress(progress: ProgressFactory, label: string): { update: (done: number, total: number) => void; stop: () => void } {
  let bar: ProgressSink | undefined;
  return {
    update: (done, total) => {
      bar ??= progress({ total, label, unit: 'windows' });
      bar.update(done);
    },
    stop: () => bar?.stop(),
  };
}

/** Share of the positions masked (each independently) in the masked-token evaluation. */
const EVAL_MASK_RATE = 0.15;

/** Perplexity (CLM) or masked-token accuracy (MLM / diffusion) on a split. */
export function evalLm(run: LoadedRun, opts: EvalOptions = {}, progress: ProgressFactory = noProgress): LmEvalResult {
  const split = opts.split ?? 'val';
  const S = opts.seqLen ?? run.data!.seq_len;
  const B = opts.batchSize ?? run.data!.batch_size;
  const ids = splitTokens(run, split);
  const maxTokens = opts.maxTokens ?? 65_536;
  const head = { task: 'lm' as const, checkpoint: resolve(run.checkpoint), step: run.step, objective: run.objective, split };
  if (run.objective === 'clm') {
    if (ids.length < S + 1) throw new Error(`the ${split} split holds ${ids.length} tokens, fewer than one window of ${S + 1}`);
    // Without a tokenizer (raw ids of a synthetic corpus) no token stands for bytes: bits per byte is null.
    const byteLengths = run.tokenizer ? tokenByteLengths(run.tokenizer) : new Uint32Array(run.vocabSize);
    const bar = passProgress(progress, `eval ${split}`);
    const r = evaluateTokens(run.model, ids, byteLengths, { seqLen: S, batchSize: B, maxTokens, onProgress: bar.update });
    bar.stop();
    const bitsPerByte = Number.isNaN(r.bits_per_byte) ? null : r.bits_per_byte;
    return { ...head, tokens: r.scored, scored: r.scored, loss: r.loss, perplexity: r.perplexity, bits_per_byte: bitsPerByte, masked_accuracy: null, bytes: run.tokenizer ? r.bytes : null, nelbo: null };
  }
  const m = maskedAccuracy(run, ids.length > maxTokens + 1 ? ids.subarray(0, maxTokens + 1) : ids, split, S, B, progress);
  // The windows scored: ids[0 .. W·S).
  const windows = ids.subarray(0, m.tokens);
  const bytes = run.tokenizer ? utf8Bytes(run.tokenizer, windows) : null;
  const nelbo = run.objective === 'diffusion' ? diffusionBoundsOf(run, windows, S, B, bytes, opts, progress) : null;
  return { ...head, tokens: m.tokens, scored: m.scored, loss: m.loss, perplexity: null, bits_per_byte: nelbo?.continuous.bits_per_byte ?? null, masked_accuracy: m.accuracy, bytes, nelbo };
}

/** The NELBO bound of a masked-diffusion run on `windows`, and its depth unroll's for a time-as-depth run. */
function diffusionBoundsOf(run: LoadedRun, windows: Int32Array, S: number, B: number, bytes: number | null, opts: EvalOptions, progress: ProgressFactory): DiffusionBounds {
  const bars = new Map<string, ProgressSink>();
  return diffusionBounds(run.model, windows, S, {
    maskTokenId: run.maskTokenId!, samples: opts.elboSamples ?? DEFAULT_ELBO_SAMPLES, seed: opts.seed ?? 0, batchSize: B, bytes,
    // Time-as-depth runs (left→right and right→left) also get the bound of their depth unroll.
    depthSchedule: run.data?.mask?.kind === 'depth' ? depthScheduleOf(run) : undefined,
    onProgress: (bound, done, total) => {
      if (!bars.has(bound)) bars.set(bound, progress({ total, label: `NELBO ${bound}`, unit: 'rows' }));
      bars.get(bound)!.update(done);
      if (done >= total) bars.get(bound)!.stop();
    },
  });
}

/** Masked-token loss and accuracy: EVAL_MASK_RATE of the positions masked (seeded), each predicted. */
function maskedAccuracy(run: LoadedRun, ids: Int32Array, split: string, S: number, B: number, progress: ProgressFactory): { tokens: number; scored: number; loss: number; accuracy: number } {
  const windows = Math.floor(ids.length / S);
  if (windows < 1) throw new Error(`the ${split} split holds ${ids.length} tokens, fewer than one window of ${S}`);
  const mask = run.maskTokenId;
  if (mask === undefined) throw new Error('this run has no [MASK] token id; masked-token accuracy needs one');
  const rng = new Xoshiro128(combineSeeds(1234, 0xe7a1));
  let nll = 0;
  let scored = 0;
  let correct = 0;
  const bar = progress({ total: windows, label: `eval ${split}`, unit: 'windows' });
  inference(run.model, () => {
    for (let w0 = 0; w0 < windows; w0 += B) {
      const b = Math.min(B, windows - w0);
      const input = new Int32Array(b * S);
      const target = new Int32Array(b * S).fill(-100);
      for (let r = 0; r < b; r++) {
        const off = (w0 + r) * S;
        for (let i = 0; i < S; i++) {
          if (rng.nextFloat() < EVAL_MASK_RATE) {
            input[r * S + i] = mask;
            target[r * S + i] = ids[off + i]!;
          } else {
            input[r * S + i] = ids[off + i]!;
          }
        }
      }
      let n = 0;
      for (const t of target) if (t !== -100) n++;
      if (n === 0) continue;
      const [loss, hits] = E.tidy(() => {
        const x = E.tensor(input, [b, S], { dtype: 'int32', backend: run.model.backend });
        // Time-as-input: every row was corrupted at the rate EVAL_MASK_RATE, its noise ratio.
        const time = run.model.timeEmbedding ? { timeRatios: new Array<number>(b).fill(EVAL_MASK_RATE) } : {};
        const logits = run.model.forward(x, time).logits;
        const tg = E.tensor(target, [b, S], { dtype: 'int32', backend: run.model.backend });
        const l = E.crossEntropy(logits, tg, { ignoreIndex: -100 }).item();
        const V = run.vocabSize;
        const arr = logits.toArray() as Float32Array;
        let h = 0;
        for (let p = 0; p < b * S; p++) {
          if (target[p] === -100) continue;
          let best = 0;
          for (let v = 1; v < V; v++) if (arr[p * V + v]! > arr[p * V + best]!) best = v;
          if (best === target[p]) h++;
        }
        return [l, h];
      });
      nll += loss! * n;
      scored += n;
      correct += hits!;
      bar.update(w0 + b);
    }
  });
  bar.stop();
  return { tokens: windows * S, scored, loss: nll / scored, accuracy: correct / scored };
}
