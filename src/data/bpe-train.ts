// Byte-level BPE training.
//
// The corpus is reduced to unique pre-tokenized words with counts; pair frequencies are counted
// once over those words, and after each merge only the words that contain the merged pair are
// rewritten, with the pair counts around each rewrite adjusted in place (no full recount).
// The best pair is taken from a lazy max-heap: an entry whose count went stale is re-queued
// with its current count when it surfaces. Ties in count go to the smaller (left, right) id
// pair, so the same corpus and settings always give the same vocabulary, whatever the order
// of the documents.
import { BpeTokenizer, FIRST_MERGE_ID, MAX_BPE_VOCAB_SIZE, pairKey } from './bpe.js';
import { forEachWord } from './pretokenize.js';
import { assertWellFormed, utf8Encoder } from './tokenizer.js';

export interface BpeTrainOptions {
  /** Target vocabulary size including the 256 bytes and the special tokens. */
  vocabSize: number;
  /**
   * A pair must occur at least this often (counting word frequencies) to be merged; training
   * stops early, with a smaller vocabulary, when no pair qualifies. Default 2.
   */
  minPairCount?: number;
  /** Called now and then with (merges done, merges wanted); for progress bars. */
  onProgress?: (done: number, total: number) => void;
}

export interface BpeTrainStats {
  documents: number;
  words: number;
  uniqueWords: number;
  merges: number;
}

/** Trains a byte-level BPE tokenizer on the given texts (any iterable of strings). */
export function trainBpe(corpus: Iterable<string>, options: BpeTrainOptions): BpeTokenizer {
  return trainBpeWithStats(corpus, options).tokenizer;
}

export function trainBpeWithStats(
  corpus: Iterable<string>,
  options: BpeTrainOptions,
): { tokenizer: BpeTokenizer; stats: BpeTrainStats } {
  const { vocabSize, minPairCount = 2, onProgress } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < FIRST_MERGE_ID || vocabSize > MAX_BPE_VOCAB_SIZE) {
    throw new RangeError(
      `trainBpe: vocabSize must be an integer in [${FIRST_MERGE_ID}, ${MAX_BPE_VOCAB_SIZE}], got ${vocabSize}`,
    );
  }
  if (!Number.isInteger(minPairCount) || minPairCount < 1) {
    throw new RangeError(`trainBpe: minPairCount must be a positive integer, got ${minPairCount}`);
  }

  const { wordCounts, documents, words } = countWords(corpus);
  const table = WordTable.fromCounts(wordCounts);
  const wanted = vocabSize - FIRST_MERGE_ID;
  const merges = table.learnMerges(wanted, minPairCount, onProgress);
  const tokenizer = new BpeTokenizer(merges);
  return {
    tokenizer,
    stats: { documents, words, uniqueWords: wordCounts.size, merges: merges.length / 2 },
  };
}

function countWords(corpus: Iterable<string>): { wordCounts: Map<string, number>; documents: number; words: number } {
  const wordCounts = new Map<string, number>();
  let documents = 0;
  let words = 0;
  for (const text of corpus) {
    if (typeof text !== 'string') throw new TypeError(`trainBpe: document ${documents} is not a string`);
    assertWellFormed(text, `trainBpe: document ${documents}`);
    forEachWord(text, (word) => {
      wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
      words++;
    });
    documents++;
  }
  return { wordCounts, documents, words };
}

/**
 * All unique words as symbol sequences in one flat array. Merges only shorten a word, so each
 * word is rewritten in place inside its own slice [start, start + length).
 */
class WordTable {
  private readonly pairCounts = new Map<number, number>();
  /** Words that contain (or once contained) each pair: a superset, rechecked when used. */
  private readonly wordsWithPair = new Map<number, number[]>();
  private readonly heap = new PairHeap();

  private constructor(
    private readonly symbols: Int32Array,
    private readonly start: Int32Array,
    private readonly length: Int32Array,
    private readonly count: Float64Array,
  ) {}

  static fromCounts(wordCounts: Map<string, number>): WordTable {
    const encoded: Uint8Array[] = [];
    let total = 0;
    for (const word of wordCounts.keys()) {
      const bytes = utf8Encoder.encode(word);
      encoded.push(bytes);
      total += bytes.length;
    }
    const symbols = new Int32Array(total);
    const start = new Int32Array(encoded.length);
    const length = new Int32Array(encoded.length);
    const count = Float64Array.from(wordCounts.values());
    let offset = 0;
    encoded.forEach((bytes, w) => {
      symbols.set(bytes, offset);
      start[w] = offset;
      length[w] = bytes.length;
      offset += bytes.length;
    });
    const table = new WordTable(symbols, start, length, count);
    table.countAllPairs();
    return table;
  }

