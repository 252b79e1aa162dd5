/**
 * The model manifest: what a checkpoint (or an exported run) says about its model, so that the
 * model can be built from it alone — no config, no corpus, no replay of the training phases.
 *
 *   architecture  family, vocabulary, d_model, dtype, the embedding, the head (and whether it is
 *                 tied to the token embedding), the time embedding (time-as-input) or null;
 *   rack          every stack in rack order: its identity (its index in the final rack, which it
 *                 keeps when stacks are prepended), every block's config (norm, FFN, attention
 *                 kind and mode, sizes), its storage (fp32, or the quantized format with block
 *                 sizes and the layers stored so), its LoRA adapters (target, rank, alpha, dropout,
 *                 merged or not) and its ramp gate (masked ramp-in) if it has one;
 *   adapters      LoRA adapters outside the rack (e.g. on the head), by model path.
 *
 * `describeModel` writes it from a live model; `buildModelFromManifest` builds the structure (the
 * weights come from the checkpoint's model.safetensors, see load-model.ts). The format is
 * versioned: a reader refuses a manifest it does not know.
 */
import * as E from '../../engine/index.js';
import {
  Block,
  EmbeddingBlock,
  Linear,
  LoraLinear,
  Model,
  QuantizedLinear,
  Rack,
  Stack,
  TimeEmbedding,
  TokenHead,
  makeHead,
  quantizeModule,
  withoutRandomInit,
  type BlockConfig,
  type EmbeddingConfig,
  type Family,
  type HeadConfig,
  type Module,
  type TimeEmbeddingConfig,
} from '../../nn/index.js';
import { RampedStack } from '../progressive/ramp.js';

export const MODEL_MANIFEST_FORMAT = 'stackwise-model';
export const MODEL_MANIFEST_VERSION = 1;
/** The manifest's file name in a checkpoint folder (and in an exported folder). */
export const MODEL_MANIFEST_FILE = 'model.json';

/** How a stack's linear weights are stored. */
export type StorageManifest =
  | { format: 'fp32' }
  | {
      format: 'nf4' | 'int8' | 'fp16' | 'bf16';
      double_quant: boolean;
      /** Weights per scale: nf4 blocks of 64 (their scales in blocks of 256 with double quantization), int8 one scale per output row, fp16/bf16 none. */
      block_size: number | 'row' | null;
      dq_block_size: number | null;
      /** The quantized layers, by path inside the stack (e.g. '0.attn.q'). */
      layers: string[];
    };

export interface AdapterManifest {
  /** Path of the adapted linear layer (inside its stack, or in the model for `adapters`). */
  path: string;
  /** The projection's name (q, k, v, o, gate, up, down, …). */
  target: string;
  rank: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  /** Folded into the base weight (the saved weight holds W + scale·B A). */
  merged: boolean;
}

export interface StackManifest {
  /** Identity: the stack's index in the final rack (kept when stacks are prepended). */
  id: number;
  blocks: BlockConfig[];
  storage: StorageManifest;
  adapters: AdapterManifest[];
  /** Masked ramp-in: out = x + gate·(stack(x) − x), gate rising over [t0, t1]; null for a plain stack. */
  ramp: { t0: number; t1: number; gate: number } | null;
}

export interface ModelManifest {
  format: typeof MODEL_MANIFEST_FORMAT;
  version: number;
  architecture: {
    family: Family;
    vocab_size: number;
    d_model: number;
    dtype: 'float32' | 'float64';
    embedding: EmbeddingConfig;
    head: HeadConfig;
    /** The head's decoder is the token embedding matrix. */
    tied: boolean;
    time_embedding: TimeEmbeddingConfig | null;
  };
  rack: { stacks: StackManifest[] };
  /** Adapters outside the rack (embedding, head), by model path. */
  adapters: AdapterManifest[];
}

/** The target name of a token head's decoder adapter (model.progressive.head: lora), at path 'head'. */
const DECODER_TARGET = 'decoder';

function loraOf(path: string, lin: LoraLinear | TokenHead): AdapterManifest {
  const l = lin.lora!;
  return {
    path, target: lin instanceof TokenHead ? DECODER_TARGET : path.slice(path.lastIndexOf('.') + 1), rank: l.rank, alpha: l.alpha, dropout: l.dropout, rslora: l.rslora,
    merged: lin instanceof Linear && lin.isMerged,
  };
}

function adaptersUnder(root: Module): AdapterManifest[] {
  return root.namedModules().flatMap(([path, m]) => ((m instanceof LoraLinear || m instanceof TokenHead) && m.lora ? [loraOf(path, m)] : []));
}

