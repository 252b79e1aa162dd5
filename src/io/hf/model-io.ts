/**
 * Hugging Face import/export of whole models: a folder with config.json + model.safetensors
 * (or shards + model.safetensors.index.json) ↔ our Model (EmbeddingBlock → Rack of K stacks →
 * Head). Both directions go tensor by tensor (stream-load.ts, shards.ts): loading never holds
 * more than the model plus about one tensor, and can store the rack's projections quantized as
 * they are read (`loadFormat`); exporting makes each HF tensor only when it is written.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../engine/index.js';
import { STORAGE_FORMATS, type Backend, type StorageFormat, type Tensor } from '../../engine/index.js';
import { Linear, LoraLinear, Model, QuantizedLinear, TokenHead, inspectModel, replaceModule, withoutWeights, type ModelConfig, type ModuleInfo } from '../../nn/index.js';
import { openHFWeights, writeHFWeights, type PlannedTensor } from './shards.js';
import { streamHFWeights, type StreamLoadResult } from './stream-load.js';
import { hfConfigFromModel, modelConfigFromHF, type HFExportContext, HFConfigError, type HFConfig, type HFFamily, hfFamilyOf } from './config.js';
import { familyMapping, toHFTensor, type HostTensor } from './mapping.js';
import { HFFormatError, hostOfTensor, readJson, safeOfHost, writeTextAtomic } from './weights.js';
import { loadPeftAdapter, savePeftAdapter, hasPeftAdapter, type PeftAdapterInfo } from './peft.js';

export interface LoadHFOptions {
  /** Group the layers into K equal stacks, or give block counts per stack (default 1 stack). */
  stacks?: number | number[];
  backend?: Backend | string;
  /** Parameter dtype (default float32; float64 only on backends that have it). */
  dtype?: 'float32' | 'float64';
  /**
   * PEFT adapter: true (default) loads adapter_config.json + adapter_model.safetensors when the
   * folder has them; false ignores them; a string loads them from that folder.
   */
  adapter?: boolean | string;
  /** Unknown tensors in the checkpoint are errors (default true); otherwise they are reported in notes. */
  strict?: boolean;
  /**
   * Weights holding NaN or Inf are refused (default); true loads them and names each such tensor
   * in `notes` (for looking at a broken checkpoint, as `inspect` does).
   */
  allowNonFinite?: boolean;
  /**
   * Storage of the rack's linear weights, converted as each tensor is read: fp32 (default), fp16,
   * bf16, nf4 or int8 (the `load_in_4bit` idea). Embeddings, norms, biases and the head stay
   * float32. Quantized layers are frozen.
   */
  loadFormat?: StorageFormat;
  /** NF4 double quantization of the scales (default true, as a quantized trunk). */
  doubleQuant?: boolean;
  /** The largest single read in bytes (default 16 MiB; float32 tensors are read in pieces of it). */
  readChunkBytes?: number;
}

export interface LoadedHF {
  model: Model;
  family: HFFamily;
  hfConfig: HFConfig;
  /** Present when a PEFT adapter was applied (base frozen, adapters trainable). */
  adapter?: PeftAdapterInfo;
  /** HF keys that were skipped (buffers, tied aliases, unknown keys when not strict). */
  skipped: string[];
  /** Training-only settings of the HF config that our model does not reproduce. */
  notes: string[];
  /**
   * How the weights were read: the storage format, the layers quantized, tensors and bytes read,
   * the largest single read (one tensor, never a whole file) and the number of files.
   */
  load?: { format: StorageFormat; quantized: string[]; tensors: number; bytesRead: number; largestRead: number; files: number };
}

/** The HF config a model was imported with (kept so export writes back the same extra fields). */
const SOURCE = new WeakMap<Model, HFConfig>();

export function hfSourceConfig(model: Model): HFConfig | undefined {
  return SOURCE.get(model);
}

