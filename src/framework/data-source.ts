// Token data for training: a corpus split into train / validation, tokenized (cached in the run
// folder when there is one) and held as token streams. Also the synthetic corpus used by tests
// and smoke runs: ids from a fixed random Markov chain, so a model can actually learn something.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ArrayTokenStream,
  Gpt2Tokenizer,
  IdBuffer,
  Xoshiro128,
  combineSeeds,
  hashString32,
  loadCorpus,
  loadOrBuildTokenCache,
  loadTokenizer,
  loadHfTokenizer,
  runTokenizerPath,
  saveTokenizer,
  splitDocuments,
  tokenCachePath,
  trainBpe,
  type CorpusSpec,
  type Document,
  type TokenStream,
  type Tokenizer,
} from '../data/index.js';
import type { CorpusConfig, TokenizerConfig } from './config/schema.js';

/** Token streams for one data plane, plus what specs need to know about them. */
export interface TokenData {
  /** Every id is in [0, vocabSize). */
  vocabSize: number;
  train: TokenStream;
  /** Absent (or too short) means no evaluation. */
  validation?: TokenStream;
  tokenizer?: Tokenizer;
  maskTokenId?: number;
  padTokenId?: number;
  /** Short names for the DataSpec. */
  corpusName: string;
  tokenizerName: string;
}

export interface SyntheticCorpusOptions {
  vocab_size: number;
  tokens: number;
  seed?: number;
  branching?: number;
  /** Fractions of `tokens` generated (on top) for validation and test. */
  val?: number;
  test?: number;
}

/**
 * A random sparse Markov chain over ids [0, vocab_size − 1) (the last id is kept free as [MASK]):
 * each id has `branching` possible successors. Train, validation and test are separate walks of
 * the same chain, so validation loss measures what was learned. Deterministic in the seed.
 */
export function syntheticTokenData(options: SyntheticCorpusOptions): TokenData {
  const V = options.vocab_size;
  const branching = options.branching ?? 2;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(V) || V < 3) throw new RangeError(`synthetic corpus: vocab_size must be an integer ≥ 3, found ${V}`);
  if (!Number.isInteger(options.tokens) || options.tokens < 2) throw new RangeError(`synthetic corpus: tokens must be an integer ≥ 2, found ${options.tokens}`);
  const usable = V - 1;
  const chain = new Xoshiro128(combineSeeds(seed, 0x5eed));
  const successors = Array.from({ length: usable }, () => Array.from({ length: branching }, () => chain.nextInt(usable)));
  const walk = (n: number, stream: number): Int32Array => {
    const rng = new Xoshiro128(combineSeeds(seed, stream));
    const out = new Int32Array(n);
    let cur = rng.nextInt(usable);
    for (let i = 0; i < n; i++) {
      out[i] = cur;
      cur = successors[cur]![rng.nextInt(branching)]!;
    }
    return out;
  };
  const valTokens = Math.max(0, Math.round(options.tokens * (options.val ?? 0.05)));
  const data: TokenData = {
    vocabSize: V,
    train: new ArrayTokenStream(walk(options.tokens, 1), V),
    maskTokenId: V - 1,
    corpusName: `synthetic(v=${V},n=${options.tokens},seed=${seed},b=${branching})`,
    tokenizerName: 'none',
  };
  if (valTokens >= 2) data.validation = new ArrayTokenStream(walk(valTokens, 2), V);
  return data;
}

function corpusSpecOf(corpus: CorpusConfig): CorpusSpec {
  switch (corpus.kind) {
    case 'files':
      return { kind: 'files', paths: corpus.paths, format: corpus.format, jsonlField: corpus.jsonl_field };
    case 'synthetic':
      throw new Error('synthetic corpora have no documents');
    default:
      return { kind: corpus.kind };
  }
}

function corpusName(corpus: CorpusConfig): string {
  return corpus.kind === 'files' ? `files(${corpus.paths.join(',')})` : corpus.kind;
}

export interface LoadTokenDataOptions {
  /** Run folder: the tokenizer and token caches are kept there. */
  runDir?: string;
  split?: { val: number; test: number; seed: number };
}

