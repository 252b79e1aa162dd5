/**
 * Exporting a model as a Hugging Face folder (config.json + model.safetensors, plus
 * adapter_config.json + adapter_model.safetensors for LoRA adapters unless merged or dropped, plus
 * the tokenizer as tokenizer.json + tokenizer_config.json + special_tokens_map.json) that
 * transformers / PEFT / tokenizers load. Every run exports: quantized layers (NF4, int8, …) are
 * dequantized to --dtype; what Hugging Face cannot represent is refused naming the condition.
 * Weights go out tensor by tensor, in shards + model.safetensors.index.json past --max-shard-size,
 * and model.json (the model manifest: stack plan, ids, adapters, storage as trained) describes the
 * StackWise model beside config.json. The folder appears complete or not at all: it is written
 * under a temporary name next to the target and renamed.
 *
 * Sources: a Hugging Face folder (re-export: merge a PEFT adapter, change the dtype, …), a StackWise
 * run or checkpoint folder (its model manifest), and any source registered with
 * `registerExportSource`.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { loadHF, loadHFTokenizer, parseShardSize, readHFModelConfig, saveHF, saveHFTokenizer, type SaveHFOptions } from '../../io/hf/index.js';
import { MODEL_MANIFEST_FILE, exportedManifest, readFolderManifest, type ModelManifest } from '../model-manifest/index.js';
import type { Tokenizer } from '../../data/index.js';
import type { Model } from '../../nn/index.js';
import { UsageError } from './errors.js';
import { checkStacksOption, withConfigPath } from './inspect.js';
import { isRunOrCheckpoint, loadRun } from './load-run.js';

/** A loader for one kind of export source; returns null when `path` is not of its kind. */
export type ExportSource = (path: string) => ExportableModel | null;

/** What a source gives: the model, and (when known) its tokenizer and training objective. */
export interface ExportableModel {
  model: Model;
  description: string;
  /** Written as tokenizer.json + tokenizer_config.json + special_tokens_map.json. */
  tokenizer?: Tokenizer;
  /** Named in refusals that depend on it (bidirectional attention of diffusion / MLM). */
  objective?: string;
  /** The source's model manifest (a checkpoint's; an exported folder's model.json): stack ids and storage as trained. */
  manifest?: ModelManifest;
  /** What model.json records as the export's source. */
  sourceName?: string;
}

const sources: { name: string; load: ExportSource }[] = [];

/** Lets other layers (training checkpoints, …) make their files exportable. Tried in order, before HF folders. */
export function registerExportSource(name: string, load: ExportSource): void {
  sources.push({ name, load });
}

// Training runs: a run folder (its newest checkpoint) or one checkpoint folder, built from the
// checkpoint's model manifest (loadRun → loadModel), with the run's tokenizer and objective.
registerExportSource('a StackWise run folder or checkpoint', (path) => {
  if (!statSync(path).isDirectory() || !isRunOrCheckpoint(path)) return null;
  const run = loadRun(path);
  return {
    model: run.model, description: `${run.checkpoint} (step ${run.step})`, tokenizer: run.tokenizer, objective: run.objective,
    ...(run.manifest ? { manifest: run.manifest } : {}), sourceName: `StackWise run ${basename(run.runDir)}, checkpoint ${basename(run.checkpoint)} (step ${run.step})`,
  };
});

