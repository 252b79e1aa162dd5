import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LrScheduleError,
  makeLrSchedule,
  peakLr,
  validateLrSchedule,
  type LrScheduleSpec,
} from '../../src/optim/index.js';

const close = (a: number, b: number, eps = 1e-12) =>
  assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `${a} is not close to ${b}`);

/** 0, 1/n, …, 1 — many t values for property-style checks. */
const grid = (n = 1000) => Array.from({ length: n + 1 }, (_, i) => i / n);

function assertThrowsIssue(spec: unknown, ...fragments: string[]) {
  assert.throws(
    () => validateLrSchedule(spec),
    (err: unknown) => {
      assert.ok(err instanceof LrScheduleError, `expected LrScheduleError, got ${String(err)}`);
      for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
      return true;
    },
  );
}

test('constant schedule is lr everywhere', () => {
  const lr = makeLrSchedule({ kind: 'constant', lr: 3e-4 });
  for (const t of grid()) assert.equal(lr(t), 3e-4);
});

test('linear schedule goes from lr to lr·final_fraction in a straight line', () => {
  const lr = makeLrSchedule({ kind: 'linear', lr: 1, final_fraction: 0.1 });
  assert.equal(lr(0), 1);
  close(lr(1), 0.1);
  close(lr(0.5), 0.55);
  for (const t of grid()) close(lr(t), 1 - 0.9 * t);
});

test('linear without final_fraction decays to zero', () => {
  const lr = makeLrSchedule({ kind: 'linear', lr: 2 } as LrScheduleSpec);
  close(lr(1), 0);
  close(lr(0.25), 1.5);
});

test('cosine schedule: lr at 0, midpoint halfway, min lr at 1, monotone', () => {
  const lr = makeLrSchedule({ kind: 'cosine', lr: 1e-3, final_fraction: 0.1 });
  assert.equal(lr(0), 1e-3);
  close(lr(0.5), 1e-3 * (0.1 + 0.9 * 0.5));
  close(lr(1), 1e-4);
  let prev = Infinity;
  for (const t of grid()) {
    const v = lr(t);
    assert.ok(v <= prev + 1e-18, `cosine rose at t=${t}`);
    assert.ok(v >= 1e-4 - 1e-18 && v <= 1e-3, `cosine out of [min, peak] at t=${t}: ${v}`);
    prev = v;
  }
});

test('wsd: warm-up ramp, flat stable part, decay of each shape to the floor', () => {
  for (const shape of ['linear', 'cosine', '1-sqrt'] as const) {
    const lr = makeLrSchedule({ kind: 'wsd', lr: 1, warmup_fraction: 0.1, decay_fraction: 0.2, final_fraction: 0.05, decay_shape: shape });
    assert.equal(lr(0), 0);
    close(lr(0.05), 0.5);
    assert.equal(lr(0.1), 1);
    for (const t of grid().filter((t) => t >= 0.1 && t <= 0.8)) assert.equal(lr(t), 1, `${shape} not stable at t=${t}`);
    close(lr(1), 0.05);
    let prev = Infinity;
    for (const t of grid().filter((t) => t >= 0.8)) {
      assert.ok(lr(t) <= prev + 1e-15, `${shape} decay rose at t=${t}`);
      prev = lr(t);
    }
  }
  // Shape-specific midpoints of the decay (p = progress through it).
  const at = (shape: 'linear' | 'cosine' | '1-sqrt', t: number) =>
    makeLrSchedule({ kind: 'wsd', lr: 1, warmup_fraction: 0, decay_fraction: 0.5, final_fraction: 0, decay_shape: shape })(t);
  close(at('linear', 0.75), 0.5);
  close(at('cosine', 0.75), 0.5);
  close(at('1-sqrt', 0.625), 0.5); // p = 0.25, 1 − √0.25
});

test('warm-up wraps another schedule and compresses it into [w, 1]', () => {
  const spec: LrScheduleSpec = { kind: 'warmup', warmup_fraction: 0.2, start_fraction: 0, after: { kind: 'cosine', lr: 1, final_fraction: 0 } };
  const lr = makeLrSchedule(spec);
  assert.equal(lr(0), 0);
  close(lr(0.1), 0.5);
  assert.equal(lr(0.2), 1);
  close(lr(0.6), 0.5); // cosine midpoint lands halfway through [0.2, 1]
  close(lr(1), 0);
  assert.equal(peakLr(spec), 1);
  for (const t of grid()) {
    const v = lr(t);
    assert.ok(Number.isFinite(v) && v >= 0 && v <= 1, `out of range at t=${t}: ${v}`);
  }
});

test('warm-up start_fraction starts the ramp above zero and warm-up is continuous at its end', () => {
  const lr = makeLrSchedule({ kind: 'warmup', warmup_fraction: 0.1, start_fraction: 0.1, after: { kind: 'linear', lr: 2, final_fraction: 0.5 } });
  close(lr(0), 0.2);
  close(lr(0.1 - 1e-12), 2, 1e-9);
  assert.equal(lr(0.1), 2);
  close(lr(1), 1);
});

test('warm-up of zero length is the wrapped schedule', () => {
  const inner: LrScheduleSpec = { kind: 'cosine', lr: 1, final_fraction: 0.2 };
  const a = makeLrSchedule({ kind: 'warmup', warmup_fraction: 0, start_fraction: 0, after: inner });
  const b = makeLrSchedule(inner);
  for (const t of grid()) close(a(t), b(t));
});

