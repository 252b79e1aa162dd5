/** FFN, Block (one transformer layer, pre- or post-norm), Stack (blocks), Rack (stacks). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { RackSpec, StackSpec } from './spec.js';
import type { LoraTarget } from './lora-names.js';
import { Module, ModuleList } from './module.js';
import { activate, applyDropout, DropoutSeeds, forwardSharedInput, Linear, makeNorm, type Norm } from './layers.js';
import type { Activation, AttentionMode, FfnKind } from './kinds.js';
import { deriveSeed, type TensorPlacement } from './init.js';
import { LinearAttention, makeAttention, type AttentionBase, type ForwardContext } from './attention.js';
import type { BlockConfig, StackConfig } from './config.js';
import { QuantizedLinear } from './quantized-linear.js';
import { isLoraParamName } from './lora-names.js';
import { DEFAULT_ROPE_THETA } from './size-fields.js';

// ---- FFN --------------------------------------------------------------------------------------

export interface FFNOptions extends TensorPlacement {
  dModel: number;
  dFF: number;
  kind: FfnKind;
  activation?: Activation;
  bias: boolean;
  seed: number;
}

/**
 * SwiGLU: down(silu(gate(x)) * up(x)); GELU family: down(act(up(x))).
 * Children 'gate' (SwiGLU only), 'up', 'down' (the LoRA target names).
 */
export class FFN extends Module {
  readonly kind: FfnKind;
  readonly activation: Activation;
  readonly gate: Linear | null;
  readonly up: Linear;
  readonly down: Linear;

  constructor(opts: FFNOptions) {
    super();
    this.kind = opts.kind;
    this.activation = opts.kind === 'swiglu' ? 'silu' : (opts.activation ?? 'gelu');
    const lin = (name: string, i: number, o: number) =>
      new Linear(i, o, { bias: opts.bias, seed: deriveSeed(opts.seed, name), dtype: opts.dtype, backend: opts.backend });
    this.gate = opts.kind === 'swiglu' ? this.registerModule('gate', lin('gate', opts.dModel, opts.dFF)) : null;
    this.up = this.registerModule('up', lin('up', opts.dModel, opts.dFF));
    this.down = this.registerModule('down', lin('down', opts.dFF, opts.dModel));
  }

  forward(x: Tensor, seed?: number): Tensor {
    const h = this.gate
      ? E.swiglu(...(forwardSharedInput(x, [this.gate, this.up], seed) as [Tensor, Tensor]))
      : activate(this.up.forward(x, seed), this.activation);
    return this.down.forward(h, seed);
  }
}

// ---- Block ------------------------------------------------------------------------------------

export interface BlockOptions extends TensorPlacement {
  seed: number;
}

/**
 * One transformer layer. Children: 'attn_norm', 'attn', 'ffn_norm', 'ffn'.
 * pre-norm:  x += attn(attn_norm(x)); x += ffn(ffn_norm(x))        (GPT-2, LLaMA)
 * post-norm: x = attn_norm(x + attn(x)); x = ffn_norm(x + ffn(x))  (BERT)
 */
export class Block extends Module {
  readonly config: BlockConfig;
  readonly dModel: number;
  readonly attnNorm: Norm;
  readonly attn: AttentionBase;
  readonly ffnNorm: Norm;
  readonly ffn: FFN;
  private readonly seeds: DropoutSeeds;

