import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Gpt2Tokenizer,
  TokenCacheError,
  loadOrBuildTokenCache,
  openTokenCache,
  readTokenCacheHeader,
  tokenCachePath,
  trainBpe,
  writeTokenCache,
  type Document,
  type Tokenizer,
} from '../../src/data/index.js';
import { SMALL_CORPUS, tempDir } from './helpers.js';

const dir = tempDir();
const docs: Document[] = SMALL_CORPUS.map((text, i) => ({ id: `d${i}`, text }));
const tokenizer = trainBpe(SMALL_CORPUS, { vocabSize: 330 });

function expectedIds(tok: { encode(t: string): ArrayLike<number>; special: { EOS: number } }): number[] {
  return docs.flatMap((d) => [...Array.from(tok.encode(d.text)), tok.special.EOS]);
}

test('write then read back: same ids, EOS after every document', () => {
  const path = tokenCachePath(dir, 'train');
  const header = writeTokenCache(path, docs, tokenizer);
  assert.equal(header.dtype, 'uint16');
  assert.equal(header.documentCount, docs.length);
  const expected = expectedIds(tokenizer);
  assert.equal(header.tokenCount, expected.length);
  assert.equal(statSync(path).size, 128 + 2 * expected.length);
  assert.deepEqual(readdirSync(join(dir, 'tokens')), ['train.tokens']); // no temp files left
  const { stream } = openTokenCache(path, { tokenizer, documents: docs });
  assert.equal(stream.length, expected.length);
  assert.equal(stream.vocabSize, tokenizer.vocabSize);
  assert.deepEqual(Array.from(stream.window(0, stream.length)), expected);
  assert.deepEqual(Array.from(stream.window(5, 3)), expected.slice(5, 8));
  assert.throws(() => stream.window(stream.length - 2, 3), RangeError);
  const decoded = tokenizer.decode(stream.window(0, stream.length));
  assert.equal(decoded, docs.map((d) => `${d.text}[EOS]`).join(''));
});

/** Wraps a tokenizer but claims a vocabulary too big for uint16 ids. */
function bigVocab(inner: Tokenizer): Tokenizer {
  return {
    vocabSize: 70000,
    special: inner.special,
    encode: (text: string) => inner.encode(text),
    decode: (ids: ArrayLike<number>) => inner.decode(ids),
    toJSON: () => ({ ...inner.toJSON(), vocabSize: 70000 }),
  };
}

test('file-backed windows equal in-memory windows, for uint16 and int32 ids', () => {
  for (const [name, tok, dtype] of [
    ['gpt2', new Gpt2Tokenizer(), 'uint16'],
    ['big', bigVocab(tokenizer), 'int32'],
  ] as const) {
    const path = join(dir, `${name}.tokens`);
    const header = writeTokenCache(path, docs, tok);
    assert.equal(header.dtype, dtype);
    const inMemory = openTokenCache(path, { tokenizer: tok }).stream;
    const fromFile = openTokenCache(path, { tokenizer: tok, inMemoryLimitBytes: 0 }).stream;
    assert.equal(fromFile.constructor.name, 'FileTokenStream');
    assert.deepEqual(Array.from(inMemory.window(0, inMemory.length)), expectedIds(tok));
    for (const [start, len] of [[0, 10], [7, 33], [inMemory.length - 4, 4]] as const) {
      assert.deepEqual(fromFile.window(start, len), inMemory.window(start, len));
    }
    fromFile.close();
    assert.throws(() => fromFile.window(0, 1), /closed/);
  }
});

function assertProblem(fn: () => unknown, problem: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => error instanceof TokenCacheError && error.problem === problem && pattern.test(error.message));
}

test('a cache made with another tokenizer or corpus is refused with a reason', () => {
  const path = tokenCachePath(dir, 'train');
  const other = trainBpe(SMALL_CORPUS, { vocabSize: 300 });
  assertProblem(() => openTokenCache(path, { tokenizer: other }), 'tokenizer-mismatch', /another tokenizer/);
  const changed = [...docs, { id: 'extra', text: 'new' }];
  assertProblem(() => openTokenCache(path, { tokenizer, documents: changed }), 'corpus-mismatch', /different documents/);
  assertProblem(() => openTokenCache(join(dir, 'nope.tokens'), { tokenizer }), 'missing', /does not exist/);
});

test('damaged files are detected', () => {
  const good = readFileSync(tokenCachePath(dir, 'train'));
  const write = (name: string, bytes: Uint8Array): string => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  assertProblem(() => readTokenCacheHeader(write('short', good.subarray(0, 50))), 'truncated', /shorter than its header/);
  assertProblem(() => readTokenCacheHeader(write('cut', good.subarray(0, good.length - 2))), 'truncated', /header promises/);
  const magic = Buffer.from(good);
  magic.write('NOTTOKEN', 0, 'ascii');
  assertProblem(() => readTokenCacheHeader(write('magic', magic)), 'bad-magic', /not a token cache/);
  const version = Buffer.from(good);
  version.writeUInt32LE(99, 8);
  assertProblem(() => readTokenCacheHeader(write('version', version)), 'bad-version', /version 99/);
});

test('loadOrBuild reuses a valid cache and rebuilds a stale one, saying why', () => {
  const path = join(dir, 'run', 'tokens', 'val.tokens');
  const built = loadOrBuildTokenCache(path, docs, tokenizer);
  assert.equal(built.rebuilt, true);
  assert.match(built.reason!, /does not exist/);
  const reused = loadOrBuildTokenCache(path, docs, tokenizer);
  assert.equal(reused.rebuilt, false);
  assert.equal(reused.reason, undefined);
  assert.deepEqual(reused.stream.window(0, reused.stream.length), built.stream.window(0, built.stream.length));
  const other = trainBpe(SMALL_CORPUS, { vocabSize: 300 });
  const rebuilt = loadOrBuildTokenCache(path, docs, other);
  assert.equal(rebuilt.rebuilt, true);
  assert.match(rebuilt.reason!, /another tokenizer/);
  assert.equal(rebuilt.header.vocabSize, 300);
});
