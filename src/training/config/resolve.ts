// Parsing a whole config: base planes, the schedule, and the resolved config of every phase.

import { createHash } from 'node:crypto';
import { MODEL_SIZE_FIELDS, type ModelSizeField } from '../../nn/index.js';
import { isPlainObject, type JsonObject } from '../../framework/index.js';
import { ScheduleError, type PhaseInit } from '../schedule/phase.js';
import { resolvePhaseConfig, MergeError } from '../schedule/merge.js';
import { createSimpleSchedule, type SimplePhaseInit } from '../schedule/simple-schedule.js';
import { PhaseSchedule } from '../schedule/phase-schedule.js';
import { TimeController } from '../schedule/time-controller.js';
import { ConfigError, parsePath, joinPath, translateZodIssues, valueAt, type ConfigIssue, type PathSegment } from '../../framework/config/errors.js';
import { checkConfigTree } from '../../framework/config/tree.js';
import {
  planeSchemas,
  resolveLrSchedule,
  type DataPlaneConfig,
  type ModelPlaneConfig,
  type OptimizerPlaneConfig,
  type StackWiseConfig,
  type TrainingPlaneConfig,
} from '../../framework/config/schema.js';
import { expandTrainingMode, type ModeExpansion, type TrainingMode } from './modes.js';
import type { ResolvedPhase } from './resolved-phase.js';
import { applyInitFrom } from '../init-from.js';

export type { ResolvedPhase } from './resolved-phase.js';

export interface ParsedConfig {
  config: StackWiseConfig;
  schedule: PhaseSchedule;
  controller: TimeController;
  phases: ResolvedPhase[];
  /** sha256 of the canonical config (run folder, display, evaluation and checkpoint settings left out). */
  hash: string;
  /** Where it came from (a file name), for messages. */
  source?: string;
  /** The overrides applied to the file, as the user wrote them (`--set a.b=c`, `--steps 20`), for messages. */
  overrides?: string[];
  /** Which planes the config wrote itself (the optimizer plane is defaulted when absent). */
  given: { model: boolean; data: boolean; optimizer: boolean };
  /** What training.mode expanded into (absent without a mode). */
  mode?: ModeExpansion;
}

/**
 * Model fields no phase may change: the live model evolves, it is never rebuilt. Every size field
 * but those a phase may change (n_stacks; nn/size-fields.ts), and the rest of the architecture.
 */
export const FIXED_MODEL_FIELDS: readonly string[] = [
  'preset', ...(MODEL_SIZE_FIELDS as readonly ModelSizeField[]).filter((f) => !f.perPhase).map((f) => f.name),
  'dropout', 'init_seed', 'time_embedding', 'attention_kind', 'init',
];

function prefixed(issues: ConfigIssue[], plane: string, override: unknown, phase: { index: number; name: string }): ConfigIssue[] {
  return issues.map((issue) => {
    const segs = parsePath(issue.path).slice(1); // drop the plane
    let probe: PathSegment[] = segs;
    // An unknown key or a wrong value reported on a parent object may still come from the override.
    while (probe.length > 0 && valueAt(override, probe) === undefined) probe = probe.slice(0, -1);
    const fromOverride = segs.length > 0 && probe.length > 0;
    if (fromOverride) return { ...issue, path: joinPath(['schedule', phase.index, 'overrides', plane, ...segs]) };
    return { ...issue, hint: `${issue.hint ? `${issue.hint}; ` : ''}in phase '${phase.name}'` };
  });
}

