// Pre-tokenization: split text into "words" before BPE, so merges never cross word boundaries.

/**
 * The GPT-2 splitting pattern: common English contractions, optional-space + letters,
 * optional-space + digits, optional-space + other symbols, and whitespace runs (a run keeps
 * its last space for the following word). Every character belongs to exactly one alternative,
 * so the matches tile the whole string.
 */
export const GPT2_PRETOKENIZE_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const GPT2_PRETOKENIZE_REGEX = new RegExp(GPT2_PRETOKENIZE_PATTERN, 'gu');

/** Names of the pre-tokenizers a saved tokenizer may refer to. */
export type PretokenizerName = 'gpt2';

/**
 * Calls `onWord` for each pre-token of `text`, in order. Defensive: if the pattern ever skipped
 * characters, the skipped text is still passed on as its own word, so no input is dropped.
 */
export function forEachWord(text: string, onWord: (word: string) => void): void {
  let expected = 0;
  for (const match of text.matchAll(GPT2_PRETOKENIZE_REGEX)) {
    const at = match.index ?? 0;
    if (at > expected) onWord(text.slice(expected, at));
    onWord(match[0]);
    expected = at + match[0].length;
  }
  if (expected < text.length) onWord(text.slice(expected));
}
