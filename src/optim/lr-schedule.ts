// Learning-rate schedules as pure functions of normalized time t ∈ [0, 1].
//
// Schedules are written in t, never in steps (ARCHITECTURE.md, "Time"): the TimeController turns a
// step into t, and `makeLrSchedule(spec)(t)` turns t into a learning rate. A spec is a plain,
// JSON-serialisable object so it can live in config files, phase overrides and checkpoints.
//
// Every decaying schedule states its floor as `final_fraction` of its peak `lr` (min lr =
// lr · final_fraction) rather than as an absolute value, so that scaling a parameter group's lr or
// overriding `lr` in a phase moves the floor with it.
//
// This file deliberately depends on nothing else in the project (the engine-backed optimizers that
// will live next to it import it, not the other way round).

export const LR_SCHEDULE_KINDS = ['constant', 'linear', 'cosine', 'wsd', 'warmup'] as const;
export type LrScheduleKind = (typeof LR_SCHEDULE_KINDS)[number];

export const WSD_DECAY_SHAPES = ['linear', 'cosine', '1-sqrt'] as const;
/** Shape of the WSD cool-down; '1-sqrt' is the shape Hägele et al. (2024) found best. */
export type WsdDecayShape = (typeof WSD_DECAY_SHAPES)[number];

/** lr(t) = lr. */
export interface ConstantLrSchedule {
  kind: 'constant';
  lr: number;
}

/** Straight line from lr at t = 0 to lr · final_fraction at t = 1. */
export interface LinearLrSchedule {
  kind: 'linear';
  lr: number;
  final_fraction: number;
}

/** Half cosine from lr at t = 0 down to lr · final_fraction (the min lr) at t = 1. */
export interface CosineLrSchedule {
  kind: 'cosine';
  lr: number;
  final_fraction: number;
}

/**
 * Warmup–stable–decay: linear warm-up from 0 over [0, warmup_fraction), constant lr until
 * 1 − decay_fraction, then a cool-down of the given shape to lr · final_fraction at t = 1.
 */
export interface WsdLrSchedule {
  kind: 'wsd';
  lr: number;
  warmup_fraction: number;
  decay_fraction: number;
  final_fraction: number;
  decay_shape: WsdDecayShape;
}

/**
 * Linear warm-up in front of another schedule. Over [0, warmup_fraction) the lr ramps from
 * start_fraction · after(0) to after(0); from there on the wrapped schedule runs compressed into
 * [warmup_fraction, 1], so it still reaches its own end value at t = 1 (the usual
 * "warm-up then cosine" convention).
 */
export interface WarmupLrSchedule {
  kind: 'warmup';
  warmup_fraction: number;
  start_fraction: number;
  after: ConstantLrSchedule | LinearLrSchedule | CosineLrSchedule | WsdLrSchedule;
}

export type LrScheduleSpec =
  | ConstantLrSchedule
  | LinearLrSchedule
  | CosineLrSchedule
  | WsdLrSchedule
  | WarmupLrSchedule;

/** A learning rate as a function of normalized time. */
export type LrSchedule = (t: number) => number;

// ---------------------------------------------------------------------------------------------
// Validation

/** One thing wrong with a spec: where, what was expected, what was there. */
export interface LrScheduleIssue {
  path: string;
  expected: string;
  found: string;
  hint?: string;
}

export function formatLrScheduleIssue(issue: LrScheduleIssue): string {
  const hint = issue.hint === undefined ? '' : ` (${issue.hint})`;
  return `${issue.path}: expected ${issue.expected}, found ${issue.found}${hint}`;
}

export class LrScheduleError extends Error {
  readonly issues: readonly LrScheduleIssue[];
  constructor(issues: readonly LrScheduleIssue[]) {
    super(
      issues.length === 1
        ? formatLrScheduleIssue(issues[0]!)
        : `${issues.length} problems in the lr schedule:\n` +
            issues.map((i) => `  ${formatLrScheduleIssue(i)}`).join('\n'),
    );
    this.name = 'LrScheduleError';
    this.issues = issues;
  }
}

