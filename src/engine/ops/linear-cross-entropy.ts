/**
 * Fused linear + cross-entropy (as Liger-Kernel's FusedLinearCrossEntropy or Apple's
 * cut-cross-entropy): loss = CE(hidden · Wᵀ + b, targets) computed over chunks of rows, so that
 * the [N, V] logits and their gradient never exist in full — only one [chunk, V] block at a time.
 *
 * The loss is the final scalar of a training step, so the kernel computes the gradients for an
 * upstream gradient of 1 during the forward pass, chunk by chunk (dlogits = (softmax − onehot) ·
 * wᵢ/denominator, dh = dlogits·W, dW += dlogitsᵀ·h, db += Σ dlogits, accumulated in a fixed
 * order so they are deterministic) and keeps them as auxiliary outputs; the backward only scales
 * them by dy. Only the gradients of inputs that require one under a recording tape are computed;
 * without a tape (noGrad, or nothing requires a gradient) only the loss is.
 */
import { isGradEnabled } from '../autograd.js';
import { registerGradient } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape, sameShape } from '../shape.js';
import { allocTensor, type Tensor } from '../tensor.js';
import type { Backend } from '../backend.js';
import { mul } from './binary.js';
import { reshape } from './shape-ops.js';
import { visibleOutput } from './reduce.js';
import type { CrossEntropyOptions } from './softmax.js';

export interface LinearCrossEntropyOptions extends CrossEntropyOptions {
  /** Bias [V] added to every row of logits (the Linear layout's bias). */
  bias?: Tensor | null;
  /**
   * Rows of logits computed at once (default: as many as fit DEFAULT_CHUNK_ELEMENTS logits).
   * Smaller chunks use less memory; the result does not depend on it beyond float rounding.
   */
  chunkSize?: number;
}

/**
 * Inputs: [hidden [N, d], weight [V, d], targets [N], bias [V]?, weights [N]?]. Outputs: [loss,
 * then for dy = 1, in this order and only when asked: dHidden [N, d], dWeight [V, d], dBias [V],
 * dWeights [N]].
 */
export interface LinearCrossEntropyAttrs {
  ignoreIndex: number;
  /** reduction 'sum' (else 'mean'). */
  sum: boolean;
  chunkSize: number;
  hasBias: boolean;
  hasWeights: boolean;
  gradHidden: boolean;
  gradWeight: boolean;
  gradBias: boolean;
  gradWeights: boolean;
}

/** @internal A kernel's inputs unpacked and its outputs allocated, the same on every backend. */
export interface LinearCrossEntropyBuffers {
  hidden: Tensor; weight: Tensor; targets: Tensor; bias: Tensor | null; weights: Tensor | null;
  N: number; d: number; V: number;
  loss: Tensor; dHidden: Tensor | null; dWeight: Tensor | null; dBias: Tensor | null; dWeights: Tensor | null;
  /** [loss, then the gradients asked for, in the order dHidden, dWeight, dBias, dWeights]. */
  outputs: Tensor[];
}

/** @internal */
export function linearCrossEntropyBuffers(inputs: Tensor[], attrs: LinearCrossEntropyAttrs, be: Backend): LinearCrossEntropyBuffers {
  const [hidden, weight, targets] = inputs as [Tensor, Tensor, Tensor];
  const bias = attrs.hasBias ? inputs[3]! : null;
  const weights = attrs.hasWeights ? inputs[attrs.hasBias ? 4 : 3]! : null;
  const [N, d] = hidden.shape as [number, number];
  const V = weight.shape[0]!;
  const dtype = hidden.dtype;
  const loss = allocTensor(be, [], dtype);
  const dHidden = attrs.gradHidden ? allocTensor(be, [N, d], dtype) : null;
  const dWeight = attrs.gradWeight ? allocTensor(be, [V, d], dtype) : null;
  const dBias = attrs.gradBias ? allocTensor(be, [V], dtype) : null;
  const dWeights = attrs.gradWeights ? allocTensor(be, [N], dtype) : null;
  const outputs = [loss, ...[dHidden, dWeight, dBias, dWeights].filter((t): t is Tensor => t !== null)];
  return { hidden, weight, targets, bias, weights, N, d, V, loss, dHidden, dWeight, dBias, dWeights, outputs };
}

/** Default logits per chunk (4 MiB of float32): V = 4096 → 256 rows. */
export const DEFAULT_CHUNK_ELEMENTS = 1 << 20;
/**
 * Fewest rows per chunk: every chunk reads and writes the whole [V, d] weight gradient once
 * (dW += dlogitsᵀ·h is a GEMM with K = rows) and runs a GEMM only `rows` tall, so chunks of 32
 * rows at V = 32000 made the fused head + loss take 1.7× as long as chunks of 128 (measured at
 * N 512, d 768: 765 → 470 ms). 128 rows of logits are 16 MiB at V = 32000.
 */
export const MIN_CHUNK_ROWS = 128;

/** The chunk size the kernels use for N rows of V classes (at least 1 row, at most N). */
export function defaultChunkSize(N: number, V: number): number {
  const rows = Math.max(MIN_CHUNK_ROWS, Math.floor(DEFAULT_CHUNK_ELEMENTS / Math.max(1, V)));
  return Math.max(1, Math.min(N, rows));
}

