// Config errors: every problem as `path: expected X, found Y (hint)`, collected before throwing.
//
// Zod issues are translated here. The "found" part is read from the raw input (not from zod's
// message), unknown keys get the nearest valid name ("did you mean"), and custom refinements
// carry their own expected/found in `params`.

import type { z } from 'zod';
import { closestName, describeValue } from '../specs/fields.js';

export interface ConfigIssue {
  /** Dotted path with [i] for list items, e.g. `schedule[1].overrides.optimizer.lr`. */
  path: string;
  expected: string;
  found: string;
  hint?: string;
  /** A whole sentence, used instead of "expected …, found …" (e.g. a schedule problem). */
  message?: string;
  /** Other paths the problem involves (d_model for a head count that does not divide it): a `--set` of any is blamed too. */
  related?: string[];
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.path || '(root)';
  if (issue.message !== undefined) return `${where}: ${issue.message}`;
  return `${where}: expected ${issue.expected}, found ${issue.found}${issue.hint ? ` (${issue.hint})` : ''}`;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  readonly source: string | undefined;
  constructor(issues: readonly ConfigIssue[], source?: string) {
    const where = source ? `${source}: ` : '';
    super(
      issues.length === 1
        ? `${where}invalid config: ${formatConfigIssue(issues[0]!)}`
        : `${where}invalid config (${issues.length} problems):\n` + issues.map((i) => `  ${formatConfigIssue(i)}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.issues = issues;
    this.source = source;
  }
}

export type PathSegment = string | number;

/** `a.b[2].c` → ['a', 'b', 2, 'c'] (also accepts `a.b.2.c`). */
export function parsePath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  for (const m of path.matchAll(re)) {
    if (m[2] !== undefined) out.push(Number(m[2]));
    else if (/^\d+$/.test(m[1]!)) out.push(Number(m[1]));
    else out.push(m[1]!);
  }
  return out;
}

export function joinPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out;
}

/** The raw value at a path; when the path runs into a non-object, that value (a shorthand string, say). */
export function valueAt(root: unknown, segments: readonly PathSegment[]): unknown {
  let v: unknown = root;
  for (const s of segments) {
    if (v === null || typeof v !== 'object') return v === root ? undefined : v;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

// ---- schema walking (for did-you-mean on unknown keys) -----------------------------------------

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { def: Def }).def;
}

/** Unwraps optional/default/nullable/pipe wrappers to the schema that validates the value. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let i = 0; i < 20; i++) {
    const d = defOf(s);
    if ((d.type === 'optional' || d.type === 'default' || d.type === 'nullable' || d.type === 'prefault' || d.type === 'readonly') && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.out && d.in) s = defOf(d.in).type === 'transform' ? d.out : d.in;
    else break;
  }
  return s;
}

function objectAt(schema: z.ZodType, value: unknown): z.ZodType | undefined {
  const s = unwrap(schema);
  const d = defOf(s);
  if (d.type === 'object') return s;
  if (d.type === 'union' && d.options) {
    if (d.discriminator && value && typeof value === 'object') {
      const key = (value as Record<string, unknown>)[d.discriminator];
      for (const o of d.options) {
        const od = defOf(unwrap(o));
        const lit = od.shape?.[d.discriminator];
        const litDef = lit ? (defOf(unwrap(lit)) as Def & { values?: unknown[] }) : undefined;
        if (litDef?.values?.includes(key)) return objectAt(o, value);
      }
    }
    for (const o of d.options) {
      const found = objectAt(o, value);
      if (found) return found;
    }
  }
  return undefined;
}

/** Field names the schema accepts for the object at `segments` (empty when unknown). */
export function knownKeysAt(schema: z.ZodType, root: unknown, segments: readonly PathSegment[]): string[] {
  let s: z.ZodType | undefined = schema;
  let value: unknown = root;
  for (const seg of segments) {
    if (!s) return [];
    const u = unwrap(s);
    const d = defOf(u);
    if (typeof seg === 'number' && d.type === 'array' && d.element) {
      s = d.element;
    } else {
      const obj = objectAt(u, value);
      s = obj ? defOf(obj).shape?.[String(seg)] : undefined;
    }
    value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[seg] : undefined;
  }
  if (!s) return [];
  const obj = objectAt(s, value);
  return obj ? Object.keys(defOf(obj).shape ?? {}) : [];
}

// ---- translation --------------------------------------------------------------------------------

const TYPE_WORDS: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  tuple: 'a list',
  literal: 'a specific value',
};

function numberRule(issue: { minimum?: unknown; maximum?: unknown; inclusive?: boolean; code: string; origin?: string }): string {
  if (issue.origin === 'array' || issue.origin === 'set') {
    return issue.code === 'too_small' ? `a list of at least ${String(issue.minimum)} item(s)` : `a list of at most ${String(issue.maximum)} item(s)`;
  }
  if (issue.origin === 'string') {
    return issue.code === 'too_small' ? (issue.minimum === 1 ? 'a non-empty string' : `a string of at least ${String(issue.minimum)} characters`) : `a string of at most ${String(issue.maximum)} characters`;
  }
  if (issue.code === 'too_small') {
    if (issue.minimum === 0 || issue.minimum === 0n) return issue.inclusive ? 'a number ≥ 0' : 'a positive number';
    return `a number ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
  }
  return `a number ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
}

function quoteList(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ');
}

/**
 * Translates zod issues into ConfigIssues. `input` is the raw value that was parsed (so "found"
 * shows what the user wrote); `prefix` is prepended to every path; `schema` serves did-you-mean.
 */
export function translateZodIssues(
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
  schema: z.ZodType,
  prefix: readonly PathSegment[] = [],
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const segs = issue.path.filter((p): p is PathSegment => typeof p === 'string' || typeof p === 'number');
    const path = joinPath([...prefix, ...segs]);
    const found = describeFound(valueAt(input, segs));
    switch (issue.code) {
      case 'invalid_type': {
        const expected = TYPE_WORDS[issue.expected] ?? `a ${issue.expected}`;
        out.push({ path, expected, found });
        break;
      }
      case 'too_small':
      case 'too_big':
        out.push({ path, expected: numberRule(issue as never), found });
        break;
      case 'invalid_value': {
        const raw = valueAt(input, segs);
        const values = issue.values as unknown[];
        const near = typeof raw === 'string' ? closestName(raw, values.filter((v): v is string => typeof v === 'string')) : undefined;
        out.push({ path, expected: values.length === 1 ? quoteList(values) : `one of ${quoteList(values)}`, found, ...(near ? { hint: `did you mean '${near}'?` } : {}) });
        break;
      }
      case 'unrecognized_keys': {
        const known = knownKeysAt(schema, input, segs);
        for (const key of issue.keys) {
          const near = closestName(key, known);
          out.push({
            path: joinPath([...prefix, ...segs, key]),
            expected: known.length > 0 ? `a known field (${known.join(', ')})` : 'no such field',
            found: `unknown field '${key}'`,
            ...(near ? { hint: `did you mean '${near}'?` } : {}),
          });
        }
        break;
      }
      case 'invalid_union': {
        const u = issue as z.core.$ZodIssueInvalidUnion & { discriminator?: string; options?: unknown[] };
        if (u.discriminator !== undefined) {
          const raw = valueAt(input, segs);
          const options = (u.options ?? []).filter((o): o is string => typeof o === 'string');
          const near = typeof raw === 'string' ? closestName(raw, options) : undefined;
          out.push({ path, expected: `one of ${quoteList(u.options ?? [])}`, found, ...(near ? { hint: `did you mean '${near}'?` } : {}) });
          break;
        }
        // Report the branch that got furthest (fewest issues); its paths are relative to here.
        const branches = (u.errors ?? []).filter((b) => b.length > 0).sort((a, b) => a.length - b.length);
        if (branches.length > 0 && branches[0]!.every((i) => i.path.length > 0)) {
          out.push(...translateZodIssues(branches[0]!, valueAt(input, segs), schema, [...prefix, ...segs]));
        } else {
          const expectedKinds = branches.map((b) => b[0]).filter((i) => i?.code === 'invalid_type').map((i) => TYPE_WORDS[(i as { expected: string }).expected] ?? (i as { expected: string }).expected);
          out.push({ path, expected: expectedKinds.length > 0 ? [...new Set(expectedKinds)].join(' or ') : 'a valid value', found });
        }
        break;
      }
      case 'custom': {
        const params = (issue as { params?: { expected?: string; found?: string; hint?: string } }).params;
        if (params?.expected) {
          out.push({ path, expected: params.expected, found: params.found ?? found, ...(params.hint ? { hint: params.hint } : {}) });
        } else {
          out.push({ path, expected: issue.message, found });
        }
        break;
      }
      default:
        out.push({ path, expected: issue.message.replace(/^Invalid input: expected /, ''), found });
    }
  }
  return out;
}

function describeFound(value: unknown): string {
  return value === undefined ? 'nothing' : describeValue(value);
}
