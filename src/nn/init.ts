/**
 * Seeded parameter initialisation. Every random tensor comes from an explicit seed; composite
 * modules derive their children's seeds from their own seed and the child's name, so the weights
 * depend only on (seed, position in the tree), never on construction order.
 */
import * as E from '../engine/index.js';
import type { Tensor, DType, Backend } from '../engine/index.js';

/** A 32-bit seed derived from a parent seed and a child name (FNV-1a over the name, mixed). */
export function deriveSeed(seed: number, name: string | number): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  const s = String(name);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (murmur3 fmix32) so nearby names give unrelated seeds.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** How a weight is initialised. */
export type InitSpec =
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; low: number; high: number }
  /** PyTorch's nn.Linear / PEFT lora_A default: kaiming_uniform(a=√5) → U(±1/√fan_in). */
  | { kind: 'kaimingUniform'; fanIn: number }
  | { kind: 'constant'; value: number };

export interface TensorPlacement {
  dtype?: DType;
  backend?: Backend | string;
}

let randomInitDisabled = 0;

/**
 * Runs `fn` with random initialisation replaced by zeros (constants stay): for building a model
 * whose every weight is about to be overwritten (loading a checkpoint), without the cost of
 * drawing random numbers.
 */
export function withoutRandomInit<T>(fn: () => T): T {
  randomInitDisabled++;
  try {
    return fn();
  } finally {
    randomInitDisabled--;
  }
}

let weightsDeferred = 0;
const PLACEHOLDER_SHAPE = new WeakMap<Tensor, readonly number[]>();

/**
 * Runs `fn` with every initialised tensor (`initTensor`: linear and embedding weights, linear
 * biases) replaced by an empty placeholder that remembers the shape it stands for: building a
 * model this way allocates none of those weights. A loader then puts each weight in place as it
 * reads it (`Module.replaceTensor`, or a quantized layer for a linear weight), so loading never
 * holds more than the model plus one tensor. Such a model must not run until every placeholder
 * is replaced (`placeholderShape` tells which are left).
 */
export function withoutWeights<T>(fn: () => T): T {
  weightsDeferred++;
  try {
    return fn();
  } finally {
    weightsDeferred--;
  }
}

/** The shape a placeholder made under `withoutWeights` stands for; undefined for a real tensor. */
export function placeholderShape(t: Tensor): readonly number[] | undefined {
  return PLACEHOLDER_SHAPE.get(t);
}

/** A fresh tensor initialised as `spec` says, from `seed`. */
export function initTensor(shape: readonly number[], spec: InitSpec, seed: number, place: TensorPlacement = {}): Tensor {
  const opts = { dtype: place.dtype ?? 'float32', backend: place.backend };
  if (weightsDeferred > 0) {
    const t = E.zeros([0], opts);
    PLACEHOLDER_SHAPE.set(t, [...shape]);
    return t;
  }
  if (randomInitDisabled > 0 && spec.kind !== 'constant') return E.zeros(shape, opts);
  switch (spec.kind) {
    case 'normal':
      return E.randn(shape, { ...opts, seed, std: spec.std, mean: spec.mean ?? 0 });
    case 'uniform':
      return E.randUniform(shape, { ...opts, seed, low: spec.low, high: spec.high });
    case 'kaimingUniform': {
      const bound = 1 / Math.sqrt(Math.max(1, spec.fanIn));
      return E.randUniform(shape, { ...opts, seed, low: -bound, high: bound });
    }
    case 'constant':
      return E.full(shape, spec.value, opts);
  }
}

/** Transformer default (GPT-2, BERT, LLaMA in Hugging Face): normal(0, 0.02). */
export const DEFAULT_INIT: InitSpec = { kind: 'normal', std: 0.02 };