  constructor(dModel: number, config: BlockConfig, opts: BlockOptions) {
    super();
    this.config = structuredClone(config);
    this.dModel = dModel;
    const place = { dtype: opts.dtype, backend: opts.backend };
    const normOpts = { ...place, eps: config.normEps };
    this.attnNorm = this.registerModule('attn_norm', makeNorm(config.norm, dModel, normOpts));
    this.attn = this.registerModule('attn', makeAttention(config.attentionKind ?? 'standard', {
      ...place,
      dModel,
      nHeads: config.nHeads,
      nKvHeads: config.nKvHeads,
      headDim: config.headDim,
      causal: config.attention === 'causal',
      ropeTheta: config.positional === 'rope' ? (config.ropeTheta ?? DEFAULT_ROPE_THETA) : null,
      rotaryDim: config.rotaryDim,
      qkvBias: config.qkvBias,
      outBias: config.outBias,
      mla: config.mla,
      ...(config.linear ? { linear: config.linear } : {}),
      seed: deriveSeed(opts.seed, 'attn'),
    }));
    this.ffnNorm = this.registerModule('ffn_norm', makeNorm(config.norm, dModel, normOpts));
    this.ffn = this.registerModule('ffn', new FFN({
      ...place,
      dModel,
      dFF: config.dFF,
      kind: config.ffn,
      activation: config.activation,
      bias: config.ffnBias,
      seed: deriveSeed(opts.seed, 'ffn'),
    }));
    this.seeds = new DropoutSeeds(deriveSeed(opts.seed, 'dropout'));
  }

  /** Switches between causal and bidirectional attention. */
  setAttentionMode(mode: AttentionMode): void {
    this.attn.causal = mode === 'causal';
    this.config.attention = mode;
  }

  private drop(x: Tensor, ctx: ForwardContext, site: 'attn' | 'ffn'): Tensor {
    return applyDropout(x, this.config.dropout ?? 0, this.training, this.seeds, ctx.seed, site);
  }

  forward(x: Tensor, ctx: ForwardContext = {}): Tensor {
    if (this.config.normPosition === 'pre') {
      // The attention's residual add runs fused into the FFN's norm (h and its norm in one pass).
      const [h, hn] = this.ffnNorm.addForward(x, this.drop(this.attn.forward(this.attnNorm.forward(x), ctx), ctx, 'attn'));
      return E.add(h, this.drop(this.ffn.forward(hn, ctx.seed), ctx, 'ffn'));
    }
    const h = this.attnNorm.addForward(x, this.drop(this.attn.forward(x, ctx), ctx, 'attn'))[1];
    return this.ffnNorm.addForward(h, this.drop(this.ffn.forward(h, ctx.seed), ctx, 'ffn'))[1];
  }

  /** True when every non-adapter parameter of the block is frozen. */
  baseFrozen(): boolean {
    return this.namedParameters().filter(([n]) => !isLoraParamName(n)).every(([, t]) => !t.requiresGrad);
  }

  /** The Linear layers a LoRA target name refers to in this block. */
  loraTargets(): Map<LoraTarget, Linear | QuantizedLinear> {
    const out = new Map<LoraTarget, Linear | QuantizedLinear>();
    const attnChildren = new Map(this.attn.namedChildren());
    for (const t of ['q', 'k', 'v', 'o'] as const) {
      const m = attnChildren.get(t);
      if (m instanceof Linear || m instanceof QuantizedLinear) out.set(t, m);
    }
    if (this.ffn.gate) out.set('gate', this.ffn.gate);
    out.set('up', this.ffn.up);
    out.set('down', this.ffn.down);
    return out;
  }
}

// ---- Stack ------------------------------------------------------------------------------------

export interface HiddenStateSink {
  push(t: Tensor): void;
}

/** An ordered list of blocks (child 'blocks'). */
export class Stack extends Module {
  readonly dModel: number;
  readonly blocks: ModuleList<Block>;

  constructor(dModel: number, blocks: Block[]) {
    super();
    this.dModel = dModel;
    for (const b of blocks) {
      if (b.dModel !== dModel) throw new Error(`Stack: block d_model ${b.dModel} differs from the stack's ${dModel}`);
    }
    this.blocks = this.registerModule('blocks', new ModuleList(blocks));
  }

  /** A stack of `config.nBlocks` fresh blocks (block j seeded from deriveSeed(seed, j)). */
  static create(dModel: number, config: StackConfig, opts: BlockOptions): Stack {
    const blocks = Array.from({ length: config.nBlocks }, (_, j) => new Block(dModel, config.block, { ...opts, seed: deriveSeed(opts.seed, j) }));
    return new Stack(dModel, blocks);
  }

