/**
 * PEFT LoRA adapters: adapter_config.json + adapter_model.safetensors ↔ LoRA on our Linear layers.
 * Keys are `base_model.model.<HF module>.lora_A.weight` / `.lora_B.weight` (A: [r, in],
 * B: [out, r]); the scale is lora_alpha / r (lora_alpha / √r with use_rslora), per module
 * overridable by rank_pattern / alpha_pattern. A LoRA on a fused HF projection (GPT-2 c_attn)
 * becomes one A shared by our q, k and v and B split by rows — exactly the same function.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../../engine/index.js';
import { Linear, LoraLinear, QuantizedLinear, TokenHead, deriveSeed, isLoraParamName, type Model } from '../../nn/index.js';
import { writeSafetensors, readSafetensors, type SafeTensor } from '../safetensors.js';
import { familyMapping, type LinearMap, type HostTensor } from './mapping.js';
import { HFFormatError, hostOf, hostOfTensor, readJson, safeOfHost, writeTextAtomic } from './weights.js';

export interface PeftAdapterInfo {
  /** The adapter_config.json as read (or written). */
  config: Record<string, unknown>;
  /** HF module names that received an adapter. */
  modules: string[];
  /** Our Linear paths that received an adapter. */
  linears: string[];
}

export function hasPeftAdapter(folder: string): boolean {
  return existsSync(join(folder, 'adapter_config.json')) && existsSync(join(folder, 'adapter_model.safetensors'));
}

const PREFIX = 'base_model.model.';

/** PEFT's pattern lookup: key k matches module m when m is k or ends with '.k' (k may be a regex). */
function patternValue(pattern: unknown, module: string): number | undefined {
  if (!pattern || typeof pattern !== 'object') return undefined;
  for (const [k, v] of Object.entries(pattern as Record<string, unknown>)) {
    let re: RegExp;
    try { re = new RegExp(`^(.*\\.)?(${k})$`); } catch { continue; }
    if (re.test(module) && typeof v === 'number') return v;
  }
  return undefined;
}

function refuse(cfg: Record<string, unknown>, key: string, ok: (v: unknown) => boolean, why: string, path: string): void {
  const v = cfg[key];
  if (v !== undefined && v !== null && !ok(v)) throw new HFFormatError(`${path}: '${key}' = ${JSON.stringify(v)} is not supported (${why})`);
}

/** Parses "<module>.lora_A.weight" (also "...lora_A.default.weight"). */
function splitKey(key: string): { module: string; which: 'A' | 'B' } | null {
  const k = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
  const m = /^(.*)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(k);
  return m ? { module: m[1], which: m[2] as 'A' | 'B' } : null;
}

function findLinear(linears: LinearMap[], module: string, optionalPrefix?: string): LinearMap | undefined {
  return linears.find((l) => l.hf === module || (optionalPrefix !== undefined && l.hf === optionalPrefix + module));
}

/**
 * Applies the PEFT adapter in `folder` to `model`: LoRA on each listed module with the stored
 * A and B, every other parameter frozen (PEFT semantics), adapters trainable.
 */
