// Adapters put each plane behind its specs:
// - DataAdapter: token streams + the data plane of a phase → deterministic batches prepared by
//   the objective, and the BatchSpec / DataSpec they satisfy;
// - ModelAdapter: a live nn.Model (embedding → rack → head) → forward, specs, trainable
//   parameters by stable name, which stacks are new;
// - OptimizerAdapter: an Optimizer + the optimizer plane → parameter groups by role, lr(t) per
//   group, clipping, and state that survives growth.

import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { combineSeeds, rngFor, type TokenStream } from '../data/index.js';
import type { Model, Stack } from '../nn/index.js';
import {
  AdamW,
  SGD,
  assignParamGroups,
  clipGradNorm,
  makeLrSchedule,
  type AssignedGroup,
  type LrSchedule,
  type Optimizer,
  type ParamGroupRule,
} from '../optim/index.js';
import { checkPreparedBatch, createObjective, type Objective, type ObjectiveContext, type ObjectiveFactory, type ObjectiveName } from './objective.js';
import { DEFAULT_DIFFUSION_MASK, DEFAULT_MLM_MASK, type BatchSpec, type MaskRatioSpec } from './specs/batch.js';
import type { DataSpec } from './specs/data.js';
import type { EmbeddingSpec } from './specs/embedding.js';
import type { HeadSpec } from './specs/head.js';
import type { RackSpec } from './specs/rack.js';
import { validateOptimizerSpec, type OptimizerSpec } from './specs/optimizer.js';
import type { Objective as ObjectiveKind } from './specs/objective.js';
import type { TokenData } from './data-source.js';
import type { OptimizerPlaneConfig } from './config/schema.js';
import type { JsonValue } from './json.js';

// ---- data -----------------------------------------------------------------------------------------

/** What the data plane of a phase asks for (the resolved `data` config has these fields). */
export interface DataPlaneSettings {
  seq_len: number;
  batch_size: number;
  objective: ObjectiveKind;
  mask?: MaskRatioSpec;
  mask_token_id?: number;
  eval_batches?: number;
  /** Training window starts: any position ('random', default) or multiples of seq_len ('aligned'). */
  windows?: 'random' | 'aligned';
  [key: string]: unknown;
}

/** One prepared batch, as arrays (the machine turns them into tensors inside the step scope). */
export interface DataBatch {
  batch: number;
  seqLen: number;
  inputIds: Int32Array;
  targets: Int32Array;
  weights?: Float32Array;
  /**
   * The noise (mask) ratio of each row (masked diffusion): a model with a time embedding reads
   * them (ForwardContext.timeRatios); ModelAdapter leaves them out for a model without one.
   */
  ratios?: ArrayLike<number>;
  sampleIds: number[];
  /** Input tokens in the batch (batch × seqLen). */
  tokens: number;
  /** Positions with a target (not -100). */
  scored: number;
}

/** Anything the machine can draw batches from. DataAdapter is the built-in one. */
export interface BatchSource {
  getBatchSpec(): BatchSpec;
  getDataSpec?(): DataSpec;
  /** Micro-batch `micro` of training step `step` at time t; must be deterministic in (step, micro). */
  trainBatch(step: number, micro: number, t: number): DataBatch;
  /** Validation batches (deterministic); empty when there is no validation data. */
  evalBatches?(step: number, t: number): DataBatch[];
  /** Called at each phase start with the phase's resolved data plane (optional). */
  withPlane?(plane: DataPlaneSettings): BatchSource;
  /** State saved in checkpoints, for sources with a cursor (DataAdapter has none: batches are functions of the step). */
  saveState?(): JsonValue;
  loadState?(state: JsonValue): void;
}

export interface DataAdapterOptions {
  /** Run seed; batches and corruption derive their seeds from it. */
  seed: number;
  /** Objective factories that win over the registered ones. */
  objectives?: Partial<Record<ObjectiveName, ObjectiveFactory>>;
  /** A ready objective (used instead of building one from the plane's objective name). */
  objective?: Objective;
  /**
   * Time-as-depth: the final-rack index of the stack being trained, read at every batch (the
   * machine passes its model plane's newest stack); undefined when the model does not grow.
   */
  depthStack?: () => number | undefined;
}

function countScored(targets: Int32Array): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] !== -100) n++;
  return n;
}

/** Batches of random windows from token streams, prepared by the plane's objective. */
export class DataAdapter implements BatchSource {
  readonly source: TokenData;
  readonly plane: DataPlaneSettings;
  readonly objective: Objective;
  readonly maskTokenId: number | undefined;
  private readonly options: DataAdapterOptions;
  private readonly dataSeed: number;
  private readonly objectiveSeed: number;

