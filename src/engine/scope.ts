/**
 * Deterministic memory scopes. Every tensor created while a scope is open belongs to it and is
 * freed when the scope ends, unless it is returned from the scope or explicitly kept. A training
 * step run inside `tidy` therefore releases all of its intermediates at once, without waiting
 * for the JavaScript garbage collector.
 */

/** What a scope needs of a tensor. Declared here (Tensor implements it) so that scope.ts does not
 * import tensor.ts, which imports scope.ts. */
export interface Scoped {
  scope: Set<Scoped> | null;
  dispose(): void;
}
type Tensor = Scoped;

interface Scope {
  tensors: Set<Tensor>;
}

const scopes: Scope[] = [];

export function track(t: Tensor): void {
  const top = scopes[scopes.length - 1];
  if (top) {
    top.tensors.add(t);
    t.scope = top.tensors;
  }
}

/** Removes a tensor from whatever scope owns it, so it outlives that scope. */
export function keep<T extends Tensor>(t: T): T {
  if (t.scope) {
    t.scope.delete(t);
    t.scope = null;
  }
  return t;
}

export function scopeDepth(): number {
  return scopes.length;
}

/** Anything a scope may return; the tensors found in it survive and move to the outer scope. */
export type ScopeResult = Tensor | ScopeResult[] | { [k: string]: ScopeResult } | number | string | boolean | void | null | undefined;

function collectTensors(value: unknown, into: Set<Tensor>, isTensor: (v: unknown) => v is Tensor): void {
  if (isTensor(value)) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into, isTensor);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into, isTensor);
  }
}

let tensorCheck: ((v: unknown) => v is Tensor) | null = null;
/** Set by tensor.ts; avoids an import cycle. */
export function setTensorCheck(fn: (v: unknown) => v is Tensor): void {
  tensorCheck = fn;
}

/**
 * Runs `fn` in a new scope. Tensors it created are disposed when it returns, except the tensors
 * found in its result (directly, or inside arrays and plain objects), which move to the outer
 * scope. If `fn` throws, everything it created is disposed and the error propagates.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = { tensors: new Set() };
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope.tensors) { t.scope = null; t.dispose(); }
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new Error('tidy: the function returned a Promise; scopes are synchronous');
  const survivors = new Set<Tensor>();
  if (tensorCheck) collectTensors(result, survivors, tensorCheck);
  for (const t of scope.tensors) {
    t.scope = null;
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
  return result;
}
