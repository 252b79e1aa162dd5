/**
 * The model plane of the TrainingMachine, driven by config: `model.progressive`.
 *
 * Importing this module registers the config extension `model.progressive` (see
 * `progressiveConfigSchema`); a phase overrides it like any other model key
 * (`schedule[i].overrides.model.progressive.freeze: frozen_trunk`). `ProgressivePlane` is the
 * hook set that makes the live model follow the schedule:
 *
 *   before the first step  the ProgressiveRackBuilder is made from the machine's model and the
 *                          first phase's settings, and the whole plan is validated (every phase's
 *                          n_stacks, freeze policy and trunk format): growing past target_stacks,
 *                          freezing everything, LoRA on a missing target, a quantized trunk that
 *                          should train without adapters → one ProgressiveConfigError listing all;
 *   onPhaseStart           growth operator / freeze policy / trunk format of the phase applied,
 *                          the rack grown to the phase's n_stacks (t = the phase's start), then
 *                          model events written to the metrics JSONL:
 *                          {kind: 'grow'|'freeze'|'adapters'|'quantize', step, t, description,
 *                           stacks: [{index, state}]};
 *                          then the phase's memory and compute (builder.report at the phase's
 *                          seq_len, optimizer and activation cache): {kind: 'resources', step, t,
 *                          phase, params, bytes, flops_per_token, per_stack} (resource-record.ts);
 *   onStepStart            builder.setTime(t) (ramp gates) and, after a structural change, the
 *                          optimizer groups from builder.parameterGroups() (new-stack, trunk,
 *                          stack-lora, progressive-lora, no-decay) via setParamGroups (state of
 *                          parameters that stay is kept);
 *   saveState/loadState    the builder's state (growth history); on resume the phases are replayed
 *                          (same growths at the same t), and the saved history is checked against
 *                          the rebuilt one (or replayed when the rebuilt rack is short).
 *
 * Optimizer groups: while the plane manages them (default; `builderGroups: false` keeps the
 * config's role groups), the config's optimizer.param_groups lr scales do not apply; use
 * model.progressive.group_lr_scale (applied to the group lr right before each update, so the
 * `lrs` of the step metrics show the unscaled values).
 *
 * Usage: a config with model.progressive needs nothing more — the TrainingMachine installs a
 * ProgressivePlane itself and validates its plan in its constructor.
 *   const machine = new TrainingMachine(config);
 *   const plane = ProgressivePlane.attach(machine);   // the installed plane (validated)
 *   machine.train();
 * With a model and a builder made in code: `new TrainingMachine(config, { model, hooks:
 * [progressiveHooks(builder, { stacksPerPhase })] })` (or ProgressiveTrainer.trainRack).
 */
import { z } from 'zod';
import { registerConfigExtension } from '../framework/config/schema.js';
import { LORA_TARGET_NAMES, quantizeTrunk, validateQuantFormat, type Stack } from '../nn/index.js';
import type { JsonValue, LoraTarget, WeightFormat } from '../framework/index.js';
import type { ParamGroupOptions } from '../optim/index.js';
import type { TrainingHooks, PhaseContext, StepContext } from './hooks.js';
import type { TrainingMachine } from './machine.js';
import type { Phase } from './schedule/phase.js';
import type { ResolvedPhase } from './config/resolve.js';
import {
  CachedTraining,
  ProgressiveConfigError,
  ProgressiveRackBuilder,
  type ActivationCacheState,
  parameterEntries,
  type BuilderState,
  type FreezePolicy,
  type GrowthEvent,
  type GrowthSpec,
  type GroupOptions,
  type LoraRankStrategy,
  type PlanStep,
  type ProgressiveLoraOptions,
  type ResourceReportOptions,
  type StackLoraOptions,
} from './progressive/index.js';
import { optimizerStateKindOf, optimizerStateKindOfPlane, resourceRecord, type ResourceRecord } from './progressive/resource-record.js';

// ---- config ---------------------------------------------------------------------------------------