/** Loads an HF folder (config.json + weights [+ PEFT adapter]) into a Model, tensor by tensor (see stream-load.ts). */
export function loadHF(folder: string, opts: LoadHFOptions = {}): LoadedHF {
  const hfConfig = readJson(join(folder, 'config.json'));
  const family = hfFamilyOf(hfConfig);
  const config = modelConfigFromHF(hfConfig, { stacks: opts.stacks });
  const loadFormat = opts.loadFormat ?? 'fp32';
  if (!(STORAGE_FORMATS as readonly string[]).includes(loadFormat)) throw new HFFormatError(`load format '${String(loadFormat)}': expected one of ${STORAGE_FORMATS.join(', ')}`);
  const dtype = opts.dtype ?? 'float32';
  // Headers only: the whole layout is checked before any weight memory exists.
  const reader = openHFWeights(folder);
  let model: Model | undefined;
  let loaded: StreamLoadResult;
  try {
    // No weight memory either: each tensor is put in place (or quantized) as it is read.
    model = withoutWeights(() => Model.fromConfig(config, { backend: opts.backend, dtype, seed: 0 }));
    loaded = streamHFWeights(model, familyMapping(config), reader, {
      strict: opts.strict, dtype, loadFormat, doubleQuant: opts.doubleQuant, allowNonFinite: opts.allowNonFinite, readChunkBytes: opts.readChunkBytes,
    });
  } catch (error) {
    model?.dispose();
    throw error;
  } finally {
    reader.close();
  }
  SOURCE.set(model, hfConfig);
  const notes: string[] = loaded.nonFinite.map((b) => `tensor '${b.name}': ${b.count} of ${b.total} values are NaN or Inf (the model would compute NaN)`);
  if (loadFormat !== 'fp32') notes.push(`load format ${loadFormat}: ${loaded.quantized.length} linear layers of the rack stored in ${loadFormat}${loadFormat === 'nf4' && (opts.doubleQuant ?? true) ? ' (double quantization)' : ''}; embeddings, norms, biases and the head stay float32`);
  for (const key of ['attn_pdrop', 'attention_probs_dropout_prob', 'attention_dropout']) {
    const v = hfConfig[key];
    if (typeof v === 'number' && v > 0) notes.push(`config.json '${key}' = ${v}: dropout on attention probabilities is not implemented; training runs without it (inference is unaffected)`);
  }
  const out: LoadedHF = { model, family, hfConfig, skipped: loaded.skipped, notes, load: { format: loadFormat, quantized: loaded.quantized, ...loaded.stats } };
  const adapterDir = typeof opts.adapter === 'string' ? opts.adapter : opts.adapter === false ? null : folder;
  if (adapterDir && (typeof opts.adapter === 'string' || hasPeftAdapter(adapterDir))) {
    try {
      out.adapter = loadPeftAdapter(model, adapterDir);
    } catch (error) {
      model.dispose();
      throw error;
    }
  }
  return out;
}

export interface SaveHFOptions {
  /** Weight dtype in the file (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Base config whose extra fields are kept (default: the config the model was imported with). */
  baseConfig?: HFConfig;
  /**
   * What to do with LoRA adapters: 'separate' (default) writes the base weights and a PEFT
   * adapter (adapter_config.json + adapter_model.safetensors); 'merge' folds them into the
   * exported weights; 'drop' exports the base weights only.
   */
  adapters?: 'separate' | 'merge' | 'drop';
  /** The training objective, named when a refusal depends on it (e.g. bidirectional attention). */
  objective?: HFExportContext['objective'];
  /**
   * Largest weight file in bytes (default 5 GB, as transformers): a bigger model is written as
   * shards model-0000k-of-0000n.safetensors + model.safetensors.index.json.
   */
  maxShardSize?: number;
}

/**
 * Runs `fn` with every QuantizedLinear (NF4 / int8 / fp16 / bf16 storage) of `model` replaced by
 * a float32 Linear holding the dequantized weight and the same LoRA adapter, then puts the
 * quantized layers back. Hugging Face weights are plain float tensors.
 */
