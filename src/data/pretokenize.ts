// Pre-tokenization: split text into "words" before BPE, so merges never cross word boundaries.

/**
 * The GPT-2 splitting pattern: common English contractions, optional-space + letters,
 * optional-space + digits, optional-space + other symbols, and whitespace runs (a run keeps
 * its last space for the following word). Every character belongs to exactly one alternative,
 * so the matches tile the whole string. As written by GPT-2 and Hugging Face (Python `regex`,
 * Oniguruma), where \s is Unicode White_Space; see jsRegexSource for what it becomes here.
 */
export const GPT2_PRETOKENIZE_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * Unicode White_Space, which is \s in Python's `regex` and in Oniguruma (Hugging Face's
 * tokenizers). JavaScript's \s differs: it has U+FEFF and lacks U+0085, so text with either
 * would split into other words than GPT-2 and Hugging Face split it into.
 */
const WHITE_SPACE_CLASS_BODY = '\\t-\\r\\u0085\\p{Z}';

/**
 * A pattern written for Python `regex` / Oniguruma as JavaScript source with the same meaning
 * of \s (and of \S outside brackets); everything else is passed through (the `u` flag then
 * checks it). Throws when \S appears inside brackets (no equivalent class union here).
 */
export function jsRegexSource(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      const e = pattern[++i]!;
      if (e === 's') out += inClass ? WHITE_SPACE_CLASS_BODY : `[${WHITE_SPACE_CLASS_BODY}]`;
      else if (e === 'S') {
        if (inClass) throw new Error('\\S inside [...] is not supported');
        out += `[^${WHITE_SPACE_CLASS_BODY}]`;
      } else out += c + e;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return out;
}

const GPT2_PRETOKENIZE_REGEX = new RegExp(jsRegexSource(GPT2_PRETOKENIZE_PATTERN), 'gu');

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