  get length(): number {
    return this.blocks.length;
  }

  /**
   * Activation recomputation (training.recompute): while gradients are recorded, each block keeps
   * only its input and runs its forward again when backward reaches it (E.checkpoint); the
   * gradients are bit for bit the same. Set through Rack.recompute.
   */
  recompute = false;
  private recomputeCalls = 0;

  forward(x: Tensor, ctx: ForwardContext = {}, hidden?: HiddenStateSink): Tensor {
    let h = x;
    // A key mask that needs a gradient is a non-leaf the recomputed block would walk into.
    const recompute = this.recompute && E.isGradEnabled() && !ctx.keyMask?.requiresGrad;
    // The recomputed forward must draw the dropout masks of the first: a seed for the call, never a counter.
    const c = recompute && ctx.seed === undefined ? { ...ctx, seed: deriveSeed(0x5eed, `recompute#${this.recomputeCalls++}`) } : ctx;
    for (const b of this.blocks) {
      h = recompute ? E.checkpoint((input) => b.forward(input, c), h, b.parameters()) : b.forward(h, ctx);
      hidden?.push(h);
    }
    return h;
  }

  setAttentionMode(mode: AttentionMode): void {
    for (const b of this.blocks) b.setAttentionMode(mode);
  }

  /** The StackSpec of this stack (its blocks must agree on every field). */
  toSpec(path = 'stack'): StackSpec {
    const blocks = this.blocks.toArray();
    if (blocks.length === 0) throw new Error(`${path}: an empty stack has no spec`);
    const specs = blocks.map((b) => blockSpec(b));
    const first = JSON.stringify(specs[0]);
    specs.forEach((s, j) => {
      if (JSON.stringify(s) !== first) throw new Error(`${path}.blocks[${j}] differs from block 0 (${JSON.stringify(s)} vs ${first}); a StackSpec describes uniform blocks`);
    });
    const frozen = blocks.every((b) => b.baseFrozen());
    return { n_blocks: blocks.length, ...specs[0], frozen };
  }
}

function blockSpec(b: Block): Omit<StackSpec, 'n_blocks' | 'frozen'> {
  const c = b.config;
  const spec: Omit<StackSpec, 'n_blocks' | 'frozen'> = {
    n_heads: c.nHeads,
    n_kv_heads: b.attn.nKvHeads,
    d_ff: c.dFF,
    attention: b.attn.causal ? 'causal' : 'bidirectional',
    ...(b.attn.kind !== 'standard' ? { attention_kind: b.attn.kind } : {}),
    ...(b.attn instanceof LinearAttention ? { feature_map: b.attn.featureMap } : {}),
    norm: c.norm,
    norm_position: c.normPosition,
    ffn: c.ffn,
    positional: c.positional,
    weight_format: 'fp32',
  };
  if (c.positional === 'rope') spec.rope_theta = c.ropeTheta ?? DEFAULT_ROPE_THETA;
  const targets = [...b.loraTargets()].filter(([, l]) => l.lora !== null);
  if (targets.length > 0) {
    const first = targets[0][1].lora!;
    spec.lora = { rank: first.rank, alpha: first.alpha, targets: targets.map(([t]) => t) };
  }
  return spec;
}

// ---- Rack -------------------------------------------------------------------------------------

function hasTrainable(m: Module): boolean {
  return m.parameters().some((t) => t.requiresGrad);
}

/** s.forward(x) under noGrad in its own scope: only its output (and hidden states) survive. */
function forwardDetached(s: Stack, x: Tensor, ctx: ForwardContext, hidden?: HiddenStateSink): Tensor {
  const states: Tensor[] = [];
  const [y, ...kept] = E.tidy(() => E.noGrad(() => {
    const out = s.forward(x, ctx, hidden ? states : undefined);
    return [out, ...states];
  }));
  if (hidden) for (const t of kept) hidden.push(t);
  return y!;
}