export function withDequantizedLayers<T>(model: Model, fn: () => T): T {
  const swapped: [string, QuantizedLinear, Linear][] = [];
  for (const [path, m] of model.namedModules()) if (m instanceof QuantizedLinear) swapped.push([path, m, m.toLinear('float32')]);
  if (swapped.length === 0) return fn();
  try {
    for (const [path, , lin] of swapped) replaceModule(model, path, lin);
    return fn();
  } finally {
    for (const [path, q, lin] of swapped) {
      replaceModule(model, path, q);
      lin.unmerge();
      lin.weight.dispose();
      lin.bias?.dispose();
    }
    model.namedParameters();
  }
}

/** HF-named tensors of a model's parameters (`pick` chooses value or gradient). */
export function hfTensorsOf(model: Model, pick: (t: Tensor, name: string) => Tensor | null = (t) => t, mapping = familyMapping(model.config)): Map<string, HostTensor> {
  const params = new Map(model.namedParameters());
  const out = new Map<string, HostTensor>();
  for (const entry of mapping.entries) {
    const names = entry.kind === 'concat' ? entry.ours : [entry.ours];
    const values = new Map<string, HostTensor>();
    let complete = true;
    for (const n of names) {
      const p = params.get(n);
      if (!p) throw new HFConfigError(`export: the model has no parameter '${n}' (for '${entry.hf}')`);
      const t = pick(p, n);
      if (!t) { complete = false; break; }
      values.set(n, hostOfTensor(t));
    }
    if (!complete) continue;
    out.set(entry.hf, toHFTensor(entry, (n) => values.get(n)!));
  }
  return out;
}

/**
 * Writes config.json + model.safetensors (or shards + model.safetensors.index.json past
 * `maxShardSize`) (+ PEFT adapter files) that transformers can load. Tensor by tensor: each HF
 * tensor is made (a quantized layer dequantized, an adapter merged, GPT-2's q|k|v joined) only
 * when its turn to be written comes, so the export holds the model plus about one tensor. Returns
 * the weight files written.
 */
