// How the TrainingMachine gets its planes for a phase, and the checks that they fit together:
// which batch source serves a phase's data plane (the config's corpus, the caller's token data or
// batch source), the first model built from the config, and the errors raised when a phase's
// model, data and optimizer disagree.
//
// Separate from the step loop because it is all about *where things come from* (the config, the
// options, caches), not about what a step does; machine.ts reads as the loop. Package-internal.

import {
  ConfigError,
  DataAdapter,
  IncompatibleSpecsError,
  attentionFor,
  buildModel,
  isBatchSource,
  isTokenData,
  loadDataPlane,
  validateTrainingState,
  type BatchSource,
  type BatchSpec,
  type DataPlaneSettings,
  type ModelAdapter,
  type ObjectiveFactory,
  type ObjectiveName,
  type OptimizerAdapter,
  type TokenData,
} from '../framework/index.js';
import type { Model } from '../nn/index.js';
import type { ParsedConfig, ResolvedPhase } from './config/resolve.js';
import { isModelPlaneHook, type ModelPlaneHook, type TrainingHooks } from './hooks.js';
import type { Phase } from './schedule/phase.js';
import { loadInitModel } from './init-from.js';

/** The machine's options that say where each phase's batches come from (part of TrainingMachineOptions). */
export interface DataPlaneOptions {
  /** Token streams (the config's data plane settings apply) or a ready batch source. */
  data?: TokenData | BatchSource;
  /** The data plane to use with token data when the config has no data section. */
  dataPlane?: DataPlaneSettings;
  /** Objective factories that win over the registered ones. */
  objectives?: Partial<Record<ObjectiveName, ObjectiveFactory>>;
}

/**
 * @internal The batch source of each phase. Corpora read from the config are loaded once and
 * shared by every phase that names the same corpus, tokenizer and split.
 */
export class DataPlanes {
  private readonly tokenCache = new Map<string, TokenData>();
  private readonly userData: TokenData | BatchSource | undefined;

  constructor(
    private readonly parsed: ParsedConfig,
    private readonly seed: number,
    private readonly runDir: string | undefined,
    private readonly options: DataPlaneOptions,
    /** Time-as-depth: the final-rack index of the stack being trained (undefined when the model does not grow). */
    private readonly depthStack: () => number | undefined,
  ) {
    this.userData = options.data;
  }

  /** The batch source of phase `resolved`. */
  forPhase(resolved: ResolvedPhase): BatchSource {
    const user = this.userData;
    const adapterOptions = { seed: this.seed, depthStack: this.depthStack, ...(this.options.objectives ? { objectives: this.options.objectives } : {}) };
    if (user && isBatchSource(user)) {
      const plane = resolved.data ?? this.planeFromOption(resolved, false);
      if (plane && user.withPlane) return user.withPlane(plane);
      const firstPlane = this.parsed.phases[0]!.data;
      if (resolved.index > 0 && resolved.data && JSON.stringify(resolved.data) !== JSON.stringify(firstPlane)) {
        throw new Error(`phase '${resolved.name}' changes the data plane, but the batch source given in options.data has no withPlane(plane) method to follow it`);
      }
      return user;
    }
    if (user && isTokenData(user)) {
      const plane = resolved.data ?? this.planeFromOption(resolved, true)!;
      return new DataAdapter(user, plane, adapterOptions);
    }
    if (!resolved.data) throw new Error("TrainingMachine: the config has no 'data' section; add one or pass token data / a batch source in options.data");
    return new DataAdapter(this.tokenDataFor(resolved.data), resolved.data, adapterOptions);
  }

  private tokenDataFor(plane: NonNullable<ResolvedPhase['data']>): TokenData {
    const key = JSON.stringify([plane.corpus, plane.tokenizer ?? null, plane.split]);
    let data = this.tokenCache.get(key);
    if (!data) {
      data = loadDataPlane(plane, this.runDir);
      this.tokenCache.set(key, data);
    }
    return data;
  }

  private planeFromOption(resolved: ResolvedPhase, required: boolean): DataPlaneSettings | undefined {
    const plane = this.options.dataPlane;
    if (!plane) {
      if (required) throw new Error("TrainingMachine: token data needs a data plane: add a 'data' section to the config or pass options.dataPlane ({seq_len, batch_size, objective})");
      return undefined;
    }
    return resolved.task !== undefined ? { ...plane, objective: resolved.task } : plane;
  }
}

/**
 * @internal The model the run starts with: the caller's, or the first phase's model plane sized
 * for the longest sequence any phase uses.
 */
export function firstModel(parsed: ParsedConfig, given: Model | ModelAdapter | undefined, batchSpec: BatchSpec, seed: number): ModelAdapter {
  if (given) return buildModel(given);
  const first = parsed.phases[0]!;
  if (!first.model) throw new Error("TrainingMachine: the config has no 'model' section; add one or pass a built model in options.model");
  const maxSeqLen = Math.max(...parsed.phases.map((p) => p.data?.seq_len ?? batchSpec.seq_len));
  const backend = parsed.config.training.backend;
  // model.init.from: the pretrained folder's model and weights (its sizes are already the config's).
  if (first.model.init) return buildModel(loadInitModel(first.model, backend ? { backend } : {}));
  return buildModel(first.model, { vocabSize: batchSpec.vocab_size, maxSeqLen, objective: batchSpec.objective, seed, ...(backend ? { backend } : {}) });
}

/** @internal Time-as-depth masks need a model plane (the model must grow). */
export function checkDepthMask(parsed: ParsedConfig, hooks: readonly TrainingHooks[]): void {
  if (hooks.some(isModelPlaneHook)) return;
  const depth = parsed.phases.find((p) => p.data?.mask?.kind === 'depth');
  if (depth) throw new ConfigError([{ path: 'data.mask.kind', expected: "a mask kind other than 'depth' for a rack that does not grow (no model.progressive, no phase changing model.n_stacks): time-as-depth ties the noise to the stack being trained, so the model must grow", found: `'depth' in phase '${depth.name}'` }]);
}

/** @internal The installed model plane, if any. */
export function modelPlaneOf(hooks: readonly TrainingHooks[]): ModelPlaneHook | undefined {
  return hooks.find(isModelPlaneHook);
}

/**
 * @internal After a phase's onPhaseStart hooks: sets the attention mode the phase's model plane
 * asks for (or its objective implies) and checks the hooks built the stacks it names.
 */
export function applyModelPlane(model: ModelAdapter, resolved: ResolvedPhase, phase: Phase, objective: BatchSpec['objective']): void {
  if (!resolved.model) return;
  const mode = resolved.model.attention === 'auto' ? attentionFor(objective) : resolved.model.attention;
  model.setAttentionMode(mode);
  const stacks = model.model.rack.numStacks;
  if (stacks !== resolved.model.n_stacks) {
    throw new Error(
      `phase '${phase.name}' asks for model.n_stacks = ${resolved.model.n_stacks}, but the model has ${stacks} stack(s) after the phase's onPhaseStart hooks; ` +
        'growth is done by a model-plane hook (e.g. the progressive RackBuilder): pass one in options.hooks, or fix n_stacks',
    );
  }
}

/** @internal Throws IncompatibleSpecsError when data, model and optimizer do not fit; `where` prefixes the message. */
export function assertCompatiblePlanes(data: BatchSource, model: ModelAdapter, optimizer: OptimizerAdapter, where: string): void {
  const problems = validateTrainingState(data, model, optimizer);
  if (problems.length > 0) {
    const err = new IncompatibleSpecsError(problems);
    err.message = `${where}: ${err.message}`;
    throw err;
  }
}
