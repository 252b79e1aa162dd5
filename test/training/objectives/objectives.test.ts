import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import {
  CausalLMObjective, DEFAULT_DEPTH_NOISE, drawRatios, IGNORE_INDEX, makeObjective, MaskedDiffusionObjective, MaskedLMObjective,
  NoiseSchedule, preparedLoss, ObjectiveError, type ObjectiveBatch, type ObjectiveContext,
} from '../../../src/training/objectives/index.js';
import { rngFor } from '../../../src/data/rng.js';
import { DataAdapter, syntheticTokenData as syntheticData } from '../../../src/framework/index.js';
import '../../../src/training/objective-registry.js';

function randomBatch(B: number, S: number, V: number, seed: number, lo = 0): ObjectiveBatch {
  const rng = rngFor(seed);
  const ids = new Int32Array(B * S);
  for (let i = 0; i < ids.length; i++) ids[i] = lo + rng.nextInt(V - lo);
  return { ids, batch: B, seqLen: S, sampleIds: Array.from({ length: B }, (_, b) => 1000 + b * 7) };
}

const ctx = (over: Partial<ObjectiveContext> = {}): ObjectiveContext => ({ t: 0.5, step: 3, seed: 11, maskTokenId: 3, vocabSize: 500, ...over });

function throwsWith(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof Error && re.test(e.message));
}

test('clm: targets are the next token, the last position and ignored ids are not scored', () => {
  const batch: ObjectiveBatch = { ids: Int32Array.from([5, 6, 7, 0, 9, 8, 7, 6]), batch: 2, seqLen: 4, sampleIds: [0, 1] };
  const p = new CausalLMObjective({ ignoreIds: [0] }).prepare(batch, ctx({ vocabSize: 10 }));
  assert.deepEqual([...p.inputIds], [5, 6, 7, 0, 9, 8, 7, 6]);
  assert.deepEqual([...p.targets], [6, 7, IGNORE_INDEX, IGNORE_INDEX, 8, 7, 6, IGNORE_INDEX]);
  assert.equal(p.weights, undefined);
  assert.equal(makeObjective({ name: 'clm' }).name, 'clm');
});

test('mlm: 15 % selected, 80/10/10 split, only selected scored, specials untouched', () => {
  const B = 64, S = 256, V = 500;
  const batch = randomBatch(B, S, V, 1);
  // Sprinkle special tokens (PAD = 0, CLS = 1) that must never be selected.
  for (let b = 0; b < B; b++) { batch.ids[b * S] = 1; batch.ids[b * S + S - 1] = 0; batch.ids[b * S + 17] = 0; }
  const obj = new MaskedLMObjective({ specialIds: [0, 1, 2] });
  const p = obj.prepare(batch, ctx());
  let selected = 0, masked = 0, random = 0, kept = 0, eligible = 0;
  for (let i = 0; i < B * S; i++) {
    const orig = batch.ids[i]!;
    if (orig > 3) eligible++;
    if (p.targets[i] === IGNORE_INDEX) {
      assert.equal(p.inputIds[i], orig, 'unselected positions keep their token');
      continue;
    }
    assert.ok(orig > 2, 'special tokens are never selected');
    assert.equal(p.targets[i], orig, 'target = original token');
    selected++;
    const inp = p.inputIds[i]!;
    if (inp === 3) masked++;
    else if (inp === orig) kept++;
    else { random++; assert.ok(inp > 3 && inp < V, `random replacement ${inp} is an ordinary token`); }
  }
  // Random replacements may coincide with the original token (counted as kept here) only if
  // drawn equal; the objective's own counts are exact.
  const c = p.counts.reduce((a, x) => ({ s: a.s + x.selected, m: a.m + x.masked, r: a.r + x.random, k: a.k + x.kept }), { s: 0, m: 0, r: 0, k: 0 });
  assert.equal(c.s, selected);
  assert.equal(c.m, masked);
  assert.equal(c.r + c.k, random + kept);
  const within = (x: number, n: number, p0: number, what: string) => {
    const sd = Math.sqrt(n * p0 * (1 - p0));
    assert.ok(Math.abs(x - n * p0) < 4.5 * sd, `${what}: ${x} of ${n}, expected ${(n * p0).toFixed(1)} ± ${(4.5 * sd).toFixed(1)}`);
  };
  within(selected, eligible, 0.15, 'selected');
  within(c.m, selected, 0.8, '[MASK]');
  within(c.r, selected, 0.1, 'random');
  within(c.k, selected, 0.1, 'kept');
});

