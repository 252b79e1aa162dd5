/**
 * A Hugging Face model folder (config.json + safetensors weights + tokenizer.json) as a ready
 * model: what `sample`, `eval`, `inspect` and `train --from` start from.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Tokenizer } from '../../data/index.js';
import { hfSizeName } from '../../nn/index.js';
import { hasStackWiseMarkers } from '../checkpoint.js';
import { loadHF, type LoadHFOptions, type LoadedHF } from './model-io.js';
import { loadHFTokenizer } from './tokenizer.js';

/** True for a folder with config.json and no StackWise run or checkpoint markers. */
export function isHFModelFolder(path: string): boolean {
  if (!existsSync(path) || !statSync(path).isDirectory()) return false;
  if (!existsSync(join(path, 'config.json'))) return false;
  return !hasStackWiseMarkers(path);
}

export interface Pretrained extends LoadedHF {
  /** The folder's tokenizer (tokenizer.json), or undefined when it has none. */
  tokenizer: Tokenizer | undefined;
  /** What the model was trained for: causal LM (llama, gpt2) or masked LM (bert). */
  objective: 'clm' | 'mlm';
  /** The longest sequence its positions allow (config.json), when it says. */
  maxPositions: number | undefined;
}

/** Loads a Hugging Face folder's model and tokenizer, checking they fit together. */
export function loadPretrained(folder: string, opts: LoadHFOptions = {}): Pretrained {
  const loaded = loadHF(folder, opts);
  try {
    const tokenizer = loadHFTokenizer(folder) ?? undefined;
    const vocab = loaded.model.embedding.vocabSize;
    if (tokenizer && tokenizer.vocabSize > vocab) {
      throw new Error(`${join(folder, 'tokenizer.json')} has ${tokenizer.vocabSize} tokens, but the model's embedding (config.json vocab_size) has ${vocab}: they do not belong together`);
    }
    const cfg = loaded.hfConfig;
    const positions = cfg[hfSizeName(loaded.family, 'max_positions')];
    const objective = loaded.family === 'bert' ? 'mlm' : 'clm';
    return { ...loaded, tokenizer, objective, maxPositions: typeof positions === 'number' ? positions : undefined };
  } catch (error) {
    loaded.model.dispose();
    throw error;
  }
}
