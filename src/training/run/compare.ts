/**
 * `stackwise compare`: is growing the model worth it? Trains a progressive config and the same
 * final model end to end (from step 0, no growth, one phase) for the same estimated training
 * FLOPs, for seeds 0..N-1, records each run's validation curve against cumulative training FLOPs
 * and its final validation loss, and says how sure the difference is (a paired t interval over
 * the seeds). Writes compare.html and compare.json into an output folder, each run's own folder
 * (metrics, report, final checkpoint) under seed-<s>/.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { isPlainObject } from '../../framework/index.js';
import { renderCompareHtml, VARIANT_LABEL, type CompareReportData, type CompareRun, type CompareVariant, type CompareVerdict, type ComparePoint } from '../../io/report/index.js';
import { applySetOverrides, loadConfig, parseConfigText, readConfigFile } from '../config/load.js';
import { parseConfig, type ParsedConfig } from '../config/resolve.js';
import type { TrainResult } from '../hooks.js';
import { TrainingMachine } from '../machine.js';
import { UsageError } from './errors.js';
import { defaultConfigPath, writeTrainingReport } from './train.js';

export const COMPARE_HTML = 'compare.html';
export const COMPARE_JSON = 'compare.json';
/** More seeds than this is a benchmark campaign, not a command line. */
export const MAX_COMPARE_SEEDS = 64;

type Raw = Record<string, unknown>;

/** Total stacked blocks of a phase's model. */
function depthOf(parsed: ParsedConfig, i: number): { stacks: number; blocks: number } {
  const m = parsed.phases[i]?.model;
  const stacks = m?.n_stacks ?? 1;
  return { stacks, blocks: stacks * (m?.blocks_per_stack ?? 1) };
}

/**
 * Refuses a config that does not grow: comparing needs a schedule whose later phases have a
 * deeper model than the first (a written schedule or a growing training.mode).
 */
export function checkProgressive(parsed: ParsedConfig, source: string): void {
  const n = parsed.phases.length;
  const first = depthOf(parsed, 0);
  const last = depthOf(parsed, n - 1);
  if (n < 2 || last.blocks <= first.blocks) {
    throw new Error(`${source}: stackwise compare needs a progressive config — a schedule of two or more phases whose model grows `
      + `(e.g. schedule: [{ name: one, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }, { name: two, start_t: 0.5, end_t: 1 }], or training.mode: progressive); `
      + `this config trains ${first.stacks} stack(s) of ${first.blocks / first.stacks} block(s) in ${n} phase(s)${n > 1 ? ` and ends with ${last.stacks} stack(s)` : ''}, so there is nothing to compare against`);
  }
}

/**
 * The end-to-end twin of a progressive raw config: the final phase's model (its stacks and
 * blocks, and the model overrides the last written phase gives) from step 0, without
 * model.progressive, schedule or training.mode, trained for `steps` steps.
 */
export function endToEndConfig(raw: Raw, parsed: ParsedConfig, steps: number): Raw {
  const out = structuredClone(raw);
  const lastIndex = parsed.phases.length - 1;
  const schedule = Array.isArray(raw['schedule']) ? raw['schedule'] as unknown[] : [];
  const lastWritten = schedule[lastIndex];
  const overrides = isPlainObject(lastWritten) && isPlainObject(lastWritten['overrides']) && isPlainObject(lastWritten['overrides']['model'])
    ? lastWritten['overrides']['model'] as Raw : {};
  const finalModel = parsed.phases[lastIndex]!.model;
  const model: Raw = { ...(isPlainObject(raw['model']) ? raw['model'] as Raw : {}), ...structuredClone(overrides) };
  delete model['progressive'];
  if (finalModel) {
    model['n_stacks'] = finalModel.n_stacks;
    model['blocks_per_stack'] = finalModel.blocks_per_stack;
  }
  out['model'] = model;
  delete out['schedule'];
  const training = { ...(isPlainObject(out['training']) ? out['training'] as Raw : {}) };
  delete training['mode'];
  training['total_steps'] = steps;
  out['training'] = training;
  return out;
}

/**
 * Steps of the end-to-end run for the progressive run's estimated training FLOPs: the end-to-end
 * model is the progressive run's final model, so one of its steps costs what a step of the last
 * phase cost times `costRatio` (end-to-end / last-phase training FLOPs per token: 1 when the last
 * phase trains the whole model, more when it freezes a trunk; see `endToEndCostRatio`).
 */
export function equalFlopsSteps(progressive: TrainResult, costRatio = 1): number {
  const last = progressive.phases.at(-1);
  if (!last || last.steps === 0 || !(last.flops > 0)) throw new Error('the progressive run recorded no FLOPs in its last phase');
  if (!(costRatio > 0) || !Number.isFinite(costRatio)) throw new Error(`the end-to-end cost ratio must be a positive number, found ${costRatio}`);
  return Math.max(1, Math.round(progressive.flops / ((last.flops / last.steps) * costRatio)));
}

