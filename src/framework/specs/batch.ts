// BatchSpec: what one training batch looks like (shape, vocabulary, objective, corruption).

import {
  describeNumberRule,
  describeValue,
  FieldReader,
  NON_NEGATIVE_INT,
  numberMatches,
  POSITIVE_INT,
  specCodec,
  type NumberOptions,
  type SpecIssue,
} from './fields.js';
import { OBJECTIVES, type Objective } from './objective.js';

export const MASK_SCHEDULE_SHAPES = ['linear', 'cosine', 'exponential'] as const;
export type MaskScheduleShape = (typeof MASK_SCHEDULE_SHAPES)[number];

/**
 * How many tokens an MLM / diffusion batch corrupts. All ratios lie in (0, 1]: a ratio of 0
 * would score nothing (and break MDLM's 1/r loss weight).
 * - constant: the same ratio always (BERT: 0.15).
 * - schedule: a ratio that moves with global t from `start` to `end` (curriculum on noise).
 * - uniform: a ratio drawn per batch from (min, max] (time-as-input masked diffusion; the
 *   objectives can also draw it per sequence, stratified).
 * - depth: time-as-depth — stack k of the final rack is tied to noise level `levels[k]`
 *   (leftmost = noisiest, so the levels never increase); a batch is corrupted at the level of the
 *   stack being trained. `mode: 'bands'` draws r from (levels[k+1], levels[k]] instead (the last
 *   stack from (DEPTH_FLOOR, levels[last]]), so that together the stacks cover every noise level.
 */
export type MaskRatioSpec =
  | { kind: 'constant'; ratio: number }
  | { kind: 'schedule'; shape: MaskScheduleShape; start: number; end: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'depth'; levels: number[]; mode: DepthNoiseMode };

export const DEPTH_NOISE_MODES = ['levels', 'bands'] as const;
export type DepthNoiseMode = (typeof DEPTH_NOISE_MODES)[number];
/** Lowest ratio of the last band of a 'bands' depth schedule. */
export const DEPTH_FLOOR = 1e-3;

export interface BatchSpec {
  batch_size: number;
  seq_len: number;
  vocab_size: number;
  objective: Objective;
  /** Present for mlm/diffusion (defaulted by validation), absent for clm. */
  mask?: MaskRatioSpec;
  pad_token_id?: number;
  mask_token_id?: number;
}

/** Default corruption when a masking objective names none. */
export const DEFAULT_MLM_MASK: MaskRatioSpec = { kind: 'constant', ratio: 0.15 };
export const DEFAULT_DIFFUSION_MASK: MaskRatioSpec = { kind: 'uniform', min: 1e-3, max: 1 };

const RATIO: NumberOptions = { min: 0, max: 1, minExclusive: true };

export function readMaskRatio(value: unknown, path: string, issues: SpecIssue[]): MaskRatioSpec {
  const r = new FieldReader(value, path, issues, 'a mask ratio object');
  const kind = r.choice('kind', ['constant', 'schedule', 'uniform', 'depth'] as const);
  let spec: MaskRatioSpec;
  if (kind === 'constant') {
    spec = { kind, ratio: r.number('ratio', RATIO) };
  } else if (kind === 'schedule') {
    spec = {
      kind,
      shape: r.choice('shape', MASK_SCHEDULE_SHAPES, 'linear'),
      start: r.number('start', RATIO),
      end: r.number('end', RATIO),
    };
  } else if (kind === 'uniform') {
    spec = { kind, min: r.number('min', RATIO), max: r.number('max', RATIO) };
    if (spec.min > spec.max) r.issue('min', `at most ${path}.max (${spec.max})`, spec.min);
  } else {
    const levels = r.list('levels', (v, p) => {
      if (!numberMatches(v, RATIO)) issues.push({ path: p, expected: describeNumberRule(RATIO), found: describeValue(v) });
      return v as number;
    });
    if (r.valid && Array.isArray(r.raw('levels')) && levels.length === 0) r.issue('levels', 'at least one noise level (one per stack of the final rack)', levels);
    for (let k = 1; k < levels.length; k++) {
      if (levels[k]! > levels[k - 1]!) {
        issues.push({ path: `${r.pathOf('levels')}[${k}]`, expected: `at most levels[${k - 1}] = ${levels[k - 1]} (levels never increase left→right: the leftmost stack is the noisiest)`, found: describeValue(levels[k]) });
      }
    }
    spec = { kind, levels, mode: r.choice('mode', DEPTH_NOISE_MODES, 'levels') };
  }
  if (r.valid) r.finish();
  return spec;
}