/** An ordered list of stacks (child 'stacks'); the input side is stack 0. */
export class Rack extends Module {
  readonly dModel: number;
  readonly stacks: ModuleList<Stack>;

  constructor(dModel: number, stacks: Stack[]) {
    super();
    this.dModel = dModel;
    for (const s of stacks) {
      if (s.dModel !== dModel) throw new Error(`Rack: stack d_model ${s.dModel} differs from the rack's ${dModel}`);
    }
    this.stacks = this.registerModule('stacks', new ModuleList(stacks));
  }

  /** A rack built from stack configs; stack i seeded from deriveSeed(seed, i). */
  static create(dModel: number, stacks: StackConfig[], opts: BlockOptions): Rack {
    return new Rack(dModel, stacks.map((s, i) => Stack.create(dModel, s, { ...opts, seed: deriveSeed(opts.seed, i) })));
  }

  get numStacks(): number {
    return this.stacks.length;
  }

  /** Every block in order across stacks. */
  allBlocks(): Block[] {
    return this.stacks.toArray().flatMap((s) => s.blocks.toArray());
  }

  get numBlocks(): number {
    return this.allBlocks().length;
  }

  /** Whether the stacks recompute their blocks' activations in backward (training.recompute; see Stack.recompute). Stacks added later inherit it. */
  get recompute(): boolean {
    return this.recomputeOn;
  }

  set recompute(on: boolean) {
    this.recomputeOn = on;
    for (const s of this.stacks) s.recompute = on;
  }

  private recomputeOn = false;

  appendStack(s: Stack): this {
    if (s.dModel !== this.dModel) throw new Error(`Rack.appendStack: stack d_model ${s.dModel} differs from the rack's ${this.dModel}`);
    s.recompute = this.recomputeOn;
    this.stacks.push(s);
    return this;
  }

  /** Puts `s` at rack position `index` (0 … numStacks); the stacks from there on move one place right. */
  insertStack(index: number, s: Stack): this {
    if (s.dModel !== this.dModel) throw new Error(`Rack.insertStack: stack d_model ${s.dModel} differs from the rack's ${this.dModel}`);
    if (!Number.isInteger(index) || index < 0 || index > this.stacks.length) throw new Error(`Rack.insertStack: position ${index} is outside 0 … ${this.stacks.length}`);
    this.stacks.insert(index, s);
    return this;
  }

  prependStack(s: Stack): this {
    if (s.dModel !== this.dModel) throw new Error(`Rack.prependStack: stack d_model ${s.dModel} differs from the rack's ${this.dModel}`);
    s.recompute = this.recomputeOn;
    this.stacks.insert(0, s);
    return this;
  }

  /**
   * Runs every stack; `hidden` receives each block's output. A frozen stack (no trainable
   * parameter) fed by a tensor that needs no gradient — the frozen prefix of a rack whose
   * embedding is frozen, or any stack under `noGrad` — cannot put anything on the tape, so it runs
   * without recording in a scope of its own: its intermediates are freed as soon as it returns
   * instead of living until the caller's scope ends.
   */
  forward(x: Tensor, ctx: ForwardContext = {}, hidden?: HiddenStateSink): Tensor {
    let h = x;
    const maskNeedsGrad = !!ctx.keyMask?.requiresGrad;
    for (const s of this.stacks) h = !h.requiresGrad && !maskNeedsGrad && !hasTrainable(s) ? forwardDetached(s, h, ctx, hidden) : s.forward(h, ctx, hidden);
    return h;
  }

  setAttentionMode(mode: AttentionMode): void {
    for (const s of this.stacks) s.setAttentionMode(mode);
  }

  /** The RackSpec (framework/specs/rack.ts) describing this rack as it is now. */
  toSpec(): RackSpec {
    return {
      d_model: this.dModel,
      n_stacks: this.stacks.length,
      stacks: this.stacks.toArray().map((s, i) => s.toSpec(`rack.stacks[${i}]`)),
    };
  }
}
