/** Elementwise unary ops and activations; each one's gradient is a fused native kernel
 * ('unaryGrad') computed from the saved input and output. */
import { registerGradient, declareNonDifferentiable } from '../registry.js';
import { runOp } from '../run-op.js';
import { formatShape, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';

declareNonDifferentiable(['unaryGrad', 'swigluGrad'], "backward kernels of 'unary' / 'swiglu' (no double backward)");

export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'sigmoid' | 'relu' | 'abs' | 'square'
  | 'geluTanh' | 'geluErf' | 'silu' | 'affine' | 'pow' | 'reciprocal';

/** Numbering shared with native/src/elementwise.cc. */
export const UNARY_CODES: Record<UnaryOp, number> = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, tanh: 5, sigmoid: 6, relu: 7, abs: 8, square: 9,
  geluTanh: 10, geluErf: 11, silu: 12, affine: 13, pow: 14, reciprocal: 15,
};

export interface UnaryAttrs { op: UnaryOp; p1: number; p2: number }
export interface UnaryGradAttrs { op: UnaryOp; p1: number }

function unary(op: UnaryOp, x: Tensor, p1 = 0, p2 = 0): Tensor {
  if (x.dtype === 'int32') throw new Error(`op '${op}': expected a float tensor, got ${x.describe()}`);
  return runOp<UnaryAttrs>('unary', [x], { op, p1, p2 })[0];
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const reciprocal = (x: Tensor): Tensor => unary('reciprocal', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
/** GELU; `approximate: 'tanh'` is GPT-2's gelu_new, 'none' the exact erf form (BERT). */
export const gelu = (x: Tensor, approximate: 'tanh' | 'none' = 'none'): Tensor => unary(approximate === 'tanh' ? 'geluTanh' : 'geluErf', x);
/** x * scale + shift. */
export const affine = (x: Tensor, scale: number, shift = 0): Tensor => unary('affine', x, scale, shift);
export const mulScalar = (x: Tensor, s: number): Tensor => affine(x, s, 0);
export const addScalar = (x: Tensor, s: number): Tensor => affine(x, 1, s);
export const pow = (x: Tensor, exponent: number): Tensor => unary('pow', x, exponent);

/** Ops whose derivative is cheapest from the output rather than the input. */
const FROM_OUTPUT = new Set<UnaryOp>(['exp', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'reciprocal']);

registerGradient<UnaryAttrs>('unary', (dys, { inputs: [x], outputs: [y], attrs }) => {
  const useY = FROM_OUTPUT.has(attrs.op);
  const ins = useY ? [y, dys[0]!] : [x, dys[0]!];
  return [runOp<UnaryGradAttrs & { fromOutput: boolean }>('unaryGrad', ins, { op: attrs.op, p1: attrs.p1, fromOutput: useY })[0]];
});

/** SwiGLU's gating: silu(gate) * up, fused. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (!sameShape(gate.shape, up.shape)) throw new Error(`op 'swiglu': gate ${formatShape(gate.shape)} and up ${formatShape(up.shape)} must have the same shape`);
  if (gate.dtype !== up.dtype || gate.dtype === 'int32') throw new Error(`op 'swiglu': expected two float tensors of one dtype, got ${gate.describe()} and ${up.describe()}`);
  return runOp('swiglu', [gate, up], {})[0];
}
registerGradient('swiglu', (dys, { inputs: [g, u] }) => runOp('swigluGrad', [g, u, dys[0]!], {}));
