/**
 * `model.init.from`: a run that starts from a pretrained model — a Hugging Face folder or a
 * StackWise run / checkpoint folder — instead of random weights.
 *
 * When the config is parsed (`applyInitFrom`), the folder's description (config.json, or the
 * checkpoint's model.json manifest; no weights are read) fills in the model's architecture
 * fields and the data plane's tokenizer, so the rest of StackWise (the memory check, `plan`, the
 * spec checks, the phases) sees an ordinary config. A field the config also writes must agree; a
 * conflict is an error naming both values. The rack starts with the folder's stacks: every
 * phase has at least that many, and a phase with more grows them by model.progressive.growth
 * (block_expansion, depth_upscaling, copy_top, …) through the one growth path.
 *
 * When the machine builds its model (`loadInitModel`), the folder's weights are loaded with the
 * library's loaders (`loadPretrained` for Hugging Face, `loadModel` for checkpoints) and made
 * plain: LoRA adapters folded into their weights and quantized layers dequantized (the new run
 * decides its own adapters and storage), everything trainable until the freeze policy says.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LEGACY_RUN_TOKENIZER_FILE, RUN_TOKENIZER_FILE } from '../data/index.js';
import { isPlainObject, type ModelPlaneConfig, type TokenizerConfig } from '../framework/index.js';
import type { ConfigIssue } from '../framework/config/errors.js';
import { isHFModelFolder, loadPretrained, readJson, readHFModelConfig, STACKS_FIELD } from '../io/hf/index.js';
import { Linear, LoraLinear, QuantizedLinear, replaceModule, type BlockConfig, type Model, type ModelConfig } from '../nn/index.js';
import { checkManifest, MODEL_MANIFEST_FILE } from './model-manifest/manifest.js';
import { loadModel, resolveCheckpoint } from './model-manifest/load-model.js';
import { RampedStack } from './progressive/ramp.js';
import { foldLora } from './progressive/lora.js';

/** The model fields a pretrained folder gives (the config may write them only with the same values). */
export const INIT_MODEL_FIELDS = [
  'preset', 'vocab_size', 'd_model', 'n_heads', 'n_kv_heads', 'd_ff', 'max_positions', 'tie_embeddings', 'rope_theta', 'norm_eps',
] as const;

/** What a pretrained folder says about its model, read without its weights. */
export interface InitSource {
  from: string;
  kind: 'hf' | 'checkpoint';
  /** Blocks in all. */
  depth: number;
  /** Blocks per stack when the folder records a cut into equal stacks (a checkpoint's rack, an export's stackwise_stacks). */
  blocksPerStack: number | undefined;
  /** The model fields (INIT_MODEL_FIELDS that apply to its preset), with where each comes from. */
  fields: Record<string, unknown>;
  /** The folder's tokenizer as a data.tokenizer setting, when it has one. */
  tokenizer: TokenizerConfig | undefined;
  /** Which file the sizes come from (for messages). */
  described: string;
}

function uniformBlocks(configs: readonly BlockConfig[], where: string): BlockConfig {
  const first = configs[0];
  if (!first) throw new Error(`${where}: the model has no blocks`);
  const key = JSON.stringify(first);
  if (configs.some((c) => JSON.stringify(c) !== key)) throw new Error(`${where}: the blocks differ in configuration; model.init.from needs a model whose blocks all have one shape`);
  return first;
}

function fieldsOf(family: string, vocabSize: number, dModel: number, block: BlockConfig, maxPositions: number | undefined, tied: boolean, where: string): Record<string, unknown> {
  if (family !== 'llama' && family !== 'gpt2' && family !== 'bert') throw new Error(`${where}: the model family '${family}' has no config preset (expected llama, gpt2 or bert)`);
  const kind = block.attentionKind ?? 'standard';
  if (kind !== 'standard') throw new Error(`${where}: attention kind '${kind}' is not supported by model.init.from yet (standard attention only)`);
  const out: Record<string, unknown> = { preset: family, vocab_size: vocabSize, d_model: dModel, n_heads: block.nHeads, d_ff: block.dFF, norm_eps: block.normEps };
  if (maxPositions !== undefined) out['max_positions'] = maxPositions;
  if (family === 'llama') {
    out['n_kv_heads'] = block.nKvHeads ?? block.nHeads;
    out['tie_embeddings'] = tied;
    if (block.ropeTheta !== undefined) out['rope_theta'] = block.ropeTheta;
  }
  return out;
}

