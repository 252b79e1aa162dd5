/**
 * Heads: the Head base class (final norm, fused-loss DecoderInput), the token heads (LMHead,
 * BERT's MLMHead, decoder tied to the token embedding or their own) and ClassificationHead,
 * plus makeHead, which builds one from its HeadConfig.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { HeadSpec } from './spec.js';
import { Module } from './module.js';
import { activate, applyDropout, createLoraAdapter, DropoutSeeds, LayerNorm, Linear, makeNorm, type Embedding, type LoraOptions, type LoraState, type Norm } from './layers.js';
import type { Activation } from './kinds.js';
import { deriveSeed, DEFAULT_INIT, initTensor, type TensorPlacement } from './init.js';
import type { HeadConfig, NormConfig } from './config.js';
import type { BuildOptions, EmbeddingBlock } from './embedding-block.js';

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

/**
 * A head whose last map is a vocabulary decoder (parameter 'weight', [V, d]): the token
 * embedding's table (tied: the same tensor) or its own.
 */
export abstract class TokenHead extends Head {
  readonly dModel: number;
  readonly vocabSize: number;
  protected tied = false;

  constructor(dModel: number, vocabSize: number, finalNorm: NormConfig | null | undefined, place: TensorPlacement) {
    super(dModel, finalNorm, place);
    this.dModel = dModel;
    this.vocabSize = vocabSize;
  }

  /** Registers the decoder weight (subclasses call it where it belongs in their parameter order). */
  protected registerDecoder(tiedTo: Embedding | null, seed: number, place: TensorPlacement): void {
    const vocab = this.vocabSize, dModel = this.dModel;
    if (tiedTo) {
      if (tiedTo.numEmbeddings !== vocab || tiedTo.dim !== dModel) throw new Error(`head: cannot tie a [${vocab}, ${dModel}] decoder to an embedding of [${tiedTo.numEmbeddings}, ${tiedTo.dim}]`);
      this.registerParameter('weight', tiedTo.weight, tiedTo.weight.requiresGrad);
    } else {
      this.registerParameter('weight', initTensor([vocab, dModel], DEFAULT_INIT, deriveSeed(seed, 'weight'), place), true);
    }
    this.tied = !!tiedTo;
  }

  get isTied(): boolean {
    return this.tied;
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  /**
   * A LoRA adapter on the decoder (model.progressive.head: lora): logits = h (W + (α/r)·B A)ᵀ + b,
   * parameters 'lora_A' [r, d] and 'lora_B' [V, r] (B starts at zero, so the head starts as it
   * was). The decoder weight is merged on the fly, so the fused loss still never builds [B, S, V]
   * logits; the adapter therefore takes no input dropout.
   */
  lora: LoraState | null = null;

  get loraA(): Tensor | null {
    return this.optionalParam('lora_A');
  }

  get loraB(): Tensor | null {
    return this.optionalParam('lora_B');
  }

  /** Attaches a decoder adapter (replacing any previous one); the decoder weight and bias are frozen by default. */
  addLora(opts: LoraOptions): this {
    if ((opts.dropout ?? 0) !== 0) throw new Error(`${this.typeName}.addLora: the head's adapter is merged into the decoder weight on the fly and takes no dropout, found ${opts.dropout}`);
    if (opts.sharedA) throw new Error(`${this.typeName}.addLora: a head adapter has its own A`);
    const adapter = createLoraAdapter(this.typeName, this.dModel, this.vocabSize, opts, { dtype: this.weight.dtype, backend: this.weight.backend });
    this.removeLora();
    this.registerParameter('lora_A', adapter.a);
    this.registerParameter('lora_B', adapter.b);
    this.lora = adapter.state;
    if (opts.freezeBase ?? true) {
      this.weight.requiresGrad = false;
      const bias = this.optionalParam('bias');
      if (bias) bias.requiresGrad = false;
    }
    return this;
  }

  /** Detaches the decoder adapter (its tensors are disposed). */
  removeLora(): this {
    if (!this.lora) return this;
    this.unregisterParameter('lora_A')?.dispose();
    this.unregisterParameter('lora_B')?.dispose();
    this.lora = null;
    return this;
  }

  /** The weight the logits use: the decoder, plus (α/r)·B A with an adapter (export writes it merged). */
  decoderWeight(): Tensor {
    if (!this.lora) return this.weight;
    return E.add(this.weight, E.mulScalar(E.matmul(this.loraB!, this.loraA!), this.lora.scale));
  }
}

/** logits = h Wᵀ (+ b), W tied to the embedding or its own. Parameters 'weight', 'bias'. */
export class LMHead extends TokenHead {
  constructor(dModel: number, vocabSize: number, opts: { tiedTo?: Embedding | null; bias?: boolean; finalNorm?: NormConfig | null; seed?: number } & TensorPlacement) {
    super(dModel, vocabSize, opts.finalNorm, opts);
    this.registerDecoder(opts.tiedTo ?? null, opts.seed ?? 0, opts);
    if (opts.bias) this.registerParameter('bias', E.zeros([vocabSize], { dtype: opts.dtype, backend: opts.backend }));
  }

  get bias(): Tensor | null {
    return this.optionalParam('bias');
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
    return E.linear(h, this.decoderWeight(), this.bias);
  }

  override decoderInput(h: Tensor): DecoderInput | null {
    return plainDecoder(this, LMHead.prototype.project, h, this.decoderWeight(), this.bias);
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
export class MLMHead extends TokenHead {
  readonly activation: Activation;
  readonly dense: Linear;
  readonly norm: LayerNorm;

  constructor(dModel: number, vocabSize: number, opts: { tiedTo?: Embedding | null; activation?: Activation; normEps?: number; finalNorm?: NormConfig | null; seed?: number } & TensorPlacement) {
    super(dModel, vocabSize, opts.finalNorm, opts);
    this.activation = opts.activation ?? 'gelu';
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.dense = this.registerModule('dense', new Linear(dModel, dModel, { ...place, bias: true, seed: deriveSeed(seed, 'dense') }));
    this.norm = this.registerModule('norm', new LayerNorm(dModel, { ...place, eps: opts.normEps ?? 1e-12 }));
    this.registerDecoder(opts.tiedTo ?? null, seed, place);
    this.registerParameter('bias', E.zeros([vocabSize], place));
  }

  get bias(): Tensor {
    return this.param('bias');
  }

  project(h: Tensor): Tensor {
    return E.linear(this.transform(h), this.decoderWeight(), this.bias);
  }

  override decoderInput(h: Tensor): DecoderInput | null {
    if (this.project !== MLMHead.prototype.project) return null;
    return plainDecoder(this, MLMHead.prototype.project, this.transform(h), this.decoderWeight(), this.bias);
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
