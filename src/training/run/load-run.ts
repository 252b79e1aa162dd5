/**
 * `loadRun(checkpointOrRunOrHF)`: a trained model ready for sampling and evaluation — the model from
 * the checkpoint's manifest (`loadModel`), plus what the checkpoint recorded about the data it was
 * trained on (objective, mask token, tokenizer, corpus and split of the last phase) — and the
 * prompt helpers around it. Reads the checkpoint folder only: no config, no corpus. A Hugging Face
 * folder (config.json + safetensors + tokenizer.json) loads through `loadPretrained` instead: its
 * model and tokenizer, and no data plane.
 */
import { join } from 'node:path';
import { Gpt2Tokenizer, LEGACY_RUN_TOKENIZER_FILE, RUN_TOKENIZER_FILE, tokenizerFromJSON, type Tokenizer } from '../../data/index.js';
import type { ObjectiveName } from '../../framework/index.js';
import { STORAGE_FORMATS, type StorageFormat } from '../../engine/index.js';
import { isHFModelFolder, loadPretrained, readHFModelConfig } from '../../io/hf/index.js';
import { hasStackWiseMarkers } from '../../io/checkpoint.js';
import { quantizeTrunk, weightFormatOf, type Model } from '../../nn/index.js';
import type { TrainingState } from '../machine-checkpoint.js';
import type { ResolvedPhase } from '../config/resolve.js';
import { NoiseSchedule } from '../objectives/noise.js';
import { describeModel, loadModel, readFolderManifest, type ModelManifest } from '../model-manifest/index.js';
import { UsageError } from './errors.js';

/** The data plane a run's last phase trained with (as resolved from its config). */
export type RunDataPlane = NonNullable<ResolvedPhase['data']>;

/** A trained model ready for inference, with what it was trained on. */
export interface LoadedRun {
  /** Where the model came from: a StackWise checkpoint (its manifest) or a Hugging Face folder. */
  source: 'checkpoint' | 'hf';
  /** The run folder (for a Hugging Face folder: the folder itself). */
  runDir: string;
  /** The checkpoint folder read (for a Hugging Face folder: the folder itself). */
  checkpoint: string;
  /** The step the checkpoint was written at (0 for a Hugging Face folder). */
  step: number;
  /** The checkpoint's model manifest; for a Hugging Face folder, its model.json (an exported run) as loaded, else undefined. */
  manifest: ModelManifest | undefined;
  /** The data plane of the phase the checkpoint was written in (undefined: the run had none, or a Hugging Face folder). */
  data: RunDataPlane | undefined;
  objective: ObjectiveName;
  model: Model;
  /** undefined for a corpus of raw ids (synthetic): prompts are then ids separated by spaces. */
  tokenizer: Tokenizer | undefined;
  vocabSize: number;
  maskTokenId: number | undefined;
}

/** The run's tokenizer: the checkpoint's copy (BPE, Hugging Face) or the GPT-2 one, checked against the model's vocabulary. */
function runTokenizer(data: RunDataPlane | undefined, files: ReadonlyMap<string, Uint8Array>, checkpoint: string, vocab: number): Tokenizer | undefined {
  const tok = data?.tokenizer;
  if (!tok || tok.kind === 'none') return undefined;
  let tokenizer: Tokenizer;
  let where: string;
  if (tok.kind === 'gpt2') {
    tokenizer = new Gpt2Tokenizer();
    where = 'the GPT-2 tokenizer';
  } else {
    // Checkpoints written before the run tokenizer had its own name keep it as tokenizer.json.
    const name = files.has(RUN_TOKENIZER_FILE) || !files.has(LEGACY_RUN_TOKENIZER_FILE) ? RUN_TOKENIZER_FILE : LEGACY_RUN_TOKENIZER_FILE;
    const bytes = files.get(name);
    where = `tokenizer ${join(checkpoint, name)}`;
    if (!bytes) throw new Error(`${where}: missing (the checkpoint keeps the run's tokenizer file)`);
    tokenizer = tokenizerFromJSON(JSON.parse(Buffer.from(bytes).toString('utf8')), where);
  }
  if (tokenizer.vocabSize !== vocab) {
    throw new Error(`${where} has a vocabulary of ${tokenizer.vocabSize} tokens, but the model's embedding has ${vocab}: they do not belong together`);
  }
  return tokenizer;
}

export interface LoadRunOptions {
  /** Engine backend to build the model on (default: the default backend). */
  backend?: string;
  /**
   * Storage of the rack's linear weights (fp32 | fp16 | bf16 | nf4 | int8). A Hugging Face folder
   * is converted tensor by tensor as it is read (embeddings, norms, biases and the head stay
   * float32); a checkpoint's float32 stacks are quantized once loaded, and stacks it stores
   * quantized keep their format (the checkpoint holds only their codes). Default: as stored.
   */
  loadFormat?: StorageFormat;
}

/**
 * A Hugging Face folder as a LoadedRun: its model and tokenizer (`loadPretrained`); no training
 * record, so no data plane (evaluation needs text files). A folder written by `stackwise export`
 * carries the model manifest (model.json): its layers are grouped into the manifest's stacks,
 * the manifest is checked against config.json, and `manifest` describes the model as loaded
 * with the stacks' ids.
 */
