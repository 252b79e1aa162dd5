// The per-phase memory and compute report of a progressive run: one `resources` record per phase
// in the metrics JSONL, equal to the builder's report at that phase, and the table in report.html.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonl } from '../../src/io/index.js';
import { metricsToReportData, readRunReportData, writeRunReport } from '../../src/io/report/index.js';
import { ProgressivePlane, TrainingMachine, resourceLine, type ResourceRecord, type ResourceReport } from '../../src/training/index.js';
import { allElements, parseXml } from '../io/report/xml.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-resources-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Obj = Record<string, unknown>;

/** 1 stack, grown to 2 at t = 0.5 and to 3 at t = 0.75 (12 steps: phases start at steps 0, 6, 9). */
function config(progressive: Obj, runDir: string, optimizer: Obj = {}, phaseTwo: Obj = {}): Obj {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1, progressive },
    data: { corpus: { kind: 'synthetic', vocab_size: 48, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 4e-3, clip_norm: 1, weight_decay: 0.01, ...optimizer },
    training: { total_steps: 12, progress: 'off', seed: 3, tensorboard: false, run_dir: runDir },
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 0.75, overrides: { model: { n_stacks: 2 }, ...phaseTwo } },
      { name: 'three', start_t: 0.75, end_t: 1, overrides: { model: { n_stacks: 3 } } },
    ],
  };
}

interface Run {
  run: string;
  records: ResourceRecord[];
  /** builder.report at every phase start (seq_len 8, AdamW, the cache's prefix), taken by a callback. */
  reports: ResourceReport[];
  /** trainable_params of the first step of every phase. */
  trainableAtStart: Map<string, number>;
  plane: ProgressivePlane;
  /** Cache entries after the last step of the phase before (index = phase index). */
  cacheEntriesBeforePhase: number[];
}

function train(progressive: Obj, optimizer: Obj = {}, phaseTwo: Obj = {}): Run {
  const run = join(tempDir(), 'run');
  const m = new TrainingMachine(config(progressive, run, optimizer, phaseTwo));
  const plane = ProgressivePlane.attach(m);
  const reports: ResourceReport[] = [];
  const cacheEntriesBeforePhase: number[] = [];
  m.addCallback({ onPhaseStart: () => { reports.push(plane.builder.report({ seqLen: 8, optimizer: 'adamw', cachedPrefixStacks: plane.activationCache()?.prefixStacks ?? 0 })); } });
  m.addCallback({ onStep: (s) => { cacheEntriesBeforePhase[s.phase_index + 1] = plane.activationCache()?.entries ?? 0; } });
  m.train();
  const all = readJsonl(join(run, 'metrics.jsonl')) as Obj[];
  const records = all.filter((r) => r['kind'] === 'resources') as unknown as ResourceRecord[];
  const trainableAtStart = new Map<string, number>();
  for (const r of all) {
    if (r['type'] === 'step' && !trainableAtStart.has(String(r['phase']))) trainableAtStart.set(String(r['phase']), Number(r['trainable_params']));
  }
  m.dispose();
  return { run, records, reports, trainableAtStart, plane, cacheEntriesBeforePhase };
}

