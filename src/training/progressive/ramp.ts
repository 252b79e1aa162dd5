/**
 * Masked ramp-in: a new stack whose contribution is gated by a scalar g(t) that rises linearly
 * from 0 at t0 to 1 at t1: out = x + g · (stack(x) − x). At g = 0 the stack is skipped (the rack
 * computes exactly what it did before growth); at g = 1 it is an ordinary stack.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { Stack, type Block, type ForwardContext, type HiddenStateSink } from '../../nn/index.js';
import { ProgressiveConfigError } from './errors.js';

/** The gate at time t for the interval [t0, t1] (a step at t0 when t0 = t1). */
export function rampGate(t: number, t0: number, t1: number): number {
  if (t <= t0) return t >= t1 ? 1 : 0;
  if (t >= t1) return 1;
  return (t - t0) / (t1 - t0);
}

export class RampedStack extends Stack {
  readonly t0: number;
  readonly t1: number;
  private g = 0;

  constructor(dModel: number, blocks: Block[], t0: number, t1: number) {
    super(dModel, blocks);
    if (!(t0 >= 0 && t1 <= 1 && t0 <= t1)) throw new ProgressiveConfigError(`ramp-in interval [${t0}, ${t1}] must satisfy 0 ≤ t0 ≤ t1 ≤ 1`);
    this.t0 = t0;
    this.t1 = t1;
  }

  /** Moves the blocks of `stack` into a ramped stack (the old Stack object must not be used after). */
  static wrap(stack: Stack, t0: number, t1: number): RampedStack {
    return new RampedStack(stack.dModel, stack.blocks.toArray(), t0, t1);
  }

  get gate(): number {
    return this.g;
  }

  /** Sets the gate from global time t. */
  setTime(t: number): void {
    this.g = rampGate(t, this.t0, this.t1);
  }

  /** Sets the gate itself (a model loaded from its manifest gets the gate it was saved with). */
  setGate(g: number): void {
    if (!(g >= 0 && g <= 1)) throw new ProgressiveConfigError(`ramp gate must be in [0, 1], found ${g}`);
    this.g = g;
  }

  override forward(x: Tensor, ctx: ForwardContext = {}, hidden?: HiddenStateSink): Tensor {
    if (this.g === 0) {
      for (let i = 0; i < this.length; i++) hidden?.push(x);
      return x;
    }
    const y = super.forward(x, ctx, hidden);
    if (this.g === 1) return y;
    return E.add(x, E.mulScalar(E.sub(y, x), this.g));
  }
}
