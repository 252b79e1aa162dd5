/**
 * Freeze policies: which parts of a progressively grown model train in a phase.
 *
 * Parts: the new stack, the trunk (every older stack), the embedding and the head. Each part
 * 'train's (base weights and adapters), is 'frozen' (nothing), or trains only its 'adapters'.
 * A tensor shared by two parts (a head tied to the token embedding) trains only when every part
 * holding it trains ("frozen wins").
 *
 * Named policies (direction-aware):
 * | policy              | trunk    | embedding (append / prepend) | head (append / prepend) |
 * |---------------------|----------|------------------------------|-------------------------|
 * | none                | train    | train / train                | train / train           |
 * | frozen_trunk        | frozen   | frozen / train               | train / train           |
 * | frozen_suffix       | frozen   | (prepend only) train         | frozen                  |
 * | adapters_only_trunk | adapters | frozen / train               | train / frozen          |
 * A time embedding (time-as-input) is part of the embedding stage and follows its state.
 * Left→right freezes the embedding with the trunk (it is part of the frozen prefix, which lets an
 * activation cache serve it); right→left freezes the head with the suffix (the semantic anchor).
 * The new stacks are every stack the latest growth step added (all of them when a phase grows by
 * several; the model's own stacks before any growth); the trunk is every other stack. While there
 * is no trunk (before the first growth), under a named policy the embedding and the head train
 * with the new stacks (ProgressiveRackBuilder applies this rule); explicit part states apply as
 * given.
 */
import type { Tensor } from '../../engine/index.js';
import { isLoraParamName as isLoraName, type Module } from '../../nn/index.js';
import { ProgressiveConfigError } from './errors.js';
import { parameterEntries } from './operators.js';
import type { BuildDirection } from '../objectives/noise.js';

export type PartState = 'train' | 'frozen' | 'adapters';

/** The parts a freeze policy sets, by the names `model.progressive.freeze` uses. */
export const FREEZE_PARTS = ['new_stack', 'trunk', 'embedding', 'head'] as const;

export interface FreezePlan {
  new_stack: PartState;
  trunk: PartState;
  embedding: 'train' | 'frozen';
  /** 'adapters' only through model.progressive.head: lora (withHeadMode); a freeze policy says train or frozen. */
  head: PartState;
}

/** The named freeze policies, by the names `model.progressive.freeze` uses (config, code and messages). */
export const FREEZE_POLICIES = ['none', 'frozen_trunk', 'frozen_suffix', 'adapters_only_trunk'] as const;
export type FreezePolicyName = (typeof FREEZE_POLICIES)[number];
/** A named policy, or explicit part states over the direction's default ('none'). */
export type FreezePolicy = FreezePolicyName | Partial<FreezePlan>;

/** The default policy of a direction: append → 'none', prepend → 'frozen_suffix'. */
export function defaultFreezePolicy(direction: BuildDirection): FreezePolicyName {
  return direction === 'append' ? 'none' : 'frozen_suffix';
}

const PART_STATES: readonly PartState[] = ['train', 'frozen', 'adapters'];

/** The part states of a policy for a direction; `new_stack` is 'adapters' when the new stack's base does not train. */
export function resolveFreezePlan(policy: FreezePolicy, direction: BuildDirection, newStackTrainsBase = true): FreezePlan {
  const new_stack: PartState = newStackTrainsBase ? 'train' : 'adapters';
  const append = direction === 'append';
  if (typeof policy === 'string') {
    switch (policy) {
      case 'none': return { new_stack, trunk: 'train', embedding: 'train', head: 'train' };
      case 'frozen_trunk': return { new_stack, trunk: 'frozen', embedding: append ? 'frozen' : 'train', head: 'train' };
      case 'frozen_suffix':
        if (append) throw new ProgressiveConfigError("freeze policy 'frozen_suffix' is the right→left (prepend) policy: the suffix is the stacks after the new one and the head; with append use 'frozen_trunk'");
        return { new_stack, trunk: 'frozen', embedding: 'train', head: 'frozen' };
      case 'adapters_only_trunk': return { new_stack, trunk: 'adapters', embedding: append ? 'frozen' : 'train', head: append ? 'train' : 'frozen' };
      default:
        throw new ProgressiveConfigError(`unknown freeze policy '${String(policy)}' (expected ${FREEZE_POLICIES.join(', ')}, or an object with new_stack/trunk/embedding/head)`);
    }
  }
  if (!policy || typeof policy !== 'object') throw new ProgressiveConfigError(`freeze policy must be a name or an object, found ${String(policy)}`);
  const plan: FreezePlan = { new_stack, trunk: 'train', embedding: 'train', head: 'train', ...policy };
  for (const key of Object.keys(policy)) {
    if (!(FREEZE_PARTS as readonly string[]).includes(key)) throw new ProgressiveConfigError(`freeze.${key} is not a part (expected ${FREEZE_PARTS.join(', ')})`);
  }
  for (const k of ['new_stack', 'trunk'] as const) {
    if (!PART_STATES.includes(plan[k])) throw new ProgressiveConfigError(`freeze.${k} must be 'train', 'frozen' or 'adapters', found '${String(plan[k])}'`);
  }
  for (const k of ['embedding', 'head'] as const) {
    if (plan[k] !== 'train' && plan[k] !== 'frozen') throw new ProgressiveConfigError(`freeze.${k} must be 'train' or 'frozen', found '${String(plan[k])}'`);
  }
  return plan;
}


/** The plan with model.progressive.head applied over the policy's head state (none: unchanged). */
export function withHeadMode(plan: FreezePlan, mode: 'train' | 'lora' | 'frozen' | undefined): FreezePlan {
  if (mode === undefined) return plan;
  return { ...plan, head: mode === 'lora' ? 'adapters' : mode };
}

export interface FreezeTarget {
  embedding: Module;
  /** The model's time embedding (time-as-input): part of the input stage, it follows the embedding's state. */
  time?: Module | null;
  head: Module;
  stacks: Module[];
  /** The new stacks (every stack added by the latest growth step); the others are the trunk. */
  newStacks: ReadonlySet<Module>;
}

/** Sets requiresGrad on every parameter as the plan says; returns the number of trainable parameters. */
export function applyFreezePlan(plan: FreezePlan, target: FreezeTarget): number {
  const want = new Map<Tensor, boolean>();
  const set = (m: Module, state: PartState) => {
    for (const [name, t] of parameterEntries(m)) {
      const v = state === 'train' ? true : state === 'frozen' ? false : isLoraName(name);
      want.set(t, (want.get(t) ?? true) && v);
    }
  };
  set(target.embedding, plan.embedding);
  if (target.time) set(target.time, plan.embedding);
  set(target.head, plan.head);
  for (const s of target.stacks) set(s, target.newStacks.has(s) ? plan.new_stack : plan.trunk);
  let trainable = 0;
  for (const [t, v] of want) {
    t.requiresGrad = v;
    if (v) trainable += t.size;
  }
  return trainable;
}