/**
 * Training FLOPs per token of the final model with every weight trainable over those of the
 * machine's last phase as it trained (ModelAdapter.flopsPerToken, what the machine counts): a
 * frozen or adapter-only trunk in the last phase skips weight gradients that end to end computes.
 */
export function endToEndCostRatio(machine: TrainingMachine): number {
  const f = machine.model.flopsPerToken(machine.data.getBatchSpec().seq_len);
  return f.trainAll / f.train;
}

/** Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom. */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

function t95(df: number): number {
  return df <= 30 ? T95[df - 1]! : df <= 60 ? 2.0 : df <= 120 ? 1.98 : 1.96;
}

const nats = (v: number) => v.toFixed(v !== 0 && Math.abs(v) < 0.01 ? 4 : 3);

/**
 * The verdict over seeds: per-seed differences of final validation loss (progressive − end to
 * end), their mean with its standard error, and a paired t interval (95%). One seed cannot tell.
 */
export function compareVerdict(progressive: (number | null)[], endToEnd: (number | null)[]): CompareVerdict {
  const n = Math.min(progressive.length, endToEnd.length);
  const base = { seeds: n, differences: [] as number[], mean_difference: null, standard_error: null, t: null, df: null, interval95: null, better: null };
  const pairs = Array.from({ length: n }, (_, i) => [progressive[i], endToEnd[i]] as const);
  if (n === 0 || pairs.some(([p, e]) => typeof p !== 'number' || typeof e !== 'number' || !Number.isFinite(p) || !Number.isFinite(e))) {
    return { ...base, text: 'no verdict: some run has no finite final validation loss (does the config have a validation split, data.split.val > 0? did a run diverge?)' };
  }
  const d = pairs.map(([p, e]) => p! - e!);
  const mean = d.reduce((a, b) => a + b, 0) / n;
  const lead = mean < 0 ? 'progressive' : 'end to end';
  if (n === 1) {
    return {
      ...base, differences: d, mean_difference: mean,
      text: `one seed cannot tell: on seed 0 ${mean === 0 ? 'both reach the same final validation loss' : `${lead} ends ${nats(Math.abs(mean))} nats lower`}, but without a second seed there is no spread to judge that by; run with --seeds 3 or more`,
    };
  }
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const se = sd / Math.sqrt(n);
  const df = n - 1;
  const half = t95(df) * se;
  const interval: [number, number] = [mean - half, mean + half];
  const t = se > 0 ? mean / se : mean === 0 ? 0 : Math.sign(mean) * Infinity;
  const excludes = interval[0] > 0 || interval[1] < 0;
  const better: CompareVariant | null = excludes ? (mean < 0 ? 'progressive' : 'end_to_end') : null;
  const stat = `t = ${Number.isFinite(t) ? t.toFixed(2) : '±∞'}, ${df} df`;
  const text = better
    ? `${VARIANT_LABEL[better]} is better by ${nats(Math.abs(mean))} ± ${nats(se)} nats (${n} seeds; 95% interval of progressive − end to end [${nats(interval[0])}, ${nats(interval[1])}] excludes 0; paired ${stat})`
    : `no clear difference: progressive − end to end = ${nats(mean)} ± ${nats(se)} nats (${n} seeds; 95% interval [${nats(interval[0])}, ${nats(interval[1])}] includes 0; paired ${stat})`;
  return { seeds: n, differences: d, mean_difference: mean, standard_error: se, t, df, interval95: interval, better, text };
}

export interface CompareOptions {
  /** `key=value` config overrides (both runs). */
  set?: string[];
  /** Seeds 0..seeds-1 (training.seed); default 1. */
  seeds?: number;
  /** Overrides training.total_steps of the progressive run. */
  steps?: number;
  /** Output folder (default runs/compare-<config>-<time>). */
  out?: string;
  /** Told when each run starts and ends (the CLI prints progress). */
  onRunStart?(info: { seed: number; variant: CompareVariant; steps: number; run_dir: string }): void;
  onRunEnd?(run: CompareRun): void;
}

