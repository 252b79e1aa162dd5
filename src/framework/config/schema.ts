// The StackWise config schema (zod): model, data, optimizer, training, schedule.
//
// Every object is strict (unknown keys are errors with a did-you-mean). A plane may be extended
// by other modules with `registerConfigExtension` (e.g. the progressive module adds its model
// keys); extensions are validated with their own schema and come out typed as `unknown` here.
//
// Field names are snake_case: they are what users write in YAML. Numbers are plain YAML 1.2
// numbers (`1e-4` is a number).

import { z } from 'zod';
import { readLrSchedule, type LrScheduleSpec } from '../../optim/lr-schedule.js';
import { PARAM_ROLES } from '../../optim/groups.js';
import { readMaskRatio, type MaskRatioSpec } from '../specs/batch.js';
import { OBJECTIVES } from '../specs/objective.js';
import { ATTENTION_MODES, LINEAR_FEATURE_MAPS, MODEL_PRESETS, type ModelPreset } from '../../nn/index.js';
import { modelSizeShape } from './model-size-schema.js';

const posInt = z.number().int().min(1);
const nonNegInt = z.number().int().min(0);
const posNumber = z.number().positive();
const nonNegNumber = z.number().min(0);
const fraction = z.number().min(0).lt(1);
const beta = z.number().min(0).lt(1);

/** Accepts `name` as a shorthand for `{kind: name}`. */
function kindShorthand<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' ? { kind: v } : v), schema);
}

interface SpecIssueLike {
  path: string;
  expected: string;
  found: string;
  hint?: string;
}

/** Bridges a hand-written spec reader (issues with dotted paths) into a zod field. */
function specField<T>(reader: (value: unknown, path: string, issues: SpecIssueLike[]) => T) {
  return z.unknown().transform((value, ctx): T => {
    const issues: SpecIssueLike[] = [];
    const spec = reader(value, '$', issues);
    for (const i of issues) {
      const rest = i.path === '$' ? [] : i.path.replace(/^\$\.?/, '').split('.').filter((s) => s.length > 0);
      ctx.addIssue({ code: 'custom', message: `expected ${i.expected}`, path: rest, params: { expected: i.expected, found: i.found, hint: i.hint } });
    }
    return issues.length > 0 ? (z.NEVER as T) : spec;
  });
}

// ---- model ----------------------------------------------------------------------------------------

export { MODEL_PRESETS, type ModelPreset };

export const attentionKindSchema = kindShorthand(
  z.discriminatedUnion('kind', [
    /** Softmax attention; n_kv_heads (llama) gives MHA (= n_heads), GQA (fewer) or MQA (1). */
    z.strictObject({ kind: z.literal('standard') }),
    /** Multi-head latent attention (DeepSeek-V2): keys and values up-projected per head from a shared latent; no Hugging Face export. */
    z.strictObject({ kind: z.literal('mla'),
      kv_rank: posInt.optional().describe('Rank of the shared key/value latent (default d_model / 2).'),
      q_rank: nonNegInt.default(0).describe('Rank of the query latent; 0 projects queries directly.'),
      rope_dim: nonNegInt.optional().describe('Per-head dims carrying a decoupled RoPE key shared by all heads: even, below head_dim (default head_dim / 2 rounded down to even; 0 without RoPE).'),
      latent_norm: z.boolean().default(true).describe('RMSNorm on the latents.'),
    }),
    /** Kernelised attention, linear in sequence length; no Hugging Face export. */
    z.strictObject({ kind: z.literal('linear'),
      feature_map: z.enum(LINEAR_FEATURE_MAPS).default('elu1').describe("elu1: φ(x) = elu(x) + 1; favor: Performer's positive orthogonal random features (FAVOR+), an unbiased estimate of softmax attention."),
      n_features: posInt.optional().describe('Random features m (favor only; default 2 · head_dim).'),
      seed: z.number().int().optional().describe("Seed of favor's fixed random projection (favor only; default the model's init seed)."),
      chunk_size: posInt.default(64).describe('Chunk length of the causal pass.'),
    }),
  ]),
);
export type AttentionKindConfig = z.infer<typeof attentionKindSchema>;