/** --dtype values: safetensors names and torch names. */
export const EXPORT_DTYPES = ['F32', 'F16', 'BF16', 'float32', 'float16', 'bfloat16'] as const;
export type ExportDtype = (typeof EXPORT_DTYPES)[number];
const SAFETENSORS_DTYPE: Record<ExportDtype, NonNullable<SaveHFOptions['dtype']>> = { F32: 'F32', F16: 'F16', BF16: 'BF16', float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

export interface ExportOptions {
  out: string;
  format?: 'hf';
  /** Weight dtype in the file; quantized layers are dequantized to it (default F32). */
  dtype?: ExportDtype;
  adapters?: 'separate' | 'merge' | 'drop';
  stacks?: number | number[];
  force?: boolean;
  /**
   * Largest weight file, in bytes or as transformers writes it ('2GB', '500MB'; default 5GB): a
   * bigger model is written as shards model-0000k-of-0000n.safetensors + model.safetensors.index.json.
   */
  maxShardSize?: number | string;
}

export interface ExportResult {
  source: string;
  sourceKind: string;
  out: string;
  files: string[];
}

function loadSource(source: string, stacks: number | number[] | undefined): ExportableModel & { kind: string } {
  if (!existsSync(source)) throw new Error(`${source}: no such file or folder`);
  for (const s of sources) {
    const r = s.load(source);
    if (r) return { ...r, kind: s.name };
  }
  if (statSync(source).isDirectory() && existsSync(join(source, 'config.json'))) {
    checkStacksOption(source, stacks);
    try {
      const tokenizer = loadHFTokenizer(source) ?? undefined;
      // A folder exported by StackWise keeps its stacks (model.json) unless --stacks regroups them.
      const manifest = readFolderManifest(source, readHFModelConfig(source));
      const grouping = stacks ?? manifest?.rack.stacks.map((s) => s.blocks.length);
      const model = loadHF(source, grouping !== undefined ? { stacks: grouping } : {}).model;
      const keepIds = manifest !== undefined && stacks === undefined;
      return { model, description: source, kind: 'hf', ...(tokenizer ? { tokenizer } : {}), ...(keepIds ? { manifest } : {}), sourceName: `Hugging Face folder ${basename(resolve(source))}` };
    } catch (e) {
      throw withConfigPath(source, e);
    }
  }
  const known = ['a Hugging Face folder (config.json + model.safetensors)', ...sources.map((s) => s.name)];
  throw new Error(`${source}: not an exportable model (expected ${known.join(' or ')})`);
}

/** --max-shard-size as given: a usage error (exit 2) when it is not a size. */
function shardSizeOption(value: number | string): number {
  try {
    return parseShardSize(value);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Exports `source` as a Hugging Face folder at `opts.out`, atomically. */
export function exportModel(source: string, opts: ExportOptions): ExportResult {
  if ((opts.format ?? 'hf') !== 'hf') throw new UsageError(`--format ${opts.format}: only 'hf' is supported`);
  const out = resolve(opts.out);
  if (resolve(source) === out) throw new UsageError('--out must differ from the source folder');
  let replacing = false;
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new Error(`${out}: exists and is not a folder`);
    if (readdirSync(out).length > 0) {
      if (!opts.force) throw new UsageError(`--out ${opts.out}: folder exists and is not empty (use --force to replace it)`);
      replacing = true;
    }
  }
  const maxShardSize = opts.maxShardSize !== undefined ? shardSizeOption(opts.maxShardSize) : undefined;
  const { model, kind, tokenizer, objective, manifest, sourceName } = loadSource(source, opts.stacks);
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const temp = join(parent, `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const saveOpts: SaveHFOptions = {};
    if (opts.dtype) saveOpts.dtype = SAFETENSORS_DTYPE[opts.dtype];
    if (opts.adapters) saveOpts.adapters = opts.adapters;
    if (objective !== undefined) saveOpts.objective = objective;
    if (maxShardSize !== undefined) saveOpts.maxShardSize = maxShardSize;
    saveHF(model, temp, saveOpts);
    // model.json: the StackWise model the folder holds (transformers ignores the file).
    const described = exportedManifest(model, { ...(manifest ? { base: manifest } : {}), source: sourceName ?? basename(resolve(source)), dtype: saveOpts.dtype ?? 'F32', adapters: saveOpts.adapters ?? 'separate' });
    writeFileSync(join(temp, MODEL_MANIFEST_FILE), JSON.stringify(described, null, 2) + '\n');
    if (tokenizer) saveHFTokenizer(tokenizer, temp, model.config.embedding.maxPositions !== undefined ? { modelMaxLength: model.config.embedding.maxPositions } : {});
    const files = readdirSync(temp).sort();
    if (replacing) {
      const old = `${temp}.old`;
      renameSync(out, old);
      renameSync(temp, out);
      rmSync(old, { recursive: true, force: true });
    } else {
      if (existsSync(out)) rmSync(out, { recursive: true, force: true }); // an empty folder
      renameSync(temp, out);
    }
    return { source: resolve(source), sourceKind: kind, out, files };
  } finally {
    rmSync(temp, { recursive: true, force: true });
    model.dispose();
  }
}

