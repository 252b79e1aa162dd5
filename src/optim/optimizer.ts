/** Optimizers over parameter groups. Updates run in fused native kernels (one pass over each
 * parameter's memory); state tensors live outside memory scopes and are owned here. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export interface ParamGroupOptions {
  /** A label for the group (e.g. 'new_stack', 'trunk', 'adapters'); used in errors and logs. */
  name?: string;
  params: Tensor[];
  /** Overrides the optimizer's learning rate for this group. */
  lr?: number;
  weightDecay?: number;
}

export interface ParamGroup {
  name: string;
  params: Tensor[];
  lr: number;
  weightDecay: number;
}

/** One parameter's optimizer state: tensors by slot name and numbers (e.g. its step count). */
export interface ParamState {
  tensors: Record<string, Tensor>;
  scalars: Record<string, number>;
}

/** Optimizer state keyed by parameter name: tensors `${name}.${slot}`, numbers per name. */
export interface NamedOptimizerState {
  kind: string;
  step: number;
  tensors: Map<string, Tensor>;
  scalars: Record<string, Record<string, number>>;
}

function buildGroups(groups: ParamGroupOptions[] | Tensor[], defaults: { lr: number; weightDecay: number }): ParamGroup[] {
  const list: ParamGroupOptions[] = groups.length > 0 && groups[0] instanceof E.Tensor ? [{ params: groups as Tensor[] }] : (groups as ParamGroupOptions[]);
  const seen = new Set<Tensor>();
  const names = new Set<string>();
  return list.map((g, i) => {
    for (const p of g.params) {
      if (seen.has(p)) throw new Error(`optimizer: parameter ${p.describe()} appears in more than one group (group ${i} '${g.name ?? i}')`);
      if (p.dtype === 'int32') throw new Error(`optimizer: parameter ${p.describe()} is int32; only float parameters can be optimised`);
      seen.add(p);
    }
    const name = g.name ?? `group${i}`;
    if (names.has(name)) throw new Error(`optimizer: two parameter groups are named '${name}'`);
    names.add(name);
    for (const [key, v] of [['lr', g.lr], ['weightDecay', g.weightDecay]] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new Error(`optimizer: group '${name}' ${key} must be a finite number ≥ 0, found ${v}`);
    }
    return { name, params: [...g.params], lr: g.lr ?? defaults.lr, weightDecay: g.weightDecay ?? defaults.weightDecay };
  });
}

export abstract class Optimizer {
  readonly groups: ParamGroup[];
  /** Number of completed `step()` calls. */
  stepCount = 0;

  /** The lr and weight decay a group gets when it names none. */
  readonly defaults: { lr: number; weightDecay: number };

  protected constructor(groups: ParamGroupOptions[] | Tensor[], defaults: { lr: number; weightDecay: number }) {
    if (!Number.isFinite(defaults.lr) || defaults.lr < 0) throw new Error(`optimizer: lr must be a finite number ≥ 0, found ${defaults.lr}`);
    this.defaults = { ...defaults };
    this.groups = buildGroups(groups, this.defaults);
  }

  /**
   * Replaces the parameter groups (a model grew, a stack was frozen, the grouping changed).
   * Parameters that stay keep their state (moments, momentum, step counts) whatever group they
   * move to; parameters that left lose theirs; new parameters start with fresh state on their
   * first update. With `resetState`, every parameter starts afresh.
   */
  setParamGroups(groups: ParamGroupOptions[] | Tensor[], opts: { resetState?: boolean } = {}): void {
    const next = buildGroups(groups, this.defaults);
    const kept = new Set(next.flatMap((g) => g.params));
    for (const p of this.statefulParams()) if (opts.resetState || !kept.has(p)) this.dropParamState(p);
    this.groups.splice(0, this.groups.length, ...next);
  }

  /** Adds a group of new parameters (they start with fresh state). */
  addParamGroup(group: ParamGroupOptions): void {
    this.setParamGroups([...this.groups.map((g) => ({ ...g })), group]);
  }

  /** The group holding `p`, if any. */
  groupOf(p: Tensor): ParamGroup | undefined {
    return this.groups.find((g) => g.params.includes(p));
  }

  /**
   * Moves the state of `from` to `to` (same shape and dtype): used when a module replaces a
   * parameter tensor by an equivalent one. `from` loses its state.
   */
  transferState(from: Tensor, to: Tensor): void {
    if (from === to) return;
    const s = this.getParamState(from);
    if (!s) return;
    if (from.size !== to.size || from.dtype !== to.dtype) {
      throw new Error(`optimizer: cannot move state from ${from.describe()} to ${to.describe()} (shape or dtype differ)`);
    }
    this.setParamState(to, s);
    this.dropParamState(from);
  }

  /**
   * State of every parameter by a stable name (for checkpoints whose parameter order may differ):
   * tensors under `${name}.${slot}` (the live tensors, not copies) and per-parameter numbers.
   */
  namedState(nameOf: (p: Tensor) => string): NamedOptimizerState {
    const tensors = new Map<string, Tensor>();
    const scalars: Record<string, Record<string, number>> = {};
    for (const p of this.params()) {
      const s = this.getParamState(p);
      if (!s) continue;
      const name = nameOf(p);
      for (const [slot, t] of Object.entries(s.tensors)) tensors.set(`${name}.${slot}`, t);
      scalars[name] = { ...s.scalars };
    }
    return { kind: this.kind, step: this.stepCount, tensors, scalars };
  }

