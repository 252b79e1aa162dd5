/**
 * The run report: `writeRunReport(runDir, data)` writes, atomically, into the run folder
 *   report.html             self-contained page (inline CSS + SVG, no scripts, no external resources)
 *   report-loss.svg         loss and validation loss against t, phase bands, model events
 *   report-stacks.svg       which stacks were trainable / frozen / adapted / quantized over t
 *   report-lr.svg           learning rate against t
 *   report-throughput.svg   tokens/s against t
 *   report-data.json        the RunReportData the report was drawn from
 * `readRunReportData(runDir)` rebuilds the data from the folder's metrics.jsonl (`stackwise report`).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { REPORT_CHARTS, chartContext } from './charts.js';
import { renderReportHtml } from './html.js';
import { readMetricsJsonl } from './metrics.js';
import { emptyRunReportData, type RunReportData } from './types.js';

export * from './types.js';
export { metricsToReportData, parseStackSnapshot, readMetricsJsonl, type MetricsToReportOptions } from './metrics.js';
export { renderReportHtml, derivedSummary } from './html.js';
export { REPORT_CHARTS, chartContext, lossChart, lrChart, stackTimelineChart, throughputChart, xyLineChart, type ChartContext, type XYSeries } from './charts.js';
export { escapeXml } from './svg.js';
export * from './compare.js';

export const REPORT_HTML = 'report.html';
export const REPORT_DATA = 'report-data.json';
export const METRICS_FILE = 'metrics.jsonl';

export interface RunReportFiles {
  html: string;
  /** Chart id (loss, stacks, lr, throughput) → SVG path. */
  charts: Record<string, string>;
  data: string;
}

/** Fills what a caller may have left out, so the renderers can rely on the shape. */
export function normalizeReportData(data: Partial<RunReportData> & { run_name?: string }): RunReportData {
  const base = emptyRunReportData(typeof data.run_name === 'string' && data.run_name ? data.run_name : 'run');
  const arr = <T>(v: T[] | undefined): T[] => (Array.isArray(v) ? v : []);
  const out: RunReportData = {
    ...base,
    phases: arr(data.phases),
    steps: arr(data.steps),
    evals: arr(data.evals),
    events: arr(data.events),
    stack_timeline: arr(data.stack_timeline).map((s) => ({ t: s.t, stacks: arr(s.stacks) })),
    summary: data.summary && typeof data.summary === 'object' ? data.summary : {},
  };
  if (Array.isArray(data.resources) && data.resources.length > 0) out.resources = data.resources;
  if (Array.isArray(data.notes)) out.notes = data.notes;
  if (typeof data.generated_at === 'string') out.generated_at = data.generated_at;
  return out;
}

/**
 * JSON of the data: non-finite numbers kept readable ("NaN", "Infinity"), other fractions rounded
 * to 7 significant digits (float32 precision; keeps long runs' files small).
 */
function dataJson(data: RunReportData): string {
  return JSON.stringify(data, (_k, v: unknown) => {
    if (typeof v !== 'number') return v;
    if (!Number.isFinite(v)) return String(v);
    return Number.isInteger(v) ? v : Number(v.toPrecision(7));
  }) + '\n';
}

/** Writes the report files into `runDir` (created if needed); each file is written atomically. */
export function writeRunReport(runDir: string, data: RunReportData): RunReportFiles {
  const d = normalizeReportData(data);
  const ctx = chartContext(d);
  const charts: Record<string, string> = {};
  const chartFiles: Record<string, string> = {};
  // Render everything before writing anything, so a rendering error leaves the folder untouched.
  const svgs = REPORT_CHARTS.map((c) => {
    const file = `report-${c.id}.svg`;
    chartFiles[c.id] = file;
    return { id: c.id, file, svg: `<?xml version="1.0" encoding="UTF-8"?>\n${c.render(ctx, true)}\n` };
  });
  const html = renderReportHtml(d, { chartFiles, rendered: Object.fromEntries(svgs.map((s) => [s.id, s.svg])) });
  for (const s of svgs) {
    const path = join(runDir, s.file);
    writeFileAtomic(path, s.svg);
    charts[s.id] = path;
  }
  const dataPath = join(runDir, REPORT_DATA);
  writeFileAtomic(dataPath, dataJson(d));
  const htmlPath = join(runDir, REPORT_HTML);
  writeFileAtomic(htmlPath, html);
  return { html: htmlPath, charts, data: dataPath };
}

function revive(_k: string, v: unknown): unknown {
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v;
}

/** The metrics file of a run folder: metrics.jsonl, else the only *.jsonl whose name mentions metrics. */
export function findMetricsFile(runDir: string): string | undefined {
  const direct = join(runDir, METRICS_FILE);
  if (existsSync(direct)) return direct;
  if (!existsSync(runDir)) return undefined;
  const candidates = readdirSync(runDir).filter((f) => f.endsWith('.jsonl') && /metric/i.test(f)).sort();
  return candidates.length ? join(runDir, candidates[0]!) : undefined;
}

/**
 * Report data for a run folder: from its metrics JSONL; what the metrics lack (phases, events,
 * stack timeline, summary) is taken from a previous report-data.json when there is one. Throws
 * when the folder has neither.
 */
export function readRunReportData(runDir: string): RunReportData {
  if (!existsSync(runDir)) throw new Error(`${runDir}: no such run folder`);
  const metrics = findMetricsFile(runDir);
  const previousPath = join(runDir, REPORT_DATA);
  let previous: RunReportData | undefined;
  if (existsSync(previousPath)) {
    try {
      previous = normalizeReportData(JSON.parse(readFileSync(previousPath, 'utf8'), revive) as RunReportData);
    } catch (e) {
      if (!metrics) throw new Error(`${previousPath}: invalid JSON (${(e as Error).message})`);
    }
  }
  if (!metrics) {
    if (previous) return previous;
    throw new Error(`${runDir}: no ${METRICS_FILE} (and no ${REPORT_DATA}) to build a report from`);
  }
  const data = readMetricsJsonl(metrics, { defaultRunName: basename(resolve(runDir)) });
  if (previous) {
    if (data.phases.length === 0) data.phases = previous.phases;
    if (data.events.length === 0) data.events = previous.events;
    if (data.stack_timeline.length === 0) data.stack_timeline = previous.stack_timeline;
    if (data.evals.length === 0) data.evals = previous.evals;
    if (!data.resources && previous.resources) data.resources = previous.resources;
    data.summary = { ...previous.summary, ...data.summary };
    if (previous.run_name && data.run_name === basename(resolve(runDir))) data.run_name = previous.run_name;
  }
  return data;
}
export { FINAL_LOSS_WINDOW, FINAL_LOSS_LABEL, finalTrainLoss } from './final-loss.js';