const snake = (v: unknown) => (typeof v === 'string' ? v.replace(/-/g, '_') : v);
const posInt = z.number().int().min(1);
const posNumber = z.number().positive();
const loraTarget = z.enum(LORA_TARGET_NAMES as unknown as [LoraTarget, ...LoraTarget[]]);
const growthInit = z.preprocess(snake, z.enum(['fresh', 'copy_top', 'copy_middle']));

export const growthConfigSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { kind: snake(v) } : v && typeof v === 'object' && !Array.isArray(v) ? { ...(v as object), kind: snake((v as { kind?: unknown }).kind) } : v),
  z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('fresh') }),
    z.strictObject({ kind: z.literal('copy_top') }),
    z.strictObject({ kind: z.literal('copy_middle') }),
    z.strictObject({ kind: z.literal('identity'), init: growthInit.optional() }),
    z.strictObject({
      kind: z.literal('ramp'),
      /** Global t interval over which the new stack's gate rises 0 → 1 (grow at t ≤ t0). */
      t0: z.number().min(0).max(1),
      t1: z.number().min(0).max(1),
      init: z.preprocess(snake, z.enum(['fresh', 'copy_top', 'copy_middle', 'identity'])).optional(),
    }),
  ]),
);

const partState = z.enum(['train', 'frozen', 'adapters']);
export const freezeConfigSchema = z.union([
  z.preprocess(snake, z.enum(['none', 'frozen_trunk', 'frozen_suffix', 'adapters_only_trunk'])),
  z.strictObject({ new_stack: partState.optional(), trunk: partState.optional(), embedding: z.enum(['train', 'frozen']).optional(), head: z.enum(['train', 'frozen']).optional() }),
]);

export const stackLoraConfigSchema = z.strictObject({
  rank: posInt.optional(),
  alpha: posNumber.optional(),
  /** constant: rank/alpha for all; growing: rank + k·step (linear) or rank·factor^k (geometric); per_stack: ranks[k]. */
  strategy: z.preprocess(snake, z.enum(['constant', 'growing', 'per_stack'])).default('constant'),
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
});

export const progressiveLoraConfigSchema = z.strictObject({
  rank: posInt,
  alpha: posNumber,
  targets: z.array(loraTarget).min(1).default(['q', 'v']),
  dropout: z.number().min(0).lt(1).optional(),
});

