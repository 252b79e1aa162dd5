/** Named backends and the default one that new tensors are created on. */
import type { Backend } from './backend.js';

const backends = new Map<string, Backend>();
let defaultName: string | null = null;
let chooseDefault: (() => string) | null = null;

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

export function getBackend(name: string): Backend {
  const b = backends.get(name);
  if (!b) throw new Error(`unknown backend '${name}' (available: ${[...backends.keys()].join(', ') || 'none'})`);
  return b;
}

export function availableBackends(): string[] {
  return [...backends.keys()];
}

/** Installs the rule that picks the default backend lazily (native when its addon loads). */
export function setDefaultBackendChooser(fn: () => string): void {
  chooseDefault = fn;
}

export function setDefaultBackend(name: string): void {
  getBackend(name);
  defaultName = name;
}

export function getDefaultBackend(): Backend {
  if (defaultName === null) defaultName = chooseDefault ? chooseDefault() : 'reference';
  return getBackend(defaultName);
}
