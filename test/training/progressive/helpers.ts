// Shared helpers for the progressive tests (not a test file itself).
import assert from 'node:assert/strict';
import * as E from '../../../src/engine/index.js';
import type { Tensor } from '../../../src/engine/index.js';
import { gpt2, llama, bert, type Model } from '../../../src/nn/index.js';

export const V = 40;

export function tinyLlama(stacks = 1, seed = 1, blocksPerStack = 1): Model {
  return llama({ vocabSize: V, dModel: 16, nLayers: stacks * blocksPerStack, nHeads: 2, nKvHeads: 1, dFF: 24, stacks, seed });
}

export function tinyGpt2(stacks = 1, seed = 1): Model {
  return gpt2({ vocabSize: V, dModel: 16, nLayers: stacks, nHeads: 2, maxPositions: 16, stacks, seed });
}

export function tinyBert(stacks = 1, seed = 1): Model {
  return bert({ vocabSize: V, dModel: 16, nLayers: stacks, nHeads: 2, dFF: 32, maxPositions: 16, stacks, seed });
}

export function idsOf(B: number, S: number, seed: number): Tensor {
  return E.randInt([B, S], V, { seed });
}

export function logitsOf(m: Model, ids: Tensor): Float32Array | Float64Array {
  return E.tidy(() => E.noGrad(() => m.forward(ids).logits.toArray())) as Float32Array;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function throwsWith(fn: () => unknown, ...res: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, 'expected an Error');
    for (const re of res) assert.match(e.message, re);
    return true;
  });
}

/** Makes every adapter non-trivial (B ≠ 0) so that folding/copying has something to carry. */
export function perturbAdapters(m: Model, seed: number): void {
  let i = 0;
  for (const [name, t] of m.namedParameters()) {
    if (!name.endsWith('lora_B')) continue;
    const r = E.randn(t.shape, { seed: seed + i++, std: 0.05, dtype: t.dtype });
    t.backend.upload(t.storage, r.toArray());
    r.dispose();
  }
}
