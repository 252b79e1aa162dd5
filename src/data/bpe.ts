// Byte-level BPE tokenizer (encode/decode). Training lives in bpe-train.ts.
//
// Id layout: 0..255 are the raw bytes, 256..261 the special tokens in SPECIAL_TOKEN_NAMES
// order, and merge k creates id 262 + k. Because a merge's id grows with its rank, "lowest
// rank" and "lowest id" are the same thing, which keeps the merge loop simple.
import { forEachWord, type PretokenizerName } from './pretokenize.js';
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
import { IdBuffer } from './id-buffer.js';

export const BYTE_VOCAB_SIZE = 256;
export const FIRST_SPECIAL_ID = BYTE_VOCAB_SIZE;
export const FIRST_MERGE_ID = FIRST_SPECIAL_ID + SPECIAL_TOKEN_NAMES.length;
/** Pair keys pack two ids into 32 bits, so a trained vocabulary holds at most 2^16 ids. */
export const MAX_BPE_VOCAB_SIZE = 65536;

export const BPE_FORMAT = 'stackwise-bpe';
export const BPE_FORMAT_VERSION = 1;

/** The saved form of a BpeTokenizer (see toJSON). */
export interface BpeTokenizerJSON {
  format: typeof BPE_FORMAT;
  version: number;
  pretokenizer: PretokenizerName;
  vocabSize: number;
  specialTokens: Record<SpecialTokenName, number>;
  /** merges[k] = [left, right] creates id FIRST_MERGE_ID + k. */
  merges: [number, number][];
}

/** Packs an ordered pair of ids (< 2^16) into one small integer map key. */
export function pairKey(left: number, right: number): number {
  return (left << 16) | right;
}

/** Words longer than this (in bytes) use the O(n log n) heap merge instead of the O(n^2) scan. */
const SHORT_WORD_BYTES = 48;
/** The per-word cache is cleared when it grows past this many entries (bounded memory). */
const WORD_CACHE_LIMIT = 200_000;
/** Very long words (e.g. whitespace runs) are not worth caching. */
const CACHEABLE_WORD_CHARS = 128;

export const BPE_SPECIAL_TOKENS: SpecialTokens = Object.freeze(
  Object.fromEntries(SPECIAL_TOKEN_NAMES.map((name, i) => [name, FIRST_SPECIAL_ID + i])) as Record<
    SpecialTokenName,
    number
  >,
);

