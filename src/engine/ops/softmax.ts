/**
 * Softmax family, fused and numerically stable: softmax, logSoftmax (gradients as fused kernels
 * from the saved output) and crossEntropy (log-softmax + NLL in one pass saving the per-row
 * logsumexp; the backward computes (softmax − onehot)·wᵢ/denominator·dy directly).
 */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { reshape } from './shape-ops.js';
import { axisOf, visibleOutput } from './reduce.js';

declareNonDifferentiable(['softmaxGrad', 'crossEntropyGrad'], "backward kernels of 'softmax' / 'crossEntropy' (no double backward)");

export interface SoftmaxAttrs { axis: number; log: boolean }
/** `sum`: reduction 'sum' (else 'mean'); `weightGrad`: also compute the weights' gradient. */
export interface CrossEntropyAttrs { ignoreIndex: number; sum: boolean; weightGrad?: boolean }

function softmaxOp(x: Tensor, axis: number, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  if (x.dtype === 'int32') throw new Error(`op '${op}': expected a float tensor, got ${x.describe()}`);
  const a = axisOf(x, axis, op);
  return runOp<SoftmaxAttrs>('softmax', [x], { axis: a, log })[0];
}

/** exp(x − max) / Σ exp(x − max) along `axis` (default: the last). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp(x, axis, false);
}

/** x − logsumexp(x) along `axis` (default: the last). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp(x, axis, true);
}

registerGradient<SoftmaxAttrs>('softmax', (dys, { outputs: [y], attrs }) => [runOp<SoftmaxAttrs>('softmaxGrad', [y, dys[0]!], attrs)[0]]);

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (default -100, as in PyTorch). */
  ignoreIndex?: number;
  /** Per-token float weights, shaped like the targets. */
  weights?: Tensor | null;
  /** 'mean' (default): Σ wᵢ·nllᵢ / Σ wᵢ over non-ignored rows (0 when that sum is 0); 'sum': Σ wᵢ·nllᵢ. */
  reduction?: 'mean' | 'sum';
}

/**
 * Cross-entropy of `logits` [N, V] (or [B, S, V]) against int32 class ids `targets` [N] (or
 * [B, S]), as a scalar. Targets outside [0, V) other than ignoreIndex throw, naming the row.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = `op 'crossEntropy'`;
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const weights = opts.weights ?? null;
  if (logits.dtype === 'int32') throw new Error(`${op}: logits must be a float tensor, got ${logits.describe()}`);
  if (logits.rank !== 2 && logits.rank !== 3) throw new Error(`${op}: logits must be [N, V] or [B, S, V], got ${logits.describe()}`);
  const V = logits.shape[logits.rank - 1];
  const rowShape = logits.shape.slice(0, -1);
  if (V === 0) throw new Error(`${op}: logits ${formatShape(logits.shape)} have no classes`);
  if (targets.dtype !== 'int32') throw new Error(`${op}: targets must be int32 class ids, got ${targets.describe()}`);
  if (!sameShape(targets.shape, rowShape)) throw new Error(`${op}: targets ${formatShape(targets.shape)} must have shape ${formatShape(rowShape)} to match logits ${formatShape(logits.shape)}`);
  if (weights) {
    if (weights.dtype !== logits.dtype) throw new Error(`${op}: weights ${weights.describe()} must have the logits' dtype ${logits.dtype}`);
    if (!sameShape(weights.shape, rowShape)) throw new Error(`${op}: weights ${formatShape(weights.shape)} must have shape ${formatShape(rowShape)} (one per target)`);
  }
  if (reduction !== 'mean' && reduction !== 'sum') throw new Error(`${op}: reduction must be 'mean' or 'sum', got '${String(reduction)}'`);
  if (!Number.isInteger(ignoreIndex)) throw new Error(`${op}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  const N = targets.size;
  const l2 = logits.rank === 2 ? logits : reshape(logits, [N, V]);
  const t1 = targets.rank === 1 ? targets : reshape(targets, [N]);
  const w1 = !weights ? null : weights.rank === 1 ? weights : reshape(weights, [N]);
  return visibleOutput(runOp<CrossEntropyAttrs>('crossEntropy', w1 ? [l2, t1, w1] : [l2, t1], { ignoreIndex, sum: reduction === 'sum' }));
}

registerGradient<CrossEntropyAttrs>('crossEntropy', (dys, { inputs: [logits, targets, weights], outputs: [loss, lse], attrs }) => {
  const dy = dys[0];
  if (!dy) return weights ? [null, null, null] : [null, null];
  const weightGrad = !!weights && weights.requiresGrad;
  const ins = weights ? [logits, targets, lse, loss, dy, weights] : [logits, targets, lse, loss, dy];
  const outs = runOp<CrossEntropyAttrs>('crossEntropyGrad', ins, { ...attrs, weightGrad });
  const dLogits = logits.requiresGrad ? outs[0] : null;
  return weights ? [dLogits, null, weightGrad ? outs[1] : null] : [dLogits, null];
});
