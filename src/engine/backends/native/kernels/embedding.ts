/** Native kernels of the embedding family (see native/src/embedding.cc). The kernels check
 * every id against the vocabulary size before touching memory. */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import type { EmbeddingGradAttrs } from '../../../ops/embedding.js';
import { h } from '../backend.js';
import { addonOf } from './core.js';

type Handle = object;
declare module '../addon.js' {
  interface NativeAddon {
    embedding(w: Handle, ids: Handle, y: Handle, N: number, V: number, D: number, idsShape: number[]): void;
    embeddingGrad(ids: Handle, dy: Handle, dw: Handle, N: number, V: number, D: number, idsShape: number[]): void;
  }
}

const B = 'native';

registerKernel('embedding', B, ([weight, ids], _a, be) => {
  const [V, D] = weight.shape;
  const y = allocTensor(be, [...ids.shape, D], weight.dtype);
  try {
    addonOf(be).embedding(h(weight), h(ids), h(y), ids.size, V, D, [...ids.shape]);
  } catch (e) {
    y.dispose();
    throw e;
  }
  return [y];
});

registerKernel<EmbeddingGradAttrs>('embeddingGrad', B, ([ids, dy], { vocab }, be) => {
  const D = dy.shape[dy.rank - 1];
  const dw = allocTensor(be, [vocab, D], dy.dtype);
  try {
    addonOf(be).embeddingGrad(h(ids), h(dy), h(dw), ids.size, vocab, D, [...ids.shape]);
  } catch (e) {
    dw.dispose();
    throw e;
  }
  return [dw];
});
