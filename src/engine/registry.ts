/**
 * The op registry, in the tfjs-core spirit: a kernel is registered per (op name, backend), a
 * gradient per op name. Ops never call a backend directly; they go through `runOp`.
 */
import type { Backend } from './backend.js';
import type { Tensor } from './tensor.js';

/** A kernel computes every output of an op (visible outputs first, then auxiliary outputs that
 * its gradient needs, e.g. the row statistics of a norm). */
export type Kernel<A = unknown> = (inputs: Tensor[], attrs: A, backend: Backend) => Tensor[];

export interface GradContext<A = unknown> {
  inputs: readonly Tensor[];
  /** All outputs, auxiliary ones included. */
  outputs: readonly Tensor[];
  attrs: A;
}

/** Returns one gradient per input (null where an input gets none). `dys` has one entry per
 * output; null where no gradient reached that output. */
export type GradientFn<A = unknown> = (dys: (Tensor | null)[], ctx: GradContext<A>) => (Tensor | null)[];

const kernels = new Map<string, Map<string, Kernel<never>>>();
const gradients = new Map<string, GradientFn<never>>();

/** Registers op `op`'s kernel on `backend`; a second registration of the same pair is an error
 * (two modules claiming one kernel would otherwise depend on import order). */
export function registerKernel<A>(op: string, backend: string, kernel: Kernel<A>): void {
  let byBackend = kernels.get(op);
  if (!byBackend) kernels.set(op, (byBackend = new Map()));
  if (byBackend.has(backend)) throw new Error(`registerKernel: op '${op}' already has a kernel for backend '${backend}'`);
  byBackend.set(backend, kernel as Kernel<never>);
}

export function getKernel<A>(op: string, backend: string): Kernel<A> {
  const k = kernels.get(op)?.get(backend);
  if (!k) {
    const have = [...(kernels.get(op)?.keys() ?? [])];
    throw new Error(`op '${op}': no kernel registered for backend '${backend}'` + (have.length ? ` (registered for: ${have.join(', ')})` : ' (unknown op)'));
  }
  return k as unknown as Kernel<A>;
}

export function hasKernel(op: string, backend: string): boolean {
  return kernels.get(op)?.has(backend) ?? false;
}

export function registerGradient<A>(op: string, fn: GradientFn<A>): void {
  if (gradients.has(op)) throw new Error(`registerGradient: op '${op}' already has a gradient`);
  if (nonDifferentiable.has(op)) throw new Error(`registerGradient: op '${op}' is declared non-differentiable (${nonDifferentiable.get(op)})`);
  gradients.set(op, fn as GradientFn<never>);
}

const nonDifferentiable = new Map<string, string>();

/**
 * Declares that op `op` has no gradient, and why (a backward kernel, an optimizer update, integer
 * output). The registry test requires every op to have a gradient or such a declaration.
 */
export function declareNonDifferentiable(ops: string | readonly string[], why: string): void {
  for (const op of typeof ops === 'string' ? [ops] : ops) {
    if (gradients.has(op)) throw new Error(`declareNonDifferentiable: op '${op}' already has a gradient`);
    if (nonDifferentiable.has(op)) throw new Error(`declareNonDifferentiable: op '${op}' is already declared non-differentiable`);
    nonDifferentiable.set(op, why);
  }
}

/** Why op `op` has no gradient (undefined: it is not declared non-differentiable). */
export function nonDifferentiableReason(op: string): string | undefined {
  return nonDifferentiable.get(op);
}

const referenceOnly = new Map<string, string>();

/** Declares that op `op` runs on the reference backend only, and why; the registry test requires
 * every op to have a native kernel or such a declaration. */
export function declareReferenceOnly(op: string, why: string): void {
  if (referenceOnly.has(op)) throw new Error(`declareReferenceOnly: op '${op}' is already declared reference-only`);
  referenceOnly.set(op, why);
}

/** Why op `op` has no native kernel (undefined: it is not declared reference-only). */
export function referenceOnlyReason(op: string): string | undefined {
  return referenceOnly.get(op);
}

export function getGradient<A>(op: string): GradientFn<A> | undefined {
  return gradients.get(op) as GradientFn<A> | undefined;
}

const inPlace = new Map<string, { inputs: readonly number[]; period: number }>();

/**
 * Declares that op `op` writes into its inputs at `inputs` (indices; ones beyond the inputs of a
 * call are ignored, for optional inputs). With `period` > 0 the inputs are a list of records of
 * `period` tensors each, and the indices repeat in every record. `runOp` then bumps their write version after every
 * call, so caches keyed by write versions stay exact. Every kernel that writes into an input
 * must be declared here; the write check (`setWriteCheck`) finds the ones that are not.
 */
export function registerInPlaceOp(op: string, inputs: readonly number[], period = 0): void {
  if (inputs.some((i) => !Number.isInteger(i) || i < 0)) throw new Error(`registerInPlaceOp('${op}'): input indices must be non-negative integers, found [${inputs.join(', ')}]`);
  if (!Number.isInteger(period) || period < 0 || (period > 0 && inputs.some((i) => i >= period))) {
    throw new Error(`registerInPlaceOp('${op}'): period must be 0 or an integer above every index, found ${period} for [${inputs.join(', ')}]`);
  }
  inPlace.set(op, { inputs: Object.freeze([...inputs]), period });
}

/** The inputs op `op` writes into (undefined: none, the op only reads its inputs). For an op
 * over a list of tensors (registered with a period), the indices within the first period. */
export function mutatedInputs(op: string): readonly number[] | undefined {
  return inPlace.get(op)?.inputs;
}

/** The inputs a call of op `op` with `count` inputs writes into (the declared indices, repeated
 * every period for ops over lists of tensors). */
export function mutatedInputsOf(op: string, count: number): number[] | undefined {
  const e = inPlace.get(op);
  if (!e) return undefined;
  if (e.period === 0) return e.inputs.filter((i) => i < count);
  const out: number[] = [];
  for (let base = 0; base < count; base += e.period) for (const i of e.inputs) if (base + i < count) out.push(base + i);
  return out;
}

export function registeredOps(): string[] {
  return [...kernels.keys()].sort();
}

export function kernelBackends(op: string): string[] {
  return [...(kernels.get(op)?.keys() ?? [])];
}
