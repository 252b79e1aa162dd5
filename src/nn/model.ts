/** EmbeddingBlock, heads (LM, BERT MLM, sequence classification) and Model = EmbeddingBlock → Rack → Head. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { EmbeddingSpec } from '../framework/specs/embedding.js';
import type { HeadSpec } from '../framework/specs/head.js';
import { Module } from './module.js';
import { activate, applyDropout, DropoutSeeds, Embedding, LayerNorm, Linear, makeNorm, type Activation, type Norm } from './layers.js';
import { deriveSeed, DEFAULT_INIT, initTensor, type TensorPlacement } from './init.js';
import { Rack } from './block.js';
import type { ForwardContext } from './attention.js';
import type { EmbeddingConfig, HeadConfig, ModelConfig, NormConfig, TimeEmbeddingConfig } from './config.js';
import { checkTimeRatios, TimeEmbedding } from './time-embedding.js';

export interface BuildOptions extends TensorPlacement {
  /** Seed of every random initialisation (default 0). */
  seed?: number;
}

// ---- EmbeddingBlock ---------------------------------------------------------------------------

export interface EmbeddingInputs {
  /** int32 [B, S] segment ids (default: all 0 when a token-type table exists). */
  tokenTypeIds?: Tensor | null;
  /** int32 [S] or [B, S] position ids (default 0..S-1 + positionOffset). */
  positions?: Tensor | null;
  positionOffset?: number;
  seed?: number;
}

/**
 * Token embedding plus optional learned positions and token types, then an optional norm and
 * dropout. Children: 'token', 'position', 'token_type', 'norm'.
 */
export class EmbeddingBlock extends Module {
  readonly vocabSize: number;
  readonly dModel: number;
  readonly config: EmbeddingConfig;
  readonly token: Embedding;
  readonly position: Embedding | null;
  readonly tokenType: Embedding | null;
  readonly norm: Norm | null;
  private readonly seeds: DropoutSeeds;

  constructor(vocabSize: number, dModel: number, config: EmbeddingConfig, opts: BuildOptions = {}) {
    super();
    this.vocabSize = vocabSize;
    this.dModel = dModel;
    this.config = structuredClone(config);
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.token = this.registerModule('token', new Embedding(vocabSize, dModel, { ...place, seed: deriveSeed(seed, 'token') }));
    if (config.positional === 'learned') {
      if (!config.maxPositions) throw new Error('EmbeddingBlock: learned positions need maxPositions');
      this.position = this.registerModule('position', new Embedding(config.maxPositions, dModel, { ...place, seed: deriveSeed(seed, 'position') }));
    } else {
      this.position = null;
    }
    this.tokenType = config.typeVocabSize
      ? this.registerModule('token_type', new Embedding(config.typeVocabSize, dModel, { ...place, seed: deriveSeed(seed, 'token_type') }))
      : null;
    this.norm = config.norm ? this.registerModule('norm', makeNorm(config.norm.kind, dModel, { ...place, eps: config.norm.eps })) : null;
    this.seeds = new DropoutSeeds(deriveSeed(seed, 'dropout'));
  }

  forward(ids: Tensor, inputs: EmbeddingInputs = {}): Tensor {
    if (ids.dtype !== 'int32' || ids.rank !== 2) throw new Error(`EmbeddingBlock: ids must be int32 [B, S], got ${ids.describe()}`);
    const [B, S] = ids.shape;
    let h = this.token.forward(ids);
    if (this.tokenType) {
      if (inputs.tokenTypeIds) {
        const t = inputs.tokenTypeIds;
        if (t.rank !== 2 || t.shape[0] !== B || t.shape[1] !== S) throw new Error(`EmbeddingBlock: tokenTypeIds ${t.describe()} must be int32 [${B}, ${S}] like the ids`);
        h = E.add(h, this.tokenType.forward(t));
      } else {
        h = E.add(h, E.narrow(this.tokenType.weight, 0, 0, 1));
      }
    }
    if (this.position) {
      const offset = inputs.positionOffset ?? 0;
      const max = this.position.numEmbeddings;
      let pos = inputs.positions ?? null;
      if (!pos) {
        if (offset + S > max) throw new Error(`EmbeddingBlock: positions ${offset}..${offset + S - 1} exceed the learned position table (max_positions ${max})`);
        pos = E.tensor(Int32Array.from({ length: S }, (_, i) => i + offset), [S], { backend: ids.backend });
      }
      h = E.add(h, this.position.forward(pos));
    }
    if (this.norm) h = this.norm.forward(h);
    return applyDropout(h, this.config.dropout ?? 0, this.training, this.seeds, inputs.seed);
  }

