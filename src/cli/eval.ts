/**
 * `stackwise eval <model>`: measures a trained model (run, checkpoint or Hugging Face folder).
 *   --split val|test (default val): perplexity and bits per byte on that split of the run's corpus (CLM), or
 *     masked-token accuracy and loss (MLM / masked diffusion: 15% of the positions masked, seeded;
 *     a model with a time embedding is given r = 0.15 for every row).
 *   --text <file…>: perplexity and bits per byte on the user's files (text or JSONL) instead.
 *   --task sentiment: a downstream probe — the frozen model's mean-pooled final hidden states of
 *     the labelled sentiment sentences (Amazon / IMDB / Yelp) feed a logistic-regression head
 *     trained on the train split; accuracy on the held-out test split (and validation).
 * Parses the flags, calls the library (src/training/run: runEval), prints.
 */
import type { Command } from 'commander';
import { runEval as evalTarget, type EvalOptions, type EvalResult, type ProgressFactory } from '../training/run/index.js';
import { createProgress, parseChoice, parsePositiveInt, printJson, runCommand } from './output.js';

/** A progress bar on stderr per long pass (none when `on` is false). */
function progressBars(on: boolean): ProgressFactory {
  return ({ total, label, unit }) => createProgress({ total, label, unit, enabled: on });
}

/** Loads and evaluates a run (the library's runEval), with progress bars when `progressOn`. */
export function runEval(target: string, opts: EvalOptions, progressOn = false): EvalResult {
  return evalTarget(target, opts, progressBars(progressOn));
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained model: perplexity and bits per byte (CLM) or masked-token accuracy (MLM) on a split or on your files (--text), or a downstream sentiment probe')
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
    .action(async (target: string, opts: EvalOptions & { json?: boolean }) => {
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
