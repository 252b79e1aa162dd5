// Shared helpers for the data-layer tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A fresh temporary folder, removed when the test file finishes. */
export function tempDir(prefix = 'stackwise-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small, fixed English corpus for fast training tests. */
export const SMALL_CORPUS: string[] = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.',
  "It's the end of the world as we know it, and I feel fine. We'll see, won't we?",
  'Numbers like 12345 and 2024 appear, as do symbols: #hashtag @user $100 & 50%.',
  'Whitespace   runs\tand\ttabs\n\nnew lines   and trailing spaces   ',
  'Unicode: café, naïve, 東京, Москва, 🙂🙂 and the end.',
  'the the the then there their they them these those thesis theses',
];

/** Reference BPE trainer: full pair recount per merge (slow, obviously correct). */
export function naiveBpeMerges(wordCounts: Map<string, number>, merges: number, firstMergeId: number, minPairCount = 2): number[] {
  const words = [...wordCounts].map(([word, count]) => ({ symbols: [...new TextEncoder().encode(word)], count }));
  const out: number[] = [];
  for (let k = 0; k < merges; k++) {
    const counts = new Map<number, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i]! * 65536 + symbols[i + 1]!;
        counts.set(key, (counts.get(key) ?? 0) + count);
      }
    }
    let bestKey = -1;
    let bestCount = 0;
    for (const [key, count] of counts) {
      if (count > bestCount || (count === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestKey < 0 || bestCount < minPairCount) break;
    const left = Math.floor(bestKey / 65536);
    const right = bestKey % 65536;
    const id = firstMergeId + k;
    out.push(left, right);
    for (const word of words) {
      const next: number[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === left && word.symbols[i + 1] === right) {
          next.push(id);
          i++;
        } else next.push(word.symbols[i]!);
      }
      word.symbols = next;
    }
  }
  return out;
}
