/**
 * What the dashboard shows of one run, built from its metrics records through the run report's
 * reader (`metricsToReportData`, src/io/report): the phases, evaluations, model events, stack
 * timeline and per-phase resources come from there. The step series adds what the report does not
 * carry but the charts need: the lr of every parameter group (`lrs`), the tokens and the estimated
 * training FLOPs seen so far (`tokens_seen`, `flops_seen`), so that runs can be compared at equal
 * tokens or compute.
 *
 * Series are columns (one array per field, uPlot's layout); a long run is thinned to at most
 * MAX_STEP_POINTS points by keeping every `stride`-th step, stride a power of two, so a response
 * stays bounded and the points already sent stay valid as the run grows (only a change of stride
 * resends the series).
 */
import { chartContext, derivedSummary, metricsToReportData, stackTimelineChart, type ReportPhase, type ReportResources, type RunReportData, type SummaryValue } from '../report/index.js';
import type { MetricsRecord } from '../metrics-jsonl.js';
import type { RunStatus } from './run-status.js';

/** Points per step series sent to a page. */
export const MAX_STEP_POINTS = 4000;
/** Rows of the events table and evaluations kept (the latest). */
export const MAX_TABLE_ROWS = 2000;
/** Samples kept (the latest), and characters of each. */
const MAX_SAMPLES = 100;
const MAX_SAMPLE_CHARS = 4000;

type Num = number | null;

export interface StepColumns {
  /** Every stride-th step is kept. */
  stride: number;
  step: number[];
  t: Num[];
  tokens: Num[];
  flops: Num[];
  loss: Num[];
  tokens_per_s: Num[];
  /** Scheduled lr (before group scales). */
  lr: Num[];
  /** lr per parameter group (null where the group did not exist yet). */
  lrs: Record<string, Num[]>;
}

export interface EvalRow {
  step: Num;
  t: Num;
  tokens: Num;
  flops: Num;
  val_loss: Num;
  val_ppl: Num;
}

export interface EventRow {
  t: Num;
  step: Num;
  kind: string;
  description: string;
}

export interface SampleRow {
  step: Num;
  t: Num;
  prompt: string;
  text: string;
}

/** Everything a run page draws. */
export interface RunView {
  name: string;
  status: RunStatus;
  config: string;
  total_steps: number | null;
  /** ISO time of the metrics file's last change. */
  updated: string | null;
  /** Index of the last step logged (-1 before the first). */
  last_step: number;
  steps: StepColumns;
  evals: EvalRow[];
  phases: ReportPhase[];
  /** Model events (grow / freeze / adapters / quantize) with their t, for the chart markers. */
  markers: EventRow[];
  /** Model events plus the session's own (phases, checkpoints, resume, divergence), in order. */
  events: EventRow[];
  /** The stack timeline, drawn by the run report's SVG code. */
  stack_svg: string;
  resources: ReportResources[];
  samples: SampleRow[];
  summary: Record<string, SummaryValue>;
  notes: string[];
  /** Records read, lines skipped as malformed, bytes of a half-written last line. */
  counts: { records: number; malformed: number; pending_bytes: number };
}

const fin = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const kindOf = (r: MetricsRecord): string => String(r['type'] ?? r['kind'] ?? '');

/** The smallest power-of-two stride that keeps n points within MAX_STEP_POINTS. */
export function strideFor(n: number): number {
  let stride = 1;
  while (Math.ceil(n / stride) > MAX_STEP_POINTS) stride *= 2;
  return stride;
}

interface StepExtras {
  tokens: Num;
  flops: Num;
  lrs: Record<string, number> | null;
}

/**
 * tokens_seen, flops_seen and lrs of every step record, by step. Runs written before steps carried
 * flops_seen get it from each phase's FLOPs per token (its phase_end result, else its resources
 * record) times the tokens of each step.
 */
function stepExtras(records: readonly MetricsRecord[], data: RunReportData): Map<number, StepExtras> {
  const perToken = new Map<string, number>();
  for (const r of data.resources ?? []) if (fin(r.train_flops_per_token) !== null) perToken.set(r.phase, r.train_flops_per_token!);
  for (const r of records) {
    if (kindOf(r) !== 'phase_end') continue;
    const res = r['result'] as Record<string, unknown> | undefined;
    const flops = fin(res?.['flops']);
    const tokens = fin(res?.['tokens']);
    if (typeof r['phase'] === 'string' && flops !== null && tokens) perToken.set(r['phase'], flops / tokens);
  }
  const out = new Map<number, StepExtras>();
  let flopsSum = 0;
  let flopsKnown = true;
  for (const r of records) {
    if (kindOf(r) !== 'step') continue;
    const step = fin(r['step']);
    if (step === null) continue;
    let flops = fin(r['flops_seen']);
    if (flops === null && flopsKnown) {
      const rate = typeof r['phase'] === 'string' ? perToken.get(r['phase']) : undefined;
      const tokens = fin(r['tokens']);
      if (rate === undefined || tokens === null) flopsKnown = false;
      else flops = flopsSum += rate * tokens;
    }
    const lrs = r['lrs'] && typeof r['lrs'] === 'object' ? (r['lrs'] as Record<string, number>) : null;
    out.set(step, { tokens: fin(r['tokens_seen']), flops, lrs });
  }
  return out;
}

