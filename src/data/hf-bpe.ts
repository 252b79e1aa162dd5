// A Hugging Face byte-level BPE tokenizer (the `tokenizers` library's tokenizer.json: a BPE
// model over the byte-level alphabet, a ByteLevel pre-tokenizer, a ByteLevel decoder and added
// tokens), read and run by us with the same ids the library gives. This is what GPT-2, RoBERTa,
// LLaMA 3 and our own exports use.
//
// Encoding follows the library: the text is split on added tokens (special ones only with
// allowSpecial, like our other tokenizers), each other piece is pre-tokenized (the GPT-2 regex,
// or the Split regex before a ByteLevel without regex), every word's bytes become the ids of
// their byte-level characters, and merges apply lowest rank first, leftmost first.
import { byteLevelToBytes, bytesToByteLevel } from './byte-level.js';
import { GPT2_PRETOKENIZE_PATTERN, jsRegexSource } from './pretokenize.js';
import { IdBuffer } from './id-buffer.js';
import { describe, isRecord } from './json-fields.js';
import { MinHeap } from './bpe.js';
import {
  SPECIAL_TOKEN_NAMES,
  assertWellFormed,
  decodeIdBytes,
  utf8Encoder,
  type DecodeOptions,
  type EncodeOptions,
  type SpecialTokenName,
  type SpecialTokens,
  type Tokenizer,
} from './tokenizer.js';

export const HF_BPE_FORMAT = 'stackwise-hf-bpe';
export const HF_BPE_FORMAT_VERSION = 1;

/** Our saved form: the Hugging Face tokenizer.json as read, and which added token plays each of our special roles. */
export interface HfBpeTokenizerJSON {
  format: typeof HF_BPE_FORMAT;
  version: number;
  vocabSize: number;
  specialTokens: Record<SpecialTokenName, number>;
  tokenizer: Record<string, unknown>;
}

/** A problem with a Hugging Face tokenizer file: names the file and the field. */
export class HfTokenizerError extends Error {
  constructor(source: string, field: string, detail: string) {
    super(`Hugging Face tokenizer ${source}: ${field === '' ? '' : `${field} `}${detail}`);
    this.name = 'HfTokenizerError';
  }
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

/** Literal texts of each special role, tried in order when tokenizer_config.json does not name it. */
const ROLE_CANDIDATES: Record<SpecialTokenName, string[]> = {
  EOS: ['<|endoftext|>', '</s>', '<|end_of_text|>', '[EOS]', '<eos>'],
  BOS: ['<s>', '<|begin_of_text|>', '[BOS]', '<bos>', '<|endoftext|>'],
  PAD: ['[PAD]', '<pad>', '<|pad|>', '<|finetune_right_pad_id|>'],
  MASK: ['[MASK]', '<mask>', '<|mask|>'],
  CLS: ['[CLS]', '<cls>'],
  SEP: ['[SEP]', '<sep>'],
};
/** A role the file does not have borrows another's id (HF practice: pad = eos). */
const ROLE_FALLBACK: Record<SpecialTokenName, SpecialTokenName | null> = {
  EOS: null, BOS: 'EOS', PAD: 'EOS', MASK: 'PAD', CLS: 'BOS', SEP: 'EOS',
};
/** tokenizer_config.json's key for each role. */
export const HF_ROLE_KEYS: Record<SpecialTokenName, string> = {
  PAD: 'pad_token', MASK: 'mask_token', BOS: 'bos_token', EOS: 'eos_token', CLS: 'cls_token', SEP: 'sep_token',
};

/** Words longer than this (in bytes) merge with a heap instead of rescanning. */
const SHORT_WORD_BYTES = 48;
const WORD_CACHE_LIMIT = 200_000;
const CACHEABLE_WORD_CHARS = 128;
const PAIR_SHIFT = 2 ** 21; // pair key = left * 2^21 + right: ids below 2M

export class HfBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  /** Roles the file has no token for; they borrow another role's id (see ROLE_FALLBACK). */
  readonly borrowedRoles: SpecialTokenName[];
  private readonly json: Record<string, unknown>;
  private readonly bytesById: (Uint8Array | undefined)[] = [];
  private readonly byteIds = new Int32Array(256);
  private readonly vocab = new Map<string, number>();
  /** pair key → merge rank; mergedIdByRank[rank] = the id it creates. */
  private readonly rankByPair = new Map<number, number>();
  private readonly mergedIdByRank: number[] = [];
  private readonly ignoreMerges: boolean;
  private readonly addPrefixSpace: boolean;
  private readonly wordRegex: RegExp | null;
  private readonly added: AddedToken[];
  private readonly specialIds: Set<number>;
  private readonly alwaysSplit: RegExp | null;
  private readonly allSplit: RegExp | null;
  private wordCache = new Map<string, Int32Array>();

