import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ConfigError,
  applySetOverrides,
  configHash,
  defineConfig,
  diffConfigs,
  loadConfig,
  parseConfig,
  parseSetOverride,
  registerConfigExtension,
  writeResolvedConfigs,
} from '../../src/training/index.js';

const BASE = {
  model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 },
  data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 2000 }, seq_len: 8, batch_size: 4 },
  optimizer: { lr: 1e-3 },
  training: { total_steps: 10 },
};

function clone<T>(v: T): T {
  return structuredClone(v);
}

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e.issues.map((i) => (i.message !== undefined ? `${i.path}: ${i.message}` : `${i.path}: expected ${i.expected}, found ${i.found}${i.hint ? ` (${i.hint})` : ''}`));
  }
  assert.fail('expected the config to be rejected');
}

test('a minimal config validates, defaults filled in, one phase', () => {
  const p = parseConfig(clone(BASE));
  assert.equal(p.phases.length, 1);
  assert.equal(p.phases[0]!.name, 'single_phase');
  assert.deepEqual(p.config.optimizer.lr_schedule, { kind: 'constant', lr: 1e-3 });
  assert.equal(p.config.optimizer.type, 'adamw');
  assert.deepEqual(p.config.optimizer.param_groups, [{ name: 'no_decay', lr_scale: 1 }]);
  assert.equal(p.config.data!.objective, 'clm');
  assert.deepEqual(p.config.data!.split, { val: 0.05, test: 0.05, seed: 0 });
  assert.equal(p.config.model!.attention, 'auto');
  assert.equal(p.config.training.keep_last, 3);
  assert.equal(p.controller.totalSteps, 10);
  assert.match(p.hash, /^[0-9a-f]{64}$/);
});

test('errors give path, expected and found, all at once; unknown keys get the nearest name', () => {
  const raw = clone(BASE) as Record<string, any>;
  raw.model.d_modle = 16;
  raw.model.preset = 'lama';
  raw.model.n_heads = -2;
  raw.data.batch_size = 2.5;
  raw.trainig = {};
  const issues = issuesOf(() => parseConfig(raw));
  assert.ok(issues.includes("model.preset: expected one of 'llama', 'gpt2', 'bert', found \"lama\" (did you mean 'llama'?)"), issues.join('\n'));
  assert.ok(issues.some((i) => /^model\.d_modle: expected a known field \(preset, .*d_model.*\), found unknown field 'd_modle' \(did you mean 'd_model'\?\)$/.test(i)), issues.join('\n'));
  assert.ok(issues.includes('model.n_heads: expected a number ≥ 1, found -2'), issues.join('\n'));
  assert.ok(issues.includes('data.batch_size: expected an integer, found 2.5'), issues.join('\n'));
  assert.ok(issues.some((i) => /^trainig: .*did you mean 'training'/.test(i)), issues.join('\n'));
  assert.equal(issues.length, 5);
  const missing = issuesOf(() => parseConfig({ ...clone(BASE), training: {} }));
  assert.deepEqual(missing, ['training.total_steps: expected a number, found nothing']);
  const corpus = issuesOf(() => parseConfig({ ...clone(BASE), data: { ...BASE.data, corpus: 'moby_dick' } }));
  assert.deepEqual(corpus, ["data.corpus.kind: expected one of 'sotu', 'moby-dick', 'sentiment', 'files', 'synthetic', found \"moby_dick\" (did you mean 'moby-dick'?)"]);
  const files = issuesOf(() => parseConfig({ ...clone(BASE), data: { ...BASE.data, corpus: { kind: 'files', path: ['a.txt'] } } }));
  assert.ok(files.includes('data.corpus.paths: expected a list, found nothing'), files.join('\n'));
  assert.ok(files.some((i) => /data\.corpus\.path: .*did you mean 'paths'/.test(i)), files.join('\n'));
  const message = (() => { try { parseConfig({ ...clone(BASE), training: {} }, { source: 'run.yaml' }); } catch (e) { return (e as Error).message; } return ''; })();
  assert.equal(message, 'run.yaml: invalid config: training.total_steps: expected a number, found nothing');
});

