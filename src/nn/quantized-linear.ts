/**
 * Quantized frozen Linear layers and QLoRA.
 *
 * `QuantizedLinear` holds a frozen weight W [out, in] in a quantized storage format (nf4 with
 * optional double quantization, int8, fp16, bf16; see src/engine/ops/quant.ts), an optional bias
 * and optionally a LoRA adapter: y = dequant(W)·x + b + (α/r)·B A x, with A [r, in] and B [out, r]
 * trainable (QLoRA). The weight is never dequantized as a whole: the engine's quantized matmul
 * works tile by tile.
 *
 * The packed data and scales are registered as parameters (names `weight_packed`,
 * `weight_scales`, `weight_qscales`, `weight_scales2`, `weight_offset`) so that the Module tree
 * moves them between backends (`to`), frees them (`dispose`), lists them in state dicts and
 * counts their real bytes (`numBytes`, inspect). They can never require a gradient: their
 * `requiresGrad` is pinned to false (`unfreeze()` leaves them frozen). Note that the generic
 * `Module.numParameters()` counts their stored elements; `QuantizedLinear.numParameters()` and
 * `quantizationSummary()` count the represented weights.
 *
 * `quantizeModule(root, format)` replaces the frozen Linear layers of a module tree by
 * QuantizedLinear layers (carrying their bias and LoRA adapters over); `applyQLora` attaches
 * adapters to quantized layers.
 */
import * as E from '../engine/index.js';
import type { DType, QuantFormat, QuantParts, Tensor } from '../engine/index.js';
import { QuantizedWeight, validateQuantFormat } from '../engine/index.js';
import { Module, type CountOptions } from './module.js';
import { Linear, LoraLinear, type LoraOptions } from './layers.js';
import { deriveSeed } from './init.js';
import { isLoraParamName } from './lora-names.js';

export { SUPPORTED_QUANT_FORMATS, validateQuantFormat, QuantizedWeight, quantizeWeight } from '../engine/index.js';
export type { QuantFormat, QuantizeOptions } from '../engine/index.js';

/** Parameter names of the stored pieces of a quantized weight. */
export const QUANT_PARAM_NAMES: Readonly<Record<keyof QuantParts, string>> = Object.freeze({
  data: 'weight_packed',
  scales: 'weight_scales',
  qscales: 'weight_qscales',
  scales2: 'weight_scales2',
  offset: 'weight_offset',
});

const PART_OF_PARAM = new Map(Object.entries(QUANT_PARAM_NAMES).map(([k, v]) => [v, k as keyof QuantParts]));

/** True for the parameter names QuantizedLinear uses for its packed weight. */
export function isQuantParamName(name: string): boolean {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return PART_OF_PARAM.has(last);
}

/** Makes a tensor permanently frozen: its requiresGrad reads false and ignores writes. */
function pinFrozen(t: Tensor): Tensor {
  Object.defineProperty(t, 'requiresGrad', { get: () => false, set: () => { /* packed storage never trains */ }, configurable: true, enumerable: true });
  return t;
}

/**
 * Sets `t.representedParameters`: the number of model weights a packed tensor stands for (out·in
 * for the packed codes, 0 for scales), so that generic counters can report weights rather than
 * stored words: `(t as { representedParameters?: number }).representedParameters ?? t.size`.
 */
function tagRepresented(t: Tensor, n: number): void {
  Object.defineProperty(t, 'representedParameters', { value: n, configurable: true, enumerable: false, writable: true });
}

/** Weights a parameter tensor stands for (its size, unless it is packed quantized storage). */
export function representedParameters(t: Tensor): number {
  const r = (t as unknown as { representedParameters?: number }).representedParameters;
  return r ?? t.size;
}

export interface QuantizedLinearOptions {
  /** Whether the bias trains (default false: the whole base layer is frozen). */
  trainableBias?: boolean;
}

/** [in, out] of a quantized weight, checked to be a live QuantizedWeight first. */
function shapeOf(qweight: QuantizedWeight): [number, number] {
  if (!(qweight instanceof QuantizedWeight)) throw new Error('QuantizedLinear: expected a QuantizedWeight (see quantizeWeight)');
  if (qweight.isDisposed) throw new Error(`QuantizedLinear: ${qweight} was disposed`);
  return [qweight.shape[1]!, qweight.shape[0]!];
}

