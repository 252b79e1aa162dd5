/**
 * ProgressiveRackBuilder: grows a model's rack from its first stack(s) to `targetStacks`, either
 * left→right (append: capacity growth) or right→left (prepend: the suffix and head are frozen as
 * a semantic anchor, the new leftmost stack sees the highest noise), applying a growth operator,
 * the dual LoRA scheme and a freeze policy at every growth. The live model is evolved in place:
 * trained weights always carry over.
 *
 * The new stacks are every stack the latest growth step added (a phase growing 2 → 4 adds two,
 * and both train as new stacks; before any growth, all of the model's stacks are new); the trunk
 * is every other stack. So no freshly initialised stack is ever frozen before it trained.
 *
 * Everything that can be checked before training is checked in the constructor and in
 * `validatePlan` (growing past targetStacks, freezing everything, LoRA on a missing target, a
 * quantized trunk that should train without adapters).
 */
import type { Tensor } from '../../engine/index.js';
import { ClassificationHead, TokenHead, deriveSeed, isLoraParamName, type Model, type Stack, type StackConfig } from '../../nn/index.js';
import { QUANTIZED_WEIGHT_FORMATS, WEIGHT_FORMATS, type RackSpec, type WeightFormat } from '../../framework/index.js';
import type { ParamGroupOptions } from '../../optim/index.js';
import type { BuildDirection } from '../objectives/noise.js';
import { ProgressiveConfigError } from './errors.js';
import { growthOperator, insertGrownStack, type GrowthOperator, type GrowthSpec } from './operators.js';
import { RampedStack } from './ramp.js';
import { applyFreezePlan, defaultFreezePolicy, resolveFreezePlan, withHeadMode, type FreezePlan, type FreezePolicy } from './freeze.js';
import type { HeadMode } from './config.js';
import { attachAdapters, checkLoraTargets, checkRankStrategy, loraRankFor, type ProgressiveLoraOptions, type StackLoraOptions } from './lora.js';
import { parameterRoles, type AdapterKind, type ParameterRole } from './roles.js';
import { parameterGroupsOf, type GroupOptions } from './groups.js';
import { resourceReport, type ResourceReport, type ResourceReportOptions } from './report.js';

export interface ProgressiveRackBuilderOptions {
  /** 'append' (left→right, default) or 'prepend' (right→left). */
  direction?: BuildDirection;
  /** Number of stacks the rack grows to. */
  targetStacks: number;
  /** Shape of each new stack (default: the model's edge stack: last for append, first for prepend). */
  stack?: StackConfig;
  /** Growth operator (default fresh random init). */
  growth?: GrowthSpec | GrowthOperator;
  /** Freeze policy (default: append 'none', prepend 'frozen_suffix'). */
  freeze?: FreezePolicy;
  /** LoRA on every new stack. */
  stackLora?: StackLoraOptions;
  /** LoRA on the trunk whenever a stack is added. */
  progressiveLora?: ProgressiveLoraOptions;
  /** How the head trains over the freeze policy's head state (model.progressive.head); default: as the policy says. */
  head?: HeadMode;
  /** Rank and alpha of the head's adapter (required with head: 'lora'). */
  headLora?: { rank: number; alpha: number };
  /** Storage format of trunk weights (default fp32). Quantized formats need `quantizeTrunk`. */
  trunkWeightFormat?: WeightFormat;
  /** Converts a trunk stack to `format` (supplied by the model library once it stores quantized weights). */
  quantizeTrunk?: (stack: Stack, format: WeightFormat) => void;
  /** Seed of every new stack and adapter (default 0). */
  seed?: number;
  /** Global time at construction (ramp gates), default 0. */
  t?: number;
}

export interface GrowOptions {
  /** Global time of the growth (needed by ramp-in; default: the builder's current time). */
  t?: number;
  /** Operator for this growth only. */
  growth?: GrowthSpec | GrowthOperator;
}

export interface GrowthEvent {
  /** Stacks in the rack after the growth. */
  stacks: number;
  /** Position of the new stack in the rack after growth. */
  position: number;
  /** Its index in the final rack. */
  finalIndex: number;
  t: number;
  operator: string;
  description: string;
  preservesFunction: boolean;
  /** Put inside the rack by its operator (block_expansion, depth_upscaling), not at the `direction` end. */
  inserted?: boolean;
  stackLora?: { rank: number; alpha: number };
  /**
   * The growth step that added the stack (0, 1, …): stacks added together (one `growTo` or phase
   * growing by several) share it and train together as the new stacks. Absent in old states:
   * every event its own step.
   */
  batch?: number;
}

