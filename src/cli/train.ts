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
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type Command } from 'commander';
import { TrainingMachine } from '../training/machine.js';
import { loadConfig } from '../training/config/load.js';
import type { ParsedConfig } from '../training/config/resolve.js';
import type { EvalMetrics, StepMetrics, TrainingCallbacks, TrainingHooks, TrainResult } from '../training/hooks.js';
import { ProgressiveRackBuilder } from '../training/progressive/builder.js';
import { resourceSummary } from '../training/progressive/resource-record.js';
import { ProgressivePlane } from '../training/progressive-plane.js';
import { usesProgressivePlane } from '../training/progressive/config.js';
import type { GrowthSpec } from '../training/progressive/operators.js';
import { readRunReportData, writeRunReport } from '../io/report/index.js';
import { loadTokenizer } from '../data/index.js';
import { UsageError, createProgress, humanCount, humanDuration, printJson, reportError, toJson, EXIT, type Progress } from './output.js';

/** The repository / package root (holds package.json "stackwise"). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'stackwise') return dir;
      } catch { /* keep looking */ }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the stackwise package root (package.json) was not found');
    dir = parent;
  }
}

/** The shipped default config. */
export function defaultConfigPath(): string {
  return join(packageRoot(), 'configs', 'default.yaml');
}

export interface TrainCommandOptions {
  set?: string[];
  resume?: string;
  runDir?: string;
  steps?: number;
  json?: boolean;
  report?: boolean;
  /** Progress output (tests): default stderr. */
  quiet?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function parseSteps(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, found '${value}'`);
  return n;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

/**
 * A model-plane hook that grows the rack whenever a phase asks for more stacks (model.n_stacks in
 * the phase's overrides) than the live model has, with the ProgressiveRackBuilder (append, the
 * given growth operator). Used when the config has no `model.progressive` section (which brings
 * its own hooks). Deterministic, so it is replayed on resume.
 */
export function nStacksGrowthHook(growth: GrowthSpec = { kind: 'copy-top' }, onGrow?: (e: { step: number; t: number; from: number; to: number; phase: string }) => void): TrainingHooks {
  let builder: ProgressiveRackBuilder | null = null;
  return {
    onPhaseStart(phase, machine, ctx) {
      const want = ctx.resolved.model?.n_stacks;
      const model = machine.model.model;
      const have = model.rack.numStacks;
      if (want === undefined || want <= have) return;
      const target = Math.max(want, ...machine.parsed.phases.map((p) => p.model?.n_stacks ?? 0));
      builder ??= new ProgressiveRackBuilder(model, { targetStacks: target, growth, freeze: 'none', seed: machine.seed });
      builder.growTo(want, { t: ctx.t });
      if (!ctx.replaying) onGrow?.({ step: ctx.step, t: ctx.t, from: have, to: want, phase: phase.name });
    },
  };
}

/** Checks the tokenizer file a config names against the model's vocabulary before anything is written. */
function checkTokenizerFile(parsed: ParsedConfig): void {
  for (const p of parsed.phases) {
    const tok = p.data?.tokenizer;
    if (!tok || tok.kind !== 'bpe' || !tok.path) continue;
    if (!existsSync(tok.path)) continue; // trained and saved there
    let vocab: number;
    try {
      vocab = loadTokenizer(tok.path).vocabSize;
    } catch (e) {
      throw new Error(`tokenizer file ${tok.path}: ${(e as Error).message}`);
    }
    if (vocab > tok.vocab_size) throw new Error(`tokenizer file ${tok.path} has a vocabulary of ${vocab}, more than data.tokenizer.vocab_size = ${tok.vocab_size}`);
    const mv = p.model?.vocab_size;
    if (mv !== undefined && mv !== vocab) {
      throw new Error(`tokenizer file ${tok.path} has a vocabulary of ${vocab} tokens, but model.vocab_size is ${mv}; remove model.vocab_size (it defaults to the tokenizer's) or use a matching tokenizer`);
    }
  }
}

/** Growth events and stack snapshots gathered during the run, for the report. */
interface RunEvents {
  grows: { step: number; t: number; from: number; to: number; phase: string }[];
}

export interface TrainSummary {
  ok: true;
  run_dir: string;
  config: string;
  steps: number;
  steps_run: number;
  resumed_from?: number;
  final_loss: number;
  val_loss: number | null;
  val_perplexity: number | null;
  tokens_seen: number;
  wall_time_s: number;
  parameters: number;
  stacks: number;
  report: string | null;
  last_checkpoint: string | null;
  phases: { name: string; steps: number; final_loss: number; val_loss: number | null; val_perplexity: number | null }[];
}

let interrupted = false;