export function loadPeftAdapter(model: Model, folder: string): PeftAdapterInfo {
  const cfgPath = join(folder, 'adapter_config.json');
  const cfg = readJson(cfgPath);
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') throw new HFFormatError(`${cfgPath}: peft_type ${JSON.stringify(cfg.peft_type)} is not supported (only LORA)`);
  refuse(cfg, 'use_dora', (v) => v === false, 'DoRA is not implemented', cfgPath);
  refuse(cfg, 'bias', (v) => v === 'none', "adapter biases are not implemented; use bias 'none'", cfgPath);
  refuse(cfg, 'modules_to_save', (v) => Array.isArray(v) && v.length === 0, 'fully trained extra modules are not implemented', cfgPath);
  refuse(cfg, 'lora_bias', (v) => v === false, 'lora_B biases are not implemented', cfgPath);
  refuse(cfg, 'use_qalora', (v) => v === false, 'QA-LoRA is not implemented', cfgPath);
  refuse(cfg, 'trainable_token_indices', () => false, 'trainable tokens are not implemented', cfgPath);
  refuse(cfg, 'layer_replication', () => false, 'layer replication is not implemented', cfgPath);
  const alpha = typeof cfg.lora_alpha === 'number' ? cfg.lora_alpha : 8;
  const dropout = typeof cfg.lora_dropout === 'number' ? cfg.lora_dropout : 0;
  const rslora = cfg.use_rslora === true;
  const file = readSafetensors(join(folder, 'adapter_model.safetensors'));
  const mapping = familyMapping(model.config);
  const byModule = new Map<string, { A?: [string, SafeTensor]; B?: [string, SafeTensor] }>();
  const problems: string[] = [];
  for (const [key, t] of file.tensors) {
    const parsed = splitKey(key);
    if (!parsed) { problems.push(`'${key}': not a LoRA weight (expected <module>.lora_A.weight or .lora_B.weight)`); continue; }
    const e = byModule.get(parsed.module) ?? {};
    e[parsed.which] = [key, t];
    byModule.set(parsed.module, e);
  }
  const plans: { lm: LinearMap; module: string; a: HostTensor; b: HostTensor; rank: number; alpha: number }[] = [];
  // An adapter on a token head's decoder (lm_head; cls.predictions.decoder) goes to the head's own adapter.
  let headPlan: { module: string; a: HostTensor; b: HostTensor; rank: number; alpha: number } | null = null;
  const head = model.head instanceof TokenHead ? model.head : null;
  const decoder = head ? decoderModuleName(model, false) : null;
  for (const [module, { A, B }] of byModule) {
    if (!A || !B) { problems.push(`module '${module}': lora_${A ? 'B' : 'A'} is missing`); continue; }
    if (head && module === decoder) {
      const a = hostOf(A[1], A[0], model.dtype === 'float64' ? 'float64' : 'float32');
      const b = hostOf(B[1], B[0], model.dtype === 'float64' ? 'float64' : 'float32');
      const r = a.shape[0]!;
      if (a.shape.length !== 2 || a.shape[1] !== head.dModel) problems.push(`'${A[0]}': shape [${a.shape.join(', ')}], expected [r, ${head.dModel}]`);
      else if (b.shape.length !== 2 || b.shape[0] !== head.vocabSize || b.shape[1] !== r) problems.push(`'${B[0]}': shape [${b.shape.join(', ')}], expected [${head.vocabSize}, ${r}]`);
      else if (dropout !== 0) problems.push(`module '${module}': the head's decoder adapter takes no dropout (it is merged into the decoder weight on the fly), but lora_dropout is ${dropout}`);
      else headPlan = { module, a, b, rank: r, alpha: patternValue(cfg.alpha_pattern, module) ?? alpha };
      continue;
    }
    const lm = findLinear(mapping.linears, module, mapping.optionalPrefix);
    if (!lm) { problems.push(`module '${module}': no Linear layer of the ${model.config.family} model corresponds to it`); continue; }
    const a = hostOf(A[1], A[0], model.dtype === 'float64' ? 'float64' : 'float32');
    const b = hostOf(B[1], B[0], model.dtype === 'float64' ? 'float64' : 'float32');
    const linears = lm.ours.map((p) => model.getModule(p));
    // A quantized base (a folder loaded with loadFormat nf4, …) takes the adapter as QLoRA does.
    if (!linears.every((l) => l instanceof Linear || l instanceof QuantizedLinear)) { problems.push(`module '${module}': maps to '${lm.ours.join(', ')}', which is not a Linear layer (adapters on it are not supported)`); continue; }
    const ls = linears as (Linear | QuantizedLinear)[];
    const r = a.shape[0];
    const outTotal = ls.reduce((n, l) => n + l.outFeatures, 0);
    if (a.shape.length !== 2 || a.shape[1] !== ls[0].inFeatures) problems.push(`'${A[0]}': shape [${a.shape.join(', ')}], expected [r, ${ls[0].inFeatures}]`);
    else if (b.shape.length !== 2 || b.shape[0] !== outTotal || b.shape[1] !== r) problems.push(`'${B[0]}': shape [${b.shape.join(', ')}], expected [${outTotal}, ${r}]`);
    else {
      const rp = patternValue(cfg.rank_pattern, module);
      if (rp !== undefined && rp !== r) problems.push(`module '${module}': rank_pattern says r=${rp} but lora_A has ${r} rows`);
      plans.push({ lm, module, a, b, rank: r, alpha: patternValue(cfg.alpha_pattern, module) ?? alpha });
    }
  }
  if (problems.length) throw new HFFormatError(`PEFT adapter ${folder}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`}`);
  if (plans.length === 0 && !headPlan) throw new HFFormatError(`PEFT adapter ${folder}: adapter_model.safetensors holds no LoRA weights`);
  const upload = (t: Tensor, h: HostTensor) => t.write(t.dtype === 'float64' ? Float64Array.from(h.data) : Float32Array.from(h.data));
  const linearsDone: string[] = [];
  for (const p of plans) {
    const ls = p.lm.ours.map((n) => model.getModule(n) as Linear | QuantizedLinear);
    let shared: Tensor | undefined;
    let row = 0;
    ls.forEach((l, i) => {
      l.addLora({ rank: p.rank, alpha: p.alpha, dropout, rslora, seed: deriveSeed(0, p.lm.ours[i]), sharedA: shared, freezeBase: true });
      if (i === 0) { upload(l.loraA!, p.a); shared = l.loraA!; }
      const n = l.outFeatures * p.rank;
      upload(l.loraB!, { shape: [l.outFeatures, p.rank], data: p.b.data.slice(row * p.rank, row * p.rank + n) });
      row += l.outFeatures;
      linearsDone.push(p.lm.ours[i]);
    });
  }
  if (headPlan) {
    head!.addLora({ rank: headPlan.rank, alpha: headPlan.alpha, rslora, seed: deriveSeed(0, 'head'), freezeBase: true });
    upload(head!.loraA!, headPlan.a);
    upload(head!.loraB!, headPlan.b);
    linearsDone.push('head');
  }
  for (const [name, t] of model.namedParameters()) t.requiresGrad = isLoraParamName(name);
  return { config: cfg, modules: [...plans.map((p) => p.module), ...(headPlan ? [headPlan.module] : [])], linears: linearsDone };
}

/** HF-named adapter tensors (`base_model.model.<module>.lora_A.weight` …); `pick` chooses value or grad. */
export function peftTensorsOf(model: Model, pick: (t: Tensor) => Tensor | null = (t) => t): { tensors: Map<string, HostTensor>; modules: { hf: string; rank: number; alpha: number; rslora: boolean; dropout: number }[] } {
  const mapping = familyMapping(model.config);
  const tensors = new Map<string, HostTensor>();
  const modules: { hf: string; rank: number; alpha: number; rslora: boolean; dropout: number }[] = [];
  const covered = new Set<LoraLinear>();
  for (const lm of mapping.linears) {
    const ls = lm.ours.map((p) => model.getModule(p)).filter((m): m is LoraLinear => m instanceof LoraLinear);
    if (ls.length !== lm.ours.length) continue;
    const withLora = ls.filter((l) => l.lora !== null);
    if (withLora.length === 0) continue;
    if (withLora.length !== ls.length || ls.some((l) => l.loraA !== ls[0].loraA || l.lora!.rank !== ls[0].lora!.rank || l.lora!.scale !== ls[0].lora!.scale)) {
      throw new HFFormatError(`PEFT export: HF module '${lm.hf}' fuses ${lm.ours.join(', ')}; an adapter on it needs LoRA on all of them with one shared A (attach it by loading a PEFT adapter, or adapt all three with sharedA)`);
    }
    ls.forEach((l) => covered.add(l));
    const a = pick(ls[0].loraA!);
    const bs = ls.map((l) => pick(l.loraB!));
    if (a) tensors.set(`${PREFIX}${lm.hf}.lora_A.weight`, hostOfTensor(a));
    if (bs.every((b) => b)) {
      const parts = bs.map((b) => hostOfTensor(b!));
      const data = new (parts[0].data.constructor as Float32ArrayConstructor)(parts.reduce((n, p) => n + p.data.length, 0));
      let off = 0;
      for (const p of parts) { data.set(p.data, off); off += p.data.length; }
      tensors.set(`${PREFIX}${lm.hf}.lora_B.weight`, { shape: [parts.reduce((n, p) => n + p.shape[0], 0), parts[0].shape[1]], data });
    }
    const l0 = ls[0].lora!;
    modules.push({ hf: lm.hf, rank: l0.rank, alpha: l0.alpha, rslora: l0.rslora, dropout: l0.dropout });
  }
  // The decoder adapter of a token head (model.progressive.head: lora) on HF's decoder module.
  const head = model.head;
  if (head instanceof TokenHead && head.lora) {
    const hf = decoderModuleName(model)!;
    const a = pick(head.loraA!), b = pick(head.loraB!);
    if (a) tensors.set(`${PREFIX}${hf}.lora_A.weight`, hostOfTensor(a));
    if (b) tensors.set(`${PREFIX}${hf}.lora_B.weight`, hostOfTensor(b));
    modules.push({ hf, rank: head.lora.rank, alpha: head.lora.alpha, rslora: head.lora.rslora, dropout: head.lora.dropout });
  }
    const stray = model.namedModules().filter(([, m]) => m instanceof LoraLinear && m.lora !== null && !covered.has(m)).map(([p]) => p);
  if (stray.length) throw new HFFormatError(`PEFT export: adapters on ${stray.join(', ')} have no Hugging Face module to attach to`);
  return { tensors, modules };
}

/** The Hugging Face module of a token head's decoder: lm_head (LLaMA, GPT-2), cls.predictions.decoder (BERT MLM); null (or an error, `required`) for none. */
function decoderModuleName(model: Model, required = true): string | null {
  const head = model.config.head.kind;
  if (head === 'lm' && (model.config.family === 'llama' || model.config.family === 'gpt2')) return 'lm_head';
  if (head === 'mlm' && model.config.family === 'bert') return 'cls.predictions.decoder';
  if (!required) return null;
  throw new HFFormatError(`PEFT export: a ${model.config.family} ${head} head's decoder adapter has no Hugging Face module to attach to`);
}

