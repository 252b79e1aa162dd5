// The TrainingMachine: steps through normalized time.
//
// Each step: t from the TimeController, the phase at t; at a phase's first step the planes are
// assembled for it (Data_t from the phase's data plane, Model_t by the hooks evolving the live
// model, Optimizer_t re-grouped with state carried over) and their specs checked (checked again
// at any step where onStepStart hooks may have changed the model; every batch is checked against
// the BatchSpec); then every
// micro-batch runs forward/backward inside an engine `tidy` scope, gradients are clipped, the lr of
// every group is set from lr(t), the optimizer steps, and metrics are recorded. Evaluation runs
// every `eval_every` steps and at phase ends; checkpoints every `checkpoint_every` steps, at phase
// ends if asked, and at the end. Resuming builds the model from the checkpoint's model manifest
// (the one loader, loadModel's), gives the hooks their saved state (no phase hook is replayed),
// then loads optimizer state, RNG states and counters: a resumed run continues bit for bit.
//
// This file is the loop and the phase lifecycle, readable top to bottom; the parts it calls live
// beside it: machine-planes.ts (where each phase's data and first model come from, plane checks),
// machine-eval.ts (the evaluation pass), machine-stats.ts (counters and per-phase stats) and
// machine-checkpoint.ts (what a checkpoint holds, reading and loading one on resume).

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { existsSync, renameSync, statSync } from 'node:fs';
import * as E from '../engine/index.js';
import { Xoshiro128, combineSeeds, hashString32 } from '../data/index.js';
import {
  buildOptimizer,
  optimizerSpecOf,
  type BatchSource,
  type DataBatch,
  type ModelAdapter,
  type OptimizerAdapter,
} from '../framework/index.js';
import type { Model } from '../nn/index.js';
import type { Optimizer } from '../optim/index.js';
import { CheckpointError, latestCheckpoint, listCheckpoints, openRunFolder } from '../io/checkpoint.js';
import { PhaseSchedule } from './schedule/phase-schedule.js';
import type { Phase } from './schedule/phase.js';
import type { TimeController } from './schedule/time-controller.js';
import { parseConfig, type ParsedConfig, type ResolvedPhase } from './config/resolve.js';
import { loadConfig, writeResolvedConfigs } from './config/load.js';
import type { StackWiseConfig } from '../framework/config/schema.js';
import { METRICS_FILE, MetricsLogger, progressBar } from './metrics.js';
import type {
  CheckpointEvent,
  EvalMetrics,
  PhaseContext,
  PhaseResult,
  StepContext,
  StepMetrics,
  TrainResult,
  TrainingCallbacks,
  TrainingHooks,
  MachineView,
  ModelPlaneHook,
} from './hooks.js';
import './objective-registry.js';
import { ProgressivePlane } from './progressive-plane.js';
import { IMPLICIT_GROWTH, changesStacks, usesProgressivePlane } from './progressive/config.js';
import { growsPretrained } from './init-from.js';
import { preparedTargets } from './objectives/loss.js';
import { DataPlanes, type DataPlaneOptions, applyModelPlane, assertCompatiblePlanes, checkDepthMask, firstModel, modelPlaneOf } from './machine-planes.js';
import { DEFAULT_EVAL_ELBO_SAMPLES, evaluateModel } from './machine-eval.js';
import { RunStats } from './machine-stats.js';
import { assemblePlanesOf, modelSpecs, type AssembledPlanes, type MachineState } from './machine-inspect.js';
import { loadOptimizerFromCheckpoint, modelFromCheckpoint, nonFiniteParameter, readResumeCheckpoint, restoreHookStates, resumeTargetPath, writeMachineCheckpoint } from './machine-checkpoint.js';
import { checkMemoryFit, memoryCheckEnabled } from './plan/fit.js';

export type { TrainingState } from './machine-checkpoint.js';
export type { AssembledPlanes, MachineState, ModelSpecs, OptimizerPlane } from './machine-inspect.js';

/** What a user's loss function gets for one micro-batch (`trainStep(lossFn)`). */
export interface LossContext {
  /** Model_t: call `model.forward(inputIds, { seed, step })` for logits [B, S, V]. */
  model: ModelAdapter;
  batch: DataBatch;
  /** The batch's input ids as an int32 tensor [B, S] on the model's backend. */
  inputIds: E.Tensor;
  step: number;
  t: number;
  micro: number;
  phase: Phase;
  /** The seed of this micro-batch's dropout (pass it to forward for the same masks as the built-in loss). */
  seed: number;
}

