/** Basic layers: Linear (with optional LoRA), Embedding, LayerNorm, RMSNorm, Dropout helper. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { DEFAULT_INIT, deriveSeed, initTensor, type InitSpec, type TensorPlacement } from './init.js';
import type { Activation, NormKind } from './kinds.js';

/**
 * Dropout mask seeds of one module. With a forward-call seed (e.g. the training step, passed as
 * `seed` to Model.forward) the mask depends only on (module seed, call seed, call site), so a
 * resumed run draws the same masks; without one, a per-module counter advances on every call.
 */
export class DropoutSeeds {
  private calls = 0;
  constructor(private readonly seed: number) {}
  next(callSeed?: number, site = ''): number {
    return callSeed === undefined ? deriveSeed(this.seed, `${site}#${this.calls++}`) : deriveSeed(this.seed, `${site}@${callSeed}`);
  }
}

/** Dropout that is a no-op for p = 0 or outside training mode; `site` tells call sites of one module apart. */
export function applyDropout(x: Tensor, p: number, training: boolean, seeds: DropoutSeeds, callSeed?: number, site = ''): Tensor {
  if (p <= 0 || !training) return x;
  return E.dropout(x, { p, seed: seeds.next(callSeed, site), training: true });
}

// ---- Linear + LoRA ----------------------------------------------------------------------------

export interface LinearOptions extends TensorPlacement {
  bias?: boolean;
  /** Seed of the weight initialisation (required unless init is constant). */
  seed?: number;
  init?: InitSpec;
  biasInit?: InitSpec;
}

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Dropout on the adapter's input (PEFT lora_dropout), default 0. */
  dropout?: number;
  /** Seed of A's initialisation and of the adapter dropout. */
  seed: number;
  /** Scale alpha/sqrt(rank) instead of alpha/rank (PEFT use_rslora). */
  rslora?: boolean;
  /** Freeze the base weight and bias (default true). */
  freezeBase?: boolean;
  /**
   * 'default': A kaiming-uniform (as PEFT), B zero, so the adapter starts as a no-op.
   * 'random': both random (as PEFT init_lora_weights=False; for tests).
   */
  init?: 'default' | 'random';
  /** Reuse this tensor as A (adapters on projections that PEFT sees as one fused layer). */
  sharedA?: Tensor;
}

export interface LoraState {
  rank: number;
  alpha: number;
  scale: number;
  dropout: number;
  rslora: boolean;
}

/** y + (α/r)·B·A·dropout(x): the adapter's contribution, shared by Linear and QuantizedLinear. */
export function addLoraDelta(y: Tensor, x: Tensor, lora: LoraState, a: Tensor, b: Tensor, training: boolean, seeds: DropoutSeeds, callSeed?: number): Tensor {
  const xin = applyDropout(x, lora.dropout, training, seeds, callSeed);
  return E.add(y, E.mulScalar(E.linear(E.linear(xin, a), b), lora.scale));
}

/** Checks LoRA options and creates the adapter's tensors (A kaiming-uniform, B zero unless
 * `init: 'random'`) and state; shared by Linear and QuantizedLinear. `who` names the layer
 * kind in errors. */
