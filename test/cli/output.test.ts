// Shared CLI helpers: exit codes, error messages, option parsers, formatting, progress bar.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from '../../src/engine/index.js';
import { CommanderError, InvalidArgumentError } from 'commander';
import {
  EXIT, UsageError, createProgress, describeError, exitCodeOf, formatTable, humanCount, humanDuration,
  parseChoice, parsePositiveInt, parseStacks, toJson,
} from '../../src/cli/output.js';

test('exit codes: usage errors 2, failures 1, help 0', () => {
  assert.equal(exitCodeOf(new UsageError('x')), EXIT.usage);
  assert.equal(exitCodeOf(new InvalidArgumentError('x')), EXIT.usage);
  assert.equal(exitCodeOf(new CommanderError(1, 'commander.unknownOption', 'x')), EXIT.usage);
  assert.equal(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', '')), EXIT.ok);
  assert.equal(exitCodeOf(new Error('x')), EXIT.failure);
  assert.equal(exitCodeOf('string'), EXIT.failure);
});

test('describeError: system errors name the path', () => {
  const e = Object.assign(new Error("ENOENT: no such file or directory, open '/x/y'"), { code: 'ENOENT', path: '/x/y' });
  assert.equal(describeError(e), '/x/y: no such file or directory');
  assert.equal(describeError(new Error('plain')), 'plain');
});

test('option parsers', () => {
  assert.equal(parsePositiveInt('3'), 3);
  for (const bad of ['0', '-1', '1.5', 'x', '']) assert.throws(() => parsePositiveInt(bad), InvalidArgumentError, bad);
  assert.equal(parseStacks('2'), 2);
  assert.deepEqual(parseStacks('1, 3'), [1, 3]);
  for (const bad of ['0', '2,0', 'a', '1,,2', '-2']) assert.throws(() => parseStacks(bad), /expected K/, bad);
  assert.equal(parseChoice(['a', 'b'] as const)('b'), 'b');
  assert.throws(() => parseChoice(['a', 'b'] as const)('c'), /one of a, b; found 'c'/);
});

test('formatting helpers', () => {
  assert.equal(humanCount(999), '999');
  assert.equal(humanCount(221248), '221.25K');
  assert.equal(humanCount(12_345_678), '12.35M');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(885_000), '864.3 KiB');
  assert.equal(humanDuration(65), '1m 05s');
  assert.equal(humanDuration(NaN), '?');
  assert.equal(formatTable([['a', '1'], ['long', '100']], ['l', 'r']), 'a       1\nlong  100');
  assert.equal(formatTable([['├─ x', 'y']]), '├─ x  y');
  assert.equal(toJson({ a: NaN, b: [Infinity, 1] }), '{"a":null,"b":[null,1]}');
});

test('progress: plain lines when the stream is not a terminal, silent when disabled', () => {
  const chunks: string[] = [];
  const stream = { isTTY: false, write: (s: string) => { chunks.push(s); return true; } } as unknown as NodeJS.WriteStream;
  const p = createProgress({ total: 10, label: 'train', stream, logIntervalMs: 0 });
  p.update(5, { loss: 2.5, tokensPerSec: 1234.5, lr: 3e-4 });
  p.increment(5);
  p.stop();
  p.stop();
  assert.equal(chunks.length, 3);
  assert.match(chunks[0]!, /^train 5\/10 steps \(50\.0%\) \| elapsed \d+s \| ETA \d+s \| loss 2\.5000 \| 1235 tok\/s \| lr 3\.00e-4\n$/);
  assert.match(chunks[2]!, /^train 10\/10 steps \(100\.0%\)/);
  const silent: string[] = [];
  const q = createProgress({ total: 3, enabled: false, stream: { isTTY: true, write: (s: string) => { silent.push(s); return true; } } as unknown as NodeJS.WriteStream });
  q.update(1); q.stop();
  assert.deepEqual(silent, []);
});
