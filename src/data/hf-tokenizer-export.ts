// Our tokenizers as Hugging Face files: tokenizer.json (the `tokenizers` library's format: a
// byte-level BPE model, ByteLevel pre-tokenizer and decoder, our specials as added tokens),
// tokenizer_config.json (so transformers' AutoTokenizer loads a PreTrainedTokenizerFast with the
// special tokens named) and special_tokens_map.json. The library then gives the same ids as we do.
import { BpeTokenizer, FIRST_MERGE_ID } from './bpe.js';
import { bytesToByteLevel } from './byte-level.js';
import { GPT2_END_OF_TEXT_ID, Gpt2Tokenizer } from './gpt2-tokenizer.js';
import { HF_ROLE_KEYS, HfBpeTokenizer } from './hf-bpe.js';
import { SPECIAL_TOKEN_NAMES, utf8Decoder, utf8Encoder, type SpecialTokenName, type Tokenizer } from './tokenizer.js';

export interface HfTokenizerFiles {
  /** tokenizer.json */
  tokenizer: Record<string, unknown>;
  /** tokenizer_config.json */
  tokenizerConfig: Record<string, unknown>;
  /** special_tokens_map.json */
  specialTokensMap: Record<string, string>;
}

export interface HfTokenizerExportOptions {
  /** tokenizer_config.json's model_max_length (the model's context length); omitted when unknown. */
  modelMaxLength?: number;
}

interface ByteLevelBpe {
  /** id → the token's bytes, for the BPE model's vocabulary. */
  vocab: Map<number, Uint8Array>;
  /** In rank order: [left id, right id]. */
  merges: [number, number][];
  /** Tokens matched as literals before BPE (our specials). */
  added: { id: number; content: string }[];
}

/** The three Hugging Face tokenizer files for a tokenizer (our BPE, GPT-2, or an imported HF BPE). */
export function hfTokenizerFiles(tokenizer: Tokenizer, opts: HfTokenizerExportOptions = {}): HfTokenizerFiles {
  let json: Record<string, unknown>;
  let contentOf: (id: number) => string;
  if (tokenizer instanceof HfBpeTokenizer) {
    json = tokenizer.hfJSON();
    const added = new Map<number, string>();
    for (const t of (json['added_tokens'] ?? []) as { id: number; content: string }[]) added.set(t.id, t.content);
    contentOf = (id) => added.get(id) ?? utf8Decoder.decode(tokenizer.tokenBytes(id));
  } else {
    const bpe = byteLevelBpeOf(tokenizer);
    json = tokenizerJSON(bpe);
    const added = new Map(bpe.added.map((t) => [t.id, t.content]));
    contentOf = (id) => added.get(id)!;
  }
  const roles = {} as Record<string, string>;
  for (const name of SPECIAL_TOKEN_NAMES) roles[HF_ROLE_KEYS[name]] = contentOf(tokenizer.special[name]);
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const t of (json['added_tokens'] ?? []) as Record<string, unknown>[]) {
    const { id, ...rest } = t;
    addedTokensDecoder[String(id)] = rest;
  }
  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...roles,
    unk_token: null,
    added_tokens_decoder: addedTokensDecoder,
    // decode(encode(s)) must give s back: no "clean-up" of spaces before punctuation.
    clean_up_tokenization_spaces: false,
  };
  if (opts.modelMaxLength !== undefined) tokenizerConfig['model_max_length'] = opts.modelMaxLength;
  return { tokenizer: json, tokenizerConfig, specialTokensMap: roles };
}