const FIELDS: Record<LrScheduleKind, readonly string[]> = {
  constant: ['kind', 'lr'],
  linear: ['kind', 'lr', 'final_fraction'],
  cosine: ['kind', 'lr', 'final_fraction'],
  wsd: ['kind', 'lr', 'warmup_fraction', 'decay_fraction', 'final_fraction', 'decay_shape'],
  warmup: ['kind', 'warmup_fraction', 'start_fraction', 'after'],
};

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** Nearest known field name to a misspelt one (edit distance ≤ 2), for "did you mean". */
function nearestField(name: string, known: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const cur = [i];
      for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
    return prev[b.length]!;
  };
  const best = known.map((k) => ({ k, d: distance(name, k) })).sort((x, y) => x.d - y.d)[0];
  return best !== undefined && best.d <= 2 ? best.k : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface NumberRule {
  lo: number;
  hi: number;
  loOpen?: boolean;
  hiOpen?: boolean;
  expected: string;
}

const POSITIVE: NumberRule = { lo: 0, hi: Infinity, loOpen: true, expected: 'a positive number' };
const FRACTION: NumberRule = { lo: 0, hi: 1, expected: 'a number in [0, 1]' };
const WARMUP_FRACTION: NumberRule = { lo: 0, hi: 1, hiOpen: true, expected: 'a number in [0, 1)' };

/**
 * Reads and checks an lr schedule spec, appending every problem to `issues` (nothing is thrown).
 * Missing optional fields get their defaults: final_fraction 0, warmup_fraction 0 (wsd),
 * start_fraction 0, decay_shape 'linear'. The returned object is new; the input is not touched.
 * When issues were added, the returned value is not meaningful.
 */
export function readLrSchedule(value: unknown, path: string, issues: LrScheduleIssue[]): LrScheduleSpec {
  const placeholder: ConstantLrSchedule = { kind: 'constant', lr: NaN };
  if (!isRecord(value)) {
    issues.push({ path, expected: 'an lr schedule object', found: describe(value) });
    return placeholder;
  }
  const kind = value['kind'];
  if (typeof kind !== 'string' || !(LR_SCHEDULE_KINDS as readonly string[]).includes(kind)) {
    issues.push({
      path: `${path}.kind`,
      expected: `one of ${LR_SCHEDULE_KINDS.map((k) => `'${k}'`).join(', ')}`,
      found: describe(kind),
    });
    return placeholder;
  }
  const k = kind as LrScheduleKind;
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !FIELDS[k].includes(key)) {
      const near = nearestField(key, FIELDS[k]);
      issues.push({
        path: `${path}.${key}`,
        expected: `a field of a '${k}' schedule (${FIELDS[k].join(', ')})`,
        found: 'an unknown field',
        ...(near !== undefined ? { hint: `did you mean '${near}'?` } : {}),
      });
    }
  }
  const num = (key: string, rule: NumberRule, fallback?: number): number => {
    const v = value[key];
    if (v === undefined && fallback !== undefined) return fallback;
    const ok =
      typeof v === 'number' &&
      !Number.isNaN(v) &&
      (rule.loOpen ? v > rule.lo : v >= rule.lo) &&
      (rule.hiOpen ? v < rule.hi : v <= rule.hi) &&
      Number.isFinite(v);
    if (!ok) issues.push({ path: `${path}.${key}`, expected: rule.expected, found: describe(v) });
    return typeof v === 'number' ? v : NaN;
  };

  switch (k) {
    case 'constant':
      return { kind: 'constant', lr: num('lr', POSITIVE) };
    case 'linear':
    case 'cosine':
      return { kind: k, lr: num('lr', POSITIVE), final_fraction: num('final_fraction', FRACTION, 0) };
    case 'wsd': {
      const shape = value['decay_shape'] ?? 'linear';
      if (typeof shape !== 'string' || !(WSD_DECAY_SHAPES as readonly string[]).includes(shape)) {
        issues.push({
          path: `${path}.decay_shape`,
          expected: `one of ${WSD_DECAY_SHAPES.map((s) => `'${s}'`).join(', ')}`,
          found: describe(shape),
        });
      }
      const spec: WsdLrSchedule = {
        kind: 'wsd',
        lr: num('lr', POSITIVE),
        warmup_fraction: num('warmup_fraction', WARMUP_FRACTION, 0),
        decay_fraction: num('decay_fraction', FRACTION),
        final_fraction: num('final_fraction', FRACTION, 0),
        decay_shape: shape as WsdDecayShape,
      };
      if (spec.warmup_fraction + spec.decay_fraction > 1) {
        issues.push({
          path: `${path}.decay_fraction`,
          expected: `at most 1 − warmup_fraction = ${1 - spec.warmup_fraction}`,
          found: String(spec.decay_fraction),
          hint: 'warm-up and decay together cannot take more than all of t',
        });
      }
      return spec;
    }
    case 'warmup': {
      const warmup_fraction = num('warmup_fraction', WARMUP_FRACTION);
      const start_fraction = num('start_fraction', FRACTION, 0);
      const afterValue = value['after'];
      if (isRecord(afterValue) && afterValue['kind'] === 'warmup') {
        issues.push({
          path: `${path}.after.kind`,
          expected: "a schedule other than 'warmup' (warm-ups do not nest)",
          found: describe(afterValue['kind']),
        });
        return placeholder;
      }
      const after = readLrSchedule(afterValue, `${path}.after`, issues) as WarmupLrSchedule['after'];
      return { kind: 'warmup', warmup_fraction, start_fraction, after };
    }
  }
}

