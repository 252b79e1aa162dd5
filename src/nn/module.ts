/**
 * The Module tree: parameters and child modules by name, dotted parameter names, freezing,
 * state dicts, parameter/byte counts, train/eval mode and moving between backends.
 *
 * Parameters are leaf tensors with requiresGrad = true ("frozen" = requiresGrad false), kept out
 * of memory scopes so they persist. One tensor may be registered in several modules (tied
 * embeddings, an adapter shared by a fused projection): it is then listed once, under the first
 * name met in depth-first registration order, and every operation (freeze, to, load) keeps it
 * shared.
 */
import * as E from '../engine/index.js';
import type { Backend, DType, Tensor } from '../engine/index.js';

export class StateDictError extends Error {
  constructor(message: string, readonly problems: readonly string[] = []) {
    super(message);
    this.name = 'StateDictError';
  }
}

export interface LoadStateDictOptions {
  /** Missing or unexpected keys are errors (default true); shape/dtype mismatches always are. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

export interface CountOptions {
  /** Count only parameters with requiresGrad (default false). */
  trainableOnly?: boolean;
}

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

/**
 * What loadStateDict copies from: a tensor, or anything with a shape, a dtype and its values on
 * request. A checkpoint's weights are loaded from views into the file's bytes this way, one
 * tensor's values at a time, instead of as a second model of engine tensors.
 */
export interface StateSource {
  readonly shape: readonly number[];
  readonly dtype: Tensor['dtype'];
  toArray(): ReturnType<Tensor['toArray']>;
}
export type StateDictInput = Map<string, StateSource> | Record<string, StateSource>;

