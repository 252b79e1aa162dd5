/**
 * The `resources` record a progressive run writes to its metrics JSONL at every phase start: the
 * builder's ResourceReport (src/training/progressive/report.ts) for the phase, flattened to one
 * level of snake_case groups like the other records, plus a one-line human summary.
 *
 *   {kind: 'resources', step, t, phase, seq_len, optimizer, optimizer_state_slots, n_stacks, blocks,
 *    cached_prefix_stacks,
 *    params: {total, trainable, frozen, adapters, adapters_trainable},
 *    bytes: {weights, grads, optimizer_state, cached_activations_memory, cached_activations_disk, total},
 *    flops_per_token: {forward, backward, train, forward_cached, train_cached},
 *    per_stack: [{index, role, blocks, params, trainable, adapter_params, frozen, gate?, lora?}]}
 *
 * The per-stack list is `per_stack`, not `stacks`: readers take a `stacks` field for a stack-state
 * snapshot (the model events carry those).
 */
import { AdamW, SGD, type Optimizer } from '../../optim/index.js';
import type { OptimizerKind, ResourceReport } from './report.js';

export interface ResourceStackEntry {
  index: number;
  role: 'new' | 'trunk';
  blocks: number;
  params: number;
  trainable: number;
  adapter_params: number;
  frozen: boolean;
  /** Ramp gate of a ramped-in stack (0 → 1 over its interval). */
  gate?: number;
  /** Projections carrying LoRA adapters. */
  lora?: string[];
  /** The stack's attention when not standard softmax ('mla', 'linear:elu1', 'linear:favor'). */
  attention?: string;
}

export interface ResourceRecord {
  kind: 'resources';
  step: number;
  t: number;
  phase: string;
  seq_len: number;
  /** 'adamw', 'sgd', 'sgd-momentum', or the kind of another optimizer. */
  optimizer: string;
  /** Per-parameter state tensors the optimizer keeps (AdamW 2, SGD with momentum 1, plain SGD 0). */
  optimizer_state_slots: number;
  n_stacks: number;
  blocks: number;
  /** Leading stacks (with the embedding) served by the activation cache; 0 without one. */
  cached_prefix_stacks: number;
  params: { total: number; trainable: number; frozen: number; adapters: number; adapters_trainable: number };
  bytes: {
    weights: number;
    grads: number;
    optimizer_state: number;
    cached_activations_memory: number;
    cached_activations_disk: number;
    /** weights + grads + optimizer state + cached activations in memory. */
    total: number;
  };
  flops_per_token: { forward: number; backward: number; train: number; forward_cached: number; train_cached: number };
  per_stack: ResourceStackEntry[];
}

/** The optimizer's kind and its state slots per trainable element. */
export interface OptimizerStateKind {
  name: string;
  kind: OptimizerKind;
  slots: number;
  /** AdamW's optimizer.state_format: 'int8' holds eligible tensors' moments as 8-bit codes. */
  stateFormat?: 'fp32' | 'int8';
}

/**
 * A live optimizer's kind. An optimizer of another class is counted as AdamW-like (2 slots, an
 * upper bound for the usual first-order methods) and named by its `kind`.
 */
export function optimizerStateKindOf(optimizer: Optimizer): OptimizerStateKind {
  if (optimizer instanceof SGD) return optimizer.momentum > 0 ? { name: 'sgd-momentum', kind: 'sgd-momentum', slots: 1 } : { name: 'sgd', kind: 'sgd', slots: 0 };
  if (optimizer instanceof AdamW) return { name: optimizer.stateFormat === 'int8' ? 'adamw-int8' : 'adamw', kind: 'adamw', slots: 2, stateFormat: optimizer.stateFormat };
  return { name: optimizer.kind, kind: { stateSlots: 2 }, slots: 2 };
}