export function createLoraAdapter(who: string, inFeatures: number, outFeatures: number, opts: LoraOptions, place: TensorPlacement): { a: Tensor; b: Tensor; state: LoraState } {
  if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new Error(`${who}.addLora: rank must be a positive integer, got ${opts.rank}`);
  if (!(opts.alpha > 0)) throw new Error(`${who}.addLora: alpha must be positive, got ${opts.alpha}`);
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`${who}.addLora: dropout must be in [0, 1), got ${dropout}`);
  const r = opts.rank;
  let a: Tensor;
  if (opts.sharedA) {
    if (opts.sharedA.shape[0] !== r || opts.sharedA.shape[1] !== inFeatures) {
      throw new Error(`${who}.addLora: shared A has shape [${opts.sharedA.shape.join(', ')}], expected [${r}, ${inFeatures}]`);
    }
    a = opts.sharedA;
  } else {
    a = initTensor([r, inFeatures], { kind: 'kaimingUniform', fanIn: inFeatures }, deriveSeed(opts.seed, 'lora_A'), place);
  }
  const b = opts.init === 'random'
    ? initTensor([outFeatures, r], { kind: 'kaimingUniform', fanIn: r }, deriveSeed(opts.seed, 'lora_B'), place)
    : initTensor([outFeatures, r], { kind: 'constant', value: 0 }, 0, place);
  const rslora = opts.rslora ?? false;
  return { a, b, state: { rank: r, alpha: opts.alpha, scale: rslora ? opts.alpha / Math.sqrt(r) : opts.alpha / r, dropout, rslora } };
}

/**
 * What Linear and QuantizedLinear share: the shape, the optional bias and a LoRA adapter
 * (parameters 'lora_A' [r, in], 'lora_B' [out, r]) adding (alpha/r) B A x to the base output.
 */
export abstract class LoraLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  lora: LoraState | null = null;
  protected loraSeeds: DropoutSeeds | null = null;
  protected loraAShared = false;

  constructor(inFeatures: number, outFeatures: number) {
    super();
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
  }

  get bias(): Tensor | null {
    return this.optionalParam('bias');
  }

  get loraA(): Tensor | null {
    return this.optionalParam('lora_A');
  }

  get loraB(): Tensor | null {
    return this.optionalParam('lora_B');
  }

  /** Replaces any adapter by a new one (see createLoraAdapter; `who` names the caller in errors). */
  protected attachLora(who: string, opts: LoraOptions, place: TensorPlacement): void {
    const adapter = createLoraAdapter(who, this.inFeatures, this.outFeatures, opts, place);
    this.removeLora();
    this.loraAShared = opts.sharedA !== undefined;
    this.registerParameter('lora_A', adapter.a);
    this.registerParameter('lora_B', adapter.b);
    this.lora = adapter.state;
    this.loraSeeds = new DropoutSeeds(deriveSeed(opts.seed, 'lora_dropout'));
  }

  /** Takes over another layer's adapter: the same tensors, trainability and dropout stream. */
  adoptLora(from: LoraLinear): void {
    if (!from.lora) return;
    this.registerParameter('lora_A', from.loraA!, from.loraA!.requiresGrad);
    this.registerParameter('lora_B', from.loraB!, from.loraB!.requiresGrad);
    this.lora = { ...from.lora };
    this.loraSeeds = from.loraSeeds;
    this.loraAShared = from.loraAShared;
  }

  /** Detaches the adapter (its tensors are disposed, A unless it was given as shared). */
  removeLora(): this {
    if (!this.lora) return this;
    const a = this.unregisterParameter('lora_A');
    const b = this.unregisterParameter('lora_B');
    b?.dispose();
    if (!this.loraAShared) a?.dispose();
    this.lora = null;
    this.loraSeeds = null;
    return this;
  }

  /** The base output `y` plus the adapter's contribution for input `x` (y itself without one). */
  protected withLora(y: Tensor, x: Tensor, callSeed?: number): Tensor {
    if (!this.lora) return y;
    return addLoraDelta(y, x, this.lora, this.loraA!, this.loraB!, this.training, this.loraSeeds!, callSeed);
  }
}

/** Anything with a Linear-like forward (Linear, QuantizedLinear). */
export interface ProjectionLayer { forward(x: Tensor, callSeed?: number): Tensor }

/**
 * `layers.map((l) => l.forward(x, callSeed))` for layers that read one input (q/k/v, gate/up),
 * with the same results: the plain Linear layers among them (LoRA adapters included) run as one
 * `linearGroup` op, whose backward sums the input gradient inside the GEMMs instead of adding
 * one gradient per layer; any other layer (e.g. a quantized one) runs its own forward.
 */
