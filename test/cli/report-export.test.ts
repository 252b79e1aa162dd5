// `stackwise report` and `stackwise export` as child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../src/io/index.js';
import { FIXTURES_DIR, stackwise } from './support.js';

test('stackwise report regenerates the report from metrics.jsonl', () => {
  const run = mkdtempSync(join(tmpdir(), 'sw-run-'));
  try {
    const lines = [{ kind: 'run_start', run_name: 'cli-run', total_steps: 50 }];
    for (let k = 0; k < 50; k++) lines.push({ kind: 'step', step: k, phase: k < 25 ? 'one' : 'two', loss: 4 - k / 25, lr: 1e-3, tokens_per_s: 900 } as never);
    lines.push({ kind: 'grow', step: 25, description: 'appended stack 1', stacks: [{ index: 0, state: 'frozen' }, { index: 1, state: 'trainable' }] } as never);
    writeFileSync(join(run, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const r = stackwise('report', run, '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; html: string; charts: Record<string, string>; steps: number; events: number };
    assert.equal(out.ok, true);
    assert.equal(out.steps, 50);
    assert.equal(out.events, 1);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    assert.ok(html.includes('Run report: cli-run'));
    for (const id of ['loss', 'stacks', 'lr', 'throughput']) assert.ok(existsSync(join(run, `report-${id}.svg`)), id);
    const text = stackwise('report', run);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /wrote .*report\.html \(50 steps, 0 evaluations, 1 events\)/);
    const missing = stackwise('report', join(run, 'nope'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope: no such run folder/);
    const empty = join(run, 'empty'); mkdirSync(empty);
    const none = stackwise('report', empty);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no metrics\.jsonl/);
    assert.equal(stackwise('report').status, 2);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('stackwise export --format hf: exact round trip, adapters, refusing to overwrite', { skip: !existsSync(join(FIXTURES_DIR, 'llama-gqa-lora')) }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sw-export-'));
  try {
    const src = join(FIXTURES_DIR, 'llama-gqa-lora');
    const out = join(tmp, 'hf');
    let r = stackwise('export', src, '--format', 'hf', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['adapter_config.json', 'adapter_model.safetensors', 'config.json', 'model.json', 'model.safetensors']);
    for (const file of ['model.safetensors', 'adapter_model.safetensors']) {
      const a = readSafetensors(join(src, file)).tensors;
      const b = readSafetensors(join(out, file)).tensors;
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), file);
      for (const [k, t] of a) assert.ok(Buffer.from(t.data).equals(Buffer.from(b.get(k)!.data)), `${file} ${k}: bytes round-trip exactly`);
    }
    r = stackwise('export', src, '--out', out);
    assert.equal(r.status, 2, 'a non-empty --out needs --force');
    assert.match(r.stderr, /--force/);
    r = stackwise('export', src, '--out', out, '--force', '--adapters', 'merge', '--dtype', 'F16');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['config.json', 'model.json', 'model.safetensors']);
    assert.equal(readSafetensors(join(out, 'model.safetensors')).tensors.get('lm_head.weight')!.dtype, 'F16');
    assert.deepEqual(readdirSync(tmp), ['hf'], 'no temporary folders left');
    assert.equal(stackwise('export', src, '--out', join(tmp, 'x'), '--format', 'onnx').status, 2);
    r = stackwise('export', join(tmp, 'nope'), '--out', join(tmp, 'x'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /nope: no such file or folder/);
    assert.ok(!existsSync(join(tmp, 'x')));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
