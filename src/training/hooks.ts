// What the TrainingMachine reports and whom it calls.
//
// Hooks change the model plane at phase boundaries (grow, freeze, attach adapters, quantize).
// They are never replayed: on resume the machine builds the model from the checkpoint's model
// manifest (its structure, weights and trainable flags), gives every hook its saved state
// (loadState), then calls onResume, where a hook sets up again what it keeps outside the model.
// Callbacks only observe (metrics, evaluation, checkpoints).
//
// Hooks and callbacks see the machine as a MachineView (below): this file sits under machine.ts,
// which implements it, so nothing here imports the machine.

import type { Xoshiro128 } from '../data/index.js';
import type { BatchSource, JsonValue, ModelAdapter, OptimizerAdapter } from '../framework/index.js';
import type { StackWiseConfig } from '../framework/config/schema.js';
import type { ParsedConfig, ResolvedPhase } from './config/resolve.js';
import type { Phase } from './schedule/phase.js';
import type { PhaseSchedule } from './schedule/phase-schedule.js';
import type { TimeController } from './schedule/time-controller.js';
import type { ResourceRecord } from './progressive/resource-record.js';

/** The TrainingMachine as hooks and callbacks see it (TrainingMachine implements it). */
export interface MachineView {
  readonly parsed: ParsedConfig;
  readonly config: StackWiseConfig;
  readonly schedule: PhaseSchedule;
  readonly controller: TimeController;
  readonly runDir: string | undefined;
  readonly seed: number;
  /** The live planes (the model evolves in place; on resume it is the checkpoint's). */
  readonly model: ModelAdapter;
  readonly data: BatchSource;
  readonly optimizer: OptimizerAdapter;
  readonly step: number;
  readonly t: number;
  readonly isComplete: boolean;
  /** The phase of the current step, and the index of the phase entered (-1 before the first). */
  readonly phase: Phase;
  readonly phaseIndex: number;
  resolvedPhase(index?: number): ResolvedPhase;
  /** A named random generator saved in checkpoints. */
  rng(name: string): Xoshiro128;
  addHook(hook: TrainingHooks): void;
  getHook(name: string): TrainingHooks | undefined;
  readonly hookList: readonly TrainingHooks[];
  /** The hook that drives the model plane (growth, freezing, adapters), if any. */
  readonly modelPlane: ModelPlaneHook | undefined;
  /** Appends a record to the run's metrics JSONL (no-op without a run folder). */
  logRecord(record: Record<string, unknown>): void;
  evaluate(reason?: EvalMetrics['reason']): EvalMetrics | undefined;
  saveCheckpoint(reason?: CheckpointEvent['reason']): CheckpointEvent;
}

export interface PhaseContext {
  machine: MachineView;
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
}

export interface StepContext {
  machine: MachineView;
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
  onPhaseStart?(phase: Phase, machine: MachineView, ctx: PhaseContext): void;
  /** After the last step of a phase (after its end-of-phase evaluation). */
  onPhaseEnd?(phase: Phase, machine: MachineView, ctx: PhaseContext): void;
  /** At the start of every step (time-dependent changes such as a ramp-in α(t)). */
  onStepStart?(machine: MachineView, ctx: StepContext): void;
  /** After backward and clipping, before the optimizer update (e.g. gradient masks). */
  beforeUpdate?(machine: MachineView, ctx: StepContext): void;
  /** Extra state saved in checkpoints (JSON). */
  saveState?(): JsonValue;
  /** On resume, the state saveState gave (before onResume; the machine already holds the checkpoint's model). */
  loadState?(state: JsonValue): void;
  /**
   * On resume, once the machine holds the checkpoint's model (weights and trainable flags
   * loaded) and every hook's loadState ran: set up again what the hook keeps outside the model
   * and its saved state. `ctx` is the phase the run is in (undefined when the checkpoint was
   * written before the first step). Phase hooks are not replayed.
   */
  onResume?(machine: MachineView, ctx: PhaseContext | undefined): void;
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
  validate(machine: MachineView): void;
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
  onStep?(metrics: StepMetrics, machine: MachineView): void;
  onPhaseStart?(phase: Phase, machine: MachineView, ctx: PhaseContext): void;
  onPhaseEnd?(phase: Phase, result: PhaseResult, machine: MachineView): void;
  onEval?(metrics: EvalMetrics, machine: MachineView): void;
  onCheckpoint?(event: CheckpointEvent, machine: MachineView): void;
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
