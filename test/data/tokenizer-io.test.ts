import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Gpt2Tokenizer,
  loadTokenizer,
  saveTokenizer,
  tokenizerFingerprint,
  trainBpe,
  TokenizerFileError,
} from '../../src/data/index.js';
import { SMALL_CORPUS, tempDir } from './helpers.js';

const dir = tempDir();
const tokenizer = trainBpe(SMALL_CORPUS, { vocabSize: 320 });

test('save then load gives the same tokenizer', () => {
  const path = join(dir, 'nested', 'tokenizer.json');
  saveTokenizer(tokenizer, path);
  const loaded = loadTokenizer(path);
  assert.deepEqual(loaded.toJSON(), tokenizer.toJSON());
  assert.equal(tokenizerFingerprint(loaded), tokenizerFingerprint(tokenizer));
  const text = SMALL_CORPUS.join('\n');
  assert.deepEqual(loaded.encode(text), tokenizer.encode(text));
  // Atomic write leaves no temporary files behind.
  assert.deepEqual(readdirSync(join(dir, 'nested')), ['tokenizer.json']);
});

test('GPT-2 tokenizer saves and loads too', () => {
  const path = join(dir, 'gpt2.json');
  saveTokenizer(new Gpt2Tokenizer(), path);
  const loaded = loadTokenizer(path);
  assert.ok(loaded instanceof Gpt2Tokenizer);
  assert.deepEqual(Array.from(loaded.encode('Hello world')), [15496, 995]);
});

function corruptCopy(name: string, edit: (json: Record<string, unknown>) => void): string {
  const json = JSON.parse(JSON.stringify(tokenizer.toJSON())) as Record<string, unknown>;
  edit(json);
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(json));
  return path;
}

function assertFileError(path: string, field: string, pattern: RegExp): void {
  assert.throws(
    () => loadTokenizer(path),
    (error: unknown) => {
      assert.ok(error instanceof TokenizerFileError, `expected TokenizerFileError, got ${String(error)}`);
      assert.equal(error.field, field);
      assert.ok(error.message.includes(path), `message names the file: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test('missing, non-JSON and wrong-format files are refused clearly', () => {
  assertFileError(join(dir, 'absent.json'), '', /cannot be read/);
  const garbage = join(dir, 'garbage.json');
  writeFileSync(garbage, '{"format": "stackwise-bpe", ');
  assertFileError(garbage, '', /not valid JSON/);
  const array = join(dir, 'array.json');
  writeFileSync(array, '[]');
  assertFileError(array, '', /JSON object/);
  assertFileError(corruptCopy('format.json', (j) => (j['format'] = 'sentencepiece')), 'format', /"sentencepiece".*expected/);
  assertFileError(corruptCopy('noformat.json', (j) => delete j['format']), 'format', /missing/);
});

test('bad version and bad fields name the field', () => {
  assertFileError(corruptCopy('version.json', (j) => (j['version'] = 2)), 'version', /is 2; this build reads version 1/);
  assertFileError(corruptCopy('nomerges.json', (j) => delete j['merges']), 'merges', /missing; expected an array/);
  assertFileError(corruptCopy('badmerge.json', (j) => ((j['merges'] as unknown[])[3] = [1])), 'merges[3]', /expected \[left id, right id\]/);
  assertFileError(corruptCopy('future.json', (j) => ((j['merges'] as unknown[])[0] = [5000, 1])), 'merges[0]', /id 5000/);
  assertFileError(corruptCopy('special.json', (j) => ((j['specialTokens'] as Record<string, number>)['MASK'] = 3)), 'specialTokens.MASK', /is 3; expected 257/);
  assertFileError(corruptCopy('vocab.json', (j) => (j['vocabSize'] = 999)), 'vocabSize', /999/);
  assertFileError(corruptCopy('pretok.json', (j) => (j['pretokenizer'] = 'bert')), 'pretokenizer', /"bert"/);
  // A truncated file (e.g. a crash mid-write by some other tool) is invalid JSON, not a crash.
  const truncated = join(dir, 'truncated.json');
  writeFileSync(truncated, readFileSync(join(dir, 'nested', 'tokenizer.json'), 'utf8').slice(0, 100));
  assertFileError(truncated, '', /not valid JSON/);
});

test('a run folder keeps its tokenizer as stackwise-tokenizer.json and still reads the legacy tokenizer.json', async () => {
  const { runTokenizerPath, RUN_TOKENIZER_FILE, LEGACY_RUN_TOKENIZER_FILE } = await import('../../src/data/index.js');
  const run = join(dir, 'run-names');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(run, { recursive: true });
  assert.equal(runTokenizerPath(run), join(run, RUN_TOKENIZER_FILE));
  saveTokenizer(tokenizer, join(run, LEGACY_RUN_TOKENIZER_FILE));
  assert.equal(runTokenizerPath(run), join(run, LEGACY_RUN_TOKENIZER_FILE));
  assert.deepEqual(loadTokenizer(runTokenizerPath(run)).toJSON(), tokenizer.toJSON());
  saveTokenizer(tokenizer, join(run, RUN_TOKENIZER_FILE));
  assert.equal(runTokenizerPath(run), join(run, RUN_TOKENIZER_FILE));
});