export const modelSchema = z.strictObject({
  /** Architecture family the model is built from. */
  preset: z.enum(MODEL_PRESETS),
  // The size fields (vocab_size … norm_eps): one table, nn/size-fields.ts.
  ...modelSizeShape(),
  dropout: fraction.default(0),
  /** 'auto' follows the objective: causal for clm, bidirectional for mlm and diffusion. */
  attention: z.enum(['auto', ...ATTENTION_MODES]).default('auto'),
  /** Attention inside every block: standard (default), mla or linear; a string is short for {kind: …}. */
  attention_kind: attentionKindSchema.optional(),
  /** Seed of the initial weights (default training.seed). */
  init_seed: z.number().int().optional(),
  /**
   * Time-as-input: an embedding of each row's mask ratio r (sinusoidal features of r → MLP, output projection zero-initialised) added to the embedding output before the rack; `true` is short for `{}` (defaults). Needs objective diffusion in every phase (no phase may change it); its parameters (`time.*`) train with the model, freeze with the embedding under the progressive freeze policies and are saved in checkpoints; sampling gives the masked share of the sequence as r. A model with one has no Hugging Face export.
   */
  time_embedding: z
    .preprocess(
      (v) => (v === true ? {} : v),
      z.strictObject({
        /** Sinusoidal features of r (an even integer). */
        features: z.number().int().min(2).refine((n) => n % 2 === 0, { message: 'an even integer' }).default(64),
        /** Hidden width of the MLP (default d_model). */
        hidden: posInt.optional(),
      }),
    )
    .optional(),
  /**
   * Start from a pretrained model instead of random weights. Its architecture fields (preset, vocab_size, d_model, n_heads, n_kv_heads, d_ff, blocks_per_stack, max_positions, tie_embeddings, rope_theta, norm_eps) come from the folder and need not be written; one written with another value is an error naming both. The run starts with the folder's stacks (a phase with more stacks grows them by model.progressive.growth, e.g. block_expansion or depth_upscaling) and uses the folder's tokenizer as data.tokenizer.
   */
  init: z.strictObject({
    /** A Hugging Face folder (config.json + safetensors + tokenizer.json; its layers become stacks of blocks_per_stack blocks; default: the stacks a StackWise export recorded, else one block per stack) or a StackWise run or checkpoint folder (model.json manifest and stackwise-tokenizer.json). `stackwise train --from <folder>` sets it. */
    from: z.string().min(1),
  }).optional(),
});

// ---- data -----------------------------------------------------------------------------------------

export const corpusSchema = kindShorthand(
  z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('sotu') }),
    z.strictObject({ kind: z.literal('moby-dick') }),
    z.strictObject({ kind: z.literal('sentiment') }),
    z.strictObject({
      kind: z.literal('files'),
      paths: z.array(z.string().min(1)).min(1),
      format: z.enum(['text', 'jsonl']).default('text'),
      jsonl_field: z.string().min(1).default('text'),
    }),
    /** Generated token ids (no tokenizer): a fixed random Markov chain, learnable, for tests and smoke runs. */
    z.strictObject({
      kind: z.literal('synthetic'),
      vocab_size: z.number().int().min(3),
      /** Training tokens (validation and test get their split fraction of this on top). */
      tokens: z.number().int().min(16),
      seed: z.number().int().default(0),
      /** Successors each token can have (lower = easier to learn). */
      branching: z.number().int().min(1).default(2),
    }),
  ]),
);

