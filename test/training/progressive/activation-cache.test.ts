import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { AdamW } from '../../../src/optim/index.js';
import { quantizeTrunk } from '../../../src/nn/index.js';
import { ActivationCache, CachedPrefixForward, moduleFingerprint, ProgressiveRackBuilder } from '../../../src/training/progressive/index.js';
import { MaskedDiffusionObjective, preparedLoss, type ObjectiveBatch } from '../../../src/training/objectives/index.js';
import { rngFor } from '../../../src/data/rng.js';
import { idsOf, logitsOf, maxAbsDiff, throwsWith, tinyLlama, V } from './helpers.js';

test('ActivationCache: memory budget, spill to disk, disk budget, versions, dispose', () => {
  const parent = mkdtempSync(join(tmpdir(), 'sw-cache-test-'));
  try {
    const c = new ActivationCache({ memoryBudgetBytes: 3 * 40, diskBudgetBytes: 4 * 40, spillDir: parent });
    c.setVersion('v1');
    const row = (i: number) => Float32Array.from({ length: 10 }, (_, j) => i * 100 + j);
    for (let i = 0; i < 8; i++) c.set(`k${i}`, row(i));
    let s = c.stats;
    assert.equal(s.memoryEntries, 3);
    assert.equal(s.memoryBytes, 120);
    assert.ok(s.diskBytes <= 160 && s.diskEntries === 4, JSON.stringify(s));
    assert.equal(s.evictions, 1, 'the oldest spilled entry is dropped past the disk budget');
    assert.equal(c.get('k0'), undefined);
    assert.deepEqual(c.get('k1'), row(1), 'spilled entries come back from disk intact');
    assert.deepEqual(c.get('k7'), row(7));
    assert.equal(readdirSync(c.spillFolder!).length, 4);
    const f64 = Float64Array.from([1.5, -2.25]);
    c.set('d', f64);
    for (let i = 10; i < 14; i++) c.set(`k${i}`, row(i));
    assert.ok(c.get('d') instanceof Float64Array || c.get('d') === undefined);
    s = c.stats;
    assert.ok(s.hits >= 3 && s.misses >= 1);
    assert.equal(c.setVersion('v1'), false);
    assert.equal(c.setVersion('v2'), true, 'a new version empties the cache');
    assert.equal(c.stats.entries, 0);
    assert.equal(c.stats.invalidations, 1);
    assert.equal(readdirSync(c.spillFolder!).length, 0);
    const folder = c.spillFolder!;
    c.dispose();
    assert.ok(!existsSync(folder), 'dispose removes the spill folder');
    throwsWith(() => c.get('k1'), /used after dispose/);
    throwsWith(() => new ActivationCache({ memoryBudgetBytes: -1 }), /memoryBudgetBytes must be a non-negative number/);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

function batches(n: number, B: number, S: number): ObjectiveBatch[] {
  return Array.from({ length: n }, (_, k) => {
    const rng = rngFor(77, k);
    const ids = new Int32Array(B * S);
    for (let i = 0; i < ids.length; i++) ids[i] = 1 + rng.nextInt(V - 1);
    return { ids, batch: B, seqLen: S, sampleIds: Array.from({ length: B }, (_, b) => k * B + b) };
  });
}

/** Trains the top stack of a 3-stack rack (frozen trunk) for `steps` steps; returns the losses. */
function trainTop(cache: ActivationCache | null, steps: number): { losses: number[]; reused: number } {
  const m = tinyLlama(1, 21);
  const b = new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk', seed: 4 });
  b.grow(); // two growth steps: stacks 0 and 1 are the frozen trunk (growTo(3) would add both as new stacks)
  b.grow();
  const opt = new AdamW(b.parameterGroups(), { lr: 1e-2 });
  const obj = new MaskedDiffusionObjective({ noise: 0.5, maskTokenId: 0 });
  const data = batches(3, 4, 12);
  const fwd = cache ? new CachedPrefixForward(m, { cache }) : null;
  const losses: number[] = [];
  let reused = 0;
  for (let step = 0; step < steps; step++) {
    const batch = data[step % data.length]!;
    const p = obj.prepare(batch, { t: step / steps, step, seed: 5, vocabSize: V });
    losses.push(E.tidy(() => {
      opt.zeroGrad();
      const ids = E.tensor(p.inputIds, [batch.batch, batch.seqLen], { dtype: 'int32' });
      let logits;
      if (fwd) {
        const out = fwd.forward(ids, batch.sampleIds);
        assert.equal(out.prefixStacks, 2);
        reused += out.reusedRows;
        logits = out.logits;
      } else logits = m.forward(ids).logits;
      const l = preparedLoss(logits, p);
      l.backward();
      opt.step();
      return l.item();
    }));
  }
  opt.zeroGrad();
  opt.dispose();
  m.dispose();
  return { losses, reused };
}

test('training the top stack with the activation cache gives the same losses as without', () => {
  const plain = trainTop(null, 9);
  const cache = new ActivationCache({ memoryBudgetBytes: 6 * 12 * 16 * 4 });
  const cached = trainTop(cache, 9);
  assert.ok(cached.reused >= 24, `rows served from the cache: ${cached.reused}`);
  assert.ok(cache.stats.spills > 0, 'the small memory budget made the cache spill to disk');
  for (let i = 0; i < plain.losses.length; i++) {
    const d = Math.abs(plain.losses[i]! - cached.losses[i]!);
    assert.ok(d <= 1e-6 * Math.max(1, Math.abs(plain.losses[i]!)), `step ${i}: ${plain.losses[i]} vs ${cached.losses[i]}`);
  }
  assert.ok(plain.losses[8]! < plain.losses[0]!, 'the top stack learns');
  cache.dispose();
});

test('a changed trunk never serves stale activations; a trainable prefix is not cached', () => {
  const m = tinyLlama(1, 8);
  const b = new ProgressiveRackBuilder(m, { targetStacks: 2, freeze: 'frozen_trunk' });
  b.grow();
  const cache = new ActivationCache({ memoryBudgetBytes: 1 << 20 });
  const fwd = new CachedPrefixForward(m, { cache });
  const x = idsOf(2, 6, 1);
  const run = () => E.tidy(() => E.noGrad(() => fwd.forward(x, [1, 2]).logits.toArray()));
  const first = run();
  assert.ok(maxAbsDiff(first, logitsOf(m, x)) < 1e-5);
  assert.equal(maxAbsDiff(run(), first), 0);
  assert.equal(cache.stats.hits, 2);
  const v0 = fwd.prefixVersion();
  // Change a frozen trunk weight behind the cache's back (e.g. a checkpoint load).
  const w = m.rack.stacks.at(0).blocks.at(0).ffn.down.weight;
  const bumped = E.mulScalar(w, 1.5);
  m.rack.stacks.at(0).blocks.at(0).ffn.down.loadStateDict(new Map([['weight', bumped]]), { strict: false });
  assert.notEqual(fwd.prefixVersion(), v0);
  const after = run();
  assert.ok(maxAbsDiff(after, first) > 1e-4, 'the trunk change shows');
  assert.ok(maxAbsDiff(after, logitsOf(m, x)) < 1e-5, 'and matches an uncached forward');
  assert.equal(cache.stats.invalidations, 1);
  // A structural change (unfreezing) also changes the fingerprint; a trainable prefix is not cached.
  const fp = moduleFingerprint([m.embedding]);
  b.setFreezePolicy('none');
  assert.notEqual(moduleFingerprint([m.embedding]), fp);
  assert.equal(fwd.prefixStacks(), 0);
  assert.ok(maxAbsDiff(run(), logitsOf(m, x)) < 1e-6);
  throwsWith(() => new CachedPrefixForward(m, { cache, prefixStacks: 1 }).forward(x, [1, 2]), /cached prefix \(embedding \+ 1 stacks\) has trainable parameters/);
  throwsWith(() => fwd.forward(x, [1]), /1 sample ids for 2 rows/);
  cache.dispose();
  m.dispose();
});

test('ActivationCache lineage: a grown prefix keeps entries at their depth, a changed one drops them', () => {
  const c = new ActivationCache({ memoryBudgetBytes: 1 << 20 });
  const row = (i: number) => Float32Array.from({ length: 4 }, (_, j) => i + j);
  c.setLineage(['e', 'a']);
  c.set('r1', row(1));
  c.set('r0', row(0), 0);
  assert.equal(c.lookup('r1')!.depth, 1);
  assert.equal(c.stats.hits, 1);
  assert.equal(c.setLineage(['e', 'a', 'b']), true, 'the prefix grew');
  assert.equal(c.stats.entries, 2, 'entries of the shorter prefix stay');
  assert.equal(c.stats.invalidations, 0);
  assert.deepEqual(c.lookup('r1'), { data: row(1), depth: 1 });
  assert.equal(c.stats.advances, 1, 'a shallower entry is an advance, not a hit');
  c.set('r1', row(2));
  assert.equal(c.lookup('r1')!.depth, 2);
  assert.equal(c.setLineage(['e', 'x', 'b']), true, 'stack 0 changed');
  assert.equal(c.stats.entries, 1, 'only the depth-0 entry survives');
  assert.equal(c.stats.invalidations, 1);
  assert.equal(c.lookup('r0')!.depth, 0);
  c.setLineage(['f']);
  assert.equal(c.stats.entries, 0);
  c.dispose();
});

test('a trunk that grows by a frozen stack advances cached rows through that stack only, exactly', () => {
  for (const trunkWeightFormat of ['fp32', 'nf4'] as const) {
    const m = tinyLlama(1, 31);
    const b = new ProgressiveRackBuilder(m, { targetStacks: 3, freeze: 'frozen_trunk', seed: 6, trunkWeightFormat, quantizeTrunk: (s, f) => { quantizeTrunk(s, f); } });
    b.grow();
    const cache = new ActivationCache({ memoryBudgetBytes: 2 * 6 * 16 * 4 });
    const fwd = new CachedPrefixForward(m, { cache });
    const x = idsOf(3, 6, 5);
    const run = (ids = [1, 2, 3]) => E.tidy(() => E.noGrad(() => {
      const r = fwd.forward(x, ids);
      return { logits: r.logits.toArray(), counts: [r.prefixStacks, r.computedRows, r.advancedRows, r.reusedRows] };
    }));
    assert.deepEqual(run().counts, [1, 3, 0, 0]);
    assert.ok(cache.stats.spills > 0, 'one row went to disk');
    b.grow(); // stack 1 freezes (and is quantized with nf4): the prefix grows to 2 stacks
    const grown = run();
    assert.deepEqual(grown.counts, [2, 0, 3, 0], `${trunkWeightFormat}: every row advanced through stack 1 alone`);
    assert.equal(cache.stats.invalidations, 0);
    assert.equal(maxAbsDiff(grown.logits, logitsOf(m, x)), 0, `${trunkWeightFormat}: advanced rows equal an uncached forward`);
    assert.deepEqual(run().counts, [2, 0, 0, 3], 'then they are hits');
    // A changed stack 1 drops the depth-2 entries; the rows are computed afresh.
    const w = m.rack.stacks.at(1).blocks.at(0).attnNorm.parameters()[0]!;
    w.write(w.toArray().map((v) => v));
    const changed = run();
    assert.deepEqual(changed.counts, [2, 3, 0, 0], 'a write to stack 1 (even of the same values) recomputes every row');
    assert.equal(maxAbsDiff(changed.logits, grown.logits), 0);
    cache.dispose();
    x.dispose();
    m.dispose();
  }
});
