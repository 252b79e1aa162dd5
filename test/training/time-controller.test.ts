import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PhaseSchedule,
  ScheduleError,
  TimeController,
  createSimpleSchedule,
} from '../../src/training/index.js';

test('step k of T has t = k / T', () => {
  const c = new TimeController(8);
  assert.equal(c.tOf(0), 0);
  assert.equal(c.tOf(2), 0.25);
  assert.equal(c.tOf(8), 1);
});

test('stepOf is the first step whose t is ≥ the given t, and inverts tOf exactly', () => {
  for (const T of [1, 2, 3, 7, 10, 97, 1000, 4096]) {
    const c = new TimeController(T);
    for (let k = 0; k <= T; k++) assert.equal(c.stepOf(c.tOf(k)), k, `T=${T} k=${k}`);
    for (let i = 0; i <= 200; i++) {
      const t = i / 200;
      const k = c.stepOf(t);
      assert.ok(c.tOf(k) >= t, `T=${T} t=${t}: step ${k} is before t`);
      if (k > 0) assert.ok(c.tOf(k - 1) < t, `T=${T} t=${t}: step ${k - 1} already reaches t`);
    }
  }
  assert.equal(new TimeController(3).stepOf(0.5), 2); // not truncation (which gives 1)
  // Exact, no tolerance: 0.1 + 0.2 is a hair above 0.3 = tOf(3), so its first step is 4. This keeps
  // stepOf consistent with phaseAt(tOf(k)); schedules snap near-equal boundaries instead.
  assert.equal(new TimeController(10).stepOf(0.1 + 0.2), 4);
  assert.equal(new TimeController(10).stepOf(0.3), 3);
});

test('bad totals, steps and t are rejected with the numbers involved', () => {
  assert.throws(() => new TimeController(0), /total_steps must be a positive integer, found 0/);
  assert.throws(() => new TimeController(2.5), /found 2\.5/);
  assert.throws(() => new TimeController(NaN), /found NaN/);
  const c = new TimeController(10);
  assert.throws(() => c.tOf(11), /step must be an integer in \[0, 10\], found 11/);
  assert.throws(() => c.tOf(-1), /found -1/);
  assert.throws(() => c.tOf(1.5), /found 1\.5/);
  assert.throws(() => c.stepOf(1.01), /t must be a number in \[0, 1\], found 1\.01/);
  assert.throws(() => c.stepOf(NaN), /found NaN/);
  assert.throws(() => new TimeController(10, 11), /start step must be an integer in \[0, 10\], found 11/);
});

test('cursor: advance, seek, completion; cannot run past the end', () => {
  const c = new TimeController(4);
  assert.equal(c.currentStep, 0);
  assert.equal(c.t, 0);
  c.advance();
  c.advance(2);
  assert.equal(c.t, 0.75);
  assert.equal(c.remainingSteps, 1);
  assert.equal(c.isComplete, false);
  c.advance();
  assert.equal(c.isComplete, true);
  assert.equal(c.t, 1);
  assert.throws(() => c.advance(), /cannot advance 1 step\(s\) from step 4; the run has 4 steps/);
  c.seek(2);
  assert.equal(c.currentStep, 2);
  const back = TimeController.fromJSON(JSON.parse(JSON.stringify(c.toJSON())));
  assert.equal(back.totalSteps, 4);
  assert.equal(back.currentStep, 2);
});

test('phase step ranges tile the run and agree with phaseAt(tOf(step))', () => {
  const schedule = new PhaseSchedule([
    { start_t: 0, end_t: 1 / 3, name: 'a' },
    { start_t: 1 / 3, end_t: 0.7, name: 'b' },
    { start_t: 0.7, end_t: 1, name: 'c' },
  ]);
  for (const T of [3, 4, 10, 11, 100, 999]) {
    const c = new TimeController(T);
    const ranges = c.phaseStepRanges(schedule);
    assert.equal(ranges[0]!.first_step, 0);
    assert.equal(ranges.at(-1)!.end_step, T);
    for (let i = 0; i + 1 < ranges.length; i++) assert.equal(ranges[i]!.end_step, ranges[i + 1]!.first_step);
    for (const r of ranges) {
      for (let k = r.first_step; k < r.end_step; k++) assert.equal(c.phaseAtStep(schedule, k), r.phase, `T=${T} step ${k}`);
    }
    assert.deepEqual(c.boundarySteps(schedule), ranges.slice(1).map((r) => r.first_step));
  }
  assert.deepEqual(new TimeController(10).boundarySteps(schedule), [4, 7]);
});

test('a phase shorter than one step is rejected, naming the phase and the nearest steps', () => {
  const schedule = new PhaseSchedule([
    { start_t: 0, end_t: 0.41, name: 'a' },
    { start_t: 0.41, end_t: 0.49, name: 'tiny' },
    { start_t: 0.49, end_t: 1, name: 'c' },
  ]);
  assert.throws(
    () => new TimeController(10).assertEveryPhaseHasSteps(schedule),
    (err: unknown) => {
      assert.ok(err instanceof ScheduleError);
      assert.match(err.message, /phase #1 'tiny' \[0\.41, 0\.49\) gets no training step with total_steps = 10/);
      assert.match(err.message, /step 4 runs at t = 0\.4 and step 5 at t = 0\.5/);
      return true;
    },
  );
  new TimeController(100).assertEveryPhaseHasSteps(schedule);
});

test('createSimpleSchedule converts step bounds through the controller', () => {
  const { schedule, controller } = createSimpleSchedule(200, [
    { name: 'first', start_step: 0, end_step: 50, task: 'clm' },
    { name: 'second', start_t: 0.25, end_step: 200 },
  ]);
  assert.equal(controller.totalSteps, 200);
  assert.equal(schedule.phases[0]!.end_t, 0.25);
  assert.equal(schedule.phaseAt(controller.tOf(50)).name, 'second');
  assert.throws(
    () => createSimpleSchedule(10, [{ name: 'x', start_step: 0, start_t: 0, end_t: 1 }]),
    /phase #0 'x': give start_t or start_step, not both/,
  );
  assert.throws(
    () => createSimpleSchedule(10, [{ name: 'x', start_step: 0, end_step: 12 }]),
    /phase #0 'x': end_step must be an integer in \[0, 10\], found 12/,
  );
  assert.throws(() => createSimpleSchedule(2, [{ start_t: 0, end_t: 0.9 }, { start_t: 0.9, end_t: 1 }]), /gets no training step/);
  assert.throws(() => createSimpleSchedule(10, []), /expected at least one phase/);
});
