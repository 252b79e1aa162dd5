/**
 * Exporting a model as a Hugging Face folder (config.json + model.safetensors, plus
 * adapter_config.json + adapter_model.safetensors for LoRA adapters unless merged or dropped, plus
 * the tokenizer as tokenizer.json + tokenizer_config.json + special_tokens_map.json) that
 * transformers / PEFT / tokenizers load. Every run exports: quantized layers (NF4, int8, …) are
 * dequantized to --dtype; what Hugging Face cannot represent is refused naming the condition. The
 * folder appears complete or not at all: it is written under a temporary name next to the target
 * and renamed.
 *
 * Sources: a Hugging Face folder (re-export: merge a PEFT adapter, change the dtype, …), a StackWise
 * run or checkpoint folder (its model manifest), and any source registered with
 * `registerExportSource`.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { loadHF, loadHFTokenizer, saveHF, saveHFTokenizer, type SaveHFOptions } from '../../io/hf/index.js';
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
  return { model: run.model, description: `${run.checkpoint} (step ${run.step})`, tokenizer: run.tokenizer, objective: run.objective };
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
      return { model: loadHF(source, stacks !== undefined ? { stacks } : {}).model, description: source, kind: 'hf', ...(tokenizer ? { tokenizer } : {}) };
    } catch (e) {
      throw withConfigPath(source, e);
    }
  }
  const known = ['a Hugging Face folder (config.json + model.safetensors)', ...sources.map((s) => s.name)];
  throw new Error(`${source}: not an exportable model (expected ${known.join(' or ')})`);
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
  const { model, kind, tokenizer, objective } = loadSource(source, opts.stacks);
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const temp = join(parent, `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const saveOpts: SaveHFOptions = {};
    if (opts.dtype) saveOpts.dtype = SAFETENSORS_DTYPE[opts.dtype];
    if (opts.adapters) saveOpts.adapters = opts.adapters;
    if (objective !== undefined) saveOpts.objective = objective;
    saveHF(model, temp, saveOpts);
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

