// Saving and loading tokenizers as JSON files, with validation that names the file and field.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import { BPE_FORMAT, BPE_FORMAT_VERSION, BPE_SPECIAL_TOKENS, BpeTokenizer, FIRST_MERGE_ID } from './bpe.js';
import { GPT2_FORMAT, GPT2_FORMAT_VERSION, Gpt2Tokenizer } from './gpt2-tokenizer.js';
import { HF_BPE_FORMAT, HfBpeTokenizer, hfBpeFromSaved } from './hf-bpe.js';
import { describe, isRecord } from './json-fields.js';
import { SPECIAL_TOKEN_NAMES, type Tokenizer } from './tokenizer.js';

/** Our own tokenizer file in a run folder (Hugging Face's name, tokenizer.json, is left to exports). */
export const RUN_TOKENIZER_FILE = 'stackwise-tokenizer.json';
/** The name runs written before RUN_TOKENIZER_FILE used; still read. */
export const LEGACY_RUN_TOKENIZER_FILE = 'tokenizer.json';

/** Where a run folder keeps its tokenizer: RUN_TOKENIZER_FILE, or the legacy name when only that exists. */
export function runTokenizerPath(runDir: string): string {
  const current = join(runDir, RUN_TOKENIZER_FILE);
  const legacy = join(runDir, LEGACY_RUN_TOKENIZER_FILE);
  return !existsSync(current) && existsSync(legacy) ? legacy : current;
}

/** Writes the tokenizer's JSON atomically (temporary file + rename). */
export function saveTokenizer(tokenizer: Tokenizer, path: string): void {
  writeFileAtomic(path, JSON.stringify(tokenizer.toJSON(), null, 1) + '\n');
}

export class TokenizerFileError extends Error {
  constructor(
    readonly source: string,
    readonly field: string,
    detail: string,
  ) {
    super(`tokenizer file ${source}: ${field === '' ? '' : `field "${field}" `}${detail}`);
    this.name = 'TokenizerFileError';
  }
}

/** Reads a tokenizer saved by saveTokenizer; any problem is a TokenizerFileError. */
export function loadTokenizer(path: string): Tokenizer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TokenizerFileError(path, '', `cannot be read: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TokenizerFileError(path, '', `is not valid JSON: ${(error as Error).message}`);
  }
  return tokenizerFromJSON(json, path);
}

/** Rebuilds a tokenizer from its toJSON() form. `source` names it in error messages. */
export function tokenizerFromJSON(json: unknown, source = '<json>'): Tokenizer {
  if (!isRecord(json)) throw new TokenizerFileError(source, '', 'must hold a JSON object');
  const format = json['format'];
  if (format === BPE_FORMAT) return bpeFromJSON(json, source);
  if (format === GPT2_FORMAT) return gpt2FromJSON(json, source);
  if (format === HF_BPE_FORMAT) return hfBpeFromSaved(json, source);
  if (format === undefined && isRecord(json['model'])) return new HfBpeTokenizer(json, readTokenizerConfigNextTo(source), source);
  throw new TokenizerFileError(
    source,
    'format',
    `is ${describe(format)}; expected "${BPE_FORMAT}", "${GPT2_FORMAT}", "${HF_BPE_FORMAT}" or a Hugging Face tokenizer.json`,
  );
}

/**
 * A Hugging Face byte-level BPE tokenizer: `path` is a tokenizer.json or a folder holding one;
 * tokenizer_config.json next to it (when present) names the special tokens.
 */
export function loadHfTokenizer(path: string): HfBpeTokenizer {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
  if (!existsSync(file)) throw new TokenizerFileError(file, '', 'does not exist (a Hugging Face folder needs tokenizer.json for its tokenizer)');
  const tokenizer = loadTokenizer(file);
  if (!(tokenizer instanceof HfBpeTokenizer)) throw new TokenizerFileError(file, '', 'is a StackWise tokenizer file, not a Hugging Face tokenizer.json');
  return tokenizer;
}

function readTokenizerConfigNextTo(source: string): Record<string, unknown> {
  if (!existsSync(source)) return {}; // parsed from memory: no folder to look in
  const path = join(dirname(source), 'tokenizer_config.json');
  if (!existsSync(path)) return {};
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TokenizerFileError(path, '', `is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(json)) throw new TokenizerFileError(path, '', 'must hold a JSON object');
  return json;
}

function bpeFromJSON(json: Record<string, unknown>, source: string): BpeTokenizer {
  checkVersion(json, BPE_FORMAT_VERSION, source);
  if (json['pretokenizer'] !== 'gpt2') {
    throw new TokenizerFileError(source, 'pretokenizer', `is ${describe(json['pretokenizer'])}; expected "gpt2"`);
  }
  const merges = json['merges'];
  if (!Array.isArray(merges)) throw new TokenizerFileError(source, 'merges', `is ${describe(merges)}; expected an array`);
  const flat: number[] = [];
  merges.forEach((pair: unknown, k) => {
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((id) => Number.isInteger(id))) {
      throw new TokenizerFileError(source, `merges[${k}]`, `is ${describe(pair)}; expected [left id, right id]`);
    }
    for (const id of pair as number[]) {
      if (id < 0 || id >= FIRST_MERGE_ID + k || (id >= 256 && id < FIRST_MERGE_ID)) {
        throw new TokenizerFileError(
          source,
          `merges[${k}]`,
          `refers to id ${id}, which is neither a byte nor an earlier merge (< ${FIRST_MERGE_ID + k})`,
        );
      }
    }
    flat.push(pair[0] as number, pair[1] as number);
  });
  checkSpecialTokens(json, BPE_SPECIAL_TOKENS, source);
  let tokenizer: BpeTokenizer;
  try {
    tokenizer = new BpeTokenizer(flat);
  } catch (error) {
    throw new TokenizerFileError(source, 'merges', (error as Error).message);
  }
  checkVocabSize(json, tokenizer.vocabSize, source);
  return tokenizer;
}

function gpt2FromJSON(json: Record<string, unknown>, source: string): Gpt2Tokenizer {
  checkVersion(json, GPT2_FORMAT_VERSION, source);
  if (json['encoding'] !== 'r50k_base') {
    throw new TokenizerFileError(source, 'encoding', `is ${describe(json['encoding'])}; expected "r50k_base"`);
  }
  const tokenizer = new Gpt2Tokenizer();
  checkSpecialTokens(json, tokenizer.special, source);
  checkVocabSize(json, tokenizer.vocabSize, source);
  return tokenizer;
}

function checkVersion(json: Record<string, unknown>, supported: number, source: string): void {
  const version = json['version'];
  if (version !== supported) {
    throw new TokenizerFileError(source, 'version', `is ${describe(version)}; this build reads version ${supported}`);
  }
}

/** The special ids are fixed by each format; a file that disagrees was not written by us. */
function checkSpecialTokens(json: Record<string, unknown>, expected: Readonly<Record<string, number>>, source: string): void {
  const found = json['specialTokens'];
  if (!isRecord(found)) throw new TokenizerFileError(source, 'specialTokens', `is ${describe(found)}; expected an object`);
  for (const name of SPECIAL_TOKEN_NAMES) {
    if (found[name] !== expected[name]) {
      throw new TokenizerFileError(source, `specialTokens.${name}`, `is ${describe(found[name])}; expected ${expected[name]}`);
    }
  }
}

function checkVocabSize(json: Record<string, unknown>, actual: number, source: string): void {
  if (json['vocabSize'] !== actual) {
    throw new TokenizerFileError(source, 'vocabSize', `is ${describe(json['vocabSize'])}; expected ${actual}`);
  }
}