  /**
   * `json` is a parsed tokenizer.json; `config` a parsed tokenizer_config.json (or {}), which
   * names the special tokens. `source` names the file in errors.
   */
  constructor(json: unknown, config: Record<string, unknown> = {}, source = '<tokenizer.json>', roles?: Partial<Record<SpecialTokenName, number>>) {
    if (!isRecord(json)) throw new HfTokenizerError(source, '', 'must hold a JSON object');
    this.json = json;
    const model = json['model'];
    if (!isRecord(model)) throw new HfTokenizerError(source, 'field "model"', `is ${describe(model)}; expected an object`);
    if (model['type'] !== 'BPE') throw new HfTokenizerError(source, 'field "model.type"', `is ${describe(model['type'])}; only byte-level "BPE" tokenizers are supported`);
    for (const [key, ok] of [
      ['dropout', (v: unknown) => v === null || v === undefined || v === 0],
      ['continuing_subword_prefix', (v: unknown) => v === null || v === undefined || v === ''],
      ['end_of_word_suffix', (v: unknown) => v === null || v === undefined || v === ''],
      ['byte_fallback', (v: unknown) => v === false || v === undefined],
    ] as const) {
      if (!ok(model[key])) throw new HfTokenizerError(source, `field "model.${key}"`, `is ${describe(model[key])}; a byte-level BPE has none (null / "" / false)`);
    }
    if (json['normalizer'] !== null && json['normalizer'] !== undefined) {
      throw new HfTokenizerError(source, 'field "normalizer"', `is ${describe(json['normalizer'])}; byte-level BPE tokenizers with a normalizer are not supported (expected null)`);
    }
    this.ignoreMerges = model['ignore_merges'] === true;
    const { addPrefixSpace, regex } = readPreTokenizer(json['pre_tokenizer'], source);
    this.addPrefixSpace = addPrefixSpace;
    this.wordRegex = regex;
    const decoder = json['decoder'];
    if (!isRecord(decoder) || decoder['type'] !== 'ByteLevel') {
      throw new HfTokenizerError(source, 'field "decoder"', `is ${describe(decoder)}; expected {"type": "ByteLevel"}`);
    }

    // Vocabulary: byte-level strings → ids.
    const vocab = model['vocab'];
    if (!isRecord(vocab)) throw new HfTokenizerError(source, 'field "model.vocab"', `is ${describe(vocab)}; expected an object of token → id`);
    let maxId = -1;
    for (const [token, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) throw new HfTokenizerError(source, `field "model.vocab[${JSON.stringify(token)}]"`, `is ${describe(id)}; expected a non-negative integer id`);
      const bytes = byteLevelToBytes(token);
      if (bytes === null || bytes.length === 0) throw new HfTokenizerError(source, `field "model.vocab"`, `token ${JSON.stringify(token)} is not a byte-level string (characters outside the ByteLevel alphabet)`);
      if (this.bytesById[id as number] !== undefined) throw new HfTokenizerError(source, `field "model.vocab"`, `id ${id} is given to two tokens`);
      this.bytesById[id as number] = bytes;
      this.vocab.set(token, id as number);
      maxId = Math.max(maxId, id as number);
    }
    if (maxId >= PAIR_SHIFT) throw new HfTokenizerError(source, 'field "model.vocab"', `has id ${maxId}; ids must be below ${PAIR_SHIFT}`);
    for (let b = 0; b < 256; b++) {
      const id = this.vocab.get(bytesToByteLevel([b]));
      if (id === undefined) throw new HfTokenizerError(source, 'field "model.vocab"', `has no token for byte 0x${b.toString(16).padStart(2, '0')}; a byte-level BPE covers all 256 bytes`);
      this.byteIds[b] = id;
    }

    // Merges: "left right" strings or [left, right] pairs; the rank is the position in the list.
    const merges = model['merges'];
    if (!Array.isArray(merges)) throw new HfTokenizerError(source, 'field "model.merges"', `is ${describe(merges)}; expected an array`);
    merges.forEach((merge: unknown, rank) => {
      let parts: unknown[];
      if (typeof merge === 'string') parts = merge.split(' ');
      else if (Array.isArray(merge)) parts = merge;
      else parts = [];
      if (parts.length !== 2 || !parts.every((p) => typeof p === 'string')) {
        throw new HfTokenizerError(source, `field "model.merges[${rank}]"`, `is ${describe(merge)}; expected "left right" or ["left", "right"]`);
      }
      const [left, right] = parts as [string, string];
      const l = this.vocab.get(left);
      const r = this.vocab.get(right);
      const m = this.vocab.get(left + right);
      if (l === undefined || r === undefined || m === undefined) {
        const missing = l === undefined ? left : r === undefined ? right : left + right;
        throw new HfTokenizerError(source, `field "model.merges[${rank}]"`, `(${JSON.stringify(merge)}) uses ${JSON.stringify(missing)}, which is not in model.vocab`);
      }
      const key = l * PAIR_SHIFT + r;
      if (!this.rankByPair.has(key)) this.rankByPair.set(key, rank);
      this.mergedIdByRank.push(m);
    });

    // Added tokens (special or not): their own ids, matched as literals before pre-tokenization.
    const addedJSON = json['added_tokens'] ?? [];
    if (!Array.isArray(addedJSON)) throw new HfTokenizerError(source, 'field "added_tokens"', `is ${describe(addedJSON)}; expected an array`);
    this.added = addedJSON.map((t: unknown, i) => {
      if (!isRecord(t) || !Number.isInteger(t['id']) || typeof t['content'] !== 'string' || t['content'] === '') {
        throw new HfTokenizerError(source, `field "added_tokens[${i}]"`, `is ${describe(t)}; expected {id, content, special, …}`);
      }
      if (t['single_word'] === true) throw new HfTokenizerError(source, `field "added_tokens[${i}].single_word"`, 'is true; single-word added tokens are not supported');
      const id = t['id'] as number;
      if (id >= PAIR_SHIFT) throw new HfTokenizerError(source, `field "added_tokens[${i}].id"`, `is ${id}; ids must be below ${PAIR_SHIFT}`);
      const content = t['content'] as string;
      const inVocab = this.bytesById[id];
      const own = utf8Encoder.encode(content);
      if (inVocab !== undefined && Buffer.compare(Buffer.from(inVocab), Buffer.from(own)) !== 0 && this.vocab.get(content) !== id) {
        throw new HfTokenizerError(source, `field "added_tokens[${i}]"`, `gives id ${id} to ${JSON.stringify(content)}, but model.vocab already uses it for another token`);
      }
      this.bytesById[id] = own;
      maxId = Math.max(maxId, id);
      return { id, content, special: t['special'] === true, lstrip: t['lstrip'] === true, rstrip: t['rstrip'] === true };
    });
    this.vocabSize = maxId + 1;
    this.specialIds = new Set(this.added.filter((t) => t.special).map((t) => t.id));
    this.alwaysSplit = addedTokenRegex(this.added.filter((t) => !t.special));
    this.allSplit = addedTokenRegex(this.added);

    const { special, borrowed } = roles ? { special: checkRoles(roles, this.vocabSize, source), borrowed: [] } : specialRoles(this.added, config, source);
    this.special = special;
    this.borrowedRoles = borrowed;
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    assertWellFormed(text, 'HfBpeTokenizer.encode');
    const out = new IdBuffer(Math.max(16, text.length >>> 2));
    const splitter = options.allowSpecial ? this.allSplit : this.alwaysSplit;
    if (splitter === null) {
      this.encodePiece(text, out);
      return out.toInt32Array();
    }
    const byContent = new Map(this.added.map((t) => [t.content, t]));
    let last = 0;
    for (const match of text.matchAll(splitter)) {
      const token = byContent.get(match[2]!)!;
      let start = match.index ?? 0;
      let end = start + match[0].length;
      // lstrip / rstrip: the token swallows the whitespace next to it; otherwise that whitespace stays text.
      if (!token.lstrip) start += match[1]!.length;
      if (!token.rstrip) end -= match[3]!.length;
      if (start > last) this.encodePiece(text.slice(last, start), out);
      out.push(token.id);
      last = end;
    }
    if (last < text.length) this.encodePiece(text.slice(last), out);
    return out.toInt32Array();
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return decodeIdBytes(this.bytesById, ids, options.skipSpecial ? (id) => this.specialIds.has(id) : null, 'HfBpeTokenizer.decode', this.vocabSize);
  }