export function forwardSharedInput(x: Tensor, layers: readonly ProjectionLayer[], callSeed?: number): Tensor[] {
  const plain = layers.filter((l): l is Linear => l instanceof Linear && l.weight.dtype === x.dtype && l.weight.backend === x.backend);
  if (plain.length < 2) return layers.map((l) => l.forward(x, callSeed));
  const base = E.linearGroup(x, plain.map((l) => l.weight), plain.map((l) => l.bias));
  return layers.map((l) => {
    const i = plain.indexOf(l as Linear);
    return i >= 0 ? (l as Linear).finish(base[i], x, callSeed) : l.forward(x, callSeed);
  });
}

/** y = x Wᵀ + b (W: [out, in]); with LoRA: + (α/r)·B A x, A: [r, in], B: [out, r]. */
export class Linear extends LoraLinear {
  /** The weight before merge(), restored bit-exactly by unmerge(). */
  private unmergedWeight: Tensor | null = null;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super(inFeatures, outFeatures);
    const seed = opts.seed ?? 0;
    this.registerParameter('weight', initTensor([outFeatures, inFeatures], opts.init ?? DEFAULT_INIT, deriveSeed(seed, 'weight'), opts));
    if (opts.bias ?? true) {
      this.registerParameter('bias', initTensor([outFeatures], opts.biasInit ?? { kind: 'constant', value: 0 }, deriveSeed(seed, 'bias'), opts));
    }
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get isMerged(): boolean {
    return this.unmergedWeight !== null;
  }

  forward(x: Tensor, callSeed?: number): Tensor {
    return this.finish(E.linear(x, this.weight, this.bias), x, callSeed);
  }

  /** The layer's output from its base output `y` = x Wᵀ + b (the adapter added unless merged). */
  finish(y: Tensor, x: Tensor, callSeed?: number): Tensor {
    return this.isMerged ? y : this.withLora(y, x, callSeed);
  }

  /** Attaches a LoRA adapter (replacing any previous one); the base is frozen by default. */
  addLora(opts: LoraOptions): this {
    if (this.isMerged) throw new Error('Linear.addLora: unmerge the current adapter first');
    this.attachLora('Linear', opts, { dtype: this.weight.dtype, backend: this.weight.backend });
    if (opts.freezeBase ?? true) {
      this.weight.requiresGrad = false;
      if (this.bias) this.bias.requiresGrad = false;
    }
    return this;
  }

  /** Detaches the adapter (its tensors are disposed, A unless it was given as shared). Unmerges first if merged. */
  override removeLora(): this {
    if (this.lora && this.isMerged) this.unmerge();
    return super.removeLora();
  }

  /** Folds the adapter into the weight: W ← W + scale·B A. The old W is kept for unmerge(). */
  merge(): this {
    if (!this.lora) throw new Error('Linear.merge: no LoRA adapter attached');
    if (this.isMerged) return this;
    E.noGrad(() => E.tidy(() => {
      const w = this.weight;
      const delta = E.mulScalar(E.matmul(this.loraB!, this.loraA!), this.lora!.scale);
      const merged = E.add(w, delta);
      this.unmergedWeight = E.keep(E.clone(w));
      w.write(merged.toArray());
    }));
    return this;
  }

  /**
   * Marks the adapter as merged when the weight already holds W + scale·B A (a merged model
   * loaded from its saved weights): forward then uses the weight alone, and unmerge() restores
   * W = weight − scale·B A (up to float rounding: the exact W was not saved).
   */
  markMerged(): this {
    if (!this.lora) throw new Error('Linear.markMerged: no LoRA adapter attached');
    if (this.isMerged) return this;
    this.unmergedWeight = E.noGrad(() => E.tidy(() => E.keep(E.sub(this.weight, E.mulScalar(E.matmul(this.loraB!, this.loraA!), this.lora!.scale)))));
    return this;
  }