function mostCommon(values: number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Writes adapter_config.json + adapter_model.safetensors for the model's LoRA adapters. */
export function savePeftAdapter(model: Model, folder: string, opts: { baseModelName?: string | null } = {}): PeftAdapterInfo {
  const { tensors, modules } = peftTensorsOf(model);
  if (modules.length === 0) throw new HFFormatError('PEFT export: the model has no LoRA adapter');
  const r = mostCommon(modules.map((m) => m.rank));
  const alpha = mostCommon(modules.map((m) => m.alpha));
  const rsl = modules[0].rslora;
  const dropout = modules[0].dropout;
  if (modules.some((m) => m.rslora !== rsl)) throw new HFFormatError('PEFT export: adapters mix rsLoRA and plain LoRA scaling, which one adapter_config cannot express');
  if (modules.some((m) => m.dropout !== dropout)) throw new HFFormatError('PEFT export: adapters use different dropout rates, which one adapter_config cannot express');
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const m of modules) {
    if (m.rank !== r) rankPattern[escapeRegex(m.hf)] = m.rank;
    if (m.alpha !== alpha) alphaPattern[escapeRegex(m.hf)] = m.alpha;
  }
  // target_modules: short names when they select exactly the adapted modules, else a full-match regex.
  const mapping = familyMapping(model.config);
  const adapted = new Set(modules.map((m) => m.hf));
  const shortNames = [...new Set(modules.map((m) => m.hf.split('.').pop()!))];
  const selected = mapping.linears.filter((l) => shortNames.includes(l.hf.split('.').pop()!)).map((l) => l.hf);
  const exact = selected.length === adapted.size && selected.every((s) => adapted.has(s));
  const targetModules: string[] | string = exact ? shortNames.sort() : `^(${[...adapted].map(escapeRegex).join('|')})$`;
  const head = model.config.head.kind;
  const config: Record<string, unknown> = {
    peft_type: 'LORA',
    task_type: head === 'lm' ? 'CAUSAL_LM' : head === 'classification' ? 'SEQ_CLS' : null,
    base_model_name_or_path: opts.baseModelName ?? null,
    r,
    lora_alpha: alpha,
    lora_dropout: dropout,
    target_modules: targetModules,
    bias: 'none',
    use_rslora: rsl,
    use_dora: false,
    fan_in_fan_out: model.config.family === 'gpt2',
    init_lora_weights: true,
    inference_mode: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    revision: null,
  };
  const safe = new Map<string, SafeTensor>();
  for (const [k, h] of tensors) safe.set(k, safeOfHost(h));
  // Like saveHF: the folder is made when missing (a PEFT folder usually sits beside the run).
  mkdirSync(folder, { recursive: true });
  writeSafetensors(join(folder, 'adapter_model.safetensors'), safe, { format: 'pt' });
  writeTextAtomic(join(folder, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
  return { config, modules: modules.map((m) => m.hf), linears: [] };
}