test('lr and lr_schedule: shorthand, peak override, schedule errors with their own paths', () => {
  const cos = parseConfig({ ...clone(BASE), optimizer: { lr_schedule: { kind: 'cosine', lr: 0.01, final_fraction: 0.1 } } });
  assert.deepEqual(cos.config.optimizer.lr_schedule, { kind: 'cosine', lr: 0.01, final_fraction: 0.1 });
  const peak = parseConfig({ ...clone(BASE), optimizer: { lr: 0.002, lr_schedule: { kind: 'warmup', warmup_fraction: 0.1, after: { kind: 'cosine' } } } });
  assert.deepEqual(peak.config.optimizer.lr_schedule, { kind: 'warmup', warmup_fraction: 0.1, start_fraction: 0, after: { kind: 'cosine', lr: 0.002, final_fraction: 0 } });
  const bad = issuesOf(() => parseConfig({ ...clone(BASE), optimizer: { lr_schedule: { kind: 'cosine', lr: 1, final_fracton: 0.1 }, betas: [0.9] } }));
  assert.ok(bad.some((i) => /^optimizer\.lr_schedule\.final_fracton: .*did you mean 'final_fraction'/.test(i)), bad.join('\n'));
  assert.ok(bad.includes('optimizer.betas: expected a list of at least 2 item(s), found [0.9]'), bad.join('\n'));
  const none = issuesOf(() => parseConfig({ ...clone(BASE), optimizer: { lr_schedule: { kind: 'cosine' } } }));
  assert.ok(none.some((i) => /^optimizer\.lr_schedule\.lr: expected a positive number, found nothing/.test(i)), none.join('\n'));
});

test('phases resolve by deep merge; errors in overrides point into the schedule', () => {
  const raw = {
    ...clone(BASE),
    schedule: [
      { name: 'warmup', start_step: 0, end_step: 3, overrides: { optimizer: { lr: 1e-4 } } },
      { name: 'main', start_t: 0.3, end_t: 1, task: 'mlm', overrides: { data: { batch_size: 8 }, model: { attention: 'bidirectional', n_stacks: 3 } } },
    ],
  };
  const p = parseConfig(raw);
  assert.deepEqual(p.phases.map((ph) => [ph.name, ph.start_t, ph.end_t]), [['warmup', 0, 0.3], ['main', 0.3, 1]]);
  assert.equal((p.phases[0]!.optimizer.lr_schedule as { lr: number }).lr, 1e-4);
  assert.equal((p.phases[1]!.optimizer.lr_schedule as { lr: number }).lr, 1e-3);
  assert.equal(p.phases[1]!.data!.objective, 'mlm');
  assert.equal(p.phases[1]!.data!.batch_size, 8);
  assert.equal(p.phases[1]!.model!.n_stacks, 3);
  assert.equal(p.phases[0]!.model!.n_stacks, 2);

  const badRaw = clone(raw) as Record<string, any>;
  badRaw.schedule[0].overrides.optimizer = { lr: -1, betaz: [0.9, 0.9] };
  badRaw.schedule[1].overrides.model = { d_model: 32, n_stack: 4 };
  badRaw.schedule[1].overrides.data = { seq_len: 0 };
  const issues = issuesOf(() => parseConfig(badRaw));
  assert.ok(issues.includes('schedule[0].overrides.optimizer.lr: expected a positive number, found -1'), issues.join('\n'));
  assert.ok(issues.some((i) => /^schedule\[0\]\.overrides\.optimizer\.betaz: .*did you mean 'betas'/.test(i)), issues.join('\n'));
  assert.ok(issues.some((i) => /^schedule\[1\]\.overrides\.model\.n_stack: .*did you mean 'n_stacks'/.test(i)), issues.join('\n'));
  assert.ok(issues.some((i) => /^schedule\[1\]\.overrides\.model\.d_model: a phase cannot change model\.d_model/.test(i)), issues.join('\n'));
  assert.ok(issues.includes('schedule[1].overrides.data.seq_len: expected a number ≥ 1, found 0'), issues.join('\n'));

  const gap = issuesOf(() => parseConfig({ ...clone(BASE), schedule: [{ name: 'a', start_t: 0, end_t: 0.4 }, { name: 'b', start_t: 0.5, end_t: 1 }] }));
  assert.deepEqual(gap, ["schedule: gap between phase #0 'a' [0, 0.4) and phase #1 'b' [0.5, 1): t in [0.4, 0.5) has no phase"]);
  const short = issuesOf(() => parseConfig({ ...clone(BASE), schedule: [{ name: 'a', start_t: 0, end_t: 0.51 }, { name: 'b', start_t: 0.51, end_t: 0.55 }, { name: 'c', start_t: 0.55, end_t: 1 }] }));
  assert.ok(/gets no training step with total_steps = 10/.test(short[0]!), short[0]);
  const noModel = issuesOf(() => parseConfig({ training: { total_steps: 4 }, schedule: [{ start_t: 0, end_t: 1, overrides: { model: { n_stacks: 2 } } }] }));
  assert.ok(/schedule\[0\]\.overrides\.model: overrides the model plane, but the config has no 'model' section/.test(noModel[0]!), noModel[0]);
});