  /** The EmbeddingSpec (framework/specs/embedding.ts) of this block. */
  getSpec(): EmbeddingSpec {
    const spec: EmbeddingSpec = {
      vocab_size: this.vocabSize,
      d_model: this.dModel,
      positional: this.config.positional,
      type_vocab_size: this.config.typeVocabSize ?? 0,
    };
    if (this.config.positional !== 'none' && this.config.maxPositions !== undefined) spec.max_positions = this.config.maxPositions;
    return spec;
  }
}

// ---- Heads ------------------------------------------------------------------------------------

export abstract class Head extends Module {
  /** Norm applied to the rack's output before the head proper (child 'final_norm'). */
  readonly finalNorm: Norm | null;

  constructor(dModel: number, finalNorm: NormConfig | null | undefined, place: TensorPlacement) {
    super();
    const where = { dtype: place.dtype, backend: place.backend };
    this.finalNorm = finalNorm ? this.registerModule('final_norm', makeNorm(finalNorm.kind, dModel, { ...where, eps: finalNorm.eps })) : null;
  }

  /** Logits from the rack's output (final norm included). */
  forward(h: Tensor, ctx: HeadContext = {}): Tensor {
    return this.project(this.finalNorm ? this.finalNorm.forward(h) : h, ctx);
  }

  /** Logits from an already normed hidden state. */
  abstract project(h: Tensor, ctx?: HeadContext): Tensor;

  /**
   * `project` split before its last linear map, for the fused loss (linearCrossEntropy): logits =
   * hidden · weightᵀ + bias. Null (the default) when the projection cannot be fused; the loss
   * then goes through `project`'s logits.
   */
  decoderInput(_h: Tensor, _ctx?: HeadContext): DecoderInput | null {
    return null;
  }

  abstract getSpec(): HeadSpec;

  /** The HeadConfig describing this head as it is now. */
  abstract headConfig(): HeadConfig;

  protected finalNormConfig(): NormConfig | null {
    return this.finalNorm ? { kind: this.finalNorm.kind, eps: this.finalNorm.eps } : null;
  }
}

/** What a head's last projection reads: logits = hidden · weightᵀ (+ bias), weight [V, d]. */
export interface DecoderInput {
  hidden: Tensor;
  weight: Tensor;
  bias: Tensor | null;
}

/** The decoder of a token head, unless a subclass changed `project` (then only it knows the logits). */
function plainDecoder(head: Head, own: Head['project'], hidden: Tensor, weight: Tensor, bias: Tensor | null): DecoderInput | null {
  if (head.project !== own || weight.dtype !== hidden.dtype || weight.rank !== 2 || weight.shape[1] !== hidden.shape[hidden.rank - 1]) return null;
  return { hidden, weight, bias };
}

export interface HeadContext {
  /** [B, S] padding mask, used by mean pooling. */
  keyMask?: Tensor | null;
  seed?: number;
}

/** Decoder weight: the token embedding's table (tied, shared tensor) or its own [V, d]. */
function decoderWeight(mod: Module & { registerDecoder(w: Tensor, trainable: boolean): void }, vocab: number, dModel: number, tiedTo: Embedding | null, seed: number, place: TensorPlacement): void {
  if (tiedTo) {
    if (tiedTo.numEmbeddings !== vocab || tiedTo.dim !== dModel) throw new Error(`head: cannot tie a [${vocab}, ${dModel}] decoder to an embedding of [${tiedTo.numEmbeddings}, ${tiedTo.dim}]`);
    mod.registerDecoder(tiedTo.weight, tiedTo.weight.requiresGrad);
  } else {
    mod.registerDecoder(initTensor([vocab, dModel], DEFAULT_INIT, deriveSeed(seed, 'weight'), place), true);
  }
}

