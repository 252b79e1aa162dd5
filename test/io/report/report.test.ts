// The run report: self-contained, well-formed HTML and SVG; every chart present; NaN, empty
// series and hostile labels handled; atomic writes; the metrics JSONL reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  REPORT_CHARTS, chartContext, emptyRunReportData, escapeXml, lossChart, metricsToReportData, parseStackSnapshot,
  readMetricsJsonl, readRunReportData, renderReportHtml, stackTimelineChart, writeRunReport, type RunReportData,
} from '../../../src/io/report/index.js';
import { downsample, ema, niceDomain, tickFormatter } from '../../../src/io/report/svg.js';
import { encodeJsonlRecord } from '../../../src/io/metrics-jsonl.js';
import { sampleRun } from './sample.js';
import { allElements, parseXml } from './xml.js';

const CHART_IDS = ['loss', 'stacks', 'lr', 'throughput'];

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sw-report-'));
}

/** No attribute or path holds NaN/Infinity/undefined (a broken coordinate). */
function assertNoBrokenNumbers(markup: string, what: string): void {
  const attrs = [...markup.matchAll(/\s(x|y|x1|x2|y1|y2|cx|cy|r|width|height|d|transform|viewBox)="([^"]*)"/g)];
  for (const [, name, value] of attrs) {
    assert.ok(!/NaN|Infinity|undefined|null/.test(value!), `${what}: ${name}="${value!.slice(0, 80)}"`);
  }
}

