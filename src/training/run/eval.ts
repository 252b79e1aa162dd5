/**
 * `runEval(target, opts)`: loads a run (or a Hugging Face folder) and runs an evaluation task on
 * it (`stackwise eval`). The tasks are EVAL_TASKS: 'lm' (perplexity and bits per byte /
 * masked-token accuracy on a split, the NELBO bound of masked-diffusion runs), 'sentiment' (the
 * probe) and 'samples' (generative perplexity and entropy under a judge); a new task is one more
 * entry. `text` files (`--text`) replace the split: perplexity and bits per byte on the user's files.
 */
import { UsageError, noProgress, type ProgressFactory } from './errors.js';
import { evalLm, type EvalOptions, type LmEvalResult } from './eval-lm.js';
import { evalSamples, type SamplesEvalResult } from './eval-samples.js';
import { evalTextFiles, type TextFilesEvalResult } from './eval-text.js';
import { loadRun, type LoadedRun } from './load-run.js';
import { evalSentiment, type SentimentEvalResult } from './probe.js';

export type EvalResult = LmEvalResult | SentimentEvalResult | SamplesEvalResult | TextFilesEvalResult;
export type EvalTask = NonNullable<EvalOptions['task']>;

export const EVAL_TASKS: Record<EvalTask, (run: LoadedRun, opts: EvalOptions, progress: ProgressFactory) => EvalResult> = {
  lm: evalLm,
  sentiment: evalSentiment,
  samples: evalSamples,
};

/** The option combinations that make no sense, refused before anything is loaded. */
function checkOptions(opts: EvalOptions): void {
  if (opts.task === 'sentiment' && opts.split !== undefined) throw new UsageError('--split applies to the language-model evaluation; --task sentiment uses its own train/val/test split of the sentiment sentences');
  if (opts.text !== undefined && (opts.split !== undefined || opts.task === 'sentiment' || opts.task === 'samples')) throw new UsageError('--text evaluates on your files: it does not combine with --split, --task sentiment or --task samples');
  if (opts.task !== 'samples' && (opts.judge !== undefined || opts.samples !== undefined || opts.sampleLength !== undefined || opts.temperature !== undefined || opts.steps !== undefined)) {
    throw new UsageError('--judge, --samples, --sample-length, --temperature and --steps apply to --task samples');
  }
  if (opts.task !== undefined && opts.task !== 'lm' && opts.elboSamples !== undefined) throw new UsageError('--elbo-samples applies to the language-model evaluation (--task lm) of a masked-diffusion run');
}

/** Evaluates an already loaded run. */
export function evalRun(run: LoadedRun, opts: EvalOptions = {}, progress: ProgressFactory = noProgress): EvalResult {
  checkOptions(opts);
  if (opts.text !== undefined) return evalTextFiles(run, opts, progress);
  if (run.source === 'hf' && opts.task !== 'sentiment') throw new UsageError(`${run.checkpoint} is a Hugging Face folder: it has no corpus splits; evaluate it on files with --text <file…>`);
  const task = EVAL_TASKS[opts.task ?? 'lm'];
  if (!task) throw new UsageError(`--task ${String(opts.task)}: expected one of ${Object.keys(EVAL_TASKS).join(', ')}`);
  if (opts.elboSamples !== undefined && run.objective !== 'diffusion') throw new UsageError(`--elbo-samples: the NELBO bound is for masked-diffusion runs; this run's objective is ${run.objective}`);
  return task(run, opts, progress);
}

/** Loads a run folder (newest checkpoint), checkpoint folder or Hugging Face folder and evaluates it. */
export function runEval(target: string, opts: EvalOptions = {}, progress: ProgressFactory = noProgress): EvalResult {
  checkOptions(opts);
  const run = loadRun(target, { ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.loadFormat ? { loadFormat: opts.loadFormat } : {}) });
  try {
    return evalRun(run, opts, progress);
  } finally {
    run.model.dispose();
  }
}