test('mlm: every sequence gets at least one selected position, also short ones', () => {
  const batch = randomBatch(400, 3, 50, 2, 4);
  const p = new MaskedLMObjective({ maskTokenId: 3 }).prepare(batch, ctx({ vocabSize: 50 }));
  for (let b = 0; b < 400; b++) assert.ok(p.counts[b]!.selected >= 1, `row ${b} has no selected position`);
  // A row made only of special tokens selects nothing (and does not loop).
  const allPad: ObjectiveBatch = { ids: new Int32Array(4), batch: 1, seqLen: 4, sampleIds: [0] };
  const q = new MaskedLMObjective({ specialIds: [0] }).prepare(allPad, ctx({ vocabSize: 50 }));
  assert.ok(q.targets.every((x) => x === IGNORE_INDEX));
});

test('masks are deterministic from (sample id, r, seed), independent of the row position', () => {
  const batch = randomBatch(6, 40, 300, 3, 4);
  for (const obj of [new MaskedLMObjective(), new MaskedDiffusionObjective({ noise: 0.4 })]) {
    const a = obj.prepare(batch, ctx({ vocabSize: 300 }));
    const b = obj.prepare(batch, ctx({ vocabSize: 300, step: 99, t: 0.9 }));
    assert.deepEqual(a.inputIds, b.inputIds, `${obj.name}: the step does not change a static mask`);
    assert.deepEqual(a.targets, b.targets);
    // Reverse the rows (with their sample ids): each row's corruption follows it.
    const rev: ObjectiveBatch = { ids: new Int32Array(6 * 40), batch: 6, seqLen: 40, sampleIds: [...batch.sampleIds].reverse() };
    for (let r = 0; r < 6; r++) rev.ids.set(batch.ids.subarray((5 - r) * 40, (6 - r) * 40), r * 40);
    const c = obj.prepare(rev, ctx({ vocabSize: 300 }));
    for (let r = 0; r < 6; r++) assert.deepEqual(c.inputIds.subarray(r * 40, r * 40 + 40), a.inputIds.subarray((5 - r) * 40, (6 - r) * 40));
    const d = obj.prepare(batch, ctx({ vocabSize: 300, seed: 12 }));
    assert.notDeepEqual(d.targets, a.targets, `${obj.name}: another seed gives another mask`);
  }
  // Another ratio → another mask; dynamic MLM keys by the step too.
  const d1 = new MaskedDiffusionObjective({ noise: 0.4, selection: 'exact' }).prepare(batch, ctx({ vocabSize: 300 }));
  const d2 = new MaskedDiffusionObjective({ noise: 0.41, selection: 'exact' }).prepare(batch, ctx({ vocabSize: 300 }));
  assert.notDeepEqual(d1.targets, d2.targets);
  const dyn = new MaskedLMObjective({ dynamic: true });
  assert.notDeepEqual(dyn.prepare(batch, ctx({ vocabSize: 300 })).targets, dyn.prepare(batch, ctx({ vocabSize: 300, step: 4 })).targets);
});

