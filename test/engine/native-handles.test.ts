// Native buffer handles: freed at once with nothing left for a finaliser, a stale handle refused
// after its slot is reused, freeing twice harmless, and the GC safety net for a buffer the engine
// never frees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { nativeBackend } from '../../src/engine/setup.js';
import { hasNative } from './harness.js';

test('a freed handle is refused even after its slot is reused; freeing twice does nothing', { skip: !hasNative }, () => {
  const addon = nativeBackend!.addon;
  const before = addon.memory()[1];
  const a = addon.alloc(16);
  addon.fill(a.h, 1, 4);
  addon.free(a);
  addon.free(a);
  const b = addon.alloc(16); // most likely the same slot, under a new generation
  assert.throws(() => addon.fill(a.h, 2, 4), /freed buffer/);
  const out = new Float32Array(4);
  addon.read(b.h, out, 0);
  assert.deepEqual([...out], [0, 0, 0, 0], 'the new buffer is untouched by the stale handle');
  addon.free(b);
  assert.equal(addon.memory()[1], before);
  assert.throws(() => addon.fill({} as object, 1, 1), /not a native buffer/);
});

test('a buffer the engine never frees is released once its owner is garbage-collected', { skip: !hasNative }, () => {
  const setup = new URL('../../src/engine/setup.js', import.meta.url).href;
  const code = `import { nativeBackend } from ${JSON.stringify(setup)};
const addon = nativeBackend.addon;
const before = addon.memory()[1];
(() => { for (let i = 0; i < 100; i++) addon.alloc(1024); })();
const leaked = addon.memory()[1] - before;
globalThis.gc();
await new Promise((r) => setImmediate(r));
await new Promise((r) => setTimeout(r, 10));
process.stdout.write(JSON.stringify({ leaked, after: addon.memory()[1] - before }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { leaked, after } = JSON.parse(r.stdout) as { leaked: number; after: number };
  assert.equal(leaked, 100);
  assert.equal(after, 0, 'the safety net released every unfreed buffer');
});
