/**
 * Conveniences over the one TrainingMachine (no second training loop):
 *
 *   ProgressiveDataLoader  a BatchSource over token data (+ a data plane) or over another batch
 *                          source (e.g. the machine's DataAdapter); `getBatchSpec()` says what its
 *                          batches are; `withPlane` follows a phase's data plane.
 *   ProgressiveTrainer     `trainRack(source, dataLoader, { targetStacks })`: a growing schedule
 *                          of equal phases, one per stack count (append or prepend), run by a
 *                          TrainingMachine with a ProgressivePlane — over a builder, a built
 *                          model, or a config's model section (then exactly the config path).
 *
 *   const builder = new ProgressiveRackBuilder(model, { targetStacks: 4, freeze: 'frozen_trunk' });
 *   const loader = new ProgressiveDataLoader(tokens, { seq_len: 32, batch_size: 8, objective: 'clm' });
 *   const { result } = new ProgressiveTrainer({ stepsPerPhase: 100, optimizer: { lr: 1e-3 } })
 *     .trainRack(builder, loader, { targetStacks: 4 });
 */
import {
  DataAdapter,
  isBatchSource,
  type BatchSource,
  type BatchSpec,
  type DataBatch,
  type DataPlaneSettings,
  type DataSpec,
  type JsonValue,
  type TokenData,
} from '../framework/index.js';
import type { TrainResult, TrainingCallbacks, TrainingHooks } from './hooks.js';
import { TrainingMachine } from './machine.js';
import { ProgressivePlane } from './progressive-plane.js';
import { ProgressiveConfigError, ProgressiveRackBuilder } from './progressive/index.js';
import { Model } from '../nn/index.js';

export interface ProgressiveDataLoaderOptions {
  /** Seed of batch sampling and corruption (default 0). */
  seed?: number;
}

/** A batch source for progressive runs (see the file comment). */
export class ProgressiveDataLoader implements BatchSource {
  readonly inner: BatchSource;
  private readonly tokens: TokenData | undefined;
  private readonly seed: number;
  /** Present when the wrapped source has one. */
  readonly getDataSpec?: () => DataSpec;

  constructor(source: TokenData | BatchSource, plane?: DataPlaneSettings, opts: ProgressiveDataLoaderOptions = {}) {
    this.seed = opts.seed ?? 0;
    if (isBatchSource(source)) {
      this.inner = plane && source.withPlane ? source.withPlane(plane) : source;
      this.tokens = undefined;
    } else {
      if (!plane) throw new Error('ProgressiveDataLoader: token data needs a data plane ({seq_len, batch_size, objective})');
      this.tokens = source;
      this.inner = new DataAdapter(source, plane, { seed: this.seed });
    }
    const inner = this.inner;
    if (inner.getDataSpec) this.getDataSpec = () => inner.getDataSpec!();
  }

  /** The data plane of a machine, wrapped (its current DataAdapter). */
  static fromMachine(machine: TrainingMachine): ProgressiveDataLoader {
    return new ProgressiveDataLoader(machine.data);
  }

  getBatchSpec(): BatchSpec {
    return this.inner.getBatchSpec();
  }


  trainBatch(step: number, micro: number, t: number): DataBatch {
    return this.inner.trainBatch(step, micro, t);
  }

  evalBatches(step: number, t: number): DataBatch[] {
    return this.inner.evalBatches?.(step, t) ?? [];
  }

  withPlane(plane: DataPlaneSettings): ProgressiveDataLoader {
    if (this.tokens) return new ProgressiveDataLoader(this.tokens, plane, { seed: this.seed });
    return new ProgressiveDataLoader(this.inner, plane, { seed: this.seed });
  }

  saveState(): JsonValue {
    return this.inner.saveState?.() ?? null;
  }

  loadState(state: JsonValue): void {
    if (state !== null) this.inner.loadState?.(state);
  }
}

export interface ProgressiveTrainerOptions {
  /** Steps of each phase (default 100); ignored when totalSteps is given. */
  stepsPerPhase?: number;
  /** Steps of the whole run (split into equal phases). */
  totalSteps?: number;
  /** The optimizer plane (config form, e.g. {lr: 1e-3, lr_schedule: …}); default {lr: 1e-3}. */
  optimizer?: Record<string, unknown>;
  /** Training plane extras (seed, run_dir, eval_every, checkpoint_every, …). */
  training?: Record<string, unknown>;
  hooks?: TrainingHooks[];
  callbacks?: TrainingCallbacks[];
  /** Resume from the run folder's latest checkpoint. */
  resume?: boolean;
  log?: (line: string) => void;
}

export interface TrainRackOptions {
  /** Stacks at the end (default: the builder's targetStacks; for a model or a model section, model.progressive.target_stacks, else required). */
  targetStacks?: number;
  /**
   * model.progressive settings (config names: direction, growth, freeze, stack_lora, …) when
   * training a built model; a model section brings its own `progressive`.
   */
  progressive?: Record<string, unknown>;
}

export interface TrainRackResult {
  result: TrainResult;
  machine: TrainingMachine;
  plane: ProgressivePlane;
  /** Stacks of every phase. */
  stacks: number[];
}

/** What trainRack grows: a builder over a model, a built model, or a config's `model` section. */
export type RackSource = ProgressiveRackBuilder | Model | Record<string, unknown>;