  /** The raw bytes of a token (a copy); added tokens give their UTF-8 text. */
  tokenBytes(id: number): Uint8Array {
    const bytes = this.bytesById[id];
    if (bytes === undefined) throw new RangeError(`HfBpeTokenizer: id ${id} is not a token`);
    return bytes.slice();
  }

  /** The tokenizer.json this tokenizer was read from. */
  hfJSON(): Record<string, unknown> {
    return this.json;
  }

  toJSON(): HfBpeTokenizerJSON {
    return { format: HF_BPE_FORMAT, version: HF_BPE_FORMAT_VERSION, vocabSize: this.vocabSize, specialTokens: { ...this.special }, tokenizer: this.json };
  }

  private encodePiece(text: string, out: IdBuffer): void {
    if (text === '') return;
    if (this.addPrefixSpace && !text.startsWith(' ')) text = ' ' + text;
    if (this.wordRegex === null) {
      this.encodeWord(text, out);
      return;
    }
    let expected = 0;
    for (const match of text.matchAll(this.wordRegex)) {
      const at = match.index ?? 0;
      if (at > expected) this.encodeWord(text.slice(expected, at), out);
      if (match[0].length > 0) this.encodeWord(match[0], out);
      expected = at + match[0].length;
    }
    if (expected < text.length) this.encodeWord(text.slice(expected), out);
  }

