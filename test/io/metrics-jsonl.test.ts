import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlWriter, appendJsonl, encodeJsonlRecord, readJsonl, truncateJsonl } from '../../src/io/metrics-jsonl.js';

test('records round-trip, non-finite numbers included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-jsonl-'));
  try {
    const path = join(dir, 'm.jsonl');
    const w = new JsonlWriter(path);
    w.write({ step: 0, loss: 1.5, nested: { a: [1, 2] } });
    w.write({ step: 1, loss: NaN, grad_norm: Infinity });
    w.close();
    appendJsonl(path, { step: 2, loss: -Infinity });
    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes('NaN') || text.includes('"NaN"'), 'no bare NaN in the JSON');
    assert.match(encodeJsonlRecord({ loss: NaN }), /"loss":null,"nonfinite":\{"loss":"NaN"\}/);
    const back = readJsonl(path);
    assert.equal(back.length, 3);
    assert.deepEqual(back[0], { step: 0, loss: 1.5, nested: { a: [1, 2] } });
    assert.ok(Number.isNaN(back[1]!['loss']));
    assert.equal(back[1]!['grad_norm'], Infinity);
    assert.equal(back[2]!['loss'], -Infinity);
    assert.deepEqual(readJsonl(join(dir, 'missing.jsonl')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a partial last line (a killed writer) is skipped and truncate removes it; bad lines elsewhere throw', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-jsonl-'));
  try {
    const path = join(dir, 'm.jsonl');
    for (let i = 0; i < 5; i++) appendJsonl(path, { step: i });
    appendFileSync(path, '{"step": 5, "lo');
    assert.equal(readJsonl(path).length, 5);
    assert.equal(truncateJsonl(path, (r) => (r['step'] as number) < 3), 2);
    assert.deepEqual(readJsonl(path).map((r) => r['step']), [0, 1, 2]);
    assert.ok(readFileSync(path, 'utf8').endsWith('}\n'));
    appendFileSync(path, 'garbage\n{"step": 9}\n');
    assert.throws(() => readJsonl(path), /m\.jsonl:4: invalid JSON line/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