function assertSelfContained(markup: string, what: string): void {
  assert.doesNotMatch(markup, /https?:\/\//i, `${what}: contains a URL`);
  assert.doesNotMatch(markup, /<script\b/i, `${what}: contains a script`);
  assert.doesNotMatch(markup, /<(img|link|iframe|object|embed|image|use)\b/i, `${what}: references an external resource`);
  assert.doesNotMatch(markup, /<[^>]*\s(src|href|xlink:href)\s*=/i, `${what}: a tag has a src/href`);
  assert.doesNotMatch(markup, /@import|url\((?!#)/i, `${what}: CSS loads something`);
}

test('writeRunReport writes a well-formed, self-contained report with every chart', () => {
  const dir = tempDir();
  try {
    const files = writeRunReport(dir, sampleRun());
    assert.equal(files.html, join(dir, 'report.html'));
    assert.deepEqual(Object.keys(files.charts).sort(), [...CHART_IDS].sort());
    const html = readFileSync(files.html, 'utf8');
    assertSelfContained(html, 'report.html');
    assertNoBrokenNumbers(html, 'report.html');
    const root = parseXml(html);
    assert.equal(root.name, 'html');
    const els = allElements(root);
    for (const id of CHART_IDS) {
      const svg = els.find((e) => e.name === 'svg' && e.attrs.id === `chart-${id}`);
      assert.ok(svg, `chart ${id} inline in the HTML`);
      assert.ok(els.some((e) => e.name === 'figure' && e.attrs.id === `fig-${id}`));
      const file = readFileSync(files.charts[id]!, 'utf8');
      const sroot = parseXml(file);
      assert.equal(sroot.name, 'svg');
      assert.equal(sroot.attrs.xmlns, 'http://www.w3.org/2000/svg', 'standalone SVG declares its namespace');
      assertSelfContained(file.replace(' xmlns="http://www.w3.org/2000/svg"', ''), `report-${id}.svg`);
      assertNoBrokenNumbers(file, `report-${id}.svg`);
    }
    // Phase bands (one labelled band per phase per line chart) and event lines.
    const loss = els.find((e) => e.attrs.id === 'chart-loss')!;
    const lossEls = allElements(loss);
    assert.equal(lossEls.filter((e) => e.attrs.class === 'phase').length, 3);
    for (const name of ['warm-up: 1 stack', 'grow: 2 stacks, trunk frozen']) assert.ok(lossEls.some((e) => e.name === 'text' && e.text === name), `phase label ${name}`);
    assert.equal(lossEls.filter((e) => e.name === 'line' && /\bevent-grow\b/.test(e.attrs.class ?? '')).length, 2);
    assert.equal(lossEls.filter((e) => e.name === 'circle' && e.attrs.stroke === '#ea580c' && e.attrs.r === '3.2').length, 12, 'one marker per evaluation');
    // The stack timeline: coloured segments for each state.
    const stacks = allElements(els.find((e) => e.attrs.id === 'chart-stacks')!);
    for (const state of ['trainable', 'frozen', 'quantized', 'adapted-quantized']) assert.ok(stacks.some((e) => e.attrs.class === `segment state-${state}`), `segment ${state}`);
    // Tables.
    assert.ok(html.includes('QLoRA on trunk + new stack'));
    assert.ok(html.includes('appended stack 2 (identity init)'));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary files left');
    // Data round trip: the saved data regenerates the same report.
    const again = readRunReportData(dir);
    assert.equal(again.steps.length, 600);
    const orig = normalize(sampleRun());
    assert.deepEqual([again.phases, again.events, again.stack_timeline, again.summary], [orig.phases, orig.events, orig.stack_timeline, orig.summary]);
    again.steps.forEach((s, i) => assert.ok(Math.abs(s.loss! - orig.steps[i]!.loss!) <= 1e-6 * Math.abs(orig.steps[i]!.loss!)));
    parseXml(renderReportHtml(again));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function normalize(d: RunReportData): RunReportData {
  return JSON.parse(JSON.stringify(d)) as RunReportData;
}

test('labels are escaped everywhere (run name, phases, events, summary)', () => {
  const d = sampleRun(40, 10);
  const evil = `<script>alert("x")</script> & 'q' ]]>`;
  d.run_name = evil;
  d.phases[0]!.name = evil;
  d.events[0]!.description = `<img src=x onerror=alert(1)> ${evil}`;
  d.summary[evil] = evil;
  d.notes = [evil];
  const html = renderReportHtml(d);
  assertSelfContained(html, 'html');
  assert.ok(!html.includes('<script>alert'), 'raw script tag');
  assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; ]]&gt;'));
  const root = parseXml(html);
  const texts = allElements(root).map((e) => e.text);
  assert.ok(texts.some((t) => t.includes(evil)), 'the label reads back unchanged');
  assert.equal(escapeXml('a\u0001b'), 'a\ufffdb', 'control characters replaced');
});

test('NaN, Infinity, empty and single-point series are drawn without broken coordinates', () => {
  const cases: [string, RunReportData][] = [];
  cases.push(['empty', emptyRunReportData('empty')]);
  const one = emptyRunReportData('one');
  one.steps.push({ step: 0, t: 0, loss: 5, lr: 1e-3, tokens_per_s: 100 });
  one.evals.push({ t: 0, val_loss: 5 });
  one.stack_timeline.push({ t: 0, stacks: [{ index: 0, state: 'trainable' }] });
  cases.push(['one point', one]);
  const bad = sampleRun(60, 10);
  bad.steps[3]!.loss = NaN;
  bad.steps[4]!.loss = Infinity;
  bad.steps[5]!.lr = NaN;
  bad.steps[6]!.tokens_per_s = -Infinity;
  bad.steps[7]!.t = NaN;
  bad.evals[1]!.val_loss = NaN;
  bad.events.push({ t: NaN, kind: 'grow', description: 'no time' });
  bad.phases.push({ name: 'broken', start_t: NaN, end_t: 1 });
  cases.push(['non-finite', bad]);
  const allNaN = emptyRunReportData('all NaN');
  for (let k = 0; k < 5; k++) allNaN.steps.push({ step: k, t: k / 5, loss: NaN, lr: null, tokens_per_s: undefined });
  cases.push(['all NaN', allNaN]);
  const constant = emptyRunReportData('constant');
  for (let k = 0; k < 30; k++) constant.steps.push({ step: k, t: k / 30, loss: 2, lr: 0, tokens_per_s: 0 });
  cases.push(['constant', constant]);
  for (const [name, d] of cases) {
    const html = renderReportHtml(d);
    assertNoBrokenNumbers(html, name);
    parseXml(html);
    for (const c of REPORT_CHARTS) parseXml(c.render(chartContext(d), true));
  }
  const emptyHtml = renderReportHtml(emptyRunReportData('e'));
  assert.ok(emptyHtml.includes('no loss recorded') && emptyHtml.includes('no stack states recorded'));
  const badLoss = lossChart(chartContext(bad));
  assert.ok(badLoss.includes('class="nonfinite"'), 'non-finite losses are marked');
  const allNaNLoss = lossChart(chartContext(allNaN));
  assert.ok(!allNaNLoss.includes('no loss recorded'), 'an all-NaN series is not "no data": it is marked');
  assert.ok(allNaNLoss.includes('class="nonfinite"'));
});

test('the stack timeline merges equal states and leaves unbuilt stacks empty', () => {
  const d = emptyRunReportData('tl');
  d.steps.push({ step: 0, t: 0 }, { step: 9, t: 0.9 });
  d.stack_timeline.push(
    { t: 0, stacks: [{ index: 0, state: 'trainable' }] },
    { t: 0.2, stacks: [{ index: 0, state: 'trainable' }] },
    { t: 0.5, stacks: [{ index: 0, state: 'frozen' }, { index: 1, state: 'trainable' }] },
  );
  const svg = stackTimelineChart(chartContext(d), true);
  const els = allElements(parseXml(svg));
  const segs = els.filter((e) => e.name === 'g' && (e.attrs.class ?? '').startsWith('segment'));
  assert.deepEqual(segs.map((s) => s.attrs.class), ['segment state-trainable', 'segment state-frozen', 'segment state-trainable']);
  const tips = segs.map((s) => s.children.find((c) => c.name === 'title')!.text);
  assert.deepEqual(tips, ['stack 0: trainable, t 0 – 0.5', 'stack 0: frozen, t 0.5 – 1', 'stack 1: trainable, t 0.5 – 1']);
});

test('writes are atomic: a failing render leaves the folder untouched; a rerun replaces the files', () => {
  const dir = tempDir();
  try {
    const d = sampleRun(30, 10);
    const broken = { ...d, steps: [{ step: 0, get t(): number { throw new Error('boom'); } }] } as unknown as RunReportData;
    assert.throws(() => writeRunReport(dir, broken), /boom/);
    assert.deepEqual(readdirSync(dir), [], 'nothing written');
    writeRunReport(dir, d);
    const before = readFileSync(join(dir, 'report.html'), 'utf8');
    d.run_name = 'renamed';
    writeRunReport(dir, d);
    const after = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.notEqual(before, after);
    assert.ok(after.includes('Run report: renamed'));
    assert.deepEqual(readdirSync(dir).sort(), ['report-data.json', 'report-loss.svg', 'report-lr.svg', 'report-stacks.svg', 'report-throughput.svg', 'report.html']);
    assert.throws(() => writeRunReport(join(dir, 'report.html', 'sub'), d), /ENOTDIR|EEXIST|not a directory/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readMetricsJsonl maps the training JSONL: aliases, non-finite values, partial last line, derived phases', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'metrics.jsonl');
    const lines = [
      { kind: 'run_start', run_name: 'my-run', total_steps: 10 },
      { kind: 'stacks', step: 0, stacks: ['trainable'] },
      ...Array.from({ length: 10 }, (_, k) => ({ kind: 'step', step: k, phase: k < 5 ? 'a' : 'b', loss: k === 3 ? NaN : 5 - k * 0.1, learning_rate: 1e-3, tokens_per_sec: 1000 + k })),
      { kind: 'eval', step: 5, eval_loss: 4.2, perplexity: 66.7 },
      { kind: 'event', event: 'grow', step: 5, message: 'appended stack 1', stacks: { frozen: [0], trainable: [1] } },
      { kind: 'freeze', t: 0.5, description: 'froze stack 0' },
      { kind: 'quantize', step: 8, stacks: [{ index: 0, state: 'frozen', quantized: 'nf4' }, { index: 1, frozen: false }] },
      { kind: 'mystery', value: 1 },
      { kind: 'summary', final_val_ppl: 60.1, wall_s: 12 },
    ];
    writeFileSync(path, lines.map((l) => encodeJsonlRecord(l)).join('\n') + '\n{"kind":"step","st');
    const d = readMetricsJsonl(path);
    assert.equal(d.run_name, 'my-run');
    assert.equal(d.steps.length, 10);
    assert.equal(d.steps[4]!.t, 0.4);
    assert.ok(Number.isNaN(d.steps[3]!.loss), 'NaN restored from the nonfinite field');
    assert.equal(d.steps[2]!.lr, 1e-3);
    assert.equal(d.steps[2]!.tokens_per_s, 1002);
    assert.deepEqual(d.evals, [{ t: 0.5, step: 5, val_loss: 4.2, val_ppl: 66.7 }]);
    assert.deepEqual(d.events.map((e) => [e.kind, e.t, e.description]), [['grow', 0.5, 'appended stack 1'], ['freeze', 0.5, 'froze stack 0'], ['quantize', 0.8, 'quantize']]);
    assert.deepEqual(d.stack_timeline, [
      { t: 0, stacks: [{ index: 0, state: 'trainable' }] },
      { t: 0.5, stacks: [{ index: 0, state: 'frozen' }, { index: 1, state: 'trainable' }] },
      { t: 0.8, stacks: [{ index: 0, state: 'quantized' }, { index: 1, state: 'trainable' }] },
    ]);
    assert.deepEqual(d.phases, [{ name: 'a', start_t: 0, end_t: 0.5 }, { name: 'b', start_t: 0.5, end_t: 1 }]);
    assert.equal(d.summary.final_val_ppl, 60.1);
    assert.ok(d.notes?.some((n) => n.includes('unknown kind')));
    // The run folder → report.
    const files = writeRunReport(dir, readRunReportData(dir));
    parseXml(readFileSync(files.html, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('metricsToReportData: records without kind, without t, explicit phases and phase records', () => {
  const noKind = metricsToReportData([
    { step: 0, loss: 3 }, { step: 1, loss: 2.5 }, { step: 2, val_loss: 2.7 }, { step: 3, loss: 2 },
  ]);
  assert.deepEqual(noKind.steps.map((s) => s.t), [0, 0.25, 0.75]);
  assert.equal(noKind.evals.length, 1);
  assert.ok(noKind.notes?.some((n) => n.includes('estimated')));
  const explicit = metricsToReportData([
    { type: 'config', phases: [{ name: 'x', start: 0, end: 0.4 }, { name: 'y', start: 0.4, end: 1 }] },
    { t: 0.1, loss: 1 },
  ]);
  assert.deepEqual(explicit.phases, [{ name: 'x', start_t: 0, end_t: 0.4 }, { name: 'y', start_t: 0.4, end_t: 1 }]);
  const phaseRecords = metricsToReportData([
    { kind: 'phase_start', name: 'p1', t: 0 }, { t: 0.2, loss: 1 }, { kind: 'phase_start', name: 'p2', t: 0.6 }, { t: 0.7, loss: 1 },
  ]);
  assert.deepEqual(phaseRecords.phases, [{ name: 'p1', start_t: 0, end_t: 0.6 }, { name: 'p2', start_t: 0.6, end_t: 0.7 }]);
  assert.deepEqual(parseStackSnapshot(['frozen', 'lora+frozen', 'nf4 lora', 'bogus']), [
    { index: 0, state: 'frozen' }, { index: 1, state: 'adapted' }, { index: 2, state: ['adapted', 'quantized'] },
  ]);
});

test('readRunReportData: a missing folder or metrics file is a clear error', () => {
  const dir = tempDir();
  try {
    assert.throws(() => readRunReportData(join(dir, 'nope')), /no such run folder/);
    assert.throws(() => readRunReportData(dir), /no metrics\.jsonl/);
    assert.throws(() => readMetricsJsonl(join(dir, 'metrics.jsonl')), /no such metrics file/);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step": 1}\nnot json\n{"step": 2}\n');
    assert.throws(() => readRunReportData(dir), /metrics\.jsonl:2: invalid JSON/);
    assert.ok(!existsSync(join(dir, 'report.html')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('svg helpers: nice ticks, tick labels, downsampling keeps extremes, debiased EMA', () => {
  assert.deepEqual(niceDomain(2.63, 5.97).ticks, [2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6]);
  assert.deepEqual(niceDomain(0, 3e-4).ticks, [0, 5e-5, 1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4]);
  assert.deepEqual(niceDomain(7, 7).domain, [6.2, 7.8]);
  assert.deepEqual(niceDomain(NaN, 1).domain, [0, 1]);
  assert.equal(tickFormatter(5e-5, 3e-4)(1.5e-4), '1.5e-4');
  assert.equal(tickFormatter(5000, 20000)(15000), '15k');
  assert.equal(tickFormatter(0.5, 6)(2.5), '2.5');
  assert.equal(tickFormatter(0.1, 1)(0.3), '0.3');
  const pts = Array.from({ length: 10_000 }, (_, i) => ({ x: i, y: i === 5000 ? 100 : i === 7000 ? -100 : Math.sin(i) }));
  const ds = downsample(pts, (p) => p.x, (p) => p.y, 400);
  assert.ok(ds.length <= 400 && ds.length >= 200, `kept ${ds.length}`);
  assert.ok(ds.some((p) => p.y === 100) && ds.some((p) => p.y === -100));
  const e = ema([1, 1, NaN, 1], 0.9);
  assert.ok(Math.abs(e[0]! - 1) < 1e-12 && Number.isNaN(e[2]!) && Math.abs(e[3]! - 1) < 1e-12);
});
