/**
 * The run report's charts, as hand-written SVG: loss and validation loss, the stack timeline, the
 * learning rate and the throughput, all against normalized time t with the phases as shaded bands
 * and the model events (grow / freeze / adapters / quantize) as vertical lines.
 */
import type { ReportEvent, ReportPhase, RunEventKind, RunReportData, StackState } from './types.js';
import { RUN_EVENT_KINDS, STACK_STATES } from './types.js';
import { FINAL_LOSS_LABEL, finalTrainLoss } from './final-loss.js';
import {
  downsample, ema, escapeXml, extent, fitText, formatValue, linearScale, niceDomain, pathThrough, px, textWidth, tickFormatter, ticksIn,
  type Scale,
} from './svg.js';

export const CHART_WIDTH = 880;
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, DejaVu Sans, sans-serif';
const MARGIN = { left: 66, right: 18 };
const TITLE_H = 30;
const PHASE_STRIP = 18;
const EVENT_STRIP = 18;
const TOP = TITLE_H + PHASE_STRIP + EVENT_STRIP;
const LINE_PLOT_H = 230;

/** Pale fills for phase bands, by phase index (also used by the HTML phase table). */
export const PHASE_COLORS = ['#dbeafe', '#dcfce7', '#fef3c7', '#f3e8ff', '#ffe4e6', '#cffafe', '#e0e7ff', '#fae8ff', '#ecfccb', '#fee2e2'];
export const STATE_COLORS: Record<StackState, string> = { trainable: '#16a34a', frozen: '#94a3b8', adapted: '#f59e0b', quantized: '#8b5cf6' };
export const EVENT_STYLE: Record<RunEventKind, { color: string; dash: string; label: string }> = {
  grow: { color: '#dc2626', dash: '', label: 'grow' },
  freeze: { color: '#2563eb', dash: '5 3', label: 'freeze' },
  adapters: { color: '#d97706', dash: '5 3', label: 'adapters' },
  quantize: { color: '#7c3aed', dash: '2 3', label: 'quantize' },
};
const COLORS = {
  loss: '#1d4ed8', lossRaw: '#93c5fd', val: '#ea580c', lr: '#059669', tps: '#0e7490', tpsRaw: '#67e8f9',
  axis: '#475569', grid: '#e2e8f0', frame: '#cbd5e1', text: '#1e293b', muted: '#64748b', bad: '#dc2626',
};

/** What every chart shares: x domain, end of the run, event numbering. */
export interface ChartContext {
  data: RunReportData;
  xDomain: [number, number];
  /** t where the run's data ends (the last stack snapshot lasts until here). */
  endT: number;
  /** Events sorted by t, numbered 1… in that order. */
  events: (ReportEvent & { number: number })[];
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function chartContext(data: RunReportData): ChartContext {
  const ts: number[] = [];
  for (const s of data.steps) if (finite(s.t)) ts.push(s.t);
  for (const e of data.evals) if (finite(e.t)) ts.push(e.t);
  for (const e of data.events) if (finite(e.t)) ts.push(e.t);
  for (const s of data.stack_timeline) if (finite(s.t)) ts.push(s.t);
  const phaseTs = data.phases.flatMap((p) => [p.start_t, p.end_t]).filter(finite);
  const all = [...ts, ...phaseTs];
  const [allLo, allHi] = extent(all) ?? [0, 1];
  const lo = Math.min(0, allLo);
  const hi = Math.max(1, allHi);
  let endT = extent(ts)?.[1] ?? 1;
  // A finished run's last step is at t = (T-1)/T: extend to the end of the interval it covers.
  const stepTs = data.steps.map((s) => s.t).filter(finite).sort((a, b) => a - b);
  if (stepTs.length >= 2) {
    const last = stepTs[stepTs.length - 1]!;
    const spacing = last - stepTs[stepTs.length - 2]!;
    if (last >= endT && last + spacing >= 1 - 1e-9) endT = Math.max(endT, Math.min(1, last + spacing));
  }
  const events = data.events
    .filter((e) => finite(e.t))
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.t - b.e.t || a.i - b.i)
    .map(({ e }, i) => ({ ...e, number: i + 1 }));
  return { data, xDomain: [lo, hi], endT, events };
}

