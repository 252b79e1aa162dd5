/**
 * Optimizer kernels: in-place, fused parameter updates (AdamW, SGD with momentum) and the
 * gradient-norm helpers used for clipping. No autograd: they run under noGrad and mutate the
 * storage of their tensor arguments (views sharing that storage see the change).
 */
import { noGrad } from '../autograd.js';
import { registerInPlaceOp, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';

declareNonDifferentiable(['adamwUpdate', 'adamwUpdateGroup', 'sgdUpdate', 'scaleInPlace'], 'optimizer update, written in place; never on a gradient tape');
declareNonDifferentiable(['sumOfSquares'], 'gradient-norm statistic for clipping; computed on gradients, never differentiated');

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step number (for the bias corrections). */
  step: number;
}

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  /** First step for this parameter: the momentum buffer is set to the gradient (PyTorch). */
  firstStep?: boolean;
}

/** Kernel attrs of 'adamwUpdate': the options plus the precomputed bias corrections. */
export interface AdamWAttrs extends AdamWOptions { biasCorrection1: number; biasCorrection2: number }
export type SgdAttrs = Required<SgdOptions>;
/** Kernel attrs of 'adamwUpdateGroup': shared options and one bias-correction pair per parameter
 * (parameters that joined later have their own step count). Inputs: [p, g, m, v] per parameter. */
export interface AdamWGroupAttrs { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; biasCorrection1: number[]; biasCorrection2: number[] }
export interface ScaleAttrs { scale: number }
/** The kernel of 'sumOfSquares' returns no tensor; it writes the (float64) result here. */
export interface SumOfSquaresAttrs { result: number }

// What each kernel writes into (runOp then bumps those inputs' write versions).
registerInPlaceOp('adamwUpdate', [0, 2, 3]);  // param, m, v (not grad)
registerInPlaceOp('sgdUpdate', [0, 2]);       // param, momentum buffer when given (not grad)
registerInPlaceOp('scaleInPlace', [0]);
registerInPlaceOp('adamwUpdateGroup', [0, 2, 3], 4);  // per parameter record [p, g, m, v]: p, m, v

function checkFloat(op: string, what: string, t: Tensor): void {
  if (t.dtype === 'int32') throw new Error(`op '${op}': ${what} must be a float tensor, got ${t.describe()}`);
}

function checkLike(op: string, param: Tensor, what: string, t: Tensor): void {
  if (!sameShape(t.shape, param.shape) || t.dtype !== param.dtype) {
    throw new Error(`op '${op}': ${what} ${t.describe()} does not match param ${param.describe()} (same shape and dtype expected)`);
  }
  if (t.backend !== param.backend) throw new Error(`op '${op}': ${what} ${t.describe()} lives on backend '${t.backend.name}', param ${param.describe()} on '${param.backend.name}'`);
}

function checkNumber(op: string, name: string, v: unknown, ok: (x: number) => boolean, expected: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`op '${op}': ${name} must be ${expected}, got ${String(v)}`);
}

/**
 * One AdamW step in place (PyTorch semantics): p ← p·(1 − lr·wd); m ← β1·m + (1 − β1)·g;
 * v ← β2·v + (1 − β2)·g²; p ← p − lr/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + eps), t = `step` (1-based).
 */