function loadPretrainedAsRun(folder: string, opts: LoadRunOptions): LoadedRun {
  const folderManifest = readFolderManifest(folder, readHFModelConfig(folder));
  const p = loadPretrained(folder, {
    ...(opts.backend ? { backend: opts.backend } : {}),
    ...(opts.loadFormat ? { loadFormat: opts.loadFormat } : {}),
    ...(folderManifest ? { stacks: folderManifest.rack.stacks.map((s) => s.blocks.length) } : {}),
  });
  let manifest: ModelManifest | undefined;
  try {
    if (folderManifest) manifest = describeModel(p.model, { stackIds: folderManifest.rack.stacks.map((s) => s.id) });
  } catch (error) {
    p.model.dispose();
    throw error;
  }
  p.model.eval();
  const vocabSize = p.model.embedding.vocabSize;
  return { source: 'hf', runDir: folder, checkpoint: folder, step: 0, manifest, data: undefined, objective: p.objective, model: p.model, tokenizer: p.tokenizer, vocabSize, maskTokenId: p.tokenizer?.special.MASK };
}

/** A checkpoint's float32 stacks stored in `format` (quantized stacks keep theirs). */
export function storeFloatStacks(model: Model, format: StorageFormat): void {
  if (format === 'fp32') return;
  for (const stack of model.rack.stacks.toArray()) if (weightFormatOf(stack) === 'fp32') quantizeTrunk(stack, format);
}

/**
 * Loads the model of a run folder (newest checkpoint) or of a checkpoint folder, with its
 * tokenizer — or of a Hugging Face folder, with the folder's tokenizer.
 */
export function loadRun(target: string, opts: LoadRunOptions = {}): LoadedRun {
  if (opts.loadFormat !== undefined && !(STORAGE_FORMATS as readonly string[]).includes(opts.loadFormat)) {
    throw new UsageError(`--load-format ${String(opts.loadFormat)}: expected one of ${STORAGE_FORMATS.join(', ')}`);
  }
  if (isHFModelFolder(target)) return loadPretrainedAsRun(target, opts);
  const loaded = loadModel(target, opts.backend ? { backend: opts.backend } : {});
  const { model, checkpoint } = loaded;
  try {
    if (opts.loadFormat) storeFloatStacks(model, opts.loadFormat);
    const state = loaded.state as Partial<TrainingState>;
    if (!state.phase_data) throw new Error(`checkpoint ${checkpoint} does not record its data plane (phase_data): it was written by an earlier StackWise`);
    const data = (state.phase_data.data ?? undefined) as RunDataPlane | undefined;
    const objective = (state.phase_data.task ?? data?.objective ?? 'clm') as ObjectiveName;
    const vocabSize = model.embedding.vocabSize;
    const tokenizer = runTokenizer(data, loaded.files, checkpoint, vocabSize);
    const maskTokenId = data?.mask_token_id ?? tokenizer?.special.MASK ?? (tokenizer ? undefined : vocabSize - 1);
    return { source: 'checkpoint', runDir: loaded.runDir, checkpoint, step: loaded.step, manifest: loaded.manifest, data, objective, model, tokenizer, vocabSize, maskTokenId };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

export const MASK_TEXT = '[MASK]';

/** Prompt text → ids: with the tokenizer (each literal [MASK] becomes the mask id), or ids separated by spaces. */
export function encodePrompt(run: LoadedRun, prompt: string): number[] {
  if (!run.tokenizer) {
    const parts = prompt.trim().split(/[\s,]+/).filter((s) => s !== '');
    return parts.map((p) => {
      if (p === MASK_TEXT && run.maskTokenId !== undefined) return run.maskTokenId;
      const n = Number(p);
      if (!Number.isInteger(n) || n < 0 || n >= run.vocabSize) throw new UsageError(`--prompt: this model reads token ids (its corpus has no tokenizer): expected ids in [0, ${run.vocabSize}) separated by spaces, found '${p}'`);
      return n;
    });
  }
  const tok = run.tokenizer;
  const pieces = prompt.split(MASK_TEXT);
  const out: number[] = [];
  pieces.forEach((piece, i) => {
    if (i > 0) out.push(run.maskTokenId!);
    if (piece !== '') out.push(...tok.encode(piece));
  });
  return out;
}

export function decodeIds(run: LoadedRun, ids: readonly number[]): string {
  if (!run.tokenizer) return ids.join(' ');
  return run.tokenizer.decode(ids);
}

/**
 * The noise ladder of the depth unroll: the levels the run trained with (a `kind: depth` mask),
 * else the default ladder resampled to the rack's stacks.
 */
export function depthScheduleOf(run: LoadedRun): NoiseSchedule {
  const n = run.model.rack.numStacks;
  const mask = run.data?.mask;
  if (mask?.kind === 'depth') {
    if (mask.levels.length !== n) throw new Error(`the run's time-as-depth ladder has ${mask.levels.length} levels but its model has ${n} stacks (one level per stack)`);
    return new NoiseSchedule(mask.levels);
  }
  return NoiseSchedule.ladder(n);
}

/** True when `path` is a run folder or checkpoint folder `loadRun` can read. */
export function isRunOrCheckpoint(path: string): boolean {
  return hasStackWiseMarkers(path);
}
