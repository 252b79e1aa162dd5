/** Reference kernels for the in-place optimizer updates and gradient-norm helpers. */
import { registerKernel, getKernel } from '../../../registry.js';
import type { AdamWAttrs, AdamWGroupAttrs, ScaleAttrs, SgdAttrs, SumOfSquaresAttrs } from '../../../ops/optim.js';
import { floats } from '../backend.js';

const B = 'reference';

registerKernel<AdamWAttrs>('adamwUpdate', B, ([param, grad, m, v], a) => {
  const P = floats(param, 'adamwUpdate'), G = floats(grad, 'adamwUpdate'), M = floats(m, 'adamwUpdate'), Vv = floats(v, 'adamwUpdate');
  const decay = 1 - a.lr * a.weightDecay;
  const stepSize = a.lr / a.biasCorrection1;
  const bc2Sqrt = Math.sqrt(a.biasCorrection2);
  for (let i = 0; i < P.length; i++) {
    const g = G[i];
    const mi = a.beta1 * M[i] + (1 - a.beta1) * g;
    const vi = a.beta2 * Vv[i] + (1 - a.beta2) * g * g;
    M[i] = mi;
    Vv[i] = vi;
    // As PyTorch does, the update reads the moments as stored (rounded to the tensor's dtype).
    P[i] *= decay;
    P[i] -= stepSize * M[i] / (Math.sqrt(Vv[i]) / bc2Sqrt + a.eps);
  }
  return [];
});

// The group update: the single-parameter kernel on each [p, g, m, v] record.
registerKernel<AdamWGroupAttrs>('adamwUpdateGroup', B, (inputs, a, be) => {
  const one = getKernel<AdamWAttrs>('adamwUpdate', B);
  for (let k = 0; k * 4 < inputs.length; k++) {
    one(inputs.slice(4 * k, 4 * k + 4), { ...a, step: 1, biasCorrection1: a.biasCorrection1[k], biasCorrection2: a.biasCorrection2[k] }, be);
  }
  return [];
});

registerKernel<SgdAttrs>('sgdUpdate', B, ([param, grad, buf], a) => {
  const P = floats(param, 'sgdUpdate'), G = floats(grad, 'sgdUpdate'), Bf = buf ? floats(buf, 'sgdUpdate') : null;
  for (let i = 0; i < P.length; i++) {
    let d = G[i] + a.weightDecay * P[i];
    if (Bf && a.momentum > 0) {
      const b = a.firstStep ? d : a.momentum * Bf[i] + (1 - a.dampening) * d;
      Bf[i] = b;
      d = a.nesterov ? d + a.momentum * Bf[i] : Bf[i];
    }
    P[i] -= a.lr * d;
  }
  return [];
});

registerKernel<SumOfSquaresAttrs>('sumOfSquares', B, ([t], attrs) => {
  const X = floats(t, 'sumOfSquares');
  let s = 0;
  for (let i = 0; i < X.length; i++) s += X[i] * X[i];
  attrs.result = s;
  return [];
});

registerKernel<ScaleAttrs>('scaleInPlace', B, ([t], { scale }) => {
  const X = floats(t, 'scaleInPlace');
  for (let i = 0; i < X.length; i++) X[i] *= scale;
  return [];
});
