/**
 * `stackwise eval <run-dir|checkpoint>`: measures a trained model.
 *   --split val|test (default val): perplexity and bits per byte on that split of the run's corpus
 *     (CLM), or masked-token accuracy and loss (MLM / masked diffusion: 15% of the positions
 *     masked, seeded; a model with a time embedding is given r = 0.15 for every row). Masked
 *     diffusion also gets the NELBO perplexity bound (training/eval/nelbo.ts; --elbo-samples draws
 *     per window, --seed), and time-as-depth runs the bound of their depth unroll too.
 *   --task samples --judge <causal run>: generative perplexity and unigram entropy of samples
 *     drawn with the run's own sampler (training/eval/sample-quality.ts).
 *   --task sentiment: a downstream probe — the frozen model's mean-pooled final hidden states of
 *     the labelled sentiment sentences (Amazon / IMDB / Yelp) feed a logistic-regression head
 *     trained on the train split; accuracy on the held-out test split (and validation).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import * as E from '../engine/index.js';
import { Xoshiro128, combineSeeds, loadCorpus, splitDocuments, type CorpusSpec, type Document } from '../data/index.js';
import { syntheticTokenData } from '../framework/data-source.js';
import { inference } from '../training/sampling/index.js';
import { loadRun, depthScheduleOf, type LoadedRun } from './sample.js';
import { diffusionBounds, generateSamples, sampleQuality, utf8Bytes, type DiffusionBounds, type SampleQuality, type SamplerKind } from '../training/eval/index.js';
import { UsageError, createProgress, parseChoice, parseNonNegativeInt, parsePositiveInt, printJson, runCommand } from './output.js';
import { InvalidArgumentError } from 'commander';

function parseElboSamples(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError(`--elbo-samples: expected an integer ≥ 2 (draws per window; two at least for a standard error), found '${value}'`);
  return n;
}

function parseTemperature(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`--temperature: expected a number ≥ 0, found '${value}'`);
  return n;
}

export interface EvalOptions {
  split?: 'val' | 'test';
  task?: 'lm' | 'sentiment' | 'samples';
  /** Masked diffusion: Monte Carlo draws per window of the NELBO bound (default 8). */
  elboSamples?: number;
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
  json?: boolean;
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
  masked_accuracy: number | null;
  /** UTF-8 bytes of the scored text (null without a tokenizer) and bits per byte (CLM: exact; diffusion: the NELBO bound's). */
  bytes: number | null;
  bits_per_byte: number | null;
  /** Masked diffusion: the NELBO perplexity bound(s). */
  nelbo: DiffusionBounds | null;
}

export interface SentimentEvalResult {
  task: 'sentiment';
  checkpoint: string;
  step: number;
  method: 'probe';
  features: number;
  train_examples: number;
  val_examples: number;
  test_examples: number;
  train_accuracy: number;
  val_accuracy: number;
  test_accuracy: number;
  majority_baseline: number;
}

function corpusSpec(run: LoadedRun): CorpusSpec | null {
  const c = run.phase.data?.corpus;
  if (!c) throw new Error('the run has no data plane: nothing to evaluate on');
  if (c.kind === 'synthetic') return null;
  if (c.kind === 'files') return { kind: 'files', paths: c.paths, format: c.format, jsonlField: c.jsonl_field };
  return { kind: c.kind };
}

/** The token ids of a split of the run's corpus (documents joined with EOS, as in training). */
function splitTokens(run: LoadedRun, split: 'val' | 'test'): Int32Array {
  const data = run.phase.data!;
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
  const tok = run.tokenizer!;
  const out: number[] = [];
  for (const d of docs) {
    for (const id of tok.encode(d.text)) out.push(id);
    out.push(tok.special.EOS);
  }
  return Int32Array.from(out);
}

/** Share of the positions masked (each independently) in the masked-token evaluation. */
const EVAL_MASK_RATE = 0.15;