/** One step of a planned schedule, as the model plane of a phase describes it. */
export interface PlanStep {
  /** Phase name (for messages). */
  name?: string;
  /** Stacks the rack has during the phase. */
  stacks: number;
  freeze?: FreezePolicy;
  trunkWeightFormat?: WeightFormat;
}

/**
 * Serialisable builder state. With the model a checkpoint's manifest describes (the grown rack,
 * its adapters and storage) it restores the builder exactly (`ProgressiveRackBuilder.restore`);
 * with a freshly built model `replay` re-runs the growths.
 */
export interface BuilderState {
  direction: BuildDirection;
  targetStacks: number;
  seed: number;
  history: GrowthEvent[];
  /** Global time when saved (ramp gates); absent in old states. */
  t?: number;
  /** The freeze policy and the trunk storage format when saved; absent in old states. */
  freeze?: FreezePolicy;
  trunkFormat?: WeightFormat;
  /** Final-rack indices of the stacks stored in the trunk format; absent in old states. */
  quantized?: number[];
  /** Parameter names of the progressive adapters' A matrices (every other adapter is a stack LoRA); absent in old states. */
  progressiveAdapters?: string[];
}

export class ProgressiveRackBuilder {
  readonly model: Model;
  readonly direction: BuildDirection;
  readonly targetStacks: number;
  readonly stackConfig: StackConfig;
  readonly seed: number;
  readonly stackLora: StackLoraOptions | null;
  readonly progressiveLora: ProgressiveLoraOptions | null;
  readonly headMode: HeadMode | undefined;
  readonly headLora: { rank: number; alpha: number } | null;
  readonly history: GrowthEvent[] = [];
  private growth: GrowthOperator;
  private freeze: FreezePolicy;
  private trunkFormat: WeightFormat;
  private readonly quantizeTrunk: ProgressiveRackBuilderOptions['quantizeTrunk'];
  private readonly quantized = new WeakSet<Stack>();
  /** Adapter kind by its A tensor (which stays the same when a layer is quantized). */
  private readonly adapterKinds = new WeakMap<Tensor, AdapterKind>();
  /** The stack added last (time-as-depth trains its noise level). */
  private newest: Stack;
  /** Every stack the latest growth step added (the model's own stacks before any growth): they train as new stacks. */
  private fresh: Set<Stack>;
  private growthSteps = 0;
  private time: number;
  private version = 0;

  /**
   * `restored`: the state of a builder whose growths `model` already holds (a model built from a
   * checkpoint's manifest): nothing is attached, quantized or frozen, the builder only takes up
   * its bookkeeping (see `restore`).
   */
  constructor(model: Model, opts: ProgressiveRackBuilderOptions, restored?: BuilderState) {
    this.model = model;
    this.direction = opts.direction ?? 'append';
    if (this.direction !== 'append' && this.direction !== 'prepend') throw new ProgressiveConfigError(`direction must be 'append' (left→right) or 'prepend' (right→left), found '${String(this.direction)}'`);
    const n = model.rack.numStacks;
    if (n < 1) throw new ProgressiveConfigError('the model must start with at least one stack');
    if (!Number.isInteger(opts.targetStacks) || opts.targetStacks < 1) throw new ProgressiveConfigError(`target_stacks must be a positive integer, found ${String(opts.targetStacks)}`);
    if (opts.targetStacks < n) throw new ProgressiveConfigError(`target_stacks ${opts.targetStacks} is smaller than the ${n} stacks the model already has`);
    this.targetStacks = opts.targetStacks;
    const edge = this.direction === 'append' ? model.rack.stacks.at(-1) : model.rack.stacks.at(0);
    this.stackConfig = structuredClone(opts.stack ?? { nBlocks: edge.length, block: edge.blocks.at(0).config });
    if (!Number.isInteger(this.stackConfig.nBlocks) || this.stackConfig.nBlocks < 1) throw new ProgressiveConfigError(`stack.nBlocks must be a positive integer, found ${this.stackConfig.nBlocks}`);
    this.seed = opts.seed ?? 0;
    this.growth = growthOperator(opts.growth ?? { kind: 'fresh' });
    this.freeze = opts.freeze ?? defaultFreezePolicy(this.direction);
    this.stackLora = opts.stackLora ? structuredClone(opts.stackLora) : null;
    this.progressiveLora = opts.progressiveLora ? structuredClone(opts.progressiveLora) : null;
    this.headMode = opts.head;
    this.headLora = opts.headLora ? { ...opts.headLora } : null;
    this.trunkFormat = opts.trunkWeightFormat ?? 'fp32';
    this.quantizeTrunk = opts.quantizeTrunk;
    this.time = opts.t ?? 0;
    this.newest = edge;
    this.fresh = new Set(model.rack.stacks);
    this.checkOptions();
    if (restored) {
      this.takeUp(restored);
      return;
    }
    this.checkPolicy(this.freeze, this.trunkFormat, 'freeze');

    // Phase 1: every stack of the model is new (there is no trunk yet); each gets its stack LoRA.
    if (this.stackLora) model.rack.stacks.toArray().forEach((s, i) => this.attachStackLora(s, this.finalIndex(i)));
    if (this.headMode === 'lora') this.attachHeadLora();
    this.quantizeTrunkStacks();
    this.applyFreeze();
    this.setTime(this.time);
    model.namedParameters();
  }

