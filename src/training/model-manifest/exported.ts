/**
 * The model manifest of an exported Hugging Face folder: `stackwise export` writes model.json
 * beside config.json, so the folder still says what StackWise model it was — the stack plan and
 * each stack's identity, the adapters (separate as PEFT files, merged into the weights, or
 * dropped) and how each stack was stored in the run — while transformers reads config.json and
 * the weights and ignores the extra file.
 *
 * The manifest describes the folder as written: every stack's storage is fp32 (Hugging Face
 * weights are plain floats; a quantized stack was dequantized), and only adapters that are in the
 * folder (PEFT files) are listed. `export` records what the export changed. Loading such a folder
 * groups its layers into the manifest's stacks and checks the manifest against config.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model, ModelConfig } from '../../nn/index.js';
import { MODEL_MANIFEST_FILE, ManifestError, checkManifest, describeModel, type ModelManifest, type StorageManifest } from './manifest.js';

export interface ExportRecord {
  /** What was exported (a run's checkpoint, a Hugging Face folder). */
  source: string;
  /** Weight dtype of the files. */
  dtype: 'F32' | 'F16' | 'BF16';
  /** What happened to LoRA adapters: PEFT files beside the weights, folded into them, or left out. */
  adapters: 'separate' | 'merge' | 'drop';
  /** Each stack's storage in the source model (the folder's weights are its dequantized values). */
  source_storage: StorageManifest[];
  /** Adapters folded into the weights ('merge') or left out ('drop'), by model path. */
  merged_adapters: string[];
  dropped_adapters: string[];
}

/** A manifest with the record of the export that wrote it. */
export type ExportedManifest = ModelManifest & { export: ExportRecord };

/**
 * The manifest of the folder an export of `model` writes: the model as the folder holds it (fp32
 * stacks, the adapters that travel as PEFT files), with the export's record. `base` is the source's
 * own manifest when it has one (a run's checkpoint: stack ids and storage as trained).
 */
export function exportedManifest(model: Model, opts: { base?: ModelManifest; source: string; dtype: ExportRecord['dtype']; adapters: ExportRecord['adapters'] }): ExportedManifest {
  const stackIds = opts.base?.rack.stacks.map((s) => s.id);
  const now = describeModel(model, stackIds && stackIds.length === model.rack.numStacks ? { stackIds } : {});
  const sourceStorage = now.rack.stacks.map((s) => s.storage);
  const inRack = now.rack.stacks.flatMap((s, i) => s.adapters.map((a) => `rack.stacks.${i}.${a.path}`));
  const all = [...inRack, ...now.adapters.map((a) => a.path)];
  const travel = opts.adapters === 'separate';
  return {
    ...now,
    rack: { stacks: now.rack.stacks.map((s) => ({ ...s, storage: { format: 'fp32' }, adapters: travel ? s.adapters.map((a) => ({ ...a, merged: false })) : [] })) },
    adapters: travel ? now.adapters.map((a) => ({ ...a, merged: false })) : [],
    export: {
      source: opts.source,
      dtype: opts.dtype,
      adapters: opts.adapters,
      source_storage: sourceStorage,
      merged_adapters: opts.adapters === 'merge' ? all : [],
      dropped_adapters: opts.adapters === 'drop' ? all : [],
    },
  };
}

/** The block fields config.json also states: a manifest that disagrees on one does not belong to the folder. */
const SIZE_FIELDS = ['nHeads', 'nKvHeads', 'headDim', 'dFF', 'ffn', 'norm', 'normPosition', 'qkvBias', 'outBias', 'ffnBias', 'positional'] as const;

/**
 * The manifest of a Hugging Face folder (model.json), checked against its config.json (`config`:
 * our reading of it, with any stack grouping); undefined when the folder has none.
 */
export function readFolderManifest(folder: string, config: ModelConfig): ModelManifest | undefined {
  const file = join(folder, MODEL_MANIFEST_FILE);
  if (!existsSync(file)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ManifestError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const m = checkManifest(json, file);
  const cfg = join(folder, 'config.json');
  const a = m.architecture;
  const disagree = (field: string, mine: unknown, theirs: unknown) =>
    new ManifestError(`${file}: ${field} is ${JSON.stringify(mine)} but ${cfg} gives ${JSON.stringify(theirs)}; the manifest does not describe this folder's model (remove ${MODEL_MANIFEST_FILE} to load the folder as config.json says)`);
  if (a.family !== config.family) throw disagree('architecture.family', a.family, config.family);
  if (a.vocab_size !== config.vocabSize) throw disagree('architecture.vocab_size', a.vocab_size, config.vocabSize);
  if (a.d_model !== config.dModel) throw disagree('architecture.d_model', a.d_model, config.dModel);
  const blocks = m.rack.stacks.flatMap((s) => s.blocks);
  const theirs = config.stacks.flatMap((s) => Array.from({ length: s.nBlocks }, () => s.block));
  if (blocks.length !== theirs.length) throw disagree('the number of blocks (over rack.stacks)', blocks.length, theirs.length);
  blocks.forEach((b, i) => {
    for (const k of SIZE_FIELDS) {
      const mine = b[k] ?? (k === 'nKvHeads' ? b.nHeads : undefined);
      const other = theirs[i]![k] ?? (k === 'nKvHeads' ? theirs[i]!.nHeads : undefined);
      if (mine !== undefined && other !== undefined && mine !== other) throw disagree(`block ${i} ${k}`, mine, other);
    }
  });
  m.rack.stacks.forEach((s, i) => {
    if (s.storage.format !== 'fp32') throw new ManifestError(`${file}: rack.stacks[${i}].storage.format is ${s.storage.format}; an exported folder holds float weights (fp32 storage; the trained storage is in export.source_storage)`);
  });
  return m;
}