test('every schedule kind stays finite, non-negative and at most its peak over t', () => {
  const specs: LrScheduleSpec[] = [
    { kind: 'constant', lr: 0.5 },
    { kind: 'linear', lr: 0.5, final_fraction: 0 },
    { kind: 'cosine', lr: 0.5, final_fraction: 0.3 },
    { kind: 'wsd', lr: 0.5, warmup_fraction: 0.3, decay_fraction: 0.7, final_fraction: 0, decay_shape: '1-sqrt' },
    { kind: 'warmup', warmup_fraction: 0.5, start_fraction: 0.5, after: { kind: 'wsd', lr: 0.5, warmup_fraction: 0, decay_fraction: 1, final_fraction: 0, decay_shape: 'cosine' } },
  ];
  for (const spec of specs) {
    const lr = makeLrSchedule(spec);
    for (const t of grid(997)) {
      const v = lr(t);
      assert.ok(Number.isFinite(v) && v >= 0 && v <= peakLr(spec) * (1 + 1e-15), `${spec.kind} at t=${t}: ${v}`);
    }
  }
});

test('validation fills defaults and the spec survives a JSON round trip', () => {
  const spec = validateLrSchedule({ kind: 'wsd', lr: 1e-3, decay_fraction: 0.1 });
  assert.deepEqual(spec, { kind: 'wsd', lr: 1e-3, warmup_fraction: 0, decay_fraction: 0.1, final_fraction: 0, decay_shape: 'linear' });
  assert.deepEqual(validateLrSchedule(JSON.parse(JSON.stringify(spec))), spec);
  const input = { kind: 'cosine', lr: 1 };
  validateLrSchedule(input);
  assert.deepEqual(input, { kind: 'cosine', lr: 1 }, 'validation must not mutate its input');
});

test('validation errors name the field, what was expected and what was found', () => {
  assertThrowsIssue({ kind: 'cosine' }, 'lr_schedule.lr: expected a positive number, found nothing');
  assertThrowsIssue({ kind: 'cosine', lr: -1 }, 'lr_schedule.lr: expected a positive number, found -1');
  assertThrowsIssue({ kind: 'constant', lr: NaN }, 'found NaN');
  assertThrowsIssue({ kind: 'linear', lr: 1, final_fraction: 1.5 }, 'lr_schedule.final_fraction: expected a number in [0, 1], found 1.5');
  assertThrowsIssue({ kind: 'cosin', lr: 1 }, "lr_schedule.kind: expected one of 'constant', 'linear', 'cosine', 'wsd', 'warmup'", 'found "cosin"');
  assertThrowsIssue({ kind: 'constant', lr: 1, final_fraction: 0 }, "lr_schedule.final_fraction: expected a field of a 'constant' schedule", 'found an unknown field');
  assertThrowsIssue({ kind: 'cosine', lr: 1, finl_fraction: 0.1 }, 'lr_schedule.finl_fraction: expected a field of a \'cosine\' schedule (kind, lr, final_fraction), found an unknown field (did you mean \'final_fraction\'?)');
  assertThrowsIssue({ kind: 'wsd', lr: 1, warmup_fraction: 0.5, decay_fraction: 0.6 }, 'lr_schedule.decay_fraction: expected at most 1 − warmup_fraction = 0.5, found 0.6');
  assertThrowsIssue({ kind: 'wsd', lr: 1, decay_fraction: 0.2, decay_shape: 'exp' }, "lr_schedule.decay_shape: expected one of 'linear', 'cosine', '1-sqrt', found \"exp\"");
  assertThrowsIssue({ kind: 'warmup', warmup_fraction: 1, after: { kind: 'constant', lr: 1 } }, 'lr_schedule.warmup_fraction: expected a number in [0, 1), found 1');
  assertThrowsIssue({ kind: 'warmup', warmup_fraction: 0.1, after: { kind: 'warmup', warmup_fraction: 0.1 } }, 'lr_schedule.after.kind', 'warm-ups do not nest');
  assertThrowsIssue({ kind: 'warmup', warmup_fraction: 0.1, after: { kind: 'cosine', lr: 0 } }, 'lr_schedule.after.lr: expected a positive number, found 0');
  assertThrowsIssue({ kind: 'warmup', warmup_fraction: 0.1 }, 'lr_schedule.after: expected an lr schedule object, found nothing');
  assertThrowsIssue('cosine', 'lr_schedule: expected an lr schedule object, found "cosine"');
});

test('all problems of a spec are reported together', () => {
  assert.throws(() => validateLrSchedule({ kind: 'cosine', lr: 0, final_fraction: 2 }), (err: unknown) => {
    assert.ok(err instanceof LrScheduleError);
    assert.equal(err.issues.length, 2);
    assert.match(err.message, /^2 problems/);
    assert.match(err.message, /lr_schedule\.lr/);
    assert.match(err.message, /lr_schedule\.final_fraction/);
    return true;
  });
});

test('makeLrSchedule validates its spec and rejects t outside [0, 1]', () => {
  assert.throws(() => makeLrSchedule({ kind: 'cosine', lr: -1, final_fraction: 0 }), LrScheduleError);
  const lr = makeLrSchedule({ kind: 'constant', lr: 1 });
  assert.throws(() => lr(1.5), /t must be a number in \[0, 1\], found 1\.5/);
  assert.throws(() => lr(-0.1), /found -0\.1/);
  assert.throws(() => lr(NaN), /found NaN/);
});