function entriesOf(sd: StateDictInput): [string, StateSource][] {
  return sd instanceof Map ? [...sd.entries()] : Object.entries(sd);
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

export abstract class Module {
  /** True in training mode (dropout active), false after eval(). */
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  /** Short type name used by inspection and error messages. */
  get typeName(): string {
    return this.constructor.name;
  }

  // ---- registration -------------------------------------------------------------------------

  /** Registers (or replaces) a parameter of this module; it becomes a persistent leaf. */
  protected registerParameter(name: string, t: Tensor, trainable = true): Tensor {
    if (name.includes('.')) throw new Error(`${this.typeName}: parameter name '${name}' must not contain '.'`);
    if (this._children.has(name)) throw new Error(`${this.typeName}: '${name}' is already a child module`);
    E.keep(t);
    t.requiresGrad = trainable;
    this._params.set(name, t);
    return t;
  }

  /** Removes a parameter (the tensor is not disposed: it may be shared). */
  protected unregisterParameter(name: string): Tensor | undefined {
    const t = this._params.get(name);
    this._params.delete(name);
    return t;
  }

  /** Registers (or replaces) a child module. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    if (name.includes('.')) throw new Error(`${this.typeName}: module name '${name}' must not contain '.'`);
    if (this._params.has(name)) throw new Error(`${this.typeName}: '${name}' is already a parameter`);
    this._children.set(name, m);
    return m;
  }

  protected unregisterModule(name: string): Module | undefined {
    const m = this._children.get(name);
    this._children.delete(name);
    return m;
  }

  /** Drops every child (used by lists that renumber their items). */
  protected clearModules(): void {
    this._children.clear();
  }

  /** The parameter registered under `name` in this very module. */
  protected param(name: string): Tensor {
    const t = this._params.get(name);
    if (!t) throw new Error(`${this.typeName}: no parameter '${name}'`);
    return t;
  }

  /** The parameter registered under `name` in this very module, or null when there is none. */
  protected optionalParam(name: string): Tensor | null {
    return this._params.get(name) ?? null;
  }

  protected hasParam(name: string): boolean {
    return this._params.has(name);
  }

  /** Own parameters (not children's), in registration order. */
  ownParameters(): [string, Tensor][] {
    return [...this._params.entries()];
  }

  /** Direct children, in order. */
  namedChildren(): [string, Module][] {
    return [...this._children.entries()];
  }

  // ---- traversal ----------------------------------------------------------------------------

  /**
   * Every distinct parameter with its dotted name (depth first, own parameters before
   * children's). Sets each tensor's `name` to that dotted name (prefixed by `prefix`).
   */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const walk = (m: Module, p: string) => {
      for (const [n, t] of m._params) {
        if (seen.has(t)) continue;
        seen.add(t);
        const full = p + n;
        t.name = full;
        out.push([full, t]);
      }
      for (const [n, c] of m._children) walk(c, `${p}${n}.`);
    };
    walk(this, prefix ? `${prefix}.` : '');
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters with requiresGrad (what an optimizer should update). */
  trainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, t]) => t.requiresGrad);
  }

  /** This module ('') and every descendant with its dotted path. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const walk = (m: Module, p: string) => {
      out.push([p, m]);
      for (const [n, c] of m._children) walk(c, p ? `${p}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }

  /** The descendant at a dotted path ('' = this). */
  getModule(path: string): Module {
    if (path === '') return this;
    let m: Module = this;
    for (const part of path.split('.')) {
      const c = m._children.get(part);
      if (!c) throw new Error(`${this.typeName}: no module at '${path}' ('${part}' not found among ${[...m._children.keys()].join(', ') || 'no children'})`);
      m = c;
    }
    return m;
  }

  /** The parameter at a dotted path. */
  getParameter(path: string): Tensor {
    const i = path.lastIndexOf('.');
    const owner = i < 0 ? this : this.getModule(path.slice(0, i));
    const t = owner._params.get(path.slice(i + 1));
    if (!t) throw new Error(`${this.typeName}: no parameter '${path}'`);
    return t;
  }

  // ---- freezing -----------------------------------------------------------------------------

  /** Stops gradients to every parameter of this subtree (requiresGrad = false). */
  freeze(): this {
    for (const t of this.parameters()) t.requiresGrad = false;
    return this;
  }

  /** Makes every parameter of this subtree trainable again. */
  unfreeze(): this {
    for (const t of this.parameters()) t.requiresGrad = true;
    return this;
  }

  /** True when no parameter of this subtree is trainable (and there is at least one). */
  get isFrozen(): boolean {
    const ps = this.parameters();
    return ps.length > 0 && ps.every((t) => !t.requiresGrad);
  }

  // ---- state dict ---------------------------------------------------------------------------

  /** The parameters by dotted name (the live tensors, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies values into the parameters in place (their identity, names and requiresGrad stay).
   * Shape or dtype mismatches are always errors; missing/unexpected keys are errors when
   * `strict` (default), otherwise they are returned. Nothing is written unless every check passes.
   */
  loadStateDict(sd: StateDictInput, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const own = new Map(this.namedParameters());
    const given = entriesOf(sd);
    const problems: string[] = [];
    const missing: string[] = [];
    const unexpected: string[] = [];
    const seen = new Set<string>();
    const copies: [Tensor, StateSource][] = [];
    for (const [key, src] of given) {
      seen.add(key);
      const dst = own.get(key);
      if (!dst) { unexpected.push(key); continue; }
      if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i])) {
        problems.push(`'${key}': shape mismatch, expected ${shapeStr(dst.shape)}, found ${shapeStr(src.shape)}`);
      } else if (src.dtype !== dst.dtype) {
        problems.push(`'${key}': dtype mismatch, expected ${dst.dtype}, found ${src.dtype}`);
      } else {
        copies.push([dst, src]);
      }
    }
    for (const key of own.keys()) if (!seen.has(key)) missing.push(key);
    if (strict) {
      for (const k of missing) problems.push(`'${k}': missing from the state dict (expected ${describeParam(own.get(k)!)})`);
      for (const k of unexpected) problems.push(`'${k}': unexpected key (the model has no such parameter)`);
    }
    if (problems.length > 0) {
      const head = `loadStateDict (${this.typeName}): `;
      throw new StateDictError(
        problems.length === 1 ? head + problems[0] : `${head}${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`,
        problems,
      );
    }
    for (const [dst, src] of copies) {
      if (dst === src) continue;
      dst.write(src.toArray());
    }
    return { missing, unexpected };
  }

  // ---- counts -------------------------------------------------------------------------------

  numParameters(opts: CountOptions = {}): number {
    let n = 0;
    // Packed quantized tensors carry the number of weights they represent.
    for (const t of this.parameters()) if (!opts.trainableOnly || t.requiresGrad) n += (t as { representedParameters?: number }).representedParameters ?? t.size;
    return n;
  }

  /** Bytes held by the parameters (each shared tensor counted once). */
  numBytes(opts: CountOptions = {}): number {
    let n = 0;
    for (const t of this.parameters()) if (!opts.trainableOnly || t.requiresGrad) n += t.bytes;
    return n;
  }

  // ---- modes and placement ------------------------------------------------------------------

  /** Sets training mode on the whole subtree (dropout is active only in training mode). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Moves every parameter to `backend` (and optionally casts floats to `dtype`): each tensor is
   * replaced by a copy, shared tensors stay shared, requiresGrad and names carry over, the old
   * tensors are disposed and gradients dropped.
   */
  to(backend: Backend | string, opts: { dtype?: DType } = {}): this {
    const mapping = new Map<Tensor, Tensor>();
    for (const [, m] of this.namedModules()) {
      for (const [n, t] of m._params) {
        let nt = mapping.get(t);
        if (!nt) {
          nt = E.noGrad(() => {
            let moved = E.toBackend(t, backend);
            if (opts.dtype && opts.dtype !== moved.dtype && moved.dtype !== 'int32') {
              const c = E.cast(moved, opts.dtype);
              moved.dispose();
              moved = c;
            }
            return moved;
          });
          E.keep(nt);
          nt.requiresGrad = t.requiresGrad;
          nt.name = t.name;
          mapping.set(t, nt);
        }
        m._params.set(n, nt);
      }
    }
    for (const [old] of mapping) {
      if (old.grad) { old.grad.dispose(); old.grad = null; }
      old.dispose();
    }
    this.onParametersReplaced();
    return this;
  }

  /**
   * Puts `replacement` wherever `old` is a parameter of this tree (a tied tensor stays tied), with
   * old's name and trainability, and disposes `old`. For a loader filling a model that was built
   * without its weights (`withoutWeights`): the shape may differ from the placeholder's.
   */
  replaceTensor(old: Tensor, replacement: Tensor): void {
    let found = false;
    for (const [, m] of this.namedModules()) {
      for (const [n, t] of m._params) {
        if (t !== old) continue;
        m._params.set(n, replacement);
        found = true;
      }
    }
    if (!found) throw new Error(`${this.typeName}.replaceTensor: ${old.describe()} is not a parameter of this module`);
    E.keep(replacement);
    replacement.requiresGrad = old.requiresGrad;
    replacement.name = old.name;
    if (old !== replacement) old.dispose();
    this.onParametersReplaced();
  }

  /** Hook for modules that cache derived tensors (called after `to` and `replaceTensor`). */
  protected onParametersReplaced(): void {
    for (const [, c] of this._children) c.onParametersReplaced();
  }

  /** Clears the `.grad` of every parameter. */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      if (t.grad) { t.grad.dispose(); t.grad = null; }
    }
  }

  /** Frees every parameter (and gradient) of the subtree; the module is unusable afterwards. */
  dispose(): void {
    for (const t of this.parameters()) {
      if (t.grad) { t.grad.dispose(); t.grad = null; }
      t.dispose();
    }
  }

  /** The backend of the first parameter (the default backend when there is none). */
  get backend(): Backend {
    const p = this.parameters()[0];
    return p ? p.backend : E.getDefaultBackend();
  }

  /** The dtype of the first floating parameter (float32 when there is none). */
  get dtype(): DType {
    const p = this.parameters().find((t) => t.dtype !== 'int32');
    return p ? p.dtype : 'float32';
  }
}

function describeParam(t: Tensor): string {
  return `${t.dtype}${shapeStr(t.shape)}`;
}

/** An ordered list of modules named '0', '1', … (renumbered on insert/remove). */
export class ModuleList<M extends Module> extends Module {
  private items: M[] = [];

  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new Error(`${this.typeName}: index ${i} out of range (length ${this.items.length})`);
    return m;
  }

  push(m: M): this {
    this.items.push(m);
    this.registerModule(String(this.items.length - 1), m);
    return this;
  }

  insert(index: number, m: M): this {
    if (index < 0 || index > this.items.length) throw new Error(`${this.typeName}: insert index ${index} out of range [0, ${this.items.length}]`);
    this.items.splice(index, 0, m);
    this.renumber();
    return this;
  }

  remove(index: number): M {
    const m = this.at(index);
    this.items.splice(this.items.indexOf(m), 1);
    this.renumber();
    return m;
  }

  toArray(): M[] {
    return [...this.items];
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  private renumber(): void {
    this.clearModules();
    this.items.forEach((m, i) => this.registerModule(String(i), m));
  }
}