  /** Restores the exact weight from before merge(). */
  unmerge(): this {
    if (!this.unmergedWeight) return this;
    const w = this.weight;
    w.write(this.unmergedWeight.toArray());
    this.unmergedWeight.dispose();
    this.unmergedWeight = null;
    return this;
  }

  protected override onParametersReplaced(): void {
    if (this.unmergedWeight) {
      const old = this.unmergedWeight;
      const moved = E.toBackend(old, this.weight.backend);
      this.unmergedWeight = E.keep(moved.dtype === this.weight.dtype ? moved : E.cast(moved, this.weight.dtype));
      if (this.unmergedWeight !== moved) moved.dispose();
      old.dispose();
    }
    super.onParametersReplaced();
  }
}

// ---- Embedding --------------------------------------------------------------------------------

export interface EmbeddingOptions extends TensorPlacement {
  seed?: number;
  init?: InitSpec;
}

/** A lookup table [num, dim]: ids int32 [...] → [..., dim]. */
export class Embedding extends Module {
  constructor(readonly numEmbeddings: number, readonly dim: number, opts: EmbeddingOptions = {}) {
    super();
    this.registerParameter('weight', initTensor([numEmbeddings, dim], opts.init ?? DEFAULT_INIT, deriveSeed(opts.seed ?? 0, 'weight'), opts));
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  forward(ids: Tensor): Tensor {
    return E.embedding(this.weight, ids);
  }
}

// ---- Norms ------------------------------------------------------------------------------------


export interface NormOptions extends TensorPlacement {
  eps?: number;
  /** LayerNorm bias (default true); RMSNorm never has one. */
  bias?: boolean;
}

export abstract class Norm extends Module {
  abstract readonly kind: NormKind;
  abstract readonly eps: number;
  abstract forward(x: Tensor): Tensor;
  /** The residual add and this norm: [x + r, norm(x + r)]. Norms with a fused kernel override it
   * (one pass over memory instead of two). */
  addForward(x: Tensor, r: Tensor): [Tensor, Tensor] {
    const s = E.add(x, r);
    return [s, this.forward(s)];
  }
}

/** (x - mean) / sqrt(biased var + eps) · weight + bias over the last dimension. */
export class LayerNorm extends Norm {
  readonly kind = 'layernorm' as const;
  readonly eps: number;
  constructor(readonly dim: number, opts: NormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.registerParameter('weight', E.ones([dim], opts));
    if (opts.bias ?? true) this.registerParameter('bias', E.zeros([dim], opts));
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  get bias(): Tensor | null {
    return this.optionalParam('bias');
  }

  forward(x: Tensor): Tensor {
    return E.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** x · rsqrt(mean(x²) + eps) · weight over the last dimension. */
export class RMSNorm extends Norm {
  readonly kind = 'rmsnorm' as const;
  readonly eps: number;
  constructor(readonly dim: number, opts: NormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-6;
    this.registerParameter('weight', E.ones([dim], opts));
  }

  get weight(): Tensor {
    return this.param('weight');
  }

  forward(x: Tensor): Tensor {
    return E.rmsNorm(x, this.weight, this.eps);
  }

  override addForward(x: Tensor, r: Tensor): [Tensor, Tensor] {
    return E.addRmsNorm(x, r, this.weight, this.eps);
  }
}

export function makeNorm(kind: NormKind, dim: number, opts: NormOptions = {}): Norm {
  return kind === 'layernorm' ? new LayerNorm(dim, opts) : new RMSNorm(dim, opts);
}

// ---- Activations ------------------------------------------------------------------------------


export function activate(x: Tensor, act: Activation): Tensor {
  switch (act) {
    case 'gelu': return E.gelu(x, 'none');
    case 'gelu_tanh': return E.gelu(x, 'tanh');
    case 'relu': return E.relu(x);
    case 'silu': return E.silu(x);
    case 'tanh': return E.tanh(x);
  }
}