/**
 * A user's training loss: returns a scalar tensor to minimise (the machine back-propagates it,
 * scaled by 1/accumulation_steps, then clips, schedules the lr and steps as for the built-in loss).
 */
export type LossFn = (ctx: LossContext) => E.Tensor;

/** Also `data`, `dataPlane` and `objectives` (DataPlaneOptions: where each phase's batches come from). */
export interface TrainingMachineOptions extends DataPlaneOptions {
  /** Overrides training.total_steps of the config. */
  totalSteps?: number;
  /**
   * A built model (instead of the config's model section). On resume the machine trains the
   * checkpoint's model instead (built from its manifest; `machine.model`); this one is left as it was.
   */
  model?: Model | ModelAdapter;
  /**
   * A built optimizer. Its parameter groups are re-made by role at each phase; its type, lr and
   * hyper-parameters stay unless the config has an optimizer section (which then applies per phase).
   */
  optimizer?: Optimizer | OptimizerAdapter;
  hooks?: TrainingHooks[];
  callbacks?: TrainingCallbacks[];
  /** Overrides training.run_dir. */
  runDir?: string;
  /**
   * Resume before the first step: true or 'latest' = the newest checkpoint of the run folder (a
   * fresh start when it has none); a path = that checkpoint folder (or the newest in that run folder).
   * The model is built from the checkpoint's model manifest; hooks get their saved state
   * (loadState, onResume) and are not replayed.
   */
  resume?: boolean | 'latest' | string;
  /** Messages (warnings, notes); default: stderr. */
  log?: (line: string) => void;
}

/** Thrown when a loss or a gradient norm is NaN/Inf: no update was applied, nothing was saved. */
export class TrainingDivergedError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly lastCheckpoint: string | undefined,
  ) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

function isParsedConfig(v: unknown): v is ParsedConfig {
  return typeof v === 'object' && v !== null && (v as ParsedConfig).schedule instanceof PhaseSchedule && Array.isArray((v as ParsedConfig).phases);
}

export class TrainingMachine implements MachineView {
  readonly parsed: ParsedConfig;
  readonly config: StackWiseConfig;
  readonly schedule: PhaseSchedule;
  readonly controller: TimeController;
  readonly runDir: string | undefined;
  readonly seed: number;
  model: ModelAdapter;
  data: BatchSource;
  optimizer: OptimizerAdapter;

  private readonly hooks: TrainingHooks[];
  private readonly callbacks: TrainingCallbacks[];
  private readonly options: TrainingMachineOptions;
  private readonly log: (line: string) => void;
  private readonly planes: DataPlanes;
  private readonly rngs = new Map<string, Xoshiro128>();
  private readonly stats: RunStats;
  private currentPhase = -1;
  private phaseEnded = false;
  private phaseCache = { trainable: 0, flopsPerToken: 0 };
  private logger: MetricsLogger | null = null;
  private lastCheckpoint: string | undefined;
  private resumedFrom: number | undefined;
  private diverged: Error | null = null;
  private started = false;

