/**
 * Plain, JSON-serialisable descriptions of a model: EmbeddingBlock → Rack(Stacks(Blocks)) → Head.
 * `buildModel(config)` turns one into modules; presets and the Hugging Face importer produce them.
 */
import type { Activation, AttentionKind, AttentionMode, Family, FfnKind, LinearFeatureMap, NormKind, NormPosition } from './kinds.js';

/** Multi-head latent attention (DeepSeek-V2 style) sizes. */
export interface MlaConfig {
  /** Rank of the shared K/V latent c_kv = W_dkv x. */
  kvRank: number;
  /** Rank of the query latent (0: queries projected directly). */
  qRank?: number;
  /** Per-head dims that carry RoPE (decoupled; a shared rotary key). 0 = no rotary part. */
  ropeDim?: number;
  /** RMSNorm on the latents (DeepSeek does), default true. */
  latentNorm?: boolean;
}

/** Linear attention's feature map (LinearAttention; nn/kinds.ts LINEAR_FEATURE_MAPS). */
export interface LinearAttentionConfig {
  /** elu1 (default) or favor (Performer's positive orthogonal random features). */
  featureMap: LinearFeatureMap;
  /** Random features m of favor (default 2 · head_dim); elu1 has head_dim. */
  features?: number;
  /** Seed of favor's fixed projection (default 0): part of the architecture, like a size. */
  seed?: number;
  /** Chunk length of the causal pass (default 64). */
  chunkSize?: number;
}

/** One transformer layer. d_model comes from the model. */
export interface BlockConfig {
  nHeads: number;
  /** Key/value heads (MHA: = nHeads, GQA: fewer, MQA: 1). Default nHeads. */
  nKvHeads?: number;
  /** Default dModel / nHeads. */
  headDim?: number;
  attention: AttentionMode;
  /** standard softmax attention (default), MLA, or kernelised linear attention. */
  attentionKind?: AttentionKind;
  mla?: MlaConfig;
  /** Feature map of linear attention (default elu1). */
  linear?: LinearAttentionConfig;
  positional: 'rope' | 'none';
  ropeTheta?: number;
  /** Rotate only the first rotaryDim dims of each head (default all). */
  rotaryDim?: number;
  /** Bias on q/k/v projections. */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  outBias: boolean;
  dFF: number;
  ffn: FfnKind;
  /** Activation of a GELU-family FFN (default 'gelu'); SwiGLU always uses silu. */
  activation?: Activation;
  ffnBias: boolean;
  norm: NormKind;
  normEps: number;
  normPosition: NormPosition;
  /** Residual (hidden) dropout probability, default 0. */
  dropout?: number;
}

export interface StackConfig {
  nBlocks: number;
  block: BlockConfig;
}

export interface NormConfig {
  kind: NormKind;
  eps: number;
}

export interface EmbeddingConfig {
  /** learned: position table added to tokens; rope: positions applied in attention; none. */
  positional: 'learned' | 'rope' | 'none';
  maxPositions?: number;
  /** Token-type (segment) table rows; 0 = none. */
  typeVocabSize?: number;
  /** Norm after summing the embeddings (BERT). */
  norm?: NormConfig | null;
  dropout?: number;
}

export type HeadConfig =
  | {
      kind: 'lm';
      tied: boolean;
      bias: boolean;
      /** Final norm applied before the decoder (GPT-2 ln_f, LLaMA model.norm). */
      finalNorm?: NormConfig | null;
    }
  | {
      kind: 'mlm';
      tied: boolean;
      /** Transform activation (BERT: 'gelu'). */
      activation: Activation;
      normEps: number;
      finalNorm?: NormConfig | null;
    }
  | {
      kind: 'classification';
      nClasses: number;
      pooling: 'cls' | 'mean';
      /** Dense + tanh pooler before the classifier (BERT). */
      pooler: boolean;
      bias: boolean;
      dropout?: number;
      finalNorm?: NormConfig | null;
    };


/**
 * Time-as-input: an embedding of each row's noise ratio r (sinusoidal features → MLP), added to
 * the embedding output before the rack (nn/time-embedding.ts).
 */
export interface TimeEmbeddingConfig {
  /** Sinusoidal features of r (even). */
  features: number;
  /** Hidden width of the MLP. */
  hidden: number;
}

export interface ModelConfig {
  family: Family;
  vocabSize: number;
  dModel: number;
  embedding: EmbeddingConfig;
  stacks: StackConfig[];
  head: HeadConfig;
  /** Time-as-input (absent: none); the model's forward then needs one noise ratio per row. */
  timeEmbedding?: TimeEmbeddingConfig;
}

/** Total number of blocks. */
export function numBlocks(config: ModelConfig): number {
  return config.stacks.reduce((n, s) => n + s.nBlocks, 0);
}

/**
 * Splits `nLayers` into stacks: a number K (K equal stacks; K must divide nLayers) or an explicit
 * list of block counts summing to nLayers.
 */
export function stackSizes(nLayers: number, stacks: number | number[] = 1): number[] {
  if (Array.isArray(stacks)) {
    if (stacks.length === 0 || stacks.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error(`stacks: expected a non-empty list of positive integers, found [${stacks.join(', ')}]`);
    }
    const total = stacks.reduce((a, b) => a + b, 0);
    if (total !== nLayers) throw new Error(`stacks: block counts [${stacks.join(', ')}] sum to ${total}, expected ${nLayers} layers`);
    return [...stacks];
  }
  if (!Number.isInteger(stacks) || stacks < 1) throw new Error(`stacks: expected a positive integer, found ${stacks}`);
  if (nLayers % stacks !== 0) {
    throw new Error(`stacks: ${nLayers} layers cannot be split into ${stacks} equal stacks (pass a list of block counts instead)`);
  }
  return Array.from({ length: stacks }, () => nLayers / stacks);
}