export class ProgressiveTrainer {
  readonly options: ProgressiveTrainerOptions;

  constructor(options: ProgressiveTrainerOptions = {}) {
    this.options = options;
  }

  /** The config of the growing schedule: one equal phase per stack count. */
  scheduleConfig(fromStacks: number, targetStacks: number): { config: Record<string, unknown>; stacks: number[] } {
    const stacks = Array.from({ length: targetStacks - fromStacks + 1 }, (_, i) => fromStacks + i);
    const k = stacks.length;
    const total = this.options.totalSteps ?? (this.options.stepsPerPhase ?? 100) * k;
    if (total < k) throw new ProgressiveConfigError(`trainRack: ${total} steps cannot cover ${k} phases (one per stack count ${fromStacks}…${targetStacks})`);
    const schedule = stacks.map((n, i) => ({ name: `stacks_${n}`, start_t: i / k, end_t: (i + 1) / k }));
    const config = {
      optimizer: this.options.optimizer ?? { lr: 1e-3 },
      training: { progress: 'off', tensorboard: false, ...this.options.training, total_steps: total },
      schedule,
    };
    return { config, stacks };
  }

  /**
   * Grows a rack from its current size to `targetStacks` (one equal phase per stack count, in the
   * builder's / model.progressive's direction: append or prepend), training on `dataLoader`, on one
   * TrainingMachine with a ProgressivePlane — the path `model.progressive` configs take.
   *   - a ProgressiveRackBuilder: its model, operator, freeze policy and adapters;
   *   - a built Model: grown by `opts.progressive` (model.progressive settings);
   *   - a config's model section (e.g. {preset: 'llama', d_model: 64, …, progressive: {…}}): built
   *     from it at its n_stacks, exactly as a config with that section and the schedule runs.
   */
  trainRack(source: RackSource, dataLoader: ProgressiveDataLoader | BatchSource | TokenData, opts: TrainRackOptions = {}): TrainRackResult {
    const data = dataLoader instanceof ProgressiveDataLoader || isBatchSource(dataLoader) ? dataLoader : undefined;
    if (!data) throw new Error('trainRack: token data needs a data plane; wrap it in a ProgressiveDataLoader(tokens, {seq_len, batch_size, objective})');
    if (source instanceof ProgressiveRackBuilder) {
      const builder = source;
      const target = opts.targetStacks ?? builder.targetStacks;
      if (target > builder.targetStacks) throw new ProgressiveConfigError(`trainRack: targetStacks ${target} is past the builder's targetStacks ${builder.targetStacks}`);
      const { config, stacks } = this.stacksSchedule(builder.numStacks, target);
      return this.run(config, stacks, data, { model: builder.model, plane: new ProgressivePlane({ builder, stacksPerPhase: stacks }) });
    }
    if (source instanceof Model) {
      const progressive = opts.progressive ?? {};
      const target = opts.targetStacks ?? (progressive['target_stacks'] as number | undefined);
      if (target === undefined) throw new ProgressiveConfigError('trainRack: give targetStacks (or progressive.target_stacks) to grow a built model');
      const { config, stacks } = this.stacksSchedule(source.rack.numStacks, target);
      return this.run(config, stacks, data, { model: source, plane: new ProgressivePlane({ config: progressive, stacksPerPhase: stacks }) });
    }
    // A config's model section: the config path itself (model.progressive, phases raising n_stacks).
    const section = source as Record<string, unknown>;
    const progressive = { ...((section['progressive'] as Record<string, unknown> | undefined) ?? {}), ...opts.progressive };
    const from = (section['n_stacks'] as number | undefined) ?? 1;
    const target = opts.targetStacks ?? (progressive['target_stacks'] as number | undefined);
    if (target === undefined) throw new ProgressiveConfigError('trainRack: give targetStacks (or model.progressive.target_stacks)');
    const { config, stacks } = this.stacksSchedule(from, target);
    const schedule = (config['schedule'] as Record<string, unknown>[]).map((p, i) => ({ ...p, overrides: { model: { n_stacks: stacks[i] } } }));
    const withModel = { ...config, model: { ...section, n_stacks: from, progressive }, schedule };
    return this.run(withModel, stacks, data, {});
  }

  private stacksSchedule(from: number, target: number): { config: Record<string, unknown>; stacks: number[] } {
    if (!Number.isInteger(target) || target < from) throw new ProgressiveConfigError(`trainRack: targetStacks ${target} must be an integer ≥ the ${from} stacks the rack has`);
    return this.scheduleConfig(from, target);
  }

  private run(config: Record<string, unknown>, stacks: number[], data: BatchSource, built: { model?: Model; plane?: ProgressivePlane }): TrainRackResult {
    const machine = new TrainingMachine(config, {
      ...(built.model ? { model: built.model } : {}),
      data,
      hooks: [...(this.options.hooks ?? []), ...(built.plane ? [built.plane] : [])],
      ...(this.options.callbacks ? { callbacks: this.options.callbacks } : {}),
      ...(this.options.resume ? { resume: true } : {}),
      ...(this.options.log ? { log: this.options.log } : {}),
    });
    const plane = machine.modelPlane as ProgressivePlane;
    plane.validate(machine);
    try {
      const result = machine.train();
      return { result, machine, plane, stacks };
    } finally {
      machine.dispose();
    }
  }
}