// ---- shared pieces -------------------------------------------------------------------------------

interface Frame {
  id: string;
  width: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  x: Scale;
}

function frameOf(id: string, ctx: ChartContext, plotH: number): Frame {
  const left = MARGIN.left;
  const right = CHART_WIDTH - MARGIN.right;
  return { id, width: CHART_WIDTH, left, right, top: TOP, bottom: TOP + plotH, x: linearScale(ctx.xDomain, [left, right]) };
}

function svgOpen(id: string, width: number, height: number, title: string, standalone: boolean): string {
  const ns = standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  return `<svg${ns} id="chart-${escapeXml(id)}" class="chart" width="${width}" height="${px(height)}" viewBox="0 0 ${width} ${px(height)}" font-family="${FONT}" font-size="11" role="img" aria-label="${escapeXml(title)}">`
    + `<title>${escapeXml(title)}</title>`
    + `<rect x="0" y="0" width="${width}" height="${px(height)}" fill="#ffffff"/>`;
}

function header(f: Frame, title: string, subtitle: string): string {
  let s = `<text x="${f.left}" y="20" font-size="14" font-weight="600" fill="${COLORS.text}">${escapeXml(title)}</text>`;
  if (subtitle) {
    const room = f.right - f.left - textWidth(title, 14) - 24;
    const sub = fitText(subtitle, 11, room);
    if (sub) s += `<text x="${f.right}" y="20" text-anchor="end" fill="${COLORS.muted}">${escapeXml(sub)}</text>`;
  }
  return s;
}

function clipDef(f: Frame): string {
  return `<defs><clipPath id="${escapeXml(f.id)}-plot"><rect x="${f.left}" y="${f.top}" width="${f.right - f.left}" height="${f.bottom - f.top}"/></clipPath></defs>`;
}

/** Shaded phase intervals (from the phase-label strip down to the x axis) with their names. */
function phaseBands(f: Frame, phases: ReportPhase[]): string {
  const parts: string[] = [];
  const bandTop = TITLE_H;
  phases.forEach((p, i) => {
    if (!finite(p.start_t) || !finite(p.end_t)) return;
    const x0 = Math.max(f.left, f.x(Math.min(p.start_t, p.end_t)));
    const x1 = Math.min(f.right, f.x(Math.max(p.start_t, p.end_t)));
    if (!(x1 > x0)) return;
    const color = PHASE_COLORS[i % PHASE_COLORS.length]!;
    parts.push(`<g class="phase"><title>${escapeXml(`phase ${p.name}: t ${formatValue(p.start_t)} – ${formatValue(p.end_t)}`)}</title>`
      + `<rect x="${px(x0)}" y="${bandTop}" width="${px(x1 - x0)}" height="${px(f.bottom - bandTop)}" fill="${color}" fill-opacity="0.75"/>`);
    const label = fitText(p.name, 11, x1 - x0 - 8);
    if (label) parts.push(`<text x="${px(x0 + 4)}" y="${bandTop + 13}" fill="#334155">${escapeXml(label)}</text>`);
    parts.push('</g>');
    if (i > 0) parts.push(`<line x1="${px(x0)}" x2="${px(x0)}" y1="${bandTop}" y2="${f.bottom}" stroke="#ffffff" stroke-width="1.5"/>`);
  });
  return parts.join('');
}

