// The TrainingMachine's running counters: tokens, FLOPs, micro-batches drawn, wall time (summed
// over resumed sessions), the last evaluation and one PhaseStat per phase.
//
// Kept apart from the step loop because these numbers have three readers that must agree — the
// per-step metrics, the TrainResult / PhaseResult summaries and the checkpoint's `metrics`
// section, which a resumed run restores so its reports continue where the first session stopped.
// Package-internal: not exported from src/training/index.ts.

import { performance } from 'node:perf_hooks';
import type { EvalMetrics, PhaseResult } from './hooks.js';

/** What one phase has done so far (saved in checkpoints; -1 steps mean "not yet"). */
export interface PhaseStat {
  first_step: number;
  end_step: number;
  steps: number;
  loss_sum: number;
  final_loss: number;
  tokens: number;
  flops: number;
  wall_s: number;
  eval?: EvalMetrics;
}

/** The `metrics` section of a checkpoint's training state. */
export interface RunMetricsState {
  tokens_seen: number;
  flops: number;
  wall_time_s: number;
  micro_batches: number;
  records: number;
  phases: PhaseStat[];
  last_eval?: EvalMetrics;
}

function emptyStat(): PhaseStat {
  return { first_step: -1, end_step: -1, steps: 0, loss_sum: 0, final_loss: NaN, tokens: 0, flops: 0, wall_s: 0 };
}

/** @internal The counters of one TrainingMachine. */
export class RunStats {
  tokensSeen = 0;
  flops = 0;
  microBatches = 0;
  lastEval: EvalMetrics | undefined;
  /** Losses of the steps run in this session (a resumed run starts an empty list). */
  readonly sessionLosses: number[] = [];
  private phases: PhaseStat[];
  private wallBefore = 0;
  private sessionStart = performance.now();

  constructor(phaseCount: number) {
    this.phases = Array.from({ length: phaseCount }, () => emptyStat());
  }

  /** The live stat of phase `index` (the machine sets first_step, end_step and eval on it). */
  phase(index: number): PhaseStat {
    return this.phases[index]!;
  }

  /** Wall time starts counting again from now (the time before is kept). */
  startSession(): void {
    this.sessionStart = performance.now();
  }

  /** Seconds of training, summed over resumed sessions. */
  wallTime(): number {
    return this.wallBefore + (performance.now() - this.sessionStart) / 1000;
  }

  /** Adds one finished step of phase `index`. */
  recordStep(index: number, loss: number, tokens: number, flops: number, stepMs: number): void {
    this.tokensSeen += tokens;
    this.flops += flops;
    this.sessionLosses.push(loss);
    const stat = this.phases[index]!;
    stat.steps++;
    stat.loss_sum += loss;
    stat.final_loss = loss;
    stat.tokens += tokens;
    stat.flops += flops;
    stat.wall_s += stepMs / 1000;
  }

  phaseResult(index: number, name: string): PhaseResult {
    const s = this.phases[index]!;
    const r: PhaseResult = {
      name,
      index,
      first_step: s.first_step,
      end_step: s.end_step,
      steps: s.steps,
      mean_loss: s.steps > 0 ? s.loss_sum / s.steps : NaN,
      final_loss: s.final_loss,
      tokens: s.tokens,
      flops: s.flops,
      wall_s: s.wall_s,
    };
    if (s.eval) r.eval = s.eval;
    return r;
  }

  /** The checkpoint's `metrics` section; `records` = metrics-log records to keep on resume. */
  toState(records: number): RunMetricsState {
    return {
      tokens_seen: this.tokensSeen,
      flops: this.flops,
      wall_time_s: this.wallTime(),
      micro_batches: this.microBatches,
      records,
      phases: this.phases.map((s) => ({ ...s })),
      ...(this.lastEval ? { last_eval: this.lastEval } : {}),
    };
  }

  /** Continues from a checkpoint's `metrics` section. */
  restore(state: RunMetricsState): void {
    this.tokensSeen = state.tokens_seen;
    this.flops = state.flops;
    this.microBatches = state.micro_batches;
    this.wallBefore = state.wall_time_s;
    // JSON has no NaN: a phase with no step yet comes back with final_loss null.
    this.phases = state.phases.map((s) => ({ ...s, final_loss: s.final_loss ?? NaN }));
    if (state.last_eval) this.lastEval = state.last_eval;
  }
}