  /**
   * `config` is a raw config object (as read from YAML/JSON or written in code) or a ParsedConfig;
   * `totalSteps` overrides training.total_steps.
   */
  constructor(config: unknown, totalStepsOrOptions?: number | TrainingMachineOptions, maybeOptions: TrainingMachineOptions = {}) {
    const options: TrainingMachineOptions = typeof totalStepsOrOptions === 'object' ? totalStepsOrOptions : { ...maybeOptions, ...(totalStepsOrOptions !== undefined ? { totalSteps: totalStepsOrOptions } : {}) };
    this.options = options;
    this.log = options.log ?? ((line) => process.stderr.write(`[stackwise] ${line}\n`));
    if (isParsedConfig(config)) {
      if (options.totalSteps !== undefined && options.totalSteps !== config.controller.totalSteps) {
        throw new Error(`TrainingMachine: totalSteps ${options.totalSteps} differs from the parsed config's training.total_steps ${config.controller.totalSteps}; parse the config with it instead`);
      }
      this.parsed = config;
    } else {
      let raw = config;
      if (options.totalSteps !== undefined) {
        const obj = (raw ?? {}) as Record<string, unknown>;
        raw = { ...obj, training: { ...((obj['training'] as object | undefined) ?? {}), total_steps: options.totalSteps } };
      }
      this.parsed = parseConfig(raw);
    }
    this.config = this.parsed.config;
    // Before anything is allocated: refuse a run whose predicted peak memory exceeds the machine's (plan/fit.ts).
    if (!options.model && memoryCheckEnabled(this.parsed)) checkMemoryFit(this.parsed);
    this.schedule = this.parsed.schedule;
    this.controller = this.parsed.controller;
    this.seed = this.config.training.seed;
    this.runDir = options.runDir ?? this.config.training.run_dir;
    this.hooks = [...(options.hooks ?? [])];
    this.callbacks = [...(options.callbacks ?? [])];
    // The one way to grow: a config with model.progressive, or whose phases change n_stacks, gets
    // the progressive model plane (unless a model plane was passed). Without model.progressive it
    // grows by IMPLICIT_GROWTH, after the caller's hooks, and only the stacks they did not add.
    if (!modelPlaneOf(this.hooks)) {
      if (usesProgressivePlane(this.parsed)) this.hooks.push(new ProgressivePlane());
      else if (changesStacks(this.parsed) || growsPretrained(this.parsed)) this.hooks.push(new ProgressivePlane({ config: IMPLICIT_GROWTH, builderGroups: false }));
    }
    checkDepthMask(this.parsed, this.hooks);
    this.stats = new RunStats(this.schedule.phases.length);
    const progress = this.config.training.progress;
    if (progress === 'on' || (progress === 'auto' && process.stderr.isTTY)) this.callbacks.push(progressBar(this.controller.totalSteps));

    if (this.runDir) {
      openRunFolder(this.runDir, { config_hash: this.parsed.hash });
      // Recorded at once (not at the first step), so a run killed while its data is prepared can
      // still be resumed from its folder; never over the config of a run already there.
      if (!existsSync(join(this.runDir, 'config.yaml'))) writeResolvedConfigs(this.runDir, this.parsed);
    }

    // Planes for the first phase (entered at the first step, so hooks added later still run).
    const first = this.parsed.phases[0]!;
    this.planes = new DataPlanes(this.parsed, this.seed, this.runDir, options, () => modelPlaneOf(this.hooks)?.trainingStack());
    this.data = this.planes.forPhase(first);
    // Every later phase's data plane is checked now too (e.g. a corpus too small for its batch), not when it starts.
    if (!options.data) for (const later of this.parsed.phases.slice(1)) this.planes.forPhase(later);
    this.model = firstModel(this.parsed, options.model, this.data.getBatchSpec(), this.seed);
    this.model.model.rack.recompute = this.config.training.recompute === true;
    this.optimizer = options.optimizer ? buildOptimizer(options.optimizer, this.model) : buildOptimizer(first.optimizer, this.model);
    // The progressive model plane checks its whole plan now (bad growth, freezing, LoRA targets, formats).
    this.modelPlane?.validate(this);
  }

  /**
   * Continues a run from its folder alone: the config it recorded (`config.yaml`) and its newest
   * checkpoint. Hooks are code, so pass the same ones again.
   */
  static resumeRun(runDir: string, options: Omit<TrainingMachineOptions, 'resume' | 'runDir' | 'totalSteps'> = {}): TrainingMachine {
    const path = join(runDir, 'config.yaml');
    if (!existsSync(path)) throw new CheckpointError('missing', runDir, `${runDir} has no config.yaml: is it a StackWise run folder that was started?`);
    return new TrainingMachine(loadConfig(path), { ...options, runDir, resume: 'latest' });
  }

  // ---- public state ------------------------------------------------------------------------

  get step(): number {
    return this.controller.currentStep;
  }

  get t(): number {
    return this.controller.t;
  }

  get isComplete(): boolean {
    return this.controller.isComplete;
  }

  /** The phase of the current step (the last phase once complete). */
  get phase(): Phase {
    return this.schedule.phaseAt(this.controller.t);
  }

  get phaseIndex(): number {
    return this.currentPhase;
  }

  /** The resolved planes of phase `index` (default: the current one). */
  resolvedPhase(index = Math.max(0, this.currentPhase)): ResolvedPhase {
    return this.parsed.phases[index]!;
  }