/** logits = h Wᵀ (+ b), W tied to the embedding or its own. Parameters 'weight', 'bias'. */
export class LMHead extends Head {
  readonly dModel: number;
  readonly vocabSize: number;
  private tied: boolean;

  constructor(dModel: number, vocabSize: number, opts: { tiedTo?: Embedding | null; bias?: boolean; finalNorm?: NormConfig | null; seed?: number } & TensorPlacement) {
    super(dModel, opts.finalNorm, opts);
    this.dModel = dModel;
    this.vocabSize = vocabSize;
    this.tied = !!opts.tiedTo;
    decoderWeight(this, vocabSize, dModel, opts.tiedTo ?? null, opts.seed ?? 0, opts);
    if (opts.bias) this.registerParameter('bias', E.zeros([vocabSize], { dtype: opts.dtype, backend: opts.backend }));
  }

  /** @internal */
  registerDecoder(w: Tensor, trainable: boolean): void {
    this.registerParameter('weight', w, trainable);
  }

  get isTied(): boolean {
    return this.tied;
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get bias(): Tensor | null {
    return this.hasParam('bias') ? this.param('bias') : null;
  }

  /** Gives the head its own copy of the (tied) decoder weight. */
  untie(): this {
    if (!this.tied) return this;
    const w = this.weight;
    const copy = E.noGrad(() => E.clone(w));
    this.registerParameter('weight', copy, w.requiresGrad);
    this.tied = false;
    return this;
  }

  project(h: Tensor): Tensor {
    return E.linear(h, this.weight, this.bias);
  }

  override decoderInput(h: Tensor): DecoderInput | null {
    return plainDecoder(this, LMHead.prototype.project, h, this.weight, this.bias);
  }

  getSpec(): HeadSpec {
    return { kind: 'lm', d_model: this.dModel, vocab_size: this.vocabSize, tied: this.tied, bias: this.bias !== null };
  }

  headConfig(): HeadConfig {
    return { kind: 'lm', tied: this.tied, bias: this.bias !== null, finalNorm: this.finalNormConfig() };
  }
}

/**
 * BERT's MLM head: dense (+bias) → activation → LayerNorm → decoder (tied or own) + bias.
 * Children 'dense', 'norm'; parameters 'weight' (decoder), 'bias'.
 */
export class MLMHead extends Head {
  readonly dModel: number;
  readonly vocabSize: number;
  readonly activation: Activation;
  readonly dense: Linear;
  readonly norm: LayerNorm;
  private tied: boolean;

  constructor(dModel: number, vocabSize: number, opts: { tiedTo?: Embedding | null; activation?: Activation; normEps?: number; finalNorm?: NormConfig | null; seed?: number } & TensorPlacement) {
    super(dModel, opts.finalNorm, opts);
    this.dModel = dModel;
    this.vocabSize = vocabSize;
    this.activation = opts.activation ?? 'gelu';
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.dense = this.registerModule('dense', new Linear(dModel, dModel, { ...place, bias: true, seed: deriveSeed(seed, 'dense') }));
    this.norm = this.registerModule('norm', new LayerNorm(dModel, { ...place, eps: opts.normEps ?? 1e-12 }));
    this.tied = !!opts.tiedTo;
    decoderWeight(this, vocabSize, dModel, opts.tiedTo ?? null, seed, place);
    this.registerParameter('bias', E.zeros([vocabSize], place));
  }

  /** @internal */
  registerDecoder(w: Tensor, trainable: boolean): void {
    this.registerParameter('weight', w, trainable);
  }