export function readBatchSpec(value: unknown, path: string, issues: SpecIssue[]): BatchSpec {
  const r = new FieldReader(value, path, issues);
  const spec: BatchSpec = {
    batch_size: r.number('batch_size', POSITIVE_INT),
    seq_len: r.number('seq_len', POSITIVE_INT),
    vocab_size: r.number('vocab_size', POSITIVE_INT),
    objective: r.choice('objective', OBJECTIVES),
  };
  const mask = r.raw('mask');
  if (spec.objective === 'clm') {
    if (mask !== undefined && r.valid) {
      r.issue('mask', "no mask ratio for objective 'clm' (CLM corrupts no tokens)", mask);
    }
  } else if (mask !== undefined) {
    spec.mask = readMaskRatio(mask, r.pathOf('mask'), issues);
  } else {
    spec.mask = spec.objective === 'mlm' ? { ...DEFAULT_MLM_MASK } : { ...DEFAULT_DIFFUSION_MASK };
  }
  for (const key of ['pad_token_id', 'mask_token_id'] as const) {
    const id = r.optionalNumber(key, NON_NEGATIVE_INT);
    if (id === undefined) continue;
    spec[key] = id;
    if (id >= spec.vocab_size) r.issue(key, `a token id below ${path}.vocab_size (${spec.vocab_size})`, id);
  }
  if (spec.pad_token_id !== undefined && spec.pad_token_id === spec.mask_token_id) {
    r.issue('mask_token_id', `a token id different from ${path}.pad_token_id`, spec.mask_token_id);
  }
  if (r.valid) r.finish();
  return spec;
}

const batchCodec = specCodec(readBatchSpec, 'batch');
/** Checks a batch spec and returns a normalised copy; throws SpecValidationError listing every issue. */
export const validateBatchSpec = batchCodec.validate;
export const batchSpecToJSON = batchCodec.toJSON;
/** Accepts JSON text or parsed JSON; validates. */
export const batchSpecFromJSON = batchCodec.fromJSON;

/** Range the mask ratio is drawn from at global time t; `min === max` for a fixed ratio. */
export interface MaskRatioRange {
  min: number;
  max: number;
}

/**
 * The range of stack `stack` in a time-as-depth ladder: exactly levels[stack] ('levels'), or the
 * band (levels[stack+1], levels[stack]] ('bands'; the last stack's band ends at `floor`).
 */
export function depthRatioRange(levels: readonly number[], mode: DepthNoiseMode, stack: number, floor = DEPTH_FLOOR): MaskRatioRange {
  if (!Number.isInteger(stack) || stack < 0 || stack >= levels.length) {
    throw new RangeError(`time-as-depth: stack index ${stack} is outside [0, ${levels.length}) (the noise ladder has ${levels.length} levels, one per stack of the final rack)`);
  }
  const hi = levels[stack]!;
  if (mode === 'levels') return { min: hi, max: hi };
  const lo = stack + 1 < levels.length ? levels[stack + 1]! : Math.min(floor, hi);
  return { min: Math.min(lo, hi), max: hi };
}

/**
 * Range the mask ratio is drawn from at global time t. A 'depth' spec also needs `depthStack`:
 * the index, in the final rack, of the stack being trained.
 */
export function maskRatioAt(mask: MaskRatioSpec, t: number, depthStack?: number): MaskRatioRange {
  if (!(t >= 0 && t <= 1)) throw new RangeError(`maskRatioAt: t must be a number in [0, 1], found ${t}`);
  switch (mask.kind) {
    case 'depth':
      if (depthStack === undefined) {
        throw new RangeError("mask kind 'depth' (time-as-depth) ties the ratio to the stack being trained, but no stack index is known here: it needs a model that grows (model.progressive)");
      }
      return depthRatioRange(mask.levels, mask.mode, depthStack);
    case 'constant':
      return { min: mask.ratio, max: mask.ratio };
    case 'uniform':
      return { min: mask.min, max: mask.max };
    case 'schedule': {
      const { start, end } = mask;
      let r: number;
      if (mask.shape === 'linear') r = start + (end - start) * t;
      else if (mask.shape === 'cosine') r = start + (end - start) * 0.5 * (1 - Math.cos(Math.PI * t));
      else r = start * Math.pow(end / start, t); // geometric: equal ratios per equal step in t
      if (t === 1) r = end; // exact end value regardless of rounding
      return { min: r, max: r };
    }
  }
}