  // ---- validation -----------------------------------------------------------------------------

  private checkOptions(): void {
    const blockConfigs = [this.stackConfig.block, ...this.model.rack.allBlocks().map((b) => b.config)];
    if (this.stackLora) {
      checkRankStrategy(this.stackLora.strategy, this.targetStacks);
      for (const c of blockConfigs) checkLoraTargets(this.stackLora.targets, c, 'stack_lora');
    }
    if (this.progressiveLora) {
      const p = this.progressiveLora;
      if (!Number.isInteger(p.rank) || p.rank < 1) throw new ProgressiveConfigError(`progressive_lora.rank must be a positive integer, found ${p.rank}`);
      if (!(p.alpha > 0)) throw new ProgressiveConfigError(`progressive_lora.alpha must be a positive number, found ${p.alpha}`);
      for (const c of blockConfigs) checkLoraTargets(p.targets, c, 'progressive_lora');
    }
    if (this.headMode !== undefined && !['train', 'lora', 'frozen'].includes(this.headMode)) throw new ProgressiveConfigError(`head must be 'train', 'lora' or 'frozen', found '${String(this.headMode)}'`);
    if (this.headMode === 'lora') {
      const l = this.headLora;
      if (!l) throw new ProgressiveConfigError('head: lora needs a rank and an alpha (headLora)');
      if (!Number.isInteger(l.rank) || l.rank < 1) throw new ProgressiveConfigError(`head_lora.rank must be a positive integer, found ${l.rank}`);
      if (!(l.alpha > 0)) throw new ProgressiveConfigError(`head_lora.alpha must be a positive number, found ${l.alpha}`);
      if (!(this.model.head instanceof TokenHead) && !(this.model.head instanceof ClassificationHead)) throw new ProgressiveConfigError(`head: lora needs a token head (decoder) or a classification head, found a ${this.model.head.typeName}`);
    } else if (this.headLora) {
      throw new ProgressiveConfigError(`head_lora is set, but head is ${this.headMode === undefined ? 'not set' : `'${this.headMode}'`}; the head adapter exists only with head: lora`);
    }
    if (!(WEIGHT_FORMATS as readonly string[]).includes(this.trunkFormat)) {
      throw new ProgressiveConfigError(`trunk_format must be one of ${WEIGHT_FORMATS.join(', ')}, found '${String(this.trunkFormat)}'`);
    }
  }

  /**
   * The part states of a policy. A named policy freezes the embedding (left→right) or the head
   * (right→left) together with the trunk, so while there is no trunk yet (before the first
   * growth) both train; explicit part states apply as given.
   */
  private planOf(policy: FreezePolicy, hasTrunk = this.hasTrunk): FreezePlan {
    const plan = resolveFreezePlan(policy, this.direction, this.stackLora?.trainBase ?? true);
    if (typeof policy === 'string' && !hasTrunk) return withHeadMode({ ...plan, embedding: 'train', head: 'train' }, this.headMode);
    return withHeadMode(plan, this.headMode);
  }

