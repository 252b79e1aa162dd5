/**
 * Dual LoRA: a "stack LoRA" on each new stack (rank/alpha: one value for all, growing with depth,
 * or given per stack) and a "progressive LoRA" on the trunk whenever a stack is added.
 *
 * A Linear carries one adapter at a time, so when a progressive adapter goes onto a projection
 * that already has one (the stack's own LoRA, or the previous growth's progressive LoRA), the old
 * adapter is first folded into the base weight (W ← W + (α/r)·B A, exact up to fp32 rounding);
 * the new adapter starts with B = 0, so the model's function does not change.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { Block, deriveSeed, Linear, LORA_TARGET_NAMES, type BlockConfig, type Module } from '../../nn/index.js';
import type { LoraTarget } from '../../framework/index.js';
import { ProgressiveConfigError } from './errors.js';
import { isQuantizedLike, projectionsOf, type LinearLike } from './linear-like.js';

/** The stack-LoRA rank strategies, by the names `stack_lora.strategy` uses. */
export const LORA_RANK_STRATEGIES = ['constant', 'growing', 'per_stack'] as const;

export type LoraRankStrategy =
  /** The same rank and alpha on every stack. */
  | { kind: 'constant'; rank: number; alpha: number }
  /**
   * Growing with depth (final stack index k, 0 = leftmost): linear rank + k·step (step default
   * = rank), or geometric rank·factor^k (factor default 2); capped at maxRank. Alpha keeps the
   * ratio alpha/rank of the first stack (default alpha = rank) unless `alphaMode: 'fixed'`.
   */
  | { kind: 'growing'; rank: number; alpha?: number; growth?: 'linear' | 'geometric'; step?: number; factor?: number; maxRank?: number; alphaMode?: 'proportional' | 'fixed' }
  /** Explicit values per final stack index (alphas default to the ranks). */
  | { kind: 'per_stack'; ranks: number[]; alphas?: number[] };

export interface StackLoraOptions {
  strategy: LoraRankStrategy;
  targets: LoraTarget[];
  dropout?: number;
  /** Also train the new stack's base weights (default true); false: only its adapters train. */
  trainBase?: boolean;
}

export interface ProgressiveLoraOptions {
  rank: number;
  alpha: number;
  targets: LoraTarget[];
  dropout?: number;
}

function positiveInt(v: unknown, what: string): void {
  if (!Number.isInteger(v) || (v as number) < 1) throw new ProgressiveConfigError(`${what} must be a positive integer, found ${String(v)}`);
}

function positive(v: unknown, what: string): void {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new ProgressiveConfigError(`${what} must be a positive number, found ${String(v)}`);
}

/** Checks a strategy against the final number of stacks. */
export function checkRankStrategy(s: LoraRankStrategy, targetStacks: number, what = 'stack_lora.strategy'): void {
  switch (s?.kind) {
    case 'constant':
      positiveInt(s.rank, `${what}.rank`);
      positive(s.alpha, `${what}.alpha`);
      return;
    case 'growing':
      positiveInt(s.rank, `${what}.rank`);
      if (s.alpha !== undefined) positive(s.alpha, `${what}.alpha`);
      if (s.step !== undefined && !(Number.isInteger(s.step) && s.step >= 0)) throw new ProgressiveConfigError(`${what}.step must be a non-negative integer, found ${s.step}`);
      if (s.factor !== undefined) positive(s.factor, `${what}.factor`);
      if (s.maxRank !== undefined) positiveInt(s.maxRank, `${what}.max_rank`);
      if (s.growth !== undefined && s.growth !== 'linear' && s.growth !== 'geometric') throw new ProgressiveConfigError(`${what}.growth must be 'linear' or 'geometric', found '${String(s.growth)}'`);
      return;
    case 'per_stack':
      if (!Array.isArray(s.ranks) || s.ranks.length < targetStacks) {
        throw new ProgressiveConfigError(`${what}.ranks lists ${Array.isArray(s.ranks) ? s.ranks.length : 0} ranks, but the rack grows to ${targetStacks} stacks (one rank per stack)`);
      }
      s.ranks.forEach((r, i) => positiveInt(r, `${what}.ranks[${i}]`));
      if (s.alphas !== undefined) {
        if (s.alphas.length < targetStacks) throw new ProgressiveConfigError(`${what}.alphas lists ${s.alphas.length} values, but the rack grows to ${targetStacks} stacks`);
        s.alphas.forEach((a, i) => positive(a, `${what}.alphas[${i}]`));
      }
      return;
    default:
      throw new ProgressiveConfigError(`${what}.kind must be one of ${LORA_RANK_STRATEGIES.join(', ')}, found '${String((s as { kind?: unknown })?.kind)}'`);
  }
}

