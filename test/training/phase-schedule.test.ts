import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Phase, PhaseSchedule, ScheduleError, type PhaseInit } from '../../src/training/index.js';

function assertScheduleError(fn: () => unknown, ...fragments: string[]) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ScheduleError, `expected ScheduleError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

const three: PhaseInit[] = [
  { start_t: 0, end_t: 0.25, name: 'warm', task: 'clm' },
  { start_t: 0.25, end_t: 0.75, name: 'grow', task: 'mlm', overrides: { model: { n_stacks: 4 } } },
  { start_t: 0.75, end_t: 1, name: 'anneal' },
];

test('phaseAt: interior points, boundaries go to the later phase, t = 1 to the last', () => {
  const s = new PhaseSchedule(three);
  assert.equal(s.phaseAt(0).name, 'warm');
  assert.equal(s.phaseAt(0.1).name, 'warm');
  assert.equal(s.phaseAt(0.25).name, 'grow');
  assert.equal(s.phaseAt(0.2499999).name, 'warm');
  assert.equal(s.phaseAt(0.5).name, 'grow');
  assert.equal(s.phaseAt(0.75).name, 'anneal');
  assert.equal(s.phaseAt(0.9999999).name, 'anneal');
  assert.equal(s.phaseAt(1).name, 'anneal');
  assert.equal(s.indexAt(1), 2);
  assert.deepEqual(s.transitions(), [0, 0.25, 0.75, 1]);
});

test('phaseAt agrees with Phase.contains everywhere except t = 1', () => {
  const s = new PhaseSchedule(three);
  for (let i = 0; i < 1000; i++) {
    const t = i / 1000;
    const holders = s.phases.filter((p) => p.contains(t));
    assert.equal(holders.length, 1, `t=${t} held by ${holders.length} phases`);
    assert.equal(holders[0], s.phaseAt(t));
  }
  assert.equal(s.phases.filter((p) => p.contains(1)).length, 0);
});

test('phaseAt rejects t outside [0, 1] and NaN', () => {
  const s = new PhaseSchedule(three);
  assert.throws(() => s.phaseAt(1.5), /t must be a number in \[0, 1\], found 1\.5/);
  assert.throws(() => s.phaseAt(-0.01), /found -0\.01/);
  assert.throws(() => s.phaseAt(NaN), /found NaN/);
});

test('phases may be given out of order; errors still use their input index', () => {
  const s = new PhaseSchedule([three[2]!, three[0]!, three[1]!]);
  assert.deepEqual(s.phases.map((p) => p.name), ['warm', 'grow', 'anneal']);
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0.5, end_t: 1, name: 'b' }, { start_t: 0, end_t: 0.4, name: 'a' }]),
    "gap between phase #1 'a' [0, 0.4) and phase #0 'b' [0.5, 1)",
    't in [0.4, 0.5) has no phase',
  );
});

test('empty schedule', () => {
  assertScheduleError(() => new PhaseSchedule([]), 'expected at least one phase, found none');
});

test('gap, overlap, not starting at 0, not ending at 1', () => {
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 0.6, name: 'a' }, { start_t: 0.5, end_t: 1, name: 'b' }]),
    "overlap between phase #0 'a' [0, 0.6) and phase #1 'b' [0.5, 1): both contain t in [0.5, 0.6)",
  );
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0.1, end_t: 1, name: 'late' }]),
    "the phases must start at t = 0, but the earliest, phase #0 'late' [0.1, 1), starts at 0.1",
  );
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 0.9, name: 'short' }]),
    "the phases must end at t = 1, but the latest, phase #0 'short' [0, 0.9), ends at 0.9; t in [0.9, 1] has no phase",
  );
  // Two phases starting together overlap.
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 1 }, { start_t: 0, end_t: 0.5 }]),
    'overlap between phase #',
  );
});

test('all structural problems are reported at once', () => {
  assert.throws(
    () => new PhaseSchedule([{ start_t: 0.1, end_t: 0.3, name: 'a' }, { start_t: 0.4, end_t: 0.8, name: 'b' }]),
    (err: unknown) => {
      assert.ok(err instanceof ScheduleError);
      assert.equal(err.problems.length, 3);
      assert.match(err.message, /3 problems/);
      return true;
    },
  );
});

test('per-phase errors: NaN, out of range, start >= end, bad name, bad task, bad overrides, unknown field', () => {
  assertScheduleError(() => new PhaseSchedule([{ start_t: NaN, end_t: 1, name: 'x' }]), "phase #0 'x': start_t must be a number in [0, 1], found NaN");
  assertScheduleError(() => new PhaseSchedule([{ start_t: 0, end_t: 1.2, name: 'x' }]), "phase #0 'x': end_t must be a number in [0, 1], found 1.2");
  assertScheduleError(() => new PhaseSchedule([{ start_t: -0.5, end_t: 1 }]), 'phase #0: start_t must be a number in [0, 1], found -0.5');
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 0.5, name: 'a' }, { start_t: 0.5, end_t: 0.5, name: 'b' }]),
    "phase #1 'b': start_t (0.5) must be less than end_t (0.5)",
  );
  assertScheduleError(() => new PhaseSchedule([{ start_t: 0.7, end_t: 0.2, name: 'c' }]), "phase #0 'c': start_t (0.7) must be less than end_t (0.2)");
  assertScheduleError(() => new PhaseSchedule([{ start_t: 0, end_t: 1, name: '' }]), 'phase #0: name must be a non-empty string, found ""');
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 1, task: 'classify' } as unknown as PhaseInit]),
    "phase #0: task must be one of 'clm', 'mlm', 'diffusion', found \"classify\"",
  );
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 1, overrides: { modle: {} } } as unknown as PhaseInit]),
    "phase #0: overrides.modle is not a plane (expected data, model or optimizer; did you mean 'model'?)",
  );
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 1, overrides: { data: 3 } } as unknown as PhaseInit]),
    'phase #0: overrides.data must be an object, found 3',
  );
  assertScheduleError(
    () => new PhaseSchedule([{ strat_t: 0, start_t: 0, end_t: 1 } as unknown as PhaseInit]),
    "phase #0: unknown field 'strat_t'",
    "did you mean 'start_t'?",
  );
  assertScheduleError(() => new PhaseSchedule([5 as unknown as PhaseInit]), 'phase #0: expected an object, found 5');
});

test('phase names must be unique; unnamed phases get phase_<index>', () => {
  assertScheduleError(
    () => new PhaseSchedule([{ start_t: 0, end_t: 0.5, name: 'x' }, { start_t: 0.5, end_t: 1, name: 'x' }]),
    "phase #1 and phase #0 are both named 'x'",
  );
  const s = new PhaseSchedule([{ start_t: 0, end_t: 0.5 }, { start_t: 0.5, end_t: 1 }]);
  assert.deepEqual(s.phases.map((p) => p.name), ['phase_0', 'phase_1']);
});

test('boundaries within 1e-9 meet and are snapped to one value', () => {
  const s = new PhaseSchedule([
    { start_t: 0, end_t: 0.1 + 0.2, name: 'a' },
    { start_t: 0.3, end_t: 1, name: 'b' },
  ]);
  assert.equal(s.phases[0]!.end_t, 0.3);
  assert.equal(s.phaseAt(0.3).name, 'b');
  assert.equal(s.phaseAt(0.29999999).name, 'a');
  // 1/3 computed two ways.
  const third = new PhaseSchedule([{ start_t: 0, end_t: 1 / 3 }, { start_t: 1 - 2 / 3, end_t: 1 }]);
  assert.equal(third.length, 2);
});

test('Phase is immutable and keeps its own copy of the overrides', () => {
  const overrides = { optimizer: { lr_schedule: { kind: 'constant', lr: 1 } } };
  const p = new Phase({ start_t: 0, end_t: 1, name: 'p', overrides });
  overrides.optimizer.lr_schedule.lr = 2;
  assert.deepEqual(p.overrides.optimizer, { lr_schedule: { kind: 'constant', lr: 1 } });
  assert.throws(() => {
    (p.overrides.optimizer as { x?: number }).x = 1;
  }, TypeError);
  assert.equal(p.localT(0), 0);
  const q = new Phase({ start_t: 0.5, end_t: 1 });
  assert.equal(q.localT(0.75), 0.5);
  assert.equal(q.localT(0.25), 0);
});

test('schedule JSON round trip, bare-list form, and single()', () => {
  const s = new PhaseSchedule(three);
  const json = JSON.parse(JSON.stringify(s.toJSON())) as unknown;
  const back = PhaseSchedule.fromJSON(json);
  assert.deepEqual(back.toJSON(), s.toJSON());
  assert.deepEqual(PhaseSchedule.fromJSON(three).toJSON(), s.toJSON());
  assertScheduleError(() => PhaseSchedule.fromJSON({ phase: [] }), 'expected a list of phases or {phases: [...]}');
  const one = PhaseSchedule.single({ task: 'clm' });
  assert.equal(one.length, 1);
  assert.equal(one.phaseAt(1).name, 'single_phase');
  assert.equal(one.phaseAt(0).task, 'clm');
});
