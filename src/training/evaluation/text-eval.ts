/**
 * Causal language-model evaluation on token streams: mean loss, perplexity and bits per byte.
 *
 * Bits per byte is the tokenizer-independent measure: the negative log-likelihood of the text's
 * tokens, in bits, divided by the number of UTF-8 bytes those tokens stand for. Two models with
 * different tokenizers (a 2048-token BPE and GPT-2's 50257) are compared by it; perplexity per
 * token is not comparable across vocabularies. Special tokens (the EOS between documents) are
 * scored in the loss and perplexity (as in training) but are not text: they count neither bits
 * nor bytes in bits per byte.
 */
import * as E from '../../engine/index.js';
import type { Model } from '../../nn/index.js';
import { SPECIAL_TOKEN_NAMES, type Document, type Tokenizer } from '../../data/index.js';
import { inference } from '../sampling/index.js';

export interface TokenEvalOptions {
  /** Window length (tokens the model sees at once). */
  seqLen: number;
  /** Windows per forward pass. */
  batchSize: number;
  /** Score at most this many tokens (default: all). */
  maxTokens?: number;
  /** Called after each batch with (windows done, windows in all). */
  onProgress?: (done: number, total: number) => void;
}

export interface TokenEvalResult {
  /** Tokens scored (targets of the windows), specials included. */
  scored: number;
  /** Mean negative log-likelihood per scored token, in nats. */
  loss: number;
  perplexity: number;
  /** Scored tokens that are text (not special tokens). */
  text_tokens: number;
  /** UTF-8 bytes of the scored text tokens. */
  bytes: number;
  /** Negative log-likelihood of the text tokens in bits, per byte of their text. */
  bits_per_byte: number;
  bytes_per_token: number;
}

export interface TextEvalResult extends TokenEvalResult {
  documents: number;
  /** Tokens of all documents joined (with EOS after each), before windowing. */
  tokens: number;
}

/**
 * UTF-8 bytes each id stands for (0 for special tokens). Uses the tokenizer's raw token bytes
 * when it has them (every tokenizer of ours does); otherwise the UTF-8 length of the id decoded
 * alone, which over-counts bytes of characters split across tokens.
 */
export function tokenByteLengths(tokenizer: Tokenizer): Uint32Array {
  const lengths = new Uint32Array(tokenizer.vocabSize);
  const raw = (tokenizer as { tokenBytes?: (id: number) => Uint8Array }).tokenBytes;
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    try {
      lengths[id] = raw ? raw.call(tokenizer, id).length : Buffer.byteLength(tokenizer.decode([id]), 'utf8');
    } catch {
      lengths[id] = 0; // an id without a token (a gap in an imported vocabulary)
    }
  }
  for (const name of SPECIAL_TOKEN_NAMES) lengths[tokenizer.special[name]] = 0;
  return lengths;
}

/**
 * Scores a causal model on `ids` in non-overlapping windows of seqLen (each window predicts
 * ids[off + 1 … off + seqLen] from ids[off … off + seqLen − 1]). `byteLengths[id]` (0 = special)
 * gives the bytes for bits per byte.
 */
export function evaluateTokens(model: Model, ids: Int32Array, byteLengths: ArrayLike<number>, opts: TokenEvalOptions): TokenEvalResult {
  const S = opts.seqLen;
  const B = opts.batchSize;
  if (!Number.isInteger(S) || S < 1 || !Number.isInteger(B) || B < 1) throw new RangeError(`evaluateTokens: seqLen and batchSize must be positive integers, got ${S} and ${B}`);
  if (opts.maxTokens !== undefined && ids.length > opts.maxTokens + 1) ids = ids.subarray(0, opts.maxTokens + 1);
  const windows = Math.floor((ids.length - 1) / S);
  if (windows < 1) throw new Error(`${ids.length} tokens are fewer than one window of ${S + 1} (seq_len + 1); lower the window length (--seq-len)`);
  const vocab = model.embedding.vocabSize;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i]! < 0 || ids[i]! >= vocab) throw new RangeError(`token id ${ids[i]} at position ${i} is outside the model's vocabulary [0, ${vocab})`);
  }
  let nll = 0, nllText = 0, scored = 0, textTokens = 0, bytes = 0;
  inference(model, () => {
    for (let w0 = 0; w0 < windows; w0 += B) {
      const b = Math.min(B, windows - w0);
      const input = ids.slice(w0 * S, (w0 + b) * S);
      const target = ids.slice(w0 * S + 1, (w0 + b) * S + 1);
      const textTarget = target.map((t) => (byteLengths[t]! > 0 ? t : -100));
      let n = 0;
      for (const t of textTarget) if (t !== -100) { n++; bytes += byteLengths[t]!; }
      const [all, text] = E.tidy(() => {
        const x = E.tensor(input, [b, S], { dtype: 'int32', backend: model.backend });
        const logits = model.forward(x).logits;
        const tAll = E.tensor(target, [b, S], { dtype: 'int32', backend: model.backend });
        const tText = E.tensor(textTarget, [b, S], { dtype: 'int32', backend: model.backend });
        return [E.crossEntropy(logits, tAll).item(), n > 0 ? E.crossEntropy(logits, tText, { ignoreIndex: -100 }).item() : 0];
      });
      nll += all! * b * S;
      scored += b * S;
      nllText += text! * n;
      textTokens += n;
      opts.onProgress?.(w0 + b, windows);
    }
  });
  const loss = nll / scored;
  return {
    scored,
    loss,
    perplexity: Math.exp(loss),
    text_tokens: textTokens,
    bytes,
    bits_per_byte: bytes > 0 ? nllText / Math.LN2 / bytes : NaN,
    bytes_per_token: textTokens > 0 ? bytes / textTokens : NaN,
  };
}

/** The documents as one token stream, EOS after each (as training joins them). */
export function documentTokens(tokenizer: Tokenizer, documents: readonly Pick<Document, 'text'>[]): Int32Array {
  const out: number[] = [];
  for (const d of documents) {
    for (const id of tokenizer.encode(d.text)) out.push(id);
    out.push(tokenizer.special.EOS);
  }
  return Int32Array.from(out);
}

/** Perplexity and bits per byte of a causal model on documents (e.g. a user's held-out files). */
export function evaluateText(model: Model, tokenizer: Tokenizer, documents: readonly Pick<Document, 'text'>[], opts: TokenEvalOptions): TextEvalResult {
  if (documents.length === 0) throw new Error('no documents to evaluate');
  if (tokenizer.vocabSize > model.embedding.vocabSize) {
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens but the model's embedding only ${model.embedding.vocabSize}: they do not belong together`);
  }
  const ids = documentTokens(tokenizer, documents);
  return { documents: documents.length, tokens: ids.length, ...evaluateTokens(model, ids, tokenByteLengths(tokenizer), opts) };
}