  get isTied(): boolean {
    return this.tied;
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get bias(): Tensor {
    return this.param('bias');
  }

  project(h: Tensor): Tensor {
    return E.linear(this.transform(h), this.weight, this.bias);
  }

  override decoderInput(h: Tensor): DecoderInput | null {
    if (this.project !== MLMHead.prototype.project) return null;
    return plainDecoder(this, MLMHead.prototype.project, this.transform(h), this.weight, this.bias);
  }

  /** dense → activation → LayerNorm: the decoder's input. */
  private transform(h: Tensor): Tensor {
    return this.norm.forward(activate(this.dense.forward(h), this.activation));
  }

  getSpec(): HeadSpec {
    return { kind: 'mlm', d_model: this.dModel, vocab_size: this.vocabSize, tied: this.tied, bias: true };
  }

  headConfig(): HeadConfig {
    const c: HeadConfig = { kind: 'mlm', tied: this.tied, activation: this.activation, normEps: this.norm.eps };
    if (this.finalNorm) c.finalNorm = this.finalNormConfig();
    return c;
  }

  /** Gives the head its own copy of the (tied) decoder weight. */
  untie(): this {
    if (!this.tied) return this;
    const w = this.weight;
    this.registerParameter('weight', E.noGrad(() => E.clone(w)), w.requiresGrad);
    this.tied = false;
    return this;
  }
}

/**
 * One label per sequence: pool (first token, or mean over non-padded tokens) → optional
 * dense + tanh pooler → dropout → classifier. Children 'pooler', 'classifier'.
 */
export class ClassificationHead extends Head {
  readonly dModel: number;
  readonly nClasses: number;
  readonly pooling: 'cls' | 'mean';
  readonly pooler: Linear | null;
  readonly classifier: Linear;
  readonly dropout: number;
  private readonly seeds: DropoutSeeds;

  constructor(dModel: number, nClasses: number, opts: { pooling?: 'cls' | 'mean'; pooler?: boolean; bias?: boolean; dropout?: number; finalNorm?: NormConfig | null; seed?: number } & TensorPlacement) {
    super(dModel, opts.finalNorm, opts);
    this.dModel = dModel;
    this.nClasses = nClasses;
    this.pooling = opts.pooling ?? 'cls';
    this.dropout = opts.dropout ?? 0;
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.pooler = opts.pooler ? this.registerModule('pooler', new Linear(dModel, dModel, { ...place, bias: true, seed: deriveSeed(seed, 'pooler') })) : null;
    this.classifier = this.registerModule('classifier', new Linear(dModel, nClasses, { ...place, bias: opts.bias ?? true, seed: deriveSeed(seed, 'classifier') }));
    this.seeds = new DropoutSeeds(deriveSeed(seed, 'dropout'));
  }

  /** h [B, S, d] → logits [B, nClasses]. */
  project(h: Tensor, ctx: HeadContext = {}): Tensor {
    const [B, S, d] = h.shape;
    let pooled: Tensor;
    if (this.pooling === 'cls') {
      pooled = E.reshape(E.narrow(h, 1, 0, 1), [B, d]);
    } else if (ctx.keyMask) {
      const m = E.reshape(ctx.keyMask.dtype === h.dtype ? ctx.keyMask : E.cast(ctx.keyMask, h.dtype), [B, S, 1]);
      const total = E.sum(E.mul(h, m), [1]);
      const count = E.maximum(E.sum(m, [1]), E.full([1], 1, { dtype: h.dtype, backend: h.backend }));
      pooled = E.div(total, count);
    } else {
      pooled = E.mean(h, [1]);
    }
    if (this.pooler) pooled = E.tanh(this.pooler.forward(pooled));
    pooled = applyDropout(pooled, this.dropout, this.training, this.seeds, ctx.seed);
    return this.classifier.forward(pooled);
  }

  getSpec(): HeadSpec {
    return { kind: 'classification', d_model: this.dModel, n_classes: this.nClasses, pooling: this.pooling, bias: this.classifier.bias !== null };
  }