/** Parses a model, data or optimizer plane on its own (paths prefixed by the plane name). */
function parsePlane<T>(plane: 'model' | 'data' | 'optimizer', raw: unknown, issues: ConfigIssue[]): T | undefined {
  const schemas = planeSchemas();
  const schema = schemas[plane];
  const r = schema.safeParse(raw, { reportInput: true });
  if (!r.success) {
    issues.push(...translateZodIssues(r.error.issues, raw, schema, [plane]));
    return undefined;
  }
  if (plane !== 'optimizer') return r.data as T;
  const opt = r.data as Record<string, unknown> & { lr?: number; lr_schedule?: unknown };
  const lrIssues: { path: string; expected: string; found: string; hint?: string }[] = [];
  const lr_schedule = resolveLrSchedule(opt, lrIssues);
  for (const i of lrIssues) issues.push({ ...i, path: `optimizer.${i.path}` });
  if (lrIssues.length > 0) return undefined;
  const { lr: _lr, ...rest } = opt;
  void _lr;
  return { ...rest, lr_schedule } as T;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Training options that do not change what is trained, left out of the hash (so a run may be
 * resumed elsewhere, or with other evaluation and checkpoint settings).
 */
const UNHASHED_TRAINING = ['run_dir', 'progress', 'tensorboard', 'eval_every', 'eval_at_phase_end', 'checkpoint_every', 'checkpoint_at_phase_end', 'keep_last', 'memory_check', 'recompute'];

/** What the hash covers: the config minus the options in UNHASHED_TRAINING. */
export function hashedView(config: StackWiseConfig): JsonObject {
  const copy = JSON.parse(JSON.stringify(config)) as JsonObject;
  const training = copy['training'] as JsonObject | undefined;
  if (training) for (const k of UNHASHED_TRAINING) delete training[k];
  return copy;
}

export function configHash(config: StackWiseConfig): string {
  return createHash('sha256').update(canonicalJson(hashedView(config))).digest('hex');
}

export interface ConfigDifference {
  path: string;
  /** Value in the first config (undefined: absent). */
  a: unknown;
  b: unknown;
}

/** Leaf-by-leaf differences between two JSON values. */
export function diffConfigs(a: unknown, b: unknown, path: PathSegment[] = []): ConfigDifference[] {
  if (canonicalJson(a) === canonicalJson(b)) return [];
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diffConfigs(a[k], b[k], [...path, k]));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((v, i) => diffConfigs(v, b[i], [...path, i]));
  }
  return [{ path: joinPath(path) || '(root)', a, b }];
}

/** Where a parsed config came from, for messages: the file, with the overrides that changed it. */
export function describeConfigSource(parsed: Pick<ParsedConfig, 'source' | 'overrides'>): string | undefined {
  if (parsed.source === undefined) return undefined;
  return parsed.overrides?.length ? `${parsed.source} with ${parsed.overrides.join(' ')}` : parsed.source;
}

/**
 * Validates a raw config (parsed YAML/JSON, or an object built in code) and resolves every
 * phase. Throws ConfigError listing every problem found.
 */