export const tokenizerSchema = kindShorthand(
  z.discriminatedUnion('kind', [
    /** A byte-level BPE trained on the training split (cached as run_dir/stackwise-tokenizer.json — runs before it used tokenizer.json — or at `path`). */
    z.strictObject({ kind: z.literal('bpe'), vocab_size: z.number().int().min(262).max(65536), path: z.string().min(1).optional() }),
    z.strictObject({ kind: z.literal('gpt2') }),
    /** A Hugging Face byte-level BPE tokenizer (e.g. a pretrained model's): `path` is its tokenizer.json or the folder holding it (tokenizer_config.json there names the special tokens); copied into the run folder. */
    z.strictObject({ kind: z.literal('hf'), path: z.string().min(1) }),
    /** Only for corpora that are already token ids (synthetic). */
    z.strictObject({ kind: z.literal('none') }),
  ]),
);

export const dataSchema = z.strictObject({
  corpus: corpusSchema,
  /** Default 'none' for a synthetic corpus; required otherwise. */
  tokenizer: tokenizerSchema.optional(),
  seq_len: posInt,
  batch_size: posInt,
  objective: z.enum(OBJECTIVES).default('clm'),
  /**
   * Mask ratio of mlm/diffusion (their defaults: constant 0.15 / uniform [0.001, 1]): `{kind: constant, ratio}`, `{kind: schedule, shape: linear|cosine|exponential, start, end}` (moves with t), `{kind: uniform, min, max}` (time-as-input) or `{kind: depth, levels: [...], mode: levels|bands}` (time-as-depth: one level per stack of the final rack, leftmost = noisiest; each batch is corrupted at the level of the stack being trained; needs model.progressive).
   */
  mask: specField<MaskRatioSpec>(readMaskRatio).optional(),
  /** Default: the tokenizer's [MASK] (synthetic: vocab_size − 1). */
  mask_token_id: nonNegInt.optional(),
  split: z
    .strictObject({ val: fraction.default(0.05), test: fraction.default(0.05), seed: z.number().int().default(0) })
    .default({ val: 0.05, test: 0.05, seed: 0 }),
  /** Validation batches per evaluation (taken in order from the start of the split). */
  eval_batches: posInt.default(8),
  /**
   * Where training windows start: 'random' (default) any token position; 'aligned' multiples of seq_len — a fixed set of samples revisited epoch after epoch, so that an activation cache (model.progressive.activation_cache) computes a frozen trunk's output once per sample and reuses it.
   */
  windows: z.enum(['random', 'aligned']).default('random'),
});

// ---- optimizer --------------------------------------------------------------------------------------

export const paramGroupSchema = z.strictObject({
  name: z.enum(PARAM_ROLES),
  lr_scale: nonNegNumber.default(1),
  weight_decay: nonNegNumber.optional(),
});

export const optimizerSchema = z.strictObject({
  type: z.enum(['adamw', 'sgd']).default('adamw'),
  /** Peak learning rate; alone it means a constant schedule, with lr_schedule it sets the schedule's peak. */
  lr: posNumber.optional(),
  /** lr as a function of t: constant | linear | cosine | wsd | warmup (see optim/lr-schedule.ts). */
  lr_schedule: specField<unknown>((value, path, issues) => {
    // Checked on its own here (so every problem shows at once); `lr` may come from the plane's lr.
    const v = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    const needsLr = v !== undefined && (v['kind'] === 'warmup' ? typeof v['after'] === 'object' && v['after'] !== null && (v['after'] as Record<string, unknown>)['lr'] === undefined : v['lr'] === undefined);
    if (!needsLr) readLrSchedule(value, path, issues);
    else if (v['kind'] === 'warmup') readLrSchedule({ ...v, after: { ...(v['after'] as object), lr: 1 } }, path, issues);
    else readLrSchedule({ ...v, lr: 1 }, path, issues);
    return value;
  }).optional(),
  /** Which t the schedule reads: the run's ('global') or the phase's own 0→1 ('phase'). */
  lr_time: z.enum(['global', 'phase']).default('global'),
  weight_decay: nonNegNumber.default(0),
  betas: z.tuple([beta, beta]).default([0.9, 0.95]),
  eps: posNumber.default(1e-8),
  momentum: beta.default(0),
  nesterov: z.boolean().default(false),
  /** Global gradient-norm clip (absent: no clipping). */
  clip_norm: posNumber.optional(),
  accumulation_steps: posInt.default(1),
  /** Groups by role; default: norms and biases without weight decay. */
  param_groups: z.array(paramGroupSchema).default([{ name: 'no_decay', lr_scale: 1 }]),
  /** At the start of this phase, forget every moment/momentum (default: carried over). */
  reset_state: z.boolean().default(false),
  /** AdamW moments as 'fp32' (default, 8 bytes per parameter) or 'int8': 8-bit block-wise dynamic quantization as bitsandbytes' Adam8bit (about 2 bytes per parameter). A phase that changes it starts the moments afresh. */
  state_format: z.enum(['fp32', 'int8']).optional(),
});

