// The activation cache's staleness check by write versions: every path that writes a frozen
// prefix weight in place invalidates the cache (and the recomputed activations match an uncached
// forward); reads, forwards and training the layers above it never do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import { data } from '../../../src/engine/backends/reference/index.js';
import type { Tensor } from '../../../src/engine/index.js';
import type { Linear, Model } from '../../../src/nn/index.js';
import { AdamW } from '../../../src/optim/index.js';
import { loadQuantizedCheckpoint, serializeQuantizedCheckpoint } from '../../../src/io/quantized-checkpoint.js';
import { ActivationCache, CachedPrefixForward, ProgressiveRackBuilder } from '../../../src/training/progressive/index.js';
import { idsOf, logitsOf, maxAbsDiff, tinyLlama } from './helpers.js';

/** A 2-stack rack with a frozen trunk: the embedding and stack 0 are served from the cache. */
function frozenTrunk(seed: number): { m: Model; fwd: CachedPrefixForward; cache: ActivationCache } {
  const m = tinyLlama(1, seed);
  new ProgressiveRackBuilder(m, { targetStacks: 2, freeze: 'frozen_trunk', seed }).grow();
  const cache = new ActivationCache({ memoryBudgetBytes: 1 << 20 });
  return { m, fwd: new CachedPrefixForward(m, { cache }), cache };
}

function trunkLinear(m: Model, name: 'down' | 'q' = 'down'): Linear {
  return m.rack.stacks.at(0).blocks.at(0).loraTargets().get(name) as Linear;
}

const cachedLogits = (fwd: CachedPrefixForward, x: Tensor) => E.tidy(() => E.noGrad(() => fwd.forward(x, [1, 2]).logits.toArray()));

/**
 * Warms the cache, checks that a repeat is served from it, then runs `write` and checks that
 * `written` got new write versions, that the cache was invalidated once and recomputed every
 * row, and that the result equals an uncached forward (and differs from before when `changes`).
 */
function assertInvalidates(what: string, setup: ReturnType<typeof frozenTrunk>, written: () => Tensor[], write: () => void, changes = true): void {
  const { m, fwd, cache } = setup;
  const x = idsOf(2, 6, 3);
  const first = cachedLogits(fwd, x);
  assert.equal(maxAbsDiff(cachedLogits(fwd, x), first), 0, `${what}: repeat from the cache`);
  const { hits, invalidations } = cache.stats;
  assert.ok(hits >= 2, `${what}: the repeat hit the cache`);
  const version = fwd.prefixVersion();
  const before = written().map((t) => t.writeVersion);
  write();
  written().forEach((t, i) => assert.ok(t.writeVersion > before[i]!, `${what}: write version of ${t.describe()}`));
  assert.notEqual(fwd.prefixVersion(), version, `${what}: the prefix version changed`);
  const out = E.tidy(() => E.noGrad(() => {
    const r = fwd.forward(x, [1, 2]);
    return { logits: r.logits.toArray(), computed: r.computedRows, reused: r.reusedRows };
  }));
  assert.equal(cache.stats.invalidations, invalidations + 1, `${what}: one invalidation`);
  assert.equal(out.computed, 2, `${what}: every row recomputed`);
  assert.ok(maxAbsDiff(out.logits, logitsOf(m, x)) < 1e-5, `${what}: equals an uncached forward`);
  if (changes) assert.ok(maxAbsDiff(out.logits, first) > 1e-5, `${what}: the change shows`);
  x.dispose();
}

const adamOpts = { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, step: 1 };

test('cache invalidation by write version: Tensor.write, a write through a view, Backend.upload', () => {
  const s = frozenTrunk(8);
  const emb = () => s.m.embedding.parameters()[0]!;
  assertInvalidates('Tensor.write on the embedding', s, () => [emb()], () => {
    const w = emb();
    w.write(Float32Array.from(w.toArray(), (v, i) => (i % 7 === 0 ? v + 0.5 : v)));
  });
  const w = trunkLinear(s.m).weight;
  assertInvalidates('write through a reshaped view', s, () => [w], () => {
    const flat = E.reshape(w, [w.size]);
    flat.write(Float32Array.from([1, -1, 2]), 5);
    flat.dispose();
  });
  assertInvalidates('Backend.upload', s, () => [w], () => w.backend.upload(w.storage, E.tidy(() => E.mulScalar(w, -1).toArray())));
  s.cache.dispose();
  s.m.dispose();
});

