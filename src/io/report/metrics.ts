/**
 * Turning a run's metrics JSONL (src/io/metrics-jsonl.ts) into RunReportData. The reader is
 * tolerant: it recognises records by a `kind` (or `type`/`event`) field, or failing that by the
 * fields they carry, and accepts the usual aliases of every field.
 *
 * Records understood (field aliases in brackets):
 *   step / train       {step, t, phase, loss, lr, tokens_per_s}   [t: time, progress; step: global_step,
 *                      iteration; loss: train_loss; lr: learning_rate; tokens_per_s: tokens_per_sec,
 *                      tokensPerSec, throughput; phase: phase_name]
 *   eval / val         {t, step, val_loss, val_ppl}               [val_loss: eval_loss, validation_loss,
 *                      or loss in an eval record; val_ppl: ppl, perplexity; masked diffusion:
 *                      perplexity_bound and nelbo_se → val_ppl_bound, val_ppl_bound_se; bits_per_byte
 *                      (val_bits_per_byte, val_bpb) → val_bpb]
 *   grow | freeze | adapters | quantize  (as kind, or kind 'event' with event/action = one of them)
 *                      {t, step, description}                     [description: message, detail, text]
 *   any record with `stacks`: a stack snapshot at its t — [{index, state}], ['frozen', 'trainable', …],
 *                      or {trainable: [2], frozen: [0, 1], adapted: [], quantized: [0]}
 *   run / run_start / config   {run_name, total_steps, phases: [{name, start_t, end_t}]}
 *   phase / phase_start        {name, t (or start_t), end_t}
 *   resources                  {t, step, phase, n_stacks, params: {trainable, frozen, adapters},
 *                      bytes: {weights, grads, optimizer_state, cached_activations_memory, …, total},
 *                      flops_per_token: {train, train_cached}}  [also flat: trainable_params,
 *                      weights_bytes, train_flops_per_token, …, or dotted keys 'params.trainable']
 *   summary / run_end          every other scalar field goes to the summary
 * A t that is missing is computed from step and total_steps when known.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { readJsonl, type MetricsRecord } from '../metrics-jsonl.js';
import { extent } from './svg.js';
import {
  emptyRunReportData, STACK_STATES,
  type ReportEval, type ReportPhase, type ReportResources, type ReportStackEntry, type RunEventKind, type RunReportData, type StackState, type SummaryValue,
} from './types.js';

type Rec = Record<string, unknown>;

function pick(r: Rec, names: string[]): unknown {
  for (const n of names) if (r[n] !== undefined) return r[n];
  return undefined;
}

/** A number (null → undefined; numeric strings and "NaN"/"Infinity" accepted). */
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    if (!Number.isNaN(n) || v.trim() === 'NaN') return n;
  }
  return undefined;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

const T_KEYS = ['t', 'time', 'progress', 'time_t'];
const STEP_KEYS = ['step', 'global_step', 'globalStep', 'iteration', 'iter'];
const LOSS_KEYS = ['loss', 'train_loss', 'trainLoss', 'train/loss'];
const LR_KEYS = ['lr', 'learning_rate', 'learningRate', 'train/lr'];
const TPS_KEYS = ['tokens_per_s', 'tokens_per_sec', 'tokens_per_second', 'tokensPerSec', 'tokensPerS', 'tok_per_s', 'throughput', 'perf/tokens_per_s'];
const VAL_LOSS_KEYS = ['val_loss', 'eval_loss', 'validation_loss', 'valLoss', 'evalLoss', 'val/loss'];
const VAL_PPL_KEYS = ['val_ppl', 'val_perplexity', 'eval_ppl', 'ppl', 'perplexity', 'valPpl', 'val/ppl'];
const VAL_BPB_KEYS = ['bits_per_byte', 'val_bits_per_byte', 'val_bpb', 'bpb'];
const PHASE_KEYS = ['phase', 'phase_name', 'phaseName'];
const DESC_KEYS = ['description', 'message', 'detail', 'details', 'text', 'desc'];
const STACKS_KEYS = ['stacks', 'stack_states', 'stackStates'];

