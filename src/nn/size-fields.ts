// The model's size fields, defined once: their config names (snake_case, `model.<name>`), types,
// which presets take them, their constant preset defaults, their names in each family's Hugging
// Face config.json, and whether a phase may change them. The config schema
// (framework/config/model-size-schema.ts), the config → preset mapping (framework/factories.ts),
// the presets' option types and defaults (presets.ts), the fields no phase may change
// (training/config/resolve.ts) and the Hugging Face mapping (io/hf/config.ts) are derived from
// this table.

import type { ModelPreset } from './kinds.js';

/** How a size field is written: a positive integer, a positive number or true/false. */
export type SizeFieldType = 'positive_int' | 'positive_number' | 'boolean';

export interface ModelSizeField {
  /** The config key (`model.<name>`). */
  readonly name: string;
  /** The preset option it sets (presets.ts; absent: the layer count n_stacks × blocks_per_stack and the rack split). */
  readonly option?: string;
  readonly type: SizeFieldType;
  /** Required in a config's model section (else the preset's default, or the data's for vocab_size). */
  readonly required: boolean;
  /** The presets whose config accepts the field (absent: all), and what the others lack (for the error). */
  readonly presets?: readonly ModelPreset[];
  readonly lacking?: string;
  /** The preset default where it is a constant (per family; computed defaults are told in `doc`). */
  readonly defaults?: Partial<Record<ModelPreset, number | boolean>>;
  /** Its name in each family's Hugging Face config.json (absent: no such field). */
  readonly hf?: Partial<Record<ModelPreset, string>>;
  /** A phase may change it (`schedule[i].overrides.model`); every other size is fixed for the run. */
  readonly perPhase?: boolean;
  /** The config reference's description. */
  readonly doc: string;
}

/** RoPE's base frequency when a block does not set one (LLaMA's and Hugging Face's default). */
export const DEFAULT_ROPE_THETA = 10000;

export const MODEL_SIZE_FIELDS = [
  {
    name: 'vocab_size', option: 'vocabSize', type: 'positive_int', required: false,
    hf: { llama: 'vocab_size', gpt2: 'vocab_size', bert: 'vocab_size' },
    doc: "Defaults to the tokenizer's (or the synthetic corpus') vocabulary.",
  },
  {
    name: 'd_model', option: 'dModel', type: 'positive_int', required: true,
    hf: { llama: 'hidden_size', gpt2: 'n_embd', bert: 'hidden_size' },
    doc: 'Hidden size of every block.',
  },
  {
    name: 'n_heads', option: 'nHeads', type: 'positive_int', required: true,
    hf: { llama: 'num_attention_heads', gpt2: 'n_head', bert: 'num_attention_heads' },
    doc: 'Attention heads (d_model must be divisible by it).',
  },
  {
    name: 'n_kv_heads', option: 'nKvHeads', type: 'positive_int', required: false, presets: ['llama'], lacking: 'grouped-query attention',
    hf: { llama: 'num_key_value_heads' },
    doc: 'Key/value heads (GQA/MQA; llama only). Default n_heads.',
  },
  {
    name: 'd_ff', option: 'dFF', type: 'positive_int', required: false,
    hf: { llama: 'intermediate_size', gpt2: 'n_inner', bert: 'intermediate_size' },
    doc: 'FFN inner size (preset default when absent).',
  },
  {
    name: 'n_stacks', type: 'positive_int', required: true, perPhase: true,
    doc: 'Stacks in the rack. Phases may raise it through `overrides.model.n_stacks`: the model then grows (a growth hook adds stacks; weights carry over).',
  },
  {
    name: 'blocks_per_stack', type: 'positive_int', required: true,
    doc: 'Transformer blocks in every stack.',
  },
  {
    name: 'max_positions', option: 'maxPositions', type: 'positive_int', required: false,
    defaults: { gpt2: 1024, bert: 512 },
    hf: { llama: 'max_position_embeddings', gpt2: 'n_positions', bert: 'max_position_embeddings' },
    doc: 'Position table size (gpt2/bert) or context limit (llama); default max(seq_len of every phase, preset default).',
  },
  {
    name: 'tie_embeddings', option: 'tieEmbeddings', type: 'boolean', required: false, presets: ['llama'], lacking: 'untied embeddings',
    defaults: { llama: false, gpt2: true, bert: true },
    hf: { llama: 'tie_word_embeddings', gpt2: 'tie_word_embeddings', bert: 'tie_word_embeddings' },
    doc: 'llama only (gpt2 and bert always tie).',
  },
  {
    name: 'rope_theta', option: 'ropeTheta', type: 'positive_number', required: false, presets: ['llama'], lacking: 'RoPE',
    defaults: { llama: DEFAULT_ROPE_THETA },
    hf: { llama: 'rope_theta' },
    doc: 'RoPE base frequency (llama; preset default 10000).',
  },
  {
    name: 'norm_eps', option: 'normEps', type: 'positive_number', required: false,
    defaults: { llama: 1e-6, gpt2: 1e-5, bert: 1e-12 },
    hf: { llama: 'rms_norm_eps', gpt2: 'layer_norm_epsilon', bert: 'layer_norm_eps' },
    doc: 'Epsilon of the normalization layers (preset default).',
  },
] as const satisfies readonly ModelSizeField[];

export type ModelSizeFieldName = (typeof MODEL_SIZE_FIELDS)[number]['name'];
type SizeFieldOf<N extends ModelSizeFieldName> = Extract<(typeof MODEL_SIZE_FIELDS)[number], { name: N }>;
type ValueOf<F> = F extends { type: 'boolean' } ? boolean : number;

/**
 * The preset options the size fields set, camelCase, all optional (presets.ts picks what each
 * preset takes and which are required): `{ vocabSize?: number; dModel?: number; … }`.
 */
export type ModelSizeOptions = {
  [F in (typeof MODEL_SIZE_FIELDS)[number] as F extends { option: infer O extends string } ? O : never]?: ValueOf<F>;
};

/** The layer count's name in each family's config.json (our n_stacks × blocks_per_stack). */
export const HF_LAYER_COUNT: Record<ModelPreset, string> = { llama: 'num_hidden_layers', gpt2: 'n_layer', bert: 'num_hidden_layers' };

/** The size field of that config name. */
export function sizeField<N extends ModelSizeFieldName>(name: N): SizeFieldOf<N> {
  return MODEL_SIZE_FIELDS.find((f) => f.name === name) as SizeFieldOf<N>;
}

/** A size field's name in a family's Hugging Face config.json (throws when the family has none). */
export function hfSizeName(family: ModelPreset, name: ModelSizeFieldName): string {
  const f: ModelSizeField = sizeField(name);
  const key = f.hf?.[family];
  if (key === undefined) throw new Error(`model.${name} has no Hugging Face ${family} config.json field`);
  return key;
}

/** A size field's constant preset default for a family (throws when the default is computed or absent). */
export function sizeDefault<N extends ModelSizeFieldName>(family: ModelPreset, name: N): ValueOf<SizeFieldOf<N>> {
  const f: ModelSizeField = sizeField(name);
  const v = f.defaults?.[family];
  if (v === undefined) throw new Error(`model.${name} has no constant ${family} preset default`);
  return v as ValueOf<SizeFieldOf<N>>;
}
