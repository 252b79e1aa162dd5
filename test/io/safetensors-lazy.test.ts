// openSafetensors: tensor-by-tensor reads by byte range (the header validated at open).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromFloat32, openSafetensors, readSafetensors, serializeSafetensors, SafetensorsError } from '../../src/io/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-lazy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('reads each tensor by its byte range, equal to the whole-file reader; unknown names and closed files are errors', () => {
  const a = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5);
  const b = Float32Array.from({ length: 7 }, (_, i) => -i);
  const path = join(dir, 'm.safetensors');
  writeFileSync(path, serializeSafetensors({ 'layers.0.w': fromFloat32(a, [10, 100]), bias: fromFloat32(b, [7]) }, { format: 'pt' }));
  const whole = readSafetensors(path);
  const r = openSafetensors(path);
  assert.deepEqual([...r.names].sort(), ['bias', 'layers.0.w']);
  assert.deepEqual(r.info('layers.0.w'), { dtype: 'F32', shape: [10, 100], bytes: 4000 });
  assert.deepEqual(r.metadata, { format: 'pt' });
  for (const name of r.names) {
    const t = r.read(name);
    assert.deepEqual(t.shape, whole.tensors.get(name)!.shape);
    assert.deepEqual(Array.from(t.data), Array.from(whole.tensors.get(name)!.data));
  }
  assert.throws(() => r.read('missing'), (e: unknown) => e instanceof SafetensorsError && /m\.safetensors.*no tensor named 'missing'/.test((e as Error).message));
  r.close();
  assert.throws(() => r.read('bias'), /closed/);
  // A bad header is refused at open, like the whole-file reader does.
  const bad = join(dir, 'bad.safetensors');
  writeFileSync(bad, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0x7b]));
  assert.throws(() => openSafetensors(bad), SafetensorsError);
});
