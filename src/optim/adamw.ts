/** AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch semantics). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Optimizer, adoptState, zeroStateLike, type ParamGroup, type ParamGroupOptions, type ParamState } from './optimizer.js';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class AdamW extends Optimizer {
  readonly kind = 'adamw';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private m = new Map<Tensor, Tensor>();
  private v = new Map<Tensor, Tensor>();
  private steps = new Map<Tensor, number>();

  constructor(params: ParamGroupOptions[] | Tensor[], opts: AdamWOptions) {
    super(params, { lr: opts.lr, weightDecay: opts.weightDecay ?? 0.01 });
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    for (const [name, b] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: ${name} must be in [0, 1), found ${b}`);
    }
    if (!(this.eps > 0)) throw new Error(`AdamW: eps must be > 0, found ${this.eps}`);
  }

  /** The moments and the next step count of p (zero moments on its first update). */
  private next(p: Tensor): { m: Tensor; v: Tensor; step: number } {
    let m = this.m.get(p), v = this.v.get(p);
    if (!m || !v) {
      m = zeroStateLike(p);
      v = zeroStateLike(p);
      this.m.set(p, m);
      this.v.set(p, v);
    }
    // Per-parameter step count: a parameter that joins later (a new stack) starts its own bias correction.
    const step = (this.steps.get(p) ?? 0) + 1;
    this.steps.set(p, step);
    return { m, v, step };
  }

  protected update(p: Tensor, grad: Tensor, group: ParamGroup): void {
    const { m, v, step } = this.next(p);
    E.adamwUpdate(p, grad, m, v, { lr: group.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: group.weightDecay, step });
  }

  /** Each group in one fused call (one parallel region over all its parameters). */
  protected override updateGroup(entries: { p: Tensor; grad: Tensor }[], group: ParamGroup): void {
    const byBackend = new Map<unknown, E.AdamWGroupEntry[]>();
    for (const { p, grad } of entries) {
      const list = byBackend.get(p.backend) ?? [];
      list.push({ param: p, grad, ...this.next(p) });
      byBackend.set(p.backend, list);
    }
    for (const list of byBackend.values()) {
      E.adamwUpdateGroup(list, { lr: group.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: group.weightDecay });
    }
  }

  protected slotNames(): string[] {
    return ['m', 'v'];
  }

  protected statefulParams(): Tensor[] {
    return [...this.m.keys()];
  }

  protected getParamState(p: Tensor): ParamState | null {
    const m = this.m.get(p), v = this.v.get(p);
    if (!m || !v) return null;
    return { tensors: { m, v }, scalars: { step: this.steps.get(p) ?? 0 } };
  }

  protected setParamState(p: Tensor, s: ParamState, copy = false): void {
    const { m, v } = s.tensors;
    const step = s.scalars['step'];
    if (!m || !v || step === undefined || !Number.isInteger(step) || step < 0) {
      throw new Error(`optimizer state: parameter ${p.describe()} has incomplete AdamW state (needs m, v and an integer step)`);
    }
    const newM = copy ? adoptState(m, p, 'm') : m;
    const newV = copy ? adoptState(v, p, 'v') : v;
    const oldM = this.m.get(p), oldV = this.v.get(p);
    if (oldM && oldM !== newM) oldM.dispose();
    if (oldV && oldV !== newV) oldV.dispose();
    this.m.set(p, newM);
    this.v.set(p, newV);
    this.steps.set(p, step);
  }

  protected dropParamState(p: Tensor): void {
    this.m.get(p)?.dispose();
    this.v.get(p)?.dispose();
    this.m.delete(p);
    this.v.delete(p);
    this.steps.delete(p);
  }
}