  /** Every problem of a freeze policy + trunk format, as messages (empty = fine). */
  private policyProblems(policy: FreezePolicy, format: WeightFormat, where: string, hasTrunk: boolean): string[] {
    let plan: FreezePlan;
    try {
      plan = this.planOf(policy, hasTrunk);
    } catch (e) {
      return [`${where}: ${(e as ProgressiveConfigError).problems?.[0] ?? (e as Error).message}`];
    }
    const out: string[] = [];
    const trunkAdapters = !!this.progressiveLora || !!this.stackLora;
    const parts: string[] = [];
    if (plan.new_stack === 'train' || (plan.new_stack === 'adapters' && this.stackLora)) parts.push('new stack');
    if (hasTrunk && (plan.trunk === 'train' || (plan.trunk === 'adapters' && trunkAdapters))) parts.push('trunk');
    if (plan.embedding === 'train') parts.push('embedding');
    if (plan.head === 'train' || plan.head === 'adapters') parts.push('head');
    if (parts.length === 0) out.push(`${where}: the freeze policy ${JSON.stringify(policy)} freezes everything (new stack ${plan.new_stack}, trunk ${plan.trunk}, embedding ${plan.embedding}, head ${plan.head}); nothing would train`);
    if (plan.new_stack === 'adapters' && !this.stackLora) out.push(`${where}: the new stack trains only adapters, but no stack_lora is configured`);
    if (plan.trunk === 'adapters' && !trunkAdapters) out.push(`${where}: freeze policy 'adapters_only_trunk' needs adapters on the trunk (configure progressive_lora or stack_lora)`);
    if (plan.trunk === 'frozen' && this.progressiveLora) out.push(`${where}: progressive_lora puts adapters on a trunk that the freeze policy freezes, so they would never train; use 'adapters_only_trunk' or drop progressive_lora`);
    // Every trunk format but fp32 is frozen storage (the model library's QuantizedLinear pins its
    // weights frozen, fp16 and bf16 included): such a trunk trains only through adapters.
    if (format !== 'fp32') {
      const kind = (QUANTIZED_WEIGHT_FORMATS as readonly string[]).includes(format) ? 'quantized ' : '';
      if (plan.trunk === 'train') out.push(`${where}: a ${format} trunk cannot be trained directly (its weights are stored as frozen ${format} and take no gradient updates); freeze it or train it through adapters ('adapters_only_trunk')`);
      if (plan.trunk === 'adapters' && !trunkAdapters) out.push(`${where}: a frozen ${kind}(${format}) trunk is asked to train without adapters; configure progressive_lora (or stack_lora)`);
    }
    if (format !== 'fp32' && !this.quantizeTrunk && out.length === 0) {
      out.push(`${where}: trunk weight format '${format}' is not implemented by the model library (no quantizeTrunk hook given); use 'fp32'`);
    }
    return out;
  }

  private checkPolicy(policy: FreezePolicy, format: WeightFormat, where: string): void {
    const problems = this.policyProblems(policy, format, where, this.hasTrunk || this.targetStacks > this.numStacks);
    if (problems.length) throw new ProgressiveConfigError(problems);
  }

  /**
   * Checks a planned schedule before training: stack counts within [current, targetStacks] and
   * never decreasing, and every phase's freeze policy and trunk format. Throws one error listing
   * every problem.
   */
  validatePlan(plan: readonly PlanStep[]): void {
    const problems: string[] = [];
    let prev = this.numStacks;
    // After a growth the stacks before it are the trunk; a phase that does not grow keeps the new stacks it had.
    let hasTrunk = this.hasTrunk;
    plan.forEach((step, i) => {
      const where = `phase #${i}${step.name ? ` '${step.name}'` : ''}`;
      if (!Number.isInteger(step.stacks) || step.stacks < 1) problems.push(`${where}: stacks must be a positive integer, found ${String(step.stacks)}`);
      else {
        if (step.stacks > this.targetStacks) problems.push(`${where}: grows the rack to ${step.stacks} stacks, past the configured target_stacks ${this.targetStacks}`);
        if (step.stacks < prev) problems.push(`${where}: has ${step.stacks} stacks, fewer than the ${prev} before it (a rack never shrinks)`);
        if (step.stacks > prev) hasTrunk = true;
        prev = Math.max(prev, step.stacks);
      }
      problems.push(...this.policyProblems(step.freeze ?? this.freeze, step.trunkWeightFormat ?? this.trunkFormat, where, hasTrunk));
    });
    if (problems.length) throw new ProgressiveConfigError(problems);
  }

  // ---- state ----------------------------------------------------------------------------------

  get numStacks(): number {
    return this.model.rack.numStacks;
  }

