// Training modes: `training.mode` names a classic way of training — fused (the whole model),
// progressive, stack-wise, block-wise, layer-wise — and config parsing expands it into what it
// stands for: a phase schedule plus `model.progressive` settings, run by the one TrainingMachine
// like any hand-written schedule. The resolved phases (`phases/` in the run folder) show the
// expansion; `config.yaml` keeps the mode as written, so a resumed run expands it the same way.
//
//   mode          phases (one per unit)      unit                 freeze         model re-cut
//   fused         one (or your schedule)     the whole model      none           —
//   progressive   stack-1 … stack-N          a stack              none           —
//   stack_wise    stack-1 … stack-N          a stack              frozen_trunk   —
//   block_wise    block-1 … block-U          block_size blocks    frozen_trunk   U stacks of block_size blocks
//   layer_wise    layer-1 … layer-U          one block            frozen_trunk   U stacks of 1 block
// (with direction prepend the unit-wise modes use frozen_suffix: the suffix and the head stay
// frozen as the right→left curriculum's semantic anchor)
//
// A growing mode *is* the schedule: it refuses an explicit `schedule` and the model.progressive
// keys it sets (direction, growth, freeze, target_stacks); the other model.progressive keys
// (stack_lora, progressive_lora, trunk_format, seed, group_lr_scale) pass through.

import { z } from 'zod';
import { describeValue, isPlainObject, type JsonObject } from '../../framework/index.js';
import { joinPath, translateZodIssues, type ConfigIssue } from '../../framework/config/errors.js';
import { registerConfigExtension } from '../../framework/config/schema.js';
import { growthConfigSchema } from '../progressive/config.js';
import type { SimplePhaseInit } from '../schedule/simple-schedule.js';

export const TRAINING_MODES = ['fused', 'progressive', 'stack_wise', 'block_wise', 'layer_wise'] as const;
export type TrainingModeKind = (typeof TRAINING_MODES)[number];
type GrowingMode = Exclude<TrainingModeKind, 'fused'>;

/** model.progressive keys a growing mode sets itself (giving them too is an error). */
export const MODE_PROGRESSIVE_KEYS = ['direction', 'growth', 'freeze', 'target_stacks'] as const;

const snake = (v: unknown) => (typeof v === 'string' ? v.replace(/-/g, '_') : v);

/** model.progressive.growth's schema, checked under a 'growth' key so messages see the value as written. */
const growthHolder = z.strictObject({ growth: growthConfigSchema });
const growthField = z.unknown().transform((value, ctx) => {
  const r = growthHolder.safeParse({ growth: value }, { reportInput: true });
  if (r.success) return r.data.growth as JsonObject;
  for (const i of translateZodIssues(r.error.issues, { growth: value }, growthHolder)) {
    const path = i.path.split('.').slice(1);
    ctx.addIssue({ code: 'custom', message: `expected ${i.expected}`, path, params: { expected: i.expected, found: i.found, hint: i.hint } });
  }
  return z.NEVER;
});

export const trainingModeSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { kind: snake(v) } : isPlainObject(v) ? { ...v, kind: snake(v['kind']) } : v),
  z.strictObject({
    /** fused | progressive | stack_wise | block_wise | layer_wise; a string is short for {kind: …} (the README's "Training modes" table says what each expands to). */
    kind: z.enum(TRAINING_MODES),
    /** block_wise only: blocks per unit; must divide the depth n_stacks × blocks_per_stack (the rack is re-cut into stacks of this many blocks). */
    block_size: z.number().int().min(1).optional(),
    /** Growing modes: 'append' (left→right, default) or 'prepend' (right→left, the newest unit next to the embedding). */
    direction: z.enum(['append', 'prepend']).optional(),
    /** Growing modes: how each new unit starts, as model.progressive.growth (fresh, copy_top, copy_middle, identity, ramp); default fresh. */
    growth: growthField.optional(),
    /** Growing modes: the t at which phases 2 … U start (U − 1 increasing values in (0, 1)); default equal phases k/U. */
    boundaries: z.array(z.number().gt(0).lt(1)).optional(),
  }).superRefine((m, ctx) => {
    const issue = (key: string, expected: string, found: unknown) =>
      ctx.addIssue({ code: 'custom', message: `expected ${expected}`, path: [key], params: { expected, found: describeValue(found) } });
    if (m.kind === 'block_wise' && m.block_size === undefined) issue('block_size', "a block_size (blocks per unit) for mode 'block_wise'", undefined);
    if (m.kind !== 'block_wise' && m.block_size !== undefined) issue('block_size', `no block_size: only mode 'block_wise' takes one (mode '${m.kind}')`, m.block_size);
    if (m.kind === 'fused') {
      for (const key of ['direction', 'growth', 'boundaries'] as const) {
        if (m[key] !== undefined) issue(key, `no ${key}: mode 'fused' does not grow the model`, m[key]);
      }
    }
  }),
);