/** Vertical event lines across the plot, with numbered markers in the strip above it. */
function eventLines(f: Frame, ctx: ChartContext): string {
  const parts: string[] = [];
  const markers: { x: number; e: ChartContext['events'][number] }[] = [];
  for (const e of ctx.events) {
    const x = f.x(e.t);
    if (x < f.left - 0.5 || x > f.right + 0.5) continue;
    const st = EVENT_STYLE[e.kind] ?? EVENT_STYLE.grow;
    parts.push(`<line class="event event-${escapeXml(e.kind)}" x1="${px(x)}" x2="${px(x)}" y1="${f.top}" y2="${f.bottom}" stroke="${st.color}" stroke-width="${e.kind === 'grow' ? 1.6 : 1.2}"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}><title>${escapeXml(`#${e.number} ${e.kind} at t ${formatValue(e.t)}: ${e.description}`)}</title></line>`);
    markers.push({ x, e });
  }
  // Markers: no overlap, kept inside the plot's width; a short leader joins a shifted marker to its line.
  const r = 7;
  const gap = 2 * r + 2;
  const xs = markers.map((m) => m.x);
  for (let i = 1; i < xs.length; i++) xs[i] = Math.max(xs[i]!, xs[i - 1]! + gap);
  const overflow = xs.length ? xs[xs.length - 1]! - (f.right - r) : 0;
  if (overflow > 0) {
    for (let i = xs.length - 1; i >= 0; i--) {
      xs[i] = Math.min(xs[i]!, (i === xs.length - 1 ? f.right - r : xs[i + 1]! - gap));
    }
  }
  const cy = f.top - EVENT_STRIP / 2;
  markers.forEach((m, i) => {
    const st = EVENT_STYLE[m.e.kind] ?? EVENT_STYLE.grow;
    const mx = Math.max(f.left - 40, xs[i]!);
    if (Math.abs(mx - m.x) > 0.5) parts.push(`<line x1="${px(mx)}" y1="${px(cy + r)}" x2="${px(m.x)}" y2="${f.top}" stroke="${st.color}" stroke-width="1"/>`);
    const label = String(m.e.number);
    parts.push(`<g class="event-marker"><title>${escapeXml(`#${m.e.number} ${m.e.kind} at t ${formatValue(m.e.t)}: ${m.e.description}`)}</title>`
      + `<circle cx="${px(mx)}" cy="${px(cy)}" r="${r}" fill="${st.color}"/>`
      + `<text x="${px(mx)}" y="${px(cy + 3.5)}" text-anchor="middle" font-size="${label.length > 2 ? 7 : 9}" font-weight="600" fill="#ffffff">${escapeXml(label)}</text></g>`);
  });
  return parts.join('');
}

function xAxis(f: Frame, label = 't (normalized training time)'): string {
  const [d0, d1] = f.x.domain;
  const step = d1 - d0 <= 1.0001 ? 0.1 : niceDomain(d0, d1, 10).step;
  const ticks = ticksIn(d0, d1, step);
  const fmt = tickFormatter(step, Math.max(Math.abs(d0), Math.abs(d1)));
  const parts = [`<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`];
  for (const t of ticks) {
    const x = f.x(t);
    parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${f.bottom}" y2="${f.bottom + 5}" stroke="${COLORS.axis}"/>`
      + `<text x="${px(x)}" y="${f.bottom + 17}" text-anchor="middle" fill="${COLORS.axis}">${escapeXml(fmt(t))}</text>`);
  }
  parts.push(`<text x="${px((f.left + f.right) / 2)}" y="${f.bottom + 34}" text-anchor="middle" fill="${COLORS.axis}">${escapeXml(label)}</text>`);
  return parts.join('');
}

function yAxis(f: Frame, y: Scale, ticks: number[], fmt: (v: number) => string, label: string): string {
  const parts: string[] = [];
  for (const v of ticks) {
    const yy = y(v);
    parts.push(`<line x1="${f.left}" x2="${f.right}" y1="${px(yy)}" y2="${px(yy)}" stroke="${COLORS.grid}" stroke-opacity="0.9"/>`);
  }
  parts.push(`<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.bottom}" stroke="${COLORS.axis}"/>`);
  for (const v of ticks) {
    const yy = y(v);
    parts.push(`<line x1="${f.left - 5}" x2="${f.left}" y1="${px(yy)}" y2="${px(yy)}" stroke="${COLORS.axis}"/>`
      + `<text x="${f.left - 8}" y="${px(yy + 4)}" text-anchor="end" fill="${COLORS.axis}">${escapeXml(fmt(v))}</text>`);
  }
  const cy = (f.top + f.bottom) / 2;
  parts.push(`<text x="14" y="${px(cy)}" text-anchor="middle" transform="rotate(-90 14 ${px(cy)})" fill="${COLORS.axis}">${escapeXml(label)}</text>`);
  return parts.join('');
}