  /** The most recently added stack (the edge one: rightmost for append, leftmost for prepend). */
  get newStack(): Stack {
    return this.newest;
  }

  get newStackIndex(): number {
    return this.model.rack.stacks.toArray().indexOf(this.newest);
  }

  /** Every stack the latest growth step added (a phase growing by several trains them all as new stacks). */
  get newStacks(): Stack[] {
    return this.model.rack.stacks.toArray().filter((s) => this.fresh.has(s));
  }

  /** Rack positions of the new stacks. */
  get newStackIndices(): number[] {
    return this.model.rack.stacks.toArray().flatMap((s, i) => (this.fresh.has(s) ? [i] : []));
  }

  /** Rack positions of the trunk (every stack but the new ones). */
  get trunkIndices(): number[] {
    return this.model.rack.stacks.toArray().flatMap((s, i) => (this.fresh.has(s) ? [] : [i]));
  }

  /** True once a growth made the earlier stacks a trunk. */
  get hasTrunk(): boolean {
    return this.numStacks > this.fresh.size;
  }

  /** Index in the final rack of the stack at `position` now (time-as-depth noise lookups). */
  finalIndex(position = this.newStackIndex): number {
    return this.direction === 'append' ? position : this.targetStacks - this.numStacks + position;
  }

  /** Increases whenever the structure, the freezing or the adapters change. */
  get structureVersion(): number {
    return this.version;
  }

  get freezePolicy(): FreezePolicy {
    return this.freeze;
  }

  get currentTime(): number {
    return this.time;
  }

  // ---- evolution ------------------------------------------------------------------------------

  /** Adds one stack (append or prepend), then applies the dual LoRA scheme and the freeze policy. */
  grow(opts: GrowOptions = {}): GrowthEvent {
    return this.growStep(1, opts)[0]!;
  }

  /**
   * Grows until the rack has `stacks` stacks, in one growth step: the stacks it adds are the new
   * stacks together (each with its stack LoRA; all train under the new_stack part state), the
   * stacks before it become the trunk (progressive LoRA, trunk format). Returns the events.
   */
  growTo(stacks: number, opts: GrowOptions = {}): GrowthEvent[] {
    if (stacks > this.targetStacks) throw new ProgressiveConfigError(`cannot grow past target_stacks ${this.targetStacks}: asked for ${stacks} stacks`);
    return this.growStep(stacks - this.numStacks, opts);
  }

  /** One growth step adding `k` stacks. */
  private growStep(k: number, opts: GrowOptions): GrowthEvent[] {
    if (k <= 0) return [];
    const n = this.numStacks;
    if (n >= this.targetStacks) {
      throw new ProgressiveConfigError(`cannot grow past target_stacks ${this.targetStacks}: the rack already has ${n} stacks`);
    }
    if (n + k > this.targetStacks) throw new ProgressiveConfigError(`cannot grow past target_stacks ${this.targetStacks}: asked for ${n + k} stacks`);
    const t = opts.t ?? this.time;
    if (!(t >= 0 && t <= 1)) throw new ProgressiveConfigError(`grow: t must be in [0, 1], found ${t}`);
    const op = opts.growth ? growthOperator(opts.growth) : this.growth;
    const problem = op.problem?.(n, n + k, this.direction);
    if (problem) throw new ProgressiveConfigError(problem);
    const trunk = this.model.rack.stacks.toArray();
    const source = this.model.rack.allBlocks();
    const batch = this.growthSteps++;
    const added: Stack[] = [];
    const events: GrowthEvent[] = [];
    for (let j = 0; j < k; j++) {
      const m = n + j;
      let finalIndex = this.direction === 'append' ? m : this.targetStacks - m - 1;
      const seed = deriveSeed(this.seed, `stack:${finalIndex}`);
      const stack = insertGrownStack(this.model.rack, op, { position: this.direction, config: this.stackConfig, seed, t, source, sourceStacks: trunk, batch: { index: j, size: k } });
      // An operator that inserts inside the rack (append only): the stack's place is its index.
      if (op.place) finalIndex = this.model.rack.stacks.toArray().indexOf(stack);
      added.push(stack);
      this.newest = stack;
      const event: GrowthEvent = {
        stacks: this.numStacks, position: this.newStackIndex, finalIndex, t,
        operator: op.kind, description: op.description, preservesFunction: op.preservesFunction, batch,
      };
      if (op.place) event.inserted = true;
      if (this.stackLora) event.stackLora = this.attachStackLora(stack, finalIndex);
      events.push(event);
    }
    // The stacks that were there before the step are the trunk: each gets a progressive LoRA.
    const last = events[events.length - 1]!.finalIndex;
    if (this.progressiveLora) trunk.forEach((s, i) => this.attachProgressive(s, this.direction === 'append' ? i : i + k, last));
    this.fresh = new Set(added);
    this.quantizeTrunkStacks();
    this.time = t;
    this.setTime(t);
    this.applyFreeze();
    this.model.namedParameters();
    this.history.push(...events);
    return events;
  }