/** Vocabulary, merges and added tokens of our BPE or of GPT-2, as ids and bytes. */
function byteLevelBpeOf(tokenizer: Tokenizer): ByteLevelBpe {
  if (tokenizer instanceof BpeTokenizer) {
    const vocab = new Map<number, Uint8Array>();
    for (let b = 0; b < 256; b++) vocab.set(b, Uint8Array.of(b));
    const merges = tokenizer.toJSON().merges;
    for (let k = 0; k < merges.length; k++) vocab.set(FIRST_MERGE_ID + k, tokenizer.tokenBytes(FIRST_MERGE_ID + k));
    return { vocab, merges, added: specialsAsAdded(tokenizer, (id) => utf8Decoder.decode(tokenizer.tokenBytes(id))) };
  }
  if (tokenizer instanceof Gpt2Tokenizer) return gpt2ByteLevelBpe(tokenizer);
  throw new Error(`cannot write a Hugging Face tokenizer.json for a ${tokenizer.constructor.name} (only byte-level BPE and GPT-2)`);
}

/** Our six special roles as added tokens (GPT-2's BOS and EOS share one). */
function specialsAsAdded(tokenizer: Tokenizer, content: (id: number) => string): { id: number; content: string }[] {
  const ids = [...new Set(SPECIAL_TOKEN_NAMES.map((n: SpecialTokenName) => tokenizer.special[n]))].sort((a, b) => a - b);
  return ids.map((id) => ({ id, content: content(id) }));
}

let gpt2Cache: ByteLevelBpe | undefined;

/**
 * GPT-2's merges recovered from its rank table the way transformers converts tiktoken files:
 * every split of a token into two tokens is a merge, ordered by the token's rank (then by the
 * pieces' ranks). Merging by these ranks picks the same pairs as ranking pairs by the rank of
 * the token they form, which is what the table means.
 */
function gpt2ByteLevelBpe(tokenizer: Gpt2Tokenizer): ByteLevelBpe {
  if (gpt2Cache === undefined) {
    const vocab = new Map<number, Uint8Array>();
    const idOf = new Map<string, number>();
    for (let id = 0; id < GPT2_END_OF_TEXT_ID; id++) {
      const bytes = tokenizer.tokenBytes(id);
      vocab.set(id, bytes);
      idOf.set(Buffer.from(bytes).toString('latin1'), id);
    }
    const merges: [number, number][] = [];
    for (let id = 0; id < GPT2_END_OF_TEXT_ID; id++) {
      const key = Buffer.from(vocab.get(id)!).toString('latin1');
      const splits: [number, number][] = [];
      for (let cut = 1; cut < key.length; cut++) {
        const l = idOf.get(key.slice(0, cut));
        const r = idOf.get(key.slice(cut));
        if (l !== undefined && r !== undefined) splits.push([l, r]);
      }
      splits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      merges.push(...splits);
    }
    gpt2Cache = { vocab, merges, added: [] };
  }
  const added = specialsAsAdded(tokenizer, (id) => utf8Decoder.decode(tokenizer.tokenBytes(id)));
  return { ...gpt2Cache, added };
}

/** The tokenizers library's JSON for a byte-level BPE. */
function tokenizerJSON(bpe: ByteLevelBpe): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  const text = new Map<number, string>();
  // The added tokens are in the model's vocabulary too: the library gives an added token that is
  // not in it a new id after the vocabulary's end instead of the id written here.
  const entries = [...bpe.vocab, ...bpe.added.map((t): [number, Uint8Array] => [t.id, utf8Encoder.encode(t.content)])];
  for (const [id, bytes] of entries) {
    if (text.has(id)) continue; // GPT-2's <|endoftext|> is both
    const s = bytesToByteLevel(bytes);
    const other = vocab[s];
    if (other !== undefined) {
      throw new Error(`cannot write a Hugging Face tokenizer.json: tokens ${other} and ${id} stand for the same bytes ${JSON.stringify(utf8Decoder.decode(bytes))}, and the format maps each byte string to one id`);
    }
    vocab[s] = id;
    text.set(id, s);
  }
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: bpe.added.map((t) => ({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: bpe.merges.map(([l, r]) => `${text.get(l)!} ${text.get(r)!}`),
    },
  };
}
