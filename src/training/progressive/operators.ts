/**
 * Growth operators: functions from a rack to a larger rack. Each builds one new stack from the
 * rack as it is (fresh, copied or identity-initialised, optionally ramped in) and inserts it on
 * the right (append, left→right) or on the left (prepend, right→left) — or, for the two
 * operators that grow a pretrained model from the inside, at a place of its own:
 *
 *   block_expansion  LLaMA Pro (Wu et al. 2024): growing N stacks by P puts one new stack after
 *                    every (N/P)-th stack, a copy of the stack before it with its output
 *                    projections (attention o, FFN down) zeroed, so each new stack starts as the
 *                    identity and the model computes exactly what it computed before;
 *   depth_upscaling  SOLAR (Kim et al. 2023): two copies of the model, the last m stacks of the
 *                    first and the first m of the second dropped, concatenated — N → 2N − 2m. The
 *                    same rack comes out of keeping the N stacks and inserting copies of stacks
 *                    m … N−m−1 before the last m, which is how it is done here (trained stacks
 *                    are never removed); m follows from the growth: m = (N − added) / 2.
 *
 * The rack is evolved in place (the same Rack object, trained weights untouched) and returned.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { Block, deriveSeed, Linear, Stack, withoutRandomInit, type Module, type Rack, type StackConfig } from '../../nn/index.js';
import { ProgressiveConfigError } from './errors.js';
import { RampedStack } from './ramp.js';
import { effectiveWeight, isLinearLike } from './linear-like.js';

/** The growth operators, by the names `model.progressive.growth` uses (one list: config, code and messages). */
export const GROWTH_OPERATORS = ['fresh', 'copy_top', 'copy_middle', 'identity', 'ramp', 'block_expansion', 'depth_upscaling'] as const;
export type GrowthKind = (typeof GROWTH_OPERATORS)[number];
export type GrowthPosition = 'append' | 'prepend';

export interface GrowthContext {
  /** Right end (append, left→right) or left end (prepend, right→left). */
  position: GrowthPosition;
  /** Shape of the new stack (fresh stacks use it as is; copies take the source blocks' config). */
  config: StackConfig;
  /** Seed of every random initialisation of the new stack. */
  seed: number;
  /** Global time of the growth (ramp-in needs it). */
  t?: number;
  /**
   * The rack's blocks before the growth step (copies read them). Default: the rack's blocks now.
   * A growth step that adds several stacks passes the same list to each, so copies come from
   * the rack as it was, not from stacks added moments before.
   */
  source?: readonly Block[];
  /** This stack's place in a growth step adding `size` stacks (index 0 is added first); default one stack. */
  batch?: { index: number; size: number };
  /** The rack's stacks before the growth step (operators that insert inside the rack place and copy by them). Default: the stacks now. */
  sourceStacks?: readonly Stack[];
}

export interface GrowthOperator {
  readonly kind: GrowthKind;
  /** True when the rack computes exactly the same function right after growth. */
  readonly preservesFunction: boolean;
  /** A human-readable description (recorded in the growth history). */
  readonly description: string;
  /** Builds the new stack for `rack` without inserting it. */
  makeStack(rack: Rack, ctx: GrowthContext): Stack;
  /** Where the new stack goes: its rack position now (absent: the end `ctx.position` names). */
  place?(rack: Rack, ctx: GrowthContext): number;
  /** Why a growth step from `before` to `after` stacks at `position` cannot be done (undefined: it can). */
  problem?(before: number, after: number, position: GrowthPosition): string | undefined;
}

/** How a new stack's weights start before identity or ramp wrap it (growth.init). */
export const GROWTH_INITS = ['fresh', 'copy_top', 'copy_middle'] as const;
export type GrowthInit = (typeof GROWTH_INITS)[number];

/** Serialisable choice of a growth operator (config files use this). */
export type GrowthSpec =
  | { kind: 'fresh' }
  | { kind: 'copy_top' }
  | { kind: 'copy_middle' }
  /** Zero-initialised output projections (attention o, FFN down): a pre-norm stack starts as the identity. */
  | { kind: 'identity'; init?: GrowthInit }
  /** A scalar gate on the new stack, 0 → 1 over [t0, t1] (global time). */
  | { kind: 'ramp'; t0: number; t1: number; init?: GrowthInit | 'identity' }
  /** LLaMA Pro: a zero-output copy after every (N/P)-th stack. */
  | { kind: 'block_expansion' }
  /** SOLAR: the model concatenated with a copy of itself, m stacks dropped at the seam on each side. */
  | { kind: 'depth_upscaling' };