  /** Changes the freeze policy (a new phase); checked first, applied at once. */
  setFreezePolicy(policy: FreezePolicy): void {
    this.checkPolicy(policy, this.trunkFormat, 'freeze');
    this.freeze = policy;
    this.applyFreeze();
  }

  /**
   * Changes the storage format of the trunk (a new phase): stacks that join the trunk from now on
   * are stored in `format`. Quantizing is one-way: once a trunk stack is quantized its format
   * cannot change (a phase cannot go back to fp32 or to another quantized format).
   */
  setTrunkWeightFormat(format: WeightFormat): void {
    if (format === this.trunkFormat) return;
    if (!(WEIGHT_FORMATS as readonly string[]).includes(format)) {
      throw new ProgressiveConfigError(`trunk_format must be one of ${WEIGHT_FORMATS.join(', ')}, found '${String(format)}'`);
    }
    if (this.model.rack.stacks.toArray().some((s) => this.quantized.has(s))) {
      throw new ProgressiveConfigError(`cannot change the trunk weight format from '${this.trunkFormat}' to '${format}': trunk stacks are already stored as ${this.trunkFormat} (quantizing is one-way)`);
    }
    this.checkPolicy(this.freeze, format, 'trunk_format');
    this.trunkFormat = format;
    this.quantizeTrunkStacks();
    this.applyFreeze();
  }

  get trunkWeightFormat(): WeightFormat {
    return this.trunkFormat;
  }

  /** True when the stack at rack position `index` is stored in the (quantized) trunk format. */
  isQuantized(index: number): boolean {
    const s = this.model.rack.stacks.toArray()[index];
    return s !== undefined && this.quantized.has(s);
  }

  /** Changes the growth operator used by later growths. */
  setGrowth(growth: GrowthSpec | GrowthOperator): void {
    this.growth = growthOperator(growth);
  }

  /** Moves global time: updates the gates of ramped-in stacks. */
  setTime(t: number): void {
    if (!(t >= 0 && t <= 1)) throw new ProgressiveConfigError(`setTime: t must be in [0, 1], found ${t}`);
    this.time = t;
    for (const s of this.model.rack.stacks) if (s instanceof RampedStack) s.setTime(t);
  }

  /** Re-applies the freeze policy (e.g. after loading a checkpoint); returns the trainable count. */
  applyFreeze(): number {
    const plan = this.planOf(this.freeze);
    const trainable = applyFreezePlan(plan, {
      embedding: this.model.embedding,
      time: this.model.timeEmbedding,
      head: this.model.head,
      stacks: this.model.rack.stacks.toArray(),
      newStacks: this.fresh,
    });
    if (trainable === 0) {
      throw new ProgressiveConfigError(`the freeze policy ${JSON.stringify(this.freeze)} leaves nothing trainable (new stack ${plan.new_stack}, trunk ${plan.trunk}, embedding ${plan.embedding}, head ${plan.head})`);
    }
    this.version++;
    return trainable;
  }

  private attachStackLora(stack: Stack, finalIndex: number): { rank: number; alpha: number } {
    const l = this.stackLora!;
    const ra = loraRankFor(l.strategy, finalIndex);
    const lins = attachAdapters(stack, { ...ra, targets: l.targets, dropout: l.dropout, seed: deriveSeed(this.seed, `stack-lora:${finalIndex}`) });
    for (const lin of lins) this.adapterKinds.set(lin.loraA!, 'stack');
    this.version++;
    return ra;
  }

  private attachProgressive(stack: Stack, position: number, growth = -1): void {
    const p = this.progressiveLora!;
    const lins = attachAdapters(stack, { rank: p.rank, alpha: p.alpha, targets: p.targets, dropout: p.dropout, seed: deriveSeed(this.seed, `progressive-lora:${growth}:${position}`) });
    for (const lin of lins) this.adapterKinds.set(lin.loraA!, 'progressive');
    this.version++;
  }