/** y = dequant(W) x + b (+ (α/r)·B A x with a LoRA adapter). W is frozen quantized storage. */
export class QuantizedLinear extends LoraLinear {
  private fmt: QuantFormat;
  private dq: boolean;

  /** Takes ownership of `qweight`'s tensors and of `bias`. */
  constructor(qweight: QuantizedWeight, bias: Tensor | null = null, opts: QuantizedLinearOptions = {}) {
    super(...shapeOf(qweight));
    this.fmt = qweight.format;
    this.dq = qweight.doubleQuant;
    this.registerParts(qweight);
    if (bias) {
      if (bias.rank !== 1 || bias.shape[0] !== this.outFeatures) throw new Error(`QuantizedLinear: bias ${bias.describe()} must be [${this.outFeatures}]`);
      if (bias.backend !== qweight.backend) throw new Error(`QuantizedLinear: bias lives on '${bias.backend.name}', the weight on '${qweight.backend.name}'`);
      this.registerParameter('bias', bias, opts.trainableBias ?? false);
    }
  }

  /**
   * Quantizes a Linear: the weight is quantized (the Linear keeps its fp weight; dispose it or use
   * quantizeModule, which does), the bias and any LoRA adapter are moved over as they are (same
   * tensors, same trainability, same dropout stream). The Linear must not be used afterwards.
   */
  static fromLinear(linear: Linear, format: QuantFormat | string, opts: E.QuantizeOptions = {}): QuantizedLinear {
    const fmt = validateQuantFormat(format, 'QuantizedLinear.fromLinear: format');
    if (!(linear instanceof Linear)) throw new Error('QuantizedLinear.fromLinear: expected a Linear');
    if (linear.isMerged) throw new Error('QuantizedLinear.fromLinear: the Linear has a merged LoRA adapter; unmerge() it first so that the quantized weight is the base weight');
    const qw = E.noGrad(() => E.quantizeWeight(linear.weight, fmt, opts));
    return QuantizedLinear.adopt(linear, qw);
  }

  /**
   * A QuantizedLinear with weight `qweight` that takes over the bias and LoRA adapter of `linear`
   * (same tensors; the Linear must not be used afterwards; its weight is left to the caller).
   */
  static adopt(linear: Linear, qweight: QuantizedWeight): QuantizedLinear {
    if (qweight.shape[0] !== linear.outFeatures || qweight.shape[1] !== linear.inFeatures) {
      throw new Error(`QuantizedLinear.adopt: quantized weight [${qweight.shape.join(', ')}] does not match the Linear's [${linear.outFeatures}, ${linear.inFeatures}]`);
    }
    const bias = linear.bias;
    const q = new QuantizedLinear(qweight, bias, { trainableBias: bias?.requiresGrad ?? false });
    q.adoptLora(linear);
    return q;
  }

  get format(): QuantFormat {
    return this.fmt;
  }

  get doubleQuant(): boolean {
    return this.dq;
  }

  private registerParts(qweight: QuantizedWeight): void {
    for (const [k, t] of Object.entries(qweight.parts) as [keyof QuantParts, Tensor][]) {
      this.registerParameter(QUANT_PARAM_NAMES[k], pinFrozen(t), false);
    }
    this.tagParts();
  }

  /** Marks the packed tensors: frozen for good, and how many weights each represents. */
  private tagParts(): void {
    for (const [name, t] of this.ownParameters()) {
      if (!PART_OF_PARAM.has(name)) continue;
      pinFrozen(t);
      tagRepresented(t, name === QUANT_PARAM_NAMES.data ? this.inFeatures * this.outFeatures : 0);
    }
  }

  /**
   * Swaps the stored weight for `qweight` (same [out, in]; the format may differ). The old packed
   * tensors are disposed; this module takes ownership of the new ones.
   */
  setQuantizedWeight(qweight: QuantizedWeight): this {
    if (qweight.shape[0] !== this.outFeatures || qweight.shape[1] !== this.inFeatures) {
      throw new Error(`QuantizedLinear.setQuantizedWeight: weight [${qweight.shape.join(', ')}] does not match [${this.outFeatures}, ${this.inFeatures}]`);
    }
    const b = this.bias;
    if (b && b.backend !== qweight.backend) throw new Error(`QuantizedLinear.setQuantizedWeight: the weight lives on '${qweight.backend.name}', the bias on '${b.backend.name}'`);
    for (const name of Object.values(QUANT_PARAM_NAMES)) {
      if (this.hasParam(name)) this.unregisterParameter(name)!.dispose();
    }
    this.fmt = qweight.format;
    this.dq = qweight.doubleQuant;
    this.registerParts(qweight);
    return this;
  }

