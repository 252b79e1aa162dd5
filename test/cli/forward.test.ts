// `stackwise forward` as a child process on every golden fixture: the file it writes matches the
// fixture's case.safetensors (Hugging Face transformers / PEFT) within the model library's targets:
//   logits, merged_logits, hidden states: |ours - HF| <= 1e-4; loss: relative 1e-5;
//   gradients: |ours - HF| <= 1e-4 · max(1, |HF|).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, toFloat32 } from '../../src/io/index.js';
import { FIXTURES_DIR, stackwise } from './support.js';
import { FIXTURE_INPUT_NAMES as INPUT_NAMES, fixtureFolders, goldenTolerance as tolerance } from '../io/support.js';

const folders = fixtureFolders();

test('fixtures are present', { skip: folders.length === 0 ? `no fixtures at ${FIXTURES_DIR}` : false }, () => {
  assert.ok(folders.length > 0);
});

for (const folder of folders) {
  test(`stackwise forward ${folder} reproduces the fixture`, () => {
    const dir = join(FIXTURES_DIR, folder);
    const tmp = mkdtempSync(join(tmpdir(), 'sw-forward-'));
    try {
      const out = join(tmp, 'nested', 'result.safetensors');
      const r = stackwise('forward', dir, '--inputs', join(dir, 'case.safetensors'), '--out', out, '--json');
      assert.equal(r.status, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { ok: boolean; out: string; tensors: { name: string }[]; loss: number | null };
      assert.equal(summary.ok, true);
      assert.equal(summary.out, out);
      const ref = readSafetensors(join(dir, 'case.safetensors')).tensors;
      const mine = readSafetensors(out).tensors;
      assert.deepEqual(summary.tensors.map((t) => t.name).sort(), [...mine.keys()].sort());
      const failures: string[] = [];
      for (const [name, st] of ref) {
        if (INPUT_NAMES.has(name)) continue;
        const m = mine.get(name);
        if (!m) { failures.push(`${name}: missing from the output`); continue; }
        assert.deepEqual(m.shape, st.shape, `${name}: shape`);
        assert.equal(m.dtype, 'F32', `${name}: dtype`);
        const a = toFloat32(m);
        const b = toFloat32(st);
        const tol = tolerance(name);
        for (let i = 0; i < b.length; i++) {
          if (!(Math.abs(a[i]! - b[i]!) <= tol(b[i]!))) { failures.push(`${name}[${i}]: ours ${a[i]}, HF ${b[i]}`); break; }
        }
      }
      const ours = [...mine.keys()].filter((k) => k.startsWith('grad.')).sort();
      const theirs = [...ref.keys()].filter((k) => k.startsWith('grad.')).sort();
      assert.deepEqual(ours, theirs, 'a gradient for every trainable parameter, under the HF names');
      assert.deepEqual(failures, []);
      if (ref.has('loss')) assert.ok(Math.abs(summary.loss! - toFloat32(ref.get('loss')!)[0]!) <= 1e-5 * Math.abs(toFloat32(ref.get('loss')!)[0]!));
      assert.deepEqual(readdirSync(join(tmp, 'nested')), ['result.safetensors'], 'no temporary file left');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('stackwise forward: bad inputs fail with a clear message and write nothing', { skip: folders.length === 0 }, () => {
  const dir = join(FIXTURES_DIR, folders[0]!);
  const tmp = mkdtempSync(join(tmpdir(), 'sw-forward-'));
  try {
    const out = join(tmp, 'out.safetensors');
    let r = stackwise('forward', dir, '--out', out);
    assert.equal(r.status, 2, 'missing --inputs is a usage error');
    assert.match(r.stderr, /--inputs/);
    r = stackwise('forward', dir, '--inputs', join(tmp, 'nope.safetensors'), '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /nope\.safetensors: no such inputs file/);
    r = stackwise('forward', dir, '--inputs', join(dir, 'model.safetensors'), '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /model\.safetensors: no 'input_ids' tensor/);
    r = stackwise('forward', dir, '--inputs', join(dir, 'config.json'), '--out', out, '--json');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /config\.json: header length/);
    const err = JSON.parse(r.stdout) as { ok: boolean; error: { exitCode: number; message: string } };
    assert.equal(err.ok, false);
    assert.equal(err.error.exitCode, 1);
    r = stackwise('forward', join(tmp, 'missing-model'), '--inputs', join(dir, 'case.safetensors'), '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing-model: no such model folder/);
    r = stackwise('forward', dir, '--inputs', join(dir, 'case.safetensors'), '--out', tmp);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /is a folder/);
    assert.deepEqual(readdirSync(tmp), [], 'nothing written');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
