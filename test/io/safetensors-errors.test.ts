// Hostile / broken safetensors files: each must be refused with a SafetensorsError that names the
// file, the tensor (where there is one) and what was expected vs found — never a crash or an
// out-of-memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  SafetensorsError,
  fromFloat32,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
} from '../../src/io/index.js';
import { assertRefused, jsonFile, rawFile } from './support.js';

const SRC = 'bad.safetensors';
const refuse = (bytes: Uint8Array, ...parts: Array<string | RegExp>): void =>
  assertRefused(() => parseSafetensors(bytes, SRC), SRC, ...parts);

/** A well-formed header entry for a tensor of four F32 values at `begin`. */
const entry = (begin = 0, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ dtype: 'F32', shape: [4], data_offsets: [begin, begin + 16], ...extra });

function prefixOnly(length: bigint, trailing = 0): Uint8Array {
  const out = new Uint8Array(8 + trailing);
  new DataView(out.buffer).setBigUint64(0, length, true);
  return out;
}

test('file shorter than 8 bytes', () => {
  refuse(new Uint8Array(0), 'expected at least 8 bytes', 'found a file of 0 bytes');
  refuse(new Uint8Array(7), 'found a file of 7 bytes');
});

test('header length larger than the file', () => {
  refuse(prefixOnly(1000n, 10), 'header length is 1000 bytes but only 10 bytes follow', 'truncated');
});

test('absurd header length is refused before allocating', () => {
  refuse(prefixOnly(100_000_001n, 4), 'header length 100000001 exceeds the 100000000-byte limit');
  refuse(prefixOnly(2n ** 64n - 1n), 'header length 18446744073709551615 exceeds');
  // Through the file reader too: the file is 16 bytes, whatever its prefix claims.
  const dir = mkdtempSync(join(tmpdir(), 'stackwise-safetensors-'));
  try {
    const path = join(dir, 'huge-header.safetensors');
    writeFileSync(path, prefixOnly(2n ** 62n, 8));
    assertRefused(() => readSafetensors(path), path, 'exceeds the 100000000-byte limit');
    writeFileSync(path, prefixOnly(50_000_000n, 8));
    assertRefused(() => readSafetensors(path), path, 'header length is 50000000 bytes but only 8 bytes follow');
    writeFileSync(path, new Uint8Array(3));
    assertRefused(() => readSafetensors(path), path, 'found a file of 3 bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('header that is not UTF-8', () => {
  refuse(rawFile(Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d])), 'expected the 4-byte header to be UTF-8 text, found invalid UTF-8');
});

test('header that is not JSON', () => {
  refuse(rawFile('{"w": {"dtype": "F32",'), 'expected the header to be JSON, found invalid JSON');
  refuse(rawFile(''), 'found invalid JSON');
});

test('header that is not a JSON object', () => {
  refuse(rawFile('[1, 2]'), 'expected the header to be a JSON object, found an array');
  refuse(rawFile('null'), 'found null');
  refuse(rawFile('"w"'), 'found a string');
  refuse(rawFile('42'), 'found a number');
});

test('entry that is not an object', () => {
  refuse(jsonFile({ w: 5 }), 'tensor "w"', 'expected an object {dtype, shape, data_offsets}, found 5');
  refuse(jsonFile({ w: [1] }), 'tensor "w"', 'found [1]');
});

test('entry missing dtype, shape or data_offsets', () => {
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    const e = entry();
    delete e[field];
    refuse(jsonFile({ w: e }, 16), 'tensor "w"', `missing "${field}"`);
  }
});

test('entry fields of the wrong type', () => {
  refuse(jsonFile({ w: entry(0, { dtype: 5 }) }, 16), 'tensor "w"', 'expected dtype to be a string, found 5');
  refuse(jsonFile({ w: entry(0, { shape: '4' }) }, 16), 'tensor "w"', 'expected shape to be an array of integers, found "4"');
  refuse(jsonFile({ w: entry(0, { shape: ['4'] }) }, 16), 'tensor "w"', 'expected shape[0] to be a non-negative integer, found "4"');
  refuse(jsonFile({ w: entry(0, { data_offsets: [0] }) }, 16), 'tensor "w"', 'expected data_offsets to be [begin, end]', 'found [0]');
  refuse(jsonFile({ w: entry(0, { data_offsets: ['0', '16'] }) }, 16), 'tensor "w"', 'found ["0","16"]');
  refuse(jsonFile({ w: entry(0, { data_offsets: [-16, 0] }) }, 16), 'tensor "w"', 'non-negative integers', 'found [-16,0]');
  refuse(jsonFile({ w: entry(0, { data_offsets: [0, 16.5] }) }, 16), 'tensor "w"', 'found [0,16.5]');
  refuse(rawFile('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1e30]}}', 16), 'tensor "w"', 'found [0,1e+30]');
});

test('negative or non-integer shape dims, and shapes too large to count', () => {
  refuse(jsonFile({ w: entry(0, { shape: [-1, -4] }) }, 16), 'tensor "w"', 'expected shape[0] to be a non-negative integer, found -1');
  refuse(jsonFile({ w: entry(0, { shape: [2, 1.5] }) }, 16), 'tensor "w"', 'shape[1]', 'found 1.5');
  refuse(jsonFile({ w: entry(0, { shape: [2 ** 40, 2 ** 40] }) }, 16), 'tensor "w"', 'more than 2^53 elements');
});