function stepColumns(data: RunReportData, extras: Map<number, StepExtras>): StepColumns {
  const stride = strideFor(data.steps.length);
  const cols: StepColumns = { stride, step: [], t: [], tokens: [], flops: [], loss: [], tokens_per_s: [], lr: [], lrs: {} };
  for (let i = 0; i < data.steps.length; i += stride) {
    const s = data.steps[i]!;
    const x = extras.get(s.step);
    const row = cols.step.length;
    cols.step.push(s.step);
    cols.t.push(fin(s.t));
    cols.tokens.push(x?.tokens ?? null);
    cols.flops.push(x?.flops ?? null);
    cols.loss.push(fin(s.loss));
    cols.tokens_per_s.push(fin(s.tokens_per_s));
    cols.lr.push(fin(s.lr));
    for (const [group, lr] of Object.entries(x?.lrs ?? {})) {
      const col = (cols.lrs[group] ??= new Array<Num>(row).fill(null));
      col.push(fin(lr));
    }
    for (const col of Object.values(cols.lrs)) if (col.length <= row) col.push(null);
  }
  return cols;
}

/** Session events the report does not draw, as table rows. */
function sessionEvents(records: readonly MetricsRecord[], totalSteps: number | null): EventRow[] {
  const rows: EventRow[] = [];
  for (const r of records) {
    const kind = kindOf(r);
    const step = fin(r['step']);
    // Checkpoint and resume records carry no t: step k of T is at t = k / T.
    const at = { t: fin(r['t']) ?? (step !== null && totalSteps ? step / totalSteps : null), step };
    if (kind === 'phase_start') rows.push({ ...at, kind: 'phase', description: `phase '${String(r['phase'])}' starts` });
    else if (kind === 'checkpoint') rows.push({ ...at, kind: 'checkpoint', description: `checkpoint (${String(r['reason'] ?? '')})` });
    else if (kind === 'resume') rows.push({ ...at, kind: 'resume', description: `resumed from ${String(r['from'] ?? 'a checkpoint')}` });
    else if (kind === 'diverged') rows.push({ ...at, kind: 'diverged', description: String(r['reason'] ?? 'diverged') });
  }
  return rows;
}

function samplesOf(records: readonly MetricsRecord[]): SampleRow[] {
  const out: SampleRow[] = [];
  for (const r of records) {
    if (kindOf(r) !== 'sample') continue;
    const text = r['text'] ?? r['sample'] ?? r['completion'] ?? r['output'];
    if (typeof text !== 'string') continue;
    const prompt = typeof r['prompt'] === 'string' ? r['prompt'] : '';
    out.push({ step: fin(r['step']), t: fin(r['t']), prompt: prompt.slice(0, MAX_SAMPLE_CHARS), text: text.slice(0, MAX_SAMPLE_CHARS) });
  }
  return out.slice(-MAX_SAMPLES);
}

export interface RunViewInput {
  name: string;
  records: readonly MetricsRecord[];
  status: RunStatus;
  config: { text: string; total_steps: number | null };
  mtimeMs: number;
  counts: RunView['counts'];
}

/** The run page's data, from all records held in memory (the file is not read here). */
export function buildRunView(input: RunViewInput): RunView {
  const data = metricsToReportData(input.records as MetricsRecord[], { runName: input.name, ...(input.config.total_steps ? { totalSteps: input.config.total_steps } : {}) });
  const extras = stepExtras(input.records, data);
  const atStep = (step: Num) => (step !== null && step > 0 ? extras.get(step - 1) : undefined);
  const evals: EvalRow[] = data.evals.slice(-MAX_TABLE_ROWS).map((e) => ({
    step: fin(e.step), t: fin(e.t), tokens: atStep(fin(e.step))?.tokens ?? (e.step === 0 ? 0 : null), flops: atStep(fin(e.step))?.flops ?? (e.step === 0 ? 0 : null),
    val_loss: fin(e.val_loss), val_ppl: fin(e.val_ppl),
  }));
  const markers: EventRow[] = data.events.map((e) => ({ t: fin(e.t), step: fin(e.step), kind: e.kind, description: e.description }));
  const events = [...markers, ...sessionEvents(input.records, input.config.total_steps)]
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.t ?? 0) - (b.e.t ?? 0) || (a.e.step ?? 0) - (b.e.step ?? 0) || a.i - b.i)
    .map(({ e }) => e)
    .slice(-MAX_TABLE_ROWS);
  const summary = { ...data.summary, ...derivedSummary(data) };
  return {
    name: input.name,
    status: input.status,
    config: input.config.text,
    total_steps: input.config.total_steps,
    updated: input.mtimeMs > 0 ? new Date(input.mtimeMs).toISOString() : null,
    last_step: data.steps.reduce((m, s) => Math.max(m, s.step), -1),
    steps: stepColumns(data, extras),
    evals,
    phases: data.phases,
    markers: markers.slice(-MAX_TABLE_ROWS),
    events,
    stack_svg: data.stack_timeline.length ? stackTimelineChart(chartContext(data), false) : '',
    resources: data.resources ?? [],
    samples: samplesOf(input.records),
    summary,
    notes: data.notes ?? [],
    counts: input.counts,
  };
}

/** The run list's row of a run. */
export interface RunListEntry {
  name: string;
  status: RunStatus;
  config: string;
  steps: number;
  total_steps: number | null;
  best_val_loss: number | null;
  updated: string | null;
  malformed: number;
}

export function listEntryOf(view: RunView): RunListEntry {
  const vals = view.evals.map((e) => e.val_loss).filter((v): v is number => v !== null);
  return {
    name: view.name,
    status: view.status,
    config: view.config,
    steps: view.last_step + 1,
    total_steps: view.total_steps,
    best_val_loss: vals.length ? Math.min(...vals) : null,
    updated: view.updated,
    malformed: view.counts.malformed,
  };
}
