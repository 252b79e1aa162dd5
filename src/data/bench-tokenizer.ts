// Tokenizer benchmark on the State of the Union corpus (wired into the bench CLI by the lead).
import { performance } from 'node:perf_hooks';
import { trainBpeWithStats } from './bpe-train.js';
import { loadCorpus } from './corpora.js';
import { BpeTokenizer } from './bpe.js';

export interface TokenizerBenchOptions {
  /** Default 4096. */
  vocabSize?: number;
  /** Use only the first this many characters of SOTU for training and encoding (default: all, ~10.7 MB). */
  maxChars?: number;
}

export interface TokenizerBenchResult {
  corpus: 'sotu';
  corpusMB: number;
  vocabSize: number;
  trainSeconds: number;
  /** Encoding throughput with a cold word cache (fresh tokenizer), UTF-8 MB per second. */
  encodeMBps: number;
  tokens: number;
  bytesPerToken: number;
}

export function benchTokenizer(options: TokenizerBenchOptions = {}): TokenizerBenchResult {
  const vocabSize = options.vocabSize ?? 4096;
  let texts = loadCorpus({ kind: 'sotu' }).map((doc) => doc.text);
  if (options.maxChars !== undefined) texts = truncate(texts, options.maxChars);
  const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text, 'utf8'), 0);

  const trainStart = performance.now();
  const { tokenizer: trained } = trainBpeWithStats(texts, { vocabSize });
  const trainSeconds = (performance.now() - trainStart) / 1000;

  // A fresh instance so the measured encode starts with an empty word cache.
  const tokenizer = new BpeTokenizer(trained.toJSON().merges.flat());
  const encodeStart = performance.now();
  let tokens = 0;
  for (const text of texts) tokens += tokenizer.encode(text).length;
  const encodeSeconds = (performance.now() - encodeStart) / 1000;

  return {
    corpus: 'sotu',
    corpusMB: bytes / 1e6,
    vocabSize: tokenizer.vocabSize,
    trainSeconds,
    encodeMBps: bytes / 1e6 / encodeSeconds,
    tokens,
    bytesPerToken: bytes / tokens,
  };
}

function truncate(texts: string[], maxChars: number): string[] {
  const out: string[] = [];
  let left = maxChars;
  for (const text of texts) {
    if (left <= 0) break;
    // Never cut a surrogate pair in half (the tokenizer would refuse the lone half).
    out.push(text.length <= left ? text : text.slice(0, left).replace(/[\uD800-\uDBFF]$/, ''));
    left -= text.length;
  }
  return out;
}