  private encodeWord(word: string, out: IdBuffer): void {
    const cached = this.wordCache.get(word);
    if (cached !== undefined) {
      out.pushAll(cached);
      return;
    }
    const bytes = utf8Encoder.encode(word);
    let ids: Int32Array;
    const whole = this.ignoreMerges ? this.vocab.get(bytesToByteLevel(bytes)) : undefined;
    if (whole !== undefined) ids = Int32Array.of(whole);
    else {
      const symbols = new Int32Array(bytes.length);
      for (let i = 0; i < bytes.length; i++) symbols[i] = this.byteIds[bytes[i]!]!;
      ids = bytes.length <= SHORT_WORD_BYTES ? this.mergeShort(symbols) : this.mergeLong(symbols);
    }
    if (word.length <= CACHEABLE_WORD_CHARS) {
      if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache = new Map();
      this.wordCache.set(word, ids);
    }
    out.pushAll(ids);
  }

  private rankOf(left: number, right: number): number | undefined {
    return this.rankByPair.get(left * PAIR_SHIFT + right);
  }

  /** Lowest-rank pair first, leftmost occurrence first, one merge at a time (the library's order). */
  private mergeShort(symbols: Int32Array): Int32Array {
    let length = symbols.length;
    while (length > 1) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i + 1 < length; i++) {
        const rank = this.rankOf(symbols[i]!, symbols[i + 1]!);
        if (rank !== undefined && rank < best) { best = rank; at = i; }
      }
      if (at < 0) break;
      symbols[at] = this.mergedIdByRank[best]!;
      symbols.copyWithin(at + 1, at + 2, length);
      length--;
    }
    return symbols.slice(0, length);
  }

  /** Same order as mergeShort in O(n log n): a linked list and a heap of (rank, position). */
  private mergeLong(symbol: Int32Array): Int32Array {
    const n = symbol.length;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    const alive = new Uint8Array(n).fill(1);
    const heap = new MinHeap();
    const POSITION_RANGE = 4294967296;
    const offer = (pos: number): void => {
      if (pos < 0) return;
      const after = next[pos]!;
      if (after < 0) return;
      const rank = this.rankOf(symbol[pos]!, symbol[after]!);
      if (rank !== undefined) heap.push(rank * POSITION_RANGE + pos);
    };
    for (let i = 0; i + 1 < n; i++) offer(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const rank = Math.floor(key / POSITION_RANGE);
      const pos = key - rank * POSITION_RANGE;
      const after = next[pos]!;
      if (!alive[pos] || after < 0 || this.rankOf(symbol[pos]!, symbol[after]!) !== rank) continue;
      symbol[pos] = this.mergedIdByRank[rank]!;
      alive[after] = 0;
      const afterAfter = next[after]!;
      next[pos] = afterAfter;
      if (afterAfter >= 0) prev[afterAfter] = pos;
      offer(prev[pos]!);
      offer(pos);
    }
    const out = new IdBuffer(n);
    for (let i = 0; i >= 0; i = next[i]!) out.push(symbol[i]!);
    return out.toInt32Array();
  }
}

