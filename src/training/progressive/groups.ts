/**
 * Optimizer parameter groups of a progressive phase: the new stack, the trunk (older stacks,
 * embedding and head), the stack LoRA adapters, the progressive LoRA adapters, and no_decay
 * (biases and norm gains of the non-adapter groups). Only trainable parameters are listed; empty
 * groups are left out; every parameter is in exactly one group.
 */
import type { Tensor } from '../../engine/index.js';
import { PROGRESSIVE_GROUPS, type ParamGroupOptions, type ProgressiveGroup } from '../../optim/index.js';
import type { ParameterRole } from './roles.js';

/** The group names (optim/roles.ts PROGRESSIVE_GROUPS, the keys of model.progressive.group_lr_scale). */
export type GroupName = ProgressiveGroup;
export const GROUP_NAMES: readonly GroupName[] = PROGRESSIVE_GROUPS;

export interface GroupOptions {
  /** Learning rate per group (a group without one uses the optimizer's). */
  lr?: Partial<Record<GroupName, number>>;
  /** Weight decay per group (no_decay is always 0). */
  weightDecay?: Partial<Record<Exclude<GroupName, 'no_decay'>, number>>;
  /** Put rank ≤ 1 tensors (biases, norm gains) of the non-adapter groups in 'no_decay' (default true). */
  noDecay?: boolean;
}

export function parameterGroupsOf(params: Iterable<[string, Tensor]>, roles: Map<Tensor, ParameterRole>, opts: GroupOptions = {}): ParamGroupOptions[] {
  const buckets = new Map<GroupName, Tensor[]>(GROUP_NAMES.map((g) => [g, []]));
  const noDecay = opts.noDecay ?? true;
  for (const [name, t] of params) {
    if (!t.requiresGrad) continue;
    const role = roles.get(t);
    if (role === undefined) throw new Error(`parameterGroups: parameter '${name}' has no role (it is not part of the model the builder knows)`);
    let g: GroupName;
    if (role === 'stack_lora' || role === 'progressive_lora') g = role;
    else if (noDecay && t.rank <= 1) g = 'no_decay';
    else g = role === 'new_stack' ? 'new_stack' : 'trunk';
    buckets.get(g)!.push(t);
  }
  const out: ParamGroupOptions[] = [];
  for (const g of GROUP_NAMES) {
    const ps = buckets.get(g)!;
    if (ps.length === 0) continue;
    const group: ParamGroupOptions = { name: g, params: ps };
    const lr = opts.lr?.[g];
    if (lr !== undefined) group.lr = lr;
    if (g === 'no_decay') group.weightDecay = 0;
    else {
      const wd = opts.weightDecay?.[g];
      if (wd !== undefined) group.weightDecay = wd;
    }
    out.push(group);
  }
  return out;
}
