// The spec shapes a model describes itself with (Rack.toSpec(), EmbeddingBlock.toSpec(), a head's
// toSpec()): plain JSON, snake_case, the config's names. framework/specs reads, validates and
// compares them and re-exports these types; they live here because nn produces them.
import type { StorageFormat } from '../engine/index.js';
import type { AttentionKind, AttentionMode, EmbeddingPositional, LinearFeatureMap, FfnKind, NormKind, NormPosition, Pooling, StackPositional } from './kinds.js';
import type { LoraTarget } from './lora-names.js';

/** Storage formats of a stack's weights (engine's STORAGE_FORMATS). */
export type WeightFormat = StorageFormat;

export interface EmbeddingSpec {
  vocab_size: number;
  d_model: number;
  positional: EmbeddingPositional;
  /** Required for learned positions (the table size); for rope an optional context limit. */
  max_positions?: number;
  /** Number of token types (BERT segments); 0 means no token-type embedding. */
  type_vocab_size: number;
  /**
   * Time-as-input: an embedding of each row's noise ratio r is added to the output (absent:
   * none). Only masked diffusion gives batches a noise ratio.
   */
  time_embedding?: boolean;
}

/** Per-token vocabulary logits. 'mlm' is the BERT head (dense + norm before the decoder). */
export interface TokenHeadSpec {
  kind: 'lm' | 'mlm';
  d_model: number;
  vocab_size: number;
  /** Decoder weight shared with the token embedding. */
  tied: boolean;
  bias: boolean;
}

/** One label per sequence, from a pooled hidden state. */
export interface ClassificationHeadSpec {
  kind: 'classification';
  d_model: number;
  n_classes: number;
  pooling: Pooling;
  bias: boolean;
}

export type HeadSpec = TokenHeadSpec | ClassificationHeadSpec;

export interface LoraSpec {
  rank: number;
  /** Scale numerator: the adapter adds (alpha / rank) · B A x. */
  alpha: number;
  targets: LoraTarget[];
}

export interface StackSpec {
  n_blocks: number;
  n_heads: number;
  /** Key/value heads: = n_heads for MHA, fewer for GQA, 1 for MQA. */
  n_kv_heads: number;
  d_ff: number;
  attention: AttentionMode;
  /** Present when not 'standard' softmax attention (model.attention_kind). */
  attention_kind?: Exclude<AttentionKind, 'standard'>;
  /** Feature map of linear attention. */
  feature_map?: LinearFeatureMap;
  norm: NormKind;
  norm_position: NormPosition;
  ffn: FfnKind;
  positional: StackPositional;
  /** RoPE base; present exactly when positional is 'rope'. */
  rope_theta?: number;
  frozen: boolean;
  weight_format: WeightFormat;
  /** LoRA adapters on this stack's linear layers, when any. */
  lora?: LoraSpec;
}

export interface RackSpec {
  d_model: number;
  n_stacks: number;
  /** One entry per stack, input side first; its length must equal n_stacks. */
  stacks: StackSpec[];
}
