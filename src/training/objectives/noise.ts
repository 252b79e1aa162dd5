/**
 * Noise levels (mask ratios) for masked objectives.
 *
 * - Time-as-input: one denoiser sees every noise level; r is drawn per batch (or per sequence)
 *   from (seed, step), e.g. a `{ kind: 'uniform', min, max }` MaskRatioSpec.
 * - Time-as-depth: stack k of the final rack is tied to noise r_k from a `NoiseSchedule`
 *   (leftmost = noisiest), e.g. 1.00, 0.75, 0.55, 0.40, 0.25, 0.15.
 */
import { depthRatioRange, maskRatioAt, type MaskRatioSpec } from '../../framework/index.js';
import { combineSeeds, rngFor } from '../../data/rng.js';
import { ObjectiveError, type ObjectiveContext } from './types.js';

/** The default time-as-depth ladder (six stacks, leftmost = noisiest). */
export const DEFAULT_DEPTH_NOISE: readonly number[] = [1.0, 0.75, 0.55, 0.4, 0.25, 0.15];

export interface RatioRange {
  min: number;
  max: number;
}

/** One stack's noise: a fixed ratio or a MaskRatioSpec (a schedule in global t, or a range). */
export type StackNoise = number | MaskRatioSpec;

export type BuildDirection = 'append' | 'prepend';

export interface NoiseScheduleOptions {
  /**
   * 'levels' (default): stack k trains at levels[k] exactly.
   * 'bands': stack k trains at a ratio drawn from (levels[k+1], levels[k]] and the last stack
   * from (floor, levels[last]], so that together the stacks cover the whole noise range.
   */
  mode?: 'levels' | 'bands';
  /** Lowest ratio of the last band (default 1e-3). */
  floor?: number;
}

function checkRatio(r: number, what: string): void {
  if (!(typeof r === 'number' && r > 0 && r <= 1)) throw new ObjectiveError(`${what}: a mask ratio must be in (0, 1], found ${r}`);
}

/** Maps (stack index, t) → mask ratio for time-as-depth training and sampling. */
export class NoiseSchedule {
  readonly levels: readonly StackNoise[];
  readonly mode: 'levels' | 'bands';
  readonly floor: number;

  constructor(levels: readonly StackNoise[], opts: NoiseScheduleOptions = {}) {
    if (!Array.isArray(levels) || levels.length === 0) throw new ObjectiveError('NoiseSchedule: expected at least one noise level');
    levels.forEach((l, k) => {
      if (typeof l === 'number') checkRatio(l, `NoiseSchedule: levels[${k}]`);
      else if (!l || typeof l !== 'object' || !['constant', 'schedule', 'uniform'].includes((l as MaskRatioSpec).kind)) {
        throw new ObjectiveError(`NoiseSchedule: levels[${k}] must be a number or a mask ratio spec, found ${JSON.stringify(l)}`);
      }
    });
    for (let k = 1; k < levels.length; k++) {
      const a = levels[k - 1], b = levels[k];
      if (typeof a === 'number' && typeof b === 'number' && b > a) {
        throw new ObjectiveError(`NoiseSchedule: levels must not increase left→right (leftmost = noisiest), but levels[${k}] = ${b} > levels[${k - 1}] = ${a}`);
      }
    }
    this.mode = opts.mode ?? 'levels';
    this.floor = opts.floor ?? 1e-3;
    checkRatio(this.floor, 'NoiseSchedule: floor');
    if (this.mode === 'bands' && levels.some((l) => typeof l !== 'number')) {
      throw new ObjectiveError("NoiseSchedule: mode 'bands' needs numeric levels");
    }
    this.levels = levels.map((l) => (typeof l === 'number' ? l : structuredClone(l)));
  }

  /**
   * n levels from `max` (leftmost) down to `min` (rightmost): 'linear', 'geometric' (equal
   * ratios), or 'default' (the DEFAULT_DEPTH_NOISE ladder resampled to n stacks by linear
   * interpolation). n = 1 gives [max].
   */
  static ladder(n: number, opts: { max?: number; min?: number; shape?: 'linear' | 'geometric' | 'default' } & NoiseScheduleOptions = {}): NoiseSchedule {
    if (!Number.isInteger(n) || n < 1) throw new ObjectiveError(`NoiseSchedule.ladder: n must be a positive integer, found ${n}`);
    const shape = opts.shape ?? 'default';
    const max = opts.max ?? 1;
    const min = opts.min ?? (shape === 'default' ? DEFAULT_DEPTH_NOISE[DEFAULT_DEPTH_NOISE.length - 1]! : 0.15);
    checkRatio(max, 'NoiseSchedule.ladder: max');
    checkRatio(min, 'NoiseSchedule.ladder: min');
    if (min > max) throw new ObjectiveError(`NoiseSchedule.ladder: min ${min} exceeds max ${max}`);
    const levels: number[] = [];
    for (let k = 0; k < n; k++) {
      const p = n === 1 ? 0 : k / (n - 1);
      let r: number;
      if (shape === 'linear') r = max + (min - max) * p;
      else if (shape === 'geometric') r = max * Math.pow(min / max, p);
      else {
        const d = DEFAULT_DEPTH_NOISE;
        const x = p * (d.length - 1);
        const i = Math.min(d.length - 2, Math.floor(x));
        const base = d[i]! + (d[i + 1]! - d[i]!) * (x - i);
        // Rescale the default ladder's [0.15, 1] range onto [min, max].
        const lo = d[d.length - 1]!, hi = d[0]!;
        r = min === lo && max === hi ? base : min + ((base - lo) / (hi - lo)) * (max - min);
      }
      levels.push(k === n - 1 && n > 1 ? min : k === 0 ? max : r);
    }
    return new NoiseSchedule(levels, opts);
  }