test('diffusion: ⌈r·L⌉ or Bernoulli(r) [MASK]s, only masked scored, MDLM 1/r weights', () => {
  const B = 8, S = 50;
  const batch = randomBatch(B, S, 200, 4, 4);
  batch.ids[5] = 0; // one PAD in row 0: never masked, and not counted in L
  const exact = new MaskedDiffusionObjective({ noise: 0.3, selection: 'exact', specialIds: [0] }).prepare(batch, ctx({ vocabSize: 200 }));
  for (let b = 0; b < B; b++) {
    const L = b === 0 ? S - 1 : S;
    let n = 0;
    for (let i = b * S; i < (b + 1) * S; i++) {
      if (exact.targets[i] === IGNORE_INDEX) {
        assert.equal(exact.inputIds[i], batch.ids[i]);
        assert.equal(exact.weights![i], 0);
      } else {
        n++;
        assert.equal(exact.inputIds[i], 3);
        assert.equal(exact.targets[i], batch.ids[i]);
        // 'exact': the realised ratio n/L in place of r, so the row's weights sum to 1/B.
        assert.ok(Math.abs(exact.weights![i]! - 1 / (Math.ceil(0.3 * L - 1e-9) * B)) < 1e-9);
      }
    }
    assert.equal(n, Math.ceil(0.3 * L - 1e-9));
    assert.equal(exact.maskedCounts[b], n);
  }
  assert.equal(exact.inputIds[5], 0);
  // Bernoulli: the masked share is r on average, never zero per row.
  const big = randomBatch(64, 128, 200, 5, 4);
  const bern = new MaskedDiffusionObjective({ noise: 0.25 }).prepare(big, ctx({ vocabSize: 200 }));
  const total = bern.maskedCounts.reduce((a, x) => a + x, 0);
  const n = 64 * 128, sd = Math.sqrt(n * 0.25 * 0.75);
  assert.ok(Math.abs(total - n * 0.25) < 4.5 * sd, `${total} masked of ${n}`);
  const tiny = new MaskedDiffusionObjective({ noise: 0.001 }).prepare(randomBatch(50, 8, 200, 6, 4), ctx({ vocabSize: 200 }));
  assert.ok(tiny.maskedCounts.every((c) => c >= 1), 'never an uncorrupted sequence');
  // weighting 'none' → no weights.
  assert.equal(new MaskedDiffusionObjective({ noise: 0.5, weighting: 'none' }).prepare(batch, ctx({ vocabSize: 200 })).weights, undefined);
});

test('diffusion: the MDLM weights are unbiased (E[Σ w] = 1 per row) at every ratio, a forced mask weighs 0', () => {
  // Σ_i w_i·CE_i with CE ≡ 1 is Σ w: the loss of a perfectly uninformative model must not depend
  // on how r is sampled. Bernoulli at small r often masks nothing; the position masked anyway
  // (so that every row is corrupted) must not be counted at 1/(r·L).
  const B = 1, S = 32;
  const rowSum = (w: Float32Array) => w.reduce((a, x) => a + x, 0);
  for (const r of [0.002, 0.01, 0.05, 0.3]) {
    const obj = new MaskedDiffusionObjective({ noise: r });
    let sum = 0, forced = 0;
    const N = 4000;
    for (let k = 0; k < N; k++) {
      const batch = randomBatch(B, S, 60, 1, 4);
      batch.sampleIds[0] = k;
      const p = obj.prepare(batch, ctx({ vocabSize: 60 }));
      sum += rowSum(p.weights!);
      let natural = 0;
      for (let i = 0; i < S; i++) if (p.targets[i] !== IGNORE_INDEX && p.weights![i]! > 0) natural++;
      assert.ok(p.maskedCounts[0]! >= 1, 'every row is corrupted');
      if (natural === 0) {
        forced++;
        assert.equal(p.maskedCounts[0], 1);
        assert.equal(rowSum(p.weights!), 0, 'the forced position weighs 0');
      }
    }
    // Var(Σ w) = (1 - r)/(r·L): the mean is within 4.5 standard errors of 1.
    const se = Math.sqrt((1 - r) / (r * S) / N);
    assert.ok(Math.abs(sum / N - 1) < 4.5 * se, `r = ${r}: mean Σw = ${sum / N} (se ${se})`);
    if (r === 0.002) assert.ok(forced > N * 0.8, `most rows at r = 0.002 mask nothing by chance: ${forced}`);
  }
  // Time-as-input over (0.001, 1]: the per-batch mean of Σ w is 1 (it was ≈ 1.11 at L = 32 when
  // the forced position counted at 1/(r·L)).
  const uni = new MaskedDiffusionObjective({ noise: { kind: 'uniform', min: 0.001, max: 1 } });
  let total = 0;
  const steps = 3000;
  for (let step = 0; step < steps; step++) total += rowSum(uni.prepare(randomBatch(4, S, 60, 2, 4), ctx({ vocabSize: 60, step })).weights!);
  assert.ok(Math.abs(total / steps - 1) < 0.04, `uniform r: mean Σw = ${total / steps}`);
  // 'exact': every row's weights sum to exactly 1/B, at any ratio.
  for (const r of [0.001, 0.1, 0.33, 1]) {
    const p = new MaskedDiffusionObjective({ noise: r, selection: 'exact' }).prepare(randomBatch(3, 30, 60, 3, 4), ctx({ vocabSize: 60 }));
    for (let b = 0; b < 3; b++) assert.ok(Math.abs(rowSum(p.weights!.subarray(b * 30, (b + 1) * 30)) - 1 / 3) < 1e-6, `r = ${r}, row ${b}`);
  }
});

