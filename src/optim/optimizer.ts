/** Optimizers over parameter groups. Updates run in fused native kernels (one pass over each
 * parameter's memory); state tensors live outside memory scopes and are owned here. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export interface ParamGroupOptions {
  /** A label for the group (e.g. 'new-stack', 'trunk', 'adapters'); used in errors and logs. */
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

/** Serialisable optimizer state: per parameter (by group index, position) named tensors. */
export interface OptimizerState {
  kind: string;
  step: number;
  /** `${group}.${index}.${slot}` → tensor */
  tensors: Map<string, Tensor>;
}

export abstract class Optimizer {
  readonly groups: ParamGroup[];
  /** Number of completed `step()` calls. */
  stepCount = 0;

  protected constructor(groups: ParamGroupOptions[] | Tensor[], defaults: { lr: number; weightDecay: number }) {
    const list: ParamGroupOptions[] = groups.length > 0 && groups[0] instanceof E.Tensor ? [{ params: groups as Tensor[] }] : (groups as ParamGroupOptions[]);
    const seen = new Set<Tensor>();
    this.groups = list.map((g, i) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`optimizer: parameter ${p.describe()} appears in more than one group (group ${i} '${g.name ?? i}')`);
        if (p.dtype === 'int32') throw new Error(`optimizer: parameter ${p.describe()} is int32; only float parameters can be optimised`);
        seen.add(p);
      }
      return { name: g.name ?? `group${i}`, params: [...g.params], lr: g.lr ?? defaults.lr, weightDecay: g.weightDecay ?? defaults.weightDecay };
    });
    if (!Number.isFinite(defaults.lr) || defaults.lr < 0) throw new Error(`optimizer: lr must be a finite number ≥ 0, found ${defaults.lr}`);
  }

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
      this.groups.forEach((g, gi) => g.params.forEach((p, pi) => {
        if (!p.grad || !p.requiresGrad) return;
        if (p.grad.size !== p.size) throw new Error(`optimizer: gradient ${p.grad.describe()} does not match parameter ${p.describe()}`);
        this.update(p, p.grad, g, `${gi}.${pi}`);
      }));
    });
  }

  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup, key: string): void;

  abstract readonly kind: string;
  protected abstract stateTensors(): Map<string, Tensor>;
  protected abstract loadStateTensors(tensors: Map<string, Tensor>): void;

  stateDict(): OptimizerState {
    return { kind: this.kind, step: this.stepCount, tensors: this.stateTensors() };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`optimizer state: expected kind '${this.kind}', found '${state.kind}'`);
    this.stepCount = state.step;
    this.loadStateTensors(state.tensors);
  }

  /** Frees all state tensors. */
  dispose(): void {
    for (const t of this.stateTensors().values()) t.dispose();
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
