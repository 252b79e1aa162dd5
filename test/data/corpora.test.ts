import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorpusError, findInvalidUtf8, loadCorpus, splitDocuments, splitOf, type Document } from '../../src/data/index.js';
import { tempDir } from './helpers.js';

const dir = tempDir();

test('SOTU: one document per address', () => {
  const docs = loadCorpus({ kind: 'sotu' });
  assert.ok(docs.length >= 200, `only ${docs.length} addresses`);
  assert.equal(docs[0]!.id, 'sotu/1790-george-washington');
  assert.ok(docs.every((d) => d.text.length > 1000));
  assert.equal(new Set(docs.map((d) => d.id)).size, docs.length);
});

test('Moby-Dick: one document per chapter', () => {
  const docs = loadCorpus({ kind: 'moby-dick' });
  const chapters = docs.filter((d) => d.id.startsWith('moby-dick/chapter-'));
  assert.equal(chapters.length, 135);
  assert.ok(docs.some((d) => d.id === 'moby-dick/epilogue'));
  assert.ok(!docs.some((d) => d.id.includes('contents')));
  assert.match(docs.find((d) => d.id === 'moby-dick/chapter-1')!.text, /^Loomings\.\n\nCall me Ishmael/);
});

test('sentiment: 3 x 1000 labelled sentences, balanced', () => {
  const docs = loadCorpus({ kind: 'sentiment' });
  assert.equal(docs.length, 3000);
  for (const source of ['amazon', 'imdb', 'yelp']) {
    const part = docs.filter((d) => d.id.startsWith(`sentiment/${source}/`));
    assert.equal(part.length, 1000);
    assert.equal(part.filter((d) => d.label === 1).length, 500);
    assert.equal(part.filter((d) => d.label === 0).length, 500);
  }
  assert.ok(docs.every((d) => d.text.trim().length > 0));
});

test('text and JSONL files', () => {
  const a = join(dir, 'a.txt');
  const b = join(dir, 'b.txt');
  writeFileSync(a, '\uFEFFfirst document\nwith two lines\n');
  writeFileSync(b, 'second 🙂');
  assert.deepEqual(loadCorpus({ kind: 'files', paths: [a, b] }), [
    { id: a, text: 'first document\nwith two lines\n' },
    { id: b, text: 'second 🙂' },
  ]);
  const jsonl = join(dir, 'c.jsonl');
  writeFileSync(jsonl, '{"body": "one", "label": 1}\r\n\n{"body": "two", "id": "custom"}\n');
  assert.deepEqual(loadCorpus({ kind: 'files', paths: [jsonl], format: 'jsonl', jsonlField: 'body' }), [
    { id: `${jsonl}:1`, text: 'one', label: 1 },
    { id: 'custom', text: 'two' },
  ]);
});

function assertCorpusError(spec: Parameters<typeof loadCorpus>[0], pattern: RegExp): void {
  assert.throws(() => loadCorpus(spec), (error: unknown) => error instanceof CorpusError && pattern.test(error.message));
}

test('bad files are refused with clear errors', () => {
  const missing = join(dir, 'missing.txt');
  assertCorpusError({ kind: 'files', paths: [missing] }, new RegExp(`${missing}.*does not exist`));
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '');
  assertCorpusError({ kind: 'files', paths: [empty] }, /empty\.txt is empty/);
  const blank = join(dir, 'blank.txt');
  writeFileSync(blank, ' \n\t\n');
  assertCorpusError({ kind: 'files', paths: [blank] }, /only whitespace/);
  const invalid = join(dir, 'invalid.txt');
  writeFileSync(invalid, Buffer.concat([Buffer.from('héllo '), Buffer.from([0xc3, 0x28]), Buffer.from(' world')]));
  assertCorpusError({ kind: 'files', paths: [invalid] }, /invalid\.txt is not valid UTF-8: .*byte offset 7 \(c3 28/);
  assertCorpusError({ kind: 'files', paths: [] }, /at least one file/);
  assertCorpusError({ kind: 'files', paths: [dir] }, /is a directory/);
  const badJson = join(dir, 'bad.jsonl');
  writeFileSync(badJson, '{"text": "ok"}\n{"text": oops}\n');
  assertCorpusError({ kind: 'files', paths: [badJson], format: 'jsonl' }, /bad\.jsonl:2: invalid JSON/);
  const noField = join(dir, 'nofield.jsonl');
  writeFileSync(noField, '{"body": "x"}\n');
  assertCorpusError({ kind: 'files', paths: [noField], format: 'jsonl' }, /nofield\.jsonl:1: field "text" is missing/);
  const dup = join(dir, 'dup.jsonl');
  writeFileSync(dup, '{"text": "a", "id": "x"}\n{"text": "b", "id": "x"}\n');
  assertCorpusError({ kind: 'files', paths: [dup], format: 'jsonl' }, /"x" occurs more than once/);
  assertCorpusError({ kind: 'nope' } as never, /unknown/);
});

