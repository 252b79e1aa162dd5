import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../../src/framework/index.js';
import {
  MergeError,
  Phase,
  PhaseSchedule,
  deepMerge,
  resolveAllPhases,
  resolvePhaseConfig,
} from '../../src/training/index.js';

test('objects merge recursively, scalars and arrays replace', () => {
  const base: JsonObject = { a: 1, nested: { x: 1, y: { deep: true, keep: 'k' } }, list: [1, 2, 3] };
  const merged = deepMerge(base, { a: 2, nested: { y: { deep: false } }, list: [9] });
  assert.deepEqual(merged, { a: 2, nested: { x: 1, y: { deep: false, keep: 'k' } }, list: [9] });
});

test('null deletes a key; undefined is ignored; new keys are added', () => {
  const merged = deepMerge({ clip_norm: 1, lr: 1, inner: { a: 1, b: 2 } }, { clip_norm: null, lr: undefined, inner: { b: null }, extra: { z: null, w: 1 } });
  assert.deepEqual(merged, { lr: 1, inner: { a: 1 }, extra: { w: 1 } });
});

test('an object with a different kind replaces the base object whole', () => {
  const base: JsonObject = { lr_schedule: { kind: 'cosine', lr: 1, final_fraction: 0.1 } };
  assert.deepEqual(deepMerge(base, { lr_schedule: { kind: 'constant', lr: 0.5 } }), { lr_schedule: { kind: 'constant', lr: 0.5 } });
  assert.deepEqual(deepMerge(base, { lr_schedule: { kind: 'cosine', lr: 0.5 } }), { lr_schedule: { kind: 'cosine', lr: 0.5, final_fraction: 0.1 } });
  assert.deepEqual(deepMerge(base, { lr_schedule: { lr: 0.5 } }), { lr_schedule: { kind: 'cosine', lr: 0.5, final_fraction: 0.1 } }, 'no kind in the override: merge');
});

test('an object replaces a scalar and vice versa', () => {
  assert.deepEqual(deepMerge({ a: 1 }, { a: { b: 2 } }), { a: { b: 2 } });
  assert.deepEqual(deepMerge({ a: { b: 2 } }, { a: 3 }), { a: 3 });
});

test('merging never mutates its inputs and shares no objects with them', () => {
  const base = { model: { stacks: [{ frozen: false }] }, o: { p: 1 } };
  const override = { o: { q: 2 }, list: [{ a: 1 }] };
  const snapshotBase = structuredClone(base);
  const snapshotOverride = structuredClone(override);
  const merged = deepMerge(base, override);
  assert.deepEqual(base, snapshotBase);
  assert.deepEqual(override, snapshotOverride);
  assert.notEqual(merged['model'], base.model);
  assert.notEqual((merged['model'] as { stacks: unknown[] }).stacks[0], base.model.stacks[0]);
  assert.notEqual((merged['list'] as unknown[])[0], override.list[0]);
});

test('non-JSON values and dangerous keys are errors naming the path', () => {
  assert.throws(() => deepMerge({}, { a: { b: NaN } }), (err: unknown) => err instanceof MergeError && /^a\.b: expected JSON data, found NaN/.test(err.message));
  assert.throws(() => deepMerge({}, { f: (() => 1) as unknown as JsonObject }), /f: expected JSON data .* found a function/);
  assert.throws(() => deepMerge({}, { d: new Date(0) as unknown as JsonObject }), /d: expected JSON data .* found a Date/);
  assert.throws(() => deepMerge({}, JSON.parse('{"x": {"__proto__": {"polluted": true}}}') as JsonObject), /x\.__proto__: this key is not allowed/);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  assert.throws(() => resolvePhaseConfig({ model: [1, 2] }, new Phase({ start_t: 0, end_t: 1 })), /^MergeError: model: expected an object, found \[1,2\]/);
});

test('resolvePhaseConfig merges each plane and applies the task as data.objective', () => {
  const base = {
    data: { corpus: 'moby-dick', objective: 'clm', batch: { batch_size: 8, seq_len: 128 } },
    model: { d_model: 64, n_stacks: 2 },
    optimizer: { type: 'adamw', lr_schedule: { kind: 'cosine', lr: 1e-3 }, clip_norm: 1 },
  };
  const phase = new Phase({
    start_t: 0.5,
    end_t: 1,
    name: 'grow',
    task: 'mlm',
    overrides: { data: { batch: { seq_len: 256 } }, model: { n_stacks: 3 }, optimizer: { clip_norm: null } },
  });
  const snapshot = structuredClone(base);
  const r = resolvePhaseConfig(base, phase);
  assert.deepEqual(r, {
    data: { corpus: 'moby-dick', objective: 'mlm', batch: { batch_size: 8, seq_len: 256 } },
    model: { d_model: 64, n_stacks: 3 },
    optimizer: { type: 'adamw', lr_schedule: { kind: 'cosine', lr: 1e-3 } },
  });
  assert.deepEqual(base, snapshot, 'base must not change');
  assert.deepEqual(resolvePhaseConfig({}, new Phase({ start_t: 0, end_t: 1 })), { data: {}, model: {}, optimizer: {} });
});

test('a data override that contradicts the phase task is an error', () => {
  const phase = new Phase({ start_t: 0, end_t: 1, name: 'p', task: 'clm', overrides: { data: { objective: 'mlm' } } });
  assert.throws(() => resolvePhaseConfig({}, phase), /phase 'p'\.overrides\.data\.objective: "mlm" contradicts the phase's task 'clm'/);
  const agreeing = new Phase({ start_t: 0, end_t: 1, task: 'clm', overrides: { data: { objective: 'clm' } } });
  assert.equal(resolvePhaseConfig({}, agreeing).data['objective'], 'clm');
});

test('resolveAllPhases records every phase with its bounds', () => {
  const schedule = new PhaseSchedule([
    { start_t: 0, end_t: 0.5, name: 'a', overrides: { model: { n_stacks: 1 } } },
    { start_t: 0.5, end_t: 1, name: 'b', task: 'diffusion' },
  ]);
  const all = resolveAllPhases({ model: { n_stacks: 2 } }, schedule);
  assert.deepEqual(all.map((r) => [r.index, r.name, r.start_t, r.end_t, r.model['n_stacks'], r.data['objective']]), [
    [0, 'a', 0, 0.5, 1, undefined],
    [1, 'b', 0.5, 1, 2, 'diffusion'],
  ]);
  assert.deepEqual(JSON.parse(JSON.stringify(all)), all, 'resolved configs are plain JSON');
});
