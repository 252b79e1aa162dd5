/**
 * `stackwise eval <run-dir|checkpoint>`: measures a trained model.
 *   --split val|test (default val): perplexity on that split of the run's corpus (CLM), or
 *     masked-token accuracy and loss (MLM / masked diffusion: 15% of the positions masked, seeded;
 *     a model with a time embedding is given r = 0.15 for every row).
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
import { evaluateText, evaluateTokens, tokenByteLengths, type TextEvalResult } from '../training/evaluation/index.js';
import { loadRun, type LoadedRun } from './sample.js';
import { UsageError, createProgress, parseChoice, parsePositiveInt, printJson, runCommand } from './output.js';

export interface EvalOptions {
  split?: 'val' | 'test';
  /** Evaluate on these files instead of a split: UTF-8 text (one document each) or .jsonl (one per line). */
  text?: string[];
  /** Field of each JSONL record that holds the text (default "text"). */
  jsonlField?: string;
  task?: 'lm' | 'sentiment';
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
  /** Tokenizer-independent: bits of the text tokens' negative log-likelihood per UTF-8 byte (CLM with a tokenizer). */
  bits_per_byte: number | null;
  masked_accuracy: number | null;
}

export interface TextFilesEvalResult extends TextEvalResult {
  task: 'text';
  checkpoint: string;
  step: number;
  objective: string;
  files: string[];
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

/** A progress bar over windows, started when the evaluation reports its first batch (and the total). */
function windowProgress(label: string, enabled: boolean): { update: (done: number, total: number) => void; stop: () => void } {
  let bar: ReturnType<typeof createProgress> | undefined;
  return {
    update: (done, total) => {
      bar ??= createProgress({ total, label, unit: 'windows', enabled });
      bar.update(done);
    },
    stop: () => bar?.stop(),
  };
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
  const clm = run.objective === 'clm';
  if (clm) {
    const byteLengths = run.tokenizer ? tokenByteLengths(run.tokenizer) : new Uint32Array(run.vocabSize);
    const progress = windowProgress(`eval ${split}`, progressOn);
    const r = evaluateTokens(run.model, ids, byteLengths, { seqLen: S, batchSize: B, maxTokens, onProgress: progress.update });
    progress.stop();
    return { task: 'lm', checkpoint: resolve(run.checkpoint), step: run.step, objective: run.objective, split, tokens: r.scored, scored: r.scored, loss: r.loss, perplexity: r.perplexity, bits_per_byte: Number.isNaN(r.bits_per_byte) ? null : r.bits_per_byte, masked_accuracy: null };
  }
  if (ids.length > maxTokens + 1) ids = ids.subarray(0, maxTokens + 1);
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
    bits_per_byte: null,
    masked_accuracy: clm ? null : correct / scored,
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

/** Perplexity and bits per byte of a causal model on the user's files (text or JSONL). */
export function evalTextFiles(run: LoadedRun, opts: EvalOptions, progressOn: boolean): TextFilesEvalResult {
  const files = opts.text ?? [];
  if (run.objective !== 'clm') throw new UsageError(`--text scores next-token likelihood, which needs a causal model; this one was trained with objective ${run.objective}`);
  if (!run.tokenizer) throw new UsageError('--text needs a model with a text tokenizer (this one reads raw token ids: its corpus was synthetic, or its Hugging Face folder has no tokenizer.json)');
  const docs = files.flatMap((path) => loadCorpus({ kind: 'files', paths: [path], format: path.endsWith('.jsonl') ? 'jsonl' : 'text', jsonlField: opts.jsonlField ?? 'text' }));
  const S = opts.seqLen ?? run.phase.data?.seq_len ?? Math.min(run.model.config.embedding.maxPositions ?? 1024, 1024);
  const B = opts.batchSize ?? run.phase.data?.batch_size ?? 4;
  const progress = windowProgress('eval text', progressOn);
  const r = evaluateText(run.model, run.tokenizer, docs, { seqLen: S, batchSize: B, ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}), onProgress: progress.update });
  progress.stop();
  return { task: 'text', checkpoint: resolve(run.checkpoint), step: run.step, objective: run.objective, files: files.map((f) => resolve(f)), ...r };
}

export function runEval(target: string, opts: EvalOptions, progressOn = false): LmEvalResult | SentimentEvalResult | TextFilesEvalResult {
  if (opts.task === 'sentiment' && opts.split !== undefined) throw new UsageError('--split applies to the language-model evaluation; --task sentiment uses its own train/val/test split of the sentiment sentences');
  if (opts.text !== undefined && (opts.split !== undefined || opts.task === 'sentiment')) throw new UsageError('--text evaluates on your files: it does not combine with --split or --task sentiment');
  const run = loadRun(target, opts.backend ? { backend: opts.backend } : {});
  try {
    if (opts.text !== undefined) return evalTextFiles(run, opts, progressOn);
    if (run.parsed === undefined && opts.task !== 'sentiment') throw new UsageError(`${target} is a Hugging Face folder: it has no corpus splits; evaluate it on files with --text <file…>`);
    return opts.task === 'sentiment' ? evalSentiment(run, opts, progressOn) : evalLm(run, opts, progressOn);
  } finally {
    run.model.dispose();
  }
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained model: perplexity (CLM) or masked-token accuracy (MLM) on a split, or a downstream sentiment probe')
    .argument('<model>', 'run folder (newest checkpoint), checkpoint folder, or Hugging Face folder (config.json + safetensors + tokenizer.json; needs --text)')
    .option('--split <split>', 'val | test (default val): the split of the run\'s corpus', parseChoice(['val', 'test'] as const))
    .option('--text <file...>', 'evaluate on these files instead (UTF-8 text, one document per file, or .jsonl, one per line): perplexity and bits per byte')
    .option('--jsonl-field <name>', 'field of each JSONL record holding the text (default text)')
    .option('--task <task>', 'lm (default) | sentiment: probe a classification head on the frozen model\'s mean-pooled features', parseChoice(['lm', 'sentiment'] as const))
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
        if (r.task === 'text') {
          process.stdout.write(`${r.files.length} file(s), ${r.documents} document(s): loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}, ${r.bits_per_byte.toFixed(4)} bits per byte (${r.scored} scored tokens, ${r.bytes} bytes, ${r.bytes_per_token.toFixed(2)} bytes/token; step ${r.step})\n`);
        } else if (r.task === 'lm') {
          const bpb = r.bits_per_byte !== null ? `, ${r.bits_per_byte.toFixed(4)} bits per byte` : '';
          const what = r.perplexity !== null ? `perplexity ${r.perplexity.toFixed(2)}${bpb}` : `masked-token accuracy ${(100 * r.masked_accuracy!).toFixed(2)}%`;
          process.stdout.write(`${r.split}: loss ${r.loss.toFixed(4)}, ${what} (${r.scored} scored tokens; ${r.objective}; step ${r.step})\n`);
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