test('UTF-8 validator agrees with the WHATWG decoder', () => {
  const cases: [number[], number][] = [
    [[0x41, 0x42], -1],
    [[0xf0, 0x9f, 0x99, 0x82], -1],
    [[0x41, 0x80], 1], // lone continuation byte
    [[0xc0, 0x80], 0], // overlong NUL
    [[0xe0, 0x80, 0x80], 0], // overlong
    [[0xed, 0xa0, 0x80], 0], // encoded surrogate
    [[0xf4, 0x90, 0x80, 0x80], 0], // > U+10FFFF
    [[0x61, 0xe2, 0x82], 1], // truncated at the end
    [[0xff], 0],
  ];
  for (const [bytes, offset] of cases) assert.equal(findInvalidUtf8(Uint8Array.from(bytes)), offset, JSON.stringify(bytes));
});

test('splits are deterministic, seed-dependent and stable when documents are added', () => {
  const docs: Document[] = Array.from({ length: 2000 }, (_, i) => ({ id: `doc-${i}`, text: `text ${i}` }));
  const first = splitDocuments(docs, { val: 0.1, test: 0.05, seed: 1 });
  const again = splitDocuments([...docs].reverse(), { val: 0.1, test: 0.05, seed: 1 });
  const ids = (list: Document[]) => list.map((d) => d.id).sort();
  assert.deepEqual(ids(again.val), ids(first.val));
  assert.deepEqual(ids(again.test), ids(first.test));
  assert.equal(first.train.length + first.val.length + first.test.length, docs.length);
  assert.ok(Math.abs(first.val.length - 200) < 50, `val has ${first.val.length}`);
  assert.ok(Math.abs(first.test.length - 100) < 40, `test has ${first.test.length}`);
  // Adding documents never moves existing ones.
  const more = [...docs, ...Array.from({ length: 500 }, (_, i) => ({ id: `new-${i}`, text: '' }))];
  const grown = splitDocuments(more, { val: 0.1, test: 0.05, seed: 1 });
  for (const doc of docs) {
    const before = first.val.includes(doc) ? 'val' : first.test.includes(doc) ? 'test' : 'train';
    assert.equal(splitOf(doc.id, { val: 0.1, test: 0.05, seed: 1 }), before);
  }
  assert.deepEqual(ids(grown.val).filter((id) => id.startsWith('doc-')), ids(first.val));
  // Another seed gives another split.
  const other = splitDocuments(docs, { val: 0.1, test: 0.05, seed: 2 });
  assert.notDeepEqual(ids(other.val), ids(first.val));
  assert.throws(() => splitDocuments(docs, { val: 0.6, test: 0.5 }), /nothing to train/);
  assert.throws(() => splitDocuments(docs, { val: -0.1 }), /val fraction/);
});

test('SOTU split with default fractions', () => {
  const splits = splitDocuments(loadCorpus({ kind: 'sotu' }), { seed: 0 });
  assert.ok(splits.val.length > 0 && splits.test.length > 0);
  assert.ok(splits.train.length > 180);
});
