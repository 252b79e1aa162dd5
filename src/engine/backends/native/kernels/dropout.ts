/** Native kernel of the dropout family (see native/src/dropout.cc). */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import type { DropoutAttrs } from '../../../ops/dropout.js';
import { h } from '../backend.js';
import { addonOf } from './core.js';

type Handle = object;
declare module '../addon.js' {
  interface NativeAddon {
    dropout(x: Handle, y: Handle, n: number, key1: number, key2: number, threshold: number, scale: number): void;
  }
}

registerKernel<DropoutAttrs>('dropout', 'native', ([x], { threshold, scale, key1, key2 }, be) => {
  const y = allocTensor(be, x.shape, x.dtype);
  addonOf(be).dropout(h(x), h(y), x.size, key1, key2, threshold, scale);
  return [y];
});