  /** A view of the stored weight (its tensors are this module's parameters). */
  get qweight(): QuantizedWeight {
    const parts = {} as QuantParts;
    for (const [name, t] of this.ownParameters()) {
      const k = PART_OF_PARAM.get(name);
      if (k) parts[k] = t;
    }
    return new QuantizedWeight({ format: this.format, shape: [this.outFeatures, this.inFeatures], doubleQuant: this.doubleQuant }, parts);
  }

  /** Adapters are never merged into quantized storage. */
  get isMerged(): boolean {
    return false;
  }

  forward(x: Tensor, callSeed?: number): Tensor {
    return this.withLora(E.quantizedLinear(x, this.qweight, this.bias), x, callSeed);
  }

  /** The dequantized weight [out, in] (a new tensor; for inspection and tests). */
  dequantizedWeight(dtype: DType = 'float32'): Tensor {
    return this.qweight.dequantize(dtype);
  }

  /**
   * A plain Linear computing the same function: the weight dequantized (a new tensor in `dtype`),
   * a copy of the bias, and this layer's LoRA adapter (the same tensors, not copied). For export
   * and merging; the caller disposes the new weight and bias when done.
   */
  toLinear(dtype: DType = this.computeDtype()): Linear {
    const bias = this.bias;
    const lin = new Linear(this.inFeatures, this.outFeatures, { bias: bias !== null, init: { kind: 'constant', value: 0 }, dtype, backend: this.qweight.backend });
    E.noGrad(() => E.tidy(() => {
      lin.weight.write(this.qweight.dequantize(dtype).toArray());
      if (bias) lin.bias!.write((bias.dtype === dtype ? bias : E.cast(bias, dtype)).toArray());
    }));
    lin.weight.requiresGrad = false;
    if (lin.bias) lin.bias.requiresGrad = false;
    lin.adoptLora(this);
    return lin;
  }

  /** Exact bytes of the quantized weight (packed data + scales). */
  quantBytes(): number {
    return this.qweight.bytes();
  }

  bitsPerParameter(): number {
    return this.qweight.bitsPerParameter();
  }

  /** Counts the represented weight (out · in), not the packed words, plus bias and adapters. */
  override numParameters(opts: CountOptions = {}): number {
    let n = 0;
    for (const [name, t] of this.namedParameters()) {
      if (PART_OF_PARAM.has(name)) continue;
      if (!opts.trainableOnly || t.requiresGrad) n += t.size;
    }
    return opts.trainableOnly ? n : n + this.inFeatures * this.outFeatures;
  }

  /** The float dtype adapters are created in: the bias's or the scales', else float32. */
  private computeDtype(): DType {
    const b = this.bias;
    if (b) return b.dtype;
    const s = this.ownParameters().find(([n, t]) => PART_OF_PARAM.has(n) && t.dtype !== 'int32');
    return s ? s[1].dtype : 'float32';
  }

  /** Attaches a LoRA adapter (same options and initialisation as Linear.addLora). */
  addLora(opts: LoraOptions): this {
    this.attachLora('QuantizedLinear', opts, { dtype: this.computeDtype(), backend: this.qweight.backend });
    if ((opts.freezeBase ?? true) && this.bias) this.bias.requiresGrad = false;
    return this;
  }

  merge(): this {
    throw new Error('QuantizedLinear.merge: an adapter cannot be merged into quantized storage (dequantize, merge into an fp32 Linear, then quantize again if needed)');
  }

  unmerge(): this {
    return this;
  }

  protected override onParametersReplaced(): void {
    // Module.to() replaced every tensor: pin and tag the new packed tensors again.
    this.tagParts();
    super.onParametersReplaced();
  }
}

// ---- replacing modules in a tree ------------------------------------------------------------------

interface ModuleInternals {
  registerModule(name: string, m: Module): Module;
}

/**
 * Replaces the child at `path` (dotted, relative to root) by `replacement`: the parent's child
 * entry keeps its name and position, and every field of the parent that referred to the old
 * child (e.g. `attn.q`, a ModuleList's items) now refers to the replacement. Returns the old child
 * (not disposed). The replacement must offer what the parent calls (for a Linear: forward(x, seed)).
 */