test('diffusion loss: uniform predictions give ln V per token under the MDLM weighting', () => {
  const B = 4, S = 40, V = 64;
  const batch = randomBatch(B, S, V, 7, 4);
  const obj = new MaskedDiffusionObjective({ noise: 0.5, selection: 'exact' });
  const p = obj.prepare(batch, ctx({ vocabSize: V }));
  const loss = preparedLoss(E.zeros([B, S, V]), p).toArray()[0]!;
  // Σ_b n_b·lnV / (r·L·B) with n_b = ⌈rL⌉ = rL exactly here.
  assert.ok(Math.abs(loss - Math.log(V)) < 1e-5, `loss ${loss} vs ln V ${Math.log(V)}`);
  // Random logits: equals Σ w·CE computed by hand.
  const logits = E.randn([B, S, V], { seed: 3 });
  const l = logits.toArray();
  let want = 0;
  for (let i = 0; i < B * S; i++) {
    if (p.targets[i] === IGNORE_INDEX) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, l[i * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(l[i * V + v]! - m);
    want += p.weights![i]! * (m + Math.log(s) - l[i * V + p.targets[i]!]!);
  }
  assert.ok(Math.abs(preparedLoss(logits, p).toArray()[0]! - want) < 1e-4);
  // Without weights: the mean over scored positions.
  const q = new MaskedLMObjective().prepare(batch, ctx({ vocabSize: V }));
  assert.ok(Math.abs(preparedLoss(E.zeros([B, S, V]), q).toArray()[0]! - Math.log(V)) < 1e-5);
});

test('time-as-input: r drawn from (seed, step), per batch or stratified per sequence', () => {
  const spec = { kind: 'uniform' as const, min: 0.1, max: 0.9 };
  const ids = [1, 2, 3, 4];
  const a = drawRatios(spec, ctx({ step: 5 }), ids);
  assert.ok(a.every((r) => r === a[0] && r > 0.1 && r <= 0.9));
  assert.deepEqual(drawRatios(spec, ctx({ step: 5 }), ids), a, 'deterministic');
  assert.notDeepEqual(drawRatios(spec, ctx({ step: 6 }), ids), a, 'another step, another r');
  const s = drawRatios(spec, ctx({ step: 5 }), ids, { per: 'sequence' });
  const sorted = [...s].sort();
  for (let i = 1; i < 4; i++) assert.ok(Math.abs(sorted[i]! - sorted[i - 1]! - 0.2) < 1e-9, 'stratified: one ratio per quarter of the range');
  const p = new MaskedDiffusionObjective({ noise: spec, per: 'sequence', selection: 'exact' }).prepare(randomBatch(4, 100, 50, 8, 4), ctx({ vocabSize: 50 }));
  p.ratios.forEach((r, b) => assert.equal(p.maskedCounts[b], Math.ceil(r * 100 - 1e-9)));
  // A schedule in t (rising noise).
  const sched = { kind: 'schedule' as const, shape: 'linear' as const, start: 0.2, end: 0.8 };
  assert.ok(Math.abs(drawRatios(sched, ctx({ t: 0.5 }), ids)[0]! - 0.5) < 1e-12);
  throwsWith(() => drawRatios(() => 0, ctx(), ids), /row 0: a mask ratio must be in \(0, 1\], found 0/);
});

test('time-as-depth: NoiseSchedule maps (stack, t) → r, leftmost = noisiest', () => {
  const s = NoiseSchedule.ladder(6);
  assert.deepEqual(s.levels, DEFAULT_DEPTH_NOISE);
  assert.equal(s.ratio(0), 1);
  assert.equal(s.ratio(5, 0.3), 0.15);
  // Right→left growth: a 2-stack rack of a 6-level schedule holds final stacks 4 and 5.
  assert.equal(s.finalIndex(0, 2, 'prepend'), 4);
  assert.equal(s.finalIndex(1, 2, 'append'), 1);
  const lin = NoiseSchedule.ladder(3, { shape: 'linear', max: 0.9, min: 0.1 });
  assert.deepEqual(lin.levels.map((x) => Number((x as number).toFixed(6))), [0.9, 0.5, 0.1]);
  const bands = new NoiseSchedule([1, 0.5, 0.2], { mode: 'bands' });
  assert.deepEqual(bands.range(1), { min: 0.2, max: 0.5 });
  assert.deepEqual(bands.range(2), { min: 0.001, max: 0.2 });
  const perStackSchedule = new NoiseSchedule([{ kind: 'schedule', shape: 'linear', start: 0.9, end: 0.5 }, 0.3]);
  assert.ok(Math.abs(perStackSchedule.ratio(0, 0.5) - 0.7) < 1e-12);
  let stack = 4;
  const obj = new MaskedDiffusionObjective({ noise: { kind: 'depth', schedule: s, stack: () => stack }, selection: 'exact' });
  const batch = randomBatch(2, 20, 50, 9, 4);
  assert.equal(obj.prepare(batch, ctx({ vocabSize: 50 })).maskedCounts[0], 5);
  stack = 0;
  assert.equal(obj.prepare(batch, ctx({ vocabSize: 50 })).maskedCounts[0], 20);
  throwsWith(() => new NoiseSchedule([0.5, 0.7]), /must not increase left→right .*levels\[1\] = 0\.7 > levels\[0\] = 0\.5/);
  throwsWith(() => s.ratio(6), /stack index 6 is outside \[0, 6\)/);
  throwsWith(() => new NoiseSchedule([1.5]), /levels\[0\]: a mask ratio must be in \(0, 1\], found 1\.5/);
  throwsWith(() => s.finalIndex(0, 7, 'append'), /a rack of 7 stacks does not fit a 6-level schedule/);
});

test('objectives reject bad batches with clear messages', () => {
  const b = randomBatch(2, 4, 10, 1);
  throwsWith(() => new MaskedLMObjective().prepare(b, { t: 0, step: 0, seed: 1, vocabSize: 10 }), /mlm: no \[MASK\] token id/);
  throwsWith(() => new MaskedDiffusionObjective().prepare(b, ctx({ vocabSize: 10, maskTokenId: 10 })), /mask token id 10 is outside the vocabulary \[0, 10\)/);
  throwsWith(() => new CausalLMObjective().prepare({ ...b, sampleIds: [1] }, ctx({ vocabSize: 10 })), /sampleIds must list one id per row \(2\), found 1/);
  throwsWith(() => new CausalLMObjective().prepare({ ...b, seqLen: 5 }, ctx({ vocabSize: 10 })), /ids has 8 entries, expected batch × seqLen = 2 × 5 = 10/);
  throwsWith(() => new CausalLMObjective().prepare(b, ctx({ vocabSize: 5 })), /token id \d+ at row \d+, position \d+ is outside the vocabulary \[0, 5\)/);
  throwsWith(() => new MaskedLMObjective({ maskProb: 0.9, randomProb: 0.2 }), /maskProb \+ randomProb = 1\.1 exceeds 1/);
  throwsWith(() => new MaskedDiffusionObjective({ noise: 0 }), /mask ratio must be in \(0, 1\], found 0/);
  throwsWith(() => makeObjective({ name: 'nope' } as never), /unknown objective 'nope'/);
  assert.ok(new ObjectiveError('x') instanceof Error);
});

test('diffusion evaluation batches are corrupted the same way at every step (ratios vary across batches)', () => {
  const data = syntheticData({ vocab_size: 40, tokens: 4000 });
  const d = new DataAdapter(data, { seq_len: 8, batch_size: 4, objective: 'diffusion', eval_batches: 4 }, { seed: 3 });
  const at100 = d.evalBatches(100, 0.5), at900 = d.evalBatches(900, 0.5);
  assert.equal(at100.length, 4);
  assert.deepEqual(at900.map((b) => [...b.inputIds]), at100.map((b) => [...b.inputIds]), 'same masks at every evaluation');
  assert.deepEqual(at900.map((b) => b.ratios), at100.map((b) => b.ratios));
  assert.ok(new Set(at100.map((b) => b.ratios![0])).size > 1, 'a different ratio per batch');
});
