/**
 * `stackwise eval <model> --text <file…>`: perplexity and bits per byte of a causal model on the
 * user's files (UTF-8 text, one document per file, or JSONL, one document per line) — held-out
 * text the run never saw, scored the same way for a run, a checkpoint or a Hugging Face folder,
 * so models with different tokenizers compare by bits per byte.
 */
import { resolve } from 'node:path';
import { loadCorpus } from '../../data/index.js';
import { evaluateText, type TextEvalResult } from '../evaluation/index.js';
import { UsageError, noProgress, type ProgressFactory } from './errors.js';
import { passProgress, type EvalOptions } from './eval-lm.js';
import type { LoadedRun } from './load-run.js';

export interface TextFilesEvalResult extends TextEvalResult {
  task: 'text';
  checkpoint: string;
  step: number;
  objective: string;
  files: string[];
}

/** The window length when neither --seq-len nor the run's data plane says: the model's positions, at most this. */
const DEFAULT_TEXT_SEQ_LEN = 1024;
/** Windows per forward pass when neither --batch-size nor the run's data plane says. */
const DEFAULT_TEXT_BATCH = 4;

/** Perplexity and bits per byte of a causal model on `opts.text` files. */
export function evalTextFiles(run: LoadedRun, opts: EvalOptions, progress: ProgressFactory = noProgress): TextFilesEvalResult {
  const files = opts.text ?? [];
  if (files.length === 0) throw new UsageError('--text: give at least one file');
  if (run.objective !== 'clm') throw new UsageError(`--text scores next-token likelihood, which needs a causal model; this one was trained with objective ${run.objective}`);
  if (!run.tokenizer) throw new UsageError('--text needs a model with a text tokenizer (this one reads raw token ids: its corpus was synthetic, or its Hugging Face folder has no tokenizer.json)');
  const docs = files.flatMap((path) => loadCorpus({ kind: 'files', paths: [path], format: path.endsWith('.jsonl') ? 'jsonl' : 'text', jsonlField: opts.jsonlField ?? 'text' }));
  const S = opts.seqLen ?? run.data?.seq_len ?? Math.min(run.model.config.embedding.maxPositions ?? DEFAULT_TEXT_SEQ_LEN, DEFAULT_TEXT_SEQ_LEN);
  const B = opts.batchSize ?? run.data?.batch_size ?? DEFAULT_TEXT_BATCH;
  const bar = passProgress(progress, 'eval text');
  const r = evaluateText(run.model, run.tokenizer, docs, { seqLen: S, batchSize: B, ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}), onProgress: bar.update });
  bar.stop();
  return { task: 'text', checkpoint: resolve(run.checkpoint), step: run.step, objective: run.objective, files: files.map((f) => resolve(f)), ...r };
}