export type TrainingMode = z.output<typeof trainingModeSchema>;

registerConfigExtension('training', 'mode', trainingModeSchema);

/** What a mode expands into: the phases, and the model plane they override. */
export interface ModeExpansion {
  kind: TrainingModeKind;
  /** The phases (config `schedule` entries). */
  schedule: SimplePhaseInit[];
  /** The base model plane (raw) the phases override; undefined: the config's own. */
  model?: JsonObject;
  /** Units grown one per phase, and blocks per unit (growing modes). */
  units?: number;
  blocksPerUnit?: number;
}

/** The config pieces a mode reads. */
export interface ModeInputs {
  /** The model plane as written (raw), absent when the model is built in code. */
  rawModel: unknown;
  /** Validated model sizes. */
  model?: { n_stacks: number; blocks_per_stack: number };
  /** The schedule as written. */
  schedule?: readonly unknown[];
  totalSteps: number;
}

/**
 * The freeze policy of a growing mode: progressive trains everything; the unit-wise modes train
 * the newest unit over a frozen trunk (left→right) or a frozen suffix and head, the semantic
 * anchor of the right→left curriculum (prepend).
 */
function freezeOf(kind: GrowingMode, direction: 'append' | 'prepend'): 'none' | 'frozen_trunk' | 'frozen_suffix' {
  if (kind === 'progressive') return 'none';
  return direction === 'prepend' ? 'frozen_suffix' : 'frozen_trunk';
}
const PHASE_PREFIX: Record<GrowingMode, string> = { progressive: 'stack', stack_wise: 'stack', block_wise: 'block', layer_wise: 'layer' };

const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

/** Checks that a fused config does not grow: no model.progressive, no phase changing n_stacks. */
function checkFused(inputs: ModeInputs, issues: ConfigIssue[]): void {
  const why = "training.mode 'fused' trains the whole model end to end from t = 0";
  if (isPlainObject(inputs.rawModel) && inputs.rawModel['progressive'] !== undefined) {
    issues.push({ path: 'model.progressive', expected: `no model.progressive (${why}; growth and freezing contradict it)`, found: describeValue(inputs.rawModel['progressive']), hint: 'drop model.progressive, or pick a growing training.mode' });
  }
  (inputs.schedule ?? []).forEach((phase, i) => {
    const model = isPlainObject(phase) && isPlainObject(phase['overrides']) ? phase['overrides']['model'] : undefined;
    if (!isPlainObject(model)) return;
    if (model['progressive'] !== undefined) {
      issues.push({ path: joinPath(['schedule', i, 'overrides', 'model', 'progressive']), expected: `no model.progressive (${why})`, found: describeValue(model['progressive']) });
    }
    const n = model['n_stacks'];
    if (n !== undefined && inputs.model && n !== inputs.model.n_stacks) {
      issues.push({ path: joinPath(['schedule', i, 'overrides', 'model', 'n_stacks']), expected: `${inputs.model.n_stacks} (model.n_stacks: ${why})`, found: describeValue(n) });
    }
  });
}

/**
 * Expands `mode` into phases and model settings; problems are appended to `issues` (paths as the
 * user wrote them) and the result is then undefined.
 */
