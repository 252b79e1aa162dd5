/**
 * What `stackwise inspect` shows, as data: the module tree of a model — a Hugging Face folder
 * (config.json + model.safetensors, optionally a PEFT adapter) as our import builds it, or a
 * StackWise run / checkpoint folder as its model manifest describes it — with parameter counts,
 * bytes, dtypes and trainable/frozen state, and the weight files' header facts.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { inspectHF, readHFModelConfig, readJson, type LoadHFOptions } from '../../io/hf/index.js';
import { decodeHeader, readHeaderLength } from '../../io/safetensors-header.js';
import { inspectModel, numBlocks, stackSizes, type ModuleInfo } from '../../nn/index.js';
import type { StorageFormat } from '../../engine/index.js';
import { loadModel, readFolderManifest, type ModelManifest } from '../model-manifest/index.js';
import { UsageError } from './errors.js';
import { isRunOrCheckpoint, storeFloatStacks } from './load-run.js';

/** One weight file's header facts (read without loading the tensors). */
export interface WeightFileInfo {
  file: string;
  tensors: number;
  bytes: number;
  /** Element count per safetensors dtype. */
  dtypes: Record<string, number>;
}

export interface InspectReport {
  folder: string;
  modelType: string;
  family: string;
  architectures: string[];
  layers: number;
  /** Blocks per stack. */
  stacks: number[];
  adapter: null | { type: string; r: number | null; alpha: number | null; targetModules: unknown; modules: string[]; linears: string[] };
  weights: WeightFileInfo[];
  totals: { parameters: number; trainable: number; frozen: number; bytes: number; dtypes: Record<string, number> };
  /** Tensors of the checkpoint that were not loaded (buffers, tied aliases). */
  skipped: string[];
  notes: string[];
  tree: ModuleInfo;
  /** The model manifest: a StackWise checkpoint's, or an exported folder's model.json. */
  manifest?: ModelManifest;
}

export interface InspectOptions {
  stacks?: number | number[];
  /** Apply a PEFT adapter found in the folder (default true). */
  adapter?: boolean;
  backend?: string;
  /** Storage of the rack's linear weights (see LoadRunOptions.loadFormat). */
  loadFormat?: StorageFormat;
}

/** Header facts of a safetensors file: tensor count, data bytes and elements per dtype. */
export function weightFileInfo(path: string): WeightFileInfo {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(Math.min(8, size));
    readSync(fd, prefix, 0, prefix.length, 0);
    const headerLength = readHeaderLength(prefix, size, path);
    const header = new Uint8Array(headerLength);
    let done = 0;
    while (done < headerLength) {
      const n = readSync(fd, header, done, headerLength - done, 8 + done);
      if (n === 0) break;
      done += n;
    }
    const layout = decodeHeader(header, size - 8 - headerLength, path);
    const dtypes: Record<string, number> = {};
    let bytes = 0;
    for (const e of layout.entries) {
      const numel = e.shape.reduce((a, b) => a * b, 1);
      dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + numel;
      bytes += e.end - e.begin;
    }
    return { file: basename(path), tensors: layout.entries.length, bytes, dtypes };
  } finally {
    closeSync(fd);
  }
}

/** The weight files of an HF folder (single file or shards, plus a PEFT adapter). */
function weightFiles(folder: string, withAdapter: boolean): string[] {
  const files: string[] = [];
  if (existsSync(join(folder, 'model.safetensors'))) files.push(join(folder, 'model.safetensors'));
  else if (existsSync(join(folder, 'model.safetensors.index.json'))) {
    const idx = readJson(join(folder, 'model.safetensors.index.json'));
    const map = idx.weight_map;
    if (map && typeof map === 'object') {
      for (const shard of [...new Set(Object.values(map as Record<string, unknown>))].sort()) {
        if (typeof shard === 'string' && !shard.includes('/') && !shard.includes('\\')) files.push(join(folder, shard));
      }
    }
  }
  if (withAdapter && existsSync(join(folder, 'adapter_model.safetensors'))) files.push(join(folder, 'adapter_model.safetensors'));
  return files;
}