/** Rank and alpha of the stack at final index k. */
export function loraRankFor(s: LoraRankStrategy, k: number): { rank: number; alpha: number } {
  switch (s.kind) {
    case 'constant':
      return { rank: s.rank, alpha: s.alpha };
    case 'growing': {
      const base = s.rank;
      let rank = (s.growth ?? 'linear') === 'linear' ? base + k * (s.step ?? base) : Math.round(base * Math.pow(s.factor ?? 2, k));
      if (s.maxRank !== undefined) rank = Math.min(rank, s.maxRank);
      rank = Math.max(1, rank);
      const alpha0 = s.alpha ?? base;
      return { rank, alpha: (s.alphaMode ?? 'proportional') === 'fixed' ? alpha0 : (alpha0 * rank) / base };
    }
    case 'per_stack':
      return { rank: s.ranks[k]!, alpha: s.alphas?.[k] ?? s.ranks[k]! };
  }
}

/** The LoRA target names that exist in a block of this config. */
export function availableLoraTargets(block: BlockConfig): LoraTarget[] {
  const out: LoraTarget[] = [];
  const kind = block.attentionKind ?? 'standard';
  if (kind === 'mla') {
    if (!block.mla?.qRank) out.push('q');
  } else out.push('q', 'k', 'v');
  out.push('o');
  if (block.ffn === 'swiglu') out.push('gate');
  out.push('up', 'down');
  return out;
}

/** Throws unless every target exists in blocks of this config. */
export function checkLoraTargets(targets: unknown, block: BlockConfig, what: string): void {
  if (!Array.isArray(targets) || targets.length === 0) throw new ProgressiveConfigError(`${what}.targets must be a non-empty list of ${LORA_TARGET_NAMES.join(', ')}`);
  const have = availableLoraTargets(block);
  for (const t of targets) {
    if (!(LORA_TARGET_NAMES as readonly unknown[]).includes(t)) throw new ProgressiveConfigError(`${what}.targets: unknown LoRA target '${String(t)}' (expected one of ${LORA_TARGET_NAMES.join(', ')})`);
    if (!have.includes(t as LoraTarget)) {
      const why = t === 'gate' ? ` ('gate' exists only in SwiGLU FFNs; this block's FFN is '${block.ffn}')` : ` (this block's ${block.attentionKind ?? 'standard'} attention has ${have.filter((x) => ['q', 'k', 'v', 'o'].includes(x)).join(', ')})`;
      throw new ProgressiveConfigError(`${what}.targets: LoRA target '${String(t)}' does not exist in the blocks${why}`);
    }
  }
}

/** Folds a Linear's adapter into its base weight and removes it (W ← W + (α/r)·B A). */
export function foldLora(lin: Linear): void {
  if (!lin.lora) return;
  if (lin.isMerged) lin.unmerge();
  const eff = E.tidy(() => E.noGrad(() => E.keep(E.add(lin.weight, E.mulScalar(E.matmul(lin.loraB!, lin.loraA!), lin.lora!.scale)))));
  const trainable = lin.weight.requiresGrad;
  lin.removeLora();
  lin.loadStateDict(new Map<string, Tensor>([['weight', eff]]), { strict: false });
  lin.weight.requiresGrad = trainable;
  eff.dispose();
}

/**
 * Attaches adapters to the `targets` of every block under `root`. An fp32 projection that already
 * carries an adapter has it folded into its weight first; a quantized projection cannot absorb
 * one, so an adapter it already carries is kept (it goes on training). Adapter seeds derive from
 * `seed` and the projection's path. Returns the projections that got a new adapter. Parameter
 * flags are left as they were (the freeze policy sets them).
 */
export function attachAdapters(root: Module, opts: { rank: number; alpha: number; targets: LoraTarget[]; dropout?: number; seed: number }): LinearLike[] {
  const plan: [string, LinearLike][] = [];
  const found = new Set<LoraTarget>();
  for (const [path, m] of root.namedModules()) {
    if (!(m instanceof Block)) continue;
    const projections = projectionsOf(m);
    for (const t of opts.targets) {
      const lin = projections.get(t);
      if (!lin) continue;
      found.add(t);
      plan.push([`${path ? `${path}.` : ''}${t === 'gate' || t === 'up' || t === 'down' ? 'ffn' : 'attn'}.${t}`, lin]);
    }
  }
  const missing = opts.targets.filter((t) => !found.has(t));
  if (missing.length) throw new ProgressiveConfigError(`LoRA target(s) ${missing.join(', ')} exist in no block under this ${root.typeName}`);
  const flags = new Map(root.parameters().map((t) => [t, t.requiresGrad]));
  const adapted: LinearLike[] = [];
  for (const [path, lin] of plan) {
    if (lin.lora) {
      if (isQuantizedLike(lin)) continue;
      foldLora(lin as Linear);
    }
    lin.addLora({ rank: opts.rank, alpha: opts.alpha, dropout: opts.dropout, seed: deriveSeed(opts.seed, path) });
    adapted.push(lin);
  }
  for (const [t, f] of flags) t.requiresGrad = f;
  return adapted;
}
