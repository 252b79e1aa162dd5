/**
 * The sentiment probe: the frozen model's mean-pooled final hidden states of the labelled
 * sentiment sentences (Amazon / IMDB / Yelp) feed a logistic-regression head trained on the
 * train split; accuracy on the held-out test split (and validation).
 */
import { resolve } from 'node:path';
import * as E from '../../engine/index.js';
import { loadCorpus, splitDocuments, type Document } from '../../data/index.js';
import { inference } from '../sampling/index.js';
import { noProgress, type ProgressFactory } from './errors.js';
import type { EvalOptions } from './eval-lm.js';
import type { LoadedRun } from './load-run.js';

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

export function evalSentiment(run: LoadedRun, opts: EvalOptions = {}, progress: ProgressFactory = noProgress): SentimentEvalResult {
  let docs = loadCorpus({ kind: 'sentiment' }).filter((d) => d.label === 0 || d.label === 1);
  if (opts.maxExamples !== undefined && opts.maxExamples < docs.length) {
    const stride = docs.length / opts.maxExamples;
    docs = Array.from({ length: opts.maxExamples }, (_, i) => docs[Math.floor(i * stride)]!);
  }
  const split = splitDocuments(docs, { val: 0.15, test: 0.15, seed: 0 });
  const seqLen = opts.seqLen ?? run.data?.seq_len ?? 128;
  const total = docs.length;
  const bar = progress({ total, label: 'features', unit: 'sentences' });
  let base = 0;
  const feats = (part: Document[]) => {
    const f = features(run, part, seqLen, (n) => bar.update(base + n));
    base += part.length;
    return f;
  };
  const trX = feats(split.train);
  const vaX = feats(split.val);
  const teX = feats(split.test);
  bar.stop();
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