  /**
   * A named random generator whose state is saved in checkpoints (for hooks that need
   * randomness beyond explicit seeds). Seeded from the run seed and the name.
   */
  rng(name: string): Xoshiro128 {
    let r = this.rngs.get(name);
    if (!r) {
      r = new Xoshiro128(combineSeeds(this.seed, hashString32(name)));
      this.rngs.set(name, r);
    }
    return r;
  }

  addHook(hook: TrainingHooks): void {
    if (this.started) throw new Error('TrainingMachine.addHook: hooks must be added before the first step (a resume gives them their saved state then)');
    this.hooks.push(hook);
  }

  /**
   * Appends a record to the run's metrics JSONL (no-op without a run folder, or while a resume
   * restores the hooks, when no logger is open yet). Hooks use it for model events
   * (`{kind: 'grow' | 'freeze' | 'adapters' | 'quantize', step, t, description, stacks}`).
   */
  logRecord(record: Record<string, unknown>): void {
    this.logger?.write(record as never);
  }

  /** The hook of that name (e.g. 'progressive': the ProgressivePlane a model.progressive config installs). */
  getHook(name: string): TrainingHooks | undefined {
    return this.hooks.find((h) => h.name === name);
  }

  /** The hook that drives the model plane (growth, freezing, adapters), if any. */
  get modelPlane(): ModelPlaneHook | undefined {
    return modelPlaneOf(this.hooks);
  }

  /** The hooks, in call order. */
  get hookList(): readonly TrainingHooks[] {
    return this.hooks;
  }

  addCallback(callback: TrainingCallbacks): void {
    this.callbacks.push(callback);
  }

  /** Where the run is (step, t, phase) and the specs of its three live planes; changes nothing. */
  getCurrentState(): MachineState {
    const index = this.schedule.indexAt(this.controller.t);
    return {
      step: this.controller.currentStep,
      t: this.controller.t,
      totalSteps: this.controller.totalSteps,
      complete: this.controller.isComplete,
      phase: this.schedule.phases[index]!.name,
      phaseIndex: index,
      phaseEntered: index === this.currentPhase,
      data: this.data.getBatchSpec(),
      model: modelSpecs(this.model),
      optimizer: this.optimizer.getSpec(),
    };
  }

  /**
   * (Data_t, Model_t, Optimizer_t) of `step` (default: the next step), for inspection: the batch
   * source and micro-batches, the model, the optimizer spec and lr that step would use. No side
   * effects — see machine-inspect.ts for what "would use" means for a phase not entered yet.
   */
  assemblePlanes(step: number = this.controller.currentStep): AssembledPlanes {
    return assemblePlanesOf(
      {
        step: this.controller.currentStep,
        stepT: (s) => this.controller.tOf(s),
        totalSteps: this.controller.totalSteps,
        phaseAtStep: (s) => {
          const index = this.schedule.indexAt(this.controller.tOf(s));
          return { phase: this.schedule.phases[index]!, index };
        },
        currentPhase: this.currentPhase,
        resolved: (i) => this.parsed.phases[i]!,
        data: this.data,
        dataFor: (resolved) => this.planes.forPhase(resolved),
        model: this.model,
        optimizer: this.optimizer,
        optimizerFromCaller: this.options.optimizer !== undefined && !this.parsed.given.optimizer,
      },
      step,
    );
  }


  // ---- phases ------------------------------------------------------------------------------

  private hookContext(index: number, step: number): PhaseContext {
    return {
      machine: this,
      phase: this.schedule.phases[index]!,
      index,
      previous: index > 0 ? this.schedule.phases[index - 1] : undefined,
      resolved: this.parsed.phases[index]!,
      step,
      t: this.controller.tOf(step),
    };
  }

