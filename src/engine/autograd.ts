/**
 * Tape autograd. Every op run while gradients are enabled and with an input that requires a
 * gradient records a TapeNode on its outputs. `backward` walks the nodes in reverse topological
 * order, asks each op's registered gradient for the input gradients, and accumulates them into
 * the `.grad` of leaf tensors (which are kept out of memory scopes, so they survive the step).
 */
import { getGradient, type GradContext } from './registry.js';
import { setBackward, type Tensor, type TapeNode } from './tensor.js';
import { keep, tidy } from './scope.js';
import { formatShape, sameShape } from './shape.js';
import { runOp } from './run-op.js';
import { noGrad } from './grad-mode.js';

export { isGradEnabled, noGrad } from './grad-mode.js';
export type { TapeNode } from './tensor.js';

function topoOrder(root: Tensor): TapeNode[] {
  const order: TapeNode[] = [];
  const seen = new Set<TapeNode>();
  // Iterative DFS: deep models would overflow the stack with recursion.
  const stack: { node: TapeNode; next: number }[] = [];
  if (root.node) { stack.push({ node: root.node, next: 0 }); seen.add(root.node); }
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.next < top.node.inputs.length) {
      const child = top.node.inputs[top.next++].node;
      if (child && !seen.has(child)) { seen.add(child); stack.push({ node: child, next: 0 }); }
    } else {
      order.push(top.node);
      stack.pop();
    }
  }
  return order;
}

function accumulate(map: Map<Tensor, Tensor>, t: Tensor, g: Tensor): void {
  const prev = map.get(t);
  if (!prev) { map.set(t, g); return; }
  const sum = runOp('add', [prev, g], {})[0];
  prev.dispose();
  g.dispose();
  map.set(t, sum);
}

export interface BackwardOptions {
  /**
   * Free the graph's saved activations while walking it: each node's outputs are disposed as soon
   * as the node's own gradient has run, which is the last time the walk reads them (every
   * consumer of a tensor comes after its producer in topological order, so it was handled
   * earlier in the reverse walk). The peak during backward then falls with the depth reached
   * instead of holding every activation until the step's scope ends. Only tensors owned by a
   * memory scope are freed (never a kept one) and never `root` itself; an intermediate the caller
   * still holds is disposed too, so read what you need (the loss value) before backward, and do
   * not call backward twice over the same graph. Default false.
   */
  freeSaved?: boolean;
}

/**
 * Back-propagates from `root`. Without `gradient`, root must hold one element and the seed is 1.
 * Gradients accumulate into leaves' `.grad` (call zeroGrad / set grad = null between steps).
 */
export function backward(root: Tensor, gradient?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error(`backward(): tensor ${root.describe()} does not require a gradient (no parameter or input with requiresGrad led to it)`);
  if (!gradient && root.size !== 1) throw new Error(`backward(): tensor ${root.describe()} has ${root.size} elements; pass a gradient of shape ${formatShape(root.shape)} or reduce it to a scalar first`);
  if (gradient && !sameShape(gradient.shape, root.shape)) throw new Error(`backward(): gradient shape ${formatShape(gradient.shape)} does not match tensor shape ${formatShape(root.shape)}`);
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    const seed = gradient ? runOp('copy', [gradient], {})[0] : runOp('fill', [], { shape: root.shape, dtype: root.dtype, value: 1 }, root.backend)[0];
    if (!root.node) { accumulateLeaf(root, seed); return; }
    grads.set(root, seed);
    const order = topoOrder(root);
    const release = opts.freeSaved === true
      ? (node: TapeNode) => { for (const o of node.outputs) if (o !== root && o.scope !== null) o.dispose(); }
      : null;
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i];
      const dys = node.outputs.map((o) => grads.get(o) ?? null);
      if (dys.every((d) => d === null)) { release?.(node); continue; }
      const fn = getGradient(node.op);
      if (!fn) throw new Error(`backward(): op '${node.op}' is not differentiable (no gradient registered), but a gradient reached its output ${node.outputs[0].describe()}`);
      const ctx: GradContext = { inputs: node.inputs, outputs: node.outputs, attrs: node.attrs };
      // The gradient's own intermediates are freed as soon as it returns.
      const dxs = tidy(() => fn(dys, ctx));
      for (const o of node.outputs) grads.delete(o);
      // A gradient function may hand back the same tensor for several inputs, or pass an
      // incoming gradient straight through; every stored gradient must be its own tensor.
      const claimed = new Set<Tensor>();
      const own: (Tensor | null)[] = node.inputs.map((input, k) => {
        let dx = dxs[k];
        if (!dx || !input.requiresGrad) return null;
        if (!sameShape(dx.shape, input.shape)) throw new Error(`backward(): gradient of op '${node.op}' for input ${k} has shape ${formatShape(dx.shape)}, expected ${formatShape(input.shape)}`);
        if (claimed.has(dx)) dx = runOp('copy', [dx], {})[0];
        claimed.add(dx);
        return dx;
      });
      for (const d of dys) if (d && !claimed.has(d)) d.dispose();
      for (const dx of dxs) if (dx && !claimed.has(dx) && !dys.includes(dx)) dx.dispose();
      node.inputs.forEach((input, k) => {
        const dx = own[k];
        if (!dx) return;
        if (input.node) accumulate(grads, input, dx);
        else accumulateLeaf(input, dx);
      });
      release?.(node);
    }
    for (const g of grads.values()) g.dispose();
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (g.dtype !== leaf.dtype) throw new Error(`backward(): gradient dtype ${g.dtype} differs from ${leaf.describe()}`);
  if (leaf.grad && !leaf.grad.isDisposed) {
    const sum = runOp('add', [leaf.grad, g], {})[0];
    leaf.grad.dispose();
    g.dispose();
    leaf.grad = keep(sum);
  } else {
    leaf.grad = keep(g);
  }
}

setBackward(backward);
