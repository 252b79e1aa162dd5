// The architecture vocabulary: every kind a block, an embedding or a head is built with. The names
// are the config's (snake_case); the model config (config.ts), the specs and config schema of
// framework/, the Hugging Face mapping and the CLI all import them from here.

/** The architecture families with a preset (nn/presets.ts) and a Hugging Face mapping (config `model.preset`). */
export const MODEL_PRESETS = ['llama', 'gpt2', 'bert'] as const;
export type ModelPreset = (typeof MODEL_PRESETS)[number];
/** A model config's family: a preset's, or 'custom' for one built by hand. */
export type Family = ModelPreset | 'custom';

/** causal: a token sees itself and earlier tokens; bidirectional: every (unpadded) token. */
export const ATTENTION_MODES = ['causal', 'bidirectional'] as const;
export type AttentionMode = (typeof ATTENTION_MODES)[number];

/**
 * standard: softmax attention with n_kv_heads key/value heads (MHA when = n_heads, GQA fewer, MQA 1);
 * mla: multi-head latent attention (DeepSeek-V2: K and V up-projected from a shared latent);
 * linear: kernelised attention, linear in sequence length, with a feature map (LINEAR_FEATURE_MAPS).
 */
export const ATTENTION_KINDS = ['standard', 'mla', 'linear'] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

/**
 * Feature maps φ of linear attention: elu1 = elu(x) + 1 (Katharopoulos et al. 2020); favor =
 * positive random features exp(ωᵀx − |x|²/2)/√m with orthogonal Gaussian ω (Performer's FAVOR+,
 * Choromanski et al. 2021), an unbiased estimate of the softmax kernel.
 */
export const LINEAR_FEATURE_MAPS = ['elu1', 'favor'] as const;
export type LinearFeatureMap = (typeof LINEAR_FEATURE_MAPS)[number];

export const FFN_KINDS = ['swiglu', 'gelu'] as const;
export type FfnKind = (typeof FFN_KINDS)[number];

export const NORM_KINDS = ['layernorm', 'rmsnorm'] as const;
export type NormKind = (typeof NORM_KINDS)[number];

export const NORM_POSITIONS = ['pre', 'post'] as const;
export type NormPosition = (typeof NORM_POSITIONS)[number];

export const ACTIVATIONS = ['gelu', 'gelu_tanh', 'relu', 'silu', 'tanh'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** rope: q and k are rotated inside attention; none: positions come from the embedding (or nowhere). */
export const STACK_POSITIONALS = ['rope', 'none'] as const;
export type StackPositional = (typeof STACK_POSITIONALS)[number];

/**
 * Where positions come from:
 * - learned: a position table of `max_positions` rows added to the tokens (GPT-2, BERT);
 * - rope: no position vector in the embedding, the rack rotates q and k (LLaMA);
 * - none: no positional information at all.
 */
export const EMBEDDING_POSITIONALS = ['learned', 'rope', 'none'] as const;
export type EmbeddingPositional = (typeof EMBEDDING_POSITIONALS)[number];

export const HEAD_KINDS = ['lm', 'mlm', 'classification'] as const;
export type HeadKind = (typeof HEAD_KINDS)[number];
export const POOLINGS = ['cls', 'mean'] as const;
export type Pooling = (typeof POOLINGS)[number];
