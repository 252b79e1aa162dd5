/** Reference kernel of the dropout family: the counter-based mask of ops/dropout.ts. For
 * float32 the product is rounded like the native float32 multiply, so both agree exactly. */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import { dropoutBits, type DropoutAttrs } from '../../../ops/dropout.js';
import { floats } from '../backend.js';

registerKernel<DropoutAttrs>('dropout', 'reference', ([x], { threshold, scale, key1, key2 }, be) => {
  const op = 'dropout';
  const y = allocTensor(be, x.shape, x.dtype);
  const X = floats(x, op), Y = floats(y, op);
  const s = x.dtype === 'float32' ? Math.fround(scale) : scale;
  for (let i = 0; i < X.length; i++) Y[i] = X[i] * (dropoutBits(key1, key2, i) >= threshold ? s : 0);
  return [y];
});
