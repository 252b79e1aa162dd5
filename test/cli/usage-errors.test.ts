// Usage errors commander finds while parsing are JSON under --json; an unknown benchmark is named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stackwise } from './support.js';

test('--json: a parse-time usage error is a JSON error object on stdout, exit 2', () => {
  const r = stackwise('eval', 'nowhere', '--json', '--split', 'bogus');
  assert.equal(r.status, 2);
  const out = JSON.parse(r.stdout) as { ok: boolean; command: string; error: { type: string; message: string; exitCode: number } };
  assert.deepEqual([out.ok, out.command, out.error.type, out.error.exitCode], [false, 'eval', 'UsageError', 2]);
  assert.match(out.error.message, /--split <split>.*'bogus' is invalid/);
  const unknown = stackwise('export', 'x', '--out', 'y', '--json', '--no-such-flag');
  assert.equal(unknown.status, 2);
  assert.match((JSON.parse(unknown.stdout) as { error: { message: string } }).error.message, /unknown option '--no-such-flag'/);
  // Without --json, stdout stays empty.
  assert.equal(stackwise('eval', 'nowhere', '--split', 'bogus').stdout, '');
});

test('bench nosuch names the unknown benchmark and the known ones, exit 2', () => {
  const r = stackwise('bench', 'nosuch');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bench: unknown benchmark 'nosuch'; expected one of quant, tokenizer, .*train-step/);
  assert.doesNotMatch(r.stderr, /^usage: npm/m);
});
