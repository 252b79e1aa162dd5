/**
 * Activation recomputation ("gradient checkpointing", Chen et al. 2016; torch.utils.checkpoint):
 * `checkpoint(fn, x, params)` runs `fn(x)` without recording its inside, so the forward keeps only
 * `x` and the output instead of every activation of `fn`; when backward reaches the output it
 * runs `fn` again with the tape on, over a leaf standing in for `x`, and back-propagates through
 * that copy at once (freeing each recomputed activation as it is consumed). The parameters' .grad
 * receive their gradients during that inner walk, `x` gets its gradient from it.
 *
 * The gradients are bit for bit those of `fn(x)` recorded normally, provided `fn` is a pure
 * function of `x` and its parameters (same kernels, same inputs, same dropout masks — pass the
 * masks' seed in, never draw one from a counter) whose parameters are leaves: the inner walk
 * visits the recomputed graph in the order the outer walk would have, so every sum of gradients
 * adds the same terms in the same order. The price is one more forward of `fn` per backward.
 */
import { backward } from './autograd.js';
import { enableGrad, isGradEnabled, noGrad } from './grad-mode.js';
import { registerGradient } from './registry.js';
import { runOp } from './run-op.js';
import { tidy } from './scope.js';
import type { Tensor, TapeNode } from './tensor.js';

interface CheckpointAttrs {
  fn: (x: Tensor) => Tensor;
}

/**
 * `fn(x)` with its activations recomputed in backward instead of kept (see the file comment).
 * `params` are the leaves `fn` reads besides `x` (a module's parameters): the output needs a
 * gradient when `x` or one of them does. Under noGrad, or with nothing to differentiate, it is
 * just `fn(x)`.
 */
export function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, params: readonly Tensor[]): Tensor {
  const trainable = params.filter((p) => p.requiresGrad);
  if (!isGradEnabled() || (!x.requiresGrad && trainable.length === 0)) return fn(x);
  for (const p of trainable) {
    if (p.node) throw new Error(`checkpoint: parameter ${p.describe()} is not a leaf (it was computed with gradients); recomputation needs leaf parameters`);
  }
  const y = tidy(() => noGrad(() => {
    const out = fn(x);
    // The output must be its own tensor: the node below is recorded on it.
    return out === x ? runOp('copy', [x], {})[0]! : out;
  }));
  const node: TapeNode = { op: 'checkpoint', inputs: [x, ...trainable], outputs: [y], attrs: { fn } satisfies CheckpointAttrs };
  y.node = node;
  y.requiresGrad = true;
  return y;
}

registerGradient<CheckpointAttrs>('checkpoint', ([dy], { inputs, attrs }) => {
  const none = inputs.map(() => null);
  if (!dy) return none;
  const x = inputs[0]!;
  // A leaf over x's elements (shared storage, no tape entry): the recomputed graph stops there.
  const stand = x.viewAs(x.shape);
  stand.requiresGrad = x.requiresGrad;
  const y = enableGrad(() => attrs.fn(stand));
  if (!y.requiresGrad) return none;
  backward(y, dy, { freeSaved: true });
  const dx = stand.grad;
  stand.grad = null;
  return [dx, ...none.slice(1)];
});
