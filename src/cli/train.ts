/**
 * `stackwise train [config]`: runs a TrainingMachine from a YAML/JSON config (default: the shipped
 * configs/default.yaml), with `--set key=value` overrides, `--resume <run-dir>`, a progress bar
 * (ETA, tokens/s, loss) on a terminal or `--json` lines, and at the end the run report
 * (report.html + SVG charts) in the run folder and the final validation loss / perplexity.
 *
 * Nothing half-written: the config, the corpus and the tokenizer are checked before anything is
 * written, and a run folder this command created is removed again when setting up the run fails.
 * Ctrl-C stops after the current step, writes a checkpoint and exits with 130 (resume it with
 * `--resume <run-dir>`).
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { EvalMetrics, StepMetrics, TrainingCallbacks, TrainResult } from '../training/hooks.js';
import { resourceSummary } from '../training/progressive/resource-record.js';
import { prepareTrainingRun, summarizeTraining, writeTrainingReport, type TrainRunOptions, type TrainSummary } from '../training/run/index.js';
import { collect, createProgress, humanCount, humanDuration, printJson, reportError, toJson, EXIT, type Progress } from './output.js';

export interface TrainCommandOptions extends TrainRunOptions {
  json?: boolean;
  report?: boolean;
  /** Progress output (tests): default stderr. */
  quiet?: boolean;
}

