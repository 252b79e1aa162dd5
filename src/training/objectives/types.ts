/**
 * The objective seam is defined in src/framework/objective.ts (re-exported by
 * src/training/objective.ts); this file re-exports its types and adds validation helpers.
 *
 * Loss contract (what `preparedLoss` computes, and what a training loop should do):
 * - targets are aligned with the logits (no further shift); -100 = not scored;
 * - without `weights`: the mean cross-entropy over the scored positions;
 * - with `weights`: Σᵢ wᵢ·CEᵢ (crossEntropy reduction 'sum'): the weights carry the whole
 *   normalisation (zero where not scored). A loop that instead uses the weighted mean
 *   Σ wᵢ·CEᵢ / Σ wᵢ still gets a sensible loss, only without MDLM's absolute 1/r scale.
 */
import type { Objective, ObjectiveBatch, ObjectiveContext } from '../../framework/objective.js';

export { IGNORE_INDEX, type Objective, type ObjectiveName, type ObjectiveBatch, type ObjectiveContext, type PreparedBatch } from '../../framework/objective.js';

/** The Objective seam of framework/objective.ts (CLM, MLM and diffusion here all implement it). */
export type BatchObjective = Objective;

export class ObjectiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ObjectiveError';
  }
}

/** Validates a batch and its context; `who` names the objective in messages. */
export function checkBatch(who: string, batch: ObjectiveBatch, ctx: ObjectiveContext): void {
  const { ids, batch: B, seqLen: S, sampleIds } = batch;
  if (!Number.isInteger(B) || B < 1) throw new ObjectiveError(`${who}: batch must be a positive integer, found ${B}`);
  if (!Number.isInteger(S) || S < 1) throw new ObjectiveError(`${who}: seqLen must be a positive integer, found ${S}`);
  if (!(ids instanceof Int32Array)) throw new ObjectiveError(`${who}: ids must be an Int32Array`);
  if (ids.length !== B * S) throw new ObjectiveError(`${who}: ids has ${ids.length} entries, expected batch × seqLen = ${B} × ${S} = ${B * S}`);
  if (!Array.isArray(sampleIds) || sampleIds.length !== B) {
    throw new ObjectiveError(`${who}: sampleIds must list one id per row (${B}), found ${Array.isArray(sampleIds) ? sampleIds.length : typeof sampleIds}`);
  }
  sampleIds.forEach((s, b) => {
    if (!Number.isSafeInteger(s)) throw new ObjectiveError(`${who}: sampleIds[${b}] must be an integer, found ${s}`);
  });
  const V = ctx.vocabSize;
  if (!Number.isInteger(V) || V < 1) throw new ObjectiveError(`${who}: ctx.vocabSize must be a positive integer, found ${V}`);
  if (!Number.isSafeInteger(ctx.seed)) throw new ObjectiveError(`${who}: ctx.seed must be an integer, found ${ctx.seed}`);
  if (!Number.isSafeInteger(ctx.step) || ctx.step < 0) throw new ObjectiveError(`${who}: ctx.step must be a non-negative integer, found ${ctx.step}`);
  if (!(ctx.t >= 0 && ctx.t <= 1)) throw new ObjectiveError(`${who}: ctx.t must be in [0, 1], found ${ctx.t}`);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i]!;
    if (v < 0 || v >= V) {
      throw new ObjectiveError(`${who}: token id ${v} at row ${Math.floor(i / S)}, position ${i % S} is outside the vocabulary [0, ${V})`);
    }
  }
}

/** The [MASK] id from the objective's own option or the context; throws when neither has one. */
export function resolveMaskId(who: string, own: number | undefined, ctx: ObjectiveContext): number {
  const id = own ?? ctx.maskTokenId;
  if (id === undefined) throw new ObjectiveError(`${who}: no [MASK] token id (set the objective's maskTokenId or ctx.maskTokenId)`);
  if (!Number.isInteger(id) || id < 0 || id >= ctx.vocabSize) {
    throw new ObjectiveError(`${who}: mask token id ${id} is outside the vocabulary [0, ${ctx.vocabSize})`);
  }
  return id;
}
