// What the TrainingMachine reports and whom it calls.
//
// Hooks change the model plane at phase boundaries (grow, freeze, attach adapters, quantize) and
// are *replayed* on resume (with `replaying: true`) so the live model gets the same structure
// before the checkpoint's weights are loaded into it; they must therefore be deterministic.
// Callbacks only observe (metrics, evaluation, checkpoints) and are never replayed.

import type { JsonValue } from '../framework/index.js';
import type { ResolvedPhase } from './config/resolve.js';
import type { Phase } from './schedule/phase.js';
import type { TrainingMachine } from './machine.js';
import type { ResourceRecord } from './progressive/resource-record.js';

export interface PhaseContext {
  machine: TrainingMachine;
  phase: Phase;
  /** Position of the phase in the schedule. */
  index: number;
  /** The phase before (undefined for the first). */
  previous: Phase | undefined;
  /** The phase's resolved planes (data and model are absent when given as objects). */
  resolved: ResolvedPhase;
  /** Global step at which the phase starts (or ends, for onPhaseEnd). */
  step: number;
  t: number;
  /** True when re-applied on resume to rebuild the model's structure (weights are loaded after). */
  replaying: boolean;
}

export interface StepContext {
  machine: TrainingMachine;
  step: number;
  t: number;
  phase: Phase;
  phaseIndex: number;
}

/** Model-plane changes; every method optional. */
export interface TrainingHooks {
  /** Names the hook's saved state in checkpoints (required when saveState is given). */
  readonly name?: string;
  /** At the first step of a phase (before its specs are checked and the optimizer is synced). */
  onPhaseStart?(phase: Phase, machine: TrainingMachine, ctx: PhaseContext): void;
  /** After the last step of a phase (after its end-of-phase evaluation). */
  onPhaseEnd?(phase: Phase, machine: TrainingMachine, ctx: PhaseContext): void;
  /** At the start of every step (time-dependent changes such as a ramp-in α(t)). */
  onStepStart?(machine: TrainingMachine, ctx: StepContext): void;
  /** After backward and clipping, before the optimizer update (e.g. gradient masks). */
  beforeUpdate?(machine: TrainingMachine, ctx: StepContext): void;
  /** Extra state saved in checkpoints (JSON). */
  saveState?(): JsonValue;
  loadState?(state: JsonValue): void;
  /** Releases what the hook holds (caches, files) when the machine is disposed. */
  dispose?(): void;
}

/**
 * A hook that drives the model plane (grows the rack, freezes, attaches adapters, quantizes the
 * trunk). The TrainingMachine knows it by this interface: it validates its plan before the first
 * step, asks it which stack time-as-depth trains, and the model manifest takes stack identities
 * from it. `ProgressivePlane` (model.progressive) is the one the machine installs itself.
 */
export interface ModelPlaneHook extends TrainingHooks {
  readonly drivesModelPlane: true;
  /** Checks the whole schedule before training (throws one error listing every problem). */
  validate(machine: TrainingMachine): void;
  /** Time-as-depth: the final-rack index of the stack being trained now (undefined before the first phase). */
  trainingStack(): number | undefined;
  /**
   * The identity of the stack at each rack position: its index in the final rack, which it keeps
   * when others are prepended (undefined: positions are identities).
   */
  stackIds(): number[] | undefined;
  /** The memory and compute record of each phase start so far (see progressive/resource-record.ts). */
  readonly resources: readonly ResourceRecord[];
}

export function isModelPlaneHook(h: TrainingHooks): h is ModelPlaneHook {
  return (h as Partial<ModelPlaneHook>).drivesModelPlane === true;
}

export interface StepMetrics {
  /** Index of the step just run (0-based). */
  step: number;
  /** t of that step. */
  t: number;
  phase: string;
  phase_index: number;
  /** Objective loss (mean over micro-batches). */
  loss: number;
  /** Scheduled lr (before group scales). */
  lr: number;
  /** lr of every group. */
  lrs: Record<string, number>;
  /** Global gradient norm before clipping. */
  grad_norm: number;
  /** Input tokens processed by this step. */
  tokens: number;
  tokens_seen: number;
  /** Estimated training FLOPs so far (summed over resumed sessions; see ModelAdapter.flopsPerToken). */
  flops_seen: number;
  tokens_per_s: number;
  trainable_params: number;
  step_ms: number;
  /** Seconds since the run started (summed over resumed sessions). */
  wall_s: number;
}

export interface EvalMetrics {
  /** Steps completed when the evaluation ran. */
  step: number;
  t: number;
  phase: string;
  phase_index: number;
  /** Objective loss on the validation batches (as trained: weights applied). */
  loss: number;
  /** Mean cross-entropy per scored token (no weights) and its exponential. */
  nll: number;
  perplexity: number;
  batches: number;
  tokens: number;
  scored: number;
  reason: 'periodic' | 'phase_end' | 'final' | 'manual';
  /**
   * Causal runs with a tokenizer: the UTF-8 bytes the scored text targets stand for, and their
   * negative log-likelihood in bits per byte (as `stackwise eval` reports it; tokenizer-independent).
   */
  bytes?: number;
  bits_per_byte?: number;
  /**
   * Masked diffusion (training.eval_elbo_samples ≥ 2): the continuous-time NELBO of the validation
   * windows in nats per token, its Monte Carlo standard error, exp(nelbo) (a perplexity upper
   * bound) and the draws per window.
   */
  nelbo?: number;
  nelbo_se?: number;
  perplexity_bound?: number;
  elbo_samples?: number;
}

export interface PhaseResult {
  name: string;
  index: number;
  first_step: number;
  /** Exclusive. */
  end_step: number;
  steps: number;
  mean_loss: number;
  final_loss: number;
  tokens: number;
  flops: number;
  wall_s: number;
  eval?: EvalMetrics;
}

export interface CheckpointEvent {
  path: string;
  step: number;
  reason: 'periodic' | 'phase_end' | 'final' | 'manual';
}

/** Observers; every method optional. */
export interface TrainingCallbacks {
  onStep?(metrics: StepMetrics, machine: TrainingMachine): void;
  onPhaseStart?(phase: Phase, machine: TrainingMachine, ctx: PhaseContext): void;
  onPhaseEnd?(phase: Phase, result: PhaseResult, machine: TrainingMachine): void;
  onEval?(metrics: EvalMetrics, machine: TrainingMachine): void;
  onCheckpoint?(event: CheckpointEvent, machine: TrainingMachine): void;
}

export interface TrainResult {
  total_steps: number;
  /** Steps run by this call (fewer than total_steps after a resume). */
  steps_run: number;
  /** Step the run resumed from (absent for a fresh run). */
  resumed_from?: number;
  final_loss: number;
  /** Losses of the steps run by this call, in order. */
  losses: number[];
  phases: PhaseResult[];
  final_eval?: EvalMetrics;
  tokens_seen: number;
  wall_time_s: number;
  /** Estimated training FLOPs (see ModelAdapter.flopsPerToken). */
  flops: number;
  /** First step of every phase after the first. */
  phase_transitions: number[];
  last_checkpoint?: string;
}
