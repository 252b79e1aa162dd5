/** Native kernels of the quantized-storage family (see native/src/quant.cc). Packed bytes live in
 * int32 tensors used as byte views; the addon reads them as uint8. */
import type { Backend } from '../../../backend.js';
import { registerKernel } from '../../../registry.js';
import { allocTensor, type Tensor } from '../../../tensor.js';
import {
  QUANT_FORMAT_CODES, quantPartSizes, wordsFor,
  type DequantAttrs, type QuantAttrs, type QuantLinearAttrs,
} from '../../../ops/quant.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

type Handle = object;
type H = Handle | null;
declare module '../addon.js' {
  interface NativeAddon {
    quantize(fmt: number, dq: boolean, rows: number, cols: number, w: Handle, code: H, data: Handle, s1: H, s2: H, s3: H): void;
    dequantize(fmt: number, dq: boolean, rows: number, cols: number, data: Handle, s1: H, s2: H, s3: H, code: H, out: Handle): void;
    quantLinear(fmt: number, dq: boolean, rows: number, cols: number, data: Handle, s1: H, s2: H, s3: H, code: H,
      x: Handle, M: number, bias: H, y: Handle): void;
    quantLinearGradInput(fmt: number, dq: boolean, rows: number, cols: number, data: Handle, s1: H, s2: H, s3: H, code: H,
      dy: Handle, M: number, dx: Handle): void;
  }
}

const B = 'native';

function float32Only(op: string, ts: Tensor[]): void {
  for (const t of ts) if (t.dtype === 'float64') throw new Error(`op '${op}': native backend computes float32, got ${t.describe()}`);
}

/** The weight arguments (fmt, dq, rows, cols, data, s1, s2, s3, code) from the kernel inputs. */
function weightArgs(q: Tensor[], a: QuantAttrs): [number, boolean, number, number, Handle, H, H, H, H] {
  const hs: H[] = q.map((t) => h(t));
  while (hs.length < 5) hs.push(null);
  return [QUANT_FORMAT_CODES[a.format], a.doubleQuant, a.rows, a.cols, hs[0]!, hs[1], hs[2], hs[3], hs[4]];
}

function withCleanup(outs: Tensor[], fn: () => void): Tensor[] {
  try {
    fn();
  } catch (e) {
    for (const t of outs) t.dispose();
    throw e;
  }
  return outs;
}

registerKernel<QuantAttrs>('quantize', B, ([w, code], attrs, be: Backend) => {
  float32Only('quantize', [w]);
  const { format, doubleQuant, rows, cols } = attrs;
  const sz = quantPartSizes({ format, shape: [rows, cols], doubleQuant });
  const outs = [allocTensor(be, [wordsFor(sz.packedBytes)], 'int32')];
  if (format === 'nf4' && doubleQuant) {
    outs.push(allocTensor(be, [wordsFor(sz.nBlocks)], 'int32'), allocTensor(be, [sz.nBlocks2], 'float32'), allocTensor(be, [1], 'float32'));
  } else if (format === 'nf4' || format === 'int8') {
    outs.push(allocTensor(be, [sz.nBlocks], 'float32'));
  }
  return withCleanup(outs, () => addonOf(be).quantize(QUANT_FORMAT_CODES[format], doubleQuant, rows, cols, h(w), hOrNull(code),
    h(outs[0]), hOrNull(outs[1]), hOrNull(outs[2]), hOrNull(outs[3])));
});

registerKernel<DequantAttrs>('dequantize', B, (inputs, attrs, be) => {
  if (attrs.dtype !== 'float32') throw new Error(`op 'dequantize': native backend computes float32, not ${attrs.dtype}`);
  float32Only('dequantize', inputs);
  const out = allocTensor(be, [attrs.rows, attrs.cols], 'float32');
  return withCleanup([out], () => addonOf(be).dequantize(...weightArgs(inputs, attrs), h(out)));
});

registerKernel<QuantLinearAttrs>('quantizedLinear', B, (inputs, attrs, be) => {
  const x = inputs[0];
  const bias = attrs.hasBias ? inputs[inputs.length - 1] : null;
  const q = inputs.slice(1, attrs.hasBias ? inputs.length - 1 : inputs.length);
  float32Only('quantizedLinear', inputs);
  const M = x.size / attrs.cols;
  const y = allocTensor(be, [...x.shape.slice(0, -1), attrs.rows], 'float32');
  return withCleanup([y], () => addonOf(be).quantLinear(...weightArgs(q, attrs), h(x), M, hOrNull(bias), h(y)));
});

registerKernel<QuantAttrs>('quantizedLinearGradInput', B, ([dy, ...q], attrs, be) => {
  float32Only('quantizedLinearGradInput', [dy, ...q]);
  const M = dy.size / attrs.rows;
  const dx = allocTensor(be, [M, attrs.cols], 'float32');
  return withCleanup([dx], () => addonOf(be).quantLinearGradInput(...weightArgs(q, attrs), h(dy), M, h(dx)));
});