/** The pre-tokenizer: ByteLevel (with the GPT-2 regex or none), or Sequence[Split(regex), ByteLevel]. */
function readPreTokenizer(pre: unknown, source: string): { addPrefixSpace: boolean; regex: RegExp | null } {
  const byteLevel = (p: Record<string, unknown>, field: string): { addPrefixSpace: boolean; useRegex: boolean } => {
    if (p['type'] !== 'ByteLevel') throw new HfTokenizerError(source, `field "${field}"`, `is ${describe(p)}; expected a ByteLevel pre-tokenizer`);
    return { addPrefixSpace: p['add_prefix_space'] === true, useRegex: p['use_regex'] !== false };
  };
  if (!isRecord(pre)) throw new HfTokenizerError(source, 'field "pre_tokenizer"', `is ${describe(pre)}; expected a ByteLevel pre-tokenizer`);
  if (pre['type'] === 'ByteLevel') {
    const b = byteLevel(pre, 'pre_tokenizer');
    return { addPrefixSpace: b.addPrefixSpace, regex: b.useRegex ? new RegExp(jsRegexSource(GPT2_PRETOKENIZE_PATTERN), 'gu') : null };
  }
  const steps = pre['pretokenizers'];
  if (pre['type'] !== 'Sequence' || !Array.isArray(steps) || steps.length !== 2 || !isRecord(steps[0]) || !isRecord(steps[1])) {
    throw new HfTokenizerError(source, 'field "pre_tokenizer"', `is ${describe(pre)}; expected ByteLevel or Sequence[Split, ByteLevel]`);
  }
  const split = steps[0];
  const b = byteLevel(steps[1], 'pre_tokenizer.pretokenizers[1]');
  const pattern = isRecord(split['pattern']) ? split['pattern']['Regex'] : undefined;
  if (split['type'] !== 'Split' || typeof pattern !== 'string' || split['behavior'] !== 'Isolated' || split['invert'] === true || b.useRegex) {
    throw new HfTokenizerError(source, 'field "pre_tokenizer.pretokenizers[0]"', `is ${describe(split)}; expected Split {pattern: {Regex}, behavior: "Isolated"} followed by ByteLevel without regex`);
  }
  let regex: RegExp;
  try {
    regex = new RegExp(jsRegexSource(pattern), 'gu');
  } catch (error) {
    throw new HfTokenizerError(source, 'field "pre_tokenizer.pretokenizers[0].pattern.Regex"', `cannot be compiled as a JavaScript regular expression: ${(error as Error).message}`);
  }
  return { addPrefixSpace: b.addPrefixSpace, regex };
}

