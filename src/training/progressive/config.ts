/**
 * `model.progressive`: the config extension of the progressive model plane (registered on import)
 * and its conversion into the ProgressiveRackBuilder's options. A phase overrides it like any other
 * model key; FIXED_PROGRESSIVE_KEYS may not change between phases (the builder is made once).
 */
import { z } from 'zod';
import { registerConfigExtension } from '../../framework/config/schema.js';
import { LORA_TARGET_NAMES, validateQuantFormat } from '../../nn/index.js';
import type { LoraTarget } from '../../framework/index.js';
import type { ResolvedPhase } from '../config/resolved-phase.js';
import { ProgressiveConfigError } from './errors.js';
import { FREEZE_POLICIES, type FreezePolicy } from './freeze.js';
import { GROWTH_INITS, type GrowthSpec } from './operators.js';
import { LORA_RANK_STRATEGIES, type LoraRankStrategy, type ProgressiveLoraOptions, type StackLoraOptions } from './lora.js';
import { STORAGE_FORMATS } from '../../engine/index.js';

const posInt = z.number().int().min(1);
const posNumber = z.number().positive();
const loraTarget = z.enum(LORA_TARGET_NAMES as unknown as [LoraTarget, ...LoraTarget[]]);
const growthInit = z.enum(GROWTH_INITS);

// fresh, copy_top and copy_middle (GROWTH_INITS) take no options.
const [freshGrowth, copyTopGrowth, copyMiddleGrowth] = GROWTH_INITS.map((kind) => z.strictObject({ kind: z.literal(kind) }));

export const growthConfigSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { kind: v } : v),
  z.discriminatedUnion('kind', [
    freshGrowth!, copyTopGrowth!, copyMiddleGrowth!,
    /** LLaMA Pro: growing N stacks by P puts a copy of every (N/P)-th stack after it with its output projections zeroed (each new stack starts as the identity). */
    z.strictObject({ kind: z.literal('block_expansion') }),
    /** SOLAR: the model joined with a copy of itself, m stacks dropped on each side of the seam (N → 2N − 2m; m follows from the phase's n_stacks). */
    z.strictObject({ kind: z.literal('depth_upscaling') }),
    z.strictObject({ kind: z.literal('identity'), init: growthInit.optional() }),
    z.strictObject({
      kind: z.literal('ramp'),
      /** Global t interval over which the new stack's gate rises 0 → 1 (grow at t ≤ t0). */
      t0: z.number().min(0).max(1),
      t1: z.number().min(0).max(1),
      init: z.enum([...GROWTH_INITS, 'identity']).optional(),
    }),
  ]),
);

const partState = z.enum(['train', 'frozen', 'adapters']);

/** model.progressive.head: how the head trains. */
export const HEAD_MODES = ['train', 'lora', 'frozen'] as const;
export type HeadMode = (typeof HEAD_MODES)[number];
export const freezeConfigSchema = z.union([
  z.enum(FREEZE_POLICIES),
  z.strictObject({ new_stack: partState.optional(), trunk: partState.optional(), embedding: z.enum(['train', 'frozen']).optional(), head: z.enum(['train', 'frozen']).optional() }),
]);

export const stackLoraConfigSchema = z.strictObject({
  rank: posInt.optional(),
  alpha: posNumber.optional(),
  /** constant: rank/alpha for all; growing: rank + k·step (linear) or rank·factor^k (geometric); per_stack: ranks[k]. */
  strategy: z.enum(LORA_RANK_STRATEGIES).default('constant'),
  growth: z.enum(['linear', 'geometric']).optional(),
  step: z.number().int().min(0).optional(),
  factor: posNumber.optional(),
  max_rank: posInt.optional(),
  ranks: z.array(posInt).optional(),
  alphas: z.array(posNumber).optional(),
  targets: z.array(loraTarget).min(1).default(['q', 'v']),
  dropout: z.number().min(0).lt(1).optional(),
  /** Also train the new stack's base weights (default true). */
  train_base: z.boolean().default(true),
}).superRefine((v, ctx) => {
  if (v.strategy !== 'per_stack' && v.rank === undefined) ctx.addIssue({ code: 'custom', path: ['rank'], message: `expected a rank (strategy '${v.strategy}')` });
  if (v.strategy === 'constant' && v.alpha === undefined) ctx.addIssue({ code: 'custom', path: ['alpha'], message: "expected an alpha (strategy 'constant')" });
  if (v.strategy === 'per_stack' && v.ranks === undefined) ctx.addIssue({ code: 'custom', path: ['ranks'], message: "expected ranks (one per stack) for strategy 'per_stack'" });
  // A key the chosen strategy does not read would be silently ignored: refuse it.
  const geometric = v.growth === 'geometric';
  const unused: [keyof typeof v, boolean, string][] = [
    ['rank', v.strategy === 'per_stack', "strategy 'per_stack' takes ranks (one per stack), not rank"],
    ['alpha', v.strategy === 'per_stack', "strategy 'per_stack' takes alphas (one per stack), not alpha"],
    ['growth', v.strategy !== 'growing', "only strategy 'growing' grows the rank"],
    ['step', v.strategy !== 'growing' || geometric, v.strategy === 'growing' ? "step is the linear growth's increment; geometric growth takes factor" : "only strategy 'growing' takes a step"],
    ['factor', v.strategy !== 'growing' || !geometric, v.strategy === 'growing' ? "factor is the geometric growth's ratio; set growth: geometric, or use step for linear growth" : "only strategy 'growing' takes a factor"],
    ['max_rank', v.strategy !== 'growing', "only strategy 'growing' caps the rank"],
    ['ranks', v.strategy !== 'per_stack', "only strategy 'per_stack' takes ranks"],
    ['alphas', v.strategy !== 'per_stack', "only strategy 'per_stack' takes alphas"],
  ];
  for (const [key, bad, why] of unused) {
    if (bad && v[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `expected no ${key} with strategy '${v.strategy}' (${why})`, params: { expected: `no ${key} (${why})`, found: JSON.stringify(v[key]) } });
  }
});

