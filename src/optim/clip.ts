/** Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ semantics). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

/** Scales every gradient in place so their global L2 norm is at most `maxNorm`; returns the
 * norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, found ${maxNorm}`);
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null && !g.isDisposed);
  const norm = E.globalGradNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) E.noGrad(() => { for (const g of grads) E.scaleInPlace(g, coef); });
  return norm;
}
