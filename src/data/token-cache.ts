// Token cache: a corpus split tokenised once and stored as a binary file in the run folder.
//
// Layout (little-endian), 128-byte header then the ids:
//   0  magic "SWTOKENS"       8 bytes
//   8  format version         u32
//   12 dtype                  u32 (1 = uint16, 2 = int32)
//   16 vocabSize              u32
//   20 EOS id                 u32 (appended after every document)
//   24 document count         u64
//   32 token count            u64
//   40 tokenizer fingerprint  32 bytes (sha256 of the tokenizer JSON)
//   72 corpus fingerprint     32 bytes (sha256 of the documents' ids and texts)
//   104 reserved (zero)       24 bytes
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicWith } from './atomic-write.js';
import { IdBuffer } from './id-buffer.js';
import type { Document } from './corpora.js';
import { tokenizerFingerprint, type Tokenizer } from './tokenizer.js';
import { ArrayTokenStream, FileTokenStream, bytesPerToken, decodeIds, encodeIds, type TokenDtype, type TokenStream } from './token-stream.js';

export const TOKEN_CACHE_MAGIC = 'SWTOKENS';
export const TOKEN_CACHE_VERSION = 1;
export const TOKEN_CACHE_HEADER_BYTES = 128;
/** Caches whose ids exceed this many bytes are read window by window instead of loaded whole. */
export const DEFAULT_IN_MEMORY_LIMIT_BYTES = 512 * 1024 * 1024;
const WRITE_CHUNK_TOKENS = 1 << 20;

export interface TokenCacheHeader {
  version: number;
  dtype: TokenDtype;
  vocabSize: number;
  eosId: number;
  documentCount: number;
  tokenCount: number;
  tokenizerFingerprint: string;
  corpusFingerprint: string;
}

export type TokenCacheProblem = 'missing' | 'unreadable' | 'bad-magic' | 'bad-version' | 'bad-header' | 'truncated' | 'tokenizer-mismatch' | 'corpus-mismatch';

/** Why a cache file cannot be used; `problem` is machine-readable, the message is for people. */
export class TokenCacheError extends Error {
  override name = 'TokenCacheError';
  constructor(
    readonly problem: TokenCacheProblem,
    readonly path: string,
    detail: string,
  ) {
    super(`token cache ${path}: ${detail}`);
  }
}

/** Conventional location of a split's cache inside a run folder. */
export function tokenCachePath(runDir: string, splitName: string): string {
  return join(runDir, 'tokens', `${splitName}.tokens`);
}

/** sha256 (hex) over the documents' ids and texts, in order. */
export function corpusFingerprint(documents: readonly Document[]): string {
  const hash = createHash('sha256');
  for (const doc of documents) hash.update(`${doc.id.length}:${doc.id}|${doc.text.length}:`).update(doc.text);
  return hash.digest('hex');
}

/** Tokenises the documents (EOS after each) and writes the cache atomically. */
export function writeTokenCache(path: string, documents: readonly Document[], tokenizer: Tokenizer): TokenCacheHeader {
  const dtype: TokenDtype = tokenizer.vocabSize <= 65536 ? 'uint16' : 'int32';
  const eosId = tokenizer.special.EOS;
  const header: TokenCacheHeader = {
    version: TOKEN_CACHE_VERSION,
    dtype,
    vocabSize: tokenizer.vocabSize,
    eosId,
    documentCount: documents.length,
    tokenCount: 0,
    tokenizerFingerprint: tokenizerFingerprint(tokenizer),
    corpusFingerprint: corpusFingerprint(documents),
  };
  writeFileAtomicWith(path, (fd) => {
    let position = TOKEN_CACHE_HEADER_BYTES;
    const writeAll = (bytes: Uint8Array, at: number): void => {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, at + done);
    };
    // Ids are gathered into chunks so a corpus of many small documents needs few writes.
    const chunk = new IdBuffer(WRITE_CHUNK_TOKENS);
    const flush = (): void => {
      const bytes = encodeIds(chunk.toInt32Array(), dtype);
      writeAll(bytes, position);
      position += bytes.length;
      header.tokenCount += chunk.length;
      chunk.clear();
    };
    documents.forEach((doc, d) => {
      const ids = tokenizer.encode(doc.text);
      for (let i = 0; i < ids.length; i++) {
        if (!(ids[i]! >= 0 && ids[i]! < tokenizer.vocabSize)) {
          throw new Error(`writeTokenCache: document ${doc.id} (#${d}) encoded to id ${ids[i]}, outside [0, ${tokenizer.vocabSize})`);
        }
      }
      chunk.pushAll(ids);
      chunk.push(eosId);
      if (chunk.length >= WRITE_CHUNK_TOKENS) flush();
    });
    flush();
    writeAll(encodeHeader(header), 0);
  });
  return header;
}