export function replaceModule(root: Module, path: string, replacement: Module): Module {
  if (path === '') throw new Error('replaceModule: cannot replace the root module itself');
  const i = path.lastIndexOf('.');
  const parent = root.getModule(i < 0 ? '' : path.slice(0, i));
  const name = path.slice(i + 1);
  const old = new Map(parent.namedChildren()).get(name);
  if (!old) throw new Error(`replaceModule: no child '${name}' under '${i < 0 ? '(root)' : path.slice(0, i)}'`);
  (parent as unknown as ModuleInternals).registerModule(name, replacement);
  const fields = parent as unknown as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    const v = fields[key];
    if (v === old) fields[key] = replacement;
    else if (Array.isArray(v)) for (let k = 0; k < v.length; k++) if (v[k] === old) v[k] = replacement;
  }
  root.namedParameters(); // renames the tensors by their (new) dotted paths
  return old;
}

// ---- quantizing a module tree ---------------------------------------------------------------------

export interface QuantizeModuleOptions extends E.QuantizeOptions {
  /** Return false to leave a Linear (by dotted path relative to root) unquantized. */
  filter?: (path: string, linear: Linear) => boolean;
  /**
   * Also quantize Linear layers whose weight is trainable (they become frozen). Default false:
   * only frozen weights (e.g. a frozen trunk, or the bases of LoRA-adapted layers) are quantized.
   */
  includeTrainable?: boolean;
}

