// OptimizerSpec: optimizer type and hyper-parameters, the lr as a function of t, clipping,
// accumulation and parameter groups.

import { readLrSchedule, type LrScheduleSpec } from '../../optim/lr-schedule.js';
import { PARAM_ROLES, type ParamRole } from '../../optim/roles.js';
import {
  describeNumberRule,
  describeValue,
  FieldReader,
  NON_NEGATIVE_NUMBER,
  numberMatches,
  POSITIVE_INT,
  POSITIVE_NUMBER,
  specCodec,
  type NumberOptions,
  type SpecIssue,
} from './fields.js';

export const OPTIMIZER_TYPES = ['adamw', 'sgd'] as const;
export type OptimizerType = (typeof OPTIMIZER_TYPES)[number];

/**
 * Which t the lr schedule reads: 'global' is the run's t; 'phase' is the t local to the current
 * phase (0 at its start, 1 at its end), so each phase re-runs the schedule (e.g. re-warm-up
 * after a stack is added).
 */
export const LR_TIMES = ['global', 'phase'] as const;
export type LrTime = (typeof LR_TIMES)[number];

/** Parameter roles a group can select (optim/roles.ts PARAM_ROLES). */
export const PARAM_GROUP_NAMES = PARAM_ROLES;
export type ParamGroupName = ParamRole;

export interface ParamGroupSpec {
  name: ParamGroupName;
  /** Multiplies the scheduled lr for this group (0 keeps the group still). */
  lr_scale: number;
  /** Overrides the spec's weight_decay for this group. */
  weight_decay?: number;
}

export interface OptimizerSpec {
  type: OptimizerType;
  lr_schedule: LrScheduleSpec;
  lr_time: LrTime;
  weight_decay: number;
  /** AdamW moment decay rates (unused by SGD). */
  betas: [number, number];
  /** AdamW denominator epsilon (unused by SGD). */
  eps: number;
  /** SGD momentum (unused by AdamW). */
  momentum: number;
  nesterov: boolean;
  /** Global gradient-norm clip; absent means no clipping. */
  clip_norm?: number;
  /** Micro-batches whose gradients are summed before one update. */
  accumulation_steps: number;
  param_groups: ParamGroupSpec[];
  /** AdamW moments stored as 8-bit block-wise codes ('int8'); absent: float32. */
  state_format?: 'int8';
}

const BETA: NumberOptions = { min: 0, max: 1, maxExclusive: true };

function readParamGroup(value: unknown, path: string, issues: SpecIssue[]): ParamGroupSpec {
  const r = new FieldReader(value, path, issues);
  const group: ParamGroupSpec = {
    name: r.choice('name', PARAM_GROUP_NAMES),
    lr_scale: r.number('lr_scale', NON_NEGATIVE_NUMBER, 1),
  };
  const wd = r.optionalNumber('weight_decay', NON_NEGATIVE_NUMBER);
  if (wd !== undefined) group.weight_decay = wd;
  if (group.name === 'no_decay' && wd !== undefined && wd > 0) {
    r.issue('weight_decay', "0 (or nothing) for the 'no_decay' group", wd);
  }
  if (r.valid) r.finish();
  return group;
}

export function readOptimizerSpec(value: unknown, path: string, issues: SpecIssue[]): OptimizerSpec {
  const r = new FieldReader(value, path, issues);
  const betas = r.list('betas', (v, p) => {
    if (numberMatches(v, BETA)) return v;
    issues.push({ path: p, expected: describeNumberRule(BETA), found: describeValue(v) });
    return NaN;
  }, [0.9, 0.95]);
  if (r.valid && betas.length !== 2) r.issue('betas', 'a list of 2 numbers [beta1, beta2]', r.raw('betas'));
  const spec: OptimizerSpec = {
    type: r.choice('type', OPTIMIZER_TYPES),
    lr_schedule: r.valid ? readLrSchedule(r.raw('lr_schedule'), r.pathOf('lr_schedule'), issues) : { kind: 'constant', lr: NaN },
    lr_time: r.choice('lr_time', LR_TIMES, 'global'),
    weight_decay: r.number('weight_decay', NON_NEGATIVE_NUMBER, 0),
    betas: [betas[0] ?? NaN, betas[1] ?? NaN],
    eps: r.number('eps', POSITIVE_NUMBER, 1e-8),
    momentum: r.number('momentum', BETA, 0),
    nesterov: r.boolean('nesterov', false),
    accumulation_steps: r.number('accumulation_steps', POSITIVE_INT, 1),
    param_groups: r.list('param_groups', (v, p) => readParamGroup(v, p, issues), []),
  };
  const clip = r.optionalNumber('clip_norm', POSITIVE_NUMBER);
  if (clip !== undefined) spec.clip_norm = clip;
  if (r.choice('state_format', ['fp32', 'int8'] as const, 'fp32') === 'int8') {
    if (spec.type === 'sgd') r.issue('state_format', "'fp32' for SGD (8-bit state is AdamW's)", 'int8');
    spec.state_format = 'int8';
  }
  if (spec.nesterov && spec.momentum === 0) {
    r.issue('nesterov', 'false when momentum is 0 (Nesterov needs momentum)', true);
  }
  const seen = new Map<string, number>();
  spec.param_groups.forEach((g, i) => {
    const first = seen.get(g.name);
    if (first !== undefined) {
      issues.push({
        path: `${r.pathOf('param_groups')}[${i}].name`,
        expected: `a group name not used before (param_groups[${first}] is already '${g.name}')`,
        found: `'${g.name}'`,
      });
    } else seen.set(g.name, i);
  });
  if (r.valid) r.finish();
  return spec;
}

const optimizerCodec = specCodec(readOptimizerSpec, 'optimizer');
/** Checks a optimizer spec and returns a normalised copy; throws SpecValidationError listing every issue. */
export const validateOptimizerSpec = optimizerCodec.validate;
export const optimizerSpecToJSON = optimizerCodec.toJSON;
/** Accepts JSON text or parsed JSON; validates. */
export const optimizerSpecFromJSON = optimizerCodec.fromJSON;