  headConfig(): HeadConfig {
    const c: HeadConfig = { kind: 'classification', nClasses: this.nClasses, pooling: this.pooling, pooler: this.pooler !== null, bias: this.classifier.bias !== null };
    if (this.dropout) c.dropout = this.dropout;
    if (this.finalNorm) c.finalNorm = this.finalNormConfig();
    return c;
  }
}

export function makeHead(config: HeadConfig, dModel: number, vocabSize: number, embedding: EmbeddingBlock, opts: BuildOptions = {}): Head {
  const place = { dtype: opts.dtype, backend: opts.backend };
  const seed = deriveSeed(opts.seed ?? 0, 'head');
  switch (config.kind) {
    case 'lm':
      return new LMHead(dModel, vocabSize, { ...place, seed, tiedTo: config.tied ? embedding.token : null, bias: config.bias, finalNorm: config.finalNorm });
    case 'mlm':
      return new MLMHead(dModel, vocabSize, { ...place, seed, tiedTo: config.tied ? embedding.token : null, activation: config.activation, normEps: config.normEps, finalNorm: config.finalNorm });
    case 'classification':
      return new ClassificationHead(dModel, config.nClasses, { ...place, seed, pooling: config.pooling, pooler: config.pooler, bias: config.bias, dropout: config.dropout, finalNorm: config.finalNorm });
  }
}

// ---- Model ------------------------------------------------------------------------------------

export interface ModelInputs {
  /** [B, S] 1 = token, 0 = padding (int32 or float); padded keys get no attention. */
  attentionMask?: Tensor | null;
  tokenTypeIds?: Tensor | null;
  positions?: Tensor | null;
  positionOffset?: number;
  /** Also return every layer's hidden state. */
  outputHiddenStates?: boolean;
  /** Seed of this call's dropout masks (e.g. the training step). */
  seed?: number;
  /**
   * Time-as-input: the noise (mask) ratio r ∈ [0, 1] of each row, embedded by the model's time
   * embedding and added to the embedding output. Required by a model with a time embedding,
   * refused by one without.
   */
  timeRatios?: ArrayLike<number> | null;
}

export interface ModelOutput {
  /** [B, S, V] for token heads, [B, nClasses] for classification. */
  logits: Tensor;
  /**
   * With outputHiddenStates: [embedding output, block 1, …, block N] where — as in Hugging Face —
   * the last entry has the head's final norm applied when the head has one.
   */
  hiddenStates?: Tensor[];
}

export interface LossOptions {
  /** Causal-LM shift: logits at t are scored against labels[t+1] (default: true for 'lm' heads). */
  shift?: boolean;
  ignoreIndex?: number;
  /** Per-target float weights, shaped like the labels (aligned with the targets after any shift). */
  weights?: Tensor | null;
  /** 'mean' (default): Σ wᵢ·nllᵢ / Σ wᵢ over scored targets; 'sum': Σ wᵢ·nllᵢ (as E.crossEntropy). */
  reduction?: 'mean' | 'sum';
}

/** Model.forwardLoss / lossFromHidden: the forward inputs, the loss options and the fused loss's chunk. */
export interface ForwardLossOptions extends Omit<ModelInputs, 'outputHiddenStates'>, LossOptions {
  /** Rows of logits per chunk of the fused loss (E.linearCrossEntropy's chunkSize; default: its own). */
  chunkSize?: number;
}

/**
 * EmbeddingBlock (+ optional TimeEmbedding) → Rack → Head. Children 'embedding', 'rack', 'head',
 * and 'time' when the model has a time embedding (time-as-input: forward then needs
 * `timeRatios`, one noise ratio per row, whose embedding is added to the embedding output).
 */
export class Model extends Module {
  readonly family: ModelConfig['family'];
  readonly embedding: EmbeddingBlock;
  readonly rack: Rack;
  readonly head: Head;
  private time: TimeEmbedding | null = null;

  constructor(config: Pick<ModelConfig, 'family'>, embedding: EmbeddingBlock, rack: Rack, head: Head, timeEmbedding: TimeEmbedding | null = null) {
    super();
    this.family = config.family;
    if (embedding.dModel !== rack.dModel) throw new Error(`Model: embedding d_model ${embedding.dModel} differs from the rack's ${rack.dModel}`);
    this.embedding = this.registerModule('embedding', embedding);
    this.rack = this.registerModule('rack', rack);
    this.head = this.registerModule('head', head);
    if (timeEmbedding) this.setTimeEmbedding(timeEmbedding);
    this.namedParameters(); // names every parameter tensor
  }

  /** The time embedding (child 'time'), or null: the model then takes no noise ratios. */
  get timeEmbedding(): TimeEmbedding | null {
    return this.time;
  }

  /**
   * Gives the model a freshly initialised time embedding (child 'time', on the model's dtype and
   * backend). Its output projection starts at zero, so the model computes the same function as
   * before for any ratios; from now on forward needs `timeRatios`.
   */
  attachTimeEmbedding(config: Partial<TimeEmbeddingConfig> = {}, opts: { seed?: number } = {}): TimeEmbedding {
    if (this.time) throw new Error('Model.attachTimeEmbedding: the model already has a time embedding');
    const time = new TimeEmbedding({ dModel: this.embedding.dModel, ...config, seed: opts.seed ?? 0, dtype: this.dtype, backend: this.backend });
    this.setTimeEmbedding(time);
    this.namedParameters();
    return time;
  }

