/**
 * Model = EmbeddingBlock (+ optional TimeEmbedding) → Rack → Head: forward, the trunk alone
 * (forwardHidden), the losses (plain, and fused through the head's DecoderInput), config round trip.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { deriveSeed } from './init.js';
import { Rack } from './block.js';
import type { ForwardContext } from './attention.js';
import type { ModelConfig, TimeEmbeddingConfig } from './config.js';
import { checkTimeRatios, TimeEmbedding } from './time-embedding.js';
import { EmbeddingBlock, type BuildOptions } from './embedding-block.js';
import { makeHead, type Head, type HeadContext } from './heads.js';
import type { AttentionMode } from './kinds.js';

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
    this.checkInputs(ids, inputs);
    const ctx: ForwardContext = { keyMask, positions: inputs.positions ?? null, positionOffset: inputs.positionOffset, seed: inputs.seed };
    const h0 = this.addTime(this.embedding.forward(ids, { tokenTypeIds: inputs.tokenTypeIds, positions: inputs.positions, positionOffset: inputs.positionOffset, seed: inputs.seed }), inputs.timeRatios);
    hidden?.push(h0);
    return this.rack.forward(h0, ctx, hidden);
  }

  /**
   * Refuses what would run but compute nothing meaningful: an empty batch or sequence (zero-size
   * outputs, a NaN mean loss) and position ids outside [0, max_positions) — a RoPE model would
   * rotate by a negative or never-trained angle without a word; a learned table has no such row.
   */
  private checkInputs(ids: Tensor, inputs: Omit<ModelInputs, 'outputHiddenStates'>): void {
    if (ids.dtype !== 'int32' || ids.rank !== 2) throw new Error(`Model.forward: ids must be int32 [B, S], got ${ids.describe()}`);
    const [B, S] = ids.shape as [number, number];
    if (B === 0) throw new Error(`Model.forward: ids [${B}, ${S}] is an empty batch; expected at least one row`);
    if (S === 0) throw new Error(`Model.forward: ids [${B}, ${S}] are empty sequences; expected at least one token per row`);
    const max = this.embedding.position?.numEmbeddings ?? this.embedding.config.maxPositions;
    const offset = inputs.positionOffset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`Model.forward: positionOffset must be a non-negative integer, found ${offset}`);
    const pos = inputs.positions;
    if (!pos) return;
    if (pos.dtype !== 'int32' || !((pos.rank === 1 && pos.shape[0] === S) || (pos.rank === 2 && pos.shape[0] === B && pos.shape[1] === S))) {
      throw new Error(`Model.forward: positions must be int32 [${S}] or [${B}, ${S}] like the ids, got ${pos.describe()}`);
    }
    const values = pos.toArray();
    for (let i = 0; i < values.length; i++) {
      const p = values[i]!;
      if (p < 0 || (max !== undefined && p >= max)) {
        throw new Error(`Model.forward: position id ${p} (at flat index ${i} of positions ${pos.describe()}) is outside [0, ${max ?? '∞'})` +
          `${max !== undefined ? ` (max_positions ${max})` : ''}`);
      }
    }
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
  setAttentionMode(mode: AttentionMode): void {
    this.rack.setAttentionMode(mode);
  }

  private keyMaskOf(mask: Tensor, ids: Tensor): Tensor {
    if (mask.rank !== 2 || mask.shape[0] !== ids.shape[0] || mask.shape[1] !== ids.shape[1]) {
      throw new Error(`Model.forward: attentionMask ${mask.describe()} must be [${ids.shape.join(', ')}] like the ids`);
    }
    return mask;
  }
}
