/** The loss of a prepared batch, by the contract of ./types.ts. */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { IGNORE_INDEX, ObjectiveError, type PreparedBatch } from './types.js';

/**
 * Cross-entropy of logits [B, S, V] against the prepared targets: the mean over scored positions,
 * or Σ wᵢ·CEᵢ when the batch carries weights.
 */
export function preparedLoss(logits: Tensor, prepared: Pick<PreparedBatch, 'targets' | 'weights'>): Tensor {
  if (logits.rank !== 3) throw new Error(`preparedLoss: logits must be [B, S, V], got ${logits.describe()}`);
  const [B, S] = logits.shape;
  if (prepared.targets.length !== B * S) throw new ObjectiveError(`preparedLoss: ${prepared.targets.length} targets for logits of ${B} × ${S} positions`);
  const targets = E.tensor(prepared.targets, [B, S], { dtype: 'int32', backend: logits.backend });
  if (!prepared.weights) return E.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX });
  if (prepared.weights.length !== B * S) throw new ObjectiveError(`preparedLoss: ${prepared.weights.length} weights for ${B} × ${S} positions`);
  const w = logits.dtype === 'float32' ? prepared.weights : Float64Array.from(prepared.weights);
  const weights = E.tensor(w, [B, S], { dtype: logits.dtype, backend: logits.backend });
  return E.crossEntropy(logits, targets, { ignoreIndex: IGNORE_INDEX, weights, reduction: 'sum' });
}
