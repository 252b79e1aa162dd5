// Kernels whose outputs are allocated without zero-filling (allocOutput) must write every
// element. With STACKWISE_POISON_OUTPUTS=1 such outputs start as NaN; this reruns the op tests of
// those kernels in a child process that way, so an unwritten element fails a cross-check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hasNative } from './harness.js';

const FILES = ['core-ops', 'linear-group', 'attention', 'norm', 'rope', 'softmax'];

test('outputs allocated without zeros are written in full by their kernels (poisoned with NaN)', { skip: !hasNative || process.env.STACKWISE_POISON_OUTPUTS !== undefined }, () => {
  const files = FILES.map((f) => fileURLToPath(new URL(`./${f}.test.js`, import.meta.url)));
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files],
    { encoding: 'utf8', env: { ...process.env, STACKWISE_POISON_OUTPUTS: '1', NODE_TEST_CONTEXT: undefined } });
  assert.equal(r.status, 0, `poisoned run failed:\n${(r.stdout + r.stderr).split('\n').filter((l) => /not ok|Error|expected|actual/.test(l)).slice(0, 20).join('\n')}`);
  assert.match(r.stdout, /# pass [1-9]/);
  assert.match(r.stdout, /# fail 0/);
});