/** Perplexity (CLM) or masked-token accuracy (MLM / diffusion) on a split. */
export function evalLm(run: LoadedRun, opts: EvalOptions, progressOn: boolean): LmEvalResult {
  const split = opts.split ?? 'val';
  const S = opts.seqLen ?? run.phase.data!.seq_len;
  const B = opts.batchSize ?? run.phase.data!.batch_size;
  let ids = splitTokens(run, split);
  const maxTokens = opts.maxTokens ?? 65_536;
  if (ids.length > maxTokens + 1) ids = ids.subarray(0, maxTokens + 1);
  const clm = run.objective === 'clm';
  const windows = Math.floor((ids.length - (clm ? 1 : 0)) / S);
  if (windows < 1) throw new Error(`the ${split} split holds ${ids.length} tokens, fewer than one window of ${S + (clm ? 1 : 0)}`);
  const mask = run.maskTokenId;
  if (!clm && mask === undefined) throw new Error('this run has no [MASK] token id; masked-token accuracy needs one');
  const rng = new Xoshiro128(combineSeeds(1234, 0xe7a1));
  let nll = 0;
  let scored = 0;
  let correct = 0;
  const progress = createProgress({ total: windows, label: `eval ${split}`, unit: 'windows', enabled: progressOn });
  inference(run.model, () => {
    for (let w0 = 0; w0 < windows; w0 += B) {
      const b = Math.min(B, windows - w0);
      const input = new Int32Array(b * S);
      const target = new Int32Array(b * S).fill(-100);
      for (let r = 0; r < b; r++) {
        const off = (w0 + r) * S;
        for (let i = 0; i < S; i++) {
          if (clm) {
            input[r * S + i] = ids[off + i]!;
            target[r * S + i] = ids[off + i + 1]!;
          } else if (rng.nextFloat() < EVAL_MASK_RATE) {
            input[r * S + i] = mask!;
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
        let h = 0;
        if (!clm) {
          const V = run.vocabSize;
          const arr = logits.toArray() as Float32Array;
          for (let p = 0; p < b * S; p++) {
            if (target[p] === -100) continue;
            let best = 0;
            for (let v = 1; v < V; v++) if (arr[p * V + v]! > arr[p * V + best]!) best = v;
            if (best === target[p]) h++;
          }
        }
        return [l, h];
      });
      nll += loss! * n;
      scored += n;
      correct += hits!;
      progress.update(w0 + b);
    }
  });
  progress.stop();
  const mean = nll / scored;
  // The text scored: targets ids[1 .. W·S] (CLM) or the windows ids[0 .. W·S) (masked).
  const text = clm ? ids.subarray(1, windows * S + 1) : ids.subarray(0, windows * S);
  const bytes = run.tokenizer ? utf8Bytes(run.tokenizer, text) : null;
  const nelbo = run.objective === 'diffusion'
    ? diffusionBounds(run.model, ids.subarray(0, windows * S), S, {
      maskTokenId: mask!, samples: opts.elboSamples ?? DEFAULT_ELBO_SAMPLES, seed: opts.seed ?? 0, batchSize: B, bytes,
      // Time-as-depth runs (left→right and right→left) also get the bound of their depth unroll.
      depthSchedule: run.phase.data?.mask?.kind === 'depth' ? depthScheduleOf(run) : undefined,
      onProgress: progressOn ? progressLines() : undefined,
    })
    : null;
  return {
    task: 'lm',
    checkpoint: resolve(run.checkpoint),
    step: run.step,
    objective: run.objective,
    split,
    tokens: windows * S,
    scored,
    loss: mean,
    perplexity: clm ? Math.exp(mean) : null,
    masked_accuracy: clm ? null : correct / scored,
    bytes,
    bits_per_byte: clm && bytes ? (mean * scored) / (Math.LN2 * bytes) : nelbo?.continuous.bits_per_byte ?? null,
    nelbo,
  };
}

const DEFAULT_ELBO_SAMPLES = 8;

/** One progress bar per bound. */
function progressLines(): (bound: string, done: number, total: number) => void {
  const bars = new Map<string, ReturnType<typeof createProgress>>();
  return (bound, done, total) => {
    if (!bars.has(bound)) bars.set(bound, createProgress({ total, label: `NELBO ${bound}`, unit: 'rows', enabled: true }));
    bars.get(bound)!.update(done);
    if (done >= total) bars.get(bound)!.stop();
  };
}

/**
 * Mean-pooled final hidden states of the documents (truncated to seqLen tokens), in batches of
 * similar length, right-padded; padded keys are masked out and left out of the mean.
 */
function features(run: LoadedRun, docs: readonly Document[], seqLen: number, onBatch: (done: number) => void): Float64Array[] {
  const tok = run.tokenizer;
  if (!tok) throw new Error('--task sentiment needs a model trained with a text tokenizer (not a synthetic corpus)');
  const encoded = docs.map((doc) => {
    let ids = Array.from(tok.encode(doc.text));
    if (ids.length === 0) ids = [tok.special.EOS];
    return ids.length > seqLen ? ids.slice(0, seqLen) : ids;
  });
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.length - encoded[b]!.length || a - b);
  const out = new Array<Float64Array>(docs.length);
  const B = 32;
  const pad = tok.special.PAD;
  let done = 0;
  inference(run.model, () => {
    for (let i0 = 0; i0 < order.length; i0 += B) {
      const rows = order.slice(i0, i0 + B);
      const S = Math.max(...rows.map((r) => encoded[r]!.length));
      const ids = new Int32Array(rows.length * S).fill(pad);
      const mask = new Int32Array(rows.length * S);
      rows.forEach((r, b) => { const e = encoded[r]!; ids.set(e, b * S); mask.fill(1, b * S, b * S + e.length); });
      const h = E.tidy(() => {
        const x = E.tensor(ids, [rows.length, S], { dtype: 'int32', backend: run.model.backend });
        const m = E.tensor(mask, [rows.length, S], { dtype: 'int32', backend: run.model.backend });
        // Time-as-input: the sentences are clean (nothing masked), noise ratio 0.
        const time = run.model.timeEmbedding ? { timeRatios: new Array<number>(rows.length).fill(0) } : {};
        const hs = run.model.forward(x, { outputHiddenStates: true, attentionMask: m, ...time }).hiddenStates!;
        return hs[hs.length - 1]!.toArray();
      }) as ArrayLike<number>;
      const D = h.length / (rows.length * S);
      rows.forEach((r, b) => {
        const n = encoded[r]!.length;
        const f = new Float64Array(D);
        for (let i = 0; i < n; i++) for (let d = 0; d < D; d++) f[d]! += h[(b * S + i) * D + d]! / n;
        out[r] = f;
      });
      done += rows.length;
      onBatch(done);
    }
  });
  return out;
}

