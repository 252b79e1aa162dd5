// The per-phase memory and compute table of the run report: `resources` records read tolerantly
// (nested as the progressive plane writes them, or flat), drawn as an escaped, well-formed table,
// and kept through report-data.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricsToReportData, readRunReportData, renderReportHtml, writeRunReport, type RunReportData } from '../../../src/io/report/index.js';
import { sampleRun } from './sample.js';
import { allElements, parseXml, type XmlElement } from './xml.js';

/** As ProgressivePlane writes it (src/training/progressive/resource-record.ts). */
function planeRecord(phase: string, step: number, t: number, stacks: number, trainable: number, cached = 0): Record<string, unknown> {
  return {
    kind: 'resources', step, t, phase, seq_len: 128, optimizer: 'adamw', optimizer_state_slots: 2, n_stacks: stacks, blocks: stacks * 2,
    cached_prefix_stacks: cached,
    params: { total: 3_000_000, trainable, frozen: 3_000_000 - trainable, adapters: 12_288, adapters_trainable: 12_288 },
    bytes: { weights: 12_000_000, grads: 4 * trainable, optimizer_state: 8 * trainable, cached_activations_memory: cached ? 2_500_000 : 0, cached_activations_disk: cached ? 7_000_000 : 0, total: 12_000_000 + 12 * trainable + (cached ? 2_500_000 : 0) },
    flops_per_token: { forward: 6e6, backward: 8e6, train: 14e6, forward_cached: cached ? 4e6 : 6e6, train_cached: cached ? 12e6 : 14e6 },
    per_stack: Array.from({ length: stacks }, (_, i) => ({ index: i, role: i === stacks - 1 ? 'new' : 'trunk', blocks: 2, params: 1000, trainable: 10, adapter_params: 0, frozen: false })),
  };
}

function section(html: string, id: string): XmlElement | undefined {
  return allElements(parseXml(html)).find((e) => e.name === 'section' && e.attrs.id === id);
}

function cellTexts(row: XmlElement): string[] {
  return allElements(row).filter((e) => e.name === 'td' || e.name === 'th').map((e) => allElements(e).map((x) => x.text).join('').trim());
}

test('metricsToReportData reads resources records: nested (the plane) and flat aliases, t from step', () => {
  const records = [
    { type: 'run_start', total_steps: 100 },
    planeRecord('one', 0, 0, 1, 1_000_000),
    planeRecord('two', 50, 0.5, 2, 400_000, 1),
    // A flat record without t (t = step / total_steps).
    { type: 'resource_report', step: 75, phase: 'three', num_stacks: 3, trainable_params: 300_000, frozen_params: 2_700_000, adapter_params: 0, weights_bytes: 12e6, grads_bytes: 1.2e6, optimizer_state_bytes: 2.4e6, total_bytes: 15.6e6, train_flops_per_token: 1e7, train_cached_flops_per_token: 9e6 },
  ];
  const d = metricsToReportData(records);
  assert.ok(!(d.notes ?? []).some((n) => /unknown kind/.test(n)), JSON.stringify(d.notes));
  assert.equal(d.stack_timeline.length, 0, 'per_stack is not a stack-state snapshot');
  assert.deepEqual(d.resources?.map((r) => [r.phase, r.t, r.step, r.stacks, r.trainable_params, r.frozen_params, r.optimizer_state_bytes]), [
    ['one', 0, 0, 1, 1_000_000, 2_000_000, 8_000_000],
    ['two', 0.5, 50, 2, 400_000, 2_600_000, 3_200_000],
    ['three', 0.75, 75, 3, 300_000, 2_700_000, 2.4e6],
  ]);
  const two = d.resources![1]!;
  assert.equal(two.cached_activations_memory_bytes, 2_500_000);
  assert.equal(two.cached_activations_disk_bytes, 7_000_000);
  assert.equal(two.cached_prefix_stacks, 1);
  assert.equal(two.train_cached_flops_per_token, 12e6);
  assert.equal(two.optimizer, 'adamw');
  const three = d.resources![2]!;
  assert.equal(three.cached_activations_memory_bytes, null, 'absent → null');
  assert.equal(three.train_cached_flops_per_token, 9e6);
  assert.equal(metricsToReportData([{ type: 'step', step: 0, t: 0, loss: 1 }]).resources, undefined, 'no records → no field');
});

