// safetensors reader/writer: golden Hugging Face fixtures, round trips, writer layout, atomic
// writes and dtype conversions. Hostile inputs are in safetensors-errors.test.ts, F16/BF16 bit
// conversions in half.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  SafetensorsError,
  fromFloat32,
  fromInt32,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  toFloat32,
  toFloat64,
  toInt32,
  writeSafetensors,
  type SafeDType,
  type SafeFile,
  type SafeTensor,
} from '../../src/io/index.js';
import { FIXTURES_DIR, assertRefused, fixtureFolders } from './support.js';

const haveFixtures = existsSync(FIXTURES_DIR);
const skipFixtures = haveFixtures ? false : `fixtures not found at ${FIXTURES_DIR}`;

function fixtureFiles(): string[] {
  const files: string[] = [];
  for (const dir of fixtureFolders()) {
    for (const name of readdirSync(join(FIXTURES_DIR, dir)).sort()) {
      if (name.endsWith('.safetensors')) files.push(join(FIXTURES_DIR, dir, name));
    }
  }
  return files;
}

function tensor(dtype: SafeDType, shape: number[], bytes: number[]): SafeTensor {
  return { dtype, shape, data: Uint8Array.from(bytes) };
}

/** Same names (in the same order), dtypes, shapes, bytes and metadata. */
function assertSameFile(actual: SafeFile, expected: SafeFile): void {
  assert.deepEqual([...actual.tensors.keys()].sort(), [...expected.tensors.keys()].sort());
  for (const [name, t] of expected.tensors) {
    const a = actual.tensors.get(name)!;
    assert.equal(a.dtype, t.dtype, name);
    assert.deepEqual(a.shape, t.shape, name);
    assert.deepEqual(a.data, t.data, name);
  }
  assert.deepEqual(actual.metadata, expected.metadata);
}

function withTempDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'stackwise-safetensors-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Golden fixtures

test('every fixture file reads with sane names, dtypes, shapes and aligned data', { skip: skipFixtures }, () => {
  const files = fixtureFiles();
  assert.ok(files.length >= 4, `expected fixture files in ${FIXTURES_DIR}`);
  for (const path of files) {
    const file = readSafetensors(path);
    assert.ok(file.tensors.size > 0, path);
    for (const [name, t] of file.tensors) {
      assert.ok(name.length > 0 && !name.includes('__metadata__'), `${path}: ${name}`);
      assert.ok(t.dtype === 'F32' || t.dtype === 'I64', `${path}: ${name} has dtype ${t.dtype}`);
      assert.ok(t.shape.every((d) => Number.isInteger(d) && d > 0), `${path}: ${name} shape ${t.shape}`);
      const count = t.shape.reduce((a, b) => a * b, 1);
      assert.equal(t.data.length, count * (t.dtype === 'F32' ? 4 : 8));
      assert.equal(t.data.byteOffset % 8, 0, 'tensor bytes must be safe to wrap in a typed array');
      if (t.dtype === 'F32') assert.ok(toFloat32(t).every(Number.isFinite), `${path}: ${name} has non-finite values`);
    }
    const kind = path.endsWith('case.safetensors') ? 'case' : 'weights';
    if (kind === 'weights') assert.deepEqual(file.metadata, { format: 'pt' });
    else assert.match(file.metadata['generator'] ?? '', /generate\.py/);
  }
});

test('fixture weights agree with config.json and HF default init', { skip: skipFixtures }, () => {
  for (const dir of fixtureFolders()) {
    const config = JSON.parse(readFileSync(join(FIXTURES_DIR, dir, 'config.json'), 'utf8')) as Record<string, number>;
    const vocab = config['vocab_size']!;
    const hidden = config['hidden_size'] ?? config['n_embd']!;
    const { tensors } = readSafetensors(join(FIXTURES_DIR, dir, 'model.safetensors'));
    const embedding = [...tensors].find(([n]) => /(word_embeddings|wte|embed_tokens)\.weight$/.test(n));
    assert.ok(embedding, `${dir}: no token embedding`);
    assert.deepEqual(embedding[1].shape, [vocab, hidden], `${dir}: ${embedding[0]}`);
    // HF initialises norm weights to exactly 1 (and LayerNorm biases to 0).
    for (const [name, t] of tensors) {
      if (/(LayerNorm|ln_\d|ln_f|norm|layernorm)\.weight$/.test(name)) assert.ok(toFloat32(t).every((v) => v === 1), name);
      if (/(LayerNorm|ln_\d|ln_f)\.bias$/.test(name)) assert.ok(toFloat32(t).every((v) => v === 0), name);
    }
  }
});