export class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly special: SpecialTokens = BPE_SPECIAL_TOKENS;
  /** Flat [left0, right0, left1, right1, ...]; merge k creates id FIRST_MERGE_ID + k. */
  private readonly merges: Int32Array;
  private readonly mergedIdByPair = new Map<number, number>();
  private readonly bytesById: Uint8Array[] = [];
  private readonly specialLiterals: Map<string, number>;
  private wordCache = new Map<string, Int32Array>();

  /** `merges` is the flat pair list; it is validated here (ids must already exist). */
  constructor(merges: ArrayLike<number>) {
    if (merges.length % 2 !== 0) throw new Error('BpeTokenizer: merges must hold an even number of ids');
    this.merges = Int32Array.from(merges);
    this.vocabSize = FIRST_MERGE_ID + this.merges.length / 2;
    if (this.vocabSize > MAX_BPE_VOCAB_SIZE) {
      throw new Error(`BpeTokenizer: vocabulary of ${this.vocabSize} exceeds the maximum ${MAX_BPE_VOCAB_SIZE}`);
    }
    for (let b = 0; b < BYTE_VOCAB_SIZE; b++) this.bytesById.push(Uint8Array.of(b));
    for (const name of SPECIAL_TOKEN_NAMES) this.bytesById.push(utf8Encoder.encode(specialTokenText(name)));
    for (let k = 0; k < this.merges.length / 2; k++) {
      const id = FIRST_MERGE_ID + k;
      const left = this.merges[2 * k]!;
      const right = this.merges[2 * k + 1]!;
      for (const part of [left, right]) {
        if (!Number.isInteger(part) || part < 0 || part >= id || isSpecialId(part)) {
          throw new Error(
            `BpeTokenizer: merge ${k} refers to id ${part}, which is not a byte or an earlier merge (< ${id})`,
          );
        }
      }
      const key = pairKey(left, right);
      if (this.mergedIdByPair.has(key)) throw new Error(`BpeTokenizer: merge ${k} repeats pair [${left}, ${right}]`);
      this.mergedIdByPair.set(key, id);
      const bytes = new Uint8Array(this.bytesById[left]!.length + this.bytesById[right]!.length);
      bytes.set(this.bytesById[left]!);
      bytes.set(this.bytesById[right]!, this.bytesById[left]!.length);
      this.bytesById.push(bytes);
    }
    this.specialLiterals = new Map(SPECIAL_TOKEN_NAMES.map((name) => [specialTokenText(name), this.special[name]]));
  }

  get mergeCount(): number {
    return this.merges.length / 2;
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    assertWellFormed(text, 'BpeTokenizer.encode');
    const out = new IdBuffer(Math.max(16, text.length >>> 2));
    if (options.allowSpecial) {
      for (const segment of splitOnSpecialLiterals(text, this.specialLiterals)) {
        if ('specialId' in segment) out.push(segment.specialId);
        else this.encodeOrdinary(segment.text, out);
      }
    } else {
      this.encodeOrdinary(text, out);
    }
    return out.toInt32Array();
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return decodeIdBytes(this.bytesById, ids, options.skipSpecial ? isSpecialId : null, 'BpeTokenizer.decode', this.vocabSize);
  }

  /** The raw bytes a token stands for (a copy). */
  tokenBytes(id: number): Uint8Array {
    const bytes = this.bytesById[id];
    if (bytes === undefined) throw new RangeError(`BpeTokenizer: id ${id} is outside [0, ${this.vocabSize})`);
    return bytes.slice();
  }

  toJSON(): BpeTokenizerJSON {
    const merges: [number, number][] = [];
    for (let k = 0; k < this.merges.length; k += 2) merges.push([this.merges[k]!, this.merges[k + 1]!]);
    return {
      format: BPE_FORMAT,
      version: BPE_FORMAT_VERSION,
      pretokenizer: 'gpt2',
      vocabSize: this.vocabSize,
      specialTokens: { ...this.special },
      merges,
    };
  }

  private encodeOrdinary(text: string, out: IdBuffer): void {
    forEachWord(text, (word) => {
      const cached = this.wordCache.get(word);
      if (cached !== undefined) {
        out.pushAll(cached);
        return;
      }
      const ids = this.encodeWordBytes(utf8Encoder.encode(word));
      if (word.length <= CACHEABLE_WORD_CHARS) {
        if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache = new Map();
        this.wordCache.set(word, ids);
      }
      out.pushAll(ids);
    });
  }

  /** Applies the merges to one word's bytes: always the lowest-rank pair first, left to right. */
  encodeWordBytes(bytes: Uint8Array, forceHeap = false): Int32Array {
    if (bytes.length <= 1) return Int32Array.from(bytes);
    if (bytes.length <= SHORT_WORD_BYTES && !forceHeap) return this.mergeShortWord(bytes);
    return this.mergeLongWord(bytes);
  }

  private mergeShortWord(bytes: Uint8Array): Int32Array {
    const symbols = Int32Array.from(bytes);
    let length = symbols.length;
    for (;;) {
      let best = Infinity;
      for (let i = 0; i + 1 < length; i++) {
        const id = this.mergedIdByPair.get(pairKey(symbols[i]!, symbols[i + 1]!));
        if (id !== undefined && id < best) best = id;
      }
      if (best === Infinity) break;
      const left = this.merges[2 * (best - FIRST_MERGE_ID)]!;
      const right = this.merges[2 * (best - FIRST_MERGE_ID) + 1]!;
      // Replace every non-overlapping occurrence, scanning left to right (GPT-2 semantics).
      let write = 0;
      for (let read = 0; read < length; ) {
        if (read + 1 < length && symbols[read] === left && symbols[read + 1] === right) {
          symbols[write++] = best;
          read += 2;
        } else {
          symbols[write++] = symbols[read++]!;
        }
      }
      length = write;
      if (length === 1) break;
    }
    return symbols.slice(0, length);
  }

  /**
   * Same result as mergeShortWord in O(n log n): a linked list of symbols and a min-heap of
   * (merged id, position). Lower ids are earlier merges; a merge only ever creates pairs with
   * larger ids, so popping by (id, position) replays the rank-by-rank, left-to-right order.
   */
  private mergeLongWord(bytes: Uint8Array): Int32Array {
    const n = bytes.length;
    const symbol = Int32Array.from(bytes);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const alive = new Uint8Array(n).fill(1);
    const heap = new MinHeap();
    const POSITION_RANGE = 4294967296; // heap key = mergedId * 2^32 + position
    const offer = (pos: number): void => {
      if (pos < 0) return;
      const after = next[pos]!;
      if (after < 0) return;
      const id = this.mergedIdByPair.get(pairKey(symbol[pos]!, symbol[after]!));
      if (id !== undefined) heap.push(id * POSITION_RANGE + pos);
    };
    for (let i = 0; i + 1 < n; i++) offer(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const id = Math.floor(key / POSITION_RANGE);
      const pos = key - id * POSITION_RANGE;
      const after = next[pos]!;
      // Skip entries made stale by an earlier merge at or next to this position.
      if (!alive[pos] || after < 0 || this.mergedIdByPair.get(pairKey(symbol[pos]!, symbol[after]!)) !== id) continue;
      symbol[pos] = id;
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

function isSpecialId(id: number): boolean {
  return id >= FIRST_SPECIAL_ID && id < FIRST_MERGE_ID;
}

/** Binary min-heap of numbers. */
export class MinHeap {
  private items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const items = this.items;
    let i = items.length;
    items.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]! <= value) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= items.length) break;
        const r = l + 1;
        const child = r < items.length && items[r]! < items[l]! ? r : l;
        if (items[child]! >= last) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}