export interface QuantizeModuleResult {
  /** Paths of the Linear layers replaced by QuantizedLinear. */
  quantized: string[];
  /** Linear layers left as they were, with the reason. */
  skipped: { path: string; reason: string }[];
  /** Bytes of the replaced weights before (fp) and after (packed + scales). */
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Replaces the frozen Linear layers under `root` by QuantizedLinear layers in `format`. Biases
 * and LoRA adapters move over unchanged; the fp weights are disposed. Weights shared with
 * another module (tied) are skipped. Nothing changes when any check fails.
 */
export function quantizeModule(root: Module, format: QuantFormat | string, opts: QuantizeModuleOptions = {}): QuantizeModuleResult {
  const fmt = validateQuantFormat(format, 'quantizeModule: format');
  if (opts.doubleQuant && fmt !== 'nf4') throw new Error(`quantizeModule: doubleQuant applies to nf4 only, not ${fmt}`);
  const uses = new Map<Tensor, number>();
  for (const [, m] of root.namedModules()) for (const [, t] of m.ownParameters()) uses.set(t, (uses.get(t) ?? 0) + 1);
  const plan: [string, Linear][] = [];
  const skipped: { path: string; reason: string }[] = [];
  for (const [path, m] of root.namedModules()) {
    if (!(m instanceof Linear)) continue;
    if (opts.filter && !opts.filter(path, m)) { skipped.push({ path, reason: 'excluded by the filter' }); continue; }
    if (m.weight.requiresGrad && !opts.includeTrainable) { skipped.push({ path, reason: 'the weight is trainable (freeze it, or pass includeTrainable)' }); continue; }
    if ((uses.get(m.weight) ?? 0) > 1) { skipped.push({ path, reason: 'the weight is shared with another module (tied)' }); continue; }
    if (path === '') throw new Error('quantizeModule: the root itself is a Linear; use QuantizedLinear.fromLinear');
    if (m.isMerged) throw new Error(`quantizeModule: '${path}' has a merged LoRA adapter; unmerge it first`);
    if (m.weight.rank !== 2 || m.weight.dtype === 'int32') throw new Error(`quantizeModule: '${path}' has an unexpected weight ${m.weight.describe()}`);
    plan.push([path, m]);
  }
  let bytesBefore = 0, bytesAfter = 0;
  const quantized: string[] = [];
  for (const [path, lin] of plan) {
    const q = QuantizedLinear.fromLinear(lin, fmt, { doubleQuant: opts.doubleQuant });
    replaceModule(root, path, q);
    bytesBefore += lin.weight.bytes;
    bytesAfter += q.quantBytes();
    const w = lin.weight;
    if (w.grad) { w.grad.dispose(); w.grad = null; }
    w.dispose();
    quantized.push(path);
  }
  if (plan.length) root.namedParameters();
  return { quantized, skipped, bytesBefore, bytesAfter };
}

export interface ApplyQLoraOptions {
  rank: number;
  alpha: number;
  dropout?: number;
  seed: number;
  rslora?: boolean;
  init?: 'default' | 'random';
  /** Child names to adapt ('q', 'k', 'v', 'o', 'gate', 'up', 'down', …); default: every QuantizedLinear. */
  targets?: string[];
  /** Freeze every other parameter of root (only adapters train). Default true. */
  freezeOthers?: boolean;
}

/**
 * Attaches LoRA adapters to the QuantizedLinear layers under root (QLoRA). Adapter seeds derive
 * from `seed` and the layer's path (as applyLora does). Returns the adapted paths.
 */
export function applyQLora(root: Module, opts: ApplyQLoraOptions): string[] {
  const layers = root.namedModules().filter((e): e is [string, QuantizedLinear] => e[1] instanceof QuantizedLinear)
    .filter(([path]) => !opts.targets || opts.targets.includes(path.slice(path.lastIndexOf('.') + 1)));
  if (layers.length === 0) {
    throw new Error(`applyQLora: no QuantizedLinear layer${opts.targets ? ` named ${opts.targets.join(', ')}` : ''} under this ${root.typeName} (quantize it first with quantizeModule)`);
  }
  for (const [path, q] of layers) {
    q.addLora({ rank: opts.rank, alpha: opts.alpha, dropout: opts.dropout, seed: deriveSeed(opts.seed, path), rslora: opts.rslora, init: opts.init });
  }
  if (opts.freezeOthers ?? true) {
    for (const [name, t] of root.namedParameters()) t.requiresGrad = isLoraParamName(name);
  }
  return layers.map(([p]) => p);
}

export interface QuantizationSummary {
  /** QuantizedLinear layers by format (with '+dq' for double quantization). */
  layers: Record<string, number>;
  /** Weights represented by quantized storage, and its exact bytes. */
  quantizedParameters: number;
  quantizedBytes: number;
  /** 8 · quantizedBytes / quantizedParameters (NaN without quantized layers). */
  bitsPerParameter: number;
  /** Every other parameter (bias, norms, embeddings, adapters…), counted once, and its bytes. */
  otherParameters: number;
  otherBytes: number;
}

/** Memory accounting of a (partly) quantized module tree. */
export function quantizationSummary(root: Module): QuantizationSummary {
  const layers: Record<string, number> = {};
  let qParams = 0, qBytes = 0;
  const packed = new Set<Tensor>();
  for (const [, m] of root.namedModules()) {
    if (!(m instanceof QuantizedLinear)) continue;
    const key = m.format + (m.doubleQuant ? '+dq' : '');
    layers[key] = (layers[key] ?? 0) + 1;
    const qw = m.qweight;
    qParams += qw.numel;
    qBytes += qw.bytes();
    for (const t of qw.tensors()) packed.add(t);
  }
  let other = 0, otherBytes = 0;
  for (const t of root.parameters()) {
    if (packed.has(t)) continue;
    other += t.size;
    otherBytes += t.bytes;
  }
  return { layers, quantizedParameters: qParams, quantizedBytes: qBytes, bitsPerParameter: (8 * qBytes) / qParams, otherParameters: other, otherBytes };
}

/**
 * The progressive builder's `quantizeTrunk(stack, format)` hook: quantizes every Linear of a trunk
 * stack in `format` (trainable ones too: they become frozen; LoRA adapters stay trainable and move
 * over). nf4 uses double quantization unless `doubleQuant: false`.
 */
export function quantizeTrunk(stack: Module, format: QuantFormat | string, opts: { doubleQuant?: boolean } = {}): QuantizeModuleResult {
  const fmt = validateQuantFormat(format, 'quantizeTrunk: format');
  return quantizeModule(stack, fmt, { includeTrainable: true, doubleQuant: fmt === 'nf4' ? opts.doubleQuant ?? true : false });
}

/**
 * The storage format of a module's linear weights: 'fp32' when no layer is quantized, the format
 * when every Linear is quantized in one format ('nf4' with or without double quantization),
 * 'mixed' otherwise.
 */
export function weightFormatOf(root: Module): 'fp32' | QuantFormat | 'mixed' {
  const seen = new Set<string>();
  for (const [, m] of root.namedModules()) {
    if (m instanceof QuantizedLinear) seen.add(m.format);
    else if (m instanceof Linear) seen.add('fp32');
  }
  if (seen.size === 0) return 'fp32';
  return seen.size === 1 ? ([...seen][0] as 'fp32' | QuantFormat) : 'mixed';
}