  /**
   * Assembles the planes of phase `index` (see the file comment). `restoring`: the phase a resumed
   * run is in, whose model came from the checkpoint: no hook is called, no optimizer state reset,
   * nothing logged.
   */
  private enterPhase(index: number, restoring: boolean, step: number): void {
    const resolved = this.parsed.phases[index]!;
    const phase = this.schedule.phases[index]!;
    const ctx = this.hookContext(index, step);
    if (index > 0 || this.currentPhase >= 0) this.data = this.planes.forPhase(resolved);
    if (!restoring) for (const h of this.hooks) h.onPhaseStart?.(phase, this, ctx);
    this.model.noteStructure(index);
    applyModelPlane(this.model, resolved, phase, this.data.getBatchSpec().objective);

    // A built optimizer keeps its own settings unless the config has an optimizer section.
    if (!this.options.optimizer || this.parsed.given.optimizer) {
      const spec = optimizerSpecOf(resolved.optimizer);
      const nameOf = this.model.nameOf();
      const what = this.optimizer.applySpec(spec, (p) => nameOf.get(p) ?? p.describe());
      if (what === 'replaced' && index > 0 && !restoring) this.log(`phase '${phase.name}': optimizer type changed to ${spec.type}; its state starts fresh`);
    }
    const groups = this.optimizer.sync(this.model, { resetState: resolved.optimizer.reset_state && !restoring });
    if (groups.length === 0) {
      throw new Error(`phase '${phase.name}': the model has no trainable parameter (everything is frozen); unfreeze something or attach adapters in the phase's hooks`);
    }
    assertCompatiblePlanes(this.data, this.model, this.optimizer, `phase '${phase.name}' (starting at step ${step}, t = ${this.controller.tOf(step)})`);
    this.currentPhase = index;
    this.phaseEnded = false;
    this.refreshPhaseCache();
    if (!restoring) {
      const stat = this.stats.phase(index);
      if (stat.first_step < 0) stat.first_step = step;
      this.logger?.phase('phase_start', step, this.controller.tOf(step), phase.name, index);
      for (const c of this.callbacks) c.onPhaseStart?.(phase, this, ctx);
    }
  }

  /**
   * After hooks ran inside a phase: parameters whose trainable flag changed join or leave the
   * optimizer (state of the others kept), and the specs are checked again.
   */
  private checkPlanes(phase: Phase, step: number): void {
    const inOptimizer = new Set(this.optimizer.optimizer.params());
    const trainable = this.model.trainableParameters();
    if (trainable.length !== inOptimizer.size || trainable.some(([, p]) => !inOptimizer.has(p))) {
      this.optimizer.sync(this.model);
      this.refreshPhaseCache();
    }
    assertCompatiblePlanes(this.data, this.model, this.optimizer, `step ${step} (phase '${phase.name}', after the onStepStart hooks)`);
  }

  private refreshPhaseCache(): void {
    const seqLen = this.data.getBatchSpec().seq_len;
    this.phaseCache = { trainable: this.model.numParameters(true), flopsPerToken: this.model.flopsPerToken(seqLen).train };
  }

  private phaseResult(index: number): PhaseResult {
    return this.stats.phaseResult(index, this.schedule.phases[index]!.name);
  }

  private finishPhase(index: number): void {
    const phase = this.schedule.phases[index]!;
    const step = this.controller.currentStep;
    const stat = this.stats.phase(index);
    stat.end_step = step;
    if (this.config.training.eval_at_phase_end) {
      const ev = this.evaluate('phase_end');
      if (ev) stat.eval = ev;
    }
    const ctx = this.hookContext(index, step);
    for (const h of this.hooks) h.onPhaseEnd?.(phase, this, ctx);
    this.phaseEnded = true;
    const result = this.phaseResult(index);
    this.logger?.phase('phase_end', step, this.controller.t, phase.name, index, result);
    for (const c of this.callbacks) c.onPhaseEnd?.(phase, result, this);
    if (this.runDir && this.config.training.checkpoint_at_phase_end && !this.controller.isComplete) this.saveCheckpoint('phase_end');
  }

  /**
   * Resumes if asked and opens the metrics log — what the first step (or train()) does anyway;
   * call it first to see where a resumed run stands (`step`, `isComplete`) before stepping.
   */
  prepare(): void {
    this.begin();
  }

  /** Before the first step (or checkpoint): resumes if asked, opens the metrics log. */
  private begin(): void {
    if (this.started) return;
    const resume = this.options.resume;
    if (this.resumedFrom === undefined && resume !== undefined && resume !== false) this.resumeFrom(resume === true ? 'latest' : resume);
    this.started = true;
    if (this.runDir) {
      writeResolvedConfigs(this.runDir, this.parsed);
      if (!this.logger) {
        if (this.resumedFrom === undefined && listCheckpoints(this.runDir).length > 0) {
          throw new CheckpointError('exists', this.runDir, `run folder ${this.runDir} already holds checkpoints; resume it (resume: true / --resume) or choose another run_dir so nothing is overwritten`);
        }
        const stale = join(this.runDir, METRICS_FILE);
        if (existsSync(stale) && statSync(stale).size > 0) {
          // A run that died before its first checkpoint: keep its log aside, start a clean one.
          renameSync(stale, join(this.runDir, `${METRICS_FILE}.${new Date().toISOString().replace(/[:.]/g, '-')}.old`));
        }
        this.logger = new MetricsLogger(this.runDir, { tensorboard: this.config.training.tensorboard });
      }
    }
    this.stats.startSession();
  }