const EVENT_ALIASES: Record<string, RunEventKind> = {
  grow: 'grow', growth: 'grow', add_stack: 'grow', append: 'grow', prepend: 'grow', insert: 'grow',
  freeze: 'freeze', frozen: 'freeze', unfreeze: 'freeze',
  adapters: 'adapters', adapter: 'adapters', lora: 'adapters', attach_lora: 'adapters', attach_adapters: 'adapters', add_lora: 'adapters',
  quantize: 'quantize', quantise: 'quantize', quantization: 'quantize', quantized: 'quantize',
};
const STATE_ALIASES: Record<string, StackState> = {
  trainable: 'trainable', train: 'trainable', active: 'trainable', unfrozen: 'trainable',
  frozen: 'frozen', freeze: 'frozen',
  adapted: 'adapted', lora: 'adapted', adapter: 'adapted', adapters: 'adapted',
  quantized: 'quantized', quantised: 'quantized', quant: 'quantized', nf4: 'quantized', int8: 'quantized',
};

function stateOf(v: unknown): StackState[] {
  if (Array.isArray(v)) return v.flatMap(stateOf);
  if (typeof v !== 'string') return [];
  return v.split(/[+,|/ ]+/).map((s) => STATE_ALIASES[s.trim().toLowerCase()]).filter((s): s is StackState => s !== undefined);
}

/** Frozen is implied by adapted/quantized; the rest in canonical order. */
function normalizeStates(states: StackState[]): StackState | StackState[] | undefined {
  let set = STACK_STATES.filter((s) => states.includes(s));
  if (set.length > 1) set = set.filter((s) => s !== 'frozen');
  if (set.length === 0) return undefined;
  return set.length === 1 ? set[0]! : set;
}

/** Parses the several shapes a stack snapshot may take. */
export function parseStackSnapshot(v: unknown): ReportStackEntry[] | undefined {
  const out: ReportStackEntry[] = [];
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      if (typeof item === 'string' || Array.isArray(item)) {
        const s = normalizeStates(stateOf(item));
        if (s) out.push({ index: i, state: s });
      } else if (item && typeof item === 'object') {
        const o = item as Rec;
        // The stack's identity (final_index: its place in the final rack) before its position now,
        // so a right→left run keeps one row per stack as new ones are prepended.
        const index = num(pick(o, ['final_index', 'index', 'stack', 'i', 'id'])) ?? i;
        const raw = stateOf(pick(o, ['state', 'states', 'status']));
        if (o.frozen === true) raw.push('frozen');
        if (o.frozen === false || o.trainable === true) raw.push('trainable');
        if (o.adapted === true || o.lora === true || o.adapters === true) raw.push('adapted');
        if (o.quantized === true || (typeof o.quantized === 'string' && o.quantized !== 'none')) raw.push('quantized');
        const s = normalizeStates(raw);
        if (s && Number.isInteger(index) && index >= 0) out.push({ index, state: s });
      }
    });
    return out;
  }
  if (v && typeof v === 'object') {
    const byIndex = new Map<number, StackState[]>();
    for (const [k, list] of Object.entries(v as Rec)) {
      const st = STATE_ALIASES[k.toLowerCase()];
      if (!st || !Array.isArray(list)) continue;
      for (const i of list) {
        const n = num(i);
        if (n === undefined || !Number.isInteger(n) || n < 0) continue;
        byIndex.set(n, [...(byIndex.get(n) ?? []), st]);
      }
    }
    if (byIndex.size === 0) return undefined;
    for (const [index, states] of [...byIndex].sort((a, b) => a[0] - b[0])) {
      const s = normalizeStates(states);
      if (s) out.push({ index, state: s });
    }
    return out;
  }
  return undefined;
}