// ---- training ---------------------------------------------------------------------------------------

export const trainingSchema = z.strictObject({
  total_steps: posInt,
  seed: z.number().int().default(0),
  /** Evaluate on the validation split every N steps (0: only at phase ends and at the end). */
  eval_every: nonNegInt.default(0),
  eval_at_phase_end: z.boolean().default(true),
  // No schema default: the resolved config of a run written before this key existed stays
  // unchanged (a checkpoint compares it), so older runs still load.
  /** Masked diffusion: Monte Carlo draws per validation window of the NELBO perplexity bound at each evaluation (0: none; else ≥ 2; unset: 4). */
  eval_elbo_samples: nonNegInt.refine((n) => n !== 1, '0 (no bound) or an integer ≥ 2 (draws per window; two at least for a standard error)').optional(),
  /** Checkpoint every N steps (0: only at the end, and at phase ends if asked). */
  checkpoint_every: nonNegInt.default(0),
  checkpoint_at_phase_end: z.boolean().default(false),
  keep_last: posInt.default(3),
  /** Run folder (checkpoints, metrics, resolved configs); without it nothing is written. */
  run_dir: z.string().min(1).optional(),
  tensorboard: z.boolean().default(true),
  /** 'auto': a progress bar when stderr is a terminal. */
  progress: z.enum(['auto', 'on', 'off']).default('auto'),
  backend: z.enum(['native', 'reference']).optional(),
  /** Before anything is allocated, refuse a run whose predicted peak memory (`stackwise plan`) exceeds the machine's; false (or `train --no-memory-check`) trains anyway. Default true. */
  memory_check: z.boolean().optional(),
  /** Activation recomputation (gradient checkpointing): the forward keeps only each block's input and backward runs the block's forward again (one more forward of the trained blocks, far fewer saved activations; the same gradients bit for bit). Default false. */
  recompute: z.boolean().optional(),
});

// ---- schedule --------------------------------------------------------------------------------------

export const overridesSchema = z.strictObject({
  data: z.record(z.string(), z.unknown()).optional(),
  model: z.record(z.string(), z.unknown()).optional(),
  optimizer: z.record(z.string(), z.unknown()).optional(),
});

export const phaseSchema = z.strictObject({
  name: z.string().min(1).optional(),
  start_t: z.number().min(0).max(1).optional(),
  end_t: z.number().min(0).max(1).optional(),
  start_step: nonNegInt.optional(),
  end_step: nonNegInt.optional(),
  task: z.enum(OBJECTIVES).optional(),
  overrides: overridesSchema.optional(),
});

// ---- extensions --------------------------------------------------------------------------------------

export const EXTENSIBLE_PLANES = ['model', 'data', 'optimizer', 'training'] as const;
export type ExtensiblePlane = (typeof EXTENSIBLE_PLANES)[number];

const extensions: Record<ExtensiblePlane, Map<string, z.ZodType>> = {
  model: new Map(),
  data: new Map(),
  optimizer: new Map(),
  training: new Map(),
};
let cache: Record<string, z.ZodType> | null = null;

