/** LoRA over a module tree: attach adapters by target name, merge/unmerge, list them. */
import type { Tensor } from '../engine/index.js';
import { LORA_TARGETS, isLoraParamName, type LoraTarget } from './lora-names.js';
import { Module } from './module.js';
import { Linear } from './layers.js';
import { Block } from './block.js';
import { deriveSeed } from './init.js';
import { QuantizedLinear } from './quantized-linear.js';

export const LORA_TARGET_NAMES: readonly LoraTarget[] = LORA_TARGETS;

export interface ApplyLoraOptions {
  rank: number;
  alpha: number;
  /** Which projections of each block ('q', 'k', 'v', 'o', 'gate', 'up', 'down'). */
  targets: LoraTarget[];
  dropout?: number;
  seed: number;
  rslora?: boolean;
  init?: 'default' | 'random';
  /**
   * Freeze every other parameter of `root` (PEFT semantics: only adapters train). Default true.
   * With false only the adapted Linear layers' own weights are frozen.
   */
  freezeOthers?: boolean;
  /**
   * k and v reuse q's A (one adapter on a fused q|k|v projection, as PEFT puts on GPT-2's
   * c_attn); needs q, k and v among the targets. Default false.
   */
  sharedQKV?: boolean;
}

/**
 * Attaches a LoRA adapter to the target projections of every Block under `root` (a Model, Rack,
 * Stack or Block). Each adapter's seed derives from `seed` and the Linear's path relative to
 * `root`. Returns the adapted Linear paths (relative to root).
 */
export function applyLora(root: Module, opts: ApplyLoraOptions): string[] {
  for (const t of opts.targets) {
    if (!LORA_TARGET_NAMES.includes(t)) throw new Error(`applyLora: unknown target '${t}' (expected one of ${LORA_TARGET_NAMES.join(', ')})`);
  }
  if (opts.targets.length === 0) throw new Error('applyLora: no targets given');
  // Plan first, so that nothing is attached when a target is missing.
  const plan: [string, Linear | QuantizedLinear][] = [];
  const found = new Set<LoraTarget>();
  for (const [path, m] of root.namedModules()) {
    if (!(m instanceof Block)) continue;
    const linears = m.loraTargets();
    for (const t of opts.targets) {
      const lin = linears.get(t);
      if (!lin) continue;
      found.add(t);
      plan.push([m.namedModules(path).find(([, mm]) => mm === lin)![0], lin]);
    }
  }
  const missing = opts.targets.filter((t) => !found.has(t));
  if (missing.length > 0) {
    throw new Error(`applyLora: target(s) ${missing.join(', ')} exist in no block under this ${root.typeName}${missing.includes('gate') ? " ('gate' needs a SwiGLU FFN)" : ''}`);
  }
  if (opts.sharedQKV && !(['q', 'k', 'v'] as const).every((t) => opts.targets.includes(t))) {
    throw new Error(`applyLora: sharedQKV needs 'q', 'k' and 'v' among the targets (got ${opts.targets.join(', ')})`);
  }
  const adapted: string[] = [];
  // With sharedQKV, each q adapter must exist before its k and v reuse its A.
  const order = opts.sharedQKV ? [...plan].sort((a, b) => Number(/attn\.[kv]$/.test(a[0])) - Number(/attn\.[kv]$/.test(b[0]))) : plan;
  for (const [childPath, lin] of order) {
    let sharedA: Tensor | undefined;
    if (opts.sharedQKV && /(^|\.)attn\.[kv]$/.test(childPath)) {
      const qPath = childPath.replace(/[kv]$/, 'q');
      sharedA = plan.find(([p]) => p === qPath)?.[1].loraA ?? undefined;
    }
    lin.addLora({ rank: opts.rank, alpha: opts.alpha, dropout: opts.dropout, seed: deriveSeed(opts.seed, childPath), rslora: opts.rslora, init: opts.init, sharedA });
    adapted.push(childPath);
  }
  if (opts.freezeOthers ?? true) {
    for (const [name, t] of root.namedParameters()) t.requiresGrad = isLoraParamName(name);
  }
  return adapted;
}

/** Every Linear carrying an adapter, by path. */
export function loraLayers(root: Module): [string, Linear | QuantizedLinear][] {
  return root.namedModules().filter((e): e is [string, Linear | QuantizedLinear] => (e[1] instanceof Linear || e[1] instanceof QuantizedLinear) && e[1].lora !== null);
}

/** Only the adapter tensors (by dotted name), e.g. for saving an adapter. */
export function loraParameters(root: Module): [string, Tensor][] {
  return root.namedParameters().filter(([n]) => isLoraParamName(n));
}

/** Folds adapters into their Linear weights (quantized layers keep theirs: their storage
 * cannot absorb an adapter). */
export function mergeLora(root: Module): void {
  for (const [, l] of loraLayers(root)) if (l instanceof Linear) l.merge();
}

export function unmergeLora(root: Module): void {
  for (const [, l] of loraLayers(root)) if (l instanceof Linear) l.unmerge();
}

export function removeLora(root: Module): void {
  for (const [, l] of loraLayers(root)) l.removeLora();
}