function tokenizeInMemory(docs: readonly Document[], tokenizer: Tokenizer): TokenStream {
  const ids = new IdBuffer(1024);
  for (const doc of docs) {
    ids.pushAll(tokenizer.encode(doc.text));
    ids.push(tokenizer.special.EOS);
  }
  return new ArrayTokenStream(ids.toInt32Array(), tokenizer.vocabSize);
}

function tokenizerFor(config: TokenizerConfig, train: readonly Document[], runDir: string | undefined): Tokenizer {
  switch (config.kind) {
    case 'gpt2':
      return new Gpt2Tokenizer();
    case 'hf': {
      // The run keeps its own copy, so the run still samples if the original moves.
      const copy = runDir ? runTokenizerPath(runDir) : undefined;
      if (copy && existsSync(copy)) return loadTokenizer(copy);
      const tok = loadHfTokenizer(config.path);
      if (copy) saveTokenizer(tok, copy);
      return tok;
    }
    case 'none':
      throw new Error("data.tokenizer 'none' only works with a synthetic corpus (text needs a tokenizer: 'bpe', 'gpt2' or 'hf')");
    case 'bpe': {
      const path = config.path ?? (runDir ? runTokenizerPath(runDir) : undefined);
      if (path && existsSync(path)) {
        const tok = loadTokenizer(path);
        if (tok.vocabSize > config.vocab_size) {
          throw new Error(`tokenizer ${path} has a vocabulary of ${tok.vocabSize}, more than data.tokenizer.vocab_size = ${config.vocab_size}; delete it or fix the config`);
        }
        return tok;
      }
      const tok = trainBpe(train.map((d) => d.text), { vocabSize: config.vocab_size });
      if (path) saveTokenizer(tok, path);
      return tok;
    }
  }
}

/** Loads a corpus, splits it by document, tokenizes train and validation. */
export function loadTokenData(corpus: CorpusConfig, tokenizerConfig: TokenizerConfig | undefined, options: LoadTokenDataOptions = {}): TokenData {
  const split = options.split ?? { val: 0.05, test: 0.05, seed: 0 };
  if (corpus.kind === 'synthetic') {
    if (tokenizerConfig && tokenizerConfig.kind !== 'none') {
      throw new Error(`data.tokenizer: a synthetic corpus is already token ids; use 'none' (or leave it out), found '${tokenizerConfig.kind}'`);
    }
    return syntheticTokenData({ vocab_size: corpus.vocab_size, tokens: corpus.tokens, seed: corpus.seed, branching: corpus.branching, val: split.val, test: split.test });
  }
  if (!tokenizerConfig) throw new Error(`data.tokenizer: a text corpus ('${corpus.kind}') needs a tokenizer ('bpe' with a vocab_size, 'gpt2', or 'hf' with a path)`);
  const docs = loadCorpus(corpusSpecOf(corpus));
  const splits = splitDocuments(docs, split);
  if (splits.train.length === 0) throw new Error(`corpus '${corpusName(corpus)}': the split left no training documents (${docs.length} in all); lower data.split.val/test`);
  const tokenizer = tokenizerFor(tokenizerConfig, splits.train, options.runDir);
  const stream = (name: 'train' | 'val', part: readonly Document[]): TokenStream => {
    if (!options.runDir) return tokenizeInMemory(part, tokenizer);
    const key = hashString32(`${corpusName(corpus)}|${JSON.stringify(split)}`).toString(16).padStart(8, '0');
    return loadOrBuildTokenCache(tokenCachePath(options.runDir, `${name}-${key}`), part, tokenizer).stream;
  };
  const data: TokenData = {
    vocabSize: tokenizer.vocabSize,
    train: stream('train', splits.train),
    tokenizer,
    maskTokenId: tokenizer.special.MASK,
    padTokenId: tokenizer.special.PAD,
    corpusName: corpusName(corpus),
    tokenizerName: tokenizerConfig.kind === 'bpe' ? `bpe-${tokenizer.vocabSize}` : tokenizerConfig.kind,
  };
  if (splits.val.length > 0) data.validation = stream('val', splits.val);
  return data;
}