/** Matches any of `tokens` (longest first), with the whitespace around it in groups 1 and 3. */
function addedTokenRegex(tokens: AddedToken[]): RegExp | null {
  if (tokens.length === 0) return null;
  const alternatives = [...tokens].sort((a, b) => b.content.length - a.content.length).map((t) => escapeRegExp(t.content));
  return new RegExp(`(\\s*)(${alternatives.join('|')})(\\s*)`, 'gu');
}

/** Each special role's id: tokenizer_config.json's *_token, else a well-known literal, else another role's. */
function specialRoles(added: AddedToken[], config: Record<string, unknown>, source: string): { special: SpecialTokens; borrowed: SpecialTokenName[] } {
  const byContent = new Map(added.map((t) => [t.content, t.id]));
  const ids: Partial<Record<SpecialTokenName, number>> = {};
  for (const name of SPECIAL_TOKEN_NAMES) {
    const named = config[HF_ROLE_KEYS[name]];
    const content = typeof named === 'string' ? named : isRecord(named) && typeof named['content'] === 'string' ? named['content'] : undefined;
    if (content !== undefined) {
      const id = byContent.get(content);
      if (id === undefined) throw new HfTokenizerError(source, `tokenizer_config.json "${HF_ROLE_KEYS[name]}"`, `is ${JSON.stringify(content)}, which is not one of the added tokens`);
      ids[name] = id;
      continue;
    }
    const known = ROLE_CANDIDATES[name].find((c) => byContent.has(c));
    if (known !== undefined) ids[name] = byContent.get(known)!;
  }
  if (ids.EOS === undefined) {
    throw new HfTokenizerError(source, '', `has no end-of-text token (documents are separated by one): name it as "eos_token" in tokenizer_config.json or add one of ${ROLE_CANDIDATES.EOS.join(', ')}`);
  }
  const borrowed: SpecialTokenName[] = [];
  for (const name of SPECIAL_TOKEN_NAMES) {
    let from: SpecialTokenName | null = name;
    while (from !== null && ids[from] === undefined) from = ROLE_FALLBACK[from];
    if (from !== name) {
      borrowed.push(name);
      ids[name] = ids[from ?? 'EOS'];
    }
  }
  return { special: Object.freeze(ids as Record<SpecialTokenName, number>), borrowed };
}

function checkRoles(roles: Partial<Record<SpecialTokenName, number>>, vocabSize: number, source: string): SpecialTokens {
  for (const name of SPECIAL_TOKEN_NAMES) {
    const id = roles[name];
    if (!Number.isInteger(id) || id! < 0 || id! >= vocabSize) throw new HfTokenizerError(source, `field "specialTokens.${name}"`, `is ${describe(id)}; expected an id in [0, ${vocabSize})`);
  }
  return Object.freeze({ ...roles } as Record<SpecialTokenName, number>);
}

/** Rebuilds a tokenizer from HfBpeTokenizer.toJSON(). */
export function hfBpeFromSaved(json: Record<string, unknown>, source: string): HfBpeTokenizer {
  if (json['version'] !== HF_BPE_FORMAT_VERSION) throw new HfTokenizerError(source, 'field "version"', `is ${describe(json['version'])}; this build reads version ${HF_BPE_FORMAT_VERSION}`);
  const roles = json['specialTokens'];
  if (!isRecord(roles)) throw new HfTokenizerError(source, 'field "specialTokens"', `is ${describe(roles)}; expected an object`);
  const tokenizer = new HfBpeTokenizer(json['tokenizer'], {}, source, roles as Partial<Record<SpecialTokenName, number>>);
  if (json['vocabSize'] !== tokenizer.vocabSize) throw new HfTokenizerError(source, 'field "vocabSize"', `is ${describe(json['vocabSize'])}; expected ${tokenizer.vocabSize}`);
  return tokenizer;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