function fromModelConfig(c: ModelConfig, where: string): { fields: Record<string, unknown>; depth: number } {
  const block = uniformBlocks(c.stacks.flatMap((s) => Array.from({ length: s.nBlocks }, () => s.block)), where);
  if (c.timeEmbedding) throw new Error(`${where}: the model has a time embedding (time-as-input diffusion), which model.init.from does not carry over`);
  const tied = c.head.kind !== 'classification' && c.head.tied;
  return { fields: fieldsOf(c.family, c.vocabSize, c.dModel, block, c.embedding.maxPositions, tied, where), depth: c.stacks.reduce((n, s) => n + s.nBlocks, 0) };
}

function equalStacks(sizes: readonly number[]): number | undefined {
  return sizes.length > 0 && sizes.every((n) => n === sizes[0]) ? sizes[0] : undefined;
}

/** Reads what `from` says about its model (config.json or model.json), without its weights. */
export function readInitSource(from: string): InitSource {
  if (!existsSync(from) || !statSync(from).isDirectory()) throw new Error(`${from}: no such folder (expected a Hugging Face model folder or a StackWise run / checkpoint folder)`);
  if (isHFModelFolder(from)) {
    const cfgPath = join(from, 'config.json');
    const { fields, depth } = fromModelConfig(readHFModelConfig(from), cfgPath);
    const saved = readJson(cfgPath)[STACKS_FIELD];
    const recorded = Array.isArray(saved) && saved.every((n) => Number.isInteger(n)) ? equalStacks(saved as number[]) : undefined;
    const tokenizer: TokenizerConfig | undefined = existsSync(join(from, 'tokenizer.json')) ? { kind: 'hf', path: from } : undefined;
    return { from, kind: 'hf', depth, blocksPerStack: recorded ?? 1, fields, tokenizer, described: cfgPath };
  }
  const { checkpoint } = resolveCheckpoint(from);
  const manifestPath = join(checkpoint, MODEL_MANIFEST_FILE);
  if (!existsSync(manifestPath)) throw new Error(`${checkpoint} has no model manifest (${MODEL_MANIFEST_FILE}): it was written by an earlier StackWise; export it with that version or retrain`);
  const manifest = checkManifest(JSON.parse(readFileSync(manifestPath, 'utf8')) as unknown, manifestPath);
  if (manifest.rack.stacks.some((s) => s.ramp !== null && s.ramp.gate !== 1)) throw new Error(`${manifestPath}: a stack is still ramping in (gate below 1); start from a checkpoint written after its ramp ended`);
  const a = manifest.architecture;
  if (a.time_embedding) throw new Error(`${manifestPath}: the model has a time embedding (time-as-input diffusion), which model.init.from does not carry over`);
  const block = uniformBlocks(manifest.rack.stacks.flatMap((s) => s.blocks), manifestPath);
  const fields = fieldsOf(a.family, a.vocab_size, a.d_model, block, a.embedding.maxPositions, a.tied, manifestPath);
  const depth = manifest.rack.stacks.reduce((n, s) => n + s.blocks.length, 0);
  // The tokenizer the run trained with: GPT-2's, or the checkpoint's copy of its own.
  const state = (JSON.parse(readFileSync(join(checkpoint, 'checkpoint.json'), 'utf8')) as { state?: { phase_data?: { data?: { tokenizer?: TokenizerConfig } | null } } }).state;
  const tok = state?.phase_data?.data?.tokenizer;
  let tokenizer: TokenizerConfig | undefined;
  if (tok?.kind === 'gpt2') tokenizer = { kind: 'gpt2' };
  else if (tok && tok.kind !== 'none') {
    const file = [RUN_TOKENIZER_FILE, LEGACY_RUN_TOKENIZER_FILE].map((f) => join(checkpoint, f)).find((p) => existsSync(p));
    if (!file) throw new Error(`${checkpoint}: the run's tokenizer file (${RUN_TOKENIZER_FILE}) is missing`);
    tokenizer = { kind: 'bpe', vocab_size: tok.kind === 'bpe' ? tok.vocab_size : a.vocab_size, path: file };
  }
  return { from, kind: 'checkpoint', depth, blocksPerStack: equalStacks(manifest.rack.stacks.map((s) => s.blocks.length)), fields, tokenizer, described: manifestPath };
}