/** Logistic regression (full-batch gradient descent with L2, standardized features). */
function trainProbe(x: Float64Array[], y: number[], epochs = 300, lr = 0.5, l2 = 1e-2): (f: Float64Array) => number {
  const D = x[0]!.length;
  const mu = new Float64Array(D);
  const sd = new Float64Array(D);
  for (const f of x) for (let d = 0; d < D; d++) mu[d]! += f[d]! / x.length;
  for (const f of x) for (let d = 0; d < D; d++) sd[d]! += (f[d]! - mu[d]!) ** 2 / x.length;
  for (let d = 0; d < D; d++) sd[d] = Math.sqrt(sd[d]!) + 1e-6;
  const z = x.map((f) => f.map((v, d) => (v - mu[d]!) / sd[d]!));
  const w = new Float64Array(D);
  let bias = 0;
  for (let e = 0; e < epochs; e++) {
    const gw = new Float64Array(D);
    let gb = 0;
    z.forEach((f, i) => {
      let s = bias;
      for (let d = 0; d < D; d++) s += w[d]! * f[d]!;
      const p = 1 / (1 + Math.exp(-s));
      const g = p - y[i]!;
      for (let d = 0; d < D; d++) gw[d]! += g * f[d]!;
      gb += g;
    });
    for (let d = 0; d < D; d++) w[d]! -= lr * (gw[d]! / z.length + l2 * w[d]!);
    bias -= (lr * gb) / z.length;
  }
  return (f: Float64Array) => {
    let s = bias;
    for (let d = 0; d < D; d++) s += (w[d]! * (f[d]! - mu[d]!)) / sd[d]!;
    return s > 0 ? 1 : 0;
  };
}

