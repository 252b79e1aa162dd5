// Structural checks on a raw config tree, before any schema or merge code walks it recursively:
// a bounded depth (a 10,000-deep document would overflow the stack of every recursive walker
// after it) and no key that names an object's prototype machinery (`__proto__`, `constructor`,
// `prototype`), which a merge or an override could turn into prototype pollution.

import { joinPath, type ConfigIssue, type PathSegment } from './errors.js';

/** Deeper than any real config (the deepest path of the schema is about 7 levels). */
export const MAX_CONFIG_DEPTH = 32;

/** Keys refused anywhere in a config or an override path. */
export const RESERVED_CONFIG_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

export function isReservedConfigKey(key: PathSegment): boolean {
  return typeof key === 'string' && RESERVED_CONFIG_KEYS.includes(key);
}

/** The problems of `root`'s shape (iterative, so it cannot overflow itself); empty when fine. */
export function checkConfigTree(root: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const stack: { value: unknown; path: PathSegment[] }[] = [{ value: root, path: [] }];
  while (stack.length > 0 && issues.length < 10) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_CONFIG_DEPTH) {
      issues.push({ path: joinPath(path.slice(0, 4)) + ' …', expected: '', found: '', message: `nested more than ${MAX_CONFIG_DEPTH} levels deep; no config key is that deep` });
      continue;
    }
    const entries: [PathSegment, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    for (const [key, child] of entries) {
      if (isReservedConfigKey(key)) {
        issues.push({ path: joinPath([...path, key]), expected: '', found: '', message: `'${String(key)}' is not a config key (the names ${RESERVED_CONFIG_KEYS.join(', ')} are reserved)` });
        continue;
      }
      stack.push({ value: child, path: [...path, key] });
    }
  }
  return issues;
}
