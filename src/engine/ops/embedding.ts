/**
 * Embedding lookup: rows of weight [V, D] gathered by int32 ids of any shape. The gradient
 * w.r.t. weight is a deterministic scatter-add (each row's contributions are summed in
 * position order, with no races). Ids outside [0, V) are rejected by the kernels (both
 * backends) with an Error naming the op, the position and the value.
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';

declareNonDifferentiable(['embeddingGrad'], "backward kernel of 'embedding' (no double backward)");

/** weight [V, D], ids int32 [...] → [..., D]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  const op = 'embedding';
  if (weight.rank !== 2) throw new Error(`op '${op}': weight must be 2-D [V, D], got ${formatShape(weight.shape)}`);
  if (weight.dtype === 'int32') throw new Error(`op '${op}': weight must be a float tensor, got ${weight.describe()}`);
  if (ids.dtype !== 'int32') throw new Error(`op '${op}': ids must be int32, got ${ids.describe()}`);
  return runOp(op, [weight, ids], {})[0];
}

registerGradient('embedding', (dys, { inputs: [weight, ids] }) => {
  const dy = dys[0];
  if (!dy || !weight.requiresGrad) return [null, null];
  return [runOp('embeddingGrad', [ids, dy], { vocab: weight.shape[0] })[0], null];
});

export interface EmbeddingGradAttrs { vocab: number }