function show(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
}

/**
 * A raw config with `model.init.from` completed from the folder (model fields, n_stacks and
 * blocks_per_stack, data.tokenizer), and the conflicts found, as config issues. A config without
 * model.init.from comes back as it is.
 */
export function applyInitFrom(raw: unknown): { raw: unknown; issues: ConfigIssue[] } {
  if (!isPlainObject(raw) || !isPlainObject(raw['model']) || !isPlainObject(raw['model']['init'])) return { raw, issues: [] };
  const from = raw['model']['init']['from'];
  if (typeof from !== 'string' || from === '') return { raw, issues: [] }; // the schema reports it
  let src: InitSource;
  try {
    src = readInitSource(from);
  } catch (error) {
    return { raw, issues: [{ path: 'model.init.from', expected: 'a Hugging Face model folder or a StackWise run / checkpoint folder', found: show(from), message: (error as Error).message }] };
  }
  const out = structuredClone(raw) as Record<string, unknown> & { model: Record<string, unknown> };
  const model = out.model;
  const issues: ConfigIssue[] = [];
  const conflict = (path: string, expected: string, written: unknown) =>
    issues.push({ path, expected: `${expected} (${src.described}), or no value`, found: show(written), hint: `model.init.from takes the architecture from the folder; remove ${path} or start from another model` });
  for (const key of INIT_MODEL_FIELDS) {
    const folder = src.fields[key];
    if (model[key] === undefined) {
      if (folder !== undefined) model[key] = folder;
    } else if (folder === undefined || JSON.stringify(model[key]) !== JSON.stringify(folder)) {
      conflict(`model.${key}`, folder === undefined ? `no value (${src.from} has none)` : `${show(folder)}, the value of ${src.from}`, model[key]);
    }
  }
  if (model['time_embedding'] !== undefined) issues.push({ path: 'model.time_embedding', expected: 'no time embedding with model.init.from (the pretrained model has none)', found: show(model['time_embedding']) });
  if (model['attention_kind'] !== undefined && JSON.stringify(model['attention_kind']) !== '"standard"') issues.push({ path: 'model.attention_kind', expected: "'standard' (the pretrained model's attention)", found: show(model['attention_kind']) });
  // The rack: the folder's blocks cut into stacks of blocks_per_stack.
  const b = model['blocks_per_stack'];
  if (b === undefined) {
    model['blocks_per_stack'] = src.blocksPerStack ?? 1;
  } else if (typeof b === 'number' && Number.isInteger(b) && b > 0) {
    if (src.depth % b !== 0) conflict('model.blocks_per_stack', `a divisor of the ${src.depth} blocks of ${src.from}, cut into equal stacks`, b);
    else if (src.kind === 'checkpoint' && b !== src.blocksPerStack) conflict('model.blocks_per_stack', `${src.blocksPerStack ?? 'the uneven stacks'}, the blocks per stack of ${src.from} (a checkpoint keeps its rack)`, b);
  }
  const bps = model['blocks_per_stack'];
  if (typeof bps === 'number' && bps > 0 && src.depth % bps === 0) {
    const stacks = src.depth / bps;
    if (model['n_stacks'] === undefined) model['n_stacks'] = stacks;
    const tooFew = (path: string, n: unknown) => {
      if (typeof n === 'number' && n < stacks) issues.push({ path, expected: `at least ${stacks}, the stacks of ${src.from} (${src.depth} blocks in stacks of ${bps}); more grow the rack by model.progressive.growth`, found: String(n) });
    };
    tooFew('model.n_stacks', model['n_stacks']);
    const schedule = out['schedule'];
    if (Array.isArray(schedule)) {
      schedule.forEach((p, i) => {
        const o = isPlainObject(p) && isPlainObject(p['overrides']) && isPlainObject(p['overrides']['model']) ? p['overrides']['model'] : undefined;
        if (o) tooFew(`schedule[${i}].overrides.model.n_stacks`, o['n_stacks']);
      });
    }
  }
  const training = out['training'];
  if (isPlainObject(training) && training['mode'] !== undefined) {
    issues.push({ path: 'training.mode', expected: 'no training mode with model.init.from (the modes build the rack from one stack; a pretrained model starts with its own): write the schedule and model.progressive instead', found: show(training['mode']) });
  }
  // The folder's tokenizer is the data's.
  const data = out['data'];
  if (isPlainObject(data) && src.tokenizer) {
    if (data['tokenizer'] === undefined) data['tokenizer'] = src.tokenizer;
    else if (JSON.stringify(typeof data['tokenizer'] === 'string' ? { kind: data['tokenizer'] } : data['tokenizer']) !== JSON.stringify(src.tokenizer)) {
      issues.push({ path: 'data.tokenizer', expected: `${JSON.stringify(src.tokenizer)}, the tokenizer of ${src.from}, or no value`, found: JSON.stringify(data['tokenizer']), hint: 'a pretrained model reads the ids of its own tokenizer' });
    }
  }
  return { raw: out, issues };
}

