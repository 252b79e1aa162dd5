// Strict safetensors headers, and a seeded, time-bounded fuzzer that keeps them strict.
//
// The fuzzer builds a valid file from random tensors, then applies one structural mutation whose
// verdict is known by construction: a legal rewrite (keys reordered, whitespace, a field added,
// names with odd characters) must load to exactly the tensors it was built from; an illegal one
// (header length off by a few bytes, a duplicate name or field, a gap, an overlap, trailing
// bytes, a wrong byte count, a bad dtype, …) must be refused with a SafetensorsError naming the
// file. Random byte flips on top must never escape as anything else, and whatever still loads
// must tile its data buffer exactly (the silent-garbage case: tensors shifted by a byte).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTYPE_SIZE, SafetensorsError, parseSafetensors, serializeSafetensors, type SafeDType, type SafeTensor } from '../../src/io/index.js';
import { rawFile } from './support.js';
import { fuzzRng } from '../fuzz-rng.js';

const SRC = 'fuzz.safetensors';


const DTYPES: SafeDType[] = ['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'F64'];
const NAME_PARTS = ['w', 'model.layers.0.weight', 'é', '日本', 'a"b', 'back\\slash', 'sp ace', '0', '1', '__proto__', 'constructor', 'x'.repeat(40)];

interface Built { tensors: Map<string, SafeTensor>; entries: { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }[]; data: Uint8Array }

function randomTensors(r: (n: number) => number): Built {
  const count = 1 + r(5);
  const tensors = new Map<string, SafeTensor>();
  while (tensors.size < count) {
    const name = `${NAME_PARTS[r(NAME_PARTS.length)]}${tensors.size}`;
    const dtype = DTYPES[r(DTYPES.length)]!;
    const shape = Array.from({ length: r(4) }, () => r(5));
    const bytes = new Uint8Array(shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype]);
    for (let i = 0; i < bytes.length; i++) bytes[i] = r(256);
    tensors.set(name, { dtype, shape, data: bytes });
  }
  // Lay them out in a random order (not the writer's), back to back.
  const order = [...tensors.keys()].sort(() => r(3) - 1);
  let offset = 0;
  const entries = order.map((name) => {
    const t = tensors.get(name)!;
    const e = { name, dtype: t.dtype, shape: t.shape, begin: offset, end: offset + t.data.length };
    offset = e.end;
    return e;
  });
  const data = new Uint8Array(offset);
  for (const e of entries) data.set(tensors.get(e.name)!.data, e.begin);
  return { tensors, entries, data };
}

const entryJson = (e: Built['entries'][number], extra = ''): string =>
  `${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${e.begin},${e.end}]${extra}}`;

function headerOf(parts: string[], metadata = ''): string {
  return `{${[...(metadata ? [metadata] : []), ...parts].join(',')}}`;
}

/** A file with a length prefix that is `delta` off the real header length (padding follows the JSON). */
function withLength(header: string, data: Uint8Array, padding: number, delta: number): Uint8Array {
  const file = rawFile(header + ' '.repeat(padding), data);
  new DataView(file.buffer).setBigUint64(0, BigInt(new TextEncoder().encode(header).length + padding + delta), true);
  return file;
}

type Mutation = { name: string; valid: boolean; make: (b: Built, r: (n: number) => number) => Uint8Array | undefined };