export interface OpenTokenCacheOptions {
  /** The tokenizer the cache must have been made with. */
  tokenizer: Tokenizer;
  /** If given, the cache must have been made from exactly these documents. */
  documents?: readonly Document[];
  inMemoryLimitBytes?: number;
}

/** Opens a cache after checking it; throws TokenCacheError saying why it cannot be used. */
export function openTokenCache(path: string, options: OpenTokenCacheOptions): { stream: TokenStream; header: TokenCacheHeader } {
  const header = readTokenCacheHeader(path);
  const expectedTokenizer = tokenizerFingerprint(options.tokenizer);
  if (header.tokenizerFingerprint !== expectedTokenizer || header.vocabSize !== options.tokenizer.vocabSize) {
    throw new TokenCacheError(
      'tokenizer-mismatch',
      path,
      `was made with another tokenizer (fingerprint ${header.tokenizerFingerprint.slice(0, 12)}..., vocab ${header.vocabSize}; ` +
        `expected ${expectedTokenizer.slice(0, 12)}..., vocab ${options.tokenizer.vocabSize})`,
    );
  }
  if (options.documents !== undefined) {
    const expectedCorpus = corpusFingerprint(options.documents);
    if (header.corpusFingerprint !== expectedCorpus) {
      throw new TokenCacheError('corpus-mismatch', path, 'was made from different documents (corpus fingerprint differs)');
    }
  }
  const dataBytes = header.tokenCount * bytesPerToken(header.dtype);
  const limit = options.inMemoryLimitBytes ?? DEFAULT_IN_MEMORY_LIMIT_BYTES;
  if (dataBytes > limit) {
    return { stream: new FileTokenStream(path, TOKEN_CACHE_HEADER_BYTES, header.tokenCount, header.vocabSize, header.dtype), header };
  }
  const bytes = readRange(path, TOKEN_CACHE_HEADER_BYTES, dataBytes);
  return { stream: new ArrayTokenStream(decodeIds(bytes, header.dtype), header.vocabSize), header };
}

export interface LoadOrBuildResult {
  stream: TokenStream;
  header: TokenCacheHeader;
  rebuilt: boolean;
  /** Why the cache was (re)built, e.g. "missing" or a tokenizer mismatch; absent when reused. */
  reason?: string;
}

/** Reuses a valid cache, or (re)builds it when it is missing, stale or damaged, and says why. */
export function loadOrBuildTokenCache(
  path: string,
  documents: readonly Document[],
  tokenizer: Tokenizer,
  options: { inMemoryLimitBytes?: number } = {},
): LoadOrBuildResult {
  let reason: string;
  try {
    const opened = openTokenCache(path, { tokenizer, documents, ...options });
    return { ...opened, rebuilt: false };
  } catch (error) {
    if (!(error instanceof TokenCacheError) || error.problem === 'unreadable') throw error;
    reason = error.message;
  }
  writeTokenCache(path, documents, tokenizer);
  const opened = openTokenCache(path, { tokenizer, documents, ...options });
  return { ...opened, rebuilt: true, reason };
}