interface LegendItem {
  label: string;
  color: string;
  kind: 'line' | 'marker' | 'swatch' | 'cross';
  dash?: string;
  width?: number;
}

/** Legend rows (wrapped to the chart width): the height they need and their SVG at a given y. */
function legend(f: Frame, items: LegendItem[]): { height: number; render: (y: number) => string } {
  const rows: { item: LegendItem; x: number }[][] = [[]];
  let x = f.left;
  for (const item of items) {
    const w = 26 + textWidth(item.label, 11) + 16;
    if (x + w > f.right && rows[rows.length - 1]!.length > 0) { rows.push([]); x = f.left; }
    rows[rows.length - 1]!.push({ item, x });
    x += w;
  }
  const height = items.length === 0 ? 0 : rows.length * 18;
  return {
    height,
    render: (y0) => rows.map((row, r) => row.map(({ item, x: ix }) => {
      const y = y0 + r * 18 + 9;
      let sym: string;
      if (item.kind === 'swatch') sym = `<rect x="${px(ix)}" y="${px(y - 6)}" width="20" height="12" rx="2" fill="${item.color}"/>`;
      else if (item.kind === 'marker') sym = `<line x1="${px(ix)}" x2="${px(ix + 20)}" y1="${px(y)}" y2="${px(y)}" stroke="${item.color}" stroke-width="1.5"/><circle cx="${px(ix + 10)}" cy="${px(y)}" r="3.5" fill="#ffffff" stroke="${item.color}" stroke-width="1.8"/>`;
      else if (item.kind === 'cross') sym = crossAt(ix + 10, y, item.color);
      else sym = `<line x1="${px(ix)}" x2="${px(ix + 20)}" y1="${px(y)}" y2="${px(y)}" stroke="${item.color}" stroke-width="${item.width ?? 2}"${item.dash ? ` stroke-dasharray="${item.dash}"` : ''}/>`;
      return `<g class="legend-item">${sym}<text x="${px(ix + 26)}" y="${px(y + 4)}" fill="${COLORS.text}">${escapeXml(item.label)}</text></g>`;
    }).join('')).join(''),
  };
}

function crossAt(x: number, y: number, color: string): string {
  const d = 4;
  return `<path d="M${px(x - d)} ${px(y - d)}L${px(x + d)} ${px(y + d)}M${px(x - d)} ${px(y + d)}L${px(x + d)} ${px(y - d)}" stroke="${color}" stroke-width="2"/>`;
}

function eventLegendItems(ctx: ChartContext): LegendItem[] {
  const kinds = RUN_EVENT_KINDS.filter((k) => ctx.events.some((e) => e.kind === k));
  return kinds.map((k) => ({ label: `${EVENT_STYLE[k].label} event`, color: EVENT_STYLE[k].color, kind: 'line' as const, dash: EVENT_STYLE[k].dash, width: 1.6 }));
}

function noData(f: Frame, text: string): string {
  return `<text class="no-data" x="${px((f.left + f.right) / 2)}" y="${px((f.top + f.bottom) / 2)}" text-anchor="middle" font-size="13" fill="${COLORS.muted}">${escapeXml(text)}</text>`;
}

function frameRect(f: Frame): string {
  return `<rect x="${f.left}" y="${f.top}" width="${f.right - f.left}" height="${f.bottom - f.top}" fill="none" stroke="${COLORS.frame}"/>`;
}

// ---- line charts ---------------------------------------------------------------------------------

interface Series {
  label: string;
  color: string;
  width: number;
  points: { t: number; v: number }[];
  markers?: boolean;
  opacity?: number;
  /** Counted for the y range (default true). */
  inDomain?: boolean;
  /** Shown in the legend (default true). */
  inLegend?: boolean;
}

interface LineChartSpec {
  id: string;
  title: string;
  subtitle: string;
  yLabel: string;
  series: Series[];
  /** Points where the value was NaN/±Infinity (marked with a red cross at the top). */
  nonFinite?: number[];
  includeZero?: boolean;
  emptyText: string;
  /** The x axis' label (default: normalized training time t). */
  xLabel?: string;
}

