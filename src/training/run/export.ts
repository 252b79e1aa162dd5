/**
 * Exporting a model as a Hugging Face folder (config.json + model.safetensors, plus
 * adapter_config.json + adapter_model.safetensors for LoRA adapters unless merged or dropped) that
 * transformers / PEFT load. The folder appears complete or not at all: it is written under a
 * temporary name next to the target and renamed.
 *
 * Sources: a Hugging Face folder (re-export: merge a PEFT adapter, change the dtype, …), a StackWise
 * run or checkpoint folder (its model manifest), and any source registered with
 * `registerExportSource`.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { loadHF, saveHF, type SaveHFOptions } from '../../io/hf/index.js';
import type { Model } from '../../nn/index.js';
import { loadModel } from '../model-manifest/index.js';
import { UsageError } from './errors.js';
import { checkStacksOption, withConfigPath } from './inspect.js';
import { isRunOrCheckpoint } from './load-run.js';

/** A loader for one kind of export source; returns null when `path` is not of its kind. */
export type ExportSource = (path: string) => { model: Model; description: string } | null;

const sources: { name: string; load: ExportSource }[] = [];

/** Lets other layers (training checkpoints, …) make their files exportable. Tried in order, before HF folders. */
export function registerExportSource(name: string, load: ExportSource): void {
  sources.push({ name, load });
}

// Training runs: a run folder (its newest checkpoint) or one checkpoint folder, built from the
// checkpoint's model manifest.
registerExportSource('a StackWise run folder or checkpoint', (path) => {
  if (!statSync(path).isDirectory() || !isRunOrCheckpoint(path)) return null;
  const loaded = loadModel(path);
  return { model: loaded.model, description: `${loaded.checkpoint} (step ${loaded.step})` };
});

export interface ExportOptions {
  out: string;
  format?: 'hf';
  dtype?: 'F32' | 'F16' | 'BF16';
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

function loadSource(source: string, stacks: number | number[] | undefined): { model: Model; kind: string } {
  if (!existsSync(source)) throw new Error(`${source}: no such file or folder`);
  for (const s of sources) {
    const r = s.load(source);
    if (r) return { model: r.model, kind: s.name };
  }
  if (statSync(source).isDirectory() && existsSync(join(source, 'config.json'))) {
    checkStacksOption(source, stacks);
    try {
      return { model: loadHF(source, stacks !== undefined ? { stacks } : {}).model, kind: 'hf' };
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
  const { model, kind } = loadSource(source, opts.stacks);
  const parent = dirname(out);
  mkdirSync(parent, { recursive: true });
  const temp = join(parent, `.${basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const saveOpts: SaveHFOptions = {};
    if (opts.dtype) saveOpts.dtype = opts.dtype;
    if (opts.adapters) saveOpts.adapters = opts.adapters;
    saveHF(model, temp, saveOpts);
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

