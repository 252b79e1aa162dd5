/**
 * `stackwise eval <model>`: measures a trained model (run, checkpoint or Hugging Face folder).
 *   --split val|test (default val): perplexity and bits per byte on that split of the run's corpus
 *     (CLM), or masked-token accuracy and loss (MLM / masked diffusion: 15% of the positions
 *     masked, seeded; a model with a time embedding is given r = 0.15 for every row). Masked
 *     diffusion also gets the NELBO perplexity bound (--elbo-samples draws per window, --seed),
 *     and time-as-depth runs the bound of their depth unroll too.
 *   --text <file…>: perplexity and bits per byte on the user's files (text or JSONL) instead.
 *   --task samples --judge <causal run>: generative perplexity and unigram entropy of samples
 *     drawn with the run's own sampler.
 *   --task sentiment: a downstream probe — the frozen model's mean-pooled final hidden states of
 *     the labelled sentiment sentences (Amazon / IMDB / Yelp) feed a logistic-regression head
 *     trained on the train split; accuracy on the held-out test split (and validation).
 * Parses the flags, calls the library (src/training/run: runEval), prints.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { STORAGE_FORMATS } from '../engine/index.js';
import { runEval as evalTarget, type EvalOptions, type EvalResult, type ProgressFactory } from '../training/run/index.js';
import { createProgress, parseChoice, parseNonNegativeInt, parsePositiveInt, printJson, runCommand } from './output.js';

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
    .description('evaluate a trained model: perplexity and bits per byte (CLM), masked-token accuracy (MLM) and the NELBO perplexity bound (masked diffusion) on a split or on your files (--text), a downstream sentiment probe, or sample quality under a causal judge')
    .argument('<model>', 'run folder (newest checkpoint), checkpoint folder, or Hugging Face folder (config.json + safetensors + tokenizer.json; needs --text)')
    .option('--split <split>', 'val | test (default val): the split of the run\'s corpus', parseChoice(['val', 'test'] as const))
    .option('--text <file...>', 'evaluate on these files instead (UTF-8 text, one document per file, or .jsonl, one per line): perplexity and bits per byte')
    .option('--jsonl-field <name>', 'field of each JSONL record holding the text (default text)')
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
    .option('--load-format <format>', 'storage of the rack\'s linear weights: fp32 | fp16 | bf16 | nf4 | int8, converted tensor by tensor as a Hugging Face folder is read (embeddings, norms, biases and the head stay float32; a checkpoint\'s float32 stacks are quantized once loaded). Default: as stored', parseChoice(STORAGE_FORMATS))
    .option('--json', 'print one JSON object with the result')
    .addHelpText('after', '\nExit codes: 0 ok, 1 missing/corrupt run, tokenizer not matching the model, 2 usage error.')
    .action(async (target: string, opts: EvalOptions & { json?: boolean }) => {
      await runCommand('eval', opts, () => {
        const r = runEval(target, opts, !opts.json);
        if (opts.json) { printJson({ ok: true, ...r }); return; }
        if (r.task === 'text') {
          process.stdout.write(`${r.files.length} file(s), ${r.documents} document(s): loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(2)}, ${r.bits_per_byte.toFixed(4)} bits per byte (${r.scored} scored tokens, ${r.bytes} bytes, ${r.bytes_per_token.toFixed(2)} bytes/token; step ${r.step})\n`);
        } else if (r.task === 'lm') {
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