export function saveHF(model: Model, folder: string, opts: SaveHFOptions = {}): string[] {
  const mode = opts.adapters ?? 'separate';
  const blocks = model.rack.allBlocks();
  blocks.forEach((b, i) => {
    if (JSON.stringify(b.config) !== JSON.stringify(blocks[0].config)) {
      const a = blocks[0].config as unknown as Record<string, unknown>;
      const c = b.config as unknown as Record<string, unknown>;
      const keys = [...new Set([...Object.keys(a), ...Object.keys(c)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(c[k]));
      throw new HFConfigError(`export: block ${i} differs from block 0 in ${keys.map((k) => `${k} (${JSON.stringify(c[k])} vs ${JSON.stringify(a[k])})`).join(', ')}; a Hugging Face config describes identical layers`);
    }
  });
  const hfConfig = hfConfigFromModel(model.config, opts.baseConfig ?? SOURCE.get(model) ?? {}, { objective: opts.objective });
  const mapping = familyMapping(model.config);
  // A token head's decoder adapter (model.progressive.head: lora): merged, its decoder is written as W + (α/r)·B A.
  const head = model.head instanceof TokenHead && model.head.lora ? model.head : null;
  if (head && mode === 'merge' && head.isTied) {
    throw new HFConfigError("export --adapters merge: the head's LoRA adapter is on a decoder tied to the token embedding, so folding it in would change the embedding too; export with --adapters separate (a PEFT adapter on the decoder) or drop");
  }
  const dtype = opts.dtype ?? 'F32';
  const planned: PlannedTensor[] = mapping.entries.map((entry) => {
    const names = entry.kind === 'concat' ? entry.ours : [entry.ours];
    const shapes = names.map((n) => exportShapeOf(model, n));
    const joined = entry.kind === 'concat' ? [shapes.reduce((k, s) => k + s[0]!, 0), ...shapes[0]!.slice(1)] : shapes[0]!;
    const shape = entry.kind === 'transpose' || (entry.kind === 'concat' && entry.transpose) ? [...joined].reverse() : joined;
    return { name: entry.hf, dtype, shape, data: () => safeOfHost(toHFTensor(entry, (n) => exportValueOf(model, n, mode, head)), dtype).data };
  });
  mkdirSync(folder, { recursive: true });
  const dtypeName = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  hfConfig.dtype = dtypeName;
  if ('torch_dtype' in hfConfig) hfConfig.torch_dtype = dtypeName;
  const files = writeHFWeights(folder, planned, { maxShardSize: opts.maxShardSize, metadata: { format: 'pt' } });
  writeTextAtomic(join(folder, 'config.json'), JSON.stringify(hfConfig, null, 2) + '\n');
  const adapted = model.namedModules().some(([, m]) => m instanceof LoraLinear && m.lora !== null);
  if (mode === 'separate' && (adapted || head)) savePeftAdapter(model, folder);
  return files;
}

/** The shape of our parameter `name` as exported (a quantized layer's weight is [out, in]). */
function exportShapeOf(model: Model, name: string): number[] {
  const q = quantizedOwner(model, name);
  if (q) return [q.outFeatures, q.inFeatures];
  return [...model.getParameter(name).shape];
}

function quantizedOwner(model: Model, name: string): QuantizedLinear | null {
  if (!name.endsWith('.weight')) return null;
  try {
    const m = model.getModule(name.slice(0, -'.weight'.length));
    return m instanceof QuantizedLinear ? m : null;
  } catch {
    return null;
  }
}

/**
 * Our parameter `name` as host floats for export: a quantized weight dequantized, an adapted
 * weight merged ('merge') or unmerged (otherwise) — one tensor, made now and dropped after.
 */
function exportValueOf(model: Model, name: string, mode: NonNullable<SaveHFOptions['adapters']>, head: TokenHead | null): HostTensor {
  const q = quantizedOwner(model, name);
  if (q) {
    return E.noGrad(() => E.tidy(() => {
      // The same ops as dequantizing into a Linear and merging there (Linear.merge).
      let w = q.dequantizedWeight('float32');
      if (mode === 'merge' && q.lora) w = E.add(w, E.mulScalar(E.matmul(q.loraB!, q.loraA!), q.lora.scale));
      return hostOfTensor(w);
    }));
  }
  const owner = name.endsWith('.weight') ? (() => { try { return model.getModule(name.slice(0, -'.weight'.length)); } catch { return null; } })() : null;
  if (owner instanceof Linear && owner.lora) {
    // unmerge() restores the exact pre-merge weight; merge() recomputes the same merged weight.
    const wasMerged = owner.isMerged;
    const want = mode === 'merge';
    if (want !== wasMerged) { if (want) owner.merge(); else owner.unmerge(); }
    try {
      return hostOfTensor(owner.weight);
    } finally {
      if (want !== wasMerged) { if (wasMerged) owner.merge(); else owner.unmerge(); }
    }
  }
  const param = model.getParameter(name);
  if (head && mode === 'merge' && param === head.weight) {
    return E.noGrad(() => E.tidy(() => hostOfTensor(head.decoderWeight())));
  }
  return hostOfTensor(param);
}

/** Our config for an HF folder without loading weights. */
export function readHFModelConfig(folder: string, opts: { stacks?: number | number[] } = {}): ModelConfig {
  return modelConfigFromHF(readJson(join(folder, 'config.json')), opts);
}


/** The module tree (counts, bytes, dtypes) of an HF folder as our import builds it. */
export function inspectHF(folder: string, opts: LoadHFOptions = {}): { info: ModuleInfo; loaded: LoadedHF } {
  const loaded = loadHF(folder, opts);
  return { info: inspectModel(loaded.model), loaded };
}