export function evalSentiment(run: LoadedRun, opts: EvalOptions, progressOn: boolean): SentimentEvalResult {
  let docs = loadCorpus({ kind: 'sentiment' }).filter((d) => d.label === 0 || d.label === 1);
  if (opts.maxExamples !== undefined && opts.maxExamples < docs.length) {
    const stride = docs.length / opts.maxExamples;
    docs = Array.from({ length: opts.maxExamples }, (_, i) => docs[Math.floor(i * stride)]!);
  }
  const split = splitDocuments(docs, { val: 0.15, test: 0.15, seed: 0 });
  const seqLen = opts.seqLen ?? run.phase.data?.seq_len ?? 128;
  const total = docs.length;
  const progress = createProgress({ total, label: 'features', unit: 'sentences', enabled: progressOn });
  let base = 0;
  const feats = (part: Document[]) => {
    const f = features(run, part, seqLen, (n) => progress.update(base + n));
    base += part.length;
    return f;
  };
  const trX = feats(split.train);
  const vaX = feats(split.val);
  const teX = feats(split.test);
  progress.stop();
  const trY = split.train.map((d) => d.label!);
  const predict = trainProbe(trX, trY);
  const acc = (x: Float64Array[], part: Document[]) => (part.length === 0 ? NaN : x.filter((f, i) => predict(f) === part[i]!.label).length / part.length);
  const positives = trY.filter((v) => v === 1).length / Math.max(1, trY.length);
  const majority = positives >= 0.5 ? 1 : 0;
  return {
    task: 'sentiment',
    checkpoint: resolve(run.checkpoint),
    step: run.step,
    method: 'probe',
    features: trX[0]?.length ?? 0,
    train_examples: split.train.length,
    val_examples: split.val.length,
    test_examples: split.test.length,
    train_accuracy: acc(trX, split.train),
    val_accuracy: acc(vaX, split.val),
    test_accuracy: acc(teX, split.test),
    majority_baseline: split.test.filter((d) => d.label === majority).length / Math.max(1, split.test.length),
  };
}

export interface SamplesEvalResult extends SampleQuality {
  task: 'samples';
  checkpoint: string;
  step: number;
  sampler: SamplerKind;
  /** Diffusion: denoising steps (null: one token per step); depth: the stacks. */
  steps: number | null;
  temperature: number;
  judge: string;
  /** The same figures for windows of real text (the split), as the yardstick. */
  reference: SampleQuality & { split: string };
}

/** The run's own sampler: causal, the depth unroll (time-as-depth), or masked-diffusion steps. */
function samplerOf(run: LoadedRun): SamplerKind {
  if (run.objective === 'clm') return 'clm';
  if (run.objective === 'diffusion') return run.phase.data?.mask?.kind === 'depth' ? 'depth' : 'diffusion';
  throw new Error('--task samples: an MLM run is not a generative model; give a causal or masked-diffusion run');
}

/**
 * --task samples: N samples with the run's own sampler (causal: left to right after EOS;
 * time-as-depth: the depth unroll; other diffusion runs: masked-diffusion steps), judged by a causal run.
 */