/** Reads and checks the header (magic, version, sizes); throws TokenCacheError. */
export function readTokenCacheHeader(path: string): TokenCacheHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TokenCacheError('missing', path, 'does not exist');
    throw new TokenCacheError('unreadable', path, `cannot be opened: ${(error as Error).message}`);
  }
  try {
    const fileBytes = fstatSync(fd).size;
    const bytes = new Uint8Array(TOKEN_CACHE_HEADER_BYTES);
    const got = readSync(fd, bytes, 0, bytes.length, 0);
    if (got < TOKEN_CACHE_HEADER_BYTES) throw new TokenCacheError('truncated', path, `is ${fileBytes} bytes, shorter than its header`);
    const header = decodeHeader(bytes, path);
    const expectedBytes = TOKEN_CACHE_HEADER_BYTES + header.tokenCount * bytesPerToken(header.dtype);
    if (fileBytes !== expectedBytes) {
      throw new TokenCacheError('truncated', path, `is ${fileBytes} bytes but its header promises ${expectedBytes} (${header.tokenCount} tokens)`);
    }
    return header;
  } finally {
    closeSync(fd);
  }
}

function encodeHeader(header: TokenCacheHeader): Uint8Array {
  const bytes = new Uint8Array(TOKEN_CACHE_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(Buffer.from(TOKEN_CACHE_MAGIC, 'ascii'), 0);
  view.setUint32(8, header.version, true);
  view.setUint32(12, header.dtype === 'uint16' ? 1 : 2, true);
  view.setUint32(16, header.vocabSize, true);
  view.setUint32(20, header.eosId, true);
  view.setBigUint64(24, BigInt(header.documentCount), true);
  view.setBigUint64(32, BigInt(header.tokenCount), true);
  bytes.set(Buffer.from(header.tokenizerFingerprint, 'hex'), 40);
  bytes.set(Buffer.from(header.corpusFingerprint, 'hex'), 72);
  return bytes;
}

function decodeHeader(bytes: Uint8Array, path: string): TokenCacheHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const magic = Buffer.from(bytes.subarray(0, 8)).toString('latin1');
  if (magic !== TOKEN_CACHE_MAGIC) throw new TokenCacheError('bad-magic', path, `is not a token cache (magic ${JSON.stringify(magic)})`);
  const version = view.getUint32(8, true);
  if (version !== TOKEN_CACHE_VERSION) {
    throw new TokenCacheError('bad-version', path, `has format version ${version}; this build reads version ${TOKEN_CACHE_VERSION}`);
  }
  const dtypeCode = view.getUint32(12, true);
  if (dtypeCode !== 1 && dtypeCode !== 2) throw new TokenCacheError('bad-header', path, `has unknown dtype code ${dtypeCode}`);
  const documentCount = view.getBigUint64(24, true);
  const tokenCount = view.getBigUint64(32, true);
  if (tokenCount > BigInt(Number.MAX_SAFE_INTEGER) || documentCount > tokenCount) {
    throw new TokenCacheError('bad-header', path, `has impossible counts (${documentCount} documents, ${tokenCount} tokens)`);
  }
  return {
    version,
    dtype: dtypeCode === 1 ? 'uint16' : 'int32',
    vocabSize: view.getUint32(16, true),
    eosId: view.getUint32(20, true),
    documentCount: Number(documentCount),
    tokenCount: Number(tokenCount),
    tokenizerFingerprint: Buffer.from(bytes.subarray(40, 72)).toString('hex'),
    corpusFingerprint: Buffer.from(bytes.subarray(72, 104)).toString('hex'),
  };
}

function readRange(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const bytes = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const got = readSync(fd, bytes, done, length - done, offset + done);
      if (got === 0) throw new TokenCacheError('truncated', path, `ended after ${done} of ${length} id bytes`);
      done += got;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}