test('the HTML report draws one escaped column per phase (rows: params, MB, FLOPs per token with and without cache)', () => {
  const evil = `<b>grow & "freeze"</b>`;
  const d: RunReportData = sampleRun(40, 10);
  d.resources = metricsToReportData([planeRecord(d.phases[0]!.name, 0, 0, 1, 1_000_000), planeRecord(evil, 20, 0.5, 2, 400_000, 1)]).resources!;
  const html = renderReportHtml(d);
  assert.ok(!html.includes('<b>grow'), 'the phase name is escaped');
  const sec = section(html, 'resources');
  assert.ok(sec, 'a resources section');
  const rows = allElements(sec).filter((e) => e.name === 'tr');
  assert.equal(rows.length, 13);
  assert.deepEqual(cellTexts(rows[0]!), ['phase', d.phases[0]!.name, evil]);
  const labels = rows.slice(1).map((r) => cellTexts(r)[0]);
  assert.deepEqual(labels, ['start t', 'stacks', 'trainable params', 'frozen params', 'adapter params', 'weights MB', 'grads MB', 'optimizer state MB', 'cached activations MB', 'total MB', 'train FLOPs / token', 'train FLOPs / token, cached prefix']);
  const column = (j: number) => rows.slice(1).map((r) => cellTexts(r)[j]);
  assert.deepEqual(column(1), ['0', '1', '1M', '2M', '12.29k', '12.0', '4.000', '8.000', '0', '24.0', '14M', '14M']);
  assert.deepEqual(column(2), ['0.5', '2', '400k', '2.6M', '12.29k', '12.0', '1.600', '3.200', '2.500 + 7.000 disk', '19.3', '14M', '12M (1 stack)']);
  const trainable = allElements(rows[3]!).filter((e) => e.name === 'td')[1]!;
  assert.equal(trainable.attrs.title, '400000', 'exact value in the title');
  assert.equal(section(renderReportHtml(sampleRun(40, 10)), 'resources'), undefined, 'no table without records');
});

test('many phases: tables of at most RESOURCE_PHASES_PER_TABLE phase columns, so the page width holds', () => {
  const d: RunReportData = sampleRun(40, 10);
  d.resources = metricsToReportData(Array.from({ length: 12 }, (_, i) => planeRecord(`layer-${i + 1}`, i, i / 12, i + 1, 1000))).resources!;
  const sec = section(renderReportHtml(d), 'resources')!;
  const tables = allElements(sec).filter((e) => e.name === 'table');
  assert.equal(tables.length, 2);
  const heads = allElements(sec).filter((e) => e.name === 'tr' && cellTexts(e)[0] === 'phase').map((r) => cellTexts(r).length - 1);
  assert.deepEqual(heads, [8, 4]);
});

test('writeRunReport / readRunReportData: the table comes from metrics.jsonl and survives in report-data.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-report-res-'));
  try {
    const lines = [
      { type: 'run_start', total_steps: 10 },
      { type: 'step', step: 0, t: 0, phase: 'one', loss: 3 },
      planeRecord('one', 0, 0, 1, 1000),
      { type: 'step', step: 5, t: 0.5, phase: 'two', loss: 2 },
      planeRecord('two', 5, 0.5, 2, 500),
    ];
    writeFileSync(join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const data = readRunReportData(dir);
    assert.equal(data.resources?.length, 2);
    const files = writeRunReport(dir, data);
    const html = readFileSync(files.html, 'utf8');
    assert.ok(section(html, 'resources'));
    const saved = JSON.parse(readFileSync(files.data, 'utf8')) as RunReportData;
    assert.deepEqual(saved.resources?.map((r) => [r.phase, r.trainable_params]), [['one', 1000], ['two', 500]]);
    // Without the metrics file the previous report data still has the table.
    rmSync(join(dir, 'metrics.jsonl'));
    assert.equal(readRunReportData(dir).resources?.length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an activation_cache record at the phase end fills that phase row: cached bytes and hits', () => {
  const records = [
    { type: 'run_start', total_steps: 100 },
    planeRecord('two', 50, 0.5, 2, 400_000, 1),
    { kind: 'activation_cache', step: 100, t: 1, phase: 'two', prefix_stacks: 1, hits: 640, misses: 64, entries: 64, memory_bytes: 3_000_000, disk_bytes: 5_000_000, spills: 3, evictions: 0, invalidations: 0 },
  ];
  const data = metricsToReportData(records);
  assert.equal(data.resources!.length, 1);
  assert.equal(data.resources![0]!.cached_activations_memory_bytes, 3_000_000);
  assert.equal(data.resources![0]!.cached_activations_disk_bytes, 5_000_000);
  assert.equal(data.resources![0]!.cache_hits, 640);
  assert.equal(data.resources![0]!.total_bytes, 12_000_000 + 12 * 400_000 + 3_000_000, 'the total counts the cache at the phase end');
  assert.ok(!data.notes?.some((n) => /unknown kind/.test(n)), 'the record is understood');
  const row = allElements(section(renderReportHtml(data), 'resources')!).filter((e) => e.name === 'tr').find((r) => cellTexts(r)[0] === 'cached activations MB')!;
  assert.ok(cellTexts(row).some((c) => /3(\.0+)? \+ 5(\.0+)? disk, 640 hits/.test(c)), cellTexts(row).join(' | '));
});
