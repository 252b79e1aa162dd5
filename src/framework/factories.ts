// Factories: each plane from its config, or already-built objects passed through (wrapped in
// their adapter when needed). Everything a config can say can also be built in code.

import { DataAdapter, type BatchSource, type DataPlaneSettings } from './data-adapter.js';
import { ModelAdapter } from './model-adapter.js';
import { OptimizerAdapter, createOptimizer, optimizerSpecOf } from './optimizer-adapter.js';
import { loadTokenData, type TokenData } from './data-source.js';
import type { AttentionKindConfig, DataPlaneConfig, ModelPlaneConfig, OptimizerPlaneConfig } from './config/schema.js';
import { MODEL_SIZE_FIELDS, Model, bertConfig, gpt2Config, llamaConfig, type AttentionMode, type ModelConfig, type ModelSizeField, type ModelSizeOptions } from '../nn/index.js';
import { Optimizer } from '../optim/index.js';
import type { ObjectiveFactory, ObjectiveName } from './objective.js';
import { checkCompatibility, IncompatibleSpecsError, type CompatibilityProblem } from './specs/index.js';
import { validateOptimizerSpec, type OptimizerSpec } from './specs/optimizer.js';
import type { Objective as ObjectiveKind } from './specs/objective.js';

// ---- data -----------------------------------------------------------------------------------------

export interface BuildDataOptions {
  /** Run seed (batches and corruption derive from it). Default 0. */
  seed?: number;
  /** Run folder for the tokenizer and token caches. */
  runDir?: string;
  objectives?: Partial<Record<ObjectiveName, ObjectiveFactory>>;
  /** The data plane to use with TokenData (a config carries its own). */
  plane?: DataPlaneSettings;
}

export function isTokenData(v: unknown): v is TokenData {
  return typeof v === 'object' && v !== null && typeof (v as TokenData).vocabSize === 'number' && typeof (v as TokenData).train?.window === 'function';
}

export function isBatchSource(v: unknown): v is BatchSource {
  return typeof v === 'object' && v !== null && typeof (v as BatchSource).trainBatch === 'function' && typeof (v as BatchSource).getBatchSpec === 'function';
}

/** Token streams of a data config (corpus → split → tokenizer → streams). */
export function loadDataPlane(config: DataPlaneConfig, runDir?: string): TokenData {
  return loadTokenData(config.corpus, config.tokenizer, { ...(runDir ? { runDir } : {}), split: config.split });
}

/**
 * A batch source from a data config (loads and tokenizes the corpus), from token streams plus a
 * data plane, or a ready BatchSource (returned as is).
 */
export function buildDataLoader(source: DataPlaneConfig | TokenData | BatchSource, options: BuildDataOptions = {}): BatchSource {
  if (isBatchSource(source)) return source;
  const seed = options.seed ?? 0;
  const adapterOptions = { seed, ...(options.objectives ? { objectives: options.objectives } : {}) };
  if (isTokenData(source)) {
    if (!options.plane) throw new Error('buildDataLoader: token data needs a data plane (seq_len, batch_size, objective) in options.plane');
    return new DataAdapter(source, options.plane, adapterOptions);
  }
  return new DataAdapter(loadDataPlane(source, options.runDir), source, adapterOptions);
}

// ---- model ----------------------------------------------------------------------------------------

export interface BuildModelOptions {
  /** Vocabulary size when the config leaves it to the data (required then). */
  vocabSize?: number;
  /** Longest sequence of any phase (default position-table size for learned positions). */
  maxSeqLen?: number;
  /** Objective of the first phase, for attention 'auto'. */
  objective?: ObjectiveKind;
  /** Default init seed when the config has no init_seed. */
  seed?: number;
  backend?: string;
}

