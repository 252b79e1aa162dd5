// The GPT-2 vocabulary (r50k_base, 50257 ids) from the `gpt-tokenizer` package, extended with
// our special tokens: BOS and EOS are GPT-2's own <|endoftext|> (50256); PAD, MASK, CLS and SEP
// are appended as 50257..50260, so models using this tokenizer need 50261 embedding rows.
//
// Encoding is delegated to the package. Decoding uses our own id -> bytes table built from the
// package's rank table, because the package's decode shares one streaming TextDecoder across
// calls, which can leak a partial character from one call into the next.
import { encode as r50kEncode } from 'gpt-tokenizer/encoding/r50k_base';
import r50kRanks from 'gpt-tokenizer/bpeRanks/r50k_base';
import {
  SPECIAL_TOKEN_NAMES,
  assertWellFormed,
  decodeIdBytes,
  specialTokenText,
  splitOnSpecialLiterals,
  utf8Encoder,
  type DecodeOptions,
  type EncodeOptions,
  type SpecialTokenName,
  type SpecialTokens,
  type Tokenizer,
} from './tokenizer.js';
import { forEachWord } from './pretokenize.js';

export const GPT2_FORMAT = 'stackwise-gpt2';
export const GPT2_FORMAT_VERSION = 1;
export const GPT2_BASE_VOCAB_SIZE = 50257;
export const GPT2_END_OF_TEXT_ID = 50256;
const END_OF_TEXT = '<|endoftext|>';

export interface Gpt2TokenizerJSON {
  format: typeof GPT2_FORMAT;
  version: number;
  encoding: 'r50k_base';
  vocabSize: number;
  specialTokens: Record<SpecialTokenName, number>;
}

// Nothing in plain text is treated as the package's special token; we handle specials ourselves.
const NO_SPECIALS: Set<string> = new Set();

function buildSpecialTokens(): SpecialTokens {
  const ids = {} as Record<SpecialTokenName, number>;
  let next = GPT2_BASE_VOCAB_SIZE;
  for (const name of SPECIAL_TOKEN_NAMES) {
    ids[name] = name === 'BOS' || name === 'EOS' ? GPT2_END_OF_TEXT_ID : next++;
  }
  return Object.freeze(ids);
}

/** Characters whose whitespace-ness differs between JavaScript's \\s and GPT-2's (see pretokenize.ts). */
const JS_WHITESPACE_MISMATCH = /[\ufeff\u0085]/;

/**
 * The package splits words with JavaScript's \\s; where that differs from GPT-2's (U+FEFF, U+0085)
 * the words are split by our GPT-2 pattern first and each is encoded alone (a word is one piece
 * for the package's pattern too), so the ids are GPT-2's and Hugging Face's.
 */
function encodeOrdinary(text: string): number[] {
  if (!JS_WHITESPACE_MISMATCH.test(text)) return r50kEncode(text, { disallowedSpecial: NO_SPECIALS });
  const ids: number[] = [];
  forEachWord(text, (word) => {
    for (const id of r50kEncode(word, { disallowedSpecial: NO_SPECIALS })) ids.push(id);
  });
  return ids;
}

let sharedBytesById: Uint8Array[] | undefined;

/** id -> bytes for the 50257 GPT-2 ids (built once, shared by all instances). */
function gpt2BytesById(): Uint8Array[] {
  if (sharedBytesById !== undefined) return sharedBytesById;
  const table: Uint8Array[] = [];
  r50kRanks.forEach((entry, id) => {
    table[id] = typeof entry === 'string' ? utf8Encoder.encode(entry) : Uint8Array.from(entry);
  });
  if (table.length !== GPT2_END_OF_TEXT_ID) {
    throw new Error(`gpt-tokenizer's r50k_base table has ${table.length} entries, expected ${GPT2_END_OF_TEXT_ID}`);
  }
  table[GPT2_END_OF_TEXT_ID] = utf8Encoder.encode(END_OF_TEXT);
  sharedBytesById = table;
  return table;
}

export class Gpt2Tokenizer implements Tokenizer {
  readonly special: SpecialTokens = buildSpecialTokens();
  readonly vocabSize: number;
  private readonly bytesById: Uint8Array[];
  private readonly specialLiterals: Map<string, number>;
  private readonly specialIds: Set<number>;

  constructor() {
    this.bytesById = [...gpt2BytesById()];
    for (const name of SPECIAL_TOKEN_NAMES) {
      const id = this.special[name];
      if (id !== GPT2_END_OF_TEXT_ID) this.bytesById[id] = utf8Encoder.encode(specialTokenText(name));
    }
    this.vocabSize = this.bytesById.length;
    this.specialLiterals = new Map<string, number>([[END_OF_TEXT, GPT2_END_OF_TEXT_ID]]);
    // BOS and EOS are <|endoftext|>: "[BOS]" / "[EOS]" are no tokens of GPT-2 and stay text, as
    // in the Hugging Face tokenizer.json we export (the same ids both ways).
    for (const name of SPECIAL_TOKEN_NAMES) {
      if (this.special[name] !== GPT2_END_OF_TEXT_ID) this.specialLiterals.set(specialTokenText(name), this.special[name]);
    }
    this.specialIds = new Set(Object.values(this.special));
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    assertWellFormed(text, 'Gpt2Tokenizer.encode');
    if (!options.allowSpecial) return encodeOrdinary(text);
    const ids: number[] = [];
    for (const segment of splitOnSpecialLiterals(text, this.specialLiterals)) {
      if ('specialId' in segment) ids.push(segment.specialId);
      else for (const id of encodeOrdinary(segment.text)) ids.push(id);
    }
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return decodeIdBytes(this.bytesById, ids, options.skipSpecial ? (id) => this.specialIds.has(id) : null, 'Gpt2Tokenizer.decode', this.vocabSize);
  }

  /** The raw bytes a token stands for (a copy); our added specials give their "[NAME]" text. */
  tokenBytes(id: number): Uint8Array {
    const bytes = this.bytesById[id];
    if (bytes === undefined) throw new RangeError(`Gpt2Tokenizer: id ${id} is outside [0, ${this.vocabSize})`);
    return bytes.slice();
  }

  toJSON(): Gpt2TokenizerJSON {
    return {
      format: GPT2_FORMAT,
      version: GPT2_FORMAT_VERSION,
      encoding: 'r50k_base',
      vocabSize: this.vocabSize,
      specialTokens: { ...this.special },
    };
  }
}