export function parseConfig(raw: unknown, options: { source?: string } = {}): ParsedConfig {
  const schemas = planeSchemas();
  const issues: ConfigIssue[] = [];
  // Before any recursive walker (zod, merges, hashing) sees it: bounded depth, no prototype keys.
  const shape = checkConfigTree(raw);
  if (shape.length > 0) throw new ConfigError(shape, options.source);
  // model.init.from: the pretrained folder's architecture and tokenizer, filled in (init-from.ts).
  const init = applyInitFrom(raw);
  if (init.issues.length > 0) throw new ConfigError(init.issues, options.source);
  raw = init.raw;
  const r = schemas.root.safeParse(raw, { reportInput: true });
  if (!r.success) throw new ConfigError(translateZodIssues(r.error.issues, raw, schemas.root), options.source);
  const parsed = r.data as Record<string, unknown> & { training: TrainingPlaneConfig; schedule?: StackWiseConfig['schedule'] };
  const rawObj = raw as Record<string, unknown>;

  const base: StackWiseConfig = { training: parsed.training } as StackWiseConfig;
  if (parsed['model'] !== undefined) base.model = parsed['model'] as ModelPlaneConfig;
  if (parsed['data'] !== undefined) base.data = parsed['data'] as DataPlaneConfig;
  if (parsed.schedule !== undefined) base.schedule = parsed.schedule;
  const optimizer = parsePlane<OptimizerPlaneConfig>('optimizer', rawObj['optimizer'] ?? { lr: 1e-3 }, issues);
  if (optimizer) base.optimizer = optimizer;
  if (issues.length > 0) throw new ConfigError(issues, options.source);

  // training.mode: its phases and model settings (modes.ts), in place of a written schedule.
  let mode: ModeExpansion | undefined;
  const modeConfig = parsed.training['mode'] as TrainingMode | undefined;
  if (modeConfig !== undefined) {
    const model = parsed['model'] as ModelPlaneConfig | undefined;
    const inputs = {
      rawModel: rawObj['model'],
      ...(model ? { model } : {}),
      ...(Array.isArray(rawObj['schedule']) ? { schedule: rawObj['schedule'] as unknown[] } : {}),
      totalSteps: parsed.training.total_steps,
    };
    mode = expandTrainingMode(modeConfig, inputs, issues);
    if (issues.length > 0) throw new ConfigError(issues, options.source);
  }

  // The schedule (a single phase when none is given).
  const phaseInits: SimplePhaseInit[] = mode
    ? mode.schedule
    : parsed.schedule
      ? parsed.schedule.map((p) => JSON.parse(JSON.stringify(p)) as SimplePhaseInit)
      : [{ start_t: 0, end_t: 1, name: 'single_phase' }];
  let schedule: PhaseSchedule;
  let controller: TimeController;
  try {
    ({ schedule, controller } = createSimpleSchedule(parsed.training.total_steps, phaseInits));
  } catch (error) {
    if (!(error instanceof ScheduleError)) throw error;
    const path = mode && !parsed.schedule ? 'training.mode' : 'schedule';
    throw new ConfigError(error.problems.map((p) => ({ path, expected: '', found: '', message: p })), options.source);
  }

  // Every phase: raw base planes ⊕ the phase's overrides, then validated.
  const rawPlanes = { data: rawObj['data'] ?? {}, model: mode?.model ?? rawObj['model'] ?? {}, optimizer: rawObj['optimizer'] ?? { lr: 1e-3 } };
  const phases: ResolvedPhase[] = [];
  // Phases in the schedule are sorted by start; map them back to their position in the config.
  const configIndex = new Map<string, number>(phaseInits.map((p, i) => [p.name ?? `phase_${i}`, i]));
  schedule.phases.forEach((phase, index) => {
    const at = { index: configIndex.get(phase.name) ?? index, name: phase.name };
    let merged: { data: JsonObject; model: JsonObject; optimizer: JsonObject };
    try {
      merged = resolvePhaseConfig(rawPlanes, phase);
    } catch (error) {
      if (!(error instanceof MergeError)) throw error;
      issues.push({ path: joinPath(['schedule', at.index]), expected: '', found: '', message: error.message });
      return;
    }
    const resolved: ResolvedPhase = { index, name: phase.name, start_t: phase.start_t, end_t: phase.end_t, optimizer: base.optimizer };
    if (phase.task !== undefined) resolved.task = phase.task;
    for (const plane of ['data', 'model', 'optimizer'] as const) {
      const override = phase.overrides[plane];
      const hasBase = rawObj[plane] !== undefined || plane === 'optimizer';
      if (!hasBase && override === undefined && !(plane === 'data' && phase.task !== undefined)) continue;
      if (!hasBase && plane !== 'data') {
        issues.push({ path: joinPath(['schedule', at.index, 'overrides', plane]), expected: '', found: '', message: `overrides the ${plane} plane, but the config has no '${plane}' section to override` });
        continue;
      }
      if (!hasBase && plane === 'data') {
        // No data section (data given as objects): only a task may change the data plane here.
        if (override !== undefined) {
          issues.push({ path: joinPath(['schedule', at.index, 'overrides', 'data']), expected: '', found: '', message: "overrides the data plane, but the config has no 'data' section to override (with data given as objects, set the phase's task instead)" });
        }
        continue;
      }
      const planeIssues: ConfigIssue[] = [];
      const value = parsePlane<never>(plane, merged[plane], planeIssues);
      issues.push(...prefixed(planeIssues, plane, override, at));
      if (value !== undefined) (resolved as unknown as Record<string, unknown>)[plane] = value;
    }
    const modelOverride = phase.overrides.model;
    if (modelOverride) {
      for (const key of FIXED_MODEL_FIELDS) {
        if (modelOverride[key] !== undefined) {
          issues.push({
            path: joinPath(['schedule', at.index, 'overrides', 'model', key]),
            expected: '',
            found: '',
            message: `a phase cannot change model.${key} (the live model evolves between phases, it is never rebuilt; growth and freezing go through the model-plane hooks)`,
          });
        }
      }
    }
    const timeProblem = timeEmbeddingProblem(resolved);
    if (timeProblem) issues.push(timeProblem);
    phases.push(resolved);
  });
  if (issues.length === 0) issues.push(...scheduleWideIssues(phases, rawPlanes.model, configIndex));
  if (issues.length > 0) throw new ConfigError(issues, options.source);

  const given = { model: rawObj['model'] !== undefined, data: rawObj['data'] !== undefined, optimizer: rawObj['optimizer'] !== undefined };
  const result: ParsedConfig = { config: base, schedule, controller, phases, hash: configHash(base), given };
  if (options.source !== undefined) result.source = options.source;
  if (mode !== undefined) result.mode = mode;
  return result;
}

