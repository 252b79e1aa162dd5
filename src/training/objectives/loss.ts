/** The loss of a prepared batch, by the contract of ./types.ts. */
import * as E from '../../engine/index.js';
import type { Backend, DType, Tensor } from '../../engine/index.js';
import type { LossTargets } from '../../framework/index.js';
import { IGNORE_INDEX, ObjectiveError, type PreparedBatch } from './types.js';

/**
 * Cross-entropy of logits [B, S, V] against the prepared targets: the mean over scored positions,
 * or Σ wᵢ·CEᵢ when the batch carries weights.
 */
export function preparedLoss(logits: Tensor, prepared: Pick<PreparedBatch, 'targets' | 'weights'>): Tensor {
  if (logits.rank !== 3) throw new Error(`preparedLoss: logits must be [B, S, V], got ${logits.describe()}`);
  const [B, S] = logits.shape;
  const { targets, weights, reduction, ignoreIndex } = preparedTargets(prepared, B, S, logits.dtype, logits.backend);
  return E.crossEntropy(logits, targets, { ignoreIndex, weights, reduction });
}

/**
 * The prepared targets of a [B, S] batch as tensors, with the reduction preparedLoss uses: what
 * the fused loss (ModelAdapter.loss, E.linearCrossEntropy) scores without making logits.
 */
export function preparedTargets(prepared: Pick<PreparedBatch, 'targets' | 'weights'>, B: number, S: number, dtype: DType, backend: Backend): LossTargets {
  if (prepared.targets.length !== B * S) throw new ObjectiveError(`preparedLoss: ${prepared.targets.length} targets for logits of ${B} × ${S} positions`);
  const targets = E.tensor(prepared.targets, [B, S], { dtype: 'int32', backend });
  if (!prepared.weights) return { targets, weights: null, reduction: 'mean', ignoreIndex: IGNORE_INDEX };
  if (prepared.weights.length !== B * S) throw new ObjectiveError(`preparedLoss: ${prepared.weights.length} weights for ${B} × ${S} positions`);
  const w = dtype === 'float32' ? prepared.weights : Float64Array.from(prepared.weights);
  const weights = E.tensor(w, [B, S], { dtype, backend });
  return { targets, weights, reduction: 'sum', ignoreIndex: IGNORE_INDEX };
}