const MUTATIONS: Mutation[] = [
  { name: 'as built', valid: true, make: (b) => rawFile(headerOf(b.entries.map((e) => entryJson(e))), b.data) },
  { name: 'keys shuffled, metadata, padding', valid: true, make: (b, r) => {
    const parts = b.entries.map((e) => entryJson(e)).sort(() => r(3) - 1);
    return withLength(headerOf(parts, '"__metadata__":{"format":"pt"}'), b.data, r(16), 0);
  } },
  { name: 'extra field in an entry', valid: true, make: (b) => rawFile(headerOf(b.entries.map((e, i) => entryJson(e, i === 0 ? ',"note":1' : ''))), b.data) },
  { name: 'header length too short (cut in the padding)', valid: false, make: (b, r) => withLength(headerOf(b.entries.map((e) => entryJson(e))), b.data, 1 + r(8), -(1 + r(1))) },
  { name: 'header length too long', valid: false, make: (b, r) => b.data.length === 0 ? undefined : withLength(headerOf(b.entries.map((e) => entryJson(e))), b.data, r(4), 1 + r(Math.min(3, b.data.length))) },
  { name: 'trailing bytes after the last tensor', valid: false, make: (b, r) => {
    const data = new Uint8Array(b.data.length + 1 + r(7));
    data.set(b.data);
    return rawFile(headerOf(b.entries.map((e) => entryJson(e))), data);
  } },
  { name: 'duplicate tensor name', valid: false, make: (b, r) => {
    const e = b.entries[r(b.entries.length)]!;
    return rawFile(headerOf([...b.entries.map((x) => entryJson(x)), entryJson({ ...e, begin: b.data.length, end: b.data.length + (e.end - e.begin) })]),
      new Uint8Array([...b.data, ...b.data.subarray(e.begin, e.end)]));
  } },
  { name: 'duplicate field in an entry', valid: false, make: (b) => rawFile(headerOf(b.entries.map((e, i) => entryJson(e, i === b.entries.length - 1 ? `,"dtype":"${e.dtype}"` : ''))), b.data) },
  { name: 'gap between tensors', valid: false, make: (b, r) => {
    const gap = 1 + r(4);
    const k = r(b.entries.length);
    const shifted = b.entries.map((e, i) => (i >= k ? { ...e, begin: e.begin + gap, end: e.end + gap } : e));
    const data = new Uint8Array(b.data.length + gap);
    data.set(b.data.subarray(0, b.entries[k]!.begin));
    data.set(b.data.subarray(b.entries[k]!.begin), b.entries[k]!.begin + gap);
    return rawFile(headerOf(shifted.map((e) => entryJson(e))), data);
  } },
  { name: 'overlapping tensors', valid: false, make: (b, r) => {
    const sized = b.entries.filter((e) => e.end > e.begin);
    if (sized.length === 0) return undefined;
    const e = sized[r(sized.length)]!;
    // A second name over the same bytes.
    return rawFile(headerOf([...b.entries.map((x) => entryJson(x)), entryJson({ ...e, name: `${e.name}-alias` })]), b.data);
  } },
  { name: 'byte count off for the shape', valid: false, make: (b, r) => {
    const k = r(b.entries.length);
    const e = b.entries[k]!;
    const grown = { ...e, shape: [...e.shape, 2] };
    if (grown.shape.reduce((a, c) => a * c, 1) === 0) return undefined;
    return rawFile(headerOf(b.entries.map((x, i) => entryJson(i === k ? grown : x))), b.data);
  } },
  { name: 'unknown dtype', valid: false, make: (b) => rawFile(headerOf(b.entries.map((x, i) => entryJson(i === 0 ? { ...x, dtype: 'F8_E9' as SafeDType } : x))), b.data) },
  { name: 'offsets not integers', valid: false, make: (b, r) => {
    const bad = ['-1', '0.5', '1e400', '"0"', 'null', '9007199254740993'][r(6)]!;
    return rawFile(headerOf(b.entries.map((x, i) => (i === 0 ? `${JSON.stringify(x.name)}:{"dtype":"${x.dtype}","shape":[${x.shape.join(',')}],"data_offsets":[${bad},${x.end}]}` : entryJson(x)))), b.data);
  } },
  { name: 'header truncated mid-JSON', valid: false, make: (b, r) => {
    const h = headerOf(b.entries.map((e) => entryJson(e)));
    return rawFile(h.slice(0, 1 + r(h.length - 1)), b.data);
  } },
];

function expectLoaded(bytes: Uint8Array, built: Built, what: string): void {
  const file = parseSafetensors(bytes, SRC);
  assert.deepEqual([...file.tensors.keys()].sort(), [...built.tensors.keys()].sort(), what);
  for (const [name, t] of built.tensors) {
    const got = file.tensors.get(name)!;
    assert.equal(got.dtype, t.dtype, `${what}: ${name}`);
    assert.deepEqual(got.shape, t.shape, `${what}: ${name}`);
    assert.deepEqual(got.data, t.data, `${what}: ${name} bytes`);
  }
}

