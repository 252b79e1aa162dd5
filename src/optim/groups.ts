// Parameter groups by role: which parameters of a model get which lr scale and weight decay.
//
// A parameter's role follows from its dotted name (the Module tree's stable names) and from which
// stacks are new:
//   adapters   LoRA tensors (`…lora_A`, `…lora_B`)
//   no_decay   1-d tensors: norm weights and biases (conventionally not decayed)
//   embedding  under `embedding.`, and the time embedding under `time.` (it feeds the embedding output)
//   head       under `head.` (a tied decoder is the embedding's table and counts as embedding)
//   new_stack  under `rack.stacks.<i>.` with i among the new stacks
//   trunk      under `rack.stacks.<i>.` otherwise
// Only the roles a config lists become groups; a parameter goes to the first listed role it has,
// in the order above, and everything else goes to the group 'default'.

import type { Tensor } from '../engine/index.js';
import { isLoraParamName } from '../nn/index.js';
import type { ParamGroupOptions } from './optimizer.js';

import { PARAM_ROLES, isEmbeddingParamName, type ParamRole } from './roles.js';

export { PARAM_ROLES, type ParamRole };
export const DEFAULT_GROUP = 'default';

export interface ParamGroupRule {
  name: ParamRole;
  /** Multiplies the scheduled lr (default 1). */
  lr_scale?: number;
  /** Overrides the base weight decay (no_decay defaults to 0). */
  weight_decay?: number;
}

export interface GroupAssignmentOptions {
  /** Weight decay of groups that set none. */
  weightDecay: number;
  /** Indices of the stacks that count as new (the others are trunk). */
  newStacks?: ReadonlySet<number>;
}

/** A group ready for an optimizer, with its lr multiplier and its members' names. */
export interface AssignedGroup extends ParamGroupOptions {
  name: string;
  lrScale: number;
  weightDecay: number;
  paramNames: string[];
}

const STACK_RE = /(?:^|\.)rack\.stacks\.(\d+)\./;

/** The stack a parameter belongs to, from its name; undefined outside the rack. */
export function stackIndexOf(name: string): number | undefined {
  const m = STACK_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Every role a parameter has, in precedence order. */
export function paramRoles(name: string, t: Tensor, newStacks: ReadonlySet<number> = new Set()): ParamRole[] {
  const roles: ParamRole[] = [];
  if (isLoraParamName(name)) roles.push('adapters');
  if (t.rank <= 1) roles.push('no_decay');
  if (isEmbeddingParamName(name)) roles.push('embedding');
  if (name.startsWith('head.')) roles.push('head');
  const stack = stackIndexOf(name);
  if (stack !== undefined) roles.push(newStacks.has(stack) ? 'new_stack' : 'trunk');
  return roles;
}

/**
 * Splits named parameters into groups following `rules` (see the file comment). Groups come out
 * in rule order with 'default' last; empty groups are left out.
 */
export function assignParamGroups(
  named: readonly [string, Tensor][],
  rules: readonly ParamGroupRule[],
  opts: GroupAssignmentOptions,
): AssignedGroup[] {
  const seen = new Set<string>();
  for (const r of rules) {
    if (!(PARAM_ROLES as readonly string[]).includes(r.name)) {
      throw new Error(`parameter groups: unknown role '${r.name}' (expected one of ${PARAM_ROLES.join(', ')})`);
    }
    if (seen.has(r.name)) throw new Error(`parameter groups: role '${r.name}' is listed twice`);
    seen.add(r.name);
  }
  const groups = new Map<string, AssignedGroup>();
  const make = (name: string, rule?: ParamGroupRule): AssignedGroup => ({
    name,
    params: [],
    paramNames: [],
    lrScale: rule?.lr_scale ?? 1,
    weightDecay: rule?.weight_decay ?? (name === 'no_decay' ? 0 : opts.weightDecay),
  });
  for (const r of rules) groups.set(r.name, make(r.name, r));
  groups.set(DEFAULT_GROUP, make(DEFAULT_GROUP));
  for (const [name, t] of named) {
    const roles = paramRoles(name, t, opts.newStacks);
    const role = PARAM_ROLES.find((r) => seen.has(r) && roles.includes(r));
    const g = groups.get(role ?? DEFAULT_GROUP)!;
    g.params.push(t);
    g.paramNames.push(name);
  }
  return [...groups.values()].filter((g) => g.params.length > 0);
}
