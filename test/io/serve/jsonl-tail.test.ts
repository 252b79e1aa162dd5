// Following a growing metrics.jsonl by byte offset: only appended bytes are read, a half-written
// last line waits for its end, malformed lines are skipped and counted, a replaced file starts over;
// and a run's status from its own records.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlTail, MAX_LINE_BYTES, runStatus, STALE_AFTER_MIN_MS } from '../../../src/io/serve/index.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-tail-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const line = (r: object) => JSON.stringify(r) + '\n';

test('reads only what was appended, holds a half-written line until its newline, counts malformed lines', () => {
  const path = join(tempDir(), 'metrics.jsonl');
  const tail = new JsonlTail(path);
  assert.deepEqual(tail.poll(), { records: [], reset: false }, 'no file yet: nothing, no error');

  writeFileSync(path, line({ type: 'step', step: 0 }) + line({ type: 'step', step: 1 }));
  const first = tail.poll();
  assert.deepEqual(first.records.map((r) => r['step']), [0, 1]);
  const size = Buffer.byteLength(line({ type: 'step', step: 0 }) + line({ type: 'step', step: 1 }));
  assert.equal(tail.offset, size);
  assert.deepEqual(tail.poll().records, [], 'nothing new: nothing returned');

  // A record cut in the middle of a multi-byte character, as a writer caught mid-append leaves it.
  const whole = Buffer.from(line({ type: 'step', step: 2, phase: 'défi' }), 'utf8');
  const cut = whole.indexOf(0xc3) + 1;
  appendFileSync(path, whole.subarray(0, cut));
  assert.deepEqual(tail.poll().records, [], 'half-written: not a record yet');
  assert.equal(tail.pendingBytes, cut);
  assert.equal(tail.malformed, 0, 'a half-written line is not malformed');
  appendFileSync(path, whole.subarray(cut));
  const completed = tail.poll().records;
  assert.deepEqual(completed, [{ type: 'step', step: 2, phase: 'défi' }]);
  assert.equal(tail.pendingBytes, 0);

  appendFileSync(path, '{"type":"step","st\n' + '[1,2]\n' + '42\n' + '\n' + line({ type: 'step', step: 3, loss: null, nonfinite: { loss: 'NaN' } }));
  const next = tail.poll().records;
  assert.equal(next.length, 1);
  assert.ok(Number.isNaN(next[0]!['loss']), 'non-finite numbers are restored');
  assert.equal(tail.malformed, 3, 'a cut JSON, an array and a bare number are skipped and counted; blank lines are not');
  assert.equal(tail.lines, 7);
});

test('a replaced or truncated file starts over; an over-long line is dropped, not buffered without end', () => {
  const dir = tempDir();
  const path = join(dir, 'metrics.jsonl');
  writeFileSync(path, line({ step: 0 }) + line({ step: 1 }) + line({ step: 2 }));
  const tail = new JsonlTail(path);
  assert.equal(tail.poll().records.length, 3);
  // A resumed run rewrites the file atomically (rename over it) with fewer records.
  writeFileSync(join(dir, 'tmp'), line({ step: 0 }));
  renameSync(join(dir, 'tmp'), path);
  const again = tail.poll();
  assert.equal(again.reset, true);
  assert.deepEqual(again.records, [{ step: 0 }]);
  // Truncated in place.
  writeFileSync(path, '');
  assert.equal(tail.poll().reset, true);

  appendFileSync(path, 'x'.repeat(MAX_LINE_BYTES + 10));
  tail.poll();
  assert.equal(tail.pendingBytes, 0, 'the over-long partial line is not kept');
  assert.equal(tail.malformed, 1);
  appendFileSync(path, 'yyy\n' + line({ step: 9 }));
  assert.deepEqual(tail.poll().records, [{ step: 9 }], 'the rest of the long line is skipped up to its newline');
  assert.equal(tail.malformed, 1);
});

test('run status from the records: running, finished, failed, interrupted (Ctrl-C or silent), running again after resume', () => {
  const now = 10_000_000;
  const steps = [0, 1, 2].map((step) => ({ type: 'step', step, step_ms: 10 }));
  assert.equal(runStatus(steps, now - 1000, now).state, 'running');
  assert.equal(runStatus([], now, now).detail, 'starting');
  const finished = runStatus([...steps, { type: 'eval', step: 3 }, { type: 'checkpoint', step: 3, reason: 'final' }], now - 1e9, now);
  assert.deepEqual(finished, { state: 'finished', detail: 'finished at step 3' });
  const failed = runStatus([...steps, { type: 'diverged', step: 3, reason: 'the loss is NaN (micro-batch 0)' }], now, now);
  assert.deepEqual(failed, { state: 'failed', detail: 'diverged at step 3: the loss is NaN (micro-batch 0)' });
  const stopped = runStatus([...steps, { type: 'checkpoint', step: 3, reason: 'manual' }], now, now);
  assert.equal(stopped.state, 'interrupted');
  assert.match(stopped.detail, /--resume/);
  const silent = runStatus(steps, now - STALE_AFTER_MIN_MS - 60_000, now);
  assert.equal(silent.state, 'interrupted');
  assert.match(silent.detail, /no record for 3 min/);
  // Slow steps push the silence that counts as stopped further out (50 × the median step).
  const slow = [0, 1, 2].map((step) => ({ type: 'step', step, step_ms: 10_000 }));
  assert.equal(runStatus(slow, now - 300_000, now).state, 'running');
  const resumed = [...steps, { type: 'checkpoint', step: 3, reason: 'manual' }, { type: 'resume', step: 3 }, { type: 'step', step: 3, step_ms: 10 }];
  assert.equal(runStatus(resumed, now, now).state, 'running');
  // A periodic checkpoint followed by more steps ends nothing.
  assert.equal(runStatus([{ type: 'checkpoint', step: 0, reason: 'manual' }, ...steps], now, now).state, 'running');
});