test('YAML and JSON files load; syntax errors and duplicate keys are refused with a position', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-'));
  try {
    const yaml = join(dir, 'run.yaml');
    writeFileSync(yaml, [
      'model: {preset: gpt2, d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1}',
      'data:',
      '  corpus: {kind: synthetic, vocab_size: 64, tokens: 1000}',
      '  seq_len: 8',
      '  batch_size: 2',
      'optimizer:',
      '  lr: 1e-4   # a YAML 1.2 number, not a string',
      'training: {total_steps: 5}',
    ].join('\n'));
    const p = loadConfig(yaml, { set: ['training.total_steps=7', 'optimizer.clip_norm=1.0', 'model.dropout=0.1'] });
    assert.equal((p.config.optimizer.lr_schedule as { lr: number }).lr, 1e-4);
    assert.equal(p.config.training.total_steps, 7);
    assert.equal(p.config.optimizer.clip_norm, 1);
    assert.equal(p.config.model!.dropout, 0.1);
    assert.equal(p.source, yaml);

    const json = join(dir, 'run.json');
    writeFileSync(json, JSON.stringify(BASE));
    assert.equal(loadConfig(json).config.model!.preset, 'llama');
    writeFileSync(json, '{"model": ');
    assert.throws(() => loadConfig(json), (e: unknown) => e instanceof ConfigError && /run\.json: invalid config: \(root\): not valid JSON/.test(e.message));

    const dup = join(dir, 'dup.yaml');
    writeFileSync(dup, 'training:\n  total_steps: 5\ntraining:\n  total_steps: 6\n');
    assert.throws(() => loadConfig(dup), (e: unknown) => e instanceof ConfigError && /not valid YAML: Map keys must be unique.*line 3/s.test(e.message));
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'model: [1, 2\n');
    assert.throws(() => loadConfig(broken), /not valid YAML/);
    writeFileSync(broken, '');
    assert.throws(() => loadConfig(broken), /an empty document/);
    assert.throws(() => loadConfig(join(dir, 'none.yaml')), /does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--set parses YAML scalars and paths with list indices', () => {
  assert.deepEqual(parseSetOverride('optimizer.lr=3e-4'), { path: ['optimizer', 'lr'], value: 3e-4, text: 'optimizer.lr=3e-4' });
  assert.equal(parseSetOverride('a=true').value, true);
  assert.equal(parseSetOverride('a=null').value, null);
  assert.equal(parseSetOverride('a=hello world').value, 'hello world');
  assert.equal(parseSetOverride("a='007'").value, '007');
  assert.deepEqual(parseSetOverride('a=[1, 2]').value, [1, 2]);
  assert.deepEqual(parseSetOverride('schedule[1].overrides.optimizer.lr=1').path, ['schedule', 1, 'overrides', 'optimizer', 'lr']);
  assert.deepEqual(parseSetOverride('schedule.1.name=x').path, ['schedule', 1, 'name']);
  const raw = { schedule: [{ name: 'a' }], x: 1 };
  const out = applySetOverrides(raw, ['schedule[0].overrides.optimizer.lr=0.5', 'schedule[1]={name: b}', 'new.deep.key=2']) as any;
  assert.deepEqual(out, { schedule: [{ name: 'a', overrides: { optimizer: { lr: 0.5 } } }, { name: 'b' }], x: 1, new: { deep: { key: 2 } } });
  assert.deepEqual(raw, { schedule: [{ name: 'a' }], x: 1 }, 'the input is not modified');
  assert.throws(() => parseSetOverride('optimizer.lr'), /expected key=value/);
  assert.throws(() => parseSetOverride('=3'), /expected key=value/);
  assert.throws(() => parseSetOverride('a b=3'), /is not a config path/);
  assert.throws(() => applySetOverrides(raw, ['schedule[5].name=z']), /schedule has 1 item\(s\); index 5 is out of range/);
  assert.throws(() => applySetOverrides(raw, ['x.y=1']), /x is not an object, cannot set 'y'/);
  const typo = issuesOf(() => defineConfig(clone(BASE), { set: ['optimizer.lrr=1'] }));
  assert.ok(typo.some((i) => /^optimizer\.lrr: .*did you mean 'lr'/.test(i)), typo.join('\n'));
});

