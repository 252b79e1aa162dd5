/** Native kernel of the rope family (see native/src/rope.cc). */
import { registerKernel } from '../../../registry.js';
import { allocOutput } from '../../../tensor.js';
import type { RopeAttrs } from '../../../ops/rope.js';
import { h, hOrNull } from '../backend.js';
import { addonOf } from './core.js';

type Handle = object;
declare module '../addon.js' {
  interface NativeAddon {
    rope(x: Handle, positions: Handle | null, y: Handle, B: number, S: number, H: number, D: number, rotaryDim: number,
      theta: number, positionOffset: number, inverse: boolean, positionsPerBatch: boolean): void;
  }
}

registerKernel<RopeAttrs>('rope', 'native', ([x, positions], { theta, positionOffset, rotaryDim, inverse }, be) => {
  const [B, S, H, D] = x.shape;
  const y = allocOutput(be, x.shape, x.dtype);
  addonOf(be).rope(h(x), hOrNull(positions), h(y), B, S, H, D, rotaryDim, theta, positionOffset, inverse, positions !== undefined && positions.rank === 2);
  return [y];
});
