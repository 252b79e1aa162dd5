/** Causal LM: the target at position i is the token at i + 1 (the last position is not scored). */
import { checkBatch, IGNORE_INDEX, type BatchObjective, type ObjectiveBatch, type ObjectiveContext, type PreparedBatch } from './types.js';

export interface ClmOptions {
  /** Targets equal to one of these ids (e.g. padding) are not scored. */
  ignoreIds?: number[];
}

export class CausalLMObjective implements BatchObjective {
  readonly name = 'clm' as const;
  private readonly ignore: Set<number>;

  constructor(opts: ClmOptions = {}) {
    this.ignore = new Set(opts.ignoreIds ?? []);
  }

  prepare(batch: ObjectiveBatch, ctx: ObjectiveContext): PreparedBatch {
    checkBatch('clm', batch, ctx);
    const { ids, batch: B, seqLen: S } = batch;
    const targets = new Int32Array(B * S).fill(IGNORE_INDEX);
    for (let b = 0; b < B; b++) {
      const o = b * S;
      for (let i = 0; i + 1 < S; i++) {
        const next = ids[o + i + 1]!;
        if (!this.ignore.has(next)) targets[o + i] = next;
      }
    }
    return { inputIds: ids.slice(), targets };
  }
}