const MAX_POINTS = 2400;

function lineChart(ctx: ChartContext, spec: LineChartSpec, standalone: boolean): string {
  const f = frameOf(spec.id, ctx, LINE_PLOT_H);
  const values: number[] = [];
  for (const s of spec.series) if (s.inDomain !== false) for (const p of s.points) if (finite(p.v) && finite(p.t)) values.push(p.v);
  const empty = values.length === 0 && (spec.nonFinite?.length ?? 0) === 0;
  let [lo, hi] = extent(values) ?? [0, 1];
  if (spec.includeZero) { lo = Math.min(0, lo); hi = Math.max(0, hi); if (lo === 0 && hi === 0) hi = 1; }
  const { domain, ticks, step } = niceDomain(lo, hi, 5);
  const y = linearScale(domain, [f.bottom, f.top]);
  const fmt = tickFormatter(step, Math.max(Math.abs(domain[0]), Math.abs(domain[1])));

  const items: LegendItem[] = spec.series.filter((s) => s.inLegend !== false && s.points.length > 0)
    .map((s) => ({ label: s.label, color: s.color, kind: s.markers ? 'marker' as const : 'line' as const, width: Math.max(1.5, s.width) }));
  if (spec.nonFinite?.length) items.push({ label: 'NaN / ∞', color: COLORS.bad, kind: 'cross' });
  items.push(...eventLegendItems(ctx));
  const lg = legend(f, items);
  const height = f.bottom + 44 + lg.height + 6;

  const parts: string[] = [svgOpen(spec.id, f.width, height, spec.title, standalone), clipDef(f), header(f, spec.title, spec.subtitle)];
  parts.push(phaseBands(f, ctx.data.phases));
  parts.push(yAxis(f, y, empty ? [] : ticks, fmt, spec.yLabel));
  parts.push(`<g clip-path="url(#${escapeXml(spec.id)}-plot)">`);
  for (const s of spec.series) {
    const pts = downsample(s.points.filter((p) => finite(p.t)), (p) => p.t, (p) => p.v, MAX_POINTS);
    const d = pathThrough(pts.map((p) => [f.x(p.t), finite(p.v) ? y(p.v) : NaN]));
    if (d) parts.push(`<path class="series" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width}" stroke-linejoin="round" stroke-linecap="round"${s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : ''}/>`);
    if (s.markers) {
      for (const p of pts) {
        if (!finite(p.v)) continue;
        parts.push(`<circle cx="${px(f.x(p.t))}" cy="${px(y(p.v))}" r="3.2" fill="#ffffff" stroke="${s.color}" stroke-width="1.8"><title>${escapeXml(`${s.label} ${formatValue(p.v)} at t ${formatValue(p.t)}`)}</title></circle>`);
      }
    }
  }
  parts.push('</g>');
  for (const t of spec.nonFinite ?? []) {
    const x = f.x(t);
    if (x >= f.left && x <= f.right) parts.push(`<g class="nonfinite"><title>${escapeXml(`non-finite value at t ${formatValue(t)}`)}</title>${crossAt(x, f.top + 7, COLORS.bad)}</g>`);
  }
  parts.push(eventLines(f, ctx));
  parts.push(frameRect(f));
  parts.push(xAxis(f, spec.xLabel));
  if (empty) parts.push(noData(f, spec.emptyText));
  parts.push(lg.render(f.bottom + 44));
  parts.push('</svg>');
  return parts.join('');
}

/** One line of an x/y chart over any x quantity (`xyLineChart`). */
export interface XYSeries {
  label: string;
  color: string;
  points: { x: number; y: number }[];
  width?: number;
  markers?: boolean;
}

/**
 * A line chart over another x than t (e.g. training FLOPs), drawn like the report's loss chart:
 * shaded bands (x intervals, e.g. the phases of one of the runs), nice ticks, legend.
 */