/** (name, tensor) of every distinct parameter of `m`, by dotted path, without renaming tensors. */
export function parameterEntries(m: Module): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  const seen = new Set<Tensor>();
  for (const [path, mod] of m.namedModules()) {
    for (const [n, t] of mod.ownParameters()) {
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([path ? `${path}.${n}` : n, t]);
    }
  }
  return out;
}

/**
 * A new block with the same config and the *effective* weights of `src`: an unmerged LoRA adapter
 * is folded in (W + (α/r)·B A) and a quantized weight is dequantized; the copy carries no adapter.
 */
export function copyBlock(src: Block, seed: number): Block {
  const place = { dtype: src.dtype, backend: src.backend };
  const block = withoutRandomInit(() => new Block(src.dModel, src.config, { ...place, seed }));
  E.tidy(() => E.noGrad(() => {
    const sd = new Map<string, Tensor>();
    for (const [path, m] of block.namedModules()) {
      const from = src.getModule(path);
      for (const [n] of m.ownParameters()) {
        const name = path ? `${path}.${n}` : n;
        if (n === 'weight' && isLinearLike(from)) { sd.set(name, effectiveWeight(from)); continue; }
        const t = from.ownParameters().find(([k]) => k === n)?.[1];
        if (!t) throw new ProgressiveConfigError(`copy: the source block has no parameter '${name}'`);
        sd.set(name, t);
      }
    }
    block.loadStateDict(sd);
  }));
  block.train(src.training);
  return block;
}

/** Indices of n blocks of a rack of `total` blocks, starting at `start`, cycling when n > total. */
function cyclic(start: number, n: number, total: number): number[] {
  return Array.from({ length: n }, (_, j) => (((start + j) % total) + total) % total);
}

function freshStack(rack: Rack, ctx: GrowthContext): Stack {
  const s = Stack.create(rack.dModel, ctx.config, { seed: ctx.seed, dtype: rack.dtype, backend: rack.backend });
  s.train(rack.training);
  return s;
}

/**
 * A stack of copies of the top (or middle) blocks. A growth step adding k stacks of n blocks
 * copies the top (middle) k·n blocks of the rack as it was, in order: the j-th piece of n blocks
 * goes to the j-th new stack from the left, so 6 → 12 blocks by two 3-block stacks appended gives
 * blocks 0-5 again on top (classic progressive stacking), not three copies of blocks 3-5.
 */
function copiedStack(rack: Rack, ctx: GrowthContext, where: 'top' | 'middle'): Stack {
  const blocks = ctx.source ?? rack.allBlocks();
  if (blocks.length === 0) throw new ProgressiveConfigError(`copy-${where}: the rack has no block to copy`);
  const n = ctx.config.nBlocks;
  const k = ctx.batch?.size ?? 1;
  const j = ctx.batch?.index ?? 0;
  const span = k * n;
  const first = where === 'top' ? blocks.length - span : Math.floor((blocks.length - span) / 2);
  // Appended stacks are added left to right; prepended ones right to left (the first ends up rightmost).
  const piece = ctx.position === 'append' ? j : k - 1 - j;
  const start = first + piece * n;
  const copies = cyclic(start, n, blocks.length).map((i, j) => copyBlock(blocks[i]!, deriveSeed(ctx.seed, j)));
  const s = new Stack(rack.dModel, copies);
  s.train(rack.training);
  return s;
}

/** Zeroes the attention output and FFN down projections (weights and biases) of every block. */
export function zeroOutputProjections(stack: Stack): void {
  for (const b of stack.blocks) {
    if (b.config.normPosition !== 'pre') {
      throw new ProgressiveConfigError(`identity insertion needs pre-norm blocks (x + f(norm(x))); this block is ${b.config.normPosition}-norm, where zero output projections still apply the norm. Use the 'ramp' operator instead`);
    }
    for (const lin of [b.attn.getModule('o'), b.ffn.down]) {
      if (!(lin instanceof Linear)) throw new ProgressiveConfigError(`identity insertion: block attention has no Linear output projection 'o'`);
      const zeros = new Map<string, Tensor>();
      for (const [n, t] of lin.ownParameters()) if (n === 'weight' || n === 'bias') zeros.set(n, E.zeros(t.shape, { dtype: t.dtype, backend: t.backend }));
      lin.loadStateDict(zeros, { strict: false });
      for (const t of zeros.values()) t.dispose();
    }
  }
}