  constructor(source: TokenData, plane: DataPlaneSettings, options: DataAdapterOptions) {
    this.source = source;
    this.plane = { ...plane };
    this.options = options;
    this.dataSeed = combineSeeds(options.seed, 0xda7a);
    this.objectiveSeed = combineSeeds(options.seed, 0x0b1e);
    this.maskTokenId = plane.mask_token_id ?? source.maskTokenId;
    if (this.maskTokenId !== undefined && !(this.maskTokenId >= 0 && this.maskTokenId < source.vocabSize)) {
      throw new RangeError(`data.mask_token_id: expected a token id below the vocabulary size ${source.vocabSize}, found ${this.maskTokenId}`);
    }
    const mask = plane.objective === 'clm' ? undefined : (plane.mask ?? (plane.objective === 'mlm' ? DEFAULT_MLM_MASK : DEFAULT_DIFFUSION_MASK));
    if (mask) this.plane.mask = mask;
    this.objective = options.objective ?? createObjective(plane.objective, {
      ...(mask ? { mask } : {}),
      ...(this.maskTokenId !== undefined ? { maskTokenId: this.maskTokenId } : {}),
      vocabSize: source.vocabSize,
      data: this.plane,
    }, options.objectives);
    if (source.train.length < plane.seq_len) {
      throw new RangeError(`data: the training split has ${source.train.length} tokens, fewer than seq_len = ${plane.seq_len}`);
    }
  }

  /** The same streams under another phase's data plane. */
  withPlane(plane: DataPlaneSettings): DataAdapter {
    return new DataAdapter(this.source, plane, { ...this.options, objective: undefined });
  }

  getBatchSpec(): BatchSpec {
    const spec: BatchSpec = {
      batch_size: this.plane.batch_size,
      seq_len: this.plane.seq_len,
      vocab_size: this.source.vocabSize,
      objective: this.plane.objective,
    };
    if (this.plane.mask) spec.mask = this.plane.mask;
    if (this.source.padTokenId !== undefined) spec.pad_token_id = this.source.padTokenId;
    if (this.maskTokenId !== undefined && (this.maskTokenId !== spec.pad_token_id)) spec.mask_token_id = this.maskTokenId;
    return spec;
  }

  getDataSpec(): DataSpec {
    return { corpus: this.source.corpusName, tokenizer: this.source.tokenizerName, split: 'train', objective: this.plane.objective };
  }

  private prepare(stream: TokenStream, starts: number[], step: number, t: number): DataBatch {
    const S = this.plane.seq_len;
    const B = starts.length;
    const ids = new Int32Array(B * S);
    starts.forEach((start, b) => ids.set(stream.window(start, S), b * S));
    const batch = { ids, batch: B, seqLen: S, sampleIds: starts };
    const depthStack = this.options.depthStack?.();
    const ctx: ObjectiveContext = { t, step, seed: this.objectiveSeed, vocabSize: this.source.vocabSize, ...(this.maskTokenId !== undefined ? { maskTokenId: this.maskTokenId } : {}), ...(depthStack !== undefined ? { depthStack } : {}) };
    const prepared = this.objective.prepare(batch, ctx);
    checkPreparedBatch(prepared, batch, this.objective.name);
    const out: DataBatch = {
      batch: B,
      seqLen: S,
      inputIds: prepared.inputIds,
      targets: prepared.targets,
      sampleIds: starts,
      tokens: B * S,
      scored: countScored(prepared.targets),
    };
    if (prepared.weights) out.weights = prepared.weights;
    if (prepared.ratios) out.ratios = prepared.ratios;
    return out;
  }

  /**
   * Random windows; the starts depend only on (seed, step, micro), so resuming needs no state.
   * 'aligned' windows start at multiples of seq_len: a fixed set of samples (a sample's id is its
   * start), drawn with replacement.
   */
  trainBatch(step: number, micro: number, t: number): DataBatch {
    const S = this.plane.seq_len;
    const stream = this.source.train;
    const rng = rngFor(this.dataSeed, step, micro);
    const aligned = this.plane.windows === 'aligned';
    const positions = aligned ? Math.floor(stream.length / S) : stream.length - S + 1;
    const starts = Array.from({ length: this.plane.batch_size }, () => rng.nextInt(positions) * (aligned ? S : 1));
    return this.prepare(stream, starts, step, t);
  }