  /** head: lora — an adapter on the decoder (token heads) or on the classifier (classification heads); the freeze plan trains it alone. */
  private attachHeadLora(): void {
    const { rank, alpha } = this.headLora!;
    const opts = { rank, alpha, seed: deriveSeed(this.seed, 'head-lora'), freezeBase: false };
    const head = this.model.head;
    if (head instanceof TokenHead) head.addLora(opts);
    else (head as ClassificationHead).classifier.addLora(opts);
    this.version++;
  }

  private quantizeTrunkStacks(): void {
    if (this.trunkFormat === 'fp32' || !this.quantizeTrunk) return;
    for (const s of this.model.rack.stacks) {
      if (this.fresh.has(s) || this.quantized.has(s)) continue;
      this.quantizeTrunk(s, this.trunkFormat);
      this.quantized.add(s);
      this.version++;
    }
  }

  // ---- optimizer groups, reports, specs -------------------------------------------------------

  /** Role of every parameter (embedding, head, new_stack, trunk, stack_lora, progressive_lora). */
  parameterRoles(): Map<Tensor, ParameterRole> {
    return parameterRoles(this.model, this.fresh, this.adapterKinds);
  }

  /** Optimizer groups of the trainable parameters: new_stack, trunk, stack_lora, progressive_lora, no_decay. */
  parameterGroups(opts: GroupOptions = {}): ParamGroupOptions[] {
    return parameterGroupsOf(this.model.namedParameters(), this.parameterRoles(), opts);
  }

  /** Memory and compute of the current phase. */
  report(opts: ResourceReportOptions = {}): ResourceReport {
    return resourceReport(this.model, this.parameterRoles(), this.fresh, opts);
  }

  /** The RackSpec of the rack as it is now (trunk stacks carry the trunk weight format). */
  toSpec(): RackSpec {
    const spec = this.model.rack.toSpec();
    if (this.trunkFormat !== 'fp32') {
      this.model.rack.stacks.toArray().forEach((s, i) => { if (this.quantized.has(s)) spec.stacks[i]!.weight_format = this.trunkFormat; });
    }
    return spec;
  }

  /** Serialisable state (see BuilderState). */
  getState(): BuilderState {
    const progressiveAdapters = this.model.namedParameters().flatMap(([name, t]) => (this.adapterKinds.get(t) === 'progressive' ? [name] : []));
    return {
      direction: this.direction, targetStacks: this.targetStacks, seed: this.seed, history: structuredClone(this.history), t: this.time,
      freeze: structuredClone(this.freeze), trunkFormat: this.trunkFormat,
      quantized: this.model.rack.stacks.toArray().flatMap((s, i) => (this.quantized.has(s) ? [this.finalIndex(i)] : [])),
      progressiveAdapters,
    };
  }

  /** This builder's settings (operator, freeze policy, adapters, formats, seed), for a builder over another model. */
  settings(): ProgressiveRackBuilderOptions {
    const o: ProgressiveRackBuilderOptions = {
      direction: this.direction, targetStacks: this.targetStacks, stack: this.stackConfig, growth: this.growth, freeze: this.freeze,
      trunkWeightFormat: this.trunkFormat, seed: this.seed, t: this.time,
    };
    if (this.stackLora) o.stackLora = this.stackLora;
    if (this.progressiveLora) o.progressiveLora = this.progressiveLora;
    if (this.quantizeTrunk) o.quantizeTrunk = this.quantizeTrunk;
    if (this.headMode !== undefined) o.head = this.headMode;
    if (this.headLora) o.headLora = { ...this.headLora };
    return o;
  }

  /**
   * The builder of a resumed run: `model` already holds the growths `state` records (it was built
   * from the checkpoint's model manifest, weights loaded), `opts` are the run's builder settings.
   * Nothing is attached, quantized or frozen again (the checkpoint's trainable flags apply); the
   * growth history, the new stacks, the quantized trunk, the adapter kinds and the time are taken
   * from the state. The freeze policy and trunk format come from the state (from `opts` for a
   * state written before it recorded them).
   */
  static restore(model: Model, opts: ProgressiveRackBuilderOptions, state: BuilderState): ProgressiveRackBuilder {
    const o = { ...opts };
    if (state.freeze !== undefined) o.freeze = state.freeze;
    if (state.trunkFormat !== undefined) o.trunkWeightFormat = state.trunkFormat;
    if (typeof state.t === 'number') o.t = state.t;
    return new ProgressiveRackBuilder(model, o, state);
  }