test('cache invalidation by write version: loadStateDict, LoRA merge and unmerge', () => {
  const s = frozenTrunk(9);
  const lin = trunkLinear(s.m);
  assertInvalidates('loadStateDict', s, () => [lin.weight], () => E.tidy(() => {
    lin.loadStateDict(new Map([['weight', E.mulScalar(lin.weight, 1.5)]]), { strict: false });
  }));
  const q = trunkLinear(s.m, 'q');
  q.addLora({ rank: 2, alpha: 4, seed: 5, init: 'random' });
  q.loraA!.requiresGrad = false;
  q.loraB!.requiresGrad = false;
  assertInvalidates('LoRA merge', s, () => [q.weight], () => q.merge(), false);
  assertInvalidates('LoRA unmerge', s, () => [q.weight], () => q.unmerge(), false);
  // Merged or not, the adapter computes the same function; the weight itself did change.
  s.cache.dispose();
  s.m.dispose();
});

test('cache invalidation by write version: optimizer updates and a checkpoint load into the trunk', () => {
  const s = frozenTrunk(10);
  const w = trunkLinear(s.m).weight;
  const like = (v: number) => E.full(w.shape, v);
  const g = like(0.3), m1 = like(0), v1 = like(0), buf = like(0);
  assertInvalidates('adamwUpdate', s, () => [w], () => E.adamwUpdate(w, g, m1, v1, adamOpts));
  assertInvalidates('sgdUpdate', s, () => [w], () => E.sgdUpdate(w, g, buf, { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0, firstStep: true }));
  assertInvalidates('scaleInPlace', s, () => [w], () => E.scaleInPlace(w, 0.5));
  for (const t of [g, m1, v1, buf]) t.dispose();
  // A checkpoint of another model with the same shapes, loaded in place.
  const other = frozenTrunk(11);
  const bytes = serializeQuantizedCheckpoint(other.m);
  assertInvalidates('loadQuantizedCheckpoint', s, () => [w, s.m.embedding.parameters()[0]!], () => loadQuantizedCheckpoint(bytes, s.m));
  other.cache.dispose();
  other.m.dispose();
  s.cache.dispose();
  s.m.dispose();
});

test('forwards, backward and training the top stack leave the prefix version: the cache keeps hitting', () => {
  const s = frozenTrunk(12);
  const x = idsOf(2, 6, 4);
  const prefix = [s.m.embedding, s.m.rack.stacks.at(0)].flatMap((mod) => mod.parameters());
  const versions = () => prefix.map((t) => t.writeVersion);
  const v0 = versions(), p0 = s.fwd.prefixVersion();
  const opt = new AdamW(s.m.parameters().filter((t) => t.requiresGrad), { lr: 1e-2 });
  for (let step = 0; step < 3; step++) {
    E.tidy(() => {
      opt.zeroGrad();
      s.m.forward(x);
      const out = s.fwd.forward(x, [1, 2]);
      E.mean(out.logits).backward();
      opt.step();
    });
  }
  logitsOf(s.m, x);
  assert.deepEqual(versions(), v0, 'no prefix weight was written');
  assert.equal(s.fwd.prefixVersion(), p0);
  assert.equal(s.cache.stats.invalidations, 0);
  assert.equal(s.cache.stats.hits, 4, 'steps 2 and 3 were served from the cache');
  opt.zeroGrad();
  opt.dispose();
  x.dispose();
  s.cache.dispose();
  s.m.dispose();
});

test('checkContent: true also hashes contents, catching a write that bypasses the engine', () => {
  const m = tinyLlama(1, 13);
  new ProgressiveRackBuilder(m, { targetStacks: 2, freeze: 'frozen_trunk' }).grow();
  m.to('reference');
  const byVersion = new CachedPrefixForward(m, { cache: new ActivationCache({ memoryBudgetBytes: 1 << 20 }) });
  const byContent = new CachedPrefixForward(m, { cache: new ActivationCache({ memoryBudgetBytes: 1 << 20 }), checkContent: true });
  const before = [byVersion.prefixVersion(), byContent.prefixVersion()];
  // A write straight into backend memory (what only a kernel may do, declared in place).
  const d = data(trunkLinear(m).weight);
  d[0] = d[0]! + 1;
  assert.equal(byVersion.prefixVersion(), before[0], 'write versions only see writes through the engine');
  assert.notEqual(byContent.prefixVersion(), before[1], 'content hashing sees every change');
  byVersion.cache.dispose();
  byContent.cache.dispose();
  m.dispose();
});