  /**
   * Loads state saved by `namedState`: every parameter of the optimizer with saved state gets a
   * copy of it (shapes checked); parameters without saved state start fresh. Saved state for a
   * name the optimizer does not hold is an error (the model does not match the checkpoint).
   */
  loadNamedState(state: NamedOptimizerState, nameOf: (p: Tensor) => string): void {
    if (state.kind !== this.kind) throw new Error(`optimizer state: expected kind '${this.kind}', found '${state.kind}'`);
    const byName = new Map(this.params().map((p) => [nameOf(p), p]));
    const unknown = Object.keys(state.scalars).filter((n) => !byName.has(n));
    if (unknown.length > 0) {
      throw new Error(`optimizer state: saved state for parameter(s) the optimizer does not hold: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` (+${unknown.length - 5} more)` : ''}`);
    }
    const loaded: [Tensor, ParamState][] = [];
    for (const [name, scalars] of Object.entries(state.scalars)) {
      const p = byName.get(name)!;
      const slots: Record<string, Tensor> = {};
      for (const slot of this.slotNames(p)) {
        const t = state.tensors.get(`${name}.${slot}`);
        if (!t) throw new Error(`optimizer state: parameter '${name}' lacks its '${slot}' tensor`);
        slots[slot] = t;
      }
      loaded.push([p, { tensors: slots, scalars: { ...scalars } }]);
    }
    for (const p of this.statefulParams()) this.dropParamState(p);
    for (const [p, s] of loaded) {
      const copies: Record<string, Tensor> = {};
      for (const [slot, t] of Object.entries(s.tensors)) copies[slot] = this.adoptSlot(t, p, slot, `${nameOf(p)}.${slot}`);
      this.setParamState(p, { tensors: copies, scalars: s.scalars }, false);
    }
    this.stepCount = state.step;
  }

  /** A copy of a saved state tensor for parameter `p` (default: shaped like `p`). */
  protected adoptSlot(saved: Tensor, p: Tensor, _slot: string, key: string): Tensor {
    return adoptState(saved, p, key);
  }

  /** Names of the state tensors of `p` ('m', 'v' for AdamW; 'momentum' for SGD). */
  protected abstract slotNames(p: Tensor): string[];
  /** Parameters that currently have state. */
  protected abstract statefulParams(): Tensor[];
  /** The live state of one parameter, or null. */
  protected abstract getParamState(p: Tensor): ParamState | null;
  /** Installs state for `p` (taking ownership of the tensors unless `copy`). */
  protected abstract setParamState(p: Tensor, s: ParamState, copy?: boolean): void;
  /** Drops and frees the state of `p`. */
  protected abstract dropParamState(p: Tensor): void;

  /** All parameters in group order. */
  params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Drops every gradient (frees their memory). */
  zeroGrad(): void {
    for (const p of this.params()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount += 1;
    E.noGrad(() => {
      this.groups.forEach((g, gi) => {
        const entries: { p: Tensor; grad: Tensor; key: string }[] = [];
        g.params.forEach((p, pi) => {
          if (!p.grad || !p.requiresGrad) return;
          if (p.grad.size !== p.size) throw new Error(`optimizer: gradient ${p.grad.describe()} does not match parameter ${p.describe()}`);
          entries.push({ p, grad: p.grad, key: `${gi}.${pi}` });
        });
        if (entries.length) this.updateGroup(entries, g);
      });
    });
  }

  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup, key: string): void;

  /** Updates the parameters of one group that have gradients; optimizers with a fused
   * multi-tensor kernel override it (one call per group instead of one per parameter). */
  protected updateGroup(entries: { p: Tensor; grad: Tensor; key: string }[], group: ParamGroup): void {
    for (const { p, grad, key } of entries) this.update(p, grad, group, key);
  }

  abstract readonly kind: string;

  /** Frees all state tensors. */
  dispose(): void {
    for (const p of this.statefulParams()) this.dropParamState(p);
  }
}

/** Creates a zero state tensor shaped like `p`, outside any memory scope. */
export function zeroStateLike(p: Tensor): Tensor {
  return E.keep(E.zeros(p.shape, { dtype: p.dtype, backend: p.backend }));
}

/** Copies saved state into (new) tensors on the parameter's backend, checking shapes. */
export function adoptState(saved: Tensor, like: Tensor, key: string): Tensor {
  if (saved.size !== like.size || saved.shape.length !== like.shape.length || saved.shape.some((d, i) => d !== like.shape[i])) {
    throw new Error(`optimizer state '${key}': expected shape [${like.shape.join(', ')}] (parameter ${like.describe()}), found [${saved.shape.join(', ')}]`);
  }
  return E.keep(E.tensor(saved.toArray(), like.shape, { dtype: like.dtype, backend: like.backend }));
}
