/** Matrix products: batched matmul with transposes, and the fused Linear (x·Wᵀ + b). */
import { registerGradient } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { reshape, sumToShape } from './shape-ops.js';

export interface MatmulAttrs { transA: boolean; transB: boolean }

/**
 * op(a) · op(b) over the last two dimensions. a: [..., M, K] (or [..., K, M] with transA),
 * b: [..., K, N] (or [..., N, K] with transB). b may be 2-D and shared by every batch entry of a;
 * otherwise the batch dimensions must be equal.
 */
export function matmul(a: Tensor, b: Tensor, opts: Partial<MatmulAttrs> = {}): Tensor {
  const attrs: MatmulAttrs = { transA: opts.transA ?? false, transB: opts.transB ?? false };
  matmulShape(a.shape, b.shape, attrs);
  if (a.dtype !== b.dtype || a.dtype === 'int32') throw new Error(`op 'matmul': expected float tensors of one dtype, got ${a.describe()} and ${b.describe()}`);
  return runOp<MatmulAttrs>('matmul', [a, b], attrs)[0];
}

/** Output shape of a matmul plus the GEMM sizes; throws naming both shapes on mismatch. */
export function matmulShape(as: readonly number[], bs: readonly number[], { transA, transB }: MatmulAttrs) {
  const bad = (why: string) => new Error(`op 'matmul': ${why} (a ${formatShape(as)}${transA ? 'ᵀ' : ''}, b ${formatShape(bs)}${transB ? 'ᵀ' : ''})`);
  if (as.length < 2 || bs.length < 2) throw bad('both operands need at least 2 dimensions');
  const M = transA ? as[as.length - 1] : as[as.length - 2];
  const K = transA ? as[as.length - 2] : as[as.length - 1];
  const Kb = transB ? bs[bs.length - 1] : bs[bs.length - 2];
  const N = transB ? bs[bs.length - 2] : bs[bs.length - 1];
  if (K !== Kb) throw bad(`inner dimensions differ: ${K} vs ${Kb}`);
  const batchA = as.slice(0, -2), batchB = bs.slice(0, -2);
  if (batchB.length > 0 && !sameShape(batchA, batchB)) throw bad('batch dimensions must match, or b must be 2-D');
  const batch = batchA.reduce((x, y) => x * y, 1);
  return { M, N, K, batch, sharedB: batchB.length === 0, outShape: [...batchA, M, N] };
}

registerGradient<MatmulAttrs>('matmul', (dys, { inputs: [a, b], attrs: { transA: tA, transB: tB } }) => {
  const dC = dys[0]!;
  const dA = tA ? matmul(b, dC, { transA: tB, transB: true }) : matmul(dC, b, { transB: !tB });
  let dB: Tensor;
  if (b.rank === 2 && a.rank > 2 && !tA) {
    // Shared weight: fold the batch into M so one GEMM sums over it.
    const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
    const dC2 = reshape(dC, [-1, dC.shape[dC.rank - 1]]);
    dB = tB ? matmul(dC2, a2, { transA: true }) : matmul(a2, dC2, { transA: true });
  } else {
    const full = tB ? matmul(dC, a, { transA: true, transB: tA }) : matmul(a, dC, { transA: !tA });
    dB = sumToShape(full, b.shape);
  }
  return [dA, dB];
});

/** y = x · Wᵀ + b with W: [out, in] (the PyTorch / Hugging Face layout), x: [..., in]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.rank !== 2) throw new Error(`op 'linear': weight must be 2-D [out, in], got ${weight.describe()}`);
  const [outF, inF] = weight.shape;
  if (x.rank < 1 || x.shape[x.rank - 1] !== inF) throw new Error(`op 'linear': input ${formatShape(x.shape)} does not end in ${inF} (weight ${formatShape(weight.shape)})`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outF)) throw new Error(`op 'linear': bias ${formatShape(bias.shape)} must be [${outF}]`);
  if (x.dtype !== weight.dtype || (bias && bias.dtype !== x.dtype) || x.dtype === 'int32') throw new Error(`op 'linear': expected float tensors of one dtype, got ${x.describe()}, ${weight.describe()}`);
  return runOp('linear', bias ? [x, weight, bias] : [x, weight], {})[0];
}

registerGradient('linear', (dys, { inputs: [x, w, bias] }) => {
  const dy = dys[0]!;
  const outF = w.shape[0], inF = w.shape[1];
  const dy2 = reshape(dy, [-1, outF]);
  const x2 = reshape(x, [-1, inF]);
  const dx = x.requiresGrad ? reshape(matmul(dy2, w), x.shape) : null;
  const dw = w.requiresGrad ? matmul(dy2, x2, { transA: true }) : null;
  const db = bias && bias.requiresGrad ? sumToShape(dy2, [outF]) : null;
  return bias ? [dx, dw, db] : [dx, dw];
});