  get numStacks(): number {
    return this.levels.length;
  }

  private check(stack: number, t: number): void {
    if (!Number.isInteger(stack) || stack < 0 || stack >= this.levels.length) {
      throw new ObjectiveError(`NoiseSchedule: stack index ${stack} is outside [0, ${this.levels.length}) (the schedule has ${this.levels.length} levels)`);
    }
    if (!(t >= 0 && t <= 1)) throw new ObjectiveError(`NoiseSchedule: t must be in [0, 1], found ${t}`);
  }

  /** The range r is drawn from for final stack `stack` at time t (min = max for a fixed level). */
  range(stack: number, t = 0): RatioRange {
    this.check(stack, t);
    const l = this.levels[stack]!;
    if (this.mode === 'bands') return depthRatioRange(this.levels as number[], 'bands', stack, this.floor);
    if (typeof l === 'number') return { min: l, max: l };
    return maskRatioAt(l, t);
  }

  /** The ratio of final stack `stack` at time t (the middle of its range when it is a range). */
  ratio(stack: number, t = 0): number {
    const { min, max } = this.range(stack, t);
    return min === max ? min : (min + max) / 2;
  }

  /**
   * Position of a stack in the final rack, from its position in a rack of `currentStacks` that
   * grows to `this.numStacks` by appending (left→right: positions keep) or prepending
   * (right→left: the current stacks are the rightmost ones of the final rack).
   */
  finalIndex(position: number, currentStacks: number, direction: BuildDirection): number {
    if (!Number.isInteger(currentStacks) || currentStacks < 1 || currentStacks > this.levels.length) {
      throw new ObjectiveError(`NoiseSchedule: a rack of ${currentStacks} stacks does not fit a ${this.levels.length}-level schedule`);
    }
    if (!Number.isInteger(position) || position < 0 || position >= currentStacks) {
      throw new ObjectiveError(`NoiseSchedule: stack position ${position} is outside [0, ${currentStacks})`);
    }
    return direction === 'append' ? position : this.levels.length - currentStacks + position;
  }

  toJSON(): { levels: StackNoise[]; mode: 'levels' | 'bands'; floor: number } {
    return { levels: this.levels.map((l) => (typeof l === 'number' ? l : structuredClone(l))), mode: this.mode, floor: this.floor };
  }
}

/** Where a masked objective's ratio comes from. */
export type NoiseSpec =
  /** A fixed ratio in (0, 1]. */
  | number
  /** The framework's MaskRatioSpec: constant, schedule in global t, or uniform range (time-as-input). */
  | MaskRatioSpec
  /** Time-as-depth: the ratio of final stack `stack` (a number or a getter read at every batch). */
  | { kind: 'depth'; schedule: NoiseSchedule; stack: number | (() => number) }
  /** Anything else: a function of the context and the row. */
  | ((ctx: ObjectiveContext, row: number, sampleId: number) => number);

export interface DrawOptions {
  /** A range is sampled once per batch (default) or once per sequence (stratified). */
  per?: 'batch' | 'sequence';
}

/** Tag mixed into the seed of time-as-input draws so they never correlate with mask draws. */
const TIME_TAG = 0x7153a1d5;

/**
 * One mask ratio per row. Ranges are sampled from (seed, step): per batch one uniform draw; per
 * sequence a stratified (low-discrepancy, as in MDLM) set u_b = (u₀ + b/B) mod 1.
 */
export function drawRatios(spec: NoiseSpec, ctx: ObjectiveContext, sampleIds: readonly number[], opts: DrawOptions = {}, who = 'noise'): Float64Array {
  const B = sampleIds.length;
  const out = new Float64Array(B);
  if (typeof spec === 'function') {
    for (let b = 0; b < B; b++) out[b] = spec(ctx, b, sampleIds[b]!);
  } else {
    let range: RatioRange;
    if (typeof spec === 'number') range = { min: spec, max: spec };
    else if (spec.kind === 'depth' && 'schedule' in spec) {
      const k = typeof spec.stack === 'function' ? spec.stack() : spec.stack;
      range = spec.schedule.range(k, ctx.t);
    } else range = maskRatioAt(spec, ctx.t, ctx.depthStack);
    if (range.min === range.max) out.fill(range.min);
    else {
      const u0 = rngFor(combineSeeds(ctx.seed, TIME_TAG), ctx.step).nextFloat();
      for (let b = 0; b < B; b++) {
        const u = (opts.per ?? 'batch') === 'sequence' ? (u0 + b / B) % 1 : u0;
        // (min, max]: r = max - u·(max - min) never reaches min, so a floor of 0 stays excluded.
        out[b] = range.max - u * (range.max - range.min);
      }
    }
  }
  out.forEach((r, b) => checkRatio(r, `${who}: row ${b}`));
  return out;
}
