/**
 * `loadModel(checkpointOrRun)`: the model of a checkpoint, built from the checkpoint's model
 * manifest (model.json) and loaded with its weights (model.safetensors). Nothing else is read: no
 * config, no corpus, no tokenizer, no replay of the training phases. `sample`, `eval`, `export`
 * and `inspect` load runs with it; a resumed run builds its model the same way
 * (`buildModelFromManifest` + `loadManifestWeights`, see machine-checkpoint.ts).
 *
 * Checkpoints written before checkpoints held a manifest are refused with a message saying so.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Model } from '../../nn/index.js';
import { StateDictError } from '../../nn/index.js';
import { CheckpointError, isRunFolder, latestCheckpoint, readCheckpoint, type LoadedCheckpoint } from '../../io/checkpoint.js';
import { parseSafetensors } from '../../io/safetensors.js';
import { safeSource } from '../checkpoint-io.js';
import { MODEL_MANIFEST_FILE, buildModelFromManifest, checkManifest, finishLoadedModel, type ModelManifest } from './manifest.js';

/** The checkpoint folder a target names (a run folder → its newest checkpoint) and its run folder. */
export function resolveCheckpoint(target: string): { checkpoint: string; runDir: string } {
  if (!existsSync(target)) throw new Error(`${target}: no such run folder or checkpoint`);
  if (!statSync(target).isDirectory()) throw new Error(`${target}: not a folder (expected a run folder or a checkpoint folder)`);
  if (existsSync(join(target, 'checkpoint.json'))) return { checkpoint: target, runDir: resolve(target, '..', '..') };
  if (!isRunFolder(target) && !existsSync(join(target, 'config.yaml'))) throw new Error(`${target}: not a StackWise run folder (no .stackwise-run / config.yaml) nor a checkpoint (no checkpoint.json)`);
  const latest = latestCheckpoint(target);
  if (!latest) throw new Error(`${target}: the run folder holds no complete checkpoint yet`);
  return { checkpoint: latest.path, runDir: target };
}

/** The manifest of a read checkpoint; refuses a checkpoint written before checkpoints had one. */
export function manifestOf(loaded: LoadedCheckpoint, path: string): ModelManifest {
  const bytes = loaded.files.get(MODEL_MANIFEST_FILE);
  if (!bytes) {
    throw new CheckpointError(
      'incompatible',
      path,
      `checkpoint ${path} has no model manifest (${MODEL_MANIFEST_FILE}): it was written by an earlier StackWise, before checkpoints described their model, ` +
        'and this build loads models from the manifest only (no replay of the training config); retrain the run, or load it with the StackWise version that wrote it',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new CheckpointError('corrupt', path, `checkpoint ${path}: ${MODEL_MANIFEST_FILE} is not valid JSON (${(e as Error).message})`);
  }
  return checkManifest(json, join(path, MODEL_MANIFEST_FILE));
}

/**
 * Copies a checkpoint's weights into `model` (strict: every parameter, nothing else), then marks
 * merged adapters and sets ramp gates as the manifest says (`gates: false` leaves the gates to
 * the caller, e.g. a resumed run's model plane).
 */
export function loadManifestWeights(model: Model, manifest: ModelManifest, loaded: LoadedCheckpoint, path: string, opts: { gates?: boolean } = {}): void {
  const file = join(path, 'model.safetensors');
  const bytes = loaded.files.get('model.safetensors');
  if (!bytes) throw new CheckpointError('truncated', path, `checkpoint ${path} has no model.safetensors`);
  try {
    // Views into the file's bytes, decoded tensor by tensor as they are copied (safeSource).
    const sources = new Map([...parseSafetensors(bytes, file).tensors].map(([name, s]) => [name, safeSource(s)] as const));
    model.loadStateDict(sources);
  } catch (error) {
    if (error instanceof StateDictError) throw new CheckpointError('incompatible', file, `checkpoint weights do not fit the model its manifest describes: ${error.message}`);
    throw error;
  }
  if (opts.gates === false) {
    finishLoadedModel(model, { ...manifest, rack: { stacks: manifest.rack.stacks.map((s) => ({ ...s, ramp: null })) } });
  } else {
    finishLoadedModel(model, manifest);
  }
}

export interface LoadedModel {
  model: Model;
  manifest: ModelManifest;
  /** The checkpoint folder read. */
  checkpoint: string;
  /** Its run folder (the checkpoint's grandparent). */
  runDir: string;
  /** The step the checkpoint was written at. */
  step: number;
  /** The checkpoint's training state (JSON), for what the run recorded beyond the model. */
  state: unknown;
  /** The checkpoint's verified files (model.safetensors, model.json, stackwise-tokenizer.json, …). */
  files: ReadonlyMap<string, Uint8Array>;
}

export interface LoadModelOptions {
  /** Engine backend to build the model on (default: the default backend). */
  backend?: string;
}

/**
 * The model of a run folder (its newest checkpoint) or of a checkpoint folder, in eval mode; the
 * parameters that were training when the checkpoint was written are trainable, the rest frozen.
 */
export function loadModel(target: string, opts: LoadModelOptions = {}): LoadedModel {
  const { checkpoint, runDir } = resolveCheckpoint(target);
  const loaded = readCheckpoint<{ step?: number }>(checkpoint);
  const manifest = manifestOf(loaded, checkpoint);
  const model = buildModelFromManifest(manifest, opts.backend ? { backend: opts.backend } : {});
  try {
    loadManifestWeights(model, manifest, loaded, checkpoint);
    model.eval();
    // What was training when the checkpoint was written (inspect shows it); the rest frozen.
    const trainable = (loaded.manifest.state as { model?: { trainable?: unknown } } | undefined)?.model?.trainable;
    const names = new Set(Array.isArray(trainable) ? trainable : []);
    for (const [name, p] of model.namedParameters()) p.requiresGrad = names.has(name);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, manifest, checkpoint, runDir, step: loaded.manifest.step, state: loaded.manifest.state, files: loaded.files };
}
