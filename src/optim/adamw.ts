/** AdamW with decoupled weight decay (Loshchilov & Hutter; PyTorch semantics). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Optimizer, adoptState, zeroStateLike, type ParamGroup, type ParamGroupOptions, type ParamState } from './optimizer.js';
import { isEmbeddingParamName } from './roles.js';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /**
   * 'fp32' (default) or 'int8': the moments as 8-bit block-wise codes with an absmax per 256
   * elements (bitsandbytes' blockwise Adam8bit; engine/ops/optim8.ts), about 2 bytes per
   * parameter instead of 8. Its state slots are then m, m_absmax, v, v_absmax. As in
   * bitsandbytes, tensors under INT8_MIN_SIZE elements and embedding tables keep float32 moments
   * (see int8StateEligible).
   */
  stateFormat?: 'fp32' | 'int8';
}

/** State slots of the 8-bit format: codes (int32 words used as bytes) and absmax per block of each moment. */
export const INT8_SLOTS = ['m', 'm_absmax', 'v', 'v_absmax'] as const;

/**
 * Tensors with fewer elements keep float32 moments under state_format int8 (bitsandbytes'
 * `min_8bit_size`): norm gains and biases are a rounding error of the memory and the most
 * sensitive to quantized moments.
 */
export const INT8_MIN_SIZE = 4096;

/**
 * Whether a parameter's AdamW moments are 8-bit under state_format int8: at least INT8_MIN_SIZE
 * elements and not an embedding table (by its dotted name, role 'embedding'). bitsandbytes keeps
 * 32-bit state for embeddings (StableEmbedding, GlobalOptimManager overrides): a row's moments
 * decay for many steps between the rare steps its token appears, far below the block's absmax,
 * where the dynamic map has only a few codes per decade.
 */
export function int8StateEligible(size: number, name: string | undefined): boolean {
  return size >= INT8_MIN_SIZE && !(name !== undefined && isEmbeddingParamName(name));
}

export class AdamW extends Optimizer {
  readonly kind = 'adamw';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private m = new Map<Tensor, Tensor>();
  private v = new Map<Tensor, Tensor>();
  private steps = new Map<Tensor, number>();
  readonly stateFormat: 'fp32' | 'int8';
  private q = new Map<Tensor, E.Int8AdamState>();

  constructor(params: ParamGroupOptions[] | Tensor[], opts: AdamWOptions) {
    super(params, { lr: opts.lr, weightDecay: opts.weightDecay ?? 0.01 });
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.stateFormat = opts.stateFormat ?? 'fp32';
    if (this.stateFormat !== 'fp32' && this.stateFormat !== 'int8') throw new Error(`AdamW: stateFormat must be 'fp32' or 'int8', found ${String(this.stateFormat)}`);
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

  /** The 8-bit state and the next step count of p (zero state on its first update). */
  private nextInt8(p: Tensor): { st: E.Int8AdamState; step: number } {
    let st = this.q.get(p);
    if (!st) { st = E.int8AdamState(p); this.q.set(p, st); }
    const step = (this.steps.get(p) ?? 0) + 1;
    this.steps.set(p, step);
    return { st, step };
  }

  /** Whether p's moments are 8-bit (state_format int8 and eligible). */
  private isInt8(p: Tensor): boolean {
    return this.stateFormat === 'int8' && int8StateEligible(p.size, p.name);
  }

  protected update(p: Tensor, grad: Tensor, group: ParamGroup): void {
    if (this.isInt8(p)) {
      const { st, step } = this.nextInt8(p);
      E.adamw8bitUpdate(p, grad, st, { lr: group.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: group.weightDecay, step });
      return;
    }
    const { m, v, step } = this.next(p);
    E.adamwUpdate(p, grad, m, v, { lr: group.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: group.weightDecay, step });
  }

  /** Each group in one fused call (one parallel region over all its parameters). */
  protected override updateGroup(entries: { p: Tensor; grad: Tensor }[], group: ParamGroup): void {
    // The 8-bit moments have their own kernel, one parameter at a time; the rest go fused.
    const byBackend = new Map<unknown, E.AdamWGroupEntry[]>();
    for (const { p, grad } of entries) {
      if (this.isInt8(p)) { this.update(p, grad, group); continue; }
      const list = byBackend.get(p.backend) ?? [];
      list.push({ param: p, grad, ...this.next(p) });
      byBackend.set(p.backend, list);
    }
    for (const list of byBackend.values()) {
      E.adamwUpdateGroup(list, { lr: group.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: group.weightDecay });
    }
  }

  protected slotNames(p: Tensor): string[] {
    return this.isInt8(p) ? [...INT8_SLOTS] : ['m', 'v'];
  }

  protected statefulParams(): Tensor[] {
    return [...this.q.keys(), ...this.m.keys()];
  }

  protected override adoptSlot(saved: Tensor, p: Tensor, slot: string, key: string): Tensor {
    if (!this.isInt8(p)) return adoptState(saved, p, key);
    const { codes, blocks } = E.int8StateShapes(p.size);
    const [size, dtype] = slot === 'm' || slot === 'v' ? [codes, 'int32' as const] : [blocks, 'float32' as const];
    if (saved.size !== size || saved.dtype !== dtype) throw new Error(`optimizer state '${key}': expected 8-bit AdamW ${dtype} [${size}] for parameter ${p.describe()}, found ${saved.describe()}`);
    return E.keep(E.tensor(saved.toArray(), [size], { dtype, backend: p.backend }));
  }

  protected getParamState(p: Tensor): ParamState | null {
    const st = this.q.get(p);
    if (st) return { tensors: { m: st.m, m_absmax: st.mAbsmax, v: st.v, v_absmax: st.vAbsmax }, scalars: { step: this.steps.get(p) ?? 0 } };
    const m = this.m.get(p), v = this.v.get(p);
    if (!m || !v) return null;
    return { tensors: { m, v }, scalars: { step: this.steps.get(p) ?? 0 } };
  }

  protected setParamState(p: Tensor, s: ParamState, copy = false): void {
    if (this.isInt8(p)) {
      const t = s.tensors, step = s.scalars['step'];
      if (!t['m'] || !t['m_absmax'] || !t['v'] || !t['v_absmax'] || step === undefined || !Number.isInteger(step) || step < 0) {
        throw new Error(`optimizer state: parameter ${p.describe()} has incomplete 8-bit AdamW state (needs m, m_absmax, v, v_absmax and an integer step)`);
      }
      const slot = (k: string) => (copy ? this.adoptSlot(t[k]!, p, k, k) : t[k]!);
      const next: E.Int8AdamState = { m: slot('m'), mAbsmax: slot('m_absmax'), v: slot('v'), vAbsmax: slot('v_absmax') };
      const old = this.q.get(p);
      if (old) for (const k of ['m', 'mAbsmax', 'v', 'vAbsmax'] as const) if (old[k] !== next[k]) old[k].dispose();
      this.q.set(p, next);
      this.steps.set(p, step);
      return;
    }
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
    const st = this.q.get(p);
    if (st) for (const t of [st.m, st.mAbsmax, st.v, st.vAbsmax]) t.dispose();
    this.q.delete(p);
    this.m.get(p)?.dispose();
    this.v.get(p)?.dispose();
    this.m.delete(p);
    this.v.delete(p);
    this.steps.delete(p);
  }
}
