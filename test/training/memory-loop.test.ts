// Resident memory of a library training loop that never yields to the event loop (as
// `machine.train()` and a plain `for (…) machine.trainStep()` do) stays flat over 2,000 steps.
// Counting engine buffers cannot see this (they stayed flat while RSS grew by ~20 KB a step:
// the bookkeeping of every freed buffer waited for a finaliser that only runs when the event
// loop turns); so this measures RSS, in a fresh process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('2,000 library trainStep() calls without yielding: resident memory stays flat', (t) => {
  const child = fileURLToPath(new URL('./memory-loop-child.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', child, '2000', '300'], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  const { before, after } = JSON.parse(r.stdout.trim()) as { before: { rss: number; buffers: number }; after: { rss: number; buffers: number } };
  const growthMb = (after.rss - before.rss) / 2 ** 20;
  t.diagnostic(`RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${(after.rss / 2 ** 20).toFixed(1)} MiB over 1,700 steps; live buffers ${before.buffers} → ${after.buffers}`);
  assert.equal(after.buffers, before.buffers, 'live engine buffers are flat');
  // Before the fix this grew by ~30 MiB (linearly); allocator noise is a few MiB.
  assert.ok(growthMb < 10, `resident memory grew by ${growthMb.toFixed(1)} MiB over 1,700 steps of a loop that never yields`);
});