test('one resources record per phase, equal to the builder report at that phase and to the trainable count trained', () => {
  const r = train({ growth: 'copy_top', freeze: 'none' });
  assert.deepEqual(r.records.map((x) => [x.phase, x.step, x.t, x.n_stacks]), [['one', 0, 0, 1], ['two', 6, 0.5, 2], ['three', 9, 0.75, 3]]);
  assert.deepEqual(r.plane.resources, r.records, 'the plane keeps what it wrote');
  r.records.forEach((rec, i) => {
    const rep = r.reports[i]!;
    assert.equal(rec.seq_len, 8);
    assert.equal(rec.optimizer, 'adamw');
    assert.equal(rec.optimizer_state_slots, 2);
    assert.equal(rec.cached_prefix_stacks, 0);
    assert.deepEqual(rec.params, { total: rep.params.total, trainable: rep.params.trainable, frozen: rep.params.frozen, adapters: rep.params.adapters, adapters_trainable: rep.params.adaptersTrainable });
    assert.deepEqual(rec.bytes, {
      weights: rep.bytes.weights, grads: rep.bytes.grads, optimizer_state: rep.bytes.optimizerState,
      cached_activations_memory: 0, cached_activations_disk: 0, total: rep.bytes.total,
    });
    assert.deepEqual(rec.flops_per_token, {
      forward: rep.flopsPerToken.forward, backward: rep.flopsPerToken.backward, train: rep.flopsPerToken.train,
      forward_cached: rep.flopsPerToken.forwardCached, train_cached: rep.flopsPerToken.trainCached,
    });
    assert.equal(rec.per_stack.length, rep.perStack.length);
    assert.deepEqual(rec.per_stack.map((s) => [s.index, s.role, s.trainable, s.frozen]), rep.perStack.map((s) => [s.index, s.role, s.trainable, s.frozen]));
    assert.equal(rec.params.trainable, r.trainableAtStart.get(rec.phase), `phase ${rec.phase}: trainable params = the step metrics' trainable_params`);
    assert.equal(rec.bytes.grads, 4 * rec.params.trainable, 'fp32 gradients of the trainable parameters');
    assert.equal(rec.bytes.optimizer_state, 2 * rec.bytes.grads, 'AdamW: two moments');
  });
  // Growing adds parameters and compute.
  assert.ok(r.records[2]!.params.total > r.records[1]!.params.total && r.records[1]!.params.total > r.records[0]!.params.total);
  assert.ok(r.records[2]!.flops_per_token.train > r.records[0]!.flops_per_token.train);
  assert.match(resourceLine(r.records[1]!), /^phase 'two' resources: 2 stack\(s\); params .* trainable .* weights [\d.]+ MB, grads [\d.]+ MB, adamw state [\d.]+ MB; train [\d.]+K FLOP\/token$/);
});

test('a frozen trunk trains fewer parameters than freeze none, with less gradient and optimizer memory and backward compute', () => {
  const none = train({ growth: 'copy_top', freeze: 'none' }).records;
  const frozen = train({ growth: 'copy_top', freeze: 'frozen_trunk' });
  const f = frozen.records;
  assert.equal(f[0]!.params.trainable, none[0]!.params.trainable, 'one stack: nothing is trunk yet');
  for (const i of [1, 2]) {
    assert.equal(f[i]!.params.total, none[i]!.params.total);
    assert.ok(f[i]!.params.trainable < none[i]!.params.trainable, `phase ${f[i]!.phase}: ${f[i]!.params.trainable} < ${none[i]!.params.trainable}`);
    assert.equal(f[i]!.params.frozen, f[i]!.params.total - f[i]!.params.trainable);
    assert.ok(f[i]!.bytes.grads < none[i]!.bytes.grads && f[i]!.bytes.optimizer_state < none[i]!.bytes.optimizer_state);
    assert.ok(f[i]!.flops_per_token.backward < none[i]!.flops_per_token.backward);
    assert.equal(f[i]!.flops_per_token.forward, none[i]!.flops_per_token.forward);
    assert.equal(f[i]!.params.trainable, frozen.trainableAtStart.get(f[i]!.phase));
    assert.deepEqual(f[i]!.per_stack.filter((s) => s.frozen).map((s) => s.index), Array.from({ length: i }, (_, k) => k), 'the trunk stacks are frozen');
  }
});

test('the optimizer a phase trains with (hooks run before the machine applies it): SGD with momentum, then AdamW from an override', () => {
  const r = train({ growth: 'copy_top', freeze: 'none' }, { type: 'sgd', momentum: 0.9 }, { optimizer: { type: 'adamw' } });
  assert.deepEqual(r.records.map((x) => [x.optimizer, x.optimizer_state_slots]), [['sgd-momentum', 1], ['adamw', 2], ['sgd-momentum', 1]]);
  assert.equal(r.records[0]!.bytes.optimizer_state, r.records[0]!.bytes.grads);
  assert.equal(r.records[1]!.bytes.optimizer_state, 2 * r.records[1]!.bytes.grads);
  const plain = train({ growth: 'copy_top', freeze: 'none' }, { type: 'sgd' }).records[0]!;
  assert.deepEqual([plain.optimizer, plain.bytes.optimizer_state], ['sgd', 0]);
  assert.equal(plain.bytes.total, plain.bytes.weights + plain.bytes.grads);
});