  private setTimeEmbedding(time: TimeEmbedding): void {
    if (time.dModel !== this.embedding.dModel) throw new Error(`Model: the time embedding's width ${time.dModel} differs from the model's d_model ${this.embedding.dModel}`);
    this.time = this.registerModule('time', time);
  }

  /**
   * The ModelConfig describing the model as it is now (stacks added or removed, attention mode
   * switched, head untied…): each stack is described by its first block's config.
   */
  get config(): ModelConfig {
    const head = this.head.headConfig();
    if (head.kind === 'lm' && !head.finalNorm) delete head.finalNorm;
    return {
      family: this.family,
      vocabSize: this.embedding.vocabSize,
      dModel: this.embedding.dModel,
      embedding: structuredClone(this.embedding.config),
      stacks: this.rack.stacks.toArray().map((s) => ({ nBlocks: s.length, block: structuredClone(s.blocks.at(0).config) })),
      head,
      ...(this.time ? { timeEmbedding: this.time.config } : {}),
    };
  }

  /** Builds a freshly initialised model; same config + seed → same weights. */
  static fromConfig(config: ModelConfig, opts: BuildOptions = {}): Model {
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    const embedding = new EmbeddingBlock(config.vocabSize, config.dModel, config.embedding, { ...place, seed: deriveSeed(seed, 'embedding') });
    const rack = Rack.create(config.dModel, config.stacks, { ...place, seed: deriveSeed(seed, 'rack') });
    const head = makeHead(config.head, config.dModel, config.vocabSize, embedding, { ...place, seed });
    const time = config.timeEmbedding ? new TimeEmbedding({ dModel: config.dModel, ...config.timeEmbedding, ...place, seed: deriveSeed(seed, 'time') }) : null;
    return new Model(config, embedding, rack, head, time);
  }

  forward(ids: Tensor, inputs: ModelInputs = {}): ModelOutput {
    const keyMask = inputs.attentionMask ? this.keyMaskOf(inputs.attentionMask, ids) : null;
    const hidden: Tensor[] | undefined = inputs.outputHiddenStates ? [] : undefined;
    const h = this.trunk(ids, inputs, keyMask, hidden);
    const normed = this.head.finalNorm ? this.head.finalNorm.forward(h) : h;
    if (hidden && this.head.finalNorm) hidden[hidden.length - 1] = normed;
    const logits = this.head.project(normed, { keyMask, seed: inputs.seed });
    return hidden ? { logits, hiddenStates: hidden } : { logits };
  }

  /** The rack's output [B, S, d] (before the head and its final norm): the trunk of `forward`. */
  forwardHidden(ids: Tensor, inputs: Omit<ModelInputs, 'outputHiddenStates'> = {}): Tensor {
    return this.trunk(ids, inputs, inputs.attentionMask ? this.keyMaskOf(inputs.attentionMask, ids) : null);
  }

  /**
   * The loss of `forward` followed by `loss`, without the [B, S, V] logits when the head's last
   * projection can be fused (E.linearCrossEntropy: logits are made in row chunks, gradients
   * during the forward pass). Heads that cannot be fused (classification, a subclass with its own
   * `project`) go through the logits. Same value and gradients as `loss(forward(ids).logits,
   * labels, opts)` up to float rounding.
   */
  forwardLoss(ids: Tensor, labels: Tensor, opts: ForwardLossOptions = {}): Tensor {
    return this.lossFromHidden(this.forwardHidden(ids, opts), labels, opts);
  }

  /** `forwardLoss` from the rack's output `h` (e.g. served by an activation cache): head + loss. */
  lossFromHidden(h: Tensor, labels: Tensor, opts: ForwardLossOptions = {}): Tensor {
    const normed = this.head.finalNorm ? this.head.finalNorm.forward(h) : h;
    const ctx: HeadContext = { keyMask: opts.attentionMask ?? null, seed: opts.seed };
    const decoder = this.head.decoderInput(normed, ctx);
    if (!decoder) return this.loss(this.head.project(normed, ctx), labels, opts);
    const { targets, ignoreIndex } = this.targetsOf(labels, opts, 'Model.forwardLoss');
    return E.linearCrossEntropy(decoder.hidden, decoder.weight, targets, {
      bias: decoder.bias, ignoreIndex, weights: opts.weights ?? null, reduction: opts.reduction ?? 'mean', chunkSize: opts.chunkSize,
    });
  }