/** A number at the first of `paths` present: a literal key, else a dotted path into nested objects. */
function numAt(r: Rec, paths: string[]): number | undefined {
  for (const p of paths) {
    let v: unknown = r[p];
    if (v === undefined && p.includes('.')) v = p.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Rec)[k] : undefined), r);
    const n = num(v);
    if (n !== undefined) return n;
  }
  return undefined;
}

const RESOURCE_KINDS = ['resources', 'resource', 'resource_report', 'resources_report', 'memory_report'];

/** The per-phase memory and compute of a `resources` record (t filled in by the caller). */
function resourcesOf(r: Rec): ReportResources {
  const v = (paths: string[]) => numAt(r, paths) ?? null;
  const out: ReportResources = {
    phase: str(pick(r, PHASE_KEYS)) ?? '',
    t: NaN,
    step: num(pick(r, STEP_KEYS)) ?? null,
    stacks: v(['n_stacks', 'num_stacks', 'numStacks', 'stacks']),
    trainable_params: v(['params.trainable', 'trainable_params', 'params_trainable']),
    frozen_params: v(['params.frozen', 'frozen_params', 'params_frozen']),
    adapter_params: v(['params.adapters', 'adapter_params', 'params_adapters']),
    weights_bytes: v(['bytes.weights', 'weights_bytes', 'weight_bytes', 'bytes_weights']),
    grads_bytes: v(['bytes.grads', 'grads_bytes', 'grad_bytes', 'gradient_bytes', 'bytes_grads']),
    optimizer_state_bytes: v(['bytes.optimizer_state', 'optimizer_state_bytes', 'bytes_optimizer_state', 'bytes.optimizerState']),
    cached_activations_memory_bytes: v(['bytes.cached_activations_memory', 'cached_activations_memory_bytes', 'bytes.cached_activations.memory', 'bytes.cachedActivations.memory', 'cached_activations_bytes']),
    cached_activations_disk_bytes: v(['bytes.cached_activations_disk', 'cached_activations_disk_bytes', 'bytes.cached_activations.disk', 'bytes.cachedActivations.disk']),
    total_bytes: v(['bytes.total', 'total_bytes', 'bytes_total', 'memory_bytes']),
    train_flops_per_token: v(['flops_per_token.train', 'train_flops_per_token', 'flops_per_token_train', 'flopsPerToken.train']),
    train_cached_flops_per_token: v(['flops_per_token.train_cached', 'train_cached_flops_per_token', 'flops_per_token_train_cached', 'flopsPerToken.trainCached']),
    cached_prefix_stacks: v(['cached_prefix_stacks', 'cachedPrefixStacks']),
    optimizer: str(pick(r, ['optimizer', 'optimizer_kind'])) ?? null,
  };
  return out;
}

function kindOf(r: Rec): string {
  const k = str(pick(r, ['kind', 'type', 'record', 'event_type']));
  return k ? k.toLowerCase() : '';
}

function phasesFrom(v: unknown): ReportPhase[] {
  if (!Array.isArray(v)) return [];
  const out: ReportPhase[] = [];
  v.forEach((p, i) => {
    if (!p || typeof p !== 'object') return;
    const o = p as Rec;
    const start = num(pick(o, ['start_t', 'start', 'startT', 't0', 'from']));
    const end = num(pick(o, ['end_t', 'end', 'endT', 't1', 'to']));
    if (start === undefined || end === undefined) return;
    out.push({ name: str(pick(o, ['name', 'phase', 'id'])) ?? `phase ${i}`, start_t: start, end_t: end });
  });
  return out;
}

function scalar(v: unknown): SummaryValue | undefined {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return v;
  return undefined;
}

export interface MetricsToReportOptions {
  /** The run name (default: a run record's run_name, else `defaultRunName`, else "run"). */
  runName?: string;
  defaultRunName?: string;
  /** Total steps of the run, to compute t = step / total when records lack t. */
  totalSteps?: number;
}