  private countAllPairs(): void {
    for (let w = 0; w < this.start.length; w++) {
      const s = this.start[w]!;
      const end = s + this.length[w]!;
      for (let i = s; i + 1 < end; i++) this.addPair(pairKey(this.symbols[i]!, this.symbols[i + 1]!), this.count[w]!, w);
    }
    for (const [key, c] of this.pairCounts) this.heap.push(c, key);
  }

  /** Returns the flat merge list [left0, right0, ...]. */
  learnMerges(wanted: number, minPairCount: number, onProgress?: (done: number, total: number) => void): number[] {
    const merges: number[] = [];
    const progressEvery = Math.max(1, Math.floor(wanted / 100));
    while (merges.length / 2 < wanted && this.heap.size > 0) {
      const { count: queued, key } = this.heap.pop();
      const current = this.pairCounts.get(key) ?? 0;
      if (current !== queued) {
        if (current > 0) this.heap.push(current, key);
        continue;
      }
      if (current < minPairCount) break;
      const left = key >>> 16;
      const right = key & 0xffff;
      const mergedId = FIRST_MERGE_ID + merges.length / 2;
      merges.push(left, right);
      this.applyMerge(key, left, right, mergedId);
      const done = merges.length / 2;
      if (onProgress && (done % progressEvery === 0 || done === wanted)) onProgress(done, wanted);
    }
    return merges;
  }

  /** Rewrites every word containing (left, right) and adjusts the neighbouring pair counts. */
  private applyMerge(key: number, left: number, right: number, mergedId: number): void {
    const candidates = this.wordsWithPair.get(key) ?? [];
    this.wordsWithPair.delete(key);
    this.pairCounts.delete(key);
    const createdPairs: number[] = [];
    const symbols = this.symbols;
    for (const w of candidates) {
      const s = this.start[w]!;
      const end = s + this.length[w]!;
      const c = this.count[w]!;
      let write = s;
      let read = s;
      while (read < end) {
        if (read + 1 < end && symbols[read] === left && symbols[read + 1] === right) {
          // prev is the already-rewritten symbol before us (possibly mergedId itself).
          if (write > s) {
            const prev = symbols[write - 1]!;
            this.removePair(pairKey(prev, left), c, key);
            createdPairs.push(this.addPair(pairKey(prev, mergedId), c, w));
          }
          if (read + 2 < end) {
            const next = symbols[read + 2]!;
            this.removePair(pairKey(right, next), c, key);
            createdPairs.push(this.addPair(pairKey(mergedId, next), c, w));
          }
          symbols[write++] = mergedId;
          read += 2;
        } else {
          symbols[write++] = symbols[read++]!;
        }
      }
      this.length[w] = write - s;
    }
    // New pairs (all involve mergedId) enter the heap once, with their final counts.
    // A pair created and then consumed again inside the same word has count 0 and is skipped.
    const seen = new Set<number>();
    for (const created of createdPairs) {
      if (seen.has(created)) continue;
      seen.add(created);
      const c = this.pairCounts.get(created) ?? 0;
      if (c > 0) this.heap.push(c, created);
    }
  }

  private addPair(key: number, c: number, word: number): number {
    this.pairCounts.set(key, (this.pairCounts.get(key) ?? 0) + c);
    const list = this.wordsWithPair.get(key);
    if (list === undefined) this.wordsWithPair.set(key, [word]);
    else if (list[list.length - 1] !== word) list.push(word); // words are visited in order
    return key;
  }

  private removePair(key: number, c: number, mergingKey: number): void {
    if (key === mergingKey) return; // the pair being merged is already gone
    const left = (this.pairCounts.get(key) ?? 0) - c;
    if (left > 0) this.pairCounts.set(key, left);
    else this.pairCounts.delete(key);
  }
}

/** Max-heap of (count, pair key); equal counts pop the smaller unsigned key first. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    let i = this.counts.length;
    this.counts.push(count);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(count, key, this.counts[parent]!, this.keys[parent]!)) break;
      this.counts[i] = this.counts[parent]!;
      this.keys[i] = this.keys[parent]!;
      i = parent;
    }
    this.counts[i] = count;
    this.keys[i] = key;
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    const n = this.counts.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child =
          r < n && this.before(this.counts[r]!, this.keys[r]!, this.counts[l]!, this.keys[l]!) ? r : l;
        if (!this.before(this.counts[child]!, this.keys[child]!, lastCount, lastKey)) break;
        this.counts[i] = this.counts[child]!;
        this.keys[i] = this.keys[child]!;
        i = child;
      }
      this.counts[i] = lastCount;
      this.keys[i] = lastKey;
    }
    return top;
  }

  /** True when (countA, keyA) should pop before (countB, keyB). */
  private before(countA: number, keyA: number, countB: number, keyB: number): boolean {
    if (countA !== countB) return countA > countB;
    return keyA >>> 0 < keyB >>> 0;
  }
}
