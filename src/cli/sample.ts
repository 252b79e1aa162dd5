/**
 * `stackwise sample <model> --prompt "…"`: loads a trained model (the newest checkpoint of a run
 * folder, a given checkpoint folder, or a Hugging Face folder) with its tokenizer and generates text:
 * left-to-right for CLM models, [MASK] filling for MLM (`--mode mlm`, masks written as [MASK] in
 * the prompt), masked-diffusion sampling (`--mode diffusion`), the time-as-depth unroll
 * (`--mode depth`). Parses the flags, calls the library (src/training/run: runSample), prints.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { STORAGE_FORMATS } from '../engine/index.js';
import { SAMPLE_MODES, runSample, type SampleOptions } from '../training/run/index.js';
import { parseChoice, parseNonNegativeInt, parsePositiveInt, printJson, runCommand } from './output.js';

function parseNumber(name: string, min: number, max = Infinity, minExclusive = false) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (minExclusive ? n <= min : n < min) || n > max) {
      throw new InvalidArgumentError(`${name}: expected a number ${minExclusive ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}, found '${value}'`);
    }
    return n;
  };
}

export function registerSampleCommand(program: Command): void {
  program
    .command('sample')
    .description('generate text with a trained model (a run folder\'s newest checkpoint, a checkpoint folder, or a Hugging Face folder)')
    .argument('<model>', 'run folder (newest checkpoint), checkpoint folder (runs/x/checkpoints/step-…), or Hugging Face folder (config.json + safetensors + tokenizer.json)')
    .option('--prompt <text>', 'text to continue (CLM) or a text with [MASK] to fill (mlm / diffusion)', '')
    .option('--max-tokens <n>', 'tokens to generate (CLM; diffusion without [MASK]: masks appended), default 64 (CLM) / 32', parsePositiveInt)
    .option('--temperature <T>', 'sampling temperature; 0 = greedy (default 1 for CLM, 0 for mlm/diffusion)', parseNumber('--temperature', 0))
    .option('--top-k <k>', 'keep only the k most likely tokens (0 = all)', parseNonNegativeInt)
    .option('--top-p <p>', 'nucleus sampling: keep the most likely tokens up to probability p', parseNumber('--top-p', 0, 1, true))
    .option('--seed <n>', 'random seed (default 0)', parseNonNegativeInt)
    .option('--count <n>', 'number of samples (seeds seed, seed+1, …)', parsePositiveInt)
    .option('--mode <mode>', 'clm | mlm | diffusion | depth (the time-as-depth unroll: one pass through the stacks, each unmasking down to the next noise level; default: the objective the model was trained with)', parseChoice(SAMPLE_MODES))
    .option('--steps <n>', 'denoising steps (diffusion; default one token per step)', parsePositiveInt)
    .option('--backend <name>', 'engine backend (default: native when built)')
    .option('--load-format <format>', 'storage of the rack\'s linear weights: fp32 | fp16 | bf16 | nf4 | int8, converted tensor by tensor as a Hugging Face folder is read (embeddings, norms, biases and the head stay float32; a checkpoint\'s float32 stacks are quantized once loaded). Default: as stored', parseChoice(STORAGE_FORMATS))
    .option('--json', 'print one JSON object with the samples')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stackwise sample runs/default-… --prompt "The state of the Union is" --max-tokens 80 --temperature 0.8 --top-k 40',
      '  stackwise sample runs/mlm --mode mlm --prompt "We must [MASK] our [MASK]."',
      '  stackwise sample runs/right-to-left --mode depth --max-tokens 24',
      '',
      'Exit codes: 0 ok, 1 missing/corrupt run or checkpoint, tokenizer not matching the model, 2 usage error.',
    ].join('\n'))
    .action(async (target: string, opts: SampleOptions & { json?: boolean }) => {
      await runCommand('sample', opts, () => {
        const r = runSample(target, opts);
        if (opts.json) { printJson({ ok: true, ...r }); return; }
        process.stderr.write(`${r.checkpoint} (step ${r.step}, ${r.mode})\n`);
        r.samples.forEach((s, i) => {
          if (r.samples.length > 1) process.stdout.write(`--- sample ${i + 1}\n`);
          process.stdout.write(`${s.text}\n`);
        });
      });
    });
}