/** Builds the machine for a fresh run or a resume; removes a run folder it created when that fails. */
function setUp(configArg: string | undefined, opts: TrainCommandOptions, callbacks: TrainingCallbacks[], events: RunEvents): { machine: TrainingMachine; configPath: string; runDir: string } {
  const set = [...(opts.set ?? [])];
  // The CLI draws its own progress (or prints --json lines); 'progress' is not part of the config hash.
  set.push('training.progress=off');
  if (opts.steps !== undefined) set.push(`training.total_steps=${opts.steps}`);
  let configPath: string;
  let runDir: string;
  if (opts.resume !== undefined) {
    if (configArg !== undefined) throw new UsageError('give either a config or --resume <run-dir> (a resumed run uses the config recorded in its folder)');
    if (opts.runDir !== undefined) throw new UsageError('--run-dir cannot be combined with --resume (the run folder is the one resumed)');
    runDir = opts.resume;
    if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new Error(`${runDir}: no such run folder`);
    configPath = join(runDir, 'config.yaml');
    if (!existsSync(configPath)) throw new Error(`${runDir} has no config.yaml: is it a StackWise run folder that was started?`);
  } else {
    configPath = configArg ?? defaultConfigPath();
    if (!existsSync(configPath)) throw new Error(`config file ${configPath} does not exist`);
    if (statSync(configPath).isDirectory()) throw new Error(`${configPath}: is a directory, expected a config file (YAML or JSON)`);
    runDir = '';
  }
  const parsed = loadConfig(configPath, { set });
  if (opts.resume === undefined) {
    runDir = opts.runDir ?? parsed.config.training.run_dir ?? join('runs', `${configArg ? configArg.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '') : 'default'}-${timestamp()}`);
    if (existsSync(runDir) && !statSync(runDir).isDirectory()) throw new Error(`${runDir}: exists and is not a folder`);
    if (existsSync(join(runDir, 'checkpoints')) && readdirSync(join(runDir, 'checkpoints')).length > 0) {
      throw new UsageError(`run folder ${runDir} already holds checkpoints; resume it with --resume ${runDir} or choose another --run-dir`);
    }
  }
  checkTokenizerFile(parsed);
  const existed = existsSync(runDir);
  const hooks: TrainingHooks[] = [];
  if (!usesProgressivePlane(parsed)) {
    hooks.push(nStacksGrowthHook({ kind: 'copy-top' }, (e) => events.grows.push(e)));
  }
  try {
    const machine = new TrainingMachine(parsed, { runDir, hooks, callbacks, ...(opts.resume !== undefined ? { resume: 'latest' as const } : {}) });
    return { machine, configPath, runDir };
  } catch (error) {
    if (!existed && existsSync(runDir)) rmSync(runDir, { recursive: true, force: true });
    throw error;
  }
}

/** Adds the growth events and per-phase stack snapshots to the report data and writes the report. */
function writeReport(runDir: string, events: RunEvents, machine: TrainingMachine): string {
  const data = readRunReportData(runDir);
  const known = new Set(data.events.map((e) => `${e.kind}@${e.step}`));
  for (const g of events.grows) {
    if (known.has(`grow@${g.step}`)) continue;
    data.events.push({ kind: 'grow', t: g.t, step: g.step, description: `phase '${g.phase}': ${g.from} → ${g.to} stacks (copy-top)` });
  }
  data.events.sort((a, b) => a.t - b.t);
  if (data.stack_timeline.length === 0) {
    const phases = machine.parsed.phases;
    data.stack_timeline = phases.map((p) => ({
      t: p.start_t,
      stacks: Array.from({ length: p.model?.n_stacks ?? machine.model.model.rack.numStacks }, (_, i) => ({ index: i, state: ['trainable' as const] })),
    }));
  }
  data.summary = { ...data.summary, parameters: machine.model.numParameters(), stacks: machine.model.model.rack.numStacks };
  return writeRunReport(runDir, data).html;
}

/** Runs the command; returns the summary (also printed). */
export async function runTrain(configArg: string | undefined, opts: TrainCommandOptions): Promise<TrainSummary> {
  const json = opts.json === true;
  const events: RunEvents = { grows: [] };
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
      if (json) printJson({ type: 'eval', step: e.step, t: e.t, phase: e.phase, val_loss: e.loss, val_perplexity: e.perplexity, reason: e.reason });
    },
    onPhaseStart(phase, machine, ctx) {
      const stacks = machine.model.model.rack.numStacks;
      // The progressive plane's memory and compute report of this phase (written just before, at its phase start).
      const plane = machine.hookList.find((h): h is ProgressivePlane => h instanceof ProgressivePlane);
      const resources = plane?.resources.at(-1);
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

  const { machine, configPath, runDir } = setUp(configArg, opts, callbacks, events);
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
      report = writeReport(runDir, events, machine);
    } catch (e) {
      process.stderr.write(`stackwise train: warning: the run report could not be written: ${(e as Error).message}\n`);
    }
  }
  const ev = result.final_eval;
  const summary: TrainSummary = {
    ok: true,
    run_dir: resolve(runDir),
    config: resolve(configPath),
    steps: total,
    steps_run: machine.step - start,
    final_loss: result.final_loss,
    val_loss: ev ? ev.nll : null,
    val_perplexity: ev ? ev.perplexity : null,
    tokens_seen: result.tokens_seen,
    wall_time_s: result.wall_time_s,
    parameters: machine.model.numParameters(),
    stacks: machine.model.model.rack.numStacks,
    report,
    last_checkpoint: result.last_checkpoint ?? null,
    phases: result.phases.map((p) => ({ name: p.name, steps: p.steps, final_loss: p.final_loss, val_loss: p.eval ? p.eval.nll : null, val_perplexity: p.eval ? p.eval.perplexity : null })),
  };
  if (result.resumed_from !== undefined) summary.resumed_from = result.resumed_from;
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
  if (s.val_loss !== null) lines.push(`final validation loss ${s.val_loss.toFixed(4)}, perplexity ${s.val_perplexity!.toFixed(2)}`);
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
    .option('--run-dir <dir>', 'run folder (default: training.run_dir of the config, else runs/<config>-<time>)')
    .option('--steps <n>', 'total steps (overrides training.total_steps)', parseSteps)
    .option('--no-report', 'do not write report.html at the end')
    .option('--json', 'machine-readable output: one JSON object per line (start, phase_start, step, eval, checkpoint, then the result)')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stackwise train                                  # the default run (about 5 minutes on 2 cores)',
      '  stackwise train my.yaml --set training.total_steps=200 --run-dir runs/try',
      '  stackwise train --resume runs/try                # after Ctrl-C or a crash',
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