/** The stacks a model plane starts with when it starts from a pretrained folder (undefined: it does not). */
export function initialStacksOf(plane: ModelPlaneConfig): number | undefined {
  return plane.init ? readInitSource(plane.init.from).depth / plane.blocks_per_stack : undefined;
}

/** Whether a phase of a parsed config has more stacks than the pretrained model it starts from. */
export function growsPretrained(parsed: { phases: readonly { model?: ModelPlaneConfig }[] }): boolean {
  const first = parsed.phases[0]?.model;
  const start = first ? initialStacksOf(first) : undefined;
  return start !== undefined && parsed.phases.some((p) => (p.model?.n_stacks ?? 0) > start);
}

/**
 * The model `plane.init.from` names, with its weights, cut into stacks of plane.blocks_per_stack,
 * adapters folded and quantized layers dequantized, in training mode with every parameter
 * trainable (the run's freeze policy decides).
 */
export function loadInitModel(plane: ModelPlaneConfig, opts: { backend?: string } = {}): Model {
  const from = plane.init?.from;
  if (!from) throw new Error('loadInitModel: the model plane has no init.from');
  const src = readInitSource(from);
  const stacks = src.depth / plane.blocks_per_stack;
  let model: Model;
  if (src.kind === 'hf') {
    model = loadPretrained(from, { stacks, ...(opts.backend ? { backend: opts.backend } : {}) }).model;
  } else {
    model = loadModel(from, opts.backend ? { backend: opts.backend } : {}).model;
  }
  try {
    plainify(model);
    // Dropout is a training setting: the run's model.dropout (default 0), not the folder's.
    for (const b of model.rack.allBlocks()) b.config.dropout = plane.dropout;
    if (model.embedding.config.dropout !== undefined) model.embedding.config.dropout = plane.dropout;
    if (model.rack.numStacks !== stacks) throw new Error(`model.init.from ${from}: the model has ${model.rack.numStacks} stacks, expected ${stacks} (${src.depth} blocks in stacks of ${plane.blocks_per_stack})`);
    model.train();
    for (const p of model.parameters()) p.requiresGrad = true;
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

/** Folds every LoRA adapter into its weight and stores every quantized layer as float32 again. */
function plainify(model: Model): void {
  for (const s of model.rack.stacks) {
    if (s instanceof RampedStack) throw new Error('model.init.from: the model has a ramped-in stack; start from an export of it (stackwise export) instead');
  }
  for (const [path, m] of model.namedModules()) {
    if (m instanceof QuantizedLinear) {
      // The Linear adopts the layer's adapter tensors (folded below); the packed weight is left to the GC net.
      replaceModule(model, path, m.toLinear('float32'));
    }
  }
  for (const [, m] of model.namedModules()) {
    if (m instanceof Linear && m.lora) foldLora(m);
    else if (m instanceof LoraLinear && m.lora) throw new Error(`model.init.from: a '${m.typeName}' layer carries an adapter that cannot be folded`);
  }
  model.namedParameters();
}
