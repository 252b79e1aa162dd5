// Where metrics go: JSONL (one record per step, eval, phase event) and TensorBoard event files in
// the run folder, and a progress line on a terminal.

import { join } from 'node:path';
import { JsonlWriter, truncateJsonl, readJsonl, type MetricsRecord } from '../io/metrics-jsonl.js';
import { TensorBoardWriter } from '../io/tensorboard.js';
import type { EvalMetrics, PhaseResult, StepMetrics, TrainingCallbacks } from './hooks.js';

export const METRICS_FILE = 'metrics.jsonl';
export const TENSORBOARD_DIR = 'tb';

/** Writes metrics of one session of a run; `records` counts what the JSONL file holds. */
export class MetricsLogger {
  private jsonl: JsonlWriter | null = null;
  private tb: TensorBoardWriter | null = null;
  /** Records in the JSONL file (kept in checkpoints so a resume can cut what came after). */
  records = 0;

  constructor(runDir: string, options: { tensorboard: boolean; resumeRecords?: number }) {
    const path = join(runDir, METRICS_FILE);
    if (options.resumeRecords !== undefined) {
      // Forget what a crashed session logged after its last checkpoint.
      let i = 0;
      truncateJsonl(path, () => i++ < options.resumeRecords!);
      this.records = Math.min(options.resumeRecords, readJsonl(path).length);
    } else {
      this.records = readJsonl(path).length;
    }
    this.jsonl = new JsonlWriter(path);
    if (options.tensorboard) this.tb = new TensorBoardWriter(join(runDir, TENSORBOARD_DIR));
  }

  write(record: MetricsRecord): void {
    this.jsonl?.write(record);
    this.records++;
    this.recordToTensorBoard(record as Record<string, unknown>);
  }

  /** Event counts so far by kind (TensorBoard's events/<kind> scalars count them). */
  private eventCounts = new Map<string, number>();

  /**
   * Records hooks write (model events, resources) as TensorBoard scalars at the same step as in
   * metrics.jsonl: resources/<quantity> (resources/bytes/total, …); for grow / freeze / adapters / quantize, the running count
   * events/<kind> and model/stacks (the stacks after the event).
   */
  private recordToTensorBoard(r: Record<string, unknown>): void {
    if (!this.tb || typeof r['step'] !== 'number') return;
    const kind = r['kind'];
    const step = r['step'];
    if (kind === 'resources') {
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(r)) {
        if (k === 'step' || k === 't') continue;
        if (typeof v === 'number') values[`resources/${k}`] = v;
        else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          // params / bytes / flops_per_token: one scalar per entry, e.g. resources/bytes/total.
          for (const [k2, v2] of Object.entries(v)) if (typeof v2 === 'number') values[`resources/${k}/${k2}`] = v2;
        }
      }
      this.tb.addScalars(values, step);
    } else if (kind === 'grow' || kind === 'freeze' || kind === 'adapters' || kind === 'quantize') {
      const n = (this.eventCounts.get(kind) ?? 0) + 1;
      this.eventCounts.set(kind, n);
      const stacks = Array.isArray(r['stacks']) ? r['stacks'].length : undefined;
      this.tb.addScalars({ [`events/${kind}`]: n, 'model/stacks': stacks }, step);
    }
  }

  step(m: StepMetrics): void {
    this.write({ type: 'step', ...m });
    this.tb?.addScalars(
      {
        'train/loss': m.loss,
        'train/lr': m.lr,
        'train/grad_norm': m.grad_norm,
        'train/tokens_per_s': m.tokens_per_s,
        'train/trainable_params': m.trainable_params,
        'train/t': m.t,
        'train/phase_index': m.phase_index,
        ...Object.fromEntries(Object.entries(m.lrs ?? {}).map(([group, lr]) => [`train/lr/${group}`, lr])),
      },
      // The same step number as the record in metrics.jsonl.
      m.step,
    );
  }

  eval(m: EvalMetrics): void {
    this.write({ type: 'eval', ...m });
    this.tb?.addScalars({ 'eval/loss': m.loss, 'eval/nll': m.nll, 'eval/perplexity': m.perplexity }, m.step);
    if (m.bits_per_byte !== undefined) this.tb?.addScalars({ 'eval/bits_per_byte': m.bits_per_byte }, m.step);
    if (m.nelbo !== undefined) this.tb?.addScalars({ 'eval/nelbo': m.nelbo, 'eval/nelbo_se': m.nelbo_se!, 'eval/perplexity_bound': m.perplexity_bound! }, m.step);
  }

  phase(kind: 'phase_start' | 'phase_end', step: number, t: number, name: string, index: number, result?: PhaseResult): void {
    this.write({ type: kind, step, t, phase: name, phase_index: index, ...(result ? { result: { ...result, eval: undefined } } : {}) });
  }

  flush(): void {
    this.tb?.flush();
  }

  close(): void {
    this.jsonl?.close();
    this.tb?.close();
    this.jsonl = null;
    this.tb = null;
  }
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/**
 * A one-line progress bar with ETA, tokens/s and loss, redrawn in place (for terminals).
 * `stream` defaults to stderr.
 */
export function progressBar(totalSteps: number, stream: NodeJS.WriteStream = process.stderr): TrainingCallbacks {
  const width = 24;
  const started = Date.now();
  let startStep: number | null = null;
  let lastDraw = 0;
  let lastEval = '';
  const draw = (m: StepMetrics, force: boolean) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    startStep ??= m.step;
    const done = m.step + 1;
    const filled = Math.round((done / totalSteps) * width);
    const rate = (done - startStep) / Math.max(1e-3, (now - started) / 1000);
    const eta = (totalSteps - done) / Math.max(rate, 1e-9);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${totalSteps} t=${m.t.toFixed(3)} ${m.phase} loss ${m.loss.toFixed(4)}${lastEval} ${formatCount(m.tokens_per_s)} tok/s ETA ${formatDuration(eta)}`;
    stream.write(`\r${line.slice(0, Math.max(20, (stream.columns ?? 120) - 1))}\x1b[K`);
    if (done === totalSteps) stream.write('\n');
  };
  return {
    onStep: (m) => draw(m, m.step + 1 === totalSteps),
    onEval: (e) => {
      lastEval = ` val ${e.loss.toFixed(4)}`;
    },
  };
}