  // ---- stepping ----------------------------------------------------------------------------

  /**
   * Runs one training step and returns its metrics. With `lossFn` the step minimises the user's
   * loss instead of the objective's built-in one (everything else — phases, hooks, clipping, lr,
   * accumulation, checkpoints — is unchanged).
   */
  trainStep(lossFn?: LossFn): StepMetrics {
    if (this.diverged) throw this.diverged;
    this.begin();
    if (this.controller.isComplete) throw new Error(`TrainingMachine: the run is complete (${this.controller.totalSteps} steps)`);
    const started = performance.now();
    const step = this.controller.currentStep;
    const t = this.controller.t;
    const index = this.schedule.indexAt(t);
    if (index !== this.currentPhase) this.enterPhase(index, false, step);
    const phase = this.schedule.phases[index]!;
    const stepCtx: StepContext = { machine: this, step, t, phase, phaseIndex: index };
    if (this.hooks.some((h) => h.onStepStart)) {
      for (const h of this.hooks) h.onStepStart?.(this, stepCtx);
      this.checkPlanes(phase, step);
    }

    const lrs = this.optimizer.setLr(t, phase.localT(t));
    const lr = this.optimizer.lrAt(t, phase.localT(t));
    const accum = this.optimizer.accumulationSteps;
    const backend = this.model.model.backend;
    const spec = this.data.getBatchSpec();
    this.optimizer.zeroGrad();
    let lossSum = 0;
    let tokens = 0;
    for (let micro = 0; micro < accum; micro++) {
      const batch = this.data.trainBatch(step, micro, t);
      if (batch.seqLen !== spec.seq_len || batch.batch < 1 || batch.batch > spec.batch_size || batch.inputIds.length !== batch.batch * batch.seqLen) {
        throw new Error(`step ${step}: the data source gave a batch of ${batch.batch} × ${batch.seqLen} (${batch.inputIds.length} ids), but its BatchSpec says ${spec.batch_size} × ${spec.seq_len}`);
      }
      if (batch.scored === 0) throw new Error(`step ${step}: objective '${spec.objective}' scored no position in micro-batch ${micro}`);
      tokens += batch.tokens;
      const value = E.tidy(() => {
        const ids = E.tensor(batch.inputIds, [batch.batch, batch.seqLen], { dtype: 'int32', backend });
        const seed = combineSeeds(this.seed, 0xd5, step, micro);
        const loss = lossFn
          ? userLoss(lossFn, { model: this.model, batch, inputIds: ids, step, t, micro, phase, seed })
          : // The fused head + loss (no [B, S, V] logits; see ModelAdapter.loss).
            this.model.loss(ids, { seed, step, sampleIds: batch.sampleIds, timeRatios: batch.ratios }, preparedTargets(batch, batch.batch, batch.seqLen, this.model.model.dtype, backend));
        const v = loss.item();
        if (!Number.isFinite(v)) return v;
        // Saved activations are freed as backward consumes them (nothing of the graph is read after).
        (accum > 1 ? E.mulScalar(loss, 1 / accum) : loss).backward(undefined, { freeSaved: true });
        return v;
      });
      this.stats.microBatches++;
      if (!Number.isFinite(value)) this.fail(step, t, phase, `the loss is ${value} (micro-batch ${micro})`);
      lossSum += value;
    }
    const gradNorm = this.optimizer.clipGradients();
    if (!Number.isFinite(gradNorm)) this.fail(step, t, phase, `the gradient norm is ${gradNorm}`);
    for (const h of this.hooks) h.beforeUpdate?.(this, stepCtx);
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.controller.advance();

    const loss = lossSum / accum;
    const stepMs = performance.now() - started;
    this.stats.recordStep(index, loss, tokens, this.phaseCache.flopsPerToken * tokens, stepMs);
    const metrics: StepMetrics = {
      step,
      t,
      phase: phase.name,
      phase_index: index,
      loss,
      lr,
      lrs,
      grad_norm: gradNorm,
      tokens,
      tokens_seen: this.stats.tokensSeen,
      flops_seen: this.stats.flops,
      tokens_per_s: tokens / Math.max(1e-9, stepMs / 1000),
      trainable_params: this.phaseCache.trainable,
      step_ms: stepMs,
      wall_s: this.stats.wallTime(),
    };
    this.logger?.step(metrics);
    for (const c of this.callbacks) c.onStep?.(metrics, this);

    const done = this.controller.currentStep;
    const phaseOver = this.controller.isComplete || this.schedule.indexAt(this.controller.t) !== index;
    if (phaseOver) this.finishPhase(index);
    const every = this.config.training.eval_every;
    if (every > 0 && done % every === 0 && !(phaseOver && this.config.training.eval_at_phase_end)) this.evaluate('periodic');
    const ckEvery = this.config.training.checkpoint_every;
    if (this.runDir && ckEvery > 0 && done % ckEvery === 0 && !this.controller.isComplete) this.saveCheckpoint('periodic');
    return metrics;
  }

