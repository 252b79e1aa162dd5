// Shared helpers for the nn tests (not a test file itself).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';

export const hasNative = E.availableBackends().includes('native');
/** Why native-backend checks cannot run here, or null when the addon is loaded (a skip reason). */
export const noNativeReason: string | null = hasNative ? null : 'native addon not built (npm run build:native): native-backend checks cannot run';
// Tests that loop over the available backends check only the reference one without the addon:
// every file using these helpers then reports one skipped test saying so, rather than passing quietly.
if (noNativeReason !== null) test('native backend checks', { skip: noNativeReason }, () => {});

/** Max |a - b| over two arrays of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, what = 'values'): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= atol, `${what}: max |diff| ${d} > ${atol}`);
}

export function assertEqualArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, what = 'values'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i]) && actual[i] !== expected[i]) assert.fail(`${what}: element ${i} differs: ${actual[i]} vs ${expected[i]}`);
  }
}

export function assertThrowsWith(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, 'expected an Error');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

/** int32 ids [B, S] from a seed. */
export function ids(B: number, S: number, vocab: number, seed: number, backend?: string): Tensor {
  return E.randInt([B, S], vocab, { seed, backend });
}

export function ints(values: number[], shape: number[], backend?: string): Tensor {
  return E.tensor(Int32Array.from(values), shape, { dtype: 'int32', backend });
}

/** Rows [b, t0..t1) of a [B, S, ...] array as a flat copy. */
export function slicePositions(t: Tensor, b: number, t0: number, t1: number): number[] {
  const [, S] = t.shape;
  const inner = t.size / (t.shape[0] * S);
  const a = t.toArray();
  return Array.from(a.subarray((b * S + t0) * inner, (b * S + t1) * inner));
}