test('with the activation cache, the frozen prefix is counted as cached (training FLOPs per token without the prefix forward)', () => {
  const r = train({ growth: 'copy_top', freeze: 'frozen_trunk', activation_cache: { memory_budget_mb: 4 } });
  assert.deepEqual(r.records.map((x) => x.cached_prefix_stacks), [0, 1, 2], 'the frozen trunk stacks');
  // Phase two filled the cache under a 1-stack prefix; phase three's prefix has 2 stacks, the first
  // of them unchanged, so those rows stay (each to be advanced through the second stack alone) and
  // are counted at its start.
  const cached = r.records.map((x) => x.bytes.cached_activations_memory + x.bytes.cached_activations_disk);
  assert.deepEqual(cached.slice(0, 2), [0, 0]);
  assert.ok(r.cacheEntriesBeforePhase[2]! > 0, 'phase two did cache rows');
  assert.ok(cached[2]! > 0, `phase three starts with phase two's rows: ${cached[2]} bytes`);
  assert.equal(r.records[0]!.flops_per_token.train_cached, r.records[0]!.flops_per_token.train);
  r.records.forEach((rec, i) => {
    const rep = r.reports[i]!;
    assert.ok(rep.perStack.slice(0, rec.cached_prefix_stacks).every((s) => s.frozen), 'only frozen stacks are cached');
    assert.deepEqual([rec.flops_per_token.forward_cached, rec.flops_per_token.train_cached], [rep.flopsPerToken.forwardCached, rep.flopsPerToken.trainCached]);
    if (i > 0) assert.ok(rec.flops_per_token.train_cached < rec.flops_per_token.train);
    assert.equal(rec.bytes.total, rec.bytes.weights + rec.bytes.grads + rec.bytes.optimizer_state + rec.bytes.cached_activations_memory);
  });
  assert.match(resourceLine(r.records[1]!), /cached activations [\d.]+ MB \(\+[\d.]+ MB disk\); train [\d.]+K FLOP\/token \([\d.]+K with the cached prefix of 1 stack\(s\)\)$/);
  assert.equal(r.records[1]!.flops_per_token.forward - r.records[1]!.flops_per_token.forward_cached, r.records[1]!.flops_per_token.train - r.records[1]!.flops_per_token.train_cached);
});

test('the run report reads the resources records and draws the per-phase table', () => {
  const r = train({ growth: 'copy_top', freeze: 'frozen_trunk' });
  const data = readRunReportData(r.run);
  assert.deepEqual(data.resources?.map((x) => [x.phase, x.t, x.stacks, x.trainable_params, x.train_flops_per_token]),
    r.records.map((x) => [x.phase, x.t, x.n_stacks, x.params.trainable, x.flops_per_token.train]));
  // The resources records are understood (other kinds, e.g. checkpoint, may be ignored).
  const all = readJsonl(join(r.run, 'metrics.jsonl'));
  const ignored = (d: { notes?: string[] }) => (d.notes ?? []).join(' ').match(/(\d+) record\(s\) of unknown kind/)?.[1] ?? '0';
  assert.equal(ignored(data), ignored(metricsToReportData(all.filter((x) => x['kind'] !== 'resources'))));
  const files = writeRunReport(r.run, data);
  const html = readFileSync(files.html, 'utf8');
  const els = allElements(parseXml(html));
  const section = els.find((e) => e.name === 'section' && e.attrs.id === 'resources');
  assert.ok(section, 'a resources section');
  const rows = allElements(section).filter((e) => e.name === 'tr');
  // One column per phase (a header row naming the 3 phases), one row per quantity.
  assert.equal(allElements(rows[0]!).filter((e) => e.name === 'th').length, 1 + 3, 'the phase column and one column per phase');
  assert.equal(rows.length, 1 + 12, 'a header and one row per quantity');
  assert.match(html, /trainable params/);
  assert.match(html, /optimizer state MB/);
  assert.match(html, /train FLOPs \/ token, cached prefix/);
});
