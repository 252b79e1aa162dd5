// PhaseSchedule: phases that tile [0, 1] exactly, and the lookup t → phase.

import { describeValue, isPlainObject, type JsonObject } from '../../framework/index.js';
import {
  BOUNDARY_TOLERANCE,
  Phase,
  ScheduleError,
  phaseLabel,
  phaseProblems,
  type PhaseInit,
  type PhaseJSON,
  type PhaseOverrides,
} from './phase.js';
import type { Objective } from '../../framework/index.js';

export interface PhaseScheduleJSON extends JsonObject {
  phases: PhaseJSON[];
}

/**
 * Phases are half-open [start_t, end_t), sorted by start_t, contiguous, covering [0, 1] with no
 * gap or overlap; t = 1 belongs to the last phase and a boundary t to the later phase. Input may
 * come in any order; messages use the phase's position in the input (`phase #i`).
 */
export class PhaseSchedule {
  readonly phases: readonly Phase[];
  /** start_t of each phase, for binary search. */
  private readonly starts: readonly number[];

  constructor(input: readonly (Phase | PhaseInit)[]) {
    if (!Array.isArray(input) || input.length === 0) {
      throw new ScheduleError([`expected at least one phase, found ${Array.isArray(input) ? 'none' : describeValue(input)}`]);
    }
    // 1. Each phase on its own.
    const problems: string[] = [];
    const built: { phase: Phase; index: number }[] = [];
    input.forEach((item, index) => {
      if (item instanceof Phase) {
        built.push({ phase: item, index });
        return;
      }
      const own = phaseProblems(item, index);
      if (own.length > 0) problems.push(...own);
      else built.push({ phase: new Phase(item, index), index });
    });
    if (problems.length > 0) throw new ScheduleError(problems);

    // 2. Names must be unique: they key the resolved configs and checkpoints.
    const byName = new Map<string, number>();
    for (const { phase, index } of built) {
      const first = byName.get(phase.name);
      if (first !== undefined) problems.push(`phase #${index} and phase #${first} are both named '${phase.name}'; phase names must be unique`);
      else byName.set(phase.name, index);
    }

    // 3. Together they must tile [0, 1].
    const sorted = [...built].sort((a, b) => a.phase.start_t - b.phase.start_t);
    const describe = (b: { phase: Phase; index: number }) =>
      `${phaseLabel(b.index, b.phase.name)} [${b.phase.start_t}, ${b.phase.end_t})`;
    const first = sorted[0]!;
    if (first.phase.start_t > BOUNDARY_TOLERANCE) {
      problems.push(`the phases must start at t = 0, but the earliest, ${describe(first)}, starts at ${first.phase.start_t}; t in [0, ${first.phase.start_t}) has no phase`);
    }
    for (let i = 0; i + 1 < sorted.length; i++) {
      const a = sorted[i]!;
      const b = sorted[i + 1]!;
      const gap = b.phase.start_t - a.phase.end_t;
      if (gap > BOUNDARY_TOLERANCE) {
        problems.push(`gap between ${describe(a)} and ${describe(b)}: t in [${a.phase.end_t}, ${b.phase.start_t}) has no phase`);
      } else if (-gap > BOUNDARY_TOLERANCE) {
        problems.push(`overlap between ${describe(a)} and ${describe(b)}: both contain t in [${b.phase.start_t}, ${Math.min(a.phase.end_t, b.phase.end_t)})`);
      }
    }
    const latest = sorted.reduce((a, b) => (b.phase.end_t >= a.phase.end_t ? b : a));
    if (1 - latest.phase.end_t > BOUNDARY_TOLERANCE) {
      problems.push(`the phases must end at t = 1, but the latest, ${describe(latest)}, ends at ${latest.phase.end_t}; t in [${latest.phase.end_t}, 1] has no phase`);
    }
    if (problems.length > 0) throw new ScheduleError(problems);

    // 4. Snap boundaries within tolerance so lookup and Phase.contains agree exactly.
    this.phases = Object.freeze(
      sorted.map(({ phase }, i) => {
        const start = i === 0 ? 0 : phase.start_t;
        const end = i === sorted.length - 1 ? 1 : sorted[i + 1]!.phase.start_t;
        return start === phase.start_t && end === phase.end_t ? phase : phase.withBounds(start, end);
      }),
    );
    this.starts = this.phases.map((p) => p.start_t);
    Object.freeze(this);
  }

  get length(): number {
    return this.phases.length;
  }

  /** Index of the phase holding t: the last phase whose start_t ≤ t (so t = 1 → last phase). */
  indexAt(t: number): number {
    if (typeof t !== 'number' || !(t >= 0 && t <= 1)) {
      throw new RangeError(`phaseAt: t must be a number in [0, 1], found ${describeValue(t)}`);
    }
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  phaseAt(t: number): Phase {
    return this.phases[this.indexAt(t)]!;
  }

  indexOf(name: string): number {
    return this.phases.findIndex((p) => p.name === name);
  }

  /** Every boundary, 0 and 1 included: [0, end of phase 0, ..., 1]. */
  transitions(): number[] {
    return [0, ...this.phases.map((p) => p.end_t)];
  }

  toJSON(): PhaseScheduleJSON {
    return { phases: this.phases.map((p) => p.toJSON()) };
  }

  /** Accepts `{phases: [...]}` or a bare list of phases. */
  static fromJSON(json: unknown): PhaseSchedule {
    const list = isPlainObject(json) ? json['phases'] : json;
    if (!Array.isArray(list)) {
      throw new ScheduleError([`expected a list of phases or {phases: [...]}, found ${describeValue(json)}`]);
    }
    return new PhaseSchedule(list as PhaseInit[]);
  }

  /** One phase over all of [0, 1]: what a run without a curriculum uses. */
  static single(options: { name?: string; task?: Objective; overrides?: PhaseOverrides } = {}): PhaseSchedule {
    return new PhaseSchedule([{ start_t: 0, end_t: 1, name: options.name ?? 'single_phase', ...withoutUndefined(options) }]);
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
