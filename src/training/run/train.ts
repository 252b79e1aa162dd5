/**
 * The training entry points of `stackwise train`: preparing the machine of a fresh or resumed run
 * from a config file (`prepareTrainingRun`), the run report, and the summary of a finished run.
 * The command itself only parses flags, steps the machine (Ctrl-C between steps), and prints.
 */
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../../data/index.js';
import { readRunReportData, writeRunReport } from '../../io/report/index.js';
import { loadConfig, type SetOverride } from '../config/load.js';
import type { ParsedConfig } from '../config/resolve.js';
import type { TrainingCallbacks, TrainResult } from '../hooks.js';
import { TrainingMachine } from '../machine.js';
import { UsageError } from './errors.js';

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

/** The shipped config of `stackwise train --from <folder>` with no config: fine-tuning on the default data. */
export function defaultFinetuneConfigPath(): string {
  return join(packageRoot(), 'configs', 'finetune.yaml');
}

export interface TrainRunOptions {
  /** `key=value` config overrides. */
  set?: string[];
  /** false: train even when the predicted peak memory exceeds the machine (training.memory_check=false). */
  memoryCheck?: boolean;
  /** A run folder to resume (with the config recorded in it). */
  resume?: string;
  runDir?: string;
  /** Overrides training.total_steps. */
  steps?: number;
  /** A pretrained model to start from (sets model.init.from): a Hugging Face folder or a run / checkpoint folder. */
  from?: string;
}

export interface PreparedRun {
  machine: TrainingMachine;
  configPath: string;
  runDir: string;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
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

/**
 * The machine of `stackwise train`: for a fresh run (a config file, default the shipped one; the
 * run folder from opts.runDir, training.run_dir or runs/<config>-<time>) or a resume (the config
 * recorded in the run folder). Checks the config and its tokenizer file before anything is
 * written; removes a run folder it created when setting up fails.
 */
export function prepareTrainingRun(configArg: string | undefined, opts: TrainRunOptions, callbacks: TrainingCallbacks[] = []): PreparedRun {
  const set: (string | SetOverride)[] = [...(opts.set ?? [])];
  // The caller draws its own progress (or prints --json lines); 'progress' is not part of the config hash.
  // (No text: not something the user asked for, so messages do not name it.)
  set.push({ path: ['training', 'progress'], value: 'off', text: '' });
  if (opts.steps !== undefined) set.push({ path: ['training', 'total_steps'], value: opts.steps, text: `--steps ${opts.steps}` });
  if (opts.memoryCheck === false) set.push({ path: ['training', 'memory_check'], value: false, text: '--no-memory-check' });
  if (opts.from !== undefined) {
    if (opts.resume !== undefined) throw new UsageError('--from cannot be combined with --resume (a resumed run starts from its own checkpoint)');
    set.push({ path: ['model', 'init', 'from'], value: opts.from, text: `--from ${opts.from}` });
  }
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
    configPath = configArg ?? (opts.from !== undefined ? defaultFinetuneConfigPath() : defaultConfigPath());
    if (!existsSync(configPath)) throw new Error(`config file ${configPath} does not exist`);
    if (statSync(configPath).isDirectory()) throw new Error(`${configPath}: is a directory, expected a config file (YAML or JSON)`);
    runDir = '';
  }
  const parsed = loadConfig(configPath, { set });
  if (opts.resume === undefined) {
    runDir = opts.runDir ?? parsed.config.training.run_dir ?? join('runs', `${configArg ? configArg.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '') : opts.from !== undefined ? 'finetune' : 'default'}-${timestamp()}`);
    if (existsSync(runDir) && !statSync(runDir).isDirectory()) throw new Error(`${runDir}: exists and is not a folder`);
    if (existsSync(join(runDir, 'checkpoints')) && readdirSync(join(runDir, 'checkpoints')).length > 0) {
      throw new UsageError(`run folder ${runDir} already holds checkpoints; resume it with --resume ${runDir} or choose another --run-dir`);
    }
  }
  checkTokenizerFile(parsed);
  const existed = existsSync(runDir);
  try {
    const machine = new TrainingMachine(parsed, { runDir, callbacks, ...(opts.resume !== undefined ? { resume: 'latest' as const } : {}) });
    return { machine, configPath, runDir };
  } catch (error) {
    if (!existed && existsSync(runDir)) rmSync(runDir, { recursive: true, force: true });
    throw error;
  }
}

/** Writes the run report (report.html + SVG charts) from metrics.jsonl, with per-phase stack snapshots when the model plane recorded none. */
export function writeTrainingReport(runDir: string, machine: TrainingMachine): string {
  const data = readRunReportData(runDir);
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
  /** Masked diffusion: the NELBO perplexity bound of the final evaluation and its standard error. */
  val_perplexity_bound?: number;
  val_perplexity_bound_se?: number;
  tokens_seen: number;
  wall_time_s: number;
  parameters: number;
  stacks: number;
  report: string | null;
  last_checkpoint: string | null;
  phases: { name: string; steps: number; final_loss: number; val_loss: number | null; val_perplexity: number | null }[];
}

/** The summary of a finished run (what `stackwise train` prints). */
export function summarizeTraining(machine: TrainingMachine, result: TrainResult, run: { runDir: string; configPath: string; startStep: number; report: string | null }): TrainSummary {
  const ev = result.final_eval;
  const summary: TrainSummary = {
    ok: true,
    run_dir: resolve(run.runDir),
    config: resolve(run.configPath),
    steps: machine.controller.totalSteps,
    steps_run: machine.step - run.startStep,
    final_loss: result.final_loss,
    val_loss: ev ? ev.nll : null,
    val_perplexity: ev ? ev.perplexity : null,
    ...(ev?.perplexity_bound !== undefined ? { val_perplexity_bound: ev.perplexity_bound, val_perplexity_bound_se: ev.perplexity_bound * ev.nelbo_se! } : {}),
    tokens_seen: result.tokens_seen,
    wall_time_s: result.wall_time_s,
    parameters: machine.model.numParameters(),
    stacks: machine.model.model.rack.numStacks,
    report: run.report,
    last_checkpoint: result.last_checkpoint ?? null,
    phases: result.phases.map((p) => ({ name: p.name, steps: p.steps, final_loss: p.final_loss, val_loss: p.eval ? p.eval.nll : null, val_perplexity: p.eval ? p.eval.perplexity : null })),
  };
  if (result.resumed_from !== undefined) summary.resumed_from = result.resumed_from;
  return summary;
}