/**
 * Cross-entropy of hidden · weightᵀ (+ bias) against int32 class ids, as a scalar, without
 * materialising the logits. hidden: [N, d] or [B, S, d]; weight: [V, d] (the Linear layout);
 * targets: int32 shaped like hidden without its last dimension. Options and reductions as
 * `crossEntropy`: ignoreIndex (default -100), per-token `weights`, 'mean' (Σ wᵢ·nllᵢ / Σ wᵢ over
 * non-ignored rows, 0 when that sum is 0) or 'sum'. Targets outside [0, V) other than
 * ignoreIndex throw, naming the row.
 */
export function linearCrossEntropy(hidden: Tensor, weight: Tensor, targets: Tensor, opts: LinearCrossEntropyOptions = {}): Tensor {
  const op = `op 'linearCrossEntropy'`;
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const weights = opts.weights ?? null;
  const bias = opts.bias ?? null;
  if (hidden.dtype === 'int32') throw new Error(`${op}: hidden must be a float tensor, got ${hidden.describe()}`);
  if (hidden.rank !== 2 && hidden.rank !== 3) throw new Error(`${op}: hidden must be [N, d] or [B, S, d], got ${hidden.describe()}`);
  const d = hidden.shape[hidden.rank - 1];
  const rowShape = hidden.shape.slice(0, -1);
  if (weight.dtype !== hidden.dtype) throw new Error(`${op}: weight ${weight.describe()} must have the hidden state's dtype ${hidden.dtype}`);
  if (weight.rank !== 2 || weight.shape[1] !== d) throw new Error(`${op}: weight must be [V, ${d}] (the Linear layout [out, in]) to match hidden ${formatShape(hidden.shape)}, got ${formatShape(weight.shape)}`);
  const V = weight.shape[0];
  if (V === 0) throw new Error(`${op}: weight ${formatShape(weight.shape)} has no classes`);
  if (bias) {
    if (bias.dtype !== hidden.dtype) throw new Error(`${op}: bias ${bias.describe()} must have the hidden state's dtype ${hidden.dtype}`);
    if (bias.rank !== 1 || bias.shape[0] !== V) throw new Error(`${op}: bias must be [${V}] (one per class of weight ${formatShape(weight.shape)}), got ${formatShape(bias.shape)}`);
  }
  if (targets.dtype !== 'int32') throw new Error(`${op}: targets must be int32 class ids, got ${targets.describe()}`);
  if (!sameShape(targets.shape, rowShape)) throw new Error(`${op}: targets ${formatShape(targets.shape)} must have shape ${formatShape(rowShape)} to match hidden ${formatShape(hidden.shape)}`);
  if (weights) {
    if (weights.dtype !== hidden.dtype) throw new Error(`${op}: weights ${weights.describe()} must have the hidden state's dtype ${hidden.dtype}`);
    if (!sameShape(weights.shape, rowShape)) throw new Error(`${op}: weights ${formatShape(weights.shape)} must have shape ${formatShape(rowShape)} (one per target)`);
  }
  if (reduction !== 'mean' && reduction !== 'sum') throw new Error(`${op}: reduction must be 'mean' or 'sum', got '${String(reduction)}'`);
  if (!Number.isInteger(ignoreIndex)) throw new Error(`${op}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  const N = targets.size;
  if (opts.chunkSize !== undefined && !(Number.isInteger(opts.chunkSize) && opts.chunkSize >= 1)) {
    throw new Error(`${op}: chunkSize must be a positive integer (rows of logits per chunk), got ${opts.chunkSize}`);
  }
  const chunkSize = Math.min(Math.max(1, N), opts.chunkSize ?? defaultChunkSize(N, V));
  const h2 = hidden.rank === 2 ? hidden : reshape(hidden, [N, d]);
  const t1 = targets.rank === 1 ? targets : reshape(targets, [N]);
  const w1 = !weights ? null : weights.rank === 1 ? weights : reshape(weights, [N]);
  const tape = isGradEnabled();
  const attrs: LinearCrossEntropyAttrs = {
    ignoreIndex,
    sum: reduction === 'sum',
    chunkSize,
    hasBias: !!bias,
    hasWeights: !!w1,
    gradHidden: tape && hidden.requiresGrad,
    gradWeight: tape && weight.requiresGrad,
    gradBias: tape && !!bias && bias.requiresGrad,
    gradWeights: tape && !!w1 && w1.requiresGrad,
  };
  const inputs = [h2, weight, t1];
  if (bias) inputs.push(bias);
  if (w1) inputs.push(w1);
  return visibleOutput(runOp<LinearCrossEntropyAttrs>('linearCrossEntropy', inputs, attrs));
}

registerGradient<LinearCrossEntropyAttrs>('linearCrossEntropy', (dys, { inputs, outputs, attrs }) => {
  const dy = dys[0];
  const grads: (Tensor | null)[] = inputs.map(() => null);
  if (!dy) return grads;
  // The saved gradients are for dy = 1; outputs[1..] hold them in the attrs' order.
  let next = 1;
  const scaled = (): Tensor => mul(outputs[next++], dy);
  const biasAt = 3, weightsAt = attrs.hasBias ? 4 : 3;
  if (attrs.gradHidden) grads[0] = scaled();
  if (attrs.gradWeight) grads[1] = scaled();
  if (attrs.gradBias) grads[biasAt] = scaled();
  if (attrs.gradWeights) grads[weightsAt] = scaled();
  return grads;
});
