/** What each parameter of a progressively grown model is, for optimizer groups and reports. */
import type { Tensor } from '../../engine/index.js';
import type { Model, Stack } from '../../nn/index.js';
import { ADAPTER_ROLES, PLACE_ROLES, type AdapterRole, type PlaceRole } from '../../optim/index.js';
import { parameterEntries } from './operators.js';

/** A progressive run's parameter roles: where a tensor sits, adapters split by kind (optim/roles.ts). */
export type ParameterRole = PlaceRole | AdapterRole;
export const PARAMETER_ROLES: readonly ParameterRole[] = [...PLACE_ROLES, ...ADAPTER_ROLES];

export type AdapterKind = 'stack' | 'progressive';

/**
 * The role of every distinct parameter. `adapterKinds` says (by each adapter's A tensor) which
 * adapters are progressive (on the trunk); every other adapter counts as a stack LoRA. A tensor shared by the embedding
 * and the head is an 'embedding' parameter.
 */
export function parameterRoles(model: Model, newStacks: Stack | ReadonlySet<Stack> | null, adapterKinds: WeakMap<Tensor, AdapterKind>): Map<Tensor, ParameterRole> {
  const isNew = newStackTest(newStacks);
  const roles = new Map<Tensor, ParameterRole>();
  const put = (t: Tensor, r: ParameterRole) => { if (!roles.has(t)) roles.set(t, r); };
  // The head's own adapter (model.progressive.head: lora) is part of the head.
  const inHead = new Set(parameterEntries(model.head).map(([, t]) => t));
  for (const [, m] of model.namedModules()) {
    const own = new Map(m.ownParameters());
    const a = own.get('lora_A');
    if (!a || inHead.has(a)) continue;
    const r: ParameterRole = adapterKinds.get(a) === 'progressive' ? 'progressive_lora' : 'stack_lora';
    put(a, r);
    const b = own.get('lora_B');
    if (b) put(b, r);
  }
  for (const [, t] of parameterEntries(model.embedding)) put(t, 'embedding');
  // The time embedding (time-as-input) is part of the input stage.
  if (model.timeEmbedding) for (const [, t] of parameterEntries(model.timeEmbedding)) put(t, 'embedding');
  for (const s of model.rack.stacks) for (const [, t] of parameterEntries(s)) put(t, isNew(s) ? 'new_stack' : 'trunk');
  for (const [, t] of parameterEntries(model.head)) put(t, 'head');
  return roles;
}

/** Membership test of the new stacks (one stack, a set of them, or none). */
export function newStackTest(newStacks: Stack | ReadonlySet<Stack> | null): (s: Stack) => boolean {
  if (newStacks === null) return () => false;
  if (newStacks instanceof Set) return (s) => newStacks.has(s);
  return (s) => s === newStacks;
}