export interface CompareResult extends CompareReportData {
  out_dir: string;
  html: string;
  json: string;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

/** Trains one config, recording the validation curve against cumulative FLOPs. */
function trainOne(parsed: ParsedConfig, variant: CompareVariant, seed: number, runDir: string): { run: CompareRun; result: TrainResult; costRatio: number } {
  const flopsAfter = new Map<number, number>([[0, 0]]);
  const curve: ComparePoint[] = [];
  const machine = new TrainingMachine(parsed, {
    runDir,
    callbacks: [{
      onStep: (m) => { flopsAfter.set(m.step + 1, m.flops_seen); },
      onEval: (e) => {
        const point = { step: e.step, flops: flopsAfter.get(e.step) ?? NaN, val_loss: e.nll };
        // A phase-end and the final evaluation can fall on the same step: one point per step.
        if (curve.at(-1)?.step === e.step) curve[curve.length - 1] = point;
        else curve.push(point);
      },
    }],
  });
  try {
    const result = machine.train();
    try {
      writeTrainingReport(runDir, machine);
    } catch { /* the run's own report is a convenience; the comparison does not depend on it */ }
    let acc = 0;
    const phases = result.phases.map((p) => {
      const start = acc;
      acc += p.flops;
      return { name: p.name, flops_start: start, flops_end: acc };
    });
    const run: CompareRun = {
      variant, seed, run_dir: resolve(runDir), steps: result.total_steps, flops: result.flops, tokens: result.tokens_seen,
      wall_s: result.wall_time_s, final_val_loss: result.final_eval ? result.final_eval.nll : null, curve, phases,
    };
    return { run, result, costRatio: endToEndCostRatio(machine) };
  } finally {
    machine.dispose();
  }
}

/** Runs the comparison and writes compare.html and compare.json; returns what it wrote. */
export function runComparison(configArg: string | undefined, opts: CompareOptions = {}): CompareResult {
  const seeds = opts.seeds ?? 1;
  if (!Number.isSafeInteger(seeds) || seeds < 1 || seeds > MAX_COMPARE_SEEDS) throw new UsageError(`--seeds: expected an integer from 1 to ${MAX_COMPARE_SEEDS}, found ${seeds}`);
  const configPath = configArg ?? defaultConfigPath();
  if (!existsSync(configPath)) throw new Error(`config file ${configPath} does not exist`);
  if (statSync(configPath).isDirectory()) throw new Error(`${configPath}: is a directory, expected a config file (YAML or JSON)`);
  const set = [...(opts.set ?? []), 'training.progress=off'];
  if (opts.steps !== undefined) set.push(`training.total_steps=${opts.steps}`);
  // Validated with the file's and the overrides' names in messages, then checked for growth.
  const parsed = loadConfig(configPath, { set });
  checkProgressive(parsed, configPath);
  const raw = applySetOverrides(parseConfigText(readConfigFile(configPath), configPath), set) as Raw;
  if (isPlainObject(raw['training'])) delete (raw['training'] as Raw)['run_dir'];

  const name = configPath.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '');
  const outDir = opts.out ?? join('runs', `compare-${name}-${timestamp()}`);
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0)) {
    throw new UsageError(`output folder ${outDir} exists and is not empty; choose another --out`);
  }
  mkdirSync(outDir, { recursive: true });

  let costRatio = 1;
  const runs: CompareRun[] = [];
  const ratios: number[] = [];
  let e2eSteps = 0;
  for (let seed = 0; seed < seeds; seed++) {
    const seeded = structuredClone(raw);
    seeded['training'] = { ...(seeded['training'] as Raw), seed };
    const progDir = join(outDir, `seed-${seed}`, 'progressive');
    opts.onRunStart?.({ seed, variant: 'progressive', steps: parsed.controller.totalSteps, run_dir: resolve(progDir) });
    const prog = trainOne(parseConfig(seeded, { source: configPath }), 'progressive', seed, progDir);
    runs.push(prog.run);
    opts.onRunEnd?.(prog.run);
    costRatio = prog.costRatio;
    e2eSteps = equalFlopsSteps(prog.result, costRatio);
    const e2eParsed = parseConfig(endToEndConfig(seeded, parsed, e2eSteps), { source: `${configPath} (end to end)` });
    const e2eDir = join(outDir, `seed-${seed}`, 'end-to-end');
    opts.onRunStart?.({ seed, variant: 'end_to_end', steps: e2eSteps, run_dir: resolve(e2eDir) });
    const e2e = trainOne(e2eParsed, 'end_to_end', seed, e2eDir);
    runs.push(e2e.run);
    opts.onRunEnd?.(e2e.run);
    ratios.push(e2e.run.flops / prog.run.flops);
  }
  const final = (v: CompareVariant) => runs.filter((r) => r.variant === v).map((r) => r.final_val_loss);
  const data: CompareReportData = {
    name, config: resolve(configPath), generated_at: new Date().toISOString(),
    progressive_steps: parsed.controller.totalSteps, end_to_end_steps: e2eSteps, cost_ratio: costRatio, flops_ratios: ratios,
    runs, verdict: compareVerdict(final('progressive'), final('end_to_end')),
  };
  const html = join(outDir, COMPARE_HTML);
  const json = join(outDir, COMPARE_JSON);
  writeFileAtomic(json, JSON.stringify(data, null, 1) + '\n');
  writeFileAtomic(html, renderCompareHtml(data));
  return { ...data, out_dir: resolve(outDir), html: resolve(html), json: resolve(json) };
}
