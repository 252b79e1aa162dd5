/**
 * `stackwise export <source> --format hf --out <folder>`: writes a model as a Hugging Face folder
 * (config.json + model.safetensors, plus adapter_config.json + adapter_model.safetensors for LoRA
 * adapters unless merged or dropped) that transformers / PEFT load. The folder appears complete
 * or not at all: it is written under a temporary name next to the target and renamed.
 *
 * Sources: a Hugging Face folder (re-export: merge a PEFT adapter, change the dtype, …) and any
 * source registered with `registerExportSource` (e.g. training checkpoints).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadHF, loadHFTokenizer, saveHF, saveHFTokenizer, type SaveHFOptions } from '../io/hf/index.js';
import type { Tokenizer } from '../data/index.js';
import type { Model } from '../nn/index.js';
import { checkStacksOption, withConfigPath } from './inspect.js';
import { UsageError, parseChoice, parseStacks, printJson, runCommand } from './output.js';
import { loadRun } from './sample.js';

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

// Training runs: a run folder (its newest checkpoint) or one checkpoint folder.
registerExportSource('a StackWise run folder or checkpoint', (path) => {
  const isRun = statSync(path).isDirectory()
    && ['checkpoint.json', '.stackwise-run', 'config.yaml'].some((f) => existsSync(join(path, f)));
  if (!isRun) return null;
  const run = loadRun(path);
  return { model: run.model, description: `${run.checkpoint} (step ${run.step})`, tokenizer: run.tokenizer, objective: run.objective };
});

export interface ExportOptions {
  out: string;
  format?: 'hf';
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

/** --dtype values: safetensors names and torch names. */
const EXPORT_DTYPES = ['F32', 'F16', 'BF16', 'float32', 'float16', 'bfloat16'] as const;
export type ExportDtype = (typeof EXPORT_DTYPES)[number];
const SAFETENSORS_DTYPE: Record<ExportDtype, 'F32' | 'F16' | 'BF16'> = { F32: 'F32', F16: 'F16', BF16: 'BF16', float32: 'F32', float16: 'F16', bfloat16: 'BF16' };

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

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('export a model as a Hugging Face folder (config.json + model.safetensors [+ PEFT adapter] + tokenizer.json, tokenizer_config.json, special_tokens_map.json) that transformers loads')
    .argument('<source>', 'model to export: a Hugging Face folder (or a registered checkpoint source)')
    .requiredOption('--out <folder>', 'folder to write (created; replaced only with --force)')
    .option('--format <format>', 'output format (only hf)', parseChoice(['hf'] as const), 'hf')
    .option('--dtype <dtype>', 'weight dtype in the file: F32 / float32 (default), F16 / float16 or BF16 / bfloat16; quantized (NF4, int8, …) layers are dequantized to it', parseChoice(EXPORT_DTYPES))
    .option('--adapters <mode>', 'LoRA adapters: separate (PEFT files, default), merge (fold into the weights) or drop', parseChoice(['separate', 'merge', 'drop'] as const))
    .option('--stacks <K|a,b,…>', 'stack grouping used while loading an HF folder (does not change the export)', parseStacks)
    .option('--force', 'replace a non-empty --out folder')
    .option('--json', 'print one JSON object describing what was written')
    .addHelpText('after', '\nExit codes: 0 ok, 1 unreadable/unsupported source or write failure, 2 usage error.')
    .action(async (source: string, opts: ExportOptions & { json?: boolean }) => {
      await runCommand('export', opts, () => {
        const r = exportModel(source, opts);
        if (opts.json) printJson({ ok: true, ...r });
        else process.stdout.write(`exported ${r.source} (${r.sourceKind}) to ${r.out}: ${r.files.join(', ')}\n`);
      });
    });
}
