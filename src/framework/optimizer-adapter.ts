// OptimizerAdapter: an Optimizer + the optimizer plane of a phase → parameter groups by role,
// lr(t) per group, clipping, accumulation, and state that survives growth and phase changes.

import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import {
  AdamW,
  SGD,
  assignParamGroups,
  clipGradNorm,
  makeLrSchedule,
  type AssignedGroup,
  type LrSchedule,
  type Optimizer,
  type ParamGroupRule,
} from '../optim/index.js';
import { validateOptimizerSpec, type OptimizerSpec } from './specs/optimizer.js';
import type { OptimizerPlaneConfig } from './config/schema.js';
import type { ModelAdapter } from './model-adapter.js';

/** The OptimizerSpec described by an optimizer plane. */
export function optimizerSpecOf(plane: OptimizerPlaneConfig): OptimizerSpec {
  const spec: Record<string, unknown> = {
    type: plane.type,
    lr_schedule: plane.lr_schedule,
    lr_time: plane.lr_time,
    weight_decay: plane.weight_decay,
    betas: plane.betas,
    eps: plane.eps,
    momentum: plane.momentum,
    nesterov: plane.nesterov,
    accumulation_steps: plane.accumulation_steps,
    param_groups: plane.param_groups.map((g) => ({ ...g })),
  };
  if (plane.clip_norm !== undefined) spec['clip_norm'] = plane.clip_norm;
  if (plane.state_format === 'int8') spec['state_format'] = 'int8';
  return validateOptimizerSpec(spec);
}

/** A fresh optimizer of the plane's type (its groups are set by `OptimizerAdapter.sync`). */
export function createOptimizer(spec: OptimizerSpec, params: Tensor[] = []): Optimizer {
  const lr = 1; // every group's lr is set from the schedule before each step
  if (spec.type === 'adamw') {
    return new AdamW(params, { lr, beta1: spec.betas[0], beta2: spec.betas[1], eps: spec.eps, weightDecay: spec.weight_decay, stateFormat: spec.state_format ?? 'fp32' });
  }
  return new SGD(params, { lr, momentum: spec.momentum, nesterov: spec.nesterov, weightDecay: spec.weight_decay });
}

function sameKindAndHyper(a: OptimizerSpec, b: OptimizerSpec): 'same' | 'hyper' | 'kind' {
  // Another state format holds the moments in another form: fresh moments, as for another type.
  if (a.type !== b.type || (a.state_format ?? 'fp32') !== (b.state_format ?? 'fp32')) return 'kind';
  const hyper = (s: OptimizerSpec) => JSON.stringify([s.betas, s.eps, s.momentum, s.nesterov]);
  return hyper(a) === hyper(b) ? 'same' : 'hyper';
}

/** An optimizer behind its spec: groups by role, lr as a function of t, clipping, accumulation. */
export class OptimizerAdapter {
  optimizer: Optimizer;
  private spec: OptimizerSpec;
  private schedule: LrSchedule;
  private assigned: AssignedGroup[] = [];

  constructor(optimizer: Optimizer, spec: OptimizerSpec) {
    this.optimizer = optimizer;
    this.spec = spec;
    this.schedule = makeLrSchedule(spec.lr_schedule);
  }

  getSpec(): OptimizerSpec {
    return this.spec;
  }

  /** The groups as last assigned (names, lr scales, member names). */
  get groups(): readonly AssignedGroup[] {
    return this.assigned;
  }

  /**
   * Switches to another phase's optimizer plane. Same type and hyper-parameters: the optimizer
   * stays (state carried over). Same type, other betas/eps/momentum: a new optimizer that takes
   * over the state. Another type: a new optimizer with fresh state (nothing to carry).
   * Returns what happened.
   */
  applySpec(spec: OptimizerSpec, nameOf: (p: Tensor) => string): 'kept' | 'rebuilt' | 'replaced' {
    const change = sameKindAndHyper(this.spec, spec);
    this.spec = spec;
    this.schedule = makeLrSchedule(spec.lr_schedule);
    if (change === 'same') return 'kept';
    const next = createOptimizer(spec, this.optimizer.params());
    if (change === 'hyper') {
      next.setParamGroups(this.optimizer.groups.map((g) => ({ ...g })));
      next.loadNamedState(this.optimizer.namedState(nameOf), nameOf);
    }
    next.stepCount = this.optimizer.stepCount;
    this.optimizer.dispose();
    this.optimizer = next;
    return change === 'hyper' ? 'rebuilt' : 'replaced';
  }

  /**
   * Puts the model's trainable parameters into groups by role (new parameters join, frozen ones
   * leave); state of parameters that stay is kept unless `resetState`.
   */
  sync(model: ModelAdapter, opts: { resetState?: boolean } = {}): AssignedGroup[] {
    const rules: ParamGroupRule[] = this.spec.param_groups.map((g) => {
      const r: ParamGroupRule = { name: g.name, lr_scale: g.lr_scale };
      if (g.weight_decay !== undefined) r.weight_decay = g.weight_decay;
      return r;
    });
    this.assigned = assignParamGroups(model.trainableParameters(), rules, { weightDecay: this.spec.weight_decay, newStacks: model.newStacks() });
    this.optimizer.setParamGroups(
      this.assigned.map((g) => ({ name: g.name, params: g.params, lr: 0, weightDecay: g.weightDecay })),
      { resetState: opts.resetState ?? false },
    );
    return this.assigned;
  }

  /** lr of the schedule at t (global or phase-local t as the spec says). */
  lrAt(t: number, phaseLocalT: number): number {
    return this.schedule(this.spec.lr_time === 'phase' ? phaseLocalT : t);
  }

  /** Sets every group's lr for this step; returns them by group name. */
  setLr(t: number, phaseLocalT: number): Record<string, number> {
    const base = this.lrAt(t, phaseLocalT);
    const out: Record<string, number> = {};
    for (const g of this.optimizer.groups) {
      const scale = this.assigned.find((a) => a.name === g.name)?.lrScale ?? 1;
      g.lr = base * scale;
      out[g.name] = g.lr;
    }
    return out;
  }

  get accumulationSteps(): number {
    return this.spec.accumulation_steps;
  }

  /** Global gradient norm before clipping (clipping when the spec has clip_norm). */
  clipGradients(): number {
    const params = this.optimizer.params();
    if (this.spec.clip_norm !== undefined) return clipGradNorm(params, this.spec.clip_norm);
    return E.globalGradNorm(params.map((p) => p.grad).filter((g): g is Tensor => g !== null && !g.isDisposed));
  }

  step(): void {
    this.optimizer.step();
  }

  zeroGrad(): void {
    this.optimizer.zeroGrad();
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
