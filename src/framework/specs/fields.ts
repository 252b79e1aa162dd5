// Field-by-field reading of untrusted spec objects with readable errors.
//
// Every problem becomes a SpecIssue `{path, expected, found}` and is printed as
// `rack.d_model: expected a positive integer, found -3`. Readers collect all issues of an object
// before anything throws, so one run of validation reports everything that is wrong.

import { isPlainObject } from '../json.js';

export interface SpecIssue {
  /** Dotted path of the field, e.g. `rack.stacks[1].n_heads`. */
  path: string;
  expected: string;
  found: string;
  /** Optional extra sentence, e.g. a "did you mean" suggestion. */
  hint?: string;
}

export function formatIssue(issue: SpecIssue): string {
  const hint = issue.hint === undefined ? '' : ` (${issue.hint})`;
  return `${issue.path}: expected ${issue.expected}, found ${issue.found}${hint}`;
}

/** Thrown by every `validateX`; `issues` holds each problem, the message lists them all. */
export class SpecValidationError extends Error {
  readonly issues: readonly SpecIssue[];
  constructor(issues: readonly SpecIssue[]) {
    super(
      issues.length === 1
        ? formatIssue(issues[0]!)
        : `${issues.length} problems:\n` + issues.map((i) => `  ${formatIssue(i)}`).join('\n'),
    );
    this.name = 'SpecValidationError';
    this.issues = issues;
  }
}

export function throwIfIssues(issues: readonly SpecIssue[]): void {
  if (issues.length > 0) throw new SpecValidationError(issues);
}

/** Short human rendering of a value for the `found` part of a message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'string':
      return JSON.stringify(value);
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
  }
  if (!Array.isArray(value) && !isPlainObject(value)) {
    const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
    return ctor ? `a ${ctor}` : 'an object';
  }
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    return Array.isArray(value) ? 'a list' : 'an object';
  }
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

/** Edit distance, for "did you mean" suggestions on misspelt field names. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The candidate closest to `name`, when it is close enough to be a plausible typo. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export interface NumberOptions {
  min?: number;
  max?: number;
  /** When true, `min` itself is not allowed. */
  minExclusive?: boolean;
  maxExclusive?: boolean;
  integer?: boolean;
}

/** Phrase for the expected part of a number message, e.g. "a number in (0, 1]". */
export function describeNumberRule(o: NumberOptions): string {
  const noun = o.integer ? 'integer' : 'number';
  const { min, max } = o;
  if (min !== undefined && max !== undefined) {
    return `${o.integer ? 'an' : 'a'} ${noun} in ${o.minExclusive ? '(' : '['}${min}, ${max}${o.maxExclusive ? ')' : ']'}`;
  }
  if (min === 0) return o.minExclusive ? `a positive ${noun}` : `a non-negative ${noun}`;
  if (min === 1 && o.integer && !o.minExclusive) return 'a positive integer';
  if (min !== undefined) return `${o.integer ? 'an' : 'a'} ${noun} ${o.minExclusive ? '>' : '≥'} ${min}`;
  if (max !== undefined) return `${o.integer ? 'an' : 'a'} ${noun} ${o.maxExclusive ? '<' : '≤'} ${max}`;
  return o.integer ? 'an integer' : 'a finite number';
}

export function numberMatches(value: unknown, o: NumberOptions): value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return false;
  if (o.integer && !Number.isSafeInteger(value)) return false;
  if (o.min !== undefined && (o.minExclusive ? value <= o.min : value < o.min)) return false;
  if (o.max !== undefined && (o.maxExclusive ? value >= o.max : value > o.max)) return false;
  return true;
}

export const POSITIVE_INT: NumberOptions = { integer: true, min: 1 };
export const NON_NEGATIVE_INT: NumberOptions = { integer: true, min: 0 };
export const POSITIVE_NUMBER: NumberOptions = { min: 0, minExclusive: true };
export const NON_NEGATIVE_NUMBER: NumberOptions = { min: 0 };

/**
 * Reads the fields of one object. Every read marks the field as known; `finish()` then reports
 * any field nobody asked for, with the nearest known name. A value that is not an object is one
 * issue, and the reader then behaves as if it were `{}` (so required fields are not reported a
 * second time: `valid` tells callers to stop).
 */
export class FieldReader {
  readonly valid: boolean;
  private readonly source: Record<string, unknown>;
  private readonly known = new Set<string>();

