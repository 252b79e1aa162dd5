import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as E from '../../src/engine/index.js';
import { hasNative, assertThrowsWith } from './harness.js';
import { threadsForLoad } from '../../src/engine/threads.js';

test('threads: auto mode by default, fixed by setNumThreads(n), back to auto; bad values are errors', { skip: !hasNative }, () => {
  const before = E.engineInfo();
  try {
    E.setNumThreads(1);
    assert.equal(E.engineInfo().threadsAuto, false);
    assert.equal(E.engineInfo().threads, 1);
    E.setNumThreads('auto', 2);
    assert.equal(E.engineInfo().threadsAuto, true);
    // Kernels keep running (and adapting) in auto mode.
    const s = E.tidy(() => E.sumToShape(E.matmul(E.ones([64, 64]), E.ones([64, 64])), []).item());
    assert.equal(s, 64 * 64 * 64);
    assertThrowsWith(() => E.setNumThreads(0), /setNumThreads/, /integer >= 1/);
    assertThrowsWith(() => E.setNumThreads('auto', 0), /auto/, /integer >= 1/);
  } finally {
    if (before.threadsAuto) E.setNumThreads('auto'); else E.setNumThreads(before.threads ?? 1);
  }
});

test('threads: STACKWISE_THREADS fixes the count or names its bad value', { skip: !hasNative }, () => {
  const script = (env: string) => spawnSync(process.execPath, ['-e',
    `import('${new URL('../../src/engine/index.js', import.meta.url).href}').then((E) => console.log(JSON.stringify(E.engineInfo())))`],
  { encoding: 'utf8', env: { ...process.env, STACKWISE_THREADS: env, NODE_TEST_CONTEXT: undefined } });
  const one = script('1');
  assert.equal(one.status, 0, one.stderr);
  const info = JSON.parse(one.stdout.trim()) as E.EngineInfo;
  assert.equal(info.threads, 1);
  assert.equal(info.threadsAuto, false);
  const bad = script('many');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /STACKWISE_THREADS must be 'auto' or an integer >= 1, found 'many'/);
});

test('threads: a core counts as taken once others use a quarter of it (a process sharing a core shows only part of its demand)', () => {
  assert.equal(threadsForLoad(2, 0), 2);
  assert.equal(threadsForLoad(2, 0.2), 2, 'background noise keeps every core');
  assert.equal(threadsForLoad(2, 0.5), 1, 'a busy process time-sharing one of our cores');
  assert.equal(threadsForLoad(2, 1), 1);
  assert.equal(threadsForLoad(2, 3), 1, 'never below one thread');
  assert.equal(threadsForLoad(8, 1.1), 7);
  assert.equal(threadsForLoad(8, 1.3), 6);
  assert.equal(threadsForLoad(1, 0), 1);
});
