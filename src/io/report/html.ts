/**
 * The run report page: one self-contained HTML file (inline CSS and SVG, no scripts, no external
 * resources; a Content-Security-Policy forbids loading any). The markup is also well-formed XML.
 */
import { PHASE_COLORS, REPORT_CHARTS, STATE_COLORS, EVENT_STYLE, chartContext, type ChartContext } from './charts.js';
import { escapeXml, formatValue } from './svg.js';
import type { ReportResources, RunReportData, SummaryValue } from './types.js';
import { STACK_STATES } from './types.js';
import { FINAL_LOSS_LABEL, finalTrainLoss } from './final-loss.js';

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The report pages' stylesheet (run report, comparison page). */
const REPORT_CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; background: #f1f5f9; color: #1e293b;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 936px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.meta { color: #64748b; margin: 0 0 18px; }
section, figure { background: #ffffff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 16px 20px; margin: 0 0 18px; }
figure { padding: 12px 12px 10px; overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: #475569; font-size: 12.5px; margin: 6px 8px 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid #f1f5f9; vertical-align: top; }
th { color: #475569; font-weight: 600; }
td.num, th.num { text-align: right; padding-right: 16px; }
table.resources { margin-bottom: 10px; }
table.resources th:first-child { width: 210px; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 2px 24px; }
.kv div { display: flex; justify-content: space-between; gap: 12px; border-bottom: 1px solid #f1f5f9; padding: 3px 0; }
.kv .k { color: #475569; }
.kv .v { font-weight: 600; text-align: right; word-break: break-word; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 6px; border: 1px solid #cbd5e1; }
.tag { display: inline-block; padding: 0 6px; border-radius: 9px; color: #ffffff; font-size: 12px; font-weight: 600; }
.notes { color: #92400e; background: #fffbeb; border-color: #fde68a; }
.notes ul { margin: 0; padding-left: 18px; }
.empty { color: #64748b; }
footer { color: #64748b; font-size: 12px; text-align: center; margin-top: 8px; }
`;

/**
 * The start of a self-contained report page up to </head>: no script, no outside resource
 * (the CSP forbids them), the report stylesheet inline. Shared by report.html and compare.html.
 */
export function reportHead(title: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'" />
<meta name="generator" content="stackwise" />
<title>${escapeXml(title)}</title>
<style>${REPORT_CSS}</style>
</head>`;
}

function summaryValue(v: SummaryValue): string {
  if (typeof v === 'number') return formatValue(v);
  if (v === null) return '–';
  return String(v);
}

/** Facts computed from the data (shown after the caller's summary, unless the caller has the key). */
export function derivedSummary(data: RunReportData): Record<string, SummaryValue> {
  const out: Record<string, SummaryValue> = {};
  const steps = data.steps.filter((s) => finite(s.t));
  if (steps.length) {
    out['steps logged'] = steps.length;
    out['last step'] = steps.reduce((m, s) => Math.max(m, finite(s.step) ? s.step : -Infinity), -Infinity);
    const final = finalTrainLoss(steps.map((s) => s.loss));
    if (final !== undefined) out[FINAL_LOSS_LABEL] = final;
    const bad = steps.filter((s) => typeof s.loss === 'number' && !Number.isFinite(s.loss)).length;
    if (bad) out['non-finite train losses'] = bad;
    const tps = steps.map((s) => s.tokens_per_s).filter(finite).sort((a, b) => a - b);
    if (tps.length) out['median tokens/s'] = Math.round(tps[Math.floor(tps.length / 2)]!);
  }
  const evals = data.evals.filter((e) => finite(e.t) && finite(e.val_loss));
  if (evals.length) {
    const last = evals[evals.length - 1]!;
    const best = evals.reduce((a, b) => ((b.val_loss as number) < (a.val_loss as number) ? b : a));
    out['final val loss'] = last.val_loss;
    if (finite(last.val_ppl)) out['final val perplexity'] = last.val_ppl;
    if (finite(last.val_bpb)) out['final val bits per byte'] = last.val_bpb;
    if (finite(last.val_ppl_bound)) out['final val perplexity bound (NELBO)'] = `${formatValue(last.val_ppl_bound)}${finite(last.val_ppl_bound_se) ? ` ± ${formatValue(last.val_ppl_bound_se)}` : ''}`;
    out['best val loss'] = `${formatValue(best.val_loss)} (t ${formatValue(best.t)})`;
  }
  if (data.phases.length) out['phases'] = data.phases.length;
  if (data.events.length) out['model events'] = data.events.length;
  return out;
}

function kvGrid(entries: [string, SummaryValue][]): string {
  return `<div class="kv">${entries.map(([k, v]) => `<div><span class="k">${escapeXml(k)}</span><span class="v">${escapeXml(summaryValue(v))}</span></div>`).join('')}</div>`;
}

function phaseTable(data: RunReportData): string {
  if (data.phases.length === 0) return '<p class="empty">No phases recorded.</p>';
  const rows = data.phases.map((p, i) => {
    const inPhase = (t: number) => t >= p.start_t && (t < p.end_t || (i === data.phases.length - 1 && t <= p.end_t));
    const steps = data.steps.filter((s) => finite(s.t) && (s.phase !== undefined && s.phase !== null ? s.phase === p.name : inPhase(s.t)));
    const lastLoss = finalTrainLoss(steps.map((s) => s.loss));
    const evals = data.evals.filter((e) => finite(e.t) && inPhase(e.t) && finite(e.val_loss));
    const lastVal = evals.length ? evals[evals.length - 1]!.val_loss : undefined;
    return `<tr><td><span class="swatch" style="background:${PHASE_COLORS[i % PHASE_COLORS.length]}"></span>${escapeXml(p.name)}</td>`
      + `<td class="num">${escapeXml(formatValue(p.start_t))}</td><td class="num">${escapeXml(formatValue(p.end_t))}</td>`
      + `<td class="num">${steps.length}</td><td class="num">${escapeXml(formatValue(lastLoss))}</td><td class="num">${escapeXml(formatValue(lastVal))}</td></tr>`;
  });
  return `<table><thead><tr><th>phase</th><th class="num">start t</th><th class="num">end t</th><th class="num">steps logged</th><th class="num">${escapeXml(FINAL_LOSS_LABEL)}</th><th class="num">last val loss</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function eventTable(ctx: ChartContext): string {
  if (ctx.events.length === 0) return '<p class="empty">No model events (grow, freeze, adapters, quantize) recorded.</p>';
  const rows = ctx.events.map((e) => {
    const st = EVENT_STYLE[e.kind] ?? EVENT_STYLE.grow;
    return `<tr><td class="num">${e.number}</td><td class="num">${escapeXml(formatValue(e.t))}</td><td class="num">${escapeXml(formatValue(e.step ?? null))}</td>`
      + `<td><span class="tag" style="background:${st.color}">${escapeXml(e.kind)}</span></td><td>${escapeXml(e.description)}</td></tr>`;
  });
  return `<table><thead><tr><th class="num">#</th><th class="num">t</th><th class="num">step</th><th>kind</th><th>description</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** A count with a unit prefix and 4 significant digits (1234567 → 1.235M). */
function compact(v: number | null | undefined): string {
  if (!finite(v)) return formatValue(v ?? null);
  const a = Math.abs(v);
  for (const [scale, unit] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) {
    if (a >= scale) return `${Number((v / scale).toPrecision(4))}${unit}`;
  }
  return String(Number(v.toPrecision(4)));
}

/** Bytes as MB (10⁶ bytes). */
function megabytes(v: number | null | undefined): string {
  if (!finite(v)) return formatValue(v ?? null);
  const mb = v / 1e6;
  if (mb === 0) return '0';
  if (Math.abs(mb) < 0.001) return '<0.001';
  return Math.abs(mb) < 10 ? mb.toFixed(3) : Math.abs(mb) < 1000 ? mb.toFixed(1) : mb.toFixed(0);
}

/** A right-aligned cell whose title holds the exact value. */
function numCell(text: string, exact: number | null | undefined): string {
  const title = finite(exact) ? ` title="${escapeXml(String(exact))}"` : '';
  return `<td class="num"${title}>${escapeXml(text)}</td>`;
}

/** Phases per resources table: with the row labels, 8 columns fit the page's 936 px (a 1400 px window). */
export const RESOURCE_PHASES_PER_TABLE = 8;

/**
 * Per-phase memory and compute (a progressive run's `resources` records), one column per phase
 * and one row per quantity, so the table keeps its width however many quantities there are; runs
 * with more phases get several tables of RESOURCE_PHASES_PER_TABLE phases.
 */
function resourcesTable(data: RunReportData, rows: ReportResources[]): string {
  const cachedText = (r: ReportResources): string => {
    const hits = finite(r.cache_hits) ? `, ${compact(r.cache_hits)} hits` : '';
    return (r.cached_activations_disk_bytes ? `${megabytes(r.cached_activations_memory_bytes)} + ${megabytes(r.cached_activations_disk_bytes)} disk` : megabytes(r.cached_activations_memory_bytes)) + hits;
  };
  const prefix = (r: ReportResources): string => (finite(r.cached_prefix_stacks) && r.cached_prefix_stacks > 0 ? ` (${r.cached_prefix_stacks} stack${r.cached_prefix_stacks === 1 ? '' : 's'})` : '');
  const quantities: [string, (r: ReportResources) => string][] = [
    ['start t', (r) => numCell(formatValue(r.t), r.t)],
    ['stacks', (r) => numCell(formatValue(r.stacks), r.stacks)],
    ['trainable params', (r) => numCell(compact(r.trainable_params), r.trainable_params)],
    ['frozen params', (r) => numCell(compact(r.frozen_params), r.frozen_params)],
    ['adapter params', (r) => numCell(compact(r.adapter_params), r.adapter_params)],
    ['weights MB', (r) => numCell(megabytes(r.weights_bytes), r.weights_bytes)],
    ['grads MB', (r) => numCell(megabytes(r.grads_bytes), r.grads_bytes)],
    ['optimizer state MB', (r) => numCell(megabytes(r.optimizer_state_bytes), r.optimizer_state_bytes)],
    ['cached activations MB', (r) => numCell(cachedText(r), r.cached_activations_memory_bytes)],
    ['total MB', (r) => numCell(megabytes(r.total_bytes), r.total_bytes)],
    ['train FLOPs / token', (r) => numCell(compact(r.train_flops_per_token), r.train_flops_per_token)],
    ['train FLOPs / token, cached prefix', (r) => numCell(`${compact(r.train_cached_flops_per_token)}${prefix(r)}`, r.train_cached_flops_per_token)],
  ];
  const tables: string[] = [];
  for (let i0 = 0; i0 < rows.length; i0 += RESOURCE_PHASES_PER_TABLE) {
    const chunk = rows.slice(i0, i0 + RESOURCE_PHASES_PER_TABLE);
    const head = chunk.map((r) => {
      const i = data.phases.findIndex((p) => p.name === r.phase);
      const swatch = i >= 0 ? `<span class="swatch" style="background:${PHASE_COLORS[i % PHASE_COLORS.length]}"></span>` : '';
      return `<th class="num">${swatch}${escapeXml(r.phase || '–')}</th>`;
    });
    const body = quantities.map(([label, cell]) => `<tr><th>${escapeXml(label)}</th>${chunk.map(cell).join('')}</tr>`);
    tables.push(`<table class="resources"><thead><tr><th>phase</th>${head.join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`);
  }
  const optimizers = [...new Set(rows.map((r) => r.optimizer).filter((o): o is string => typeof o === 'string' && o !== ''))];
  const note = `At each phase start, except the cached activations (and the run's cache hits so far), which are at the phase's end when the run uses an activation cache. MB = 10⁶ bytes; total = weights + grads + optimizer state${optimizers.length ? ` (${optimizers.join(', ')})` : ''} + cached activations in memory. `
    + 'Training FLOPs per token count a multiply-add as 2 (forward + backward); the cached column serves the frozen prefix from the activation cache.';
  return tables.join('') + `<p class="meta" style="margin:10px 0 0">${escapeXml(note)}</p>`;
}

export interface RenderHtmlOptions {
  /** File names of the separate SVG charts, by chart id (linked in the captions). */
  chartFiles?: Record<string, string>;
  /** Charts already rendered (standalone SVG by chart id), to avoid drawing them twice. */
  rendered?: Record<string, string>;
}

const SVG_NS = ' xmlns="http://www.w3.org/2000/svg"';

/** The whole report page. */
export function renderReportHtml(data: RunReportData, opts: RenderHtmlOptions = {}): string {
  const ctx = chartContext(data);
  const name = data.run_name || 'run';
  const generated = data.generated_at ?? new Date().toISOString();
  const summary: [string, SummaryValue][] = Object.entries(data.summary ?? {});
  const have = new Set(summary.map(([k]) => k));
  const derived = Object.entries(derivedSummary(data)).filter(([k]) => !have.has(k));
  const figures = REPORT_CHARTS.map((c) => {
    const file = opts.chartFiles?.[c.id];
    const pre = opts.rendered?.[c.id];
    const svg = pre !== undefined ? pre.replace(/^<\?xml[^>]*>\s*/, '').replace(SVG_NS, '').trimEnd() : c.render(ctx, false);
    return `<figure id="fig-${c.id}">${svg}<figcaption>${escapeXml(c.caption)}${file ? ` (Also saved as ${escapeXml(file)}.)` : ''}</figcaption></figure>`;
  });
  const stateLegend = STACK_STATES.map((s) => `<span class="swatch" style="background:${STATE_COLORS[s]}"></span>${s}`).join(' &#160; ');
  const notes = (data.notes ?? []).filter((n) => n);
  return `${reportHead(`Run report: ${name}`)}
<body>
<main>
<h1>${escapeXml(`Run report: ${name}`)}</h1>
<p class="meta">Generated ${escapeXml(generated)} · t is normalized training time (step k of T has t = k / T)</p>
<section id="summary"><h2>Summary</h2>${summary.length || derived.length ? kvGrid([...summary, ...derived]) : '<p class="empty">No summary.</p>'}</section>
${notes.length ? `<section class="notes" id="notes"><h2>Notes</h2><ul>${notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul></section>\n` : ''}${figures.join('\n')}
<section id="phases"><h2>Phases</h2>${phaseTable(data)}</section>
${data.resources?.length ? `<section id="resources"><h2>Memory and compute per phase</h2>${resourcesTable(data, data.resources)}</section>\n` : ''}<section id="events"><h2>Model events</h2>${eventTable(ctx)}<p class="meta" style="margin:10px 0 0">Stack states: ${stateLegend}</p></section>
</main>
<footer>stackwise run report · self-contained: no scripts, no external resources</footer>
</body>
</html>
`;
}
