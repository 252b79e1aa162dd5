/** Helpers shared by the samplers: eval mode without gradients, logits rows. */
import * as E from '../../engine/index.js';
import type { Model, Module } from '../../nn/index.js';

/** Runs `fn` with the model in eval mode (no dropout) and no gradients; restores the modes. */
export function inference<T>(model: Module, fn: () => T): T {
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    return E.noGrad(fn);
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
}

/**
 * logits [B, S, V] of `ids` ([B, S] row-major) as one flat array; `timeRatios` (one per row) for
 * a model with a time embedding.
 */
export function logitsFor(model: Model, ids: Int32Array, B: number, S: number, timeRatios?: ArrayLike<number>): Float32Array | Float64Array {
  return E.tidy(() => {
    const x = E.tensor(ids, [B, S], { dtype: 'int32', backend: model.backend });
    return model.forward(x, timeRatios ? { timeRatios } : {}).logits.toArray() as Float32Array;
  });
}

/**
 * Time-as-input: the noise ratio of each row of `ids` ([B, S] row-major) as the samplers give it
 * to a model with a time embedding, its masked share (masked positions / S); undefined for a
 * model without one (which takes no ratios).
 */
export function maskedShares(model: Model, ids: Int32Array, B: number, S: number, maskTokenId: number): number[] | undefined {
  if (!model.timeEmbedding) return undefined;
  return Array.from({ length: B }, (_, b) => {
    let n = 0;
    for (let i = b * S; i < (b + 1) * S; i++) if (ids[i] === maskTokenId) n++;
    return n / S;
  });
}

/** The logits row of position i of row b in a flat [B, S, V] array. */
export function row(logits: Float32Array | Float64Array, b: number, i: number, S: number, Vn: number): Float32Array | Float64Array {
  return logits.subarray((b * S + i) * Vn, (b * S + i + 1) * Vn);
}

export function checkIds(ids: ArrayLike<number>, vocab: number, who: string): void {
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new Error(`${who}: token id ${v} at position ${i} is outside the vocabulary [0, ${vocab})`);
  }
}

