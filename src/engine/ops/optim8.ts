/**
 * 8-bit block-wise AdamW state (bitsandbytes' blockwise Adam8bit, Dettmers et al. 2022): the
 * first moment as signed and the second as unsigned 8-bit codes into the dynamic quantization
 * maps, with one float32 absmax per block of INT8_STATE_BLOCK elements: 2 + 8/256 bytes of state
 * per parameter instead of 8. Each update dequantizes a block, takes the AdamW step with the new
 * moments in float32, then requantizes them against the block's new absmax (nearest code).
 */
import { noGrad } from '../autograd.js';
import type { Backend } from '../backend.js';
import { declareNonDifferentiable, registerInPlaceOp } from '../registry.js';
import { runOp } from '../run-op.js';
import { keep } from '../scope.js';
import type { Tensor } from '../tensor.js';
import { tensor, zeros } from './creation.js';
import { dynamicQuantCodeTensor } from './quant.js';
import type { AdamWAttrs, AdamWOptions } from './optim.js';

/** Elements per absmax block of the 8-bit optimizer state (bitsandbytes' blockwise optimizers use 256). */
export const INT8_STATE_BLOCK = 256;

let unsignedCode: Float32Array | null = null;

/**
 * bitsandbytes' unsigned dynamic map (`create_dynamic_map(signed=False)`): 256 sorted values in
 * [0, 1], 2^(i+1) fraction values per decade 10^(i−6) (i = 0…6), plus 0 and 1. The second moment
 * (never negative) uses it.
 */
export function unsignedDynamicQuantCode(): Float32Array {
  if (unsignedCode) return unsignedCode;
  const values: number[] = [];
  for (let i = 0; i < 7; i++) {
    const items = 2 ** (i + 1) + 1;
    const bounds = Array.from({ length: items }, (_, j) => Math.fround(0.1 + (0.9 * j) / (items - 1)));
    const scale = 10 ** (-6 + i);
    for (let j = 0; j + 1 < items; j++) values.push(Math.fround(scale * Math.fround(Math.fround(bounds[j]! + bounds[j + 1]!) / 2)));
  }
  values.push(0, 1);
  values.sort((a, b) => a - b);
  if (values.length !== 256) throw new Error(`unsignedDynamicQuantCode: built ${values.length} values, expected 256`);
  unsignedCode = Float32Array.from(values);
  return unsignedCode;
}

const unsignedTensors = new Map<Backend, Tensor>();

export function unsignedDynamicQuantCodeTensor(backend: Backend): Tensor {
  let t = unsignedTensors.get(backend);
  if (!t || t.isDisposed) {
    t = keep(tensor(unsignedDynamicQuantCode(), [256], { backend, dtype: 'float32' }));
    t.name = 'adam8bit.unsigned_code';
    unsignedTensors.set(backend, t);
  }
  return t;
}

/** The 8-bit state of one parameter: codes (int32 words used as bytes) and per-block absmax. */
export interface Int8AdamState {
  m: Tensor;
  mAbsmax: Tensor;
  v: Tensor;
  vAbsmax: Tensor;
}

/** Shapes of the 8-bit state of a parameter of `n` elements: code words, absmax blocks. */
export function int8StateShapes(n: number): { codes: number; blocks: number } {
  return { codes: Math.ceil(n / 4), blocks: Math.ceil(n / INT8_STATE_BLOCK) };
}

/** Fresh (zero) 8-bit state for `param`, kept out of memory scopes. */
export function int8AdamState(param: Tensor): Int8AdamState {
  const { codes, blocks } = int8StateShapes(param.size);
  const place = { backend: param.backend };
  return {
    m: keep(zeros([codes], { ...place, dtype: 'int32' })),
    mAbsmax: keep(zeros([blocks], { ...place, dtype: 'float32' })),
    v: keep(zeros([codes], { ...place, dtype: 'int32' })),
    vAbsmax: keep(zeros([blocks], { ...place, dtype: 'float32' })),
  };
}

export interface AdamW8bitAttrs extends AdamWAttrs { n: number; blockSize: number }

registerInPlaceOp('adamw8bitUpdate', [0, 2, 3, 4, 5]); // param, m codes, m absmax, v codes, v absmax
declareNonDifferentiable(['adamw8bitUpdate'], 'optimizer update, written in place; never on a gradient tape');

/** One AdamW step in place with 8-bit block-wise moments (same options as adamwUpdate). */
export function adamw8bitUpdate(param: Tensor, grad: Tensor, state: Int8AdamState, opts: AdamWOptions): void {
  if (param.dtype !== 'float32' || grad.dtype !== 'float32') throw new Error(`op 'adamw8bitUpdate': param and grad must be float32, got ${param.describe()} and ${grad.describe()}`);
  if (grad.size !== param.size) throw new Error(`op 'adamw8bitUpdate': grad ${grad.describe()} does not match param ${param.describe()}`);
  const { codes, blocks } = int8StateShapes(param.size);
  for (const [what, t, size, dtype] of [['m', state.m, codes, 'int32'], ['m absmax', state.mAbsmax, blocks, 'float32'], ['v', state.v, codes, 'int32'], ['v absmax', state.vAbsmax, blocks, 'float32']] as const) {
    if (t.size !== size || t.dtype !== dtype) throw new Error(`op 'adamw8bitUpdate': ${what} state ${t.describe()} should be ${dtype} [${size}] for param ${param.describe()}`);
  }
  const { lr, beta1, beta2, eps, weightDecay, step } = opts;
  if (!(Number.isInteger(step) && step >= 1)) throw new Error(`op 'adamw8bitUpdate': step must be an integer >= 1 (steps are 1-based), got ${String(step)}`);
  for (const [k, v, ok] of [['lr', lr, lr >= 0], ['beta1', beta1, beta1 >= 0 && beta1 < 1], ['beta2', beta2, beta2 >= 0 && beta2 < 1], ['eps', eps, eps >= 0], ['weightDecay', weightDecay, weightDecay >= 0]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok) throw new Error(`op 'adamw8bitUpdate': ${k} out of range, got ${String(v)}`);
  }
  const attrs: AdamW8bitAttrs = {
    lr, beta1, beta2, eps, weightDecay, step, n: param.size, blockSize: INT8_STATE_BLOCK,
    biasCorrection1: 1 - Math.pow(beta1, step),
    biasCorrection2: 1 - Math.pow(beta2, step),
  };
  const codeS = dynamicQuantCodeTensor(param.backend), codeU = unsignedDynamicQuantCodeTensor(param.backend);
  noGrad(() => runOp<AdamW8bitAttrs>('adamw8bitUpdate', [param, grad, state.m, state.mAbsmax, state.v, state.vAbsmax, codeS, codeU], attrs));
}