export function adamwUpdate(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void {
  const op = 'adamwUpdate';
  checkFloat(op, 'param', param);
  checkLike(op, param, 'grad', grad);
  checkLike(op, param, 'm (first moment)', m);
  checkLike(op, param, 'v (second moment)', v);
  const { lr, beta1, beta2, eps, weightDecay, step } = opts;
  checkNumber(op, 'lr', lr, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'beta1', beta1, (x) => x >= 0 && x < 1, 'in [0, 1)');
  checkNumber(op, 'beta2', beta2, (x) => x >= 0 && x < 1, 'in [0, 1)');
  checkNumber(op, 'eps', eps, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'weightDecay', weightDecay, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'step', step, (x) => Number.isInteger(x) && x >= 1, 'an integer >= 1 (steps are 1-based)');
  const attrs: AdamWAttrs = {
    lr, beta1, beta2, eps, weightDecay, step,
    biasCorrection1: 1 - Math.pow(beta1, step),
    biasCorrection2: 1 - Math.pow(beta2, step),
  };
  noGrad(() => runOp<AdamWAttrs>('adamwUpdate', [param, grad, m, v], attrs));
}

/** One parameter of an AdamW group update: its gradient, moments and 1-based step. */
export interface AdamWGroupEntry { param: Tensor; grad: Tensor; m: Tensor; v: Tensor; step: number }

/**
 * One AdamW step over every parameter of a group at once (same lr, betas, eps, weight decay;
 * each its own step count): the same arithmetic as `adamwUpdate` per parameter, in one kernel
 * call and one parallel region over all of them instead of one per parameter.
 */
export function adamwUpdateGroup(entries: AdamWGroupEntry[], opts: Omit<AdamWOptions, 'step'>): void {
  const op = 'adamwUpdateGroup';
  const { lr, beta1, beta2, eps, weightDecay } = opts;
  checkNumber(op, 'lr', lr, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'beta1', beta1, (x) => x >= 0 && x < 1, 'in [0, 1)');
  checkNumber(op, 'beta2', beta2, (x) => x >= 0 && x < 1, 'in [0, 1)');
  checkNumber(op, 'eps', eps, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'weightDecay', weightDecay, (x) => x >= 0, 'a finite number >= 0');
  if (entries.length === 0) return;
  const inputs: Tensor[] = [];
  const attrs: AdamWGroupAttrs = { lr, beta1, beta2, eps, weightDecay, biasCorrection1: [], biasCorrection2: [] };
  for (const { param, grad, m, v, step } of entries) {
    checkFloat(op, 'param', param);
    checkLike(op, param, 'grad', grad);
    checkLike(op, param, 'm (first moment)', m);
    checkLike(op, param, 'v (second moment)', v);
    checkNumber(op, 'step', step, (x) => Number.isInteger(x) && x >= 1, 'an integer >= 1 (steps are 1-based)');
    inputs.push(param, grad, m, v);
    attrs.biasCorrection1.push(1 - Math.pow(beta1, step));
    attrs.biasCorrection2.push(1 - Math.pow(beta2, step));
  }
  noGrad(() => runOp<AdamWGroupAttrs>(op, inputs, attrs));
}

/**
 * One SGD step in place (PyTorch semantics): g ← g + wd·p; with momentum μ > 0:
 * buf ← g on the first step, else buf ← μ·buf + (1 − dampening)·g; g ← g + μ·buf (Nesterov) or
 * buf; then p ← p − lr·g. `grad` is not modified. `momentumBuf` is required when μ > 0.
 * `firstStep` may be given in the options or as the last argument.
 */
export function sgdUpdate(param: Tensor, grad: Tensor, momentumBuf: Tensor | null, opts: SgdOptions, firstStep?: boolean): void {
  const op = 'sgdUpdate';
  checkFloat(op, 'param', param);
  checkLike(op, param, 'grad', grad);
  const { lr, momentum, dampening, nesterov, weightDecay } = opts;
  checkNumber(op, 'lr', lr, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'momentum', momentum, (x) => x >= 0, 'a finite number >= 0');
  checkNumber(op, 'dampening', dampening, () => true, 'a finite number');
  checkNumber(op, 'weightDecay', weightDecay, (x) => x >= 0, 'a finite number >= 0');
  if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error(`op '${op}': Nesterov momentum requires momentum > 0 and dampening 0 (got momentum ${momentum}, dampening ${dampening})`);
  if (momentum > 0) {
    if (!momentumBuf) throw new Error(`op '${op}': momentum ${momentum} needs a momentum buffer shaped like param ${param.describe()}, got null`);
    checkLike(op, param, 'momentumBuf', momentumBuf);
  }
  const attrs: SgdAttrs = { lr, momentum, dampening, nesterov: !!nesterov, weightDecay, firstStep: !!(opts.firstStep ?? firstStep ?? false) };
  const inputs = momentum > 0 ? [param, grad, momentumBuf!] : [param, grad];
  noGrad(() => runOp<SgdAttrs>('sgdUpdate', inputs, attrs));
}

/** Σ t², accumulated in float64 in a fixed order (deterministic across thread counts). */
export function sumOfSquares(t: Tensor): number {
  checkFloat('sumOfSquares', 'the tensor', t);
  const attrs: SumOfSquaresAttrs = { result: Number.NaN };
  noGrad(() => runOp<SumOfSquaresAttrs>('sumOfSquares', [t], attrs));
  return attrs.result;
}

/** t ← t·s in place. */
export function scaleInPlace(t: Tensor, s: number): void {
  checkFloat('scaleInPlace', 'the tensor', t);
  checkNumber('scaleInPlace', 'the scale', s, () => true, 'a finite number');
  noGrad(() => runOp<ScaleAttrs>('scaleInPlace', [t], { scale: s }));
}

/** √(Σ over tensors of sumOfSquares): the global L2 norm used for gradient clipping. */
export function globalGradNorm(tensors: Tensor[]): number {
  let total = 0;
  for (const t of tensors) total += sumOfSquares(t);
  return Math.sqrt(total);
}