export const TRUNK_FORMATS = ['fp32', 'nf4', 'int8', 'fp16', 'bf16'] as const;

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
  /** Storage of trunk weights; quantized formats need adapters to train the trunk. */
  trunk_format: z.string().default('fp32').superRefine((v, ctx) => {
    if (v === 'fp32') return;
    try {
      validateQuantFormat(v, 'model.progressive.trunk_format');
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }),
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
export const FIXED_PROGRESSIVE_KEYS = ['direction', 'target_stacks', 'stack_lora', 'progressive_lora', 'seed', 'group_lr_scale', 'activation_cache'] as const;

const dash = (s: string) => s.replace(/_/g, '-');

export function growthSpecOf(g: ProgressiveConfig['growth']): GrowthSpec {
  switch (g.kind) {
    case 'identity': return g.init ? { kind: 'identity', init: dash(g.init) as never } : { kind: 'identity' };
    case 'ramp': {
      if (!(g.t0 <= g.t1)) throw new ProgressiveConfigError(`model.progressive.growth: ramp interval [${g.t0}, ${g.t1}] must have t0 ≤ t1`);
      return g.init ? { kind: 'ramp', t0: g.t0, t1: g.t1, init: dash(g.init) as never } : { kind: 'ramp', t0: g.t0, t1: g.t1 };
    }
    default: return { kind: dash(g.kind) } as GrowthSpec;
  }
}

export function freezePolicyOf(f: ProgressiveConfig['freeze']): FreezePolicy | undefined {
  if (f === undefined) return undefined;
  if (typeof f === 'string') return dash(f) as FreezePolicy;
  const out: Record<string, string> = {};
  if (f.new_stack) out['newStack'] = f.new_stack;
  if (f.trunk) out['trunk'] = f.trunk;
  if (f.embedding) out['embedding'] = f.embedding;
  if (f.head) out['head'] = f.head;
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
    strategy = { kind: 'per-stack', ranks: l.ranks! };
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
function progressiveOf(resolved: ResolvedPhase): ProgressiveConfig | undefined {
  const raw = (resolved.model as Record<string, unknown> | undefined)?.['progressive'];
  return raw === undefined ? undefined : progressiveConfigSchema.parse(raw);
}

/** Whether any phase of a parsed config has a model.progressive section. */
export function usesProgressivePlane(parsed: { phases: readonly ResolvedPhase[] }): boolean {
  return parsed.phases.some((p) => (p.model as Record<string, unknown> | undefined)?.['progressive'] !== undefined);
}

// ---- stack states --------------------------------------------------------------------------------

export type StackStateName = 'trainable' | 'frozen' | 'adapted' | 'quantized';
export interface StackStateEntry {
  index: number;
  state: StackStateName | StackStateName[];
}

const isLora = (n: string) => /(^|\.)lora_[AB]$/.test(n);

/** trainable (base weights train) / adapted (trainable LoRA) / quantized / frozen, per rack position. */
export function stackStates(builder: ProgressiveRackBuilder): StackStateEntry[] {
  return builder.model.rack.stacks.toArray().map((s: Stack, index) => {
    const states: StackStateName[] = [];
    let base = false;
    let lora = false;
    for (const [n, t] of parameterEntries(s)) {
      if (!t.requiresGrad) continue;
      if (isLora(n)) lora = true;
      else base = true;
    }
    if (base) states.push('trainable');
    if (lora) states.push('adapted');
    if (builder.isQuantized(index)) states.push('quantized');
    if (states.length === 0) states.push('frozen');
    return { index, state: states.length === 1 ? states[0]! : states };
  });
}

function hasAdapters(s: Stack): boolean {
  return parameterEntries(s).some(([n]) => isLora(n));
}

// ---- the plane -----------------------------------------------------------------------------------

export interface ProgressivePlaneOptions {
  /** A ready builder over the machine's model (default: made from model.progressive). */
  builder?: ProgressiveRackBuilder;
  /** Settings used when the config has no model.progressive (built in code). */
  config?: unknown;
  /** Converts a trunk stack to a weight format (default: the model library's quantizeTrunk). */
  quantizeTrunk?: (stack: Stack, format: WeightFormat) => void;
  /** Set optimizer groups from builder.parameterGroups() (default true); false: the config's role groups. */
  builderGroups?: boolean;
  /** Hook name in checkpoints (default 'progressive'). */
  name?: string;
  /** Stacks of every phase when the config has no model section (a model passed as an object). */
  stacksPerPhase?: readonly number[];
}

export interface ModelEventRecord {
  kind: 'grow' | 'freeze' | 'adapters' | 'quantize';
  step: number;
  t: number;
  phase: string;
  description: string;
  stacks: StackStateEntry[];
}

export class ProgressivePlane implements TrainingHooks {
  readonly name: string;
  private builderOpt: ProgressiveRackBuilder | undefined;
  private b: ProgressiveRackBuilder | undefined;
  private readonly opts: ProgressivePlaneOptions;
  private groupsVersion = -1;
  private lrScale: Partial<Record<string, number>> = {};
  private lastStates: StackStateEntry[] | undefined;
  private lastAdapted = new Set<number>();
  /** Every event the plane reported (also while the metrics file is absent). */
  readonly events: ModelEventRecord[] = [];
  /** The `resources` record of every phase start (memory and compute; see progressive/resource-record.ts). */
  readonly resources: ResourceRecord[] = [];
  private validated = false;
  private cached: CachedTraining | undefined;

  constructor(opts: ProgressivePlaneOptions = {}) {
    this.opts = opts;
    this.name = opts.name ?? 'progressive';
    this.builderOpt = opts.builder;
  }

  /**
   * The machine's plane, validated now (before any step): the one a model.progressive config
   * installed (when `opts` is empty), else a new one added to the machine.
   */
  static attach(machine: TrainingMachine, opts: ProgressivePlaneOptions = {}): ProgressivePlane {
    const existing = machine.hookList.find((h): h is ProgressivePlane => h instanceof ProgressivePlane);
    if (existing && Object.keys(opts).length === 0) {
      existing.validate(machine);
      return existing;
    }
    if (existing) throw new Error('ProgressivePlane.attach: the machine already has a ProgressivePlane (installed for its model.progressive config); pass yours in options.hooks instead');
    const plane = new ProgressivePlane(opts);
    plane.validate(machine);
    machine.addHook(plane);
    return plane;
  }

  /** Stacks of a phase: its model.n_stacks, else stacksPerPhase, else `fallback`. */
  private stacksOf(p: ResolvedPhase, fallback: number): number {
    return p.model?.n_stacks ?? this.opts.stacksPerPhase?.[p.index] ?? fallback;
  }

  /** The activation cache of the frozen prefix (model.progressive.activation_cache), once the first phase started. */
  activationCache(): ActivationCacheState | undefined {
    return this.cached?.info();
  }

  /** Releases the activation cache (its memory and spill folder). */
  dispose(): void {
    this.cached?.dispose();
    this.cached = undefined;
  }

  /**
   * Time-as-depth: the index, in the final rack, of the stack being trained now (the newest one;
   * undefined before the builder exists).
   */
  trainingStack(): number | undefined {
    return this.b?.finalIndex();
  }

  /** The builder (made from the machine's model on first use). */
  get builder(): ProgressiveRackBuilder {
    if (!this.b) throw new Error('ProgressivePlane: no builder yet (attach the plane to a machine, or wait for the first step)');
    return this.b;
  }

  /** The phase's settings; undefined when neither the config nor the options give any (a builder passed in code). */
  private settingsOrNone(resolved: ResolvedPhase): ProgressiveConfig | undefined {
    const fromConfig = progressiveOf(resolved);
    if (fromConfig) return fromConfig;
    if (this.opts.config !== undefined) return progressiveConfigSchema.parse(this.opts.config);
    return this.builderOpt ? undefined : progressiveConfigSchema.parse({});
  }

  private settingsOf(resolved: ResolvedPhase): ProgressiveConfig {
    return this.settingsOrNone(resolved) ?? progressiveConfigSchema.parse({});
  }

  private makeBuilder(machine: TrainingMachine): ProgressiveRackBuilder {
    if (this.b) return this.b;
    if (this.builderOpt) {
      if (this.builderOpt.model !== machine.model.model) throw new ProgressiveConfigError("ProgressivePlane: the builder given is over another model than the machine's");
      this.b = this.builderOpt;
      return this.b;
    }
    const phases = machine.parsed.phases;
    const first = this.settingsOf(phases[0]!);
    const maxStacks = Math.max(...phases.map((p) => this.stacksOf(p, machine.model.model.rack.numStacks)));
    const quant = this.opts.quantizeTrunk ?? ((s: Stack, f: WeightFormat) => { quantizeTrunk(s, f); });
    const o: ConstructorParameters<typeof ProgressiveRackBuilder>[1] = {
      direction: first.direction,
      targetStacks: first.target_stacks ?? maxStacks,
      growth: growthSpecOf(first.growth),
      trunkWeightFormat: first.trunk_format as WeightFormat,
      quantizeTrunk: quant,
      seed: first.seed ?? machine.seed,
      t: machine.controller.tOf(0),
    };
    const freeze = freezePolicyOf(first.freeze);
    if (freeze !== undefined) o.freeze = freeze;
    if (first.stack_lora) o.stackLora = stackLoraOf(first.stack_lora);
    if (first.progressive_lora) o.progressiveLora = progressiveLoraOf(first.progressive_lora);
    this.lrScale = {};
    for (const [k, v] of Object.entries(first.group_lr_scale ?? {})) if (v !== undefined) this.lrScale[dash(k)] = v;
    this.b = new ProgressiveRackBuilder(machine.model.model, o);
    return this.b;
  }

  /** The plan: every phase's stacks, freeze policy and trunk format. */
  plan(machine: TrainingMachine): PlanStep[] {
    const builder = this.makeBuilder(machine);
    let freeze: FreezePolicy = builder.freezePolicy;
    let format: WeightFormat = builder.trunkWeightFormat;
    return machine.parsed.phases.map((p) => {
      const s = this.settingsOrNone(p);
      if (s) {
        freeze = freezePolicyOf(s.freeze) ?? freeze;
        format = s.trunk_format as WeightFormat;
      }
      return { name: p.name, stacks: this.stacksOf(p, builder.numStacks), freeze, trunkWeightFormat: format };
    });
  }

  /**
   * Checks the whole schedule before training (throws ProgressiveConfigError listing every
   * problem): growth within target_stacks and never shrinking, every phase's freeze policy and
   * trunk format, LoRA targets, fixed keys unchanged between phases, ramp intervals reachable.
   */
  validate(machine: TrainingMachine): void {
    if (this.validated) return;
    const problems: string[] = [];
    let builder: ProgressiveRackBuilder;
    try {
      builder = this.makeBuilder(machine);
    } catch (e) {
      if (e instanceof ProgressiveConfigError) throw new ProgressiveConfigError(e.problems.map((m) => `model.progressive: ${m}`));
      throw e;
    }
    const phases = machine.parsed.phases;
    const first = this.settingsOf(phases[0]!);
    let formatLocked: string | undefined;
    phases.forEach((p, i) => {
      const s = this.settingsOf(p);
      const where = `phase #${i} '${p.name}'`;
      for (const k of FIXED_PROGRESSIVE_KEYS) {
        if (JSON.stringify(s[k]) !== JSON.stringify(first[k])) {
          problems.push(`${where}: model.progressive.${k} differs from the first phase's (${JSON.stringify(s[k])} vs ${JSON.stringify(first[k])}); it is fixed for the whole run`);
        }
      }
      try {
        const g = growthSpecOf(s.growth);
        if (g.kind === 'ramp') {
          const grows = i > 0 && this.stacksOf(p, 0) > this.stacksOf(phases[i - 1]!, 0);
          if (grows && p.start_t > g.t0) problems.push(`${where}: grows with a ramp over [${g.t0}, ${g.t1}] but starts at t = ${p.start_t}, after the ramp starts (grow at t ≤ t0)`);
        }
      } catch (e) {
        problems.push(`${where}: ${(e as Error).message}`);
      }
      if (formatLocked !== undefined && s.trunk_format !== formatLocked) {
        problems.push(`${where}: trunk_format '${s.trunk_format}' after a phase stored the trunk as '${formatLocked}' (quantizing is one-way)`);
      }
      if (s.trunk_format !== 'fp32' && this.stacksOf(p, 1) > 1) formatLocked = s.trunk_format;
      const mask = p.data?.mask;
      if (mask?.kind === 'depth' && mask.levels.length !== builder.targetStacks) {
        problems.push(`${where}: data.mask (time-as-depth) has ${mask.levels.length} noise levels, but the rack grows to target_stacks = ${builder.targetStacks}: give one level per stack of the final rack`);
      }
    });
    try {
      builder.validatePlan(this.plan(machine));
    } catch (e) {
      if (!(e instanceof ProgressiveConfigError)) throw e;
      problems.push(...e.problems);
    }
    if (problems.length > 0) throw new ProgressiveConfigError(problems.map((m) => `model.progressive: ${m}`));
    this.validated = true;
  }

  // ---- hooks -----------------------------------------------------------------------------------

  onPhaseStart(phase: Phase, machine: TrainingMachine, ctx: PhaseContext): void {
    if (!this.validated) this.validate(machine);
    const builder = this.builder;
    const s = this.settingsOrNone(ctx.resolved);
    const oldFreeze = JSON.stringify(builder.freezePolicy);
    const oldFormat = builder.trunkWeightFormat;
    const t = ctx.t;
    if (s) {
      builder.setGrowth(growthSpecOf(s.growth));
      const freeze = freezePolicyOf(s.freeze);
      if (freeze !== undefined && JSON.stringify(freeze) !== oldFreeze) builder.setFreezePolicy(freeze);
      if (s.trunk_format !== oldFormat) builder.setTrunkWeightFormat(s.trunk_format as WeightFormat);
    }
    const cacheSettings = s?.activation_cache;
    if (cacheSettings && !this.cached) {
      this.cached = new CachedTraining(machine.model.model, cacheSettings);
      this.cached.install(machine.model);
    }
    const target = this.stacksOf(ctx.resolved, builder.numStacks);
    const events: GrowthEvent[] = builder.growTo(target, { t });
    builder.setTime(t);
    this.groupsVersion = -1;
    if (ctx.replaying) {
      this.lastStates = stackStates(builder);
      this.lastAdapted = this.adaptedSet();
      return;
    }
    this.report(machine, phase, ctx.step, t, events, oldFreeze !== JSON.stringify(builder.freezePolicy), oldFormat !== builder.trunkWeightFormat);
  }

  /** What the activation cache did during the phase (its sizes are only meaningful once steps ran). */
  onPhaseEnd(phase: Phase, machine: TrainingMachine, ctx: PhaseContext): void {
    if (!this.cached || ctx.replaying) return;
    const c = this.cached.info();
    machine.logRecord({
      kind: 'activation_cache', step: ctx.step, t: ctx.t, phase: phase.name, prefix_stacks: c.prefixStacks,
      hits: c.hits, misses: c.misses, entries: c.entries, memory_bytes: c.memoryBytes, disk_bytes: c.diskBytes,
      spills: c.spills, evictions: c.evictions, invalidations: c.invalidations,
    });
  }

  private adaptedSet(): Set<number> {
    const out = new Set<number>();
    this.builder.model.rack.stacks.toArray().forEach((s, i) => { if (hasAdapters(s)) out.add(i); });
    return out;
  }

  private emit(machine: TrainingMachine, rec: ModelEventRecord): void {
    this.events.push(rec);
    machine.logRecord({ ...rec } as Record<string, unknown>);
  }

  /** Writes the model events of a phase start. */
  private report(machine: TrainingMachine, phase: Phase, step: number, t: number, grown: GrowthEvent[], freezeChanged: boolean, formatChanged: boolean): void {
    const builder = this.builder;
    const states = stackStates(builder);
    const base = { step, t, phase: phase.name, stacks: states };
    const first = this.lastStates === undefined;
    const before = this.events.length;
    for (const e of grown) {
      const lora = e.stackLora ? `, stack LoRA rank ${e.stackLora.rank} α ${e.stackLora.alpha}` : '';
      this.emit(machine, { kind: 'grow', ...base, description: `${builder.direction} stack ${e.finalIndex} at position ${e.position} (${e.description}${lora}) → ${e.stacks} stacks` });
    }
    const adapted = this.adaptedSet();
    const newAdapters = [...adapted].filter((i) => !this.lastAdapted.has(i) || grown.length > 0);
    if ((first && adapted.size > 0) || (!first && newAdapters.length > 0 && (grown.length > 0 || adapted.size !== this.lastAdapted.size))) {
      const parts: string[] = [];
      if (builder.stackLora) parts.push(`stack LoRA on stack ${builder.newStackIndex} (${builder.stackLora.targets.join(',')})`);
      if (builder.progressiveLora && builder.numStacks > 1) parts.push(`progressive LoRA rank ${builder.progressiveLora.rank} on trunk stacks ${builder.trunkIndices.join(',')} (${builder.progressiveLora.targets.join(',')})`);
      this.emit(machine, { kind: 'adapters', ...base, description: parts.join('; ') || `adapters on stacks ${[...adapted].join(',')}` });
    }
    const quantized = states.filter((e) => [e.state].flat().includes('quantized')).map((e) => e.index);
    const prevQuant = (this.lastStates ?? []).filter((e) => [e.state].flat().includes('quantized')).length;
    if (quantized.length !== prevQuant || (formatChanged && quantized.length > 0)) {
      this.emit(machine, { kind: 'quantize', ...base, description: `trunk stacks ${quantized.join(',')} stored as ${builder.trunkWeightFormat}` });
    }
    const key = (list: StackStateEntry[]) => list.map((e) => `${e.index}:${[e.state].flat().includes('trainable') ? 'T' : 'F'}`).join(' ');
    const frozenNow = states.filter((e) => ![e.state].flat().includes('trainable')).map((e) => e.index);
    const prevKey = this.lastStates ? key(this.lastStates.filter((e) => e.index < states.length)) : '';
    if (freezeChanged || (first && frozenNow.length > 0) || (!first && key(states.slice(0, this.lastStates!.length)) !== prevKey) || (grown.length > 0 && frozenNow.length > 0)) {
      this.emit(machine, { kind: 'freeze', ...base, description: `freeze policy ${JSON.stringify(builder.freezePolicy)}: frozen base weights in stacks [${frozenNow.join(',')}], training stack ${builder.newStackIndex}` });
    }
    if (this.events.length === before) {
      // No change to report: still a snapshot of the stacks at the phase start (the report's timeline).
      const rec = { kind: 'stacks', ...base, description: `phase '${phase.name}': ${states.length} stack(s)` };
      machine.logRecord(rec);
    }
    this.writeResources(machine, phase, step, t);
    this.lastStates = states;
    this.lastAdapted = adapted;
  }

  /**
   * The phase's memory and compute (builder.report at the phase's seq_len, with the optimizer the
   * phase trains with and the activation cache, if any) as a `resources` record in the metrics
   * JSONL; also kept in `resources`.
   */
  private writeResources(machine: TrainingMachine, phase: Phase, step: number, t: number): void {
    // Hooks run before the machine applies the phase's optimizer plane: when the config governs
    // the optimizer, the phase's plane says what will train; otherwise the machine's stays.
    const index = machine.schedule.phases.indexOf(phase);
    const resolved = index >= 0 ? machine.parsed.phases[index] : undefined;
    const optimizer = machine.parsed.given.optimizer && resolved ? optimizerStateKindOfPlane(resolved.optimizer) : optimizerStateKindOf(machine.optimizer.optimizer);
    const seqLen = machine.data.getBatchSpec().seq_len;
    const cache = this.activationCache();
    const opts: ResourceReportOptions = { seqLen, optimizer: optimizer.kind };
    if (cache) {
      opts.cachedPrefixStacks = cache.prefixStacks;
      opts.cachedActivationBytes = { memory: cache.memoryBytes, disk: cache.diskBytes };
    }
    const rec = resourceRecord(this.builder.report(opts), { step, t, phase: phase.name, seqLen, optimizer, cachedPrefixStacks: cache?.prefixStacks ?? 0 });
    this.resources.push(rec);
    machine.logRecord({ ...rec });
  }

  onStepStart(machine: TrainingMachine, ctx: StepContext): void {
    const builder = this.builder;
    builder.setTime(ctx.t);
    if (this.opts.builderGroups === false || this.groupsVersion === builder.structureVersion) return;
    this.groupsVersion = builder.structureVersion;
    const groups = this.parameterGroups();
    machine.optimizer.optimizer.setParamGroups(groups, { resetState: false });
  }

  /** The builder's groups, with the config's lr scales folded in as group lr (machine sets lr each step). */
  parameterGroups(opts: GroupOptions = {}): ParamGroupOptions[] {
    return this.builder.parameterGroups(opts);
  }

  /** lr multiplier of a builder group (model.progressive.group_lr_scale). */
  lrScaleOf(group: string): number {
    return this.lrScale[group] ?? 1;
  }

  beforeUpdate(machine: TrainingMachine): void {
    if (Object.keys(this.lrScale).length === 0) return;
    for (const g of machine.optimizer.optimizer.groups) g.lr *= this.lrScaleOf(g.name);
  }

  saveState(): JsonValue {
    return this.builder.getState() as unknown as JsonValue;
  }

  loadState(state: JsonValue): void {
    const saved = state as unknown as BuilderState;
    const builder = this.builder;
    if (saved.history.length > builder.history.length) builder.replay(saved);
    const a = saved.history.map((e) => [e.stacks, e.operator, e.t, e.finalIndex]);
    const b = builder.history.map((e) => [e.stacks, e.operator, e.t, e.finalIndex]);
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      throw new ProgressiveConfigError(`resume: the rack rebuilt by replaying the phases (${JSON.stringify(b)}) differs from the checkpoint's growth history (${JSON.stringify(a)})`);
    }
    this.groupsVersion = -1;
  }
}

/** The hook set of a builder (the builder's model must be the machine's). */
export function progressiveHooks(builder?: ProgressiveRackBuilder, opts: Omit<ProgressivePlaneOptions, 'builder'> = {}): ProgressivePlane {
  return new ProgressivePlane(builder ? { ...opts, builder } : opts);
}