test('resolved configs are written to the run folder; the hash ignores run_dir; diffs name paths', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-'));
  try {
    const p = parseConfig({ ...clone(BASE), schedule: [{ name: 'warm up', start_t: 0, end_t: 0.5, overrides: { optimizer: { lr: 5e-4 } } }, { name: 'main', start_t: 0.5, end_t: 1 }] });
    writeResolvedConfigs(dir, p);
    assert.deepEqual(readdirSync(join(dir, 'phases')).sort(), ['00-warm_up.yaml', '01-main.yaml']);
    assert.match(readFileSync(join(dir, 'phases', '00-warm_up.yaml'), 'utf8'), /lr: 0\.0005/);
    assert.match(readFileSync(join(dir, 'config.yaml'), 'utf8'), new RegExp(`config hash ${p.hash}`));
    const q = parseConfig({ ...clone(BASE), training: { total_steps: 10, run_dir: '/elsewhere', progress: 'off' } });
    assert.equal(configHash(q.config), parseConfig(clone(BASE)).hash);
    const r = parseConfig({ ...clone(BASE), optimizer: { lr: 2e-3 } });
    assert.notEqual(r.hash, q.hash);
    assert.deepEqual(diffConfigs(q.config.optimizer, r.config.optimizer), [{ path: 'lr_schedule.lr', a: 1e-3, b: 2e-3 }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('extensions add validated keys to a plane (phases may override them)', () => {
  registerConfigExtension('model', 'test_growth', z.strictObject({ operator: z.enum(['copy-top', 'fresh']) }));
  const p = parseConfig({ ...clone(BASE), model: { ...BASE.model, test_growth: { operator: 'fresh' } }, schedule: [{ start_t: 0, end_t: 1, overrides: { model: { test_growth: { operator: 'copy-top' } } } }] });
  assert.deepEqual((p.phases[0]!.model as Record<string, unknown>)['test_growth'], { operator: 'copy-top' });
  const bad = issuesOf(() => parseConfig({ ...clone(BASE), model: { ...BASE.model, test_growth: { operator: 'copy_top' } } }));
  assert.deepEqual(bad, ["model.test_growth.operator: expected one of 'copy-top', 'fresh', found \"copy_top\" (did you mean 'copy-top'?)"]);
  assert.throws(() => registerConfigExtension('model', 'd_model', z.number()), /built-in field/);
});