  private fail(step: number, t: number, phase: Phase, what: string): never {
    this.optimizer.zeroGrad();
    const last = this.lastCheckpoint ?? (this.runDir ? latestCheckpoint(this.runDir)?.path : undefined);
    const err = new TrainingDivergedError(
      `training diverged at step ${step} (t = ${t}, phase '${phase.name}'): ${what}; the update was not applied and nothing was saved. ` +
        (last ? `The last good checkpoint is ${last}: resume from it with a lower lr or a clip_norm.` : 'There is no checkpoint to resume from.'),
      step,
      last,
    );
    this.diverged = err;
    this.logger?.write({ type: 'diverged', step, t, phase: phase.name, reason: what });
    this.logger?.close();
    throw err;
  }

  /** Loss and perplexity on the validation batches of the current data plane (undefined without validation data). */
  evaluate(reason: EvalMetrics['reason'] = 'manual'): EvalMetrics | undefined {
    const phaseIndex = Math.max(0, this.currentPhase);
    const at = { step: this.controller.currentStep, t: this.controller.t, phase: this.schedule.phases[phaseIndex]!.name, phaseIndex };
    const ev = evaluateModel(this.model, this.data, at, reason, { elboSamples: this.config.training.eval_elbo_samples ?? DEFAULT_EVAL_ELBO_SAMPLES });
    if (!ev) return undefined;
    this.stats.lastEval = ev;
    this.logger?.eval(ev);
    for (const c of this.callbacks) c.onEval?.(ev, this);
    return ev;
  }

  /** Trains until total_steps (with the user's loss when `lossFn` is given); returns per-phase and final metrics. */
  train(lossFn?: LossFn): TrainResult {
    this.begin();
    const firstStep = this.controller.currentStep;
    const losses: number[] = [];
    try {
      while (!this.controller.isComplete) losses.push(this.trainStep(lossFn).loss);
      const lastEval = this.stats.lastEval;
      let finalEval = lastEval && lastEval.step === this.controller.currentStep ? lastEval : undefined;
      finalEval ??= this.evaluate('final');
      // A run resumed from its final checkpoint (killed after writing it) has nothing to add to it.
      if (this.runDir && this.resumedFrom !== this.controller.currentStep) this.saveCheckpoint('final');
      const sessionLosses = this.stats.sessionLosses;
      const result: TrainResult = {
        total_steps: this.controller.totalSteps,
        steps_run: this.controller.currentStep - firstStep,
        final_loss: sessionLosses[sessionLosses.length - 1] ?? this.stats.phase(this.schedule.phases.length - 1).final_loss,
        losses,
        phases: this.schedule.phases.map((_, i) => this.phaseResult(i)),
        tokens_seen: this.stats.tokensSeen,
        wall_time_s: this.stats.wallTime(),
        flops: this.stats.flops,
        phase_transitions: this.controller.boundarySteps(this.schedule),
      };
      if (this.resumedFrom !== undefined) result.resumed_from = this.resumedFrom;
      if (finalEval) result.final_eval = finalEval;
      if (this.lastCheckpoint) result.last_checkpoint = this.lastCheckpoint;
      return result;
    } finally {
      this.logger?.flush();
      this.logger?.close();
      this.logger = null;
    }
  }

