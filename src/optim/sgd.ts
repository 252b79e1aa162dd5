/** SGD with optional momentum, dampening, Nesterov and L2 weight decay (PyTorch semantics). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Optimizer, adoptState, zeroStateLike, type ParamGroup, type ParamGroupOptions, type ParamState } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  readonly kind = 'sgd';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  private buffers = new Map<Tensor, Tensor>();

  constructor(params: ParamGroupOptions[] | Tensor[], opts: SGDOptions) {
    super(params, { lr: opts.lr, weightDecay: opts.weightDecay ?? 0 });
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.momentum < 0) throw new Error(`SGD: momentum must be ≥ 0, found ${this.momentum}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new Error('SGD: nesterov needs momentum > 0 and dampening = 0');
  }

  protected update(p: Tensor, grad: Tensor, group: ParamGroup): void {
    let buf: Tensor | null = null;
    let firstStep = false;
    if (this.momentum > 0) {
      buf = this.buffers.get(p) ?? null;
      if (!buf) {
        buf = zeroStateLike(p);
        this.buffers.set(p, buf);
        firstStep = true;
      }
    }
    E.sgdUpdate(p, grad, buf, { lr: group.lr, momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov, weightDecay: group.weightDecay, firstStep });
  }

  protected slotNames(_p: Tensor): string[] {
    return this.momentum > 0 ? ['momentum'] : [];
  }

  protected statefulParams(): Tensor[] {
    return [...this.buffers.keys()];
  }

  protected getParamState(p: Tensor): ParamState | null {
    const b = this.buffers.get(p);
    return b ? { tensors: { momentum: b }, scalars: {} } : null;
  }

  protected setParamState(p: Tensor, s: ParamState, copy = false): void {
    // Plain SGD keeps no state: momentum buffers handed over by an optimizer with momentum
    // (a phase that turns momentum off) are dropped, not an error.
    if (this.momentum === 0) {
      this.dropParamState(p);
      return;
    }
    const b = s.tensors['momentum'];
    if (!b) throw new Error(`optimizer state: parameter ${p.describe()} has no SGD momentum buffer`);
    const nb = copy ? adoptState(b, p, 'momentum') : b;
    const old = this.buffers.get(p);
    if (old && old !== nb) old.dispose();
    this.buffers.set(p, nb);
  }

  protected dropParamState(p: Tensor): void {
    this.buffers.get(p)?.dispose();
    this.buffers.delete(p);
  }
}