  constructor(
    value: unknown,
    readonly path: string,
    readonly issues: SpecIssue[],
    expected = 'an object',
  ) {
    this.valid = isPlainObject(value);
    this.source = this.valid ? (value as Record<string, unknown>) : {};
    if (!this.valid) issues.push({ path, expected, found: describeValue(value) });
  }

  pathOf(key: string): string {
    return `${this.path}.${key}`;
  }

  /** The raw value (undefined when absent); marks the field as known. */
  raw(key: string): unknown {
    this.known.add(key);
    return this.source[key];
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  issue(key: string, expected: string, found: unknown, hint?: string): void {
    const issue: SpecIssue = { path: this.pathOf(key), expected, found: describeValue(found) };
    if (hint !== undefined) issue.hint = hint;
    this.issues.push(issue);
  }

  /** A required number (or `fallback` when absent). Returns NaN after recording an issue. */
  number(key: string, rule: NumberOptions, fallback?: number): number {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (numberMatches(value, rule)) return value;
    if (this.valid) this.issue(key, describeNumberRule(rule), value);
    return NaN;
  }

  optionalNumber(key: string, rule: NumberOptions): number | undefined {
    return this.has(key) ? this.number(key, rule) : undefined;
  }

  choice<T extends string>(key: string, values: readonly T[], fallback?: T): T {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === 'string' && (values as readonly string[]).includes(value)) return value as T;
    if (this.valid) {
      const near = typeof value === 'string' ? closestName(value, values) : undefined;
      this.issue(key, `one of ${values.map((v) => `'${v}'`).join(', ')}`, value, near && `did you mean '${near}'?`);
    }
    return values[0]!;
  }

  optionalChoice<T extends string>(key: string, values: readonly T[]): T | undefined {
    return this.has(key) ? this.choice(key, values) : undefined;
  }

  boolean(key: string, fallback?: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === 'boolean') return value;
    if (this.valid) this.issue(key, 'true or false', value);
    return false;
  }

  string(key: string, fallback?: string): string {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value === 'string' && value.trim().length > 0) return value;
    if (this.valid) this.issue(key, 'a non-empty string', value);
    return '';
  }

  /** A required list, each element read by `readItem` with its indexed path. */
  list<T>(key: string, readItem: (value: unknown, path: string) => T, fallback?: T[]): T[] {
    const value = this.raw(key);
    if (value === undefined && fallback !== undefined) return fallback;
    if (!Array.isArray(value)) {
      if (this.valid) this.issue(key, 'a list', value);
      return [];
    }
    return value.map((item, i) => readItem(item, `${this.pathOf(key)}[${i}]`));
  }

  /** Reports every field of the object that no read asked for. */
  finish(): void {
    const known = [...this.known];
    for (const key of Object.keys(this.source)) {
      if (this.known.has(key) || this.source[key] === undefined) continue;
      const near = closestName(key, known);
      this.issues.push({
        path: this.pathOf(key),
        expected: `a known field (${known.join(', ')})`,
        found: `unknown field '${key}'`,
        ...(near !== undefined ? { hint: `did you mean '${near}'?` } : {}),
      });
    }
  }
}

/** Deep copy of a validated spec as JSON data (drops undefined fields). */
export function specToJSON<T extends object>(spec: T): T {
  return JSON.parse(JSON.stringify(spec)) as T;
}

/** The public functions of a spec, from its reader. */
export interface SpecCodec<T> {
  /** Checks a value and returns a normalised copy; throws SpecValidationError listing every issue. */
  validate(value: unknown, path?: string): T;
  /** A plain JSON-safe copy. */
  toJSON(spec: T): T;
  /** Accepts JSON text or parsed JSON; validates. */
  fromJSON(json: unknown): T;
}

export function specCodec<T extends object>(read: (value: unknown, path: string, issues: SpecIssue[]) => T, name: string): SpecCodec<T> {
  const validate = (value: unknown, path = name): T => {
    const issues: SpecIssue[] = [];
    const spec = read(value, path, issues);
    throwIfIssues(issues);
    return spec;
  };
  return { validate, toJSON: (spec) => specToJSON(spec), fromJSON: (json) => validate(parseSpecJSON(json, name)) };
}

/** Accepts JSON text or already-parsed JSON data; a parse failure names the spec. */
export function parseSpecJSON(json: unknown, path: string): unknown {
  if (typeof json !== 'string') return json;
  try {
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new SpecValidationError([
      { path, expected: 'valid JSON text', found: `a parse error (${(err as Error).message})` },
    ]);
  }
}
