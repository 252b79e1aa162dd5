/**
 * Projections a LoRA adapter can sit on: the model library's `Linear` and any layer with the same
 * adapter surface (its `QuantizedLinear`, whose frozen weight is stored quantized). Progressive
 * code reaches them through this duck-typed view so it works on fp32 and quantized trunks alike.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { Linear, type Block, type LoraOptions, type LoraState, type Module } from '../../nn/index.js';
import type { LoraTarget } from '../../framework/index.js';

export interface LinearLike extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  lora: LoraState | null;
  readonly loraA: Tensor | null;
  readonly loraB: Tensor | null;
  readonly isMerged: boolean;
  addLora(opts: LoraOptions): unknown;
  removeLora(): unknown;
}

export function isLinearLike(m: unknown): m is LinearLike {
  const x = m as Partial<LinearLike> | null;
  return !!x && typeof x.addLora === 'function' && typeof x.removeLora === 'function' && typeof x.inFeatures === 'number' && typeof x.outFeatures === 'number';
}

/** Quantized (or otherwise non-Linear) projection: its base weight cannot absorb an adapter. */
export function isQuantizedLike(m: LinearLike): boolean {
  return !(m instanceof Linear);
}

/** The projections of a block by LoRA target name (Linear or quantized). */
export function projectionsOf(block: Block): Map<LoraTarget, LinearLike> {
  const out = new Map<LoraTarget, LinearLike>();
  const attn = new Map(block.attn.namedChildren());
  for (const t of ['q', 'k', 'v', 'o'] as const) {
    const m = attn.get(t);
    if (isLinearLike(m)) out.set(t, m);
  }
  const ffn = new Map(block.ffn.namedChildren());
  for (const t of ['gate', 'up', 'down'] as const) {
    const m = ffn.get(t);
    if (isLinearLike(m)) out.set(t, m);
  }
  return out;
}

/**
 * The weight a projection applies, as a new tensor: the fp weight (or the dequantized one) plus an
 * unmerged adapter's (α/r)·B A. Call inside a scope.
 */
export function effectiveWeight(m: LinearLike): Tensor {
  return E.noGrad(() => {
    let w: Tensor;
    if (m instanceof Linear) w = m.weight;
    else {
      const dq = (m as unknown as { dequantizedWeight?: (dtype?: string) => Tensor }).dequantizedWeight;
      if (typeof dq !== 'function') throw new Error(`${m.typeName}: cannot read its weight (no dequantizedWeight())`);
      w = dq.call(m, m.loraA?.dtype ?? 'float32');
    }
    if (m.lora && !m.isMerged && m.loraA && m.loraB) w = E.add(w, E.mulScalar(E.matmul(m.loraB, m.loraA), m.lora.scale));
    return w;
  });
}

/** Weights a parameter stands for (packed quantized storage is tagged by the model library). */
export function representedSize(t: Tensor): number {
  return (t as unknown as { representedParameters?: number }).representedParameters ?? t.size;
}