test('fixture cases hold int64 inputs and float32 outputs of the expected shapes', { skip: skipFixtures }, () => {
  for (const dir of fixtureFolders()) {
    const config = JSON.parse(readFileSync(join(FIXTURES_DIR, dir, 'config.json'), 'utf8')) as Record<string, number>;
    const vocab = config['vocab_size']!;
    const { tensors } = readSafetensors(join(FIXTURES_DIR, dir, 'case.safetensors'));
    const ids = toInt32(tensors.get('input_ids')!);
    assert.ok(ids.every((id) => id >= 0 && id < vocab), `${dir}: input ids in [0, ${vocab})`);
    assert.ok(toInt32(tensors.get('attention_mask')!).every((m) => m === 0 || m === 1));
    assert.ok(toInt32(tensors.get('labels')!).every((l) => l === -100 || (l >= 0 && l < vocab)));
    assert.deepEqual(tensors.get('logits')!.shape, [...tensors.get('input_ids')!.shape, vocab]);
    const loss = tensors.get('loss')!;
    assert.deepEqual(loss.shape, []);
    const value = toFloat64(loss)[0]!;
    assert.ok(value > 0 && value < 2 * Math.log(vocab), `${dir}: loss ${value}`);
  }
});

test('parse and read agree, and parse(serialize(x)) round-trips every fixture exactly', { skip: skipFixtures }, () => {
  for (const path of fixtureFiles()) {
    const bytes = readFileSync(path);
    const file = parseSafetensors(bytes, path);
    assertSameFile(readSafetensors(path), file);
    const again = parseSafetensors(serializeSafetensors(file.tensors, file.metadata));
    assertSameFile(again, file);
    // Files of a single dtype were laid out by name by the reference writer too: byte-identical.
    if (new Set([...file.tensors.values()].map((t) => t.dtype)).size === 1) {
      assert.ok(Buffer.from(serializeSafetensors(file.tensors, file.metadata)).equals(bytes), `${path}: bytes differ`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Writer layout and round trips

test('round trip of every dtype, scalars, empty tensors, Record input and unaligned input', () => {
  const f64 = new Uint8Array(16);
  new DataView(f64.buffer).setFloat64(0, Math.PI, true);
  new DataView(f64.buffer).setFloat64(8, -1e300, true);
  const tensors: Record<string, SafeTensor> = {
    f64: { dtype: 'F64', shape: [2], data: f64 },
    f32: fromFloat32(new Float32Array([1, -0, Infinity, NaN, 3.25, 1e-40]), [2, 3]),
    f16: fromFloat32(new Float32Array([0.5, -65504]), [2], 'F16'),
    bf16: fromFloat32(new Float32Array([3.140625]), [], 'BF16'),
    i64: fromInt32(new Int32Array([-1, 2147483647, -2147483648]), [3, 1], 'I64'),
    i32: fromInt32(new Int32Array([7, -7]), [1, 2]),
    i16: tensor('I16', [2], [0xff, 0xff, 0x01, 0x00]),
    i8: tensor('I8', [3], [0x80, 0x7f, 0x00]),
    u8: tensor('U8', [1, 1, 1], [255]),
    bool: tensor('BOOL', [3], [1, 0, 1]),
    empty: { dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
  };

  const bytes = serializeSafetensors(tensors, { note: 'ü ✓', format: 'pt' });
  // Place the file at an odd offset: parsed tensors must still be aligned.
  const shifted = new Uint8Array(bytes.length + 1).subarray(1);
  shifted.set(bytes);
  const file = parseSafetensors(shifted);
  assertSameFile(file, { tensors: new Map(Object.entries(tensors)), metadata: { note: 'ü ✓', format: 'pt' } });
  for (const t of file.tensors.values()) assert.equal(t.data.byteOffset % 8, 0);

  assert.deepEqual([...toFloat64(file.tensors.get('f64')!)], [Math.PI, -1e300]);
  assert.deepEqual([...toInt32(file.tensors.get('i64')!)], [-1, 2147483647, -2147483648]);
  assert.deepEqual([...toInt32(file.tensors.get('i16')!)], [-1, 1]);
  assert.deepEqual([...toInt32(file.tensors.get('i8')!)], [-128, 127, 0]);
  assert.deepEqual([...toFloat32(file.tensors.get('u8')!)], [255]);
  assert.deepEqual([...toInt32(file.tensors.get('bool')!)], [1, 0, 1]);
  assert.deepEqual([...toFloat32(file.tensors.get('f16')!)], [0.5, -65504]);
  assert.deepEqual([...toFloat32(file.tensors.get('bf16')!)], [3.140625]);
  assert.equal(toFloat32(file.tensors.get('empty')!).length, 0);
  const f32 = toFloat32(file.tensors.get('f32')!);
  assert.deepEqual([...f32.slice(0, 3)], [1, -0, Infinity]);
  assert.ok(Number.isNaN(f32[3]));
  assert.equal(f32[5], Math.fround(1e-40)); // float32 subnormal kept
});

test('writer: sorted keys, metadata first and only when non-empty, contiguous data, 8-byte aligned start', () => {
  const one = (v: number): SafeTensor => fromFloat32(new Float32Array([v]), [1]);
  const tensors = new Map<string, SafeTensor>([['b', one(2)], ['a', one(1)], ['10', one(10)], ['2', one(3)], ['Z', one(4)]]);
  const metadatas: Array<Record<string, string> | undefined> = [undefined, {}, { z: '1', a: '2' }];
  for (const metadata of metadatas) {
    const bytes = serializeSafetensors(tensors, metadata);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(text, /^\{.*\} *$/);
    const header = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
    const keys = Object.keys(header).filter((k) => k !== '__metadata__');
    // Checked on the raw text: JSON.parse would reorder the integer-like keys.
    const textOrder = [...text.matchAll(/"(\w+)":\{"dtype"/g)].map((m) => m[1]);
    assert.deepEqual(textOrder, ['10', '2', 'Z', 'a', 'b']);
    const hasMeta = metadata !== undefined && Object.keys(metadata).length > 0;
    assert.equal(text.startsWith('{"__metadata__":{"a":"2","z":"1"},'), hasMeta);
    assert.equal('__metadata__' in header, hasMeta);
    let offset = 0;
    for (const key of textOrder) {
      assert.deepEqual(header[key!]!.data_offsets, [offset, offset + 4]);
      offset += 4;
    }
    assert.equal(keys.length, 5);
    assert.equal(bytes.length, 8 + n + offset);
  }
  assert.deepEqual(parseSafetensors(serializeSafetensors(new Map())).tensors.size, 0);
});

test('writer refuses bad tensors and metadata, naming the tensor', () => {
  const good = fromFloat32(new Float32Array(2), [2]);
  assertRefused(() => serializeSafetensors({ w: { ...good, dtype: 'F8' as SafeDType } }), 'tensor "w"', 'unsupported dtype "F8"');
  assertRefused(() => serializeSafetensors({ w: { ...good, shape: [3] } }), 'tensor "w"', 'expected 12 bytes', 'found 8');
  assertRefused(() => serializeSafetensors({ w: { ...good, shape: [-2] } }), 'tensor "w"', 'shape[0]', 'found -2');
  assertRefused(() => serializeSafetensors({ __metadata__: good }), 'reserved');
  assertRefused(() => serializeSafetensors({ w: good }, { k: 1 as unknown as string }), 'metadata["k"] to be a string', 'found 1');
  assertRefused(() => serializeSafetensors({ w: { ...good, data: new Float32Array(2) as unknown as Uint8Array } }),
    'expected data to be a Uint8Array', 'Float32Array');
});

test('a data region not fully covered by tensors is refused (the reference refuses it too)', () => {
  const bytes = serializeSafetensors({ w: fromFloat32(new Float32Array([1, 2]), [2]) });
  const padded = new Uint8Array(bytes.length + 4);
  padded.set(bytes);
  assert.throws(() => parseSafetensors(padded, 'gap.safetensors'),
    (e: unknown) => e instanceof SafetensorsError && /gap\.safetensors: .*cover the 12-byte data buffer exactly, found 4 byte\(s\) after the last tensor/.test(e.message));
});

// ---------------------------------------------------------------------------------------------
// Atomic writes

test('writeSafetensors writes, overwrites and leaves no temp file behind', () => {
  withTempDir((dir) => {
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, { w: fromFloat32(new Float32Array([1, 2, 3]), [3]) }, { step: '1' });
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    writeSafetensors(path, new Map([['v', fromInt32(new Int32Array([5]), [1], 'I64')]]));
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    const file = readSafetensors(path);
    assert.deepEqual([...file.tensors.keys()], ['v']);
    assert.deepEqual([...toInt32(file.tensors.get('v')!)], [5]);
    assert.deepEqual(file.metadata, {});
    assert.deepEqual(readFileSync(path), Buffer.from(serializeSafetensors({ v: file.tensors.get('v')! })));
  });
});

test('a failing write leaves an existing file untouched and no temp file', () => {
  withTempDir((dir) => {
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, { w: fromFloat32(new Float32Array([1]), [1]) });
    const before = readFileSync(path);
    const bad = { w: { dtype: 'F7', shape: [1], data: new Uint8Array(4) } as unknown as SafeTensor };
    assertRefused(() => writeSafetensors(path, bad), path, 'tensor "w"', 'unsupported dtype "F7"');
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);

    // Rename itself failing (the target is a non-empty folder) also cleans up after itself.
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    writeFileSync(join(folder, 'keep'), 'x');
    assert.throws(() => writeSafetensors(folder, { w: fromFloat32(new Float32Array([1]), [1]) }));
    assert.deepEqual(readdirSync(dir).sort(), ['folder', 'model.safetensors']);
    assert.deepEqual(readdirSync(folder), ['keep']);
  });
});

// ---------------------------------------------------------------------------------------------
// Conversions

test('toFloat32 / toFloat64 / toInt32 / fromInt32 conversions', () => {
  const i64 = new Uint8Array(16);
  const view = new DataView(i64.buffer);
  view.setBigInt64(0, -5n, true);
  view.setBigInt64(8, 2n ** 40n, true);
  const big: SafeTensor = { dtype: 'I64', shape: [2], data: i64 };
  assert.deepEqual([...toFloat64(big)], [-5, 2 ** 40]);
  assert.deepEqual([...toFloat32(big)], [-5, 2 ** 40]);
  assertRefused(() => toInt32(big), 'toInt32', 'int32 range', 'found 1099511627776 at flat index 1');
  view.setBigInt64(8, -(2n ** 31n) - 1n, true);
  assertRefused(() => toInt32(big), 'found -2147483649');
  assertRefused(() => toInt32(fromFloat32(new Float32Array(1), [1])), 'expected an integer dtype', 'found F32');
  assertRefused(() => toFloat32({ dtype: 'F32', shape: [2], data: new Uint8Array(4) }), 'expected 8 bytes', 'found 4');

  const back = fromInt32(new Int32Array([-2, 3]), [2], 'I64');
  assert.deepEqual([...back.data], [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0, 0, 0, 0, 0]);
  assertRefused(() => fromInt32(new Int32Array(3), [2]), 'shape [2] has 2 elements, but data has 3');
  assertRefused(() => fromFloat32(new Float32Array(1), [1], 'F64' as 'F32'), 'expected dtype F32, F16 or BF16');
});