  /** The first `eval_batches` batches of consecutive windows of the validation split. */
  evalBatches(step: number, t: number): DataBatch[] {
    const val = this.source.validation;
    const S = this.plane.seq_len;
    if (!val || val.length < S) return [];
    const out: DataBatch[] = [];
    const max = this.plane.eval_batches ?? 8;
    let start = 0;
    while (out.length < max && start + S <= val.length) {
      const starts: number[] = [];
      while (starts.length < this.plane.batch_size && start + S <= val.length) {
        starts.push(start);
        start += S;
      }
      out.push(this.prepare(val, starts, step, t));
    }
    return out;
  }
}

// ---- model ----------------------------------------------------------------------------------------

export interface ForwardContext {
  /** Dropout seed of this micro-batch. */
  seed: number;
  step: number;
  sampleIds?: number[];
  /**
   * The noise ratio of each row (the batch's `ratios`): passed to a model with a time embedding
   * (time-as-input), which needs them; left out for a model without one.
   */
  timeRatios?: ArrayLike<number>;
}

/** Replaces the model's forward (e.g. an activation cache for a frozen trunk). Returns logits. */
export type ForwardOverride = (model: ModelAdapter, inputIds: Tensor, ctx: ForwardContext) => Tensor;

/**
 * Replaces the model's trunk (embedding + rack), e.g. with an activation cache for a frozen prefix
 * (CachedPrefixForward.forwardHidden): returns the rack's output [B, S, d]; the head — and in
 * training the fused loss — run on it.
 */
export type HiddenOverride = (model: ModelAdapter, inputIds: Tensor, ctx: ForwardContext) => Tensor;

/** What the training loss scores, as tensors (see objectives/loss.ts `preparedTargets`). */
export interface LossTargets {
  /** int32 [B, S]; ignoreIndex where a position is not scored. */
  targets: Tensor;
  /** Per-position float weights [B, S], or null. */
  weights: Tensor | null;
  reduction: 'mean' | 'sum';
  ignoreIndex: number;
}

/** A live model behind its specs. The model evolves in place; the adapter never rebuilds it. */
export class ModelAdapter {
  readonly model: Model;
  /** Set by a hook to change how logits are computed (cleared by setting undefined); wins over hiddenOverride. */
  forwardOverride: ForwardOverride | undefined;
  /** Set by a hook to change how the trunk's output is computed (cleared by setting undefined). */
  hiddenOverride: HiddenOverride | undefined;
  /** Phase index at which each stack object first appeared. */
  private readonly births = new Map<Stack, number>();
  private latestBirth = 0;

  constructor(model: Model) {
    this.model = model;
    this.noteStructure(0);
  }

  /** Records the phase in which stacks not seen before appeared (call after every structural change). */
  noteStructure(phaseIndex: number): void {
    for (const s of this.model.rack.stacks) {
      if (!this.births.has(s)) {
        this.births.set(s, phaseIndex);
        this.latestBirth = Math.max(this.latestBirth, phaseIndex);
      }
    }
  }

  /** Indices of the newest stacks (those that appeared last); all stacks before any growth. */
  newStacks(): Set<number> {
    const out = new Set<number>();
    this.model.rack.stacks.toArray().forEach((s, i) => {
      if (this.births.get(s) === this.latestBirth) out.add(i);
    });
    return out;
  }

  /** Phase index at which stack i appeared. */
  stackBirths(): number[] {
    return this.model.rack.stacks.toArray().map((s) => this.births.get(s) ?? 0);
  }

  forward(inputIds: Tensor, ctx: ForwardContext): Tensor {
    if (this.forwardOverride) return this.forwardOverride(this, inputIds, ctx);
    if (this.hiddenOverride) return this.model.head.forward(this.hiddenOverride(this, inputIds, ctx), { seed: ctx.seed });
    return this.model.forward(inputIds, { seed: ctx.seed, ...this.timeInputs(ctx) }).logits;
  }

  /**
   * The model inputs carrying the context's noise ratios: `timeRatios` for a model with a time
   * embedding (which then fails clearly when the batch has none), nothing for one without (a
   * diffusion batch always reports its ratios; only a time embedding reads them).
   */
  timeInputs(ctx: Pick<ForwardContext, 'timeRatios'>): { timeRatios?: ArrayLike<number> } {
    return this.model.timeEmbedding && ctx.timeRatios !== undefined ? { timeRatios: ctx.timeRatios } : {};
  }