function storageOf(stack: Stack, where: string): StorageManifest {
  const quantized = stack.namedModules().filter((e): e is [string, QuantizedLinear] => e[1] instanceof QuantizedLinear);
  if (quantized.length === 0) return { format: 'fp32' };
  const kinds = new Set(quantized.map(([, q]) => `${q.format}${q.doubleQuant ? '+dq' : ''}`));
  if (kinds.size > 1) throw new Error(`describeModel: ${where} stores its layers in several formats (${[...kinds].join(', ')}); a stack has one storage format`);
  const { format, doubleQuant } = quantized[0]![1];
  return {
    format,
    double_quant: doubleQuant,
    block_size: format === 'nf4' ? E.NF4_BLOCK_SIZE : format === 'int8' ? 'row' : null,
    dq_block_size: format === 'nf4' && doubleQuant ? E.DQ_BLOCK_SIZE : null,
    layers: quantized.map(([path]) => path),
  };
}

/**
 * The manifest of `model` as it is now. `stackIds` gives each rack position's identity (a model
 * plane's stackIds(); default: the positions).
 */
export function describeModel(model: Model, opts: { stackIds?: readonly number[] } = {}): ModelManifest {
  const stacks = model.rack.stacks.toArray();
  if (opts.stackIds && opts.stackIds.length !== stacks.length) throw new Error(`describeModel: ${opts.stackIds.length} stack ids for ${stacks.length} stacks`);
  for (const [path, m] of model.namedModules()) {
    if (m instanceof QuantizedLinear && !path.startsWith('rack.')) throw new Error(`describeModel: '${path}' is quantized outside the rack; only stacks have a storage format`);
  }
  const cfg = model.config;
  const outside = adaptersUnder(model).filter((a) => !a.path.startsWith('rack.'));
  return {
    format: MODEL_MANIFEST_FORMAT,
    version: MODEL_MANIFEST_VERSION,
    architecture: {
      family: cfg.family,
      vocab_size: cfg.vocabSize,
      d_model: cfg.dModel,
      dtype: model.dtype === 'float64' ? 'float64' : 'float32',
      embedding: cfg.embedding,
      head: cfg.head,
      tied: 'tied' in cfg.head ? cfg.head.tied : false,
      time_embedding: cfg.timeEmbedding ?? null,
    },
    rack: {
      stacks: stacks.map((s, i) => ({
        id: opts.stackIds?.[i] ?? i,
        blocks: s.blocks.toArray().map((b) => structuredClone(b.config)),
        storage: storageOf(s, `stack ${i}`),
        adapters: adaptersUnder(s),
        ramp: s instanceof RampedStack ? { t0: s.t0, t1: s.t1, gate: s.gate } : null,
      })),
    },
    adapters: outside,
  };
}

/** Thrown for a manifest this build cannot read or build; the message names the field. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Checks the shape of a parsed manifest (format, version, the fields the builder reads). */
export function checkManifest(value: unknown, source: string): ModelManifest {
  const m = value as Partial<ModelManifest> | null;
  if (!m || typeof m !== 'object' || m.format !== MODEL_MANIFEST_FORMAT) throw new ManifestError(`${source}: not a StackWise model manifest (expected format '${MODEL_MANIFEST_FORMAT}')`);
  if (m.version !== MODEL_MANIFEST_VERSION) throw new ManifestError(`${source}: model manifest version ${String(m.version)}; this build reads version ${MODEL_MANIFEST_VERSION}`);
  const a = m.architecture;
  if (!a || typeof a.vocab_size !== 'number' || typeof a.d_model !== 'number' || !a.embedding || !a.head) throw new ManifestError(`${source}: architecture: expected family, vocab_size, d_model, embedding and head`);
  if (!m.rack || !Array.isArray(m.rack.stacks) || m.rack.stacks.length === 0) throw new ManifestError(`${source}: rack.stacks: expected a non-empty list of stacks`);
  m.rack.stacks.forEach((s, i) => {
    if (!Array.isArray(s.blocks) || s.blocks.length === 0) throw new ManifestError(`${source}: rack.stacks[${i}].blocks: expected a non-empty list of block configs`);
    const st = s.storage;
    if (!st || !['fp32', 'nf4', 'int8', 'fp16', 'bf16'].includes(st.format)) throw new ManifestError(`${source}: rack.stacks[${i}].storage.format: expected fp32, nf4, int8, fp16 or bf16, found ${JSON.stringify(st?.format)}`);
    if (st.format === 'nf4' && st.block_size !== E.NF4_BLOCK_SIZE) throw new ManifestError(`${source}: rack.stacks[${i}].storage.block_size: nf4 blocks of ${String(st.block_size)} weights; this build stores nf4 in blocks of ${E.NF4_BLOCK_SIZE}`);
    if (st.format === 'nf4' && st.double_quant && st.dq_block_size !== E.DQ_BLOCK_SIZE) throw new ManifestError(`${source}: rack.stacks[${i}].storage.dq_block_size: ${String(st.dq_block_size)}; this build double-quantizes in blocks of ${E.DQ_BLOCK_SIZE}`);
    if (!Array.isArray(s.adapters)) throw new ManifestError(`${source}: rack.stacks[${i}].adapters: expected a list`);
  });
  if (!Array.isArray(m.adapters)) throw new ManifestError(`${source}: adapters: expected a list`);
  return m as ModelManifest;
}