/**
 * Adds a key to a plane of the config (e.g. `registerConfigExtension('model', 'growth', schema)`).
 * The value is optional in configs and validated by `schema`; phases may override it like any
 * other key. Registering the same key again replaces its schema.
 */
export function registerConfigExtension(plane: ExtensiblePlane, key: string, schema: z.ZodType): void {
  const base = { model: modelSchema, data: dataSchema, optimizer: optimizerSchema, training: trainingSchema }[plane];
  if (key in base.shape) throw new Error(`registerConfigExtension: '${plane}.${key}' is a built-in field`);
  extensions[plane].set(key, schema);
  cache = null;
}

export function configExtensions(plane: ExtensiblePlane): ReadonlyMap<string, z.ZodType> {
  return extensions[plane];
}

function withExtensions<S extends z.ZodObject>(plane: ExtensiblePlane, schema: S): S {
  const ext = extensions[plane];
  if (ext.size === 0) return schema;
  return schema.extend(Object.fromEntries([...ext].map(([k, s]) => [k, s.optional()]))) as unknown as S;
}

/** The schemas in effect (base + registered extensions). */
export function planeSchemas(): { model: typeof modelSchema; data: typeof dataSchema; optimizer: typeof optimizerSchema; training: typeof trainingSchema; root: z.ZodType } {
  if (!cache) {
    const model = withExtensions('model', modelSchema);
    const data = withExtensions('data', dataSchema);
    const optimizer = withExtensions('optimizer', optimizerSchema);
    const training = withExtensions('training', trainingSchema);
    const root = z.strictObject({
      model: model.optional(),
      data: data.optional(),
      optimizer: optimizer.default(optimizerSchema.parse({ lr: 1e-3 }) as never),
      training,
      schedule: z.array(phaseSchema).min(1).optional(),
    });
    cache = { model, data, optimizer, training, root };
  }
  return cache as never;
}

// ---- types -------------------------------------------------------------------------------------------

export type ModelPlaneConfig = z.output<typeof modelSchema> & Record<string, unknown>;
export type DataPlaneConfig = z.output<typeof dataSchema> & Record<string, unknown>;
export type OptimizerPlaneInput = z.output<typeof optimizerSchema>;
export type TrainingPlaneConfig = z.output<typeof trainingSchema> & Record<string, unknown>;
export type CorpusConfig = z.output<typeof corpusSchema>;
export type TokenizerConfig = z.output<typeof tokenizerSchema>;
export type PhaseConfig = z.output<typeof phaseSchema>;

/** The optimizer plane with its lr resolved into one schedule. */
export type OptimizerPlaneConfig = Omit<OptimizerPlaneInput, 'lr' | 'lr_schedule'> & { lr_schedule: LrScheduleSpec } & Record<string, unknown>;

/** A validated config (defaults filled in). */
export interface StackWiseConfig {
  model?: ModelPlaneConfig;
  data?: DataPlaneConfig;
  optimizer: OptimizerPlaneConfig;
  training: TrainingPlaneConfig;
  schedule?: PhaseConfig[];
}

/** Resolves `lr` / `lr_schedule` into one schedule spec, appending problems to `issues`. */
export function resolveLrSchedule(
  plane: { lr?: number; lr_schedule?: unknown },
  issues: SpecIssueLike[],
): LrScheduleSpec {
  if (plane.lr_schedule === undefined) {
    if (plane.lr === undefined) {
      issues.push({ path: 'lr', expected: 'a learning rate (lr) or a schedule (lr_schedule)', found: 'neither' });
      return { kind: 'constant', lr: NaN };
    }
    return { kind: 'constant', lr: plane.lr };
  }
  let raw = plane.lr_schedule;
  if (plane.lr !== undefined && raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const r = raw as Record<string, unknown>;
    if (r['kind'] === 'warmup' && r['after'] && typeof r['after'] === 'object') raw = { ...r, after: { ...(r['after'] as object), lr: plane.lr } };
    else raw = { ...r, lr: plane.lr };
  }
  return readLrSchedule(raw, 'lr_schedule', issues);
}