function parseSteps(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, found '${value}'`);
  return n;
}

let interrupted = false;

/** Runs the command; returns the summary (also printed). */
export async function runTrain(configArg: string | undefined, opts: TrainCommandOptions): Promise<TrainSummary> {
  const json = opts.json === true;
  let progress: Progress | null = null;
  let lastJson = 0;
  let lastEval: EvalMetrics | undefined;
  const callbacks: TrainingCallbacks[] = [{
    onStep(m: StepMetrics, machine) {
      if (json) {
        const now = Date.now();
        if (now - lastJson >= 1000 || m.step + 1 === machine.controller.totalSteps) {
          lastJson = now;
          printJson({ type: 'step', step: m.step + 1, total_steps: machine.controller.totalSteps, t: m.t, phase: m.phase, loss: m.loss, lr: m.lr, tokens_per_s: m.tokens_per_s, wall_s: m.wall_s });
        }
      } else {
        progress?.update(m.step + 1, { loss: m.loss, tokensPerSec: m.tokens_per_s, phase: m.phase, ...(lastEval ? { val_ppl: lastEval.perplexity } : {}) });
      }
    },
    onEval(e) {
      lastEval = e;
      if (json) printJson({ type: 'eval', step: e.step, t: e.t, phase: e.phase, val_loss: e.loss, val_perplexity: e.perplexity, ...(e.bits_per_byte !== undefined ? { val_bits_per_byte: e.bits_per_byte } : {}), reason: e.reason, ...(e.nelbo !== undefined ? { nelbo: e.nelbo, nelbo_se: e.nelbo_se, perplexity_bound: e.perplexity_bound, elbo_samples: e.elbo_samples } : {}) });
    },
    onPhaseStart(phase, machine, ctx) {
      const stacks = machine.model.model.rack.numStacks;
      // The progressive plane's memory and compute report of this phase (written just before, at its phase start).
      const resources = machine.modelPlane?.resources.at(-1);
      const ours = resources !== undefined && resources.step === ctx.step && resources.phase === phase.name ? resources : undefined;
      if (json) {
        printJson({ type: 'phase_start', step: ctx.step, t: ctx.t, phase: phase.name, stacks, trainable_params: machine.model.numParameters(true) });
        if (ours) {
          const { kind: _kind, ...rest } = ours;
          printJson({ type: 'resources', ...rest });
        }
      } else if (!opts.quiet) {
        let line = `phase '${phase.name}' from step ${ctx.step} (t = ${ctx.t.toFixed(3)}): ${stacks} stack(s), ${humanCount(machine.model.numParameters(true))} trainable parameters`;
        if (ours) line += `\n  memory and compute: ${resourceSummary(ours)}`;
        if (process.stderr.isTTY && progress) process.stderr.write(`\r\x1b[K${line}\n`);
        else process.stderr.write(`${line}\n`);
      }
    },
    onCheckpoint(e) {
      if (json) printJson({ type: 'checkpoint', step: e.step, path: e.path, reason: e.reason });
    },
  }];

  const { machine, configPath, runDir } = prepareTrainingRun(configArg, opts, callbacks);
  machine.prepare(); // resumes now: a run killed after its final checkpoint is complete here, only its report missing
  const total = machine.controller.totalSteps;
  const start = machine.step;
  if (json) printJson({ type: 'start', run_dir: resolve(runDir), config: resolve(configPath), total_steps: total, parameters: machine.model.numParameters(), resume: opts.resume !== undefined });
  else if (!opts.quiet) {
    process.stderr.write(`training ${resolve(configPath)} → ${resolve(runDir)} (${total} steps, ${humanCount(machine.model.numParameters())} parameters at start)\n`);
  }
  // Resuming happens at the first step; build the bar after it so it starts at the right value.
  const onSigint = () => {
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  let result: TrainResult;
  try {
    let first = true;
    while (!machine.isComplete) {
      if (interrupted) break;
      machine.trainStep();
      if (first) {
        first = false;
        if (!json && !opts.quiet) {
          progress = createProgress({ total, label: 'train', unit: 'steps', logIntervalMs: 15_000 });
          progress.update(machine.step, {});
        }
      }
      // Let signals in between steps.
      await new Promise<void>((r) => setImmediate(r));
    }
    if (interrupted) {
      progress?.stop();
      const ck = machine.saveCheckpoint('manual');
      const msg = `interrupted at step ${machine.step}/${total}; checkpoint ${ck.path}; continue with: stackwise train --resume ${runDir}`;
      if (json) printJson({ type: 'interrupted', ok: false, step: machine.step, checkpoint: ck.path, run_dir: resolve(runDir) });
      process.stderr.write(`${msg}\n`);
      const err = new Error(msg);
      (err as Error & { exitCode?: number }).exitCode = EXIT.interrupted;
      throw err;
    }
    result = machine.train(); // final evaluation, final checkpoint, metrics closed
    progress?.stop();
  } catch (error) {
    progress?.stop();
    machine.dispose();
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
  }
  let report: string | null = null;
  if (opts.report !== false) {
    try {
      report = writeTrainingReport(runDir, machine);
    } catch (e) {
      process.stderr.write(`stackwise train: warning: the run report could not be written: ${(e as Error).message}\n`);
    }
  }
  const summary = summarizeTraining(machine, result, { runDir, configPath, startStep: start, report });
  machine.dispose();
  return summary;
}

function printSummary(s: TrainSummary): void {
  const lines = [
    `done: ${s.steps} steps${s.resumed_from !== undefined ? ` (resumed from step ${s.resumed_from})` : ''} in ${humanDuration(s.wall_time_s)}, ${humanCount(s.tokens_seen)} tokens, ${humanCount(s.parameters)} parameters in ${s.stacks} stack(s)`,
  ];
  for (const p of s.phases) {
    lines.push(`  phase ${p.name.padEnd(12)} ${String(p.steps).padStart(6)} steps  loss ${Number.isFinite(p.final_loss) ? p.final_loss.toFixed(4) : 'n/a'}${p.val_loss !== null ? `  val loss ${p.val_loss.toFixed(4)}  val ppl ${p.val_perplexity!.toFixed(2)}` : ''}`);
  }
  if (s.val_loss !== null) lines.push(`final validation loss ${s.val_loss.toFixed(4)}, perplexity ${s.val_perplexity!.toFixed(2)}${s.val_perplexity_bound !== undefined ? `; NELBO perplexity bound ${s.val_perplexity_bound.toFixed(2)} ± ${s.val_perplexity_bound_se!.toFixed(2)}` : ''}`);
  else lines.push('no validation split: no validation loss');
  lines.push(`run folder: ${s.run_dir}`);
  if (s.report) lines.push(`report:     ${resolve(s.report)}`);
  lines.push(`sample:     stackwise sample ${s.run_dir} --prompt "…"`);
  process.stdout.write(lines.join('\n') + '\n');
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('train a model from a config (YAML/JSON); no config: the shipped default (a small LLaMA-style model grown 1→2→4 stacks on State of the Union addresses)')
    .argument('[config]', 'config file (default: configs/default.yaml of the package)')
    .option('--set <key=value>', 'override a config value (repeatable), e.g. --set optimizer.lr=3e-4 --set schedule[1].overrides.model.n_stacks=2', collect)
    .option('--resume <run-dir>', 'continue a run from its newest checkpoint (with the config recorded in the folder)')
    .option('--from <folder>', 'start from a pretrained model (sets model.init.from): a Hugging Face folder or a run / checkpoint folder; its architecture and tokenizer are taken, no config given: configs/finetune.yaml')
    .option('--run-dir <dir>', 'run folder (default: training.run_dir of the config, else runs/<config>-<time>)')
    .option('--steps <n>', 'total steps (overrides training.total_steps)', parseSteps)
    .option('--no-report', 'do not write report.html at the end')
    .option('--no-memory-check', 'train even when the predicted peak memory exceeds the machine (same as --set training.memory_check=false)')
    .option('--json', 'machine-readable output: one JSON object per line (start, phase_start, step, eval, checkpoint, then the result)')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stackwise train                                  # the default run (about 5 minutes on 2 cores)',
      '  stackwise train my.yaml --set training.total_steps=200 --run-dir runs/try',
      '  stackwise train --resume runs/try                # after Ctrl-C or a crash',
      '  stackwise train recipes/expand-pretrained.yaml --from hf-model   # grow a pretrained model (LLaMA Pro)',
      '',
      'At the end the run folder holds checkpoints/, metrics.jsonl, config.yaml, phases/, stackwise-tokenizer.json,',
      'report.html (+ SVG charts). Ctrl-C stops after the current step and writes a checkpoint.',
      '',
      'Exit codes: 0 ok, 1 failure (bad config, corpus or tokenizer; diverged), 2 usage error, 130 interrupted.',
    ].join('\n'))
    .action(async (config: string | undefined, opts: TrainCommandOptions) => {
      try {
        const summary = await runTrain(config, opts);
        if (opts.json) process.stdout.write(toJson({ type: 'result', ...summary }) + '\n');
        else printSummary(summary);
      } catch (error) {
        const code = (error as Error & { exitCode?: number }).exitCode;
        if (code === EXIT.interrupted) {
          process.exitCode = EXIT.interrupted;
          return;
        }
        reportError('train', error, opts);
      }
    });
}
