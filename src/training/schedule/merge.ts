// Resolving a phase's config: the base config of each plane with the phase's overrides merged in.
//
// Merge rules (deepMerge):
// - objects merge key by key, recursively;
// - arrays replace the base array whole (no element-wise merge: lists such as stacks or LoRA
//   targets are values, and merging by index would silently mix two lists);
// - scalars replace;
// - `null` deletes the key (how a phase removes e.g. `clip_norm` or a mask schedule; since
//   specs use absence for "not set", a literal null value is never needed);
// - `undefined` is the same as absent (TypeScript optional fields);
// - when base and override are both objects carrying a string `kind` and the kinds differ, the
//   override replaces the object whole: `{kind: 'cosine', final_fraction: 0.1}` overridden by
//   `{kind: 'constant', lr: 1e-4}` must not keep the cosine's final_fraction;
// - values that are not JSON (functions, class instances, NaN, ±Infinity) and the keys
//   `__proto__`, `constructor`, `prototype` are errors naming the path.
// Nothing is mutated: the result is a fresh tree sharing no object with base or override.

import { describeValue, isPlainObject, type JsonObject, type JsonValue, type Objective } from '../../framework/index.js';
import { PLANES, type Phase, type Plane } from './phase.js';
import type { PhaseSchedule } from './phase-schedule.js';

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export class MergeError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'MergeError';
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Deep copy of JSON data, checking that it is JSON. `null` members of objects are dropped when `dropNulls`. */
function cloneJson(value: unknown, path: string, dropNulls: boolean): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MergeError(path, `expected JSON data, found ${describeValue(value)}`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v, i) => cloneJson(v, `${path}[${i}]`, false));
  if (isPlainObject(value)) {
    const out: JsonObject = {};
    for (const [key, v] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.has(key)) throw new MergeError(join(path, key), 'this key is not allowed in a config');
      if (v === undefined || (dropNulls && v === null)) continue;
      out[key] = cloneJson(v, join(path, key), dropNulls);
    }
    return out;
  }
  throw new MergeError(path, `expected JSON data (object, list, string, number, boolean or null), found ${describeValue(value)}`);
}

/** Deep copy of a config object; anything but a plain object is an error naming the path. */
function cloneObject(value: unknown, path: string): JsonObject {
  if (!isPlainObject(value)) throw new MergeError(path || '(root)', `expected an object, found ${describeValue(value)}`);
  return cloneJson(value, path, false) as JsonObject;
}

function kindOf(o: Record<string, unknown>): string | undefined {
  return typeof o['kind'] === 'string' ? o['kind'] : undefined;
}

/** `override` merged into `base` by the rules above; `path` prefixes error messages. */
export function deepMerge(base: object, override: JsonObject, path = ''): JsonObject {
  const out = cloneObject(base, path);
  if (!isPlainObject(override)) throw new MergeError(path || '(root)', `expected an object to merge, found ${describeValue(override)}`);
  for (const [key, value] of Object.entries(override)) {
    const at = join(path, key);
    if (FORBIDDEN_KEYS.has(key)) throw new MergeError(at, 'this key is not allowed in a config');
    if (value === undefined) continue;
    if (value === null) {
      delete out[key];
      continue;
    }
    const current = out[key];
    const kindChanged =
      isPlainObject(current) && isPlainObject(value) && kindOf(value) !== undefined && kindOf(current) !== undefined && kindOf(value) !== kindOf(current);
    if (isPlainObject(current) && isPlainObject(value) && !kindChanged) {
      out[key] = deepMerge(current as JsonObject, value as JsonObject, at);
    } else {
      out[key] = cloneJson(value, at, true);
    }
  }
  return out;
}

/**
 * Base configs of the three planes; any may be missing (treated as `{}`). Typed as `object` so
 * config interfaces fit; the content is checked to be JSON data when it is merged.
 */
export type PlaneConfigs = { [P in Plane]?: object };

export interface ResolvedPlanes {
  data: JsonObject;
  model: JsonObject;
  optimizer: JsonObject;
}

/** What a run folder records for each phase. */
export interface ResolvedPhaseConfig extends ResolvedPlanes {
  index: number;
  name: string;
  start_t: number;
  end_t: number;
  task?: Objective;
}

/**
 * The config of each plane during `phase`: base ⊕ override. A phase `task` is applied as the
 * data plane's `objective` (before the phase's own data override); a data override that sets a
 * different objective in the same phase contradicts the task and is an error.
 */
export function resolvePhaseConfig(base: PlaneConfigs, phase: Phase): ResolvedPlanes {
  const dataOverride = phase.overrides.data;
  if (phase.task !== undefined && dataOverride?.['objective'] !== undefined && dataOverride['objective'] !== phase.task) {
    throw new MergeError(
      `phase '${phase.name}'.overrides.data.objective`,
      `${describeValue(dataOverride['objective'])} contradicts the phase's task '${phase.task}'; set one of them`,
    );
  }
  const resolved = {} as ResolvedPlanes;
  for (const plane of PLANES) {
    let config = cloneObject(base[plane] ?? {}, plane);
    if (plane === 'data' && phase.task !== undefined) config = deepMerge(config, { objective: phase.task }, plane);
    const override = phase.overrides[plane];
    resolved[plane] = override === undefined ? config : deepMerge(config, override, plane);
  }
  return resolved;
}

/** resolvePhaseConfig for every phase of the schedule, in order. */
export function resolveAllPhases(base: PlaneConfigs, schedule: PhaseSchedule): ResolvedPhaseConfig[] {
  return schedule.phases.map((phase, index) => {
    const resolved: ResolvedPhaseConfig = {
      index,
      name: phase.name,
      start_t: phase.start_t,
      end_t: phase.end_t,
      ...resolvePhaseConfig(base, phase),
    };
    if (phase.task !== undefined) resolved.task = phase.task;
    return resolved;
  });
}