  /**
   * The training loss of a batch, as a scalar: the fused head + cross-entropy
   * (Model.lossFromHidden: no [B, S, V] logits) on the trunk's output, or the cross-entropy of
   * the logits when a forwardOverride gives logits. Targets are scored as given (no shift).
   */
  loss(inputIds: Tensor, ctx: ForwardContext, scored: LossTargets): Tensor {
    const opts = { shift: false, ignoreIndex: scored.ignoreIndex, weights: scored.weights, reduction: scored.reduction, seed: ctx.seed };
    if (this.forwardOverride) return this.model.loss(this.forwardOverride(this, inputIds, ctx), scored.targets, opts);
    const h = this.hiddenOverride ? this.hiddenOverride(this, inputIds, ctx) : this.model.forwardHidden(inputIds, { seed: ctx.seed, ...this.timeInputs(ctx) });
    return this.model.lossFromHidden(h, scored.targets, opts);
  }

  namedParameters(): [string, Tensor][] {
    return this.model.namedParameters();
  }

  trainableParameters(): [string, Tensor][] {
    return this.model.trainableParameters();
  }

  numParameters(trainableOnly = false): number {
    return this.model.numParameters({ trainableOnly });
  }

  /** Name → tensor and tensor → name maps of the current parameters. */
  nameOf(): Map<Tensor, string> {
    return new Map(this.namedParameters().map(([n, t]) => [t, n]));
  }

  /** The embedding's spec; `time_embedding: true` when the model adds a time embedding to it. */
  getEmbeddingSpec(): EmbeddingSpec {
    const spec = this.model.embedding.getSpec();
    if (this.model.timeEmbedding) spec.time_embedding = true;
    return spec;
  }

  getRackSpec(): RackSpec {
    return this.model.rack.toSpec();
  }

  getHeadSpec(): HeadSpec {
    return this.model.head.getSpec();
  }

  /** Sets causal or bidirectional attention on every block. */
  setAttentionMode(mode: 'causal' | 'bidirectional'): void {
    this.model.setAttentionMode(mode);
  }

  /**
   * Multiply-accumulate FLOPs per token of one training step: forward 2·P (matmul weights) plus
   * attention 4·S·d per block; backward the same again for activation gradients plus 2·P_trainable
   * for weight gradients. A fully trainable model gives the usual ≈ 6·P.
   */
  flopsPerToken(seqLen: number): { forward: number; train: number } {
    let matmul = 0;
    let trainableMatmul = 0;
    const headWeight = (this.model.head as { weight?: Tensor }).weight;
    for (const [name, t] of this.namedParameters()) {
      const isHeadDecoder = t === headWeight;
      // Embedding tables are lookups; the time embedding runs once per row, not per token.
      if (t.rank < 2 || ((name.startsWith('embedding.') || name.startsWith('time.')) && !isHeadDecoder)) continue;
      matmul += t.size;
      if (t.requiresGrad) trainableMatmul += t.size;
    }
    // A tied decoder is listed under the embedding: count its matmul once more if it is one.
    if (headWeight && this.nameOf().get(headWeight)?.startsWith('embedding.')) {
      matmul += headWeight.size;
      if (headWeight.requiresGrad) trainableMatmul += headWeight.size;
    }
    const attention = 4 * seqLen * this.model.embedding.dModel * this.model.rack.numBlocks;
    const forward = 2 * matmul + attention;
    return { forward, train: 2 * forward + 2 * trainableMatmul };
  }
}

// ---- optimizer ------------------------------------------------------------------------------------

/** The OptimizerSpec described by an optimizer plane. */
export function optimizerSpecOf(plane: OptimizerPlaneConfig): OptimizerSpec {
  const spec: Record<string, unknown> = {
    type: plane.type,
    lr_schedule: plane.lr_schedule,
    lr_time: plane.lr_time,
    weight_decay: plane.weight_decay,
    betas: plane.betas,
    eps: plane.eps,
    momentum: plane.momentum,
    nesterov: plane.nesterov,
    accumulation_steps: plane.accumulation_steps,
    param_groups: plane.param_groups.map((g) => ({ ...g })),
  };
  if (plane.clip_norm !== undefined) spec['clip_norm'] = plane.clip_norm;
  return validateOptimizerSpec(spec);
}

/** A fresh optimizer of the plane's type (its groups are set by `OptimizerAdapter.sync`). */
export function createOptimizer(spec: OptimizerSpec, params: Tensor[] = []): Optimizer {
  const lr = 1; // every group's lr is set from the schedule before each step
  if (spec.type === 'adamw') {
    return new AdamW(params, { lr, beta1: spec.betas[0], beta2: spec.betas[1], eps: spec.eps, weightDecay: spec.weight_decay });
  }
  return new SGD(params, { lr, momentum: spec.momentum, nesterov: spec.nesterov, weightDecay: spec.weight_decay });
}

