/**
 * Hugging Face tokenizer files in a model folder: tokenizer.json, tokenizer_config.json and
 * special_tokens_map.json written for our tokenizers (so `AutoTokenizer.from_pretrained(folder)`
 * works), and the folder's tokenizer read back as one of ours.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hfTokenizerFiles, loadHfTokenizer, type HfBpeTokenizer, type HfTokenizerExportOptions, type Tokenizer } from '../../data/index.js';
import { writeTextAtomic } from './weights.js';

export const HF_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/** Writes the three tokenizer files into `folder` (which must exist); returns their names. */
export function saveHFTokenizer(tokenizer: Tokenizer, folder: string, opts: HfTokenizerExportOptions = {}): string[] {
  const files = hfTokenizerFiles(tokenizer, opts);
  writeTextAtomic(join(folder, 'tokenizer.json'), JSON.stringify(files.tokenizer) + '\n');
  writeTextAtomic(join(folder, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig, null, 2) + '\n');
  writeTextAtomic(join(folder, 'special_tokens_map.json'), JSON.stringify(files.specialTokensMap, null, 2) + '\n');
  return [...HF_TOKENIZER_FILES];
}

/** The tokenizer of a Hugging Face folder, or null when it has no tokenizer.json. */
export function loadHFTokenizer(folder: string): HfBpeTokenizer | null {
  return existsSync(join(folder, 'tokenizer.json')) ? loadHfTokenizer(folder) : null;
}