/**
 * What only shows across phases, checked before anything is built (not when the offending phase
 * starts, after earlier phases trained): the live model never loses stacks, so n_stacks may not
 * shrink from one phase to the next; every phase's sequences fit max_positions (RoPE models too,
 * when they set it — learned tables are checked again against the built model); and a base
 * n_stacks that every phase overrides with fewer stacks is never used, so it is refused rather
 * than silently ignored.
 */
function scheduleWideIssues(phases: readonly ResolvedPhase[], rawModel: unknown, configIndex: ReadonlyMap<string, number>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const at = (p: ResolvedPhase, ...rest: PathSegment[]) => joinPath(['schedule', configIndex.get(p.name) ?? p.index, 'overrides', ...rest]);
  let previous: ResolvedPhase | undefined;
  for (const p of phases) {
    const stacks = p.model?.n_stacks;
    const before = previous?.model?.n_stacks;
    if (previous && stacks !== undefined && before !== undefined && stacks < before) {
      issues.push({ path: at(p, 'model', 'n_stacks'), expected: `at least ${before} (phase '${previous.name}' has ${before} stacks; the live model only ever gains stacks)`, found: `${stacks} in phase '${p.name}'` });
    }
    const seqLen = p.data?.seq_len;
    const maxPositions = p.model?.max_positions;
    if (seqLen !== undefined && maxPositions !== undefined && seqLen > maxPositions) {
      issues.push({ path: 'model.max_positions', expected: `at least data.seq_len = ${seqLen} of phase '${p.name}' (positions 0..${seqLen - 1} are used)`, found: String(maxPositions), hint: 'raise model.max_positions or lower data.seq_len' });
    }
    previous = p;
  }
  // Heads split d_model evenly, and query heads split into key/value groups evenly: the sizes are
  // fixed across phases, so the first phase with a model says it (before the model is built).
  const sizes = phases.find((p) => p.model !== undefined)?.model;
  if (sizes && typeof sizes.d_model === 'number' && typeof sizes.n_heads === 'number') {
    if (sizes.d_model % sizes.n_heads !== 0) {
      issues.push({ path: 'model.n_heads', related: ['model.d_model'], expected: `a divisor of model.d_model = ${sizes.d_model} (each head gets d_model / n_heads dimensions)`, found: String(sizes.n_heads) });
    } else if (typeof sizes.n_kv_heads === 'number' && sizes.n_heads % sizes.n_kv_heads !== 0) {
      issues.push({ path: 'model.n_kv_heads', related: ['model.n_heads'], expected: `a divisor of model.n_heads = ${sizes.n_heads} (query heads share key/value heads in equal groups)`, found: String(sizes.n_kv_heads) });
    }
  }
  const base = isPlainObject(rawModel) ? rawModel['n_stacks'] : undefined;
  const largest = Math.max(...phases.map((p) => p.model?.n_stacks ?? 0));
  if (typeof base === 'number' && phases.every((p) => p.model !== undefined) && largest > 0 && base > largest) {
    issues.push({ path: 'model.n_stacks', expected: `at most ${largest}, the most stacks any phase has (every phase sets its own n_stacks, so this value is never used)`, found: String(base), hint: 'set model.n_stacks to the final rack size' });
  }
  return issues;
}

/**
 * model.time_embedding embeds each row's noise ratio, which only masked diffusion has (MLM masks
 * a fixed share and CLM none): any other objective in a phase is an error. A phase without a data
 * section (data given as objects) is checked when it starts (the EmbeddingSpec's time_embedding).
 */
function timeEmbeddingProblem(phase: ResolvedPhase): ConfigIssue | undefined {
  const objective = phase.data?.objective;
  if (!phase.model?.time_embedding || objective === undefined || objective === 'diffusion') return undefined;
  return {
    path: 'model.time_embedding',
    expected: "objective 'diffusion' in every phase (the time embedding reads each row's noise ratio, which only masked diffusion gives)",
    found: `objective '${objective}' in phase '${phase.name}'`,
    hint: 'remove model.time_embedding, or train this phase with data.objective: diffusion',
  };
}

/** A schedule built in code, as config `schedule` entries. */
export function scheduleToConfig(schedule: PhaseSchedule): PhaseInit[] {
  return schedule.phases.map((p) => p.toInit());
}
