// Shared helpers for the io tests (not a test file itself).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

import { SafetensorsError } from '../../src/io/index.js';

/**
 * The repository root: the nearest folder above this file whose package.json is "stackwise".
 * Found by walking up so it works both from test/io/ (ts loaders) and dist/test/io/ (compiled).
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'stackwise') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root (package.json of stackwise) not found');
    dir = parent;
  }
}

/** Golden Hugging Face fixtures, kept in the repository with their generator (generate.py). */
export const FIXTURES_DIR = join(repoRoot(), 'test', 'fixtures', 'hf');

/** Names in a fixture's case.safetensors that are inputs, not results. */
export const FIXTURE_INPUT_NAMES = new Set(['input_ids', 'attention_mask', 'token_type_ids', 'labels', 'position_ids']);

/** The fixture folders that hold a case (empty when the fixtures are absent). */
export function fixtureFolders(): string[] {
  return existsSync(FIXTURES_DIR) ? readdirSync(FIXTURES_DIR).filter((f) => existsSync(join(FIXTURES_DIR, f, 'case.safetensors'))).sort() : [];
}

/** Allowed absolute error against Hugging Face for a result tensor, given the reference value. */
export function goldenTolerance(name: string): (ref: number) => number {
  if (name === 'loss') return (r) => 1e-5 * Math.abs(r);
  if (name.startsWith('grad.')) return (r) => 1e-4 * Math.max(1, Math.abs(r));
  return () => 1e-4;
}

/** A file made of an 8-byte length prefix, `header` as given (no padding) and `data`. */
export function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0): Uint8Array {
  const headerBytes = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const dataBytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + headerBytes.length + dataBytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(dataBytes, 8 + headerBytes.length);
  return out;
}

/** rawFile with a JSON header built from an object. */
export function jsonFile(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  return rawFile(JSON.stringify(header), data);
}

/** Asserts `action` throws a SafetensorsError whose message contains every one of `parts`. */
export function assertRefused(action: () => unknown, ...parts: Array<string | RegExp>): void {
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${String(err)}`);
    for (const part of parts) {
      if (typeof part === 'string') assert.ok(err.message.includes(part), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(part)}`);
      else assert.match(err.message, part);
    }
    return true;
  });
}
