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
 *                          optimizer groups from builder.parameterGroups() (new_stack, trunk,
 *                          stack_lora, progressive_lora, no_decay) via setParamGroups (state of
 *                          parameters that stay is kept);
 *   saveState/loadState    the builder's state (growth history, new stacks, quantized trunk,
 *   onResume               adapter kinds, freeze policy, time); on resume the machine's model is
 *                          the one the checkpoint's manifest describes, and the builder is restored
 *                          over it from that state (no phase is replayed).
 *
 * Optimizer groups: while the plane manages them (default; `builderGroups: false` keeps the
 * config's role groups), role groups in optimizer.param_groups are refused when the plan is
 * validated (they would not apply); use model.progressive.group_lr_scale (applied to the group lr
 * right before each update, so the `lrs` of the step metrics show the unscaled values).
 *
 * Usage: a config with model.progressive needs nothing more — the TrainingMachine installs a
 * ProgressivePlane itself and validates its plan in its constructor.
 *   const machine = new TrainingMachine(config);
 *   const plane = ProgressivePlane.attach(machine);   // the installed plane (validated)
 *   machine.train();
 * With a model and a builder made in code: `new TrainingMachine(config, { model, hooks:
 * [progressiveHooks(builder, { stacksPerPhase })] })` (or ProgressiveTrainer.trainRack).
 */
import { isLoraParamName as isLora, quantizeTrunk, type Stack } from '../nn/index.js';
import type { JsonValue, WeightFormat } from '../framework/index.js';
import type { ParamGroupOptions } from '../optim/index.js';
import type { MachineView, ModelPlaneHook, PhaseContext, StepContext } from './hooks.js';
import type { Phase } from './schedule/phase.js';
import type { ResolvedPhase } from './config/resolve.js';
import {
  CachedTraining,
  FIXED_PROGRESSIVE_KEYS,
  freezePolicyOf,
  growthOperator,
  growthSpecOf,
  progressiveConfigSchema,
  progressiveLoraOf,
  headLoraOf,
  progressiveOf,
  stackLoraOf,
  type ProgressiveConfig,
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


// ---- stack states --------------------------------------------------------------------------------

export type StackStateName = 'trainable' | 'frozen' | 'adapted' | 'quantized';
export interface StackStateEntry {
  /** Position in the rack now (0 = next to the embedding). */
  index: number;
  /**
   * The stack's identity: its index in the final rack. Equal to `index` when growing left→right;
   * right→left (prepend) the first stack built is the last of the final rack, whatever its position now.
   */
  final_index: number;
  state: StackStateName | StackStateName[];
}


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
    return { index, final_index: builder.finalIndex(index), state: states.length === 1 ? states[0]! : states };
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

export class ProgressivePlane implements ModelPlaneHook {
  readonly drivesModelPlane = true as const;
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
  /** The builder state loadState read, until onResume takes it up. */
  private saved: BuilderState | undefined;

  constructor(opts: ProgressivePlaneOptions = {}) {
    this.opts = opts;
    this.name = opts.name ?? 'progressive';
    this.builderOpt = opts.builder;
  }

  /**
   * The machine's plane, validated now (before any step): the one a model.progressive config
   * installed (when `opts` is empty), else a new one added to the machine.
   */
  static attach(machine: MachineView, opts: ProgressivePlaneOptions = {}): ProgressivePlane {
    const existing = machine.modelPlane;
    if (existing && !(existing instanceof ProgressivePlane)) throw new Error(`ProgressivePlane.attach: the machine's model plane is another hook ('${existing.name ?? 'unnamed'}')`);
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

  /** Each rack position's index in the final rack (kept when stacks are prepended). */
  stackIds(): number[] | undefined {
    const b = this.b;
    return b ? b.model.rack.stacks.toArray().map((_, i) => b.finalIndex(i)) : undefined;
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

  private makeBuilder(machine: MachineView): ProgressiveRackBuilder {
    if (this.b) return this.b;
    if (this.builderOpt) {
      if (this.builderOpt.model !== machine.model.model) throw new ProgressiveConfigError("ProgressivePlane: the builder given is over another model than the machine's");
      this.b = this.builderOpt;
      return this.b;
    }
    this.b = new ProgressiveRackBuilder(machine.model.model, this.builderOptions(machine));
    return this.b;
  }

  /** The builder settings of the first phase (model.progressive), over the machine's model. */
  private builderOptions(machine: MachineView): ConstructorParameters<typeof ProgressiveRackBuilder>[1] {
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
    if (first.head !== undefined) o.head = first.head;
    const headLora = headLoraOf(first);
    if (headLora) o.headLora = headLora;
    this.lrScale = {};
    for (const [k, v] of Object.entries(first.group_lr_scale ?? {})) if (v !== undefined) this.lrScale[k] = v;
    return o;
  }

  /** The plan: every phase's stacks, freeze policy and trunk format. */
  plan(machine: MachineView): PlanStep[] {
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
  validate(machine: MachineView): void {
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
    // A trunk exists (and is stored in trunk_format) once a phase has grown the rack.
    let hasTrunk = builder.hasTrunk;
    let stacksBefore = builder.numStacks;
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
        // Operators that insert inside the rack fit only some growths (LLaMA Pro: P divides N; SOLAR: N → 2N − 2m).
        const after = this.stacksOf(p, stacksBefore);
        const why = after > stacksBefore ? growthOperator(g).problem?.(stacksBefore, after, builder.direction) : undefined;
        if (why) problems.push(`${where}: ${why}`);
      } catch (e) {
        problems.push(`${where}: ${(e as Error).message}`);
      }
      if (formatLocked !== undefined && s.trunk_format !== formatLocked) {
        problems.push(`${where}: trunk_format '${s.trunk_format}' after a phase stored the trunk as '${formatLocked}' (quantizing is one-way)`);
      }
      const stacks = this.stacksOf(p, stacksBefore);
      if (stacks > stacksBefore) hasTrunk = true;
      stacksBefore = Math.max(stacksBefore, stacks);
      if (s.trunk_format !== 'fp32' && hasTrunk) formatLocked = s.trunk_format;
      // The plane sets the optimizer groups itself (new_stack, trunk, stack_lora, progressive_lora,
      // no_decay): role groups of optimizer.param_groups would be silently ignored.
      if (this.opts.builderGroups !== false) {
        const roleGroups = (p.optimizer?.param_groups ?? []).filter((g) => g.name !== 'no_decay' || g.lr_scale !== 1 || g.weight_decay !== undefined);
        if (roleGroups.length > 0) {
          problems.push(`${where}: optimizer.param_groups: expected none besides the default no_decay group while model.progressive sets the optimizer groups (new_stack, trunk, stack_lora, progressive_lora, no_decay; lr multipliers in model.progressive.group_lr_scale), found ${JSON.stringify(roleGroups)}`);
        }
      }
      if (s.activation_cache && i === 0) {
        const c = machine.model.model.config;
        const dropout = Math.max(c.embedding.dropout ?? 0, ...c.stacks.map((st) => st.block.dropout ?? 0));
        if (dropout > 0) problems.push(`activation_cache: the cached prefix runs without dropout, but the model has dropout ${dropout} (model.dropout), so training with the cache would not be training the same model as without it: set model.dropout: 0 or drop activation_cache`);
      }
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

  onPhaseStart(phase: Phase, machine: MachineView, ctx: PhaseContext): void {
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
    this.report(machine, phase, ctx.step, t, events, oldFreeze !== JSON.stringify(builder.freezePolicy), oldFormat !== builder.trunkWeightFormat);
  }

  /** What the activation cache did during the phase (its sizes are only meaningful once steps ran). */
  onPhaseEnd(phase: Phase, machine: MachineView, ctx: PhaseContext): void {
    if (!this.cached) return;
    const c = this.cached.info();
    machine.logRecord({
      kind: 'activation_cache', step: ctx.step, t: ctx.t, phase: phase.name, prefix_stacks: c.prefixStacks,
      hits: c.hits, misses: c.misses, entries: c.entries, memory_bytes: c.memoryBytes, disk_bytes: c.diskBytes,
      spills: c.spills, evictions: c.evictions, invalidations: c.invalidations, advances: c.advances,
    });
  }

  private adaptedSet(): Set<number> {
    const out = new Set<number>();
    this.builder.model.rack.stacks.toArray().forEach((s, i) => { if (hasAdapters(s)) out.add(i); });
    return out;
  }

  private emit(machine: MachineView, rec: ModelEventRecord): void {
    this.events.push(rec);
    machine.logRecord({ ...rec } as Record<string, unknown>);
  }

  /** Writes the model events of a phase start. */
  private report(machine: MachineView, phase: Phase, step: number, t: number, grown: GrowthEvent[], freezeChanged: boolean, formatChanged: boolean): void {
    const builder = this.builder;
    const states = stackStates(builder);
    const base = { step, t, phase: phase.name, stacks: states };
    const first = this.lastStates === undefined;
    const before = this.events.length;
    for (const e of grown) {
      const lora = e.stackLora ? `, stack LoRA rank ${e.stackLora.rank} α ${e.stackLora.alpha}` : '';
      this.emit(machine, { kind: 'grow', ...base, description: `${e.inserted ? 'insert' : builder.direction} stack ${e.finalIndex} at position ${e.position} (${e.description}${lora}) → ${e.stacks} stacks` });
    }
    const adapted = this.adaptedSet();
    const newAdapters = [...adapted].filter((i) => !this.lastAdapted.has(i) || grown.length > 0);
    if ((first && adapted.size > 0) || (!first && newAdapters.length > 0 && (grown.length > 0 || adapted.size !== this.lastAdapted.size))) {
      const parts: string[] = [];
      if (builder.stackLora) parts.push(`stack LoRA on stack ${builder.newStackIndices.join(',')} (${builder.stackLora.targets.join(',')})`);
      if (builder.progressiveLora && builder.hasTrunk) parts.push(`progressive LoRA rank ${builder.progressiveLora.rank} on trunk stacks ${builder.trunkIndices.join(',')} (${builder.progressiveLora.targets.join(',')})`);
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
      this.emit(machine, { kind: 'freeze', ...base, description: `freeze policy ${JSON.stringify(builder.freezePolicy)}: frozen base weights in stacks [${frozenNow.join(',')}], training stack ${builder.newStackIndices.join(',')}` });
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
  private writeResources(machine: MachineView, phase: Phase, step: number, t: number): void {
    // Hooks run before the machine applies the phase's optimizer plane: when the config governs
    // the optimizer, the phase's plane says what will train; otherwise the machine's stays.
    const index = machine.schedule.phases.indexOf(phase);
    const resolved = index >= 0 ? machine.parsed.phases[index] : undefined;
    const optimizer = machine.parsed.given.optimizer && resolved ? optimizerStateKindOfPlane(resolved.optimizer) : optimizerStateKindOf(machine.optimizer.optimizer);
    const seqLen = machine.data.getBatchSpec().seq_len;
    const cache = this.activationCache();
    const opts: ResourceReportOptions = { seqLen, optimizer: optimizer.kind };
    if (optimizer.stateFormat) opts.stateFormat = optimizer.stateFormat;
    if (cache) {
      opts.cachedPrefixStacks = cache.prefixStacks;
      opts.cachedActivationBytes = { memory: cache.memoryBytes, disk: cache.diskBytes };
    }
    const rec = resourceRecord(this.builder.report(opts), { step, t, phase: phase.name, seqLen, optimizer, cachedPrefixStacks: cache?.prefixStacks ?? 0 });
    this.resources.push(rec);
    machine.logRecord({ ...rec });
  }

  onStepStart(machine: MachineView, ctx: StepContext): void {
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

  beforeUpdate(machine: MachineView, ctx: StepContext): void {
    // The step's forward and backward are done: move the ramp gates on to the time the updated
    // weights belong to (t of the next step; 1 after the last), so that evaluations, checkpoints
    // and the final model see g(t) as the schedule says — a ramp ending at t1 = 1 ends at 1.
    this.b?.setTime(Math.min(1, machine.controller.tOf(ctx.step + 1)));
    if (Object.keys(this.lrScale).length === 0) return;
    for (const g of machine.optimizer.optimizer.groups) g.lr *= this.lrScaleOf(g.name);
  }

  saveState(): JsonValue {
    return this.builder.getState() as unknown as JsonValue;
  }

  /** The checkpoint's builder state; taken up by onResume once the machine holds the checkpoint's model. */
  loadState(state: JsonValue): void {
    const saved = state as unknown as BuilderState | null;
    if (!saved || typeof saved !== 'object' || !Array.isArray(saved.history)) {
      throw new ProgressiveConfigError(`resume: the checkpoint's state of hook '${this.name}' is not a progressive builder state`);
    }
    this.saved = saved;
  }

  /**
   * Resume: the machine's model was built from the checkpoint's manifest (the grown rack, its
   * adapters, storage and gates, with the weights). The builder is restored over it from the saved
   * state (no growth is replayed), the current phase's growth operator set, and the activation
   * cache installed if the phase uses one.
   */
  onResume(machine: MachineView, ctx: PhaseContext | undefined): void {
    const saved = this.saved;
    if (!saved) throw new ProgressiveConfigError(`resume: the checkpoint holds no state of hook '${this.name}' (was it written by a run with model.progressive or a phase changing model.n_stacks?)`);
    this.saved = undefined;
    const s = this.settingsOrNone(ctx?.resolved ?? machine.parsed.phases[0]!);
    const opts = this.b ? this.b.settings() : this.builderOpt ? this.builderOpt.settings() : this.builderOptions(machine);
    // A state written before it recorded the freeze policy: the current phase's (what onPhaseStart set).
    if (saved.freeze === undefined && s) opts.freeze = freezePolicyOf(s.freeze) ?? opts.freeze!;
    if (saved.trunkFormat === undefined && s) opts.trunkWeightFormat = s.trunk_format as WeightFormat;
    const builder = ProgressiveRackBuilder.restore(machine.model.model, opts, saved);
    if (s) builder.setGrowth(growthSpecOf(s.growth));
    this.b = builder;
    this.cached?.dispose();
    this.cached = undefined;
    if (s?.activation_cache && ctx) {
      this.cached = new CachedTraining(machine.model.model, s.activation_cache);
      this.cached.install(machine.model);
    }
    this.lastStates = stackStates(builder);
    this.lastAdapted = this.adaptedSet();
    this.groupsVersion = -1;
  }
}

/** The hook set of a builder (the builder's model must be the machine's). */
export function progressiveHooks(builder?: ProgressiveRackBuilder, opts: Omit<ProgressivePlaneOptions, 'builder'> = {}): ProgressivePlane {
  return new ProgressivePlane(builder ? { ...opts, builder } : opts);
}
