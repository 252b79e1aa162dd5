// The tokenizer contract shared by every tokenizer in the framework.
import { createHash } from 'node:crypto';

/** Names of the special tokens every tokenizer provides, in their canonical order. */
export const SPECIAL_TOKEN_NAMES = ['PAD', 'MASK', 'BOS', 'EOS', 'CLS', 'SEP'] as const;
export type SpecialTokenName = (typeof SPECIAL_TOKEN_NAMES)[number];

/** Maps each special token name to its id. Two names may share an id (GPT-2: BOS = EOS). */
export type SpecialTokens = Readonly<Record<SpecialTokenName, number>>;

/** The literal text of a special token, e.g. "[MASK]" (what decode() prints for it). */
export function specialTokenText(name: SpecialTokenName): string {
  return `[${name}]`;
}

export interface EncodeOptions {
  /**
   * When true, literal special-token strings such as "[MASK]" in the text become the special
   * token ids. Default false: they are encoded as ordinary text, so user data can never inject
   * control tokens by accident.
   */
  allowSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens from the output instead of printing them as "[NAME]". */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  /** Number of ids the model's embedding must hold: every id is in [0, vocabSize). */
  readonly vocabSize: number;
  /**
   * Text -> ids. Throws on strings that are not valid Unicode (lone UTF-16 surrogates), since
   * they have no UTF-8 form and could not round-trip.
   */
  encode(text: string, options?: EncodeOptions): number[] | Int32Array;
  /**
   * Ids -> text. decode(encode(s)) === s for every well-formed string. Id sequences that cut a
   * multi-byte character in half decode with U+FFFD in its place.
   */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  readonly special: SpecialTokens;
  /** Everything needed to rebuild the tokenizer; also the basis of its fingerprint. */
  toJSON(): object;
}

/** sha256 (hex) of the tokenizer's JSON: two tokenizers with the same fingerprint encode alike. */
export function tokenizerFingerprint(tokenizer: Tokenizer): string {
  return createHash('sha256').update(JSON.stringify(tokenizer.toJSON())).digest('hex');
}

/**
 * Index of the first lone UTF-16 surrogate in `text`, or -1 if the string is well formed.
 * Such strings cannot be represented in UTF-8, so tokenizers refuse them.
 */
export function findLoneSurrogate(text: string): number {
  const wellFormed = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (wellFormed !== undefined && wellFormed.call(text)) return -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

export function assertWellFormed(text: string, who: string): void {
  const at = findLoneSurrogate(text);
  if (at >= 0) {
    const code = text.charCodeAt(at).toString(16).toUpperCase();
    throw new Error(
      `${who}: input has a lone UTF-16 surrogate U+${code} at index ${at}; ` +
        'it has no UTF-8 encoding, so it cannot be tokenized (fix the text, e.g. with String.prototype.toWellFormed)',
    );
  }
}

/** One piece of text split around special-token literals. */
export type TextSegment = { text: string } | { specialId: number };

/**
 * Splits text around literal special-token strings (e.g. "[MASK]"). `literals` maps each literal
 * to its id. Used only when encode() is called with allowSpecial.
 */
export function splitOnSpecialLiterals(text: string, literals: ReadonlyMap<string, number>): TextSegment[] {
  if (literals.size === 0) return [{ text }];
  const pattern = new RegExp([...literals.keys()].map(escapeRegExp).join('|'), 'g');
  const segments: TextSegment[] = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    const at = match.index ?? 0;
    if (at > last) segments.push({ text: text.slice(last, at) });
    segments.push({ specialId: literals.get(match[0])! });
    last = at + match[0].length;
  }
  if (last < text.length) segments.push({ text: text.slice(last) });
  return segments;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Decodes UTF-8 bytes; keeps a leading U+FEFF (it is content, not a byte-order mark, here). */
export const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Decoding of a byte-level tokenizer: the bytes of every id (from a table indexed by id) joined
 * and decoded as UTF-8, leaving out the ids `skip` names. An id without bytes is a RangeError
 * naming `who` and its position.
 */
export function decodeIdBytes(bytesById: readonly (Uint8Array | undefined)[], ids: ArrayLike<number>, skip: ((id: number) => boolean) | null, who: string, vocabSize: number): string {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const bytes = bytesById[id];
    if (bytes === undefined || !Number.isInteger(id)) throw new RangeError(`${who}: id ${id} at position ${i} is outside [0, ${vocabSize})`);
    if (skip?.(id)) continue;
    parts.push(bytes);
    total += bytes.length;
  }
  const buffer = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    buffer.set(part, offset);
    offset += part.length;
  }
  return utf8Decoder.decode(buffer);
}
export const utf8Encoder = new TextEncoder();
