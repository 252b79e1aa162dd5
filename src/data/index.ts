// Public face of the data layer: tokenizers, corpora, splits, token caches and batch sampling.
export {
  SPECIAL_TOKEN_NAMES,
  specialTokenText,
  tokenizerFingerprint,
  findLoneSurrogate,
  type SpecialTokenName,
  type SpecialTokens,
  type Tokenizer,
  type EncodeOptions,
  type DecodeOptions,
} from './tokenizer.js';
export {
  BpeTokenizer,
  BPE_FORMAT,
  BPE_FORMAT_VERSION,
  BPE_SPECIAL_TOKENS,
  FIRST_MERGE_ID,
  MAX_BPE_VOCAB_SIZE,
  type BpeTokenizerJSON,
} from './bpe.js';
export { trainBpe, trainBpeWithStats, type BpeTrainOptions, type BpeTrainStats } from './bpe-train.js';
export { GPT2_PRETOKENIZE_PATTERN, forEachWord } from './pretokenize.js';
export {
  Gpt2Tokenizer,
  GPT2_BASE_VOCAB_SIZE,
  GPT2_END_OF_TEXT_ID,
  type Gpt2TokenizerJSON,
} from './gpt2-tokenizer.js';
export { saveTokenizer, loadTokenizer, tokenizerFromJSON, TokenizerFileError, loadHfTokenizer, runTokenizerPath, RUN_TOKENIZER_FILE, LEGACY_RUN_TOKENIZER_FILE } from './tokenizer-io.js';
export { HfBpeTokenizer, HfTokenizerError, HF_BPE_FORMAT, type HfBpeTokenizerJSON } from './hf-bpe.js';
export { hfTokenizerFiles, type HfTokenizerFiles, type HfTokenizerExportOptions } from './hf-tokenizer-export.js';
export { bytesToByteLevel, byteLevelToBytes } from './byte-level.js';
export { loadCorpus, readUtf8File, CorpusError, type CorpusSpec, type Document } from './corpora.js';
export { splitDocuments, splitOf, type SplitOptions, type DocumentSplits, type SplitName } from './split.js';
export {
  ArrayTokenStream,
  FileTokenStream,
  type TokenStream,
  type TokenDtype,
} from './token-stream.js';
export {
  writeTokenCache,
  openTokenCache,
  loadOrBuildTokenCache,
  readTokenCacheHeader,
  corpusFingerprint,
  tokenCachePath,
  TokenCacheError,
  TOKEN_CACHE_MAGIC,
  TOKEN_CACHE_VERSION,
  type TokenCacheHeader,
  type TokenCacheProblem,
  type OpenTokenCacheOptions,
  type LoadOrBuildResult,
} from './token-cache.js';
export {
  CausalBatchSampler,
  sequentialCausalBatches,
  type CausalBatch,
  type CausalSamplerOptions,
} from './sampler.js';
export { Xoshiro128, rngFor, combineSeeds, hashString32, mix32, splitmix32Step, type RngState } from './rng.js';
export { writeFileAtomic, writeFileAtomicWith } from './atomic-write.js';
export { findInvalidUtf8 } from './utf8.js';
export { IdBuffer } from './id-buffer.js';
export { benchTokenizer, type TokenizerBenchOptions, type TokenizerBenchResult } from './bench-tokenizer.js';
