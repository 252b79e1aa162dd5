// Phase: one half-open interval [start_t, end_t) of normalized time, with the objective it trains
// and what it changes in each plane (data, model, optimizer) relative to the base config.

import { closestName, describeValue, OBJECTIVES, isPlainObject, type JsonObject, type Objective } from '../../framework/index.js';

export const PLANES = ['data', 'model', 'optimizer'] as const;
export type Plane = (typeof PLANES)[number];

/** Per-plane partial configs, deep-merged into the base config (see resolvePhaseConfig). */
export type PhaseOverrides = { [P in Plane]?: JsonObject };

export interface PhaseInit {
  start_t: number;
  end_t: number;
  /** Unique within a schedule; defaults to `phase_<index>`. */
  name?: string;
  /** The objective trained in this phase; applied as the data plane's `objective`. */
  task?: Objective;
  overrides?: PhaseOverrides;
}

/** The serialised form: PhaseInit with the name always present. */
export interface PhaseJSON extends JsonObject {
  start_t: number;
  end_t: number;
  name: string;
  task?: Objective;
  overrides: JsonObject;
}

/**
 * Two boundaries closer than this are the same boundary, so 0.1 + 0.2 meets 0.3; the schedule
 * then snaps them to one value. It also is the shortest allowed phase.
 */
export const BOUNDARY_TOLERANCE = 1e-9;

/** Thrown for every invalid phase or schedule; `problems` has one line per problem. */
export class ScheduleError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(
      problems.length === 1
        ? `invalid phase schedule: ${problems[0]}`
        : `invalid phase schedule (${problems.length} problems):\n` + problems.map((p) => `  ${p}`).join('\n'),
    );
    this.name = 'ScheduleError';
    this.problems = problems;
  }
}

/** `phase #1 'grow'`: the words every schedule message uses to point at a phase. */
export function phaseLabel(index: number | undefined, name: unknown): string {
  const at = index === undefined ? 'phase' : `phase #${index}`;
  return typeof name === 'string' && name.length > 0 ? `${at} '${name}'` : at;
}

const PHASE_FIELDS = ['start_t', 'end_t', 'name', 'task', 'overrides'];

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Every problem with one phase's own fields (not its place in a schedule). */
export function phaseProblems(init: unknown, index?: number): string[] {
  if (!isPlainObject(init)) return [`${phaseLabel(index, undefined)}: expected an object, found ${describeValue(init)}`];
  const label = phaseLabel(index, init['name']);
  const problems: string[] = [];
  for (const key of Object.keys(init)) {
    if (PHASE_FIELDS.includes(key) || init[key] === undefined) continue;
    const near = closestName(key, PHASE_FIELDS);
    problems.push(`${label}: unknown field '${key}' (known: ${PHASE_FIELDS.join(', ')}${near ? `; did you mean '${near}'?` : ''})`);
  }
  const bounds: number[] = [];
  for (const key of ['start_t', 'end_t'] as const) {
    const v = init[key];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      problems.push(`${label}: ${key} must be a number in [0, 1], found ${describeValue(v)}`);
    } else bounds.push(v);
  }
  if (bounds.length === 2 && !(bounds[1]! - bounds[0]! > BOUNDARY_TOLERANCE)) {
    problems.push(`${label}: start_t (${bounds[0]}) must be less than end_t (${bounds[1]})`);
  }
  const name = init['name'];
  if (name !== undefined && (typeof name !== 'string' || name.trim().length === 0)) {
    problems.push(`${label}: name must be a non-empty string, found ${describeValue(name)}`);
  }
  const task = init['task'];
  if (task !== undefined && !(OBJECTIVES as readonly unknown[]).includes(task)) {
    problems.push(`${label}: task must be one of ${OBJECTIVES.map((o) => `'${o}'`).join(', ')}, found ${describeValue(task)}`);
  }
  const overrides = init['overrides'];
  if (overrides !== undefined) {
    if (!isPlainObject(overrides)) {
      problems.push(`${label}: overrides must be an object with data/model/optimizer entries, found ${describeValue(overrides)}`);
    } else {
      for (const [plane, value] of Object.entries(overrides)) {
        if (value === undefined) continue;
        if (!(PLANES as readonly string[]).includes(plane)) {
          const near = closestName(plane, PLANES);
          problems.push(`${label}: overrides.${plane} is not a plane (expected data, model or optimizer${near ? `; did you mean '${near}'?` : ''})`);
        } else if (!isPlainObject(value)) {
          problems.push(`${label}: overrides.${plane} must be an object, found ${describeValue(value)}`);
        }
      }
    }
  }
  return problems;
}

export class Phase {
  readonly start_t: number;
  readonly end_t: number;
  readonly name: string;
  readonly task: Objective | undefined;
  /** Deep-frozen copy of the overrides given at construction. */
  readonly overrides: Readonly<PhaseOverrides>;

  /** Validates `init` (throws ScheduleError); `index` only labels messages and the default name. */
  constructor(init: PhaseInit, index?: number) {
    const problems = phaseProblems(init, index);
    if (problems.length > 0) throw new ScheduleError(problems);
    this.start_t = init.start_t;
    this.end_t = init.end_t;
    this.name = init.name ?? (index === undefined ? 'phase' : `phase_${index}`);
    this.task = init.task;
    const overrides: PhaseOverrides = {};
    for (const plane of PLANES) {
      const o = init.overrides?.[plane];
      if (o !== undefined) overrides[plane] = structuredClone(o);
    }
    this.overrides = deepFreeze(overrides);
    Object.freeze(this);
  }

  /** Half-open membership: start_t ≤ t < end_t. (PhaseSchedule gives t = 1 to the last phase.) */
  contains(t: number): boolean {
    return t >= this.start_t && t < this.end_t;
  }

  /** Position of global t inside this phase: 0 at start_t, 1 at end_t, clamped to [0, 1]. */
  localT(t: number): number {
    return Math.min(1, Math.max(0, (t - this.start_t) / (this.end_t - this.start_t)));
  }

  /** Same phase with other bounds (used when a schedule snaps near-equal boundaries). */
  withBounds(start_t: number, end_t: number): Phase {
    return new Phase({ ...this.toInit(), start_t, end_t });
  }

  toInit(): PhaseInit {
    const init: PhaseInit = { start_t: this.start_t, end_t: this.end_t, name: this.name, overrides: structuredClone(this.overrides) };
    if (this.task !== undefined) init.task = this.task;
    return init;
  }

  toJSON(): PhaseJSON {
    const json: PhaseJSON = { start_t: this.start_t, end_t: this.end_t, name: this.name, overrides: structuredClone(this.overrides) as JsonObject };
    if (this.task !== undefined) json.task = this.task;
    return json;
  }

  static fromJSON(json: unknown, index?: number): Phase {
    return new Phase(json as PhaseInit, index);
  }
}