function initStack(rack: Rack, ctx: GrowthContext, init: GrowthInit | 'identity'): Stack {
  switch (init) {
    case 'fresh': return freshStack(rack, ctx);
    case 'copy_top': return copiedStack(rack, ctx, 'top');
    case 'copy_middle': return copiedStack(rack, ctx, 'middle');
    case 'identity': {
      const s = freshStack(rack, ctx);
      zeroOutputProjections(s);
      return s;
    }
  }
}

/** A fresh, randomly initialised stack (seeded). Does not preserve the function. */
export const freshGrowth: GrowthOperator = {
  kind: 'fresh', preservesFunction: false, description: 'fresh random stack',
  makeStack: (rack, ctx) => freshStack(rack, ctx),
};

/** Progressive stacking: the new stack copies the top nBlocks blocks (cycling when the rack is shorter). */
export const copyTopGrowth: GrowthOperator = {
  kind: 'copy_top', preservesFunction: false, description: 'copy of the top blocks',
  makeStack: (rack, ctx) => copiedStack(rack, ctx, 'top'),
};

/** The new stack copies the nBlocks blocks in the middle of the rack. */
export const copyMiddleGrowth: GrowthOperator = {
  kind: 'copy_middle', preservesFunction: false, description: 'copy of the middle blocks',
  makeStack: (rack, ctx) => copiedStack(rack, ctx, 'middle'),
};

/** Identity insertion: `init` weights with zeroed output projections (pre-norm blocks only). */
export function identityGrowth(init: GrowthInit = 'fresh'): GrowthOperator {
  return {
    kind: 'identity', preservesFunction: true, description: `identity insertion (${init} init, zero output projections)`,
    makeStack: (rack, ctx) => {
      const s = initStack(rack, ctx, init);
      zeroOutputProjections(s);
      return s;
    },
  };
}

/** Masked ramp-in: the new stack is gated by g(t), 0 until t0, 1 from t1; growth must happen at t ≤ t0. */
export function rampGrowth(t0: number, t1: number, init: GrowthInit | 'identity' = 'fresh'): GrowthOperator {
  if (!(t0 >= 0 && t1 <= 1 && t0 <= t1)) throw new ProgressiveConfigError(`ramp-in interval [${t0}, ${t1}] must satisfy 0 ≤ t0 ≤ t1 ≤ 1`);
  return {
    kind: 'ramp', preservesFunction: true, description: `ramp-in over [${t0}, ${t1}] (${init} init)`,
    makeStack: (rack, ctx) => {
      const t = ctx.t ?? t0;
      if (t > t0) throw new ProgressiveConfigError(`ramp-in over [${t0}, ${t1}]: the stack is added at t = ${t}, after the ramp starts (grow at t ≤ t0 so the gate starts at 0)`);
      const r = RampedStack.wrap(initStack(rack, ctx, init), t0, t1);
      r.train(rack.training);
      r.setTime(t);
      return r;
    },
  };
}

/** The stacks before the growth step, the number it adds (k) and this stack's index in it (j). */
function stepOf(rack: Rack, ctx: GrowthContext, kind: GrowthKind): { stacks: readonly Stack[]; k: number; j: number } {
  const stacks = ctx.sourceStacks ?? rack.stacks.toArray();
  const k = ctx.batch?.size ?? 1;
  const problem = insideGrowthProblem(kind, stacks.length, stacks.length + k, ctx.position);
  if (problem) throw new ProgressiveConfigError(problem);
  return { stacks, k, j: ctx.batch?.index ?? 0 };
}

/** A new stack of copies of `src`'s blocks (effective weights; no adapter, no gate). */
function copyOfStack(rack: Rack, src: Stack, seed: number): Stack {
  const s = new Stack(rack.dModel, src.blocks.toArray().map((b, i) => copyBlock(b, deriveSeed(seed, i))));
  s.train(rack.training);
  return s;
}

function insideGrowthProblem(kind: GrowthKind, before: number, after: number, position: GrowthPosition): string | undefined {
  const k = after - before;
  if (position !== 'append') return `${kind} grows the rack from the inside and keeps the model's order of stacks; it needs direction 'append', found '${position}'`;
  if (k <= 0) return undefined;
  if (kind === 'block_expansion' && before % k !== 0) {
    return `block_expansion puts one new stack after every (N/P)-th of the N stacks, so the P stacks added must divide N: growing ${before} → ${after} adds ${k}, which does not divide ${before} (with ${before} stacks, add one of ${divisorsOf(before).join(', ')})`;
  }
  if (kind === 'depth_upscaling' && (k > before || (before - k) % 2 !== 0)) {
    return `depth_upscaling joins two copies of the ${before} stacks with m dropped on each side of the seam (${before} → 2·${before} − 2m), so it grows to ${before} … ${2 * before} stacks by an even number of drops: ${before} → ${after} needs m = (${before} − ${k}) / 2, not a whole number ≥ 0`;
  }
  return undefined;
}