function sameKindAndHyper(a: OptimizerSpec, b: OptimizerSpec): 'same' | 'hyper' | 'kind' {
  if (a.type !== b.type) return 'kind';
  const hyper = (s: OptimizerSpec) => JSON.stringify([s.betas, s.eps, s.momentum, s.nesterov]);
  return hyper(a) === hyper(b) ? 'same' : 'hyper';
}

/** An optimizer behind its spec: groups by role, lr as a function of t, clipping, accumulation. */
export class OptimizerAdapter {
  optimizer: Optimizer;
  private spec: OptimizerSpec;
  private schedule: LrSchedule;
  private assigned: AssignedGroup[] = [];

  constructor(optimizer: Optimizer, spec: OptimizerSpec) {
    this.optimizer = optimizer;
    this.spec = spec;
    this.schedule = makeLrSchedule(spec.lr_schedule);
  }

  getSpec(): OptimizerSpec {
    return this.spec;
  }

  /** The groups as last assigned (names, lr scales, member names). */
  get groups(): readonly AssignedGroup[] {
    return this.assigned;
  }

  /**
   * Switches to another phase's optimizer plane. Same type and hyper-parameters: the optimizer
   * stays (state carried over). Same type, other betas/eps/momentum: a new optimizer that takes
   * over the state. Another type: a new optimizer with fresh state (nothing to carry).
   * Returns what happened.
   */
  applySpec(spec: OptimizerSpec, nameOf: (p: Tensor) => string): 'kept' | 'rebuilt' | 'replaced' {
    const change = sameKindAndHyper(this.spec, spec);
    this.spec = spec;
    this.schedule = makeLrSchedule(spec.lr_schedule);
    if (change === 'same') return 'kept';
    const next = createOptimizer(spec, this.optimizer.params());
    if (change === 'hyper') {
      next.setParamGroups(this.optimizer.groups.map((g) => ({ ...g })));
      next.loadNamedState(this.optimizer.namedState(nameOf), nameOf);
    }
    next.stepCount = this.optimizer.stepCount;
    this.optimizer.dispose();
    this.optimizer = next;
    return change === 'hyper' ? 'rebuilt' : 'replaced';
  }

  /**
   * Puts the model's trainable parameters into groups by role (new parameters join, frozen ones
   * leave); state of parameters that stay is kept unless `resetState`.
   */
  sync(model: ModelAdapter, opts: { resetState?: boolean } = {}): AssignedGroup[] {
    const rules: ParamGroupRule[] = this.spec.param_groups.map((g) => {
      const r: ParamGroupRule = { name: g.name, lr_scale: g.lr_scale };
      if (g.weight_decay !== undefined) r.weight_decay = g.weight_decay;
      return r;
    });
    this.assigned = assignParamGroups(model.trainableParameters(), rules, { weightDecay: this.spec.weight_decay, newStacks: model.newStacks() });
    this.optimizer.setParamGroups(
      this.assigned.map((g) => ({ name: g.name, params: g.params, lr: 0, weightDecay: g.weightDecay })),
      { resetState: opts.resetState ?? false },
    );
    return this.assigned;
  }

  /** lr of the schedule at t (global or phase-local t as the spec says). */
  lrAt(t: number, phaseLocalT: number): number {
    return this.schedule(this.spec.lr_time === 'phase' ? phaseLocalT : t);
  }

  /** Sets every group's lr for this step; returns them by group name. */
  setLr(t: number, phaseLocalT: number): Record<string, number> {
    const base = this.lrAt(t, phaseLocalT);
    const out: Record<string, number> = {};
    for (const g of this.optimizer.groups) {
      const scale = this.assigned.find((a) => a.name === g.name)?.lrScale ?? 1;
      g.lr = base * scale;
      out[g.name] = g.lr;
    }
    return out;
  }

  get accumulationSteps(): number {
    return this.spec.accumulation_steps;
  }

  /** Global gradient norm before clipping (clipping when the spec has clip_norm). */
  clipGradients(): number {
    const params = this.optimizer.params();
    if (this.spec.clip_norm !== undefined) return clipGradNorm(params, this.spec.clip_norm);
    return E.globalGradNorm(params.map((p) => p.grad).filter((g): g is Tensor => g !== null && !g.isDisposed));
  }

  step(): void {
    this.optimizer.step();
  }

  zeroGrad(): void {
    this.optimizer.zeroGrad();
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