export const progressiveLoraConfigSchema = z.strictObject({
  rank: posInt,
  alpha: posNumber,
  targets: z.array(loraTarget).min(1).default(['q', 'v']),
  dropout: z.number().min(0).lt(1).optional(),
});

/** trunk_format: the storage formats (engine's STORAGE_FORMATS). */
export const TRUNK_FORMATS = STORAGE_FORMATS;

export const progressiveConfigSchema = z.strictObject({
  /** append: left→right (capacity growth); prepend: right→left (suffix and head frozen as an anchor). */
  direction: z.enum(['append', 'prepend']).default('append'),
  /** Stacks the rack grows to (default: the largest n_stacks of any phase). */
  target_stacks: posInt.optional(),
  growth: growthConfigSchema.default({ kind: 'fresh' }),
  /** Default: none (append), frozen_suffix (prepend). */
  freeze: freezeConfigSchema.optional(),
  stack_lora: stackLoraConfigSchema.optional(),
  progressive_lora: progressiveLoraConfigSchema.optional(),
  /** Storage of trunk weights: fp32 (trainable), or nf4 / int8 / fp16 / bf16, stored frozen (such a trunk trains only through adapters). */
  trunk_format: z.string().default('fp32').superRefine((v, ctx) => {
    if (v === 'fp32') return;
    try {
      validateQuantFormat(v, 'model.progressive.trunk_format');
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
  /**
   * How the head trains, over the freeze policy's head state: 'train' (its weights), 'lora' (its
   * weights frozen, a LoRA adapter on the decoder — or on a classification head's classifier —
   * trains), 'frozen'. A head tied to the token embedding shares its table: 'lora' and 'frozen'
   * freeze that table too. Default: the freeze policy decides.
   */
  head: z.enum(HEAD_MODES).optional(),
  /** The head adapter's rank and alpha (head: lora); default progressive_lora's, else stack_lora's (strategy constant). */
  head_lora: z.strictObject({
    /** Rank r of the head adapter (A [r, d], B [rows, r]). */
    rank: posInt,
    /** Scale numerator: the adapter adds (alpha / r) · B A to the decoder weight. */
    alpha: posNumber,
  }).optional(),
  /** Seed of new stacks and adapters (default training.seed). */
  seed: z.number().int().optional(),
  /** lr multiplier per builder group (new_stack, trunk, stack_lora, progressive_lora, no_decay); default 1. */
  group_lr_scale: z.strictObject({
    new_stack: z.number().min(0).optional(),
    trunk: z.number().min(0).optional(),
    stack_lora: z.number().min(0).optional(),
    progressive_lora: z.number().min(0).optional(),
    no_decay: z.number().min(0).optional(),
  }).optional(),
  /**
   * Serve the frozen prefix (embedding + leading frozen stacks) from an activation cache: each training sample's prefix output is computed once and reused while the prefix is unchanged (pair with data.windows: aligned so that samples recur). The prefix runs in eval mode (no dropout).
   */
  activation_cache: z.strictObject({
    /** Megabytes of activations kept in memory; beyond it the least recently used spill to disk. */
    memory_budget_mb: z.number().min(0).default(256),
    /** Megabytes allowed on disk (default unlimited); beyond it the oldest spilled entries are dropped. */
    disk_budget_mb: z.number().min(0).optional(),
    /** Parent folder of the spill folder (default the OS temp folder). */
    spill_dir: z.string().min(1).optional(),
    /** Also hash the prefix weights' contents on every step (a verification; write versions are exact already). */
    check_content: z.boolean().default(false),
  }).optional(),
});

export type ProgressiveConfig = z.output<typeof progressiveConfigSchema>;

registerConfigExtension('model', 'progressive', progressiveConfigSchema);

/** Keys of model.progressive that no phase may change (the builder is made once). */
export const FIXED_PROGRESSIVE_KEYS = ['direction', 'target_stacks', 'stack_lora', 'progressive_lora', 'head', 'head_lora', 'seed', 'group_lr_scale', 'activation_cache'] as const;

/**
 * The head adapter's rank and alpha for head: lora (head_lora, else progressive_lora's, else a
 * constant stack_lora's); null when the head mode is not lora. A head_lora without head: lora,
 * or head: lora with no rank to take, is refused.
 */
export function headLoraOf(p: ProgressiveConfig): { rank: number; alpha: number } | null {
  if (p.head !== 'lora') {
    if (p.head_lora) throw new ProgressiveConfigError(`model.progressive.head_lora is set, but model.progressive.head is ${p.head === undefined ? 'not set' : `'${p.head}'`}; the head adapter exists only with head: lora`);
    return null;
  }
  if (p.head_lora) return { rank: p.head_lora.rank, alpha: p.head_lora.alpha };
  if (p.progressive_lora) return { rank: p.progressive_lora.rank, alpha: p.progressive_lora.alpha };
  if (p.stack_lora?.strategy === 'constant') return { rank: p.stack_lora.rank!, alpha: p.stack_lora.alpha! };
  throw new ProgressiveConfigError('model.progressive.head: lora needs a rank and an alpha: set model.progressive.head_lora: { rank, alpha } (or a progressive_lora, or a constant stack_lora, to take them from)');
}

export function growthSpecOf(g: ProgressiveConfig['growth']): GrowthSpec {
  switch (g.kind) {
    case 'identity': return g.init ? { kind: 'identity', init: g.init } : { kind: 'identity' };
    case 'ramp': {
      if (!(g.t0 <= g.t1)) throw new ProgressiveConfigError(`model.progressive.growth: ramp interval [${g.t0}, ${g.t1}] must have t0 ≤ t1`);
      return g.init ? { kind: 'ramp', t0: g.t0, t1: g.t1, init: g.init } : { kind: 'ramp', t0: g.t0, t1: g.t1 };
    }
    default: return { kind: g.kind };
  }
}

export function freezePolicyOf(f: ProgressiveConfig['freeze']): FreezePolicy | undefined {
  if (f === undefined) return undefined;
  if (typeof f === 'string') return f;
  // The config's part names are FreezePlan's: copy the parts given.
  const out: Partial<Record<keyof typeof f, string>> = {};
  for (const [k, v] of Object.entries(f)) if (v !== undefined) out[k as keyof typeof f] = v;
  return out as FreezePolicy;
}

export function stackLoraOf(l: NonNullable<ProgressiveConfig['stack_lora']>): StackLoraOptions {
  let strategy: LoraRankStrategy;
  if (l.strategy === 'constant') strategy = { kind: 'constant', rank: l.rank!, alpha: l.alpha! };
  else if (l.strategy === 'growing') {
    strategy = { kind: 'growing', rank: l.rank! };
    if (l.alpha !== undefined) strategy.alpha = l.alpha;
    if (l.growth !== undefined) strategy.growth = l.growth;
    if (l.step !== undefined) strategy.step = l.step;
    if (l.factor !== undefined) strategy.factor = l.factor;
    if (l.max_rank !== undefined) strategy.maxRank = l.max_rank;
  } else {
    strategy = { kind: 'per_stack', ranks: l.ranks! };
    if (l.alphas !== undefined) strategy.alphas = l.alphas;
  }
  const out: StackLoraOptions = { strategy, targets: l.targets, trainBase: l.train_base };
  if (l.dropout !== undefined) out.dropout = l.dropout;
  return out;
}

export function progressiveLoraOf(l: NonNullable<ProgressiveConfig['progressive_lora']>): ProgressiveLoraOptions {
  const out: ProgressiveLoraOptions = { rank: l.rank, alpha: l.alpha, targets: l.targets };
  if (l.dropout !== undefined) out.dropout = l.dropout;
  return out;
}

/** The model.progressive of a resolved phase (parsed again so defaults are filled). */
export function progressiveOf(resolved: ResolvedPhase): ProgressiveConfig | undefined {
  const raw = (resolved.model as Record<string, unknown> | undefined)?.['progressive'];
  return raw === undefined ? undefined : progressiveConfigSchema.parse(raw);
}

/** Whether any phase of a parsed config has a model.progressive section. */
export function usesProgressivePlane(parsed: { phases: readonly ResolvedPhase[] }): boolean {
  return parsed.phases.some((p) => (p.model as Record<string, unknown> | undefined)?.['progressive'] !== undefined);
}

/**
 * The model.progressive settings of a config whose phases change model.n_stacks without a
 * model.progressive section: the rack grows left to right by copy_top, everything keeps training,
 * and the optimizer keeps the config's parameter groups (progressive stacking, as `stackwise
 * train` has always grown such configs).
 */
export const IMPLICIT_GROWTH = { direction: 'append', growth: 'copy_top', freeze: 'none' } as const;

/** Whether the phases of a parsed config change the number of stacks. */
export function changesStacks(parsed: { phases: readonly ResolvedPhase[] }): boolean {
  const counts = new Set(parsed.phases.map((p) => p.model?.n_stacks).filter((n) => n !== undefined));
  return counts.size > 1;
}

