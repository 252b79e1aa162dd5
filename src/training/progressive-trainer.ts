/**
 * Conveniences over the one TrainingMachine (no second training loop):
 *
 *   ProgressiveDataLoader  a BatchSource over token data (+ a data plane) or over another batch
 *                          source (e.g. the machine's DataAdapter); `getBatchSpec()` says what its
 *                          batches are; `withPlane` follows a phase's data plane.
 *   ProgressiveTrainer     `trainRack(builder, dataLoader, { targetStacks })`: an append schedule
 *                          of equal phases, one per stack count (builder.numStacks … targetStacks),
 *                          run by a TrainingMachine with a ProgressivePlane over the builder.
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
import { ProgressiveConfigError, type ProgressiveRackBuilder } from './progressive/index.js';

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
  /** Stacks at the end (default: the builder's targetStacks). */
  targetStacks?: number;
}

export interface TrainRackResult {
  result: TrainResult;
  machine: TrainingMachine;
  plane: ProgressivePlane;
  /** Stacks of every phase. */
  stacks: number[];
}

export class ProgressiveTrainer {
  readonly options: ProgressiveTrainerOptions;

  constructor(options: ProgressiveTrainerOptions = {}) {
    this.options = options;
  }

  /** The config of the append schedule: one equal phase per stack count. */
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
   * Grows `builder`'s rack from its current size to `targetStacks` (append: one phase per stack
   * count, equal phases), training on `dataLoader`, on one TrainingMachine.
   */
  trainRack(builder: ProgressiveRackBuilder, dataLoader: ProgressiveDataLoader | BatchSource | TokenData, opts: TrainRackOptions = {}): TrainRackResult {
    const target = opts.targetStacks ?? builder.targetStacks;
    if (builder.direction !== 'append') throw new ProgressiveConfigError(`trainRack builds an append (left→right) schedule; the builder is '${builder.direction}' (write a config schedule for right→left)`);
    if (!Number.isInteger(target) || target < builder.numStacks) throw new ProgressiveConfigError(`trainRack: targetStacks ${target} must be an integer ≥ the ${builder.numStacks} stacks the rack has`);
    if (target > builder.targetStacks) throw new ProgressiveConfigError(`trainRack: targetStacks ${target} is past the builder's targetStacks ${builder.targetStacks}`);
    const { config, stacks } = this.scheduleConfig(builder.numStacks, target);
    const data = dataLoader instanceof ProgressiveDataLoader || isBatchSource(dataLoader) ? dataLoader : undefined;
    if (!data) throw new Error('trainRack: token data needs a data plane; wrap it in a ProgressiveDataLoader(tokens, {seq_len, batch_size, objective})');
    const plane = new ProgressivePlane({ builder, stacksPerPhase: stacks });
    const machine = new TrainingMachine(config, {
      model: builder.model,
      data,
      hooks: [...(this.options.hooks ?? []), plane],
      ...(this.options.callbacks ? { callbacks: this.options.callbacks } : {}),
      ...(this.options.resume ? { resume: true } : {}),
      ...(this.options.log ? { log: this.options.log } : {}),
    });
    plane.validate(machine);
    try {
      const result = machine.train();
      return { result, machine, plane, stacks };
    } finally {
      machine.dispose();
    }
  }
}