  /**
   * Embedding (+ the time embedding of the rows' ratios) → rack; `hidden` (when given) collects
   * the embedding output and every block's.
   */
  private trunk(ids: Tensor, inputs: Omit<ModelInputs, 'outputHiddenStates'>, keyMask: Tensor | null, hidden?: Tensor[]): Tensor {
    const ctx: ForwardContext = { keyMask, positions: inputs.positions ?? null, positionOffset: inputs.positionOffset, seed: inputs.seed };
    const h0 = this.addTime(this.embedding.forward(ids, { tokenTypeIds: inputs.tokenTypeIds, positions: inputs.positions, positionOffset: inputs.positionOffset, seed: inputs.seed }), inputs.timeRatios);
    hidden?.push(h0);
    return this.rack.forward(h0, ctx, hidden);
  }

  /**
   * The embedding output `h` [B, S, d] plus the time embedding of `ratios` (one per row) at every
   * position. A model with a time embedding needs the ratios; one without refuses them (they
   * would be silently ignored otherwise).
   */
  addTime(h: Tensor, ratios: ArrayLike<number> | null | undefined): Tensor {
    const given = ratios !== undefined && ratios !== null;
    if (!this.time) {
      if (given) throw new Error('Model.forward: timeRatios were given, but the model has no time embedding (model.time_embedding); leave them out, or attach one');
      return h;
    }
    if (!given) throw new Error('Model.forward: the model has a time embedding (time-as-input), so it needs timeRatios: one noise ratio r ∈ [0, 1] per row (the mask ratio of each row)');
    const [B, , d] = h.shape;
    checkTimeRatios(ratios, B, 'Model.forward');
    return E.add(h, E.reshape(this.time.forward(ratios), [B, 1, d]));
  }

  /**
   * Mean cross-entropy of `logits` against `labels` (int32, -100 = ignored). Token heads: with
   * `shift` (default for 'lm' heads) logits at t are scored against labels[t+1]; classification:
   * labels [B].
   */
  loss(logits: Tensor, labels: Tensor, opts: LossOptions = {}): Tensor {
    const { targets, ignoreIndex } = this.targetsOf(labels, opts, 'Model.loss');
    return E.crossEntropy(logits, targets, { ignoreIndex, weights: opts.weights ?? null, reduction: opts.reduction ?? 'mean' });
  }

  /** The scored targets of `labels`: shifted by one position for causal LM (see `loss`). */
  private targetsOf(labels: Tensor, opts: LossOptions, who: string): { targets: Tensor; ignoreIndex: number } {
    const ignoreIndex = opts.ignoreIndex ?? -100;
    const shift = opts.shift ?? this.head.headConfig().kind === 'lm';
    if (labels.dtype !== 'int32') throw new Error(`${who}: labels must be int32, got ${labels.describe()}`);
    if (!shift) return { targets: labels, ignoreIndex };
    if (labels.rank !== 2) throw new Error(`${who}: shifted labels must be [B, S], got ${labels.describe()}`);
    const [B, S] = labels.shape;
    const src = labels.toArray();
    const out = new Int32Array(B * S).fill(ignoreIndex);
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < S; t++) out[b * S + t] = src[b * S + t + 1];
    return { targets: E.tensor(out, [B, S], { backend: labels.backend, dtype: 'int32' }), ignoreIndex };
  }

  /** Switches every block's attention between causal and bidirectional. */
  setAttentionMode(mode: 'causal' | 'bidirectional'): void {
    this.rack.setAttentionMode(mode);
  }

  private keyMaskOf(mask: Tensor, ids: Tensor): Tensor {
    if (mask.rank !== 2 || mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
      throw new Error(`Model.forward: attentionMask ${mask.describe()} must be [${ids.shape.join(', ')}] like the ids`);
    }
    return mask;
  }
}