/**
 * Errors of the HF config parser name the field as "config.json: 'key' …"; give the full path
 * of the file instead so the message can be acted upon.
 */
export function withConfigPath(folder: string, error: unknown): unknown {
  if (error instanceof Error && error.name === 'HFConfigError' && error.message.startsWith('config.json')) {
    const e = new Error(`${join(folder, 'config.json')}${error.message.slice('config.json'.length)}`);
    e.name = error.name;
    return e;
  }
  return error;
}

/**
 * Checks that `stacks` fits the folder's layer count; a misfit is a usage error (exit 2).
 * Returns the layer count.
 */
export function checkStacksOption(folder: string, stacks: number | number[] | undefined): number {
  let layers: number;
  try {
    layers = numBlocks(readHFModelConfig(folder));
  } catch (e) {
    throw withConfigPath(folder, e);
  }
  if (stacks !== undefined) {
    try {
      stackSizes(layers, stacks);
    } catch (e) {
      throw new UsageError(`--stacks ${Array.isArray(stacks) ? stacks.join(',') : stacks}: ${(e as Error).message.replace(/^stacks: /, '')}`);
    }
  }
  return layers;
}

function requireFolder(path: string, what: string): void {
  if (!existsSync(path)) throw new Error(`${path}: no such ${what}`);
  if (!statSync(path).isDirectory()) throw new Error(`${path}: not a folder (expected a ${what})`);
}

/** The report of a StackWise run or checkpoint folder: its model as the manifest describes it. */
export function inspectCheckpoint(folder: string, opts: InspectOptions = {}): InspectReport {
  if (opts.stacks !== undefined) throw new UsageError('--stacks: a StackWise checkpoint has its own stacks (its model manifest); leave --stacks out');
  const loaded = loadModel(folder, opts.backend !== undefined ? { backend: opts.backend } : {});
  try {
    if (opts.loadFormat) storeFloatStacks(loaded.model, opts.loadFormat);
    const m = loaded.manifest;
    const info = inspectModel(loaded.model);
    const adapters = [...m.rack.stacks.flatMap((s, i) => s.adapters.map((a) => ({ ...a, path: `rack.stacks.${i}.${a.path}` }))), ...m.adapters];
    const dtypes: Record<string, number> = {};
    for (const [k, v] of Object.entries(info.dtypes)) if (v !== undefined) dtypes[k] = v;
    const notes = m.rack.stacks.map((s, i) => `stack ${i}: id ${s.id}, ${s.blocks.length} block${s.blocks.length === 1 ? '' : 's'}, ${s.storage.format}${s.storage.format !== 'fp32' && s.storage.double_quant ? ' (double quantization)' : ''}` +
      `${s.adapters.length ? `, ${s.adapters.length} LoRA adapter${s.adapters.length === 1 ? '' : 's'}` : ''}${s.ramp ? `, ramp gate ${s.ramp.gate} over [${s.ramp.t0}, ${s.ramp.t1}]` : ''}`);
    if (m.architecture.time_embedding) notes.push(`time embedding: ${m.architecture.time_embedding.features} features, hidden ${m.architecture.time_embedding.hidden}`);
    return {
      folder: resolve(loaded.checkpoint),
      modelType: 'stackwise',
      family: m.architecture.family,
      architectures: [],
      layers: m.rack.stacks.reduce((n, s) => n + s.blocks.length, 0),
      stacks: m.rack.stacks.map((s) => s.blocks.length),
      adapter: adapters.length === 0 ? null : {
        type: 'LORA', r: adapters[0]!.rank, alpha: adapters[0]!.alpha, targetModules: [...new Set(adapters.map((a) => a.target))],
        modules: adapters.map((a) => a.path), linears: adapters.map((a) => a.path),
      },
      weights: [weightFileInfo(join(loaded.checkpoint, 'model.safetensors'))],
      totals: { parameters: info.numParameters, trainable: info.trainableParameters, frozen: info.numParameters - info.trainableParameters, bytes: info.bytes, dtypes },
      skipped: [],
      notes,
      tree: info,
      manifest: m,
    };
  } finally {
    loaded.model.dispose();
  }
}