export function expandTrainingMode(mode: TrainingMode, inputs: ModeInputs, issues: ConfigIssue[]): ModeExpansion | undefined {
  const before = issues.length;
  if (mode.kind === 'fused') {
    checkFused(inputs, issues);
    if (issues.length > before) return undefined;
    // With a schedule (data or optimizer phases) the mode only checks it; without, one phase.
    return { kind: 'fused', schedule: inputs.schedule ? (inputs.schedule.map((p) => structuredClone(p)) as SimplePhaseInit[]) : [{ name: 'fused', start_t: 0, end_t: 1 }] };
  }
  const kind: GrowingMode = mode.kind;
  if (inputs.schedule !== undefined) {
    issues.push({ path: 'schedule', expected: `no schedule: training.mode '${kind}' is the schedule (one phase per unit)`, found: `${inputs.schedule.length} phase(s)`, hint: 'drop schedule, or drop training.mode and write the phases and model.progressive yourself' });
  }
  if (!isPlainObject(inputs.rawModel) || !inputs.model) {
    issues.push({ path: 'training.mode', expected: `a 'model' section (training.mode '${kind}' grows its stacks)`, found: 'no model section' });
    return undefined;
  }
  const rawProgressive = inputs.rawModel['progressive'];
  if (isPlainObject(rawProgressive)) {
    for (const key of MODE_PROGRESSIVE_KEYS) {
      if (rawProgressive[key] === undefined) continue;
      const use = key === 'direction' || key === 'growth' ? `set training.mode.${key} instead` : key === 'freeze' ? `the mode sets freeze '${freezeOf(kind, mode.direction ?? 'append')}'` : 'the mode grows the rack to its full depth';
      issues.push({ path: `model.progressive.${key}`, expected: `no model.progressive.${key} with training.mode '${kind}' (${use})`, found: describeValue(rawProgressive[key]) });
    }
  }

  const { n_stacks, blocks_per_stack } = inputs.model;
  const depth = n_stacks * blocks_per_stack;
  const unit = kind === 'block_wise' ? mode.block_size! : kind === 'layer_wise' ? 1 : blocks_per_stack;
  if (depth % unit !== 0) {
    issues.push({ path: 'training.mode.block_size', expected: `a divisor of the depth model.n_stacks × model.blocks_per_stack = ${n_stacks} × ${blocks_per_stack} = ${depth} blocks (${divisors(depth).join(', ')})`, found: String(unit) });
    return undefined;
  }
  const units = depth / unit;
  const starts = [0, ...(mode.boundaries ?? Array.from({ length: units - 1 }, (_, k) => (k + 1) / units))];
  if (mode.boundaries) {
    const increasing = mode.boundaries.every((b, i) => i === 0 || b > mode.boundaries![i - 1]!);
    if (mode.boundaries.length !== units - 1 || !increasing) {
      issues.push({ path: 'training.mode.boundaries', expected: `${units - 1} strictly increasing t value(s) in (0, 1): where ${units === 2 ? 'phase 2 starts' : `phases 2 … ${units} start`} (${units} unit(s) of ${unit} block(s))`, found: describeValue(mode.boundaries) });
    }
  } else if (inputs.totalSteps < units) {
    issues.push({ path: 'training.total_steps', expected: `at least ${units} (one step per phase of training.mode '${kind}': ${units} units)`, found: String(inputs.totalSteps) });
  }
  if (issues.length > before) return undefined;

  const schedule: SimplePhaseInit[] = starts.map((start_t, k) => ({
    name: `${PHASE_PREFIX[kind]}-${k + 1}`,
    start_t,
    end_t: starts[k + 1] ?? 1,
    overrides: { model: { n_stacks: k + 1 } },
  }));
  const progressive: JsonObject = {
    ...(isPlainObject(rawProgressive) ? (structuredClone(rawProgressive) as JsonObject) : {}),
    direction: mode.direction ?? 'append',
    growth: mode.growth ?? { kind: 'fresh' },
    freeze: freezeOf(kind, mode.direction ?? 'append'),
  };
  const model: JsonObject = { ...(structuredClone(inputs.rawModel) as JsonObject), n_stacks: units, blocks_per_stack: unit, progressive };
  return { kind, schedule, model, units, blocksPerUnit: unit };
}