export function evalSamples(run: LoadedRun, opts: EvalOptions): SamplesEvalResult {
  if (!opts.judge) throw new UsageError('--task samples needs --judge <causal run folder or checkpoint>');
  if (!run.tokenizer) throw new Error('--task samples needs a run trained on text (with a tokenizer): the judge reads the samples as text');
  const sampler = samplerOf(run);
  if (sampler !== 'diffusion' && opts.steps !== undefined) throw new UsageError(`--steps applies to masked-diffusion sampling; this run samples with the ${sampler === 'clm' ? 'causal' : 'depth-unroll'} sampler`);
  const judgeRun = loadRun(opts.judge, opts.backend ? { backend: opts.backend } : {});
  try {
    if (judgeRun.objective !== 'clm' || judgeRun.model.timeEmbedding) throw new Error(`--judge ${opts.judge}: the judge must be a causal LM run (its objective is ${judgeRun.objective})`);
    if (!judgeRun.tokenizer) throw new Error(`--judge ${opts.judge}: the judge must read text (it has no tokenizer)`);
    const judge = { model: judgeRun.model, tokenizer: judgeRun.tokenizer, seqLen: judgeRun.phase.data!.seq_len, startTokenId: judgeRun.tokenizer.special.EOS };
    const count = opts.samples ?? 16;
    const length = opts.sampleLength ?? run.phase.data!.seq_len;
    const temperature = opts.temperature ?? 1;
    const tok = run.tokenizer;
    const special = [tok.special.PAD, tok.special.MASK, tok.special.CLS, tok.special.SEP, tok.special.BOS].filter((x, i, a) => x !== tok.special.EOS && a.indexOf(x) === i);
    const samples = generateSamples(run.model, {
      sampler, count, length, temperature, seed: opts.seed ?? 0, excludeIds: special,
      ...(sampler === 'clm' ? { startTokenId: tok.special.EOS } : { maskTokenId: run.maskTokenId! }),
      ...(sampler === 'depth' ? { schedule: depthScheduleOf(run) } : {}),
      ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
    });
    const source = { tokenizer: tok, separatorId: tok.special.EOS };
    const split = opts.split ?? 'val';
    const ids = splitTokens(run, split);
    if (ids.length < count * length) throw new Error(`the ${split} split holds ${ids.length} tokens, fewer than ${count} reference windows of ${length}`);
    const stride = Math.floor(ids.length / count);
    const real = Array.from({ length: count }, (_, c) => [...ids.subarray(c * stride, c * stride + length)]);
    return {
      task: 'samples', checkpoint: resolve(run.checkpoint), step: run.step, sampler,
      steps: sampler === 'diffusion' ? (opts.steps ?? null) : sampler === 'depth' ? run.model.rack.numStacks : null,
      temperature, judge: resolve(judgeRun.checkpoint),
      ...sampleQuality(samples, judge, source),
      reference: { split, ...sampleQuality(real, judge, source) },
    };
  } finally {
    judgeRun.model.dispose();
  }
}