export function xyLineChart(spec: {
  id: string; title: string; subtitle: string; xLabel: string; yLabel: string; series: XYSeries[];
  bands?: { name: string; x0: number; x1: number }[]; emptyText?: string;
}, standalone = false): string {
  const xs = spec.series.flatMap((s) => s.points.map((p) => p.x)).filter(finite);
  const [x0, x1] = extent(xs) ?? [0, 1];
  const data = { run_name: spec.id, phases: (spec.bands ?? []).map((b) => ({ name: b.name, start_t: b.x0, end_t: b.x1 })), steps: [], evals: [], events: [], stack_timeline: [], summary: {} };
  const xDomain = niceDomain(Math.min(0, x0), x1, 10).domain;
  const ctx: ChartContext = { data, xDomain, endT: xDomain[1], events: [] };
  const series: Series[] = spec.series.map((s) => ({ label: s.label, color: s.color, width: s.width ?? 1.8, points: s.points.map((p) => ({ t: p.x, v: p.y })), ...(s.markers ? { markers: true } : {}) }));
  return lineChart(ctx, { id: spec.id, title: spec.title, subtitle: spec.subtitle, xLabel: spec.xLabel, yLabel: spec.yLabel, series, emptyText: spec.emptyText ?? 'no data' }, standalone);
}

/** Smoothing weight for n noisy points (no smoothing below 20 points). */
function smoothingWeight(n: number): number {
  if (n < 20) return 0;
  const window = Math.max(2, Math.round(n / 50));
  return Math.min(0.98, 1 - 1 / window);
}

function lastFinite(values: (number | null | undefined)[]): number | undefined {
  for (let i = values.length - 1; i >= 0; i--) { const v = values[i]; if (finite(v)) return v; }
  return undefined;
}

export function lossChart(ctx: ChartContext, standalone = false): string {
  const steps = ctx.data.steps.filter((s) => finite(s.t) && s.loss !== undefined && s.loss !== null);
  const raw = steps.map((s) => ({ t: s.t, v: s.loss as number }));
  const w = smoothingWeight(raw.length);
  const series: Series[] = [];
  let smooth: number[] = [];
  if (w > 0) {
    smooth = ema(raw.map((p) => p.v), w, (i) => i > 0 && (steps[i]!.phase ?? null) !== (steps[i - 1]!.phase ?? null));
    series.push({ label: 'train loss', color: COLORS.lossRaw, width: 1, points: raw, opacity: 0.9 });
    series.push({ label: 'train loss (smoothed)', color: COLORS.loss, width: 2, points: raw.map((p, i) => ({ t: p.t, v: smooth[i]! })), inDomain: false });
  } else {
    series.push({ label: 'train loss', color: COLORS.loss, width: 1.8, points: raw });
  }
  const evals = ctx.data.evals.filter((e) => finite(e.t) && e.val_loss !== null && e.val_loss !== undefined);
  const val = evals.map((e) => ({ t: e.t, v: e.val_loss as number }));
  series.push({ label: 'validation loss', color: COLORS.val, width: 1.8, points: val, markers: true });
  const nonFinite = [...raw, ...val].filter((p) => !finite(p.v)).map((p) => p.t);
  const sub: string[] = [];
  const lt = finalTrainLoss(raw.map((p) => p.v));
  if (lt !== undefined) sub.push(`${FINAL_LOSS_LABEL} ${formatValue(lt)}`);
  const lv = lastFinite(val.map((p) => p.v));
  if (lv !== undefined) sub.push(`final val ${formatValue(lv)}`);
  return lineChart(ctx, { id: 'loss', title: 'Loss', subtitle: sub.join(' · '), yLabel: 'loss', series, nonFinite, emptyText: 'no loss recorded' }, standalone);
}

export function lrChart(ctx: ChartContext, standalone = false): string {
  const pts = ctx.data.steps.filter((s) => finite(s.t) && s.lr !== undefined && s.lr !== null).map((s) => ({ t: s.t, v: s.lr as number }));
  const finiteVals = pts.map((p) => p.v).filter(finite);
  const sub = finiteVals.length ? `peak ${formatValue(extent(finiteVals)![1])} · final ${formatValue(lastFinite(pts.map((p) => p.v)))}` : '';
  return lineChart(ctx, {
    id: 'lr', title: 'Learning rate', subtitle: sub, yLabel: 'learning rate', includeZero: true,
    series: [{ label: 'learning rate', color: COLORS.lr, width: 1.8, points: pts }],
    nonFinite: pts.filter((p) => !finite(p.v)).map((p) => p.t), emptyText: 'no learning rate recorded',
  }, standalone);
}

