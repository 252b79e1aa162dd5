/**
 * `runEval(target, opts)`: loads a run and runs an evaluation task on it (`stackwise eval`). The
 * tasks are EVAL_TASKS: 'lm' (perplexity / masked-token accuracy) and 'sentiment' (the probe); a
 * new task is one more entry.
 */
import { UsageError, noProgress, type ProgressFactory } from './errors.js';
import { evalLm, type EvalOptions, type LmEvalResult } from './eval-lm.js';
import { loadRun, type LoadedRun } from './load-run.js';
import { evalSentiment, type SentimentEvalResult } from './probe.js';

export type EvalResult = LmEvalResult | SentimentEvalResult;
export type EvalTask = NonNullable<EvalOptions['task']>;

export const EVAL_TASKS: Record<EvalTask, (run: LoadedRun, opts: EvalOptions, progress: ProgressFactory) => EvalResult> = {
  lm: evalLm,
  sentiment: evalSentiment,
};

/** Evaluates an already loaded run. */
export function evalRun(run: LoadedRun, opts: EvalOptions = {}, progress: ProgressFactory = noProgress): EvalResult {
  if (opts.task === 'sentiment' && opts.split !== undefined) throw new UsageError('--split applies to the language-model evaluation; --task sentiment uses its own train/val/test split of the sentiment sentences');
  const task = EVAL_TASKS[opts.task ?? 'lm'];
  if (!task) throw new UsageError(`--task ${String(opts.task)}: expected one of ${Object.keys(EVAL_TASKS).join(', ')}`);
  return task(run, opts, progress);
}

/** Loads a run folder (newest checkpoint) or checkpoint folder and evaluates it. */
export function runEval(target: string, opts: EvalOptions = {}, progress: ProgressFactory = noProgress): EvalResult {
  if (opts.task === 'sentiment' && opts.split !== undefined) throw new UsageError('--split applies to the language-model evaluation; --task sentiment uses its own train/val/test split of the sentiment sentences');
  const run = loadRun(target, opts.backend ? { backend: opts.backend } : {});
  try {
    return evalRun(run, opts, progress);
  } finally {
    run.model.dispose();
  }
}
