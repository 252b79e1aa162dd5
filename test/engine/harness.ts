/**
 * Shared checks for op tests:
 *  - crossCheck: runs a function on the native backend and on the reference backend (float32)
 *    from the same inputs and upstream gradient; compares outputs and input gradients.
 *  - gradCheck: compares autograd gradients with central finite differences in float64 on the
 *    reference backend.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';

export const hasNative = E.availableBackends().includes('native');

/** Description of one input: a float tensor (random normal, or given values), or int32 ids. */
export interface InputSpec {
  shape: number[];
  /** int32 inputs are not differentiated; values in [0, intHigh). */
  intHigh?: number;
  /** Explicit values (override random). */
  values?: ArrayLike<number>;
  /** Differentiate with respect to this input (default: true for floats). */
  grad?: boolean;
  /** Scale/shift of random values (e.g. positive inputs for log). */
  scale?: number;
  shift?: number;
}

export function makeValues(spec: InputSpec, seed: number): Float64Array | Int32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.values) return spec.intHigh !== undefined ? Int32Array.from(spec.values) : Float64Array.from(spec.values);
  const rand = E.seededRandom(seed);
  if (spec.intHigh !== undefined) {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * spec.intHigh);
    return out;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u1 = Math.max(rand(), 1e-12), u2 = rand();
    out[i] = (spec.shift ?? 0) + (spec.scale ?? 1) * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}

function build(specs: InputSpec[], values: (Float64Array | Int32Array)[], backend: string, dtype: 'float32' | 'float64'): Tensor[] {
  return specs.map((s, i) => {
    const isInt = s.intHigh !== undefined;
    const t = E.tensor(isInt ? values[i] : (dtype === 'float32' ? Float32Array.from(values[i]) : Float64Array.from(values[i])), s.shape, { backend, dtype: isInt ? 'int32' : dtype });
    if (!isInt && s.grad !== false) t.requiresGrad = true;
    return t;
  });
}

function asList(r: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(r) ? r : [r];
}

/** Weighted sum of outputs with fixed random weights: a scalar loss whose gradient exercises
 * every output element with a different upstream gradient. */
function scalarize(outs: Tensor[], seed: number): Tensor {
  let total: Tensor | null = null;
  outs.forEach((o, k) => {
    if (o.dtype === 'int32') return;
    const w = E.tensor(makeValues({ shape: [...o.shape] }, seed + 100 + k), o.shape, { backend: o.backend, dtype: o.dtype });
    const term = E.sumToShape(E.mul(o, w), []);
    total = total ? E.add(total, term) : term;
  });
  if (!total) throw new Error('scalarize: no float output');
  return total;
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol: number, rtol: number): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let worst = 0, worstAt = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!Number.isFinite(e) && a === e) continue;
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (err > worst || Number.isNaN(a)) { worst = Number.isNaN(a) ? Infinity : err; worstAt = i; }
  }
  if (worstAt >= 0) assert.fail(`${what}: element ${worstAt} is ${actual[worstAt]}, expected ${expected[worstAt]} (atol ${atol}, rtol ${rtol})`);
}

export interface CheckOptions {
  seed?: number;
  atol?: number;
  rtol?: number;
  /** Skip the gradient part (for ops without gradients). */
  noGrad?: boolean;
}

/** Why native-vs-reference checks cannot run here, or null when the addon is loaded. */
export const noNativeReason: string | null = hasNative ? null : 'native addon not built (npm run build:native): native vs reference cross-checks cannot run';

// Tests that loop over the available backends check only the reference one without the addon:
// every file using this harness then reports one skipped test saying so, rather than passing quietly.
if (noNativeReason !== null) test('native backend checks', { skip: noNativeReason }, () => {});

/**
 * Native vs reference in float32: outputs and gradients of every differentiable input. Without the
 * addon nothing is compared, so the test `t` is marked skipped with the reason (never a silent pass).
 */
export function crossCheck(t: TestContext, name: string, specs: InputSpec[], fn: (...xs: Tensor[]) => Tensor | Tensor[], opts: CheckOptions = {}): void {
  if (noNativeReason !== null) { t.skip(noNativeReason); return; }
  const seed = opts.seed ?? 1;
  const values = specs.map((s, i) => makeValues(s, seed * 31 + i));
  const atol = opts.atol ?? 1e-4, rtol = opts.rtol ?? 1e-4;
  const results = ['native', 'reference'].map((backend) => E.tidy(() => {
    const xs = build(specs, values, backend, 'float32');
    const outs = asList(fn(...xs));
    const outVals = outs.map((o) => o.toArray());
    let grads: (Float32Array | Float64Array | Int32Array | null)[] = [];
    if (!opts.noGrad && xs.some((x) => x.requiresGrad)) {
      scalarize(outs, seed).backward();
      grads = xs.map((x) => (x.grad ? x.grad.toArray() : null));
      for (const x of xs) { x.grad?.dispose(); x.grad = null; }
    }
    return { outVals, grads };
  }));
  const [nat, ref] = results;
  ref.outVals.forEach((r, k) => assertClose(nat.outVals[k], r, `${name}: output ${k}`, atol, rtol));
  ref.grads.forEach((r, k) => {
    if (r === null) return assert.equal(nat.grads[k], null, `${name}: gradient of input ${k} present on native only`);
    assert.ok(nat.grads[k], `${name}: gradient of input ${k} missing on native`);
    assertClose(nat.grads[k]!, r, `${name}: gradient of input ${k}`, atol * 10, rtol * 10);
  });
}

/** Autograd vs central finite differences in float64 (reference backend). */
export function gradCheck(name: string, specs: InputSpec[], fn: (...xs: Tensor[]) => Tensor | Tensor[], opts: CheckOptions & { eps?: number } = {}): void {
  const seed = opts.seed ?? 1;
  const eps = opts.eps ?? 1e-6;
  const values = specs.map((s, i) => makeValues(s, seed * 31 + i));
  const lossAt = (vals: (Float64Array | Int32Array)[]) => E.noGrad(() => E.tidy(() => {
    const xs = build(specs, vals, 'reference', 'float64');
    return scalarize(asList(fn(...xs)), seed).item();
  }));
  const analytic = E.tidy(() => {
    const xs = build(specs, values, 'reference', 'float64');
    scalarize(asList(fn(...xs)), seed).backward();
    const g = xs.map((x) => (x.grad ? x.grad.toArray() : null));
    for (const x of xs) { x.grad?.dispose(); x.grad = null; }
    return g;
  });
  specs.forEach((s, k) => {
    if (s.intHigh !== undefined || s.grad === false) return;
    const g = analytic[k];
    assert.ok(g, `${name}: no gradient reached input ${k}`);
    const v = values[k] as Float64Array;
    const numeric = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const orig = v[i];
      v[i] = orig + eps;
      const up = lossAt(values);
      v[i] = orig - eps;
      const down = lossAt(values);
      v[i] = orig;
      numeric[i] = (up - down) / (2 * eps);
    }
    assertClose(g!, numeric, `${name}: d/d input ${k}`, opts.atol ?? 1e-5, opts.rtol ?? 1e-4);
  });
}

/** Expects `fn` to throw an Error whose message matches every pattern. */
export function assertThrowsWith(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, 'expected an Error');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}