function expectRefused(bytes: Uint8Array, what: string): void {
  assert.throws(() => parseSafetensors(bytes, SRC), (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `${what}: expected a SafetensorsError, got ${String(e)}`);
    assert.ok(e.message.startsWith(SRC), `${what}: the message names the file: ${e.message}`);
    assert.ok(e.message.length < 600, `${what}: a short message`);
    return true;
  }, `${what}: must be refused`);
}

/** Whatever loads must tile its data buffer exactly (no tensor shifted into unused bytes). */
function assertTiles(bytes: Uint8Array, what: string): void {
  const file = parseSafetensors(bytes, SRC);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  let total = 0;
  for (const t of file.tensors.values()) total += t.data.length;
  assert.equal(total, bytes.length - 8 - headerLength, `${what}: loaded, so its tensors must fill the data buffer`);
}

test('a header length one byte short (cut in the padding) is refused, not loaded one byte off', () => {
  const bytes = serializeSafetensors({ norm: { dtype: 'F32', shape: [3], data: new Uint8Array(new Float32Array([1, 1, 1]).buffer) } });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const cut = bytes.slice();
  new DataView(cut.buffer).setBigUint64(0, BigInt(headerLength - 1), true);
  expectRefused(cut, 'length - 1');
  assert.throws(() => parseSafetensors(cut, SRC), /cover the 13-byte data buffer exactly, found 1 byte\(s\) after the last tensor/);
});

test('duplicate tensor names and duplicate fields are refused, naming them', () => {
  const one = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
  assert.throws(() => parseSafetensors(rawFile(`{"w":${one},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), SRC),
    /fuzz\.safetensors: tensor "w": the name appears more than once in the header/);
  assert.throws(() => parseSafetensors(rawFile(`{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), SRC),
    /tensor "w": field "dtype" appears more than once in its entry/);
  // Equal names in different objects are not duplicates; escapes are compared decoded.
  assert.equal(parseSafetensors(rawFile(`{"__metadata__":{"w":"x"},"w":${one}}`, 4), SRC).tensors.size, 1);
  assert.throws(() => parseSafetensors(rawFile(`{"w":${one},"\\u0077":${one}}`, 4), SRC), /appears more than once/);
});

test('a gap before, between or after tensors is refused (the tensors must tile the data buffer)', () => {
  assert.throws(() => parseSafetensors(rawFile('{"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2), SRC),
    /tensor "w": expected data_offsets to begin at 0 \(the start of the data buffer/);
  assert.throws(() => parseSafetensors(rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', 3), SRC),
    /tensor "b": expected data_offsets to begin at 1 \(where "a" ends/);
});

test('fuzz: structural header mutations load exactly or are refused; byte flips never load garbage (seeded, bounded)', (t) => {
  const r = fuzzRng(20261207);
  const deadline = Date.now() + 4000;
  const counts = new Map<string, number>();
  let cases = 0;
  let flipped = 0;
  while (cases < 3000 && Date.now() < deadline) {
    const built = randomTensors(r);
    const m = MUTATIONS[r(MUTATIONS.length)]!;
    const bytes = m.make(built, r);
    if (!bytes) continue;
    const what = `case ${cases} (${m.name})`;
    if (m.valid) expectLoaded(bytes, built, what);
    else expectRefused(bytes, what);
    counts.set(m.name, (counts.get(m.name) ?? 0) + 1);
    cases++;
    // The same file with 1-3 random bytes changed: refused cleanly, or loaded and tiling exactly.
    const flippedBytes = bytes.slice();
    for (let f = 1 + r(3); f > 0; f--) flippedBytes[r(flippedBytes.length)] = r(256);
    try {
      assertTiles(flippedBytes, `${what} + flips`);
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof SafetensorsError && e.message.startsWith(SRC), `${what} + flips: ${String(e)}`);
    }
    flipped++;
  }
  t.diagnostic(`${cases} mutated files + ${flipped} byte-flipped files: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  assert.ok(cases >= 500, `only ${cases} cases ran before the time bound`);
  for (const m of MUTATIONS) assert.ok((counts.get(m.name) ?? 0) > 0, `mutation '${m.name}' never ran`);
});