/** Everything `inspect` prints, as data: a Hugging Face folder, or a StackWise run / checkpoint folder. */
export function inspectFolder(folder: string, opts: InspectOptions = {}): InspectReport {
  requireFolder(folder, 'model folder');
  if (!existsSync(join(folder, 'config.json')) && isRunOrCheckpoint(folder)) return inspectCheckpoint(folder, opts);
  if (!existsSync(join(folder, 'config.json'))) throw new Error(`${join(folder, 'config.json')}: not found (a Hugging Face model folder holds config.json and model.safetensors)`);
  const layers = checkStacksOption(folder, opts.stacks);
  let manifest: ModelManifest | undefined;
  try {
    manifest = readFolderManifest(folder, readHFModelConfig(folder));
  } catch (e) {
    throw withConfigPath(folder, e);
  }
  const loadOpts: LoadHFOptions = { adapter: opts.adapter ?? true, allowNonFinite: true }; // NaN/Inf tensors are shown as notes
  // An exported run's folder is grouped into its own stacks unless --stacks says otherwise.
  const stacks = opts.stacks ?? manifest?.rack.stacks.map((s) => s.blocks.length);
  if (stacks !== undefined) loadOpts.stacks = stacks;
  if (opts.backend !== undefined) loadOpts.backend = opts.backend;
  if (opts.loadFormat !== undefined) loadOpts.loadFormat = opts.loadFormat;
  let result;
  try {
    result = inspectHF(folder, loadOpts);
  } catch (e) {
    throw withConfigPath(folder, e);
  }
  const { info, loaded } = result;
  try {
    const cfg = loaded.hfConfig;
    const rack = loaded.model.rack;
    const stacks = rack.stacks.toArray().map((s) => s.length);
    let adapter: InspectReport['adapter'] = null;
    if (loaded.adapter) {
      const c = loaded.adapter.config;
      adapter = {
        type: typeof c.peft_type === 'string' ? c.peft_type : 'LORA',
        r: typeof c.r === 'number' ? c.r : null,
        alpha: typeof c.lora_alpha === 'number' ? c.lora_alpha : null,
        targetModules: c.target_modules ?? null,
        modules: loaded.adapter.modules,
        linears: loaded.adapter.linears,
      };
    }
    const dtypes: Record<string, number> = {};
    for (const [k, v] of Object.entries(info.dtypes)) if (v !== undefined) dtypes[k] = v;
    return {
      folder: resolve(folder),
      modelType: String(cfg.model_type ?? ''),
      family: loaded.family,
      architectures: Array.isArray(cfg.architectures) ? cfg.architectures.map(String) : [],
      layers,
      stacks,
      adapter,
      weights: weightFiles(folder, loaded.adapter !== undefined).map(weightFileInfo),
      totals: {
        parameters: info.numParameters,
        trainable: info.trainableParameters,
        frozen: info.numParameters - info.trainableParameters,
        bytes: info.bytes,
        dtypes,
      },
      skipped: loaded.skipped,
      notes: manifest ? [...loaded.notes, `model.json: an exported StackWise model, stacks ${manifest.rack.stacks.map((s) => `id ${s.id} (${s.blocks.length} block${s.blocks.length === 1 ? '' : 's'})`).join(', ')}`] : loaded.notes,
      tree: info,
      ...(manifest ? { manifest } : {}),
    };
  } finally {
    loaded.model.dispose();
  }
}