export function throughputChart(ctx: ChartContext, standalone = false): string {
  const steps = ctx.data.steps.filter((s) => finite(s.t) && s.tokens_per_s !== undefined && s.tokens_per_s !== null);
  const raw = steps.map((s) => ({ t: s.t, v: s.tokens_per_s as number }));
  const w = smoothingWeight(raw.length);
  const series: Series[] = [];
  if (w > 0) {
    const sm = ema(raw.map((p) => p.v), w, (i) => i > 0 && (steps[i]!.phase ?? null) !== (steps[i - 1]!.phase ?? null));
    series.push({ label: 'tokens/s', color: COLORS.tpsRaw, width: 1, points: raw });
    series.push({ label: 'tokens/s (smoothed)', color: COLORS.tps, width: 2, points: raw.map((p, i) => ({ t: p.t, v: sm[i]! })), inDomain: false });
  } else {
    series.push({ label: 'tokens/s', color: COLORS.tps, width: 1.8, points: raw });
  }
  const vals = raw.map((p) => p.v).filter(finite).sort((a, b) => a - b);
  const median = vals.length ? vals[Math.floor(vals.length / 2)]! : undefined;
  return lineChart(ctx, {
    id: 'throughput', title: 'Throughput', subtitle: median !== undefined ? `median ${formatValue(Math.round(median))} tokens/s` : '',
    yLabel: 'tokens / s', includeZero: true, series,
    nonFinite: raw.filter((p) => !finite(p.v)).map((p) => p.t), emptyText: 'no throughput recorded',
  }, standalone);
}

// ---- stack timeline ------------------------------------------------------------------------------

function statesOf(s: StackState | StackState[]): StackState[] {
  const list = (Array.isArray(s) ? s : [s]).filter((x): x is StackState => (STACK_STATES as readonly string[]).includes(x));
  return STACK_STATES.filter((x) => list.includes(x));
}