/** Checks a spec and returns a normalised copy (defaults filled in); throws LrScheduleError. */
export function validateLrSchedule(value: unknown, path = 'lr_schedule'): LrScheduleSpec {
  const issues: LrScheduleIssue[] = [];
  const spec = readLrSchedule(value, path, issues);
  if (issues.length > 0) throw new LrScheduleError(issues);
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** The highest lr the schedule reaches (its `lr`, or the wrapped schedule's for a warm-up). */
export function peakLr(spec: LrScheduleSpec): number {
  return spec.kind === 'warmup' ? spec.after.lr : spec.lr;
}

/** Progress through the cool-down, p ∈ [0, 1], mapped to a multiplier going 1 → 0. */
function decayMultiplier(shape: WsdDecayShape, p: number): number {
  switch (shape) {
    case 'linear':
      return 1 - p;
    case 'cosine':
      return 0.5 * (1 + Math.cos(Math.PI * p));
    case '1-sqrt':
      return 1 - Math.sqrt(p);
  }
}

/** Value of a validated, non-warm-up spec at t (t already checked). */
function evaluateBase(spec: WarmupLrSchedule['after'], t: number): number {
  switch (spec.kind) {
    case 'constant':
      return spec.lr;
    case 'linear':
      return spec.lr * (1 - t * (1 - spec.final_fraction));
    case 'cosine': {
      const f = spec.final_fraction;
      return spec.lr * (f + (1 - f) * 0.5 * (1 + Math.cos(Math.PI * t)));
    }
    case 'wsd': {
      const { lr, warmup_fraction: w, decay_fraction: d, final_fraction: f } = spec;
      if (t < w) return (lr * t) / w;
      const decayStart = 1 - d;
      if (t < decayStart || d === 0) return lr;
      const p = Math.min(1, (t - decayStart) / d);
      return lr * (f + (1 - f) * decayMultiplier(spec.decay_shape, p));
    }
  }
}

/**
 * Builds the schedule function. The spec is validated first (an invalid spec throws
 * LrScheduleError); the function throws a RangeError for t outside [0, 1] or NaN, because a
 * t out of range means the caller's time arithmetic is wrong, not that the lr should clamp.
 */
export function makeLrSchedule(specInput: LrScheduleSpec): LrSchedule {
  const spec = validateLrSchedule(specInput);
  const checkT = (t: number): void => {
    if (typeof t !== 'number' || !(t >= 0 && t <= 1)) {
      throw new RangeError(`lr schedule (${spec.kind}): t must be a number in [0, 1], found ${describe(t)}`);
    }
  };
  if (spec.kind !== 'warmup') {
    return (t) => {
      checkT(t);
      return evaluateBase(spec, t);
    };
  }
  const { warmup_fraction: w, start_fraction: s, after } = spec;
  const startLr = evaluateBase(after, 0);
  return (t) => {
    checkT(t);
    if (t < w) return startLr * (s + ((1 - s) * t) / w);
    // Clamp: (t − w) / (1 − w) can round a hair above 1 at t = 1.
    return evaluateBase(after, Math.min(1, (t - w) / (1 - w)));
  };
}
