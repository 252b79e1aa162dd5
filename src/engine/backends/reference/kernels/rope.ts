/** Reference kernel of the rope family. cos/sin are float32 values (as in transformers); for
 * float32 tensors every product and sum is rounded to float32 like PyTorch's separate ops. */
import { registerKernel } from '../../../registry.js';
import { allocTensor } from '../../../tensor.js';
import { ropeInvFreq, type RopeAttrs } from '../../../ops/rope.js';
import { floats, ints } from '../backend.js';

registerKernel<RopeAttrs>('rope', 'reference', ([x, positions], { theta, positionOffset, rotaryDim, inverse }, be) => {
  const op = 'rope';
  const [B, S, H, D] = x.shape;
  const half = rotaryDim / 2;
  const X = floats(x, op);
  const P = positions ? ints(positions, op) : null;
  const perBatch = positions !== undefined && positions.rank === 2;
  const y = allocTensor(be, x.shape, x.dtype);
  const Y = floats(y, op);
  const r = x.dtype === 'float32' ? Math.fround : (v: number) => v;
  const inv = ropeInvFreq(rotaryDim, theta);
  const cos = new Float64Array(half), sin = new Float64Array(half);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const p = (P ? P[perBatch ? b * S + s : s] : s) + positionOffset;
      const pf = Math.fround(p);
      for (let i = 0; i < half; i++) {
        const ang = Math.fround(inv[i] * pf);
        cos[i] = Math.fround(Math.cos(ang));
        const sn = Math.fround(Math.sin(ang));
        sin[i] = inverse ? -sn : sn;
      }
      for (let hh = 0; hh < H; hh++) {
        const o = ((b * S + s) * H + hh) * D;
        for (let i = 0; i < half; i++) {
          const a = X[o + i], c = X[o + i + half];
          Y[o + i] = r(r(a * cos[i]) - r(c * sin[i]));
          Y[o + i + half] = r(r(c * cos[i]) + r(a * sin[i]));
        }
        for (let j = rotaryDim; j < D; j++) Y[o + j] = X[o + j];
      }
    }
  }
  return [y];
});