/** The kind an optimizer plane of the config builds (type + momentum). */
export function optimizerStateKindOfPlane(plane: { type: string; momentum?: number; state_format?: 'fp32' | 'int8' }): OptimizerStateKind {
  if (plane.type === 'sgd') return (plane.momentum ?? 0) > 0 ? { name: 'sgd-momentum', kind: 'sgd-momentum', slots: 1 } : { name: 'sgd', kind: 'sgd', slots: 0 };
  if (plane.type === 'adamw') return plane.state_format === 'int8' ? { name: 'adamw-int8', kind: 'adamw', slots: 2, stateFormat: 'int8' } : { name: 'adamw', kind: 'adamw', slots: 2, stateFormat: 'fp32' };
  return { name: plane.type, kind: { stateSlots: 2 }, slots: 2 };
}

export interface ResourceRecordContext {
  step: number;
  t: number;
  phase: string;
  seqLen: number;
  optimizer: OptimizerStateKind;
  /** Leading stacks served by the activation cache (0 without one). */
  cachedPrefixStacks: number;
}

/** The flat metrics record of a phase's ResourceReport. */
export function resourceRecord(r: ResourceReport, ctx: ResourceRecordContext): ResourceRecord {
  return {
    kind: 'resources',
    step: ctx.step,
    t: ctx.t,
    phase: ctx.phase,
    seq_len: ctx.seqLen,
    optimizer: ctx.optimizer.name,
    optimizer_state_slots: ctx.optimizer.slots,
    n_stacks: r.stacks,
    blocks: r.blocks,
    cached_prefix_stacks: ctx.cachedPrefixStacks,
    params: { total: r.params.total, trainable: r.params.trainable, frozen: r.params.frozen, adapters: r.params.adapters, adapters_trainable: r.params.adaptersTrainable },
    bytes: {
      weights: r.bytes.weights,
      grads: r.bytes.grads,
      optimizer_state: r.bytes.optimizerState,
      cached_activations_memory: r.bytes.cachedActivations.memory,
      cached_activations_disk: r.bytes.cachedActivations.disk,
      total: r.bytes.total,
    },
    flops_per_token: {
      forward: r.flopsPerToken.forward,
      backward: r.flopsPerToken.backward,
      train: r.flopsPerToken.train,
      forward_cached: r.flopsPerToken.forwardCached,
      train_cached: r.flopsPerToken.trainCached,
    },
    per_stack: r.perStack.map((s) => {
      const e: ResourceStackEntry = { index: s.index, role: s.role, blocks: s.blocks, params: s.params, trainable: s.trainable, adapter_params: s.adapterParams, frozen: s.frozen };
      if (s.ramp) e.gate = s.ramp.gate;
      if (s.lora) e.lora = [...s.lora];
      if (s.attention) e.attention = s.attention;
      return e;
    }),
  };
}

function count(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function megabytes(n: number): string {
  const mb = n / 1e6;
  return `${mb >= 100 ? mb.toFixed(0) : mb >= 1 ? mb.toFixed(1) : mb.toFixed(3)} MB`;
}

/** Parameters, memory and training FLOPs per token, in a few words (no phase, no stack count). */
export function resourceSummary(r: ResourceRecord): string {
  const cache = r.cached_prefix_stacks > 0
    ? `, cached activations ${megabytes(r.bytes.cached_activations_memory)} (+${megabytes(r.bytes.cached_activations_disk)} disk)`
    : '';
  const cachedFlops = r.cached_prefix_stacks > 0 ? ` (${count(r.flops_per_token.train_cached)} with the cached prefix of ${r.cached_prefix_stacks} stack(s))` : '';
  return `params ${count(r.params.trainable)} trainable / ${count(r.params.frozen)} frozen / ${count(r.params.adapters)} adapter; `
    + `weights ${megabytes(r.bytes.weights)}, grads ${megabytes(r.bytes.grads)}, ${r.optimizer} state ${megabytes(r.bytes.optimizer_state)}${cache}; `
    + `train ${count(r.flops_per_token.train)} FLOP/token${cachedFlops}`;
}

/** One short line for a log: the phase, its stacks and resourceSummary. */
export function resourceLine(r: ResourceRecord): string {
  const kinds = [...new Set(r.per_stack.map((s) => s.attention).filter((a) => a !== undefined))];
  return `phase '${r.phase}' resources: ${r.n_stacks} stack(s)${kinds.length ? ` (${kinds.join(', ')} attention)` : ''}; ${resourceSummary(r)}`;
}