function attach(root: Module, a: AdapterManifest, where: string): void {
  let lin: Module;
  try {
    lin = root.getModule(a.path);
  } catch {
    throw new ManifestError(`${where}: adapter on '${a.path}', which the model does not have`);
  }
  if (lin instanceof TokenHead && a.target === DECODER_TARGET) {
    if (a.merged) throw new ManifestError(`${where}: the head's decoder adapter cannot be stored merged`);
    lin.addLora({ rank: a.rank, alpha: a.alpha, rslora: a.rslora, seed: 0, freezeBase: false });
    return;
  }
  if (!(lin instanceof LoraLinear)) throw new ManifestError(`${where}: adapter on '${a.path}', which is a ${lin.typeName}, not a linear layer`);
  (lin as Linear | QuantizedLinear).addLora({ rank: a.rank, alpha: a.alpha, dropout: a.dropout, rslora: a.rslora, seed: 0, freezeBase: false });
}

/**
 * The model a manifest describes, with placeholder weights (load the checkpoint's weights into
 * it; merged adapters are marked merged once their weights are in, see `finishLoadedModel`).
 * Parameters come out trainable as a fresh model's; the caller sets what trains.
 */
export function buildModelFromManifest(manifest: ModelManifest, opts: { backend?: string } = {}): Model {
  const a = manifest.architecture;
  const place = { dtype: a.dtype, ...(opts.backend ? { backend: opts.backend } : {}) };
  return withoutRandomInit(() => {
    const embedding = new EmbeddingBlock(a.vocab_size, a.d_model, a.embedding, { ...place, seed: 0 });
    const stacks = manifest.rack.stacks.map((s, i) => {
      const where = `rack.stacks[${i}]`;
      const blocks = s.blocks.map((c) => new Block(a.d_model, c, { ...place, seed: 0 }));
      const stack = s.ramp ? new RampedStack(a.d_model, blocks, s.ramp.t0, s.ramp.t1) : new Stack(a.d_model, blocks);
      if (s.storage.format !== 'fp32') {
        const layers = new Set(s.storage.layers);
        const r = quantizeModule(stack, s.storage.format, { includeTrainable: true, doubleQuant: s.storage.double_quant, filter: (path) => layers.has(path) });
        const missing = s.storage.layers.filter((l) => !r.quantized.includes(l));
        if (missing.length) throw new ManifestError(`${where}.storage.layers: ${missing.join(', ')} are not linear layers of the stack`);
      }
      for (const ad of s.adapters) attach(stack, ad, `${where}.adapters`);
      return stack;
    });
    const rack = new Rack(a.d_model, stacks);
    const head = makeHead(a.head, a.d_model, a.vocab_size, embedding, { ...place, seed: 0 });
    const time = a.time_embedding ? new TimeEmbedding({ dModel: a.d_model, ...a.time_embedding, ...place, seed: 0 }) : null;
    const model = new Model({ family: a.family }, embedding, rack, head, time);
    for (const ad of manifest.adapters) attach(model, ad, 'adapters');
    model.namedParameters();
    return model;
  });
}

/** After the weights are loaded: merged adapters marked merged, ramp gates set as saved. */
export function finishLoadedModel(model: Model, manifest: ModelManifest): void {
  const mergedIn = (root: Module, list: AdapterManifest[]) => {
    for (const ad of list) if (ad.merged) (root.getModule(ad.path) as Linear).markMerged();
  };
  model.rack.stacks.toArray().forEach((s, i) => {
    const m = manifest.rack.stacks[i]!;
    mergedIn(s, m.adapters);
    if (m.ramp && s instanceof RampedStack) s.setGate(m.ramp.gate);
  });
  mergedIn(model, manifest.adapters);
}

/**
 * Where two manifests describe different structures (ramp gates, which move with time, are not
 * compared): one line per difference, empty when they match.
 */
export function manifestDifferences(a: ModelManifest, b: ModelManifest): string[] {
  const strip = (m: ModelManifest) => ({ ...m, rack: { stacks: m.rack.stacks.map((s) => ({ ...s, ramp: s.ramp ? { t0: s.ramp.t0, t1: s.ramp.t1 } : null })) } });
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    if (JSON.stringify(x) === JSON.stringify(y)) return;
    if (x && y && typeof x === 'object' && typeof y === 'object') {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const k of keys) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], Array.isArray(x) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
      return;
    }
    out.push(`${path}: ${JSON.stringify(x) ?? 'nothing'} vs ${JSON.stringify(y) ?? 'nothing'}`);
  };
  walk(strip(a), strip(b), '');
  return out;
}
