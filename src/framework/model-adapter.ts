// ModelAdapter: a live nn.Model (embedding → rack → head) behind its specs → forward and loss
// (with hook overrides), trainable parameters by stable name, which stacks are new, FLOPs per token.

import type { Tensor } from '../engine/index.js';
import type { AttentionMode, Model, Stack } from '../nn/index.js';
import type { EmbeddingSpec } from './specs/embedding.js';
import type { HeadSpec } from './specs/head.js';
import type { RackSpec } from './specs/rack.js';

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

  /** Sets the phase at which each stack appeared (`stackBirths()` of the model this one was saved from). */
  restoreStackBirths(births: readonly number[]): void {
    const stacks = this.model.rack.stacks.toArray();
    if (births.length !== stacks.length) throw new Error(`restoreStackBirths: ${births.length} births for ${stacks.length} stacks`);
    this.births.clear();
    stacks.forEach((s, i) => this.births.set(s, births[i]!));
    this.latestBirth = Math.max(0, ...births);
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
  setAttentionMode(mode: AttentionMode): void {
    this.model.setAttentionMode(mode);
  }

  /**
   * Multiply-accumulate FLOPs per token of one training step: forward 2·P (matmul weights) plus
   * attention 4·S·d per block (linear attention: its S-independent core); backward the same again for activation gradients plus 2·P_trainable
   * for weight gradients. A fully trainable model gives the usual ≈ 6·P. `trainAll`: the same with
   * every weight trainable (what training this model end to end costs).
   */
  flopsPerToken(seqLen: number): { forward: number; train: number; trainAll: number } {
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
    // Softmax attention (standard, MLA): 4·S·H·D per block (no causal halving, as always counted
    // here); linear attention: its own core cost, independent of S.
    let attention = 0;
    for (const stack of this.model.rack.stacks.toArray()) {
      for (const b of stack.blocks.toArray()) {
        attention += b.attn.kind === 'linear' ? b.attn.coreFlopsPerToken(seqLen) : 4 * seqLen * b.attn.nHeads * b.attn.headDim;
      }
    }
    const forward = 2 * matmul + attention;
    return { forward, train: 2 * forward + 2 * trainableMatmul, trainAll: 2 * forward + 2 * matmul };
  }
}
