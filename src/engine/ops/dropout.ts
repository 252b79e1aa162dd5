/**
 * Inverted dropout with a counter-based mask: element i is kept when
 * hash(seed, i) >= floor(p · 2³²), and kept values are scaled by 1 / (1 − p). The hash (below,
 * and identically in native/src/dropout.cc) depends only on the seed and the flat element
 * index, so both backends produce the same mask bit for bit whatever the thread count, and the
 * backward regenerates the mask from the seed instead of saving it.
 */
import { registerGradient } from '../registry.js';
import { runOp } from '../run-op.js';
import type { Tensor } from '../tensor.js';

export interface DropoutOptions {
  /** Probability of dropping an element, in [0, 1). */
  p: number;
  /** Integer seed of the mask (use a fresh one per step and per call site). */
  seed: number;
  /** false → identity (default true). */
  training?: boolean;
}

export interface DropoutAttrs {
  /** Keep element i iff its hash >= threshold (= floor(p · 2³²)). */
  threshold: number;
  /** 1 / (1 − p). */
  scale: number;
  /** 32-bit keys derived from the seed. */
  key1: number;
  key2: number;
}

const GOLDEN = 0x9e3779b9;

/** 32-bit integer finaliser (Wellons' lowbias32), unsigned result. */
export function dropoutMix32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The two 32-bit keys of a seed (its low and high words mixed). */
export function dropoutKeys(seed: number): [number, number] {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const key1 = dropoutMix32(lo ^ GOLDEN);
  const key2 = dropoutMix32((hi ^ dropoutMix32((lo + 0x632be5ab) >>> 0)) >>> 0);
  return [key1, key2];
}

/** The 32 random bits of element `index` (same function as the native kernel). */
export function dropoutBits(key1: number, key2: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4294967296);
  const hiTerm = (key2 + Math.imul(hi, GOLDEN)) >>> 0;
  return dropoutMix32((dropoutMix32((lo ^ key1) >>> 0) ^ hiTerm) >>> 0);
}

/** Dropout of x; returns x itself when p = 0 or training is false. */
export function dropout(x: Tensor, opts: DropoutOptions): Tensor {
  const op = 'dropout';
  const { p, seed } = opts;
  const training = opts.training ?? true;
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new Error(`op '${op}': p must be a number in [0, 1), got ${p}`);
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new Error(`op '${op}': seed must be an integer, got ${seed}`);
  if (x.dtype === 'int32') throw new Error(`op '${op}': expected a float tensor, got ${x.describe()}`);
  if (!training || p === 0) return x;
  const [key1, key2] = dropoutKeys(seed);
  const attrs: DropoutAttrs = { threshold: Math.floor(p * 4294967296), scale: 1 / (1 - p), key1, key2 };
  return runOp<DropoutAttrs>(op, [x], attrs)[0];
}

// The mask is regenerated from the keys: dx = dy · mask · scale, the very same kernel.
registerGradient<DropoutAttrs>('dropout', (dys, { attrs }) => [dys[0] ? runOp<DropoutAttrs>('dropout', [dys[0]], attrs)[0] : null]);