/** The nn ModelConfig a model plane describes. */
export function modelConfigFromPlane(plane: ModelPlaneConfig, options: BuildModelOptions = {}): ModelConfig {
  const vocabSize = plane.vocab_size ?? options.vocabSize;
  if (vocabSize === undefined) throw new Error('model.vocab_size: expected a vocabulary size (or data that provides one), found nothing');
  if (plane.vocab_size !== undefined && options.vocabSize !== undefined && plane.vocab_size !== options.vocabSize) {
    throw new Error(`model.vocab_size: expected ${options.vocabSize} (the data's vocabulary), found ${plane.vocab_size}`);
  }
  // The size fields a preset takes, by their option names (nn/size-fields.ts); a field the
  // preset has not (e.g. n_kv_heads for gpt2) is refused.
  const sizes: ModelSizeOptions = {};
  for (const f of MODEL_SIZE_FIELDS as readonly ModelSizeField[]) {
    const value = (plane as Record<string, unknown>)[f.name];
    if (value === undefined || f.option === undefined || f.name === 'vocab_size' || f.name === 'max_positions') continue;
    if (f.presets && !f.presets.includes(plane.preset)) throw new Error(`model.${f.name}: the '${plane.preset}' preset has no ${f.lacking}; remove the field`);
    (sizes as Record<string, unknown>)[f.option] = value;
  }
  const positions = plane.max_positions ?? options.maxSeqLen;
  const common = {
    ...sizes,
    vocabSize,
    dModel: plane.d_model,
    nHeads: plane.n_heads,
    nLayers: plane.n_stacks * plane.blocks_per_stack,
    stacks: plane.n_stacks,
    ...(positions !== undefined ? { maxPositions: positions } : {}),
  };
  let config: ModelConfig;
  switch (plane.preset) {
    case 'llama':
      config = llamaConfig(common);
      if (plane.dropout > 0) for (const s of config.stacks) s.block.dropout = plane.dropout;
      break;
    case 'gpt2':
    case 'bert': {
      const opts = { ...common, ...(plane.dropout > 0 ? { dropout: plane.dropout } : {}) };
      config = plane.preset === 'gpt2' ? gpt2Config(opts) : bertConfig({ ...opts, head: 'mlm' });
      break;
    }
  }
  const time = plane.time_embedding;
  if (time) config.timeEmbedding = { features: time.features, hidden: time.hidden ?? plane.d_model };
  if (plane.attention_kind) applyAttentionKind(config, plane, plane.attention_kind, plane.init_seed ?? options.seed ?? 0);
  return config;
}

/**
 * Sets model.attention_kind on every block, checking it fits the rest of the model; errors name
 * the field, what was expected and what was found.
 */
function applyAttentionKind(config: ModelConfig, plane: ModelPlaneConfig, kind: AttentionKindConfig, seed: number): void {
  const where = 'model.attention_kind';
  for (const { block } of config.stacks) {
    const headDim = block.headDim ?? plane.d_model / plane.n_heads;
    const rope = block.positional === 'rope';
    switch (kind.kind) {
      case 'standard':
        break;
      case 'mla': {
        if (plane.n_kv_heads !== undefined) {
          throw new Error(`model.n_kv_heads: multi-head latent attention (${where} 'mla') has no separate key/value heads (keys and values come per head from the latent), found n_kv_heads ${plane.n_kv_heads}; remove the field`);
        }
        const kvRank = kind.kv_rank ?? Math.max(1, Math.floor(plane.d_model / 2));
        const ropeDim = kind.rope_dim ?? (rope ? 2 * Math.floor(headDim / 4) : 0);
        if (!rope && ropeDim > 0) throw new Error(`${where}.rope_dim: expected 0 (the '${plane.preset}' preset has no RoPE), found ${ropeDim}`);
        if (rope && (ropeDim % 2 !== 0 || ropeDim >= headDim)) throw new Error(`${where}.rope_dim: expected an even number below head_dim ${headDim}, found ${ropeDim}`);
        block.attentionKind = 'mla';
        block.mla = { kvRank, qRank: kind.q_rank, ropeDim, latentNorm: kind.latent_norm };
        block.nKvHeads = block.nHeads;
        break;
      }
      case 'linear': {
        if (kind.feature_map !== 'favor' && kind.n_features !== undefined) {
          throw new Error(`${where}.n_features: expected no feature count for feature_map '${kind.feature_map}' (its features are head_dim ${headDim}), found ${kind.n_features}`);
        }
        if (kind.feature_map !== 'favor' && kind.seed !== undefined) {
          throw new Error(`${where}.seed: expected no seed for feature_map '${kind.feature_map}' (only favor draws random features), found ${kind.seed}`);
        }
        block.attentionKind = 'linear';
        block.linear = {
          featureMap: kind.feature_map,
          chunkSize: kind.chunk_size,
          ...(kind.feature_map === 'favor' ? { features: kind.n_features ?? 2 * headDim, seed: kind.seed ?? seed } : {}),
        };
        break;
      }
    }
  }
}