export function stackTimelineChart(ctx: ChartContext, standalone = false): string {
  const timeline = ctx.data.stack_timeline.filter((s) => finite(s.t)).map((s, i) => ({ s, i })).sort((a, b) => a.s.t - b.s.t || a.i - b.i).map(({ s }) => s);
  let maxIndex = -1;
  for (const snap of timeline) for (const st of snap.stacks) if (Number.isInteger(st.index) && st.index >= 0 && st.index < 10_000) maxIndex = Math.max(maxIndex, st.index);
  const rows = Math.max(1, maxIndex + 1);
  const rowH = rows > 16 ? 12 : 20;
  const rowGap = rows > 16 ? 3 : 6;
  const pad = 8;
  const plotH = pad * 2 + rows * rowH + (rows - 1) * rowGap;
  const f = frameOf('stacks', ctx, plotH);
  const rowY = (i: number) => f.top + pad + (rows - 1 - i) * (rowH + rowGap);

  const items: LegendItem[] = STACK_STATES.map((s) => ({ label: s, color: STATE_COLORS[s], kind: 'swatch' as const }));
  items.push({ label: 'not built yet', color: '#e2e8f0', kind: 'swatch' });
  items.push(...eventLegendItems(ctx));
  const lg = legend(f, items);
  const height = f.bottom + 44 + lg.height + 6;

  const n = maxIndex + 1;
  const sub = n > 0 ? `${n} stack${n === 1 ? '' : 's'} at most · ${timeline.length} snapshot${timeline.length === 1 ? '' : 's'}` : '';
  const parts: string[] = [svgOpen('stacks', f.width, height, 'Stacks over time', standalone), clipDef(f), header(f, 'Stacks over time', sub)];
  parts.push(phaseBands(f, ctx.data.phases));
  parts.push(`<g clip-path="url(#stacks-plot)">`);
  // Segments: for each stack, runs of the same state set merged.
  const end = Math.max(ctx.endT, timeline.length ? timeline[timeline.length - 1]!.t : 0);
  for (let idx = 0; idx < n; idx++) {
    const y0 = rowY(idx);
    parts.push(`<rect x="${f.left}" y="${px(y0)}" width="${f.right - f.left}" height="${rowH}" fill="#f8fafc" fill-opacity="0.6"/>`);
    const segs: { states: StackState[]; t0: number; t1: number }[] = [];
    let curKey = '';
    let curStates: StackState[] = [];
    let curT0 = 0;
    for (let j = 0; j < timeline.length; j++) {
      const snap = timeline[j]!;
      const entry = snap.stacks.find((s) => s.index === idx);
      const states = entry ? statesOf(entry.state) : [];
      const key = states.join('+');
      if (j === 0 || key !== curKey) {
        if (j > 0 && curStates.length) segs.push({ states: curStates, t0: curT0, t1: snap.t });
        curKey = key; curStates = states; curT0 = snap.t;
      }
    }
    if (timeline.length && curStates.length) segs.push({ states: curStates, t0: curT0, t1: end });
    for (const seg of segs) {
      const x0 = f.x(seg.t0);
      const x1 = Math.max(x0 + 1, f.x(seg.t1));
      const tip = `stack ${idx}: ${seg.states.join(' + ')}, t ${formatValue(seg.t0)} – ${formatValue(seg.t1)}`;
      const h = rowH / seg.states.length;
      parts.push(`<g class="segment state-${seg.states.join('-')}"><title>${escapeXml(tip)}</title>`);
      seg.states.forEach((s, k) => {
        parts.push(`<rect x="${px(x0)}" y="${px(y0 + k * h)}" width="${px(x1 - x0)}" height="${px(h)}" fill="${STATE_COLORS[s]}"/>`);
      });
      const label = fitText(seg.states.join(' + '), rowH >= 18 ? 10 : 8, x1 - x0 - 8);
      if (label) parts.push(`<text x="${px(x0 + 4)}" y="${px(y0 + rowH / 2 + (rowH >= 18 ? 3.5 : 3))}" font-size="${rowH >= 18 ? 10 : 8}" fill="#ffffff" font-weight="600">${escapeXml(label)}</text>`);
      parts.push('</g>');
    }
  }
  parts.push('</g>');
  for (let idx = 0; idx < n; idx++) {
    if (rows <= 16 || idx % Math.ceil(rows / 16) === 0) {
      parts.push(`<text x="${f.left - 8}" y="${px(rowY(idx) + rowH / 2 + 4)}" text-anchor="end" fill="${COLORS.axis}">${escapeXml(`stack ${idx}`)}</text>`);
    }
  }
  parts.push(eventLines(f, ctx));
  parts.push(frameRect(f));
  parts.push(xAxis(f));
  if (n === 0) parts.push(noData(f, 'no stack states recorded'));
  parts.push(lg.render(f.bottom + 44));
  parts.push('</svg>');
  return parts.join('');
}

export interface ReportChart {
  /** File stem and element id: loss, stacks, lr, throughput. */
  id: string;
  title: string;
  caption: string;
  render: (ctx: ChartContext, standalone?: boolean) => string;
}

export const REPORT_CHARTS: readonly ReportChart[] = [
  { id: 'loss', title: 'Loss', caption: 'Training loss (light: every logged step; dark: smoothed, restarted at each phase) and validation loss against t. Shaded bands are the phases; vertical lines are model events, numbered as in the events table.', render: lossChart },
  { id: 'stacks', title: 'Stacks over time', caption: 'Which stacks existed and whether each was trainable, frozen, carried LoRA adapters (adapted) or was stored quantized, from each snapshot until the next. Each row is one stack, by its index in the final rack (stack 0 ends up nearest the embedding; a right→left run builds the highest index first).', render: stackTimelineChart },
  { id: 'lr', title: 'Learning rate', caption: 'Learning rate against t.', render: lrChart },
  { id: 'throughput', title: 'Throughput', caption: 'Training throughput in tokens per second against t (light: every logged step; dark: smoothed, restarted at each phase).', render: throughputChart },
];
