/**
 * Hugging Face import/export of whole models: a folder with config.json + model.safetensors
 * (or sharded) ↔ our Model (EmbeddingBlock → Rack of K stacks → Head).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend, Tensor } from '../../engine/index.js';
import { Linear, Model, QuantizedLinear, TokenHead, inspectModel, replaceModule, withoutRandomInit, type ModelConfig, type ModuleInfo } from '../../nn/index.js';
import * as E from '../../engine/index.js';
import { assertFiniteTensors, nonFiniteTensors, writeSafetensors, type SafeTensor } from '../safetensors.js';
import { hfConfigFromModel, modelConfigFromHF, type HFExportContext, HFConfigError, type HFConfig, type HFFamily, hfFamilyOf } from './config.js';
import { familyMapping, fromHFTensor, toHFTensor, type FamilyMapping, type HostTensor } from './mapping.js';
import { HFFormatError, hostOf, hostOfTensor, readHFWeights, readJson, safeOfHost, tensorOfHost, writeTextAtomic } from './weights.js';
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
}

/** The HF config a model was imported with (kept so export writes back the same extra fields). */
const SOURCE = new WeakMap<Model, HFConfig>();

export function hfSourceConfig(model: Model): HFConfig | undefined {
  return SOURCE.get(model);
}

/** Our parameter values from HF tensors by HF name; checks every shape against the model. */
export function stateFromHF(model: Model, mapping: FamilyMapping, tensors: Map<string, SafeTensor>, opts: { strict?: boolean; dtype?: 'float32' | 'float64' } = {}): { state: Map<string, HostTensor>; skipped: string[] } {
  const strict = opts.strict ?? true;
  const params = new Map(model.namedParameters());
  const used = new Set<string>();
  const problems: string[] = [];
  const state = new Map<string, HostTensor>();
  const lookup = (hf: string): [string, SafeTensor] | undefined => {
    const t = tensors.get(hf);
    if (t) return [hf, t];
    if (mapping.optionalPrefix && hf.startsWith(mapping.optionalPrefix)) {
      const short = hf.slice(mapping.optionalPrefix.length);
      const s = tensors.get(short);
      if (s) return [short, s];
    }
    return undefined;
  };
  for (const entry of mapping.entries) {
    const found = lookup(entry.hf);
    if (!found) { problems.push(`'${entry.hf}': missing from the checkpoint`); continue; }
    used.add(found[0]);
    const host = hostOf(found[1], entry.hf, opts.dtype);
    const sizes = entry.kind === 'concat' ? entry.ours.map((n) => params.get(n)?.shape[0] ?? 0) : undefined;
    let parts: [string, HostTensor][];
    try {
      parts = fromHFTensor(entry, host, sizes);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    for (const [ours, h] of parts) {
      const p = params.get(ours);
      if (!p) { problems.push(`'${entry.hf}' maps to '${ours}', which the model does not have`); continue; }
      const want = entry.kind === 'transpose' || (entry.kind === 'concat' && entry.transpose) ? 'after transposing ' : '';
      if (p.shape.length !== h.shape.length || p.shape.some((d, i) => d !== h.shape[i])) {
        problems.push(`'${entry.hf}' → '${ours}': shape mismatch, expected [${p.shape.join(', ')}], found [${h.shape.join(', ')}] ${want}(HF shape [${found[1].shape.join(', ')}])`);
        continue;
      }
      state.set(ours, h);
    }
  }
  const skipped: string[] = [];
  const unknown: string[] = [];
  for (const k of tensors.keys()) {
    if (used.has(k)) continue;
    if (mapping.ignorable.some((r) => r.test(k) || (mapping.optionalPrefix !== undefined && r.test(mapping.optionalPrefix + k)))) skipped.push(k);
    else unknown.push(k);
  }
  if (strict && unknown.length) problems.push(...unknown.map((k) => `'${k}': unexpected tensor (no parameter of the ${model.config.family} model maps to it)`));
  else skipped.push(...unknown);
  for (const [name] of params) {
    if (!state.has(name)) problems.push(`our parameter '${name}' received no value from the checkpoint`);
  }
  if (problems.length) {
    throw new HFFormatError(problems.length === 1 ? `Hugging Face import: ${problems[0]}` : `Hugging Face import: ${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
  return { state, skipped };
}

/** Loads an HF folder (config.json + weights [+ PEFT adapter]) into a Model. */
export function loadHF(folder: string, opts: LoadHFOptions = {}): LoadedHF {
  const hfConfig = readJson(join(folder, 'config.json'));
  const family = hfFamilyOf(hfConfig);
  const config = modelConfigFromHF(hfConfig, { stacks: opts.stacks });
  const tensors = readHFWeights(folder);
  if (!opts.allowNonFinite) assertFiniteTensors(tensors, join(folder, 'model.safetensors'));
  const nonFinite = opts.allowNonFinite ? nonFiniteTensors(tensors) : [];
  const dtype = opts.dtype ?? 'float32';
  // Constant init: every value is overwritten below, so skip drawing random numbers.
  const model = withoutRandomInit(() => Model.fromConfig(config, { backend: opts.backend, dtype, seed: 0 }));
  const mapping = familyMapping(config);
  const { state, skipped } = stateFromHF(model, mapping, tensors, { strict: opts.strict, dtype });
  const sd = new Map<string, Tensor>();
  for (const [name, h] of state) sd.set(name, tensorOfHost(h, { backend: model.backend, dtype }));
  try {
    model.loadStateDict(sd);
  } finally {
    for (const t of sd.values()) t.dispose();
  }
  SOURCE.set(model, hfConfig);
  const notes: string[] = nonFinite.map((b) => `tensor '${b.name}': ${b.count} of ${b.total} values are NaN or Inf (the model would compute NaN)`);
  for (const key of ['attn_pdrop', 'attention_probs_dropout_prob', 'attention_dropout']) {
    const v = hfConfig[key];
    if (typeof v === 'number' && v > 0) notes.push(`config.json '${key}' = ${v}: dropout on attention probabilities is not implemented; training runs without it (inference is unaffected)`);
  }
  const out: LoadedHF = { model, family, hfConfig, skipped, notes };
  const adapterDir = typeof opts.adapter === 'string' ? opts.adapter : opts.adapter === false ? null : folder;
  if (adapterDir && (typeof opts.adapter === 'string' || hasPeftAdapter(adapterDir))) {
    out.adapter = loadPeftAdapter(model, adapterDir);
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

/** Writes config.json + model.safetensors (+ PEFT adapter files) that transformers can load. */
export function saveHF(model: Model, folder: string, opts: SaveHFOptions = {}): void {
  withDequantizedLayers(model, () => saveFloatHF(model, folder, opts));
}

function saveFloatHF(model: Model, folder: string, opts: SaveHFOptions): void {
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
  const adapted = model.namedModules().filter((e): e is [string, Linear] => e[1] instanceof Linear && e[1].lora !== null).map(([, l]) => l);
  const wasMerged = adapted.filter((l) => l.isMerged);
  // A token head's decoder adapter (model.progressive.head: lora): merged, its decoder is written as W + (α/r)·B A.
  const head = model.head instanceof TokenHead && model.head.lora ? model.head : null;
  if (head && mode === 'merge' && head.isTied) {
    throw new HFConfigError("export --adapters merge: the head's LoRA adapter is on a decoder tied to the token embedding, so folding it in would change the embedding too; export with --adapters separate (a PEFT adapter on the decoder) or drop");
  }
  let tensors: Map<string, HostTensor>;
  let mergedDecoder: Tensor | null = null;
  try {
    // Base weights are read unmerged ('separate', 'drop') or merged ('merge'); unmerge() restores
    // the exact pre-merge weight, and merge() recomputes the same merged weight afterwards.
    for (const l of adapted) { if (mode === 'merge') l.merge(); else l.unmerge(); }
    if (head && mode === 'merge') mergedDecoder = E.keep(E.noGrad(() => E.tidy(() => E.add(head.weight, E.mulScalar(E.matmul(head.loraB!, head.loraA!), head.lora!.scale)))));
    tensors = hfTensorsOf(model, (t) => (mergedDecoder && t === head!.weight ? mergedDecoder : t), mapping);
  } finally {
    mergedDecoder?.dispose();
    for (const l of adapted) { if (wasMerged.includes(l)) l.merge(); else l.unmerge(); }
  }
  mkdirSync(folder, { recursive: true });
  const safe = new Map<string, SafeTensor>();
  for (const [k, h] of tensors) safe.set(k, safeOfHost(h, opts.dtype ?? 'F32'));
  const dtypeName = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[opts.dtype ?? 'F32'];
  hfConfig.dtype = dtypeName;
  if ('torch_dtype' in hfConfig) hfConfig.torch_dtype = dtypeName;
  writeSafetensors(join(folder, 'model.safetensors'), safe, { format: 'pt' });
  writeTextAtomic(join(folder, 'config.json'), JSON.stringify(hfConfig, null, 2) + '\n');
  if (mode === 'separate' && (adapted.length > 0 || head)) savePeftAdapter(model, folder);
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