test('unknown dtype', () => {
  refuse(jsonFile({ w: entry(0, { dtype: 'F8_E4M3' }) }, 16), 'tensor "w"', 'unsupported dtype "F8_E4M3"',
    'expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL');
});

test('data_offsets out of range of the data buffer', () => {
  refuse(jsonFile({ w: entry(8) }, 16), 'tensor "w"', 'data_offsets [8, 24] extend past the end of the 16-byte data buffer');
});

test('data_offsets with begin > end', () => {
  refuse(jsonFile({ w: entry(0, { data_offsets: [16, 0] }) }, 16), 'tensor "w"', 'expected data_offsets begin <= end, found [16, 0]');
});

test('byte length that does not match the shape and dtype', () => {
  refuse(jsonFile({ w: entry(0, { shape: [5] }) }, 16), 'tensor "w"',
    'expected 20 bytes (shape [5] of F32, 4 bytes each), found data_offsets [0, 16] spanning 16 bytes');
  refuse(jsonFile({ w: entry(0, { dtype: 'F16' }) }, 16), 'tensor "w"', 'expected 8 bytes', 'spanning 16 bytes');
});

test('overlapping tensors', () => {
  refuse(jsonFile({ a: entry(0), b: entry(8) }, 24), 'tensor "b"', 'not to overlap', 'overlap with "a" at [0, 16]');
  refuse(jsonFile({ a: entry(0), b: entry(0) }, 16), 'overlap with');
  // A zero-sized tensor occupies no bytes, but must still sit on the tiling (as the reference requires).
  const ok = parseSafetensors(jsonFile({ a: entry(0), e: { dtype: 'F32', shape: [0], data_offsets: [16, 16] } }, 16), SRC);
  assert.equal(ok.tensors.get('e')!.data.length, 0);
  refuse(jsonFile({ a: entry(0), e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } }, 16), 'tensor "e"', 'overlap with "a"');
});

test('truncated file', () => {
  const bytes = serializeSafetensors({ w: fromFloat32(new Float32Array(8), [2, 4]) });
  refuse(bytes.subarray(0, bytes.length - 1), 'tensor "w"', 'extend past the end of the 31-byte data buffer', 'truncated');
  refuse(bytes.subarray(0, 20), 'only 12 bytes follow the length prefix', 'truncated');
});

test('metadata that is not an object of strings', () => {
  refuse(jsonFile({ __metadata__: { format: 'pt', step: 10 } }), 'expected __metadata__["step"] to be a string, found 10');
  refuse(jsonFile({ __metadata__: ['pt'] }), 'expected __metadata__ to be an object of strings, found ["pt"]');
  refuse(jsonFile({ __metadata__: 'pt' }), 'found "pt"');
  assert.deepEqual(parseSafetensors(jsonFile({ __metadata__: null }), SRC).metadata, {});
});

test('names that look like object internals stay plain names', () => {
  const file = parseSafetensors(rawFile('{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), SRC);
  assert.deepEqual([...file.tensors.keys()], ['__proto__']);
  assert.equal(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value, 'x');
  assert.equal(Object.getPrototypeOf(file.metadata), Object.prototype);
});

test('deeply nested or huge values are reported briefly, without overflowing the stack', () => {
  const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
  refuse(rawFile(`{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`), 'tensor "w"', 'found [[[[...]]]]');
  refuse(rawFile(`{"w":${deep}}`), 'tensor "w"', 'expected an object');
  refuse(rawFile(`{"__metadata__":{"a":${deep}}}`), '__metadata__["a"]');
  refuse(rawFile(deep), 'found an array');
  const longName = 'x'.repeat(1_000_000);
  assertRefused(() => parseSafetensors(jsonFile({ [longName]: 1 }), SRC), SRC, 'expected an object');
  assert.throws(() => parseSafetensors(jsonFile({ [longName]: 1 }), SRC), (err: Error) => err.message.length < 400);
});

test('random corruption of a valid file never escapes as anything but a SafetensorsError', () => {
  const good = serializeSafetensors({
    a: fromFloat32(new Float32Array([1, 2, 3]), [3], 'BF16'),
    b: fromFloat32(new Float32Array([4, 5]), [1, 2]),
  }, { k: 'v' });
  let seed = 12345;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let refused = 0;
  for (let round = 0; round < 3000; round++) {
    const bytes = good.slice(0, round % 7 === 0 ? random(good.length + 1) : good.length);
    const flips = 1 + random(3);
    for (let f = 0; f < flips && bytes.length > 0; f++) bytes[random(bytes.length)] = random(256);
    try {
      parseSafetensors(bytes, SRC);
    } catch (err) {
      assert.ok(err instanceof SafetensorsError, `round ${round}: ${String(err)}`);
      assert.ok(err.message.startsWith(SRC), err.message);
      refused++;
    }
  }
  assert.ok(refused > 100, `only ${refused} corruptions refused`);
});