  // ---- checkpoints (what they hold: machine-checkpoint.ts) ---------------------------------

  /** Writes a checkpoint of the current state into the run folder; returns its path. */
  saveCheckpoint(reason: CheckpointEvent['reason'] = 'manual'): CheckpointEvent {
    if (!this.runDir) throw new Error('TrainingMachine.saveCheckpoint: no run folder (set training.run_dir or options.runDir)');
    this.begin();
    const step = this.controller.currentStep;
    const bad = nonFiniteParameter(this.model);
    if (bad !== undefined) {
      throw new TrainingDivergedError(
        `refusing to checkpoint at step ${step}: parameter '${bad}' holds NaN or Inf; the last good checkpoint (${this.lastCheckpoint ?? 'none'}) is kept`,
        step,
        this.lastCheckpoint,
      );
    }
    const info = writeMachineCheckpoint(this, this.runDir, {
      phaseEnded: this.phaseEnded,
      rngs: this.rngs,
      stats: this.stats,
      // The 'checkpoint' record written right after this checkpoint is kept on resume.
      records: this.logger ? this.logger.records + 1 : 0,
    });
    this.lastCheckpoint = info.path;
    this.logger?.write({ type: 'checkpoint', step, path: info.path, reason });
    const event: CheckpointEvent = { path: info.path, step, reason };
    for (const c of this.callbacks) c.onCheckpoint?.(event, this);
    return event;
  }

  /**
   * Restores the state of a checkpoint (must be called before the first step; `resume` in the
   * options does it for you). The checkpoint must come from the same config (else the message
   * lists what differs) and be intact (size and sha256 of every file).
   */
  resumeFrom(target: string): void {
    if (this.started || this.currentPhase >= 0 || this.controller.currentStep > 0) throw new Error('TrainingMachine.resumeFrom: resume before the first step');
    const path = resumeTargetPath(target, this.runDir);
    if (!path) {
      this.log(`no checkpoint in ${this.runDir}; starting a fresh run`);
      return;
    }
    const loaded = readResumeCheckpoint(path, this.runDir, this.parsed);
    const state = loaded.manifest.state;
    // The model the checkpoint's manifest describes, with its weights, trainable flags and stack births.
    const previous = this.model;
    this.model = modelFromCheckpoint(loaded, path, previous.model.backend.name);
    if (!this.options.model) previous.model.dispose();
    // The hooks' own state (the model plane's builder is restored over that model), then the phase the run is in.
    const index = state.phase_index;
    const ctx = index >= 0 ? this.hookContext(index, Math.max(0, state.metrics.phases[index]?.first_step ?? 0)) : undefined;
    restoreHookStates(this, loaded, path, ctx);
    if (index >= 0) this.enterPhase(index, true, ctx!.step);
    this.phaseEnded = state.phase_ended;
    loadOptimizerFromCheckpoint(loaded, path, this);
    this.controller.seek(state.step);
    for (const [k, s] of Object.entries(state.rng.named)) this.rng(k).setState(s);
    if (state.data_cursor.source !== undefined) this.data.loadState?.(state.data_cursor.source);
    this.stats.restore(state.metrics);
    this.refreshPhaseCache();
    this.lastCheckpoint = path;
    this.resumedFrom = state.step;
    if (this.runDir) this.logger = new MetricsLogger(this.runDir, { tensorboard: this.config.training.tensorboard, resumeRecords: state.metrics.records });
    this.logger?.write({ type: 'resume', step: state.step, from: path });
  }

  /** Frees optimizer state (the model belongs to the caller when it was passed in). */
  dispose(): void {
    this.logger?.close();
    this.logger = null;
    for (const h of this.hooks) h.dispose?.();
    this.optimizer.dispose();
  }
}

/** Calls a user's loss and checks it gave a scalar to minimise. */
function userLoss(lossFn: LossFn, ctx: LossContext): E.Tensor {
  const loss = lossFn(ctx);
  if (!(loss instanceof E.Tensor) || loss.size !== 1) {
    const found = loss instanceof E.Tensor ? `a tensor of shape [${loss.shape.join(', ')}]` : typeof loss;
    throw new TypeError(`trainStep(lossFn): the loss function must return a scalar tensor (one element), found ${found}`);
  }
  return loss;
}