/** Maps metrics records (any order) to report data. */
export function metricsToReportData(records: MetricsRecord[], opts: MetricsToReportOptions = {}): RunReportData {
  const data = emptyRunReportData(opts.runName ?? opts.defaultRunName ?? 'run');
  const notes: string[] = [];
  let totalSteps = opts.totalSteps;
  let completed = false;
  const phaseStarts: { name: string; t: number; end?: number }[] = [];
  const pendingT: { set: (t: number) => void; step: number | undefined }[] = [];
  const resources: ReportResources[] = [];
  let skipped = 0;
  let checkpoints = 0;

  // First pass: run-level facts (total steps, phases, name).
  for (const r of records as Rec[]) {
    const k = kindOf(r);
    if (['run', 'run_start', 'start', 'config', 'meta', 'header', 'run_config'].includes(k) || (k === '' && pick(r, ['total_steps', 'totalSteps', 'run_name']) !== undefined && pick(r, LOSS_KEYS) === undefined)) {
      const ts = num(pick(r, ['total_steps', 'totalSteps', 'steps_total', 'max_steps']));
      if (ts !== undefined && ts > 0 && totalSteps === undefined) totalSteps = ts;
      const name = str(pick(r, ['run_name', 'runName', 'name', 'run']));
      if (name && opts.runName === undefined) data.run_name = name;
      const ph = phasesFrom(pick(r, ['phases', 'schedule']));
      if (ph.length) data.phases = ph;
      const sched = pick(r, ['schedule']);
      if (!ph.length && sched && typeof sched === 'object') {
        const p2 = phasesFrom((sched as Rec).phases);
        if (p2.length) data.phases = p2;
      }
    }
  }

  const tOf = (r: Rec, onLater: (t: number) => void): number | undefined => {
    const t = num(pick(r, T_KEYS));
    if (t !== undefined) return t;
    const step = num(pick(r, STEP_KEYS));
    if (step !== undefined && totalSteps) return step / totalSteps;
    pendingT.push({ set: onLater, step });
    return undefined;
  };

  for (const r of records as Rec[]) {
    const k = kindOf(r);
    const stepNum = num(pick(r, STEP_KEYS));
    const eventName = str(pick(r, ['event', 'action', 'op', 'operation']))?.toLowerCase();
    const eventKind = EVENT_ALIASES[k] ?? (['event', 'model_event', 'phase_event'].includes(k) || k === '' ? (eventName ? EVENT_ALIASES[eventName] : undefined) : undefined);
    const stacksRaw = pick(r, STACKS_KEYS);
    const snapshot = stacksRaw !== undefined ? parseStackSnapshot(stacksRaw) : undefined;
    let handled = false;

    if (['run', 'run_start', 'start', 'config', 'meta', 'header', 'run_config'].includes(k)) handled = true;

    if (eventKind) {
      const ev = { t: NaN, kind: eventKind, description: '', step: stepNum ?? null };
      const desc = str(pick(r, DESC_KEYS));
      if (desc) ev.description = desc;
      else {
        const extras = Object.entries(r).filter(([key, v]) => !['kind', 'type', 'event', 'action', 't', 'time', 'step', 'stacks', 'nonfinite', 'wall_time', 'timestamp'].includes(key) && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'));
        ev.description = extras.length ? extras.map(([key, v]) => `${key}=${v}`).join(', ') : eventKind;
      }
      const t = tOf(r, (x) => { ev.t = x; });
      if (t !== undefined) ev.t = t;
      data.events.push(ev);
      handled = true;
    } else if (['phase', 'phase_start', 'phase_change', 'phase_begin'].includes(k)) {
      const name = str(pick(r, ['name', ...PHASE_KEYS, 'to']));
      const t = num(pick(r, ['start_t', ...T_KEYS])) ?? (stepNum !== undefined && totalSteps ? stepNum / totalSteps : undefined);
      const end = num(pick(r, ['end_t', 'endT']));
      if (name !== undefined && t !== undefined) phaseStarts.push({ name, t, ...(end !== undefined ? { end } : {}) });
      handled = true;
    } else if (k === 'phase_end') {
      // Closes the phase the matching phase_start opened (the last phase may end before t = 1).
      const name = str(pick(r, ['name', ...PHASE_KEYS]));
      const t = num(pick(r, T_KEYS)) ?? (stepNum !== undefined && totalSteps ? stepNum / totalSteps : undefined);
      const open = [...phaseStarts].reverse().find((p) => p.name === name && p.end === undefined);
      if (open && t !== undefined) open.end = t;
      handled = true;
    } else if (k === 'checkpoint') {
      checkpoints++;
      handled = true;
    } else if (k === 'resume') {
      notes.push(`resumed at step ${stepNum ?? '?'}${str(r['from']) ? ` from ${str(r['from'])}` : ''}`);
      handled = true;
    } else if (k === 'diverged') {
      notes.push(`training diverged at step ${stepNum ?? '?'}${str(r['reason']) ? `: ${str(r['reason'])}` : ''}`);
      handled = true;
    } else if (RESOURCE_KINDS.includes(k)) {
      const res = resourcesOf(r);
      const t = tOf(r, (x) => { res.t = x; });
      if (t !== undefined) res.t = t;
      resources.push(res);
      handled = true;
    } else if (k === 'activation_cache') {
      // What the cache held at the phase's end: the phase's resources row shows it (the record
      // at the phase start sees only what an earlier, shorter prefix left to be advanced).
      const phase = str(pick(r, PHASE_KEYS));
      const row = [...resources].reverse().find((x) => x.phase === phase);
      if (row) {
        const memory = num(r['memory_bytes']);
        if (memory !== undefined && row.total_bytes !== null) row.total_bytes += memory - (row.cached_activations_memory_bytes ?? 0);
        row.cached_activations_memory_bytes = memory ?? row.cached_activations_memory_bytes;
        row.cached_activations_disk_bytes = num(r['disk_bytes']) ?? row.cached_activations_disk_bytes;
        row.cache_hits = num(r['hits']) ?? null;
      }
      handled = true;
    } else if (['summary', 'run_end', 'end', 'final', 'done', 'finished'].includes(k)) {
      completed = true;
      for (const [key, v] of Object.entries(r)) {
        if (['kind', 'type', 'record', 'nonfinite'].includes(key)) continue;
        const s = scalar(v);
        if (s !== undefined) data.summary[key] = s;
      }
      handled = true;
    } else {
      const valLoss = num(pick(r, VAL_LOSS_KEYS)) ?? (['eval', 'val', 'validation', 'evaluation'].includes(k) ? num(pick(r, LOSS_KEYS)) : undefined);
      const isEval = ['eval', 'val', 'validation', 'evaluation'].includes(k) || (k === '' && valLoss !== undefined);
      if (isEval) {
        const ev: ReportEval = { t: NaN, step: stepNum ?? null, val_loss: valLoss ?? null, val_ppl: num(pick(r, VAL_PPL_KEYS)) ?? null };
        const bpb = num(pick(r, VAL_BPB_KEYS));
        if (bpb !== undefined) ev.val_bpb = bpb;
        const bound = num(r.perplexity_bound);
        if (bound !== undefined) {
          ev.val_ppl_bound = bound;
          const se = num(r.nelbo_se);
          ev.val_ppl_bound_se = se === undefined ? null : bound * se;
        }
        const t = tOf(r, (x) => { ev.t = x; });
        if (t !== undefined) ev.t = t;
        if (ev.val_loss !== null || ev.val_ppl !== null) data.evals.push(ev);
        handled = true;
      }
      const isStep = ['step', 'train', 'train_step', 'training', 'metrics', 'log'].includes(k)
        || (k === '' && !isEval && (pick(r, LOSS_KEYS) !== undefined || pick(r, LR_KEYS) !== undefined || pick(r, TPS_KEYS) !== undefined));
      if (isStep) {
        const s = {
          step: stepNum ?? data.steps.length,
          t: NaN,
          phase: str(pick(r, PHASE_KEYS)) ?? null,
          loss: num(pick(r, LOSS_KEYS)) ?? null,
          lr: num(pick(r, LR_KEYS)) ?? null,
          tokens_per_s: num(pick(r, TPS_KEYS)) ?? null,
        };
        const t = tOf(r, (x) => { s.t = x; });
        if (t !== undefined) s.t = t;
        data.steps.push(s);
        handled = true;
      }
    }
    if (snapshot) {
      const snap = { t: NaN, stacks: snapshot };
      const t = tOf(r, (x) => { snap.t = x; });
      if (t !== undefined) snap.t = t;
      data.stack_timeline.push(snap);
      handled = true;
    }
    if (!handled) skipped++;
  }

  // Records without t or total steps: t from step / (last step + 1).
  if (pendingT.length) {
    const maxStep = extent([...data.steps.map((s) => s.step), ...pendingT.map((p) => p.step ?? -1)])?.[1] ?? -1;
    if (maxStep >= 0) {
      for (const p of pendingT) if (p.step !== undefined) p.set(p.step / (maxStep + 1));
      notes.push(`the metrics carry no t and no total_steps: t was estimated as step / ${maxStep + 1}`);
    }
  }

  // Phases: explicit list, else phase-start records, else runs of the steps' phase names.
  const finiteT = (t: number) => Number.isFinite(t);
  const allT = [...data.steps.map((s) => s.t), ...data.evals.map((e) => e.t)].filter(finiteT);
  const lastT = extent(allT)?.[1] ?? 0;
  if (completed && totalSteps && data.steps.length) {
    const lastStep = extent(data.steps.map((s) => s.step))![1];
    if (lastStep + 1 < totalSteps) completed = lastStep + 1 >= totalSteps;
  }
  const endOfRun = completed ? Math.max(1, lastT) : lastT;
  if (data.phases.length === 0) {
    let starts = phaseStarts.slice().sort((a, b) => a.t - b.t);
    if (starts.length === 0) {
      const sorted = data.steps.filter((s) => finiteT(s.t) && s.phase).sort((a, b) => a.t - b.t);
      for (const s of sorted) if (starts.length === 0 || starts[starts.length - 1]!.name !== s.phase) starts.push({ name: s.phase!, t: starts.length === 0 ? Math.min(0, s.t) : s.t });
    }
    starts = starts.filter((s) => finiteT(s.t));
    data.phases = starts.map((s, i) => ({ name: s.name, start_t: s.t, end_t: s.end ?? (i + 1 < starts.length ? starts[i + 1]!.t : Math.max(endOfRun, s.t)) }));
  }

  for (const arr of [data.steps, data.evals, data.events, data.stack_timeline, resources] as { t: number }[][]) {
    const before = arr.length;
    const keep = arr.filter((x) => finiteT(x.t));
    arr.length = 0;
    arr.push(...keep);
    if (keep.length < before) notes.push(`${before - keep.length} record(s) without a usable t were left out`);
  }
  data.steps.sort((a, b) => a.t - b.t || a.step - b.step);
  data.evals.sort((a, b) => a.t - b.t);
  data.stack_timeline.sort((a, b) => a.t - b.t);
  if (resources.length) data.resources = resources.sort((a, b) => a.t - b.t);
  if (checkpoints && data.summary['checkpoints'] === undefined) data.summary['checkpoints'] = checkpoints;
  if (skipped) notes.push(`${skipped} record(s) of unknown kind were ignored`);
  if (notes.length) data.notes = notes;
  return data;
}

/**
 * Reads a metrics JSONL file (a partial last line from a crash is skipped) and maps it to report
 * data; the run name defaults to the name of the file's folder.
 */
export function readMetricsJsonl(path: string, opts: MetricsToReportOptions = {}): RunReportData {
  if (!existsSync(path)) throw new Error(`${path}: no such metrics file`);
  const records = readJsonl(path);
  return metricsToReportData(records, { defaultRunName: basename(dirname(resolve(path))), ...opts });
}