/**
 * Rack positions (after the growth) of the `added` stacks that a growth step from `before` stacks
 * puts inside the rack: block_expansion one after every (before/added)-th, depth_upscaling before
 * the last m = (before − added)/2. Undefined for the operators that add at an end.
 */
export function insidePositions(kind: GrowthKind, before: number, added: number): number[] | undefined {
  const js = Array.from({ length: added }, (_, j) => j);
  if (kind === 'block_expansion') return js.map((j) => (j + 1) * (before / added) + j);
  if (kind === 'depth_upscaling') return js.map((j) => before - (before - added) / 2 + j);
  return undefined;
}

function divisorsOf(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}

/**
 * LLaMA Pro's block expansion: growing N stacks by P adds one stack after every (N/P)-th, a copy
 * of the stack before it with its output projections zeroed (pre-norm blocks: the identity).
 */
export const blockExpansionGrowth: GrowthOperator = {
  kind: 'block_expansion', preservesFunction: true, description: 'block expansion (LLaMA Pro: a zero-output copy after every (N/P)-th stack)',
  makeStack: (rack, ctx) => {
    const { stacks, k, j } = stepOf(rack, ctx, 'block_expansion');
    const group = stacks.length / k;
    const s = copyOfStack(rack, stacks[(j + 1) * group - 1]!, ctx.seed);
    zeroOutputProjections(s);
    return s;
  },
  // The j-th new stack follows source stack (j+1)·N/P − 1, after the j stacks added before it.
  place: (rack, ctx) => {
    const { stacks, k, j } = stepOf(rack, ctx, 'block_expansion');
    return insidePositions('block_expansion', stacks.length, k)![j]!;
  },
  problem: (before, after, position) => insideGrowthProblem('block_expansion', before, after, position),
};

/**
 * SOLAR's depth up-scaling: N stacks grown by k become A[0, N−m) ++ B[m, N) with m = (N − k)/2
 * and B a copy of A: the k added stacks copy stacks m … N−m−1 and go in before the last m.
 */
export const depthUpscalingGrowth: GrowthOperator = {
  kind: 'depth_upscaling', preservesFunction: false, description: 'depth up-scaling (SOLAR: the model joined with a copy of itself, m stacks dropped at the seam on each side)',
  makeStack: (rack, ctx) => {
    const { stacks, k, j } = stepOf(rack, ctx, 'depth_upscaling');
    const m = (stacks.length - k) / 2;
    return copyOfStack(rack, stacks[m + j]!, ctx.seed);
  },
  place: (rack, ctx) => {
    const { stacks, k, j } = stepOf(rack, ctx, 'depth_upscaling');
    return insidePositions('depth_upscaling', stacks.length, k)![j]!;
  },
  problem: (before, after, position) => insideGrowthProblem('depth_upscaling', before, after, position),
};

/** The operator a GrowthSpec names. */
export function growthOperator(spec: GrowthSpec | GrowthOperator): GrowthOperator {
  if ('makeStack' in spec) return spec;
  switch (spec.kind) {
    case 'fresh': return freshGrowth;
    case 'copy_top': return copyTopGrowth;
    case 'copy_middle': return copyMiddleGrowth;
    case 'identity': return identityGrowth(spec.init ?? 'fresh');
    case 'ramp': return rampGrowth(spec.t0, spec.t1, spec.init ?? 'fresh');
    case 'block_expansion': return blockExpansionGrowth;
    case 'depth_upscaling': return depthUpscalingGrowth;
    default:
      throw new ProgressiveConfigError(`unknown growth operator '${String((spec as { kind: unknown }).kind)}' (expected one of ${GROWTH_OPERATORS.join(', ')})`);
  }
}

/** Grows `rack` by one stack made by `op`; returns the same (now larger) rack. */
export function growRack(rack: Rack, op: GrowthOperator | GrowthSpec, ctx: GrowthContext): Rack {
  insertGrownStack(rack, op, ctx);
  return rack;
}

/** Makes one stack with `op`, puts it where the operator says (or at the `ctx.position` end) and returns it. */
export function insertGrownStack(rack: Rack, op: GrowthOperator | GrowthSpec, ctx: GrowthContext): Stack {
  const o = growthOperator(op);
  const stack = o.makeStack(rack, ctx);
  if (o.place) rack.insertStack(o.place(rack, ctx), stack);
  else if (ctx.position === 'append') rack.appendStack(stack);
  else rack.prependStack(stack);
  return stack;
}