/** 'causal' for clm, 'bidirectional' for the masking objectives (what attention 'auto' means). */
export function attentionFor(objective: ObjectiveKind): AttentionMode {
  return objective === 'clm' ? 'causal' : 'bidirectional';
}

/** A model adapter from a model config, a built nn.Model, or an adapter (returned as is). */
export function buildModel(source: ModelPlaneConfig | Model | ModelAdapter, options: BuildModelOptions = {}): ModelAdapter {
  if (source instanceof ModelAdapter) return source;
  if (source instanceof Model) return new ModelAdapter(source);
  const config = modelConfigFromPlane(source, options);
  const model = Model.fromConfig(config, { seed: source.init_seed ?? options.seed ?? 0, ...(options.backend ? { backend: options.backend } : {}) });
  const attention = source.attention === 'auto' ? (options.objective ? attentionFor(options.objective) : undefined) : source.attention;
  if (attention) model.setAttentionMode(attention);
  return new ModelAdapter(model);
}

// ---- optimizer ------------------------------------------------------------------------------------

function isOptimizerPlane(v: unknown): v is OptimizerPlaneConfig {
  return typeof v === 'object' && v !== null && 'reset_state' in v;
}

/**
 * An optimizer adapter over the model's trainable parameters, from an optimizer config or spec,
 * a built Optimizer (its groups are re-made by role; its lr becomes a constant schedule), or an
 * adapter (returned as is, synced to the model).
 */
export function buildOptimizer(source: OptimizerPlaneConfig | OptimizerSpec | Optimizer | OptimizerAdapter, model: ModelAdapter): OptimizerAdapter {
  let adapter: OptimizerAdapter;
  if (source instanceof OptimizerAdapter) adapter = source;
  else if (source instanceof Optimizer) {
    const spec = validateOptimizerSpec({
      type: source.kind === 'sgd' ? 'sgd' : 'adamw',
      lr_schedule: { kind: 'constant', lr: Math.max(source.defaults.lr, Number.MIN_VALUE) },
      weight_decay: source.defaults.weightDecay,
    });
    adapter = new OptimizerAdapter(source, spec);
  } else {
    const spec = isOptimizerPlane(source) ? optimizerSpecOf(source) : validateOptimizerSpec(source);
    adapter = new OptimizerAdapter(createOptimizer(spec), spec);
  }
  adapter.sync(model);
  return adapter;
}

// ---- cross-plane checks -----------------------------------------------------------------------------

/** Every incompatibility between the data, model (and optimizer) planes; [] when they fit. */
export function validateTrainingState(data: BatchSource, model: ModelAdapter, optimizer?: OptimizerAdapter): CompatibilityProblem[] {
  return checkCompatibility({
    batch: data.getBatchSpec(),
    embedding: model.getEmbeddingSpec(),
    rack: model.getRackSpec(),
    head: model.getHeadSpec(),
    ...(optimizer ? { optimizer: optimizer.getSpec() } : {}),
    ...(data.getDataSpec ? { data: data.getDataSpec() } : {}),
  });
}

/** validateTrainingState that throws IncompatibleSpecsError naming both sides of each problem. */
export function assertTrainingState(data: BatchSource, model: ModelAdapter, optimizer?: OptimizerAdapter): void {
  const problems = validateTrainingState(data, model, optimizer);
  if (problems.length > 0) throw new IncompatibleSpecsError(problems);
}