export function runEval(target: string, opts: EvalOptions, progressOn = false): LmEvalResult | SentimentEvalResult | SamplesEvalResult {
  if (opts.task === 'sentiment' && opts.split !== undefined) throw new UsageError('--split applies to the language-model evaluation; --task sentiment uses its own train/val/test split of the sentiment sentences');
  if (opts.task !== 'samples' && (opts.judge !== undefined || opts.samples !== undefined || opts.sampleLength !== undefined || opts.temperature !== undefined || opts.steps !== undefined)) {
    throw new UsageError('--judge, --samples, --sample-length, --temperature and --steps apply to --task samples');
  }
  if (opts.task !== undefined && opts.task !== 'lm' && opts.elboSamples !== undefined) throw new UsageError('--elbo-samples applies to the language-model evaluation (--task lm) of a masked-diffusion run');
  const run = loadRun(target, opts.backend ? { backend: opts.backend } : {});
  try {
    if (opts.elboSamples !== undefined && run.objective !== 'diffusion') throw new UsageError(`--elbo-samples: the NELBO bound is for masked-diffusion runs; this run's objective is ${run.objective}`);
    if (opts.task === 'samples') return evalSamples(run, opts);
    return opts.task === 'sentiment' ? evalSentiment(run, opts, progressOn) : evalLm(run, opts, progressOn);
  } finally {
    run.model.dispose();
  }
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained model: perplexity and bits per byte (CLM), masked-token accuracy (MLM) and the NELBO perplexity bound (masked diffusion) on a split, a downstream sentiment probe, or sample quality under a causal judge')
    .argument('<run-dir|checkpoint>', 'run folder (newest checkpoint) or checkpoint folder')
    .option('--split <split>', 'val | test (default val): the split of the run\'s corpus', parseChoice(['val', 'test'] as const))
    .option('--task <task>', 'lm (default) | sentiment: probe a classification head on the frozen model\'s mean-pooled features | samples: generative perplexity under --judge and entropy of samples', parseChoice(['lm', 'sentiment', 'samples'] as const))
    .option('--elbo-samples <n>', 'masked diffusion: Monte Carlo draws per window of the NELBO perplexity bound (default 8; ≥ 2)', parseElboSamples)
    .option('--seed <n>', 'seed of the NELBO draws / the samples (default 0)', parseNonNegativeInt)
    .option('--judge <run>', '--task samples: a causal LM run folder or checkpoint that scores the samples')
    .option('--samples <n>', '--task samples: how many samples (default 16)', parsePositiveInt)
    .option('--sample-length <n>', '--task samples: tokens per sample (default: the run\'s seq_len)', parsePositiveInt)
    .option('--temperature <T>', '--task samples: sampling temperature (default 1: ancestral sampling)', parseTemperature)
    .option('--steps <n>', '--task samples: denoising steps of masked-diffusion sampling (default: one token per step)', parsePositiveInt)
    .option('--max-tokens <n>', 'evaluate at most n tokens of the split (default 65536)', parsePositiveInt)
    .option('--max-examples <n>', '--task sentiment: use only n of the 3000 sentences (spread over the corpus; quicker)', parsePositiveInt)
    .option('--batch-size <n>', 'windows per forward pass (default: the run\'s batch_size)', parsePositiveInt)
    .option('--seq-len <n>', 'window length (default: the run\'s seq_len)', parsePositiveInt)
    .option('--backend <name>', 'engine backend (default: native when built)')
    .option('--json', 'print one JSON object with the result')
    .addHelpText('after', '\nExit codes: 0 ok, 1 missing/corrupt run, tokenizer not matching the model, 2 usage error.')
    .action(async (target: string, opts: EvalOptions) => {
      await runCommand('eval', opts, () => {
        const r = runEval(target, opts, !opts.json);
        if (opts.json) { printJson({ ok: true, ...r }); return; }
        if (r.task === 'lm') {
          const what = r.perplexity !== null ? `perplexity ${r.perplexity.toFixed(2)}` : `masked-token accuracy ${(100 * r.masked_accuracy!).toFixed(2)}%`;
          const bpb = r.perplexity !== null && r.bits_per_byte !== null ? `, ${r.bits_per_byte.toFixed(4)} bits per byte` : '';
          process.stdout.write(`${r.split}: loss ${r.loss.toFixed(4)}, ${what}${bpb} (${r.scored} scored tokens; ${r.objective}; step ${r.step})\n`);
          for (const b of r.nelbo ? [r.nelbo.continuous, r.nelbo.depth_unroll] : []) {
            if (!b) continue;
            const bits = b.bits_per_byte !== null ? `, ${b.bits_per_byte.toFixed(4)} ± ${b.bits_per_byte_se!.toFixed(4)} bits per byte` : '';
            process.stdout.write(`  NELBO, ${b.label}: ${b.nelbo.toFixed(4)} ± ${b.nelbo_se.toFixed(4)} nats/token, perplexity ≤ ${b.perplexity_bound.toFixed(2)} ± ${b.perplexity_bound_se.toFixed(2)}${bits} (${b.samples} draws × ${b.windows} windows of ${b.seq_len})\n`);
          }
        } else if (r.task === 'samples') {
          process.stdout.write(
            `${r.samples} samples of ${r.length} tokens (${r.sampler} sampler, temperature ${r.temperature}): generative perplexity ${r.generative_perplexity.toFixed(2)}, ` +
              `entropy ${r.entropy.toFixed(3)} ± ${r.entropy_se.toFixed(3)} nats; ${r.reference.split} text: ${r.reference.generative_perplexity.toFixed(2)}, entropy ${r.reference.entropy.toFixed(3)} (judge ${r.judge})\n`,
          );
        } else {
          process.stdout.write(
            `sentiment probe on ${r.features} mean-pooled features: test accuracy ${(100 * r.test_accuracy).toFixed(1)}% ` +
              `(val ${(100 * r.val_accuracy).toFixed(1)}%, train ${(100 * r.train_accuracy).toFixed(1)}%; majority baseline ${(100 * r.majority_baseline).toFixed(1)}%; ` +
              `${r.train_examples}/${r.val_examples}/${r.test_examples} sentences)\n`,
          );
        }
      });
    });
}