  /** The bookkeeping of a restored builder (see `restore`). */
  private takeUp(state: BuilderState): void {
    if (state.direction !== this.direction || state.targetStacks !== this.targetStacks || state.seed !== this.seed) {
      throw new ProgressiveConfigError(`resume: the saved builder (${state.direction}, target_stacks ${state.targetStacks}, seed ${state.seed}) differs from this run's (${this.direction}, ${this.targetStacks}, ${this.seed})`);
    }
    const history = state.history ?? [];
    const last = history[history.length - 1];
    if (last && last.stacks !== this.numStacks) {
      throw new ProgressiveConfigError(`resume: the saved growth history ends at ${last.stacks} stacks, but the checkpoint's model has ${this.numStacks}`);
    }
    this.history.push(...structuredClone(history));
    // The new stacks are those of the last growth step (events of one step share `batch`; in old
    // states every event is its own step); before any growth, every stack.
    if (last) {
      const step = history.filter((e) => (last.batch === undefined ? e === last : e.batch === last.batch)).map((e) => e.finalIndex);
      this.fresh = new Set(this.model.rack.stacks.toArray().filter((_, i) => step.includes(this.finalIndex(i))));
      this.growthSteps = last.batch === undefined ? history.length : last.batch + 1;
    }
    this.newest = this.direction === 'append' ? this.model.rack.stacks.at(-1) : this.model.rack.stacks.at(0);
    // The trunk stacks stored in the trunk format (old states: every trunk stack, as quantizeTrunkStacks leaves them).
    const quantizedIds = state.quantized ?? (this.trunkFormat !== 'fp32' && this.quantizeTrunk ? this.trunkIndices.map((i) => this.finalIndex(i)) : []);
    this.model.rack.stacks.toArray().forEach((s, i) => { if (quantizedIds.includes(this.finalIndex(i))) this.quantized.add(s); });
    const params = new Map(this.model.namedParameters());
    if (state.progressiveAdapters === undefined && this.progressiveLora && [...params.keys()].some(isLoraParamName)) {
      throw new ProgressiveConfigError('resume: the checkpoint\'s builder state does not say which adapters are progressive (it was written before states recorded it); resume it with the StackWise version that wrote it');
    }
    for (const name of state.progressiveAdapters ?? []) {
      const a = params.get(name);
      if (!a) throw new ProgressiveConfigError(`resume: the builder state names progressive adapter '${name}', which the checkpoint's model does not have`);
      this.adapterKinds.set(a, 'progressive');
    }
    this.setTime(this.time);
    this.version++;
  }

  /**
   * Re-runs recorded growths (same order, times and operators as `history` says, with the
   * builder's configured operator when the recorded one is a custom function). Load the model's
   * state dict afterwards: the weights of copies and folded adapters are overwritten by it.
   */
  replay(state: BuilderState, operators: Partial<Record<string, GrowthSpec | GrowthOperator>> = {}): void {
    if (state.direction !== this.direction || state.targetStacks !== this.targetStacks || state.seed !== this.seed) {
      throw new ProgressiveConfigError(`replay: the saved builder (${state.direction}, target_stacks ${state.targetStacks}, seed ${state.seed}) differs from this one (${this.direction}, ${this.targetStacks}, ${this.seed})`);
    }
    // Events of one growth step (same `batch`) are replayed as one step, so the same stacks are new together.
    const steps: GrowthEvent[][] = [];
    for (const e of state.history) {
      const prev = steps[steps.length - 1];
      if (prev && e.batch !== undefined && prev[0]!.batch === e.batch) prev.push(e);
      else steps.push([e]);
    }
    for (const events of steps) {
      const e = events[events.length - 1]!;
      if (e.stacks <= this.numStacks) continue;
      const simple = (['fresh', 'copy_top', 'copy_middle', 'block_expansion', 'depth_upscaling'] as const).includes(e.operator as never);
      const growth: GrowthSpec | GrowthOperator | undefined = operators[e.operator]
        ?? (e.operator === this.growth.kind ? this.growth : simple ? ({ kind: e.operator } as GrowthSpec) : undefined);
      if (!growth) throw new ProgressiveConfigError(`replay: growth #${this.history.length} used operator '${e.operator}'; pass it in the operators map`);
      this.growTo(e.stacks, { t: e.t, growth });
    }
  }
}
