// The TrainingMachine's checkpoints: what a checkpoint holds (the TrainingState manifest, model
// weights and model manifest, optimizer state) and the pieces of a resume — finding the checkpoint
// a target names, reading it with the config check, building the model from its manifest (as
// loadModel does), giving the hooks their saved state and loading the optimizer state.
//
// Separate from the step loop because it is the run's on-disk contract: every field a resumed run
// needs to continue bit for bit is listed here in one place. The machine keeps the order of a
// resume (model, hooks, phase, optimizer; see machine.ts); tensors ↔ safetensors live in
// checkpoint-io.ts, folders and manifests in src/io/checkpoint.ts. Package-internal, except the
// TrainingState type (exported through machine.ts).

import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { RUN_TOKENIZER_FILE, runTokenizerPath, type RngState } from '../data/index.js';
import { ModelAdapter, type JsonValue } from '../framework/index.js';
import {
  CheckpointError,
  isRunFolder,
  latestCheckpoint,
  listCheckpoints,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointInfo,
  type LoadedCheckpoint,
} from '../io/checkpoint.js';
import { diffConfigs, hashedView, type ParsedConfig, type ResolvedPhase } from './config/resolve.js';
import { loadOptimizerState, serializeOptimizer, streamTensors } from './checkpoint-io.js';
import { MODEL_MANIFEST_FILE, buildModelFromManifest, describeModel } from './model-manifest/manifest.js';
import { loadManifestWeights, manifestOf } from './model-manifest/load-model.js';
import type { RunMetricsState, RunStats } from './machine-stats.js';
import type { MachineView, PhaseContext } from './hooks.js';

/** The JSON training state inside every checkpoint manifest. */
export interface TrainingState {
  step: number;
  t: number;
  total_steps: number;
  phase_index: number;
  phase_name: string;
  phase_ended: boolean;
  config_hash: string;
  config: unknown;
  schedule: unknown;
  rng: { seed: number; named: Record<string, RngState> };
  data_cursor: { step: number; accumulation_steps: number; micro_batches_drawn: number; source?: JsonValue };
  model: { config: unknown; trainable: string[]; parameters: number; stack_births: number[] };
  optimizer: { kind: string; step: number; scalars: Record<string, Record<string, number>>; groups: { name: string; lr_scale: number; weight_decay: number; params: string[] }[] };
  hooks: Record<string, JsonValue>;
  metrics: RunMetricsState;
  /**
   * The current phase's task and resolved data plane (objective, mask, tokenizer, corpus and
   * split, seq_len, batch_size): what sampling and evaluation need besides the model, so that a
   * checkpoint is read without its run's config.
   */
  phase_data: { task: string | null; data: JsonValue | null };
}

/**
 * The tokenizer file of a phase's data plane — a trained BPE (its path, else the run folder's
 * RUN_TOKENIZER_FILE) or a Hugging Face tokenizer (the run folder's copy); a checkpoint keeps a
 * copy under RUN_TOKENIZER_FILE. The GPT-2 vocabulary ships with StackWise: no file.
 */
function tokenizerFile(data: ResolvedPhase['data'], runDir: string): string | undefined {
  const tok = data?.tokenizer;
  if (!tok || (tok.kind !== 'bpe' && tok.kind !== 'hf')) return undefined;
  const path = (tok.kind === 'bpe' ? tok.path : undefined) ?? runTokenizerPath(runDir);
  return existsSync(path) ? path : undefined;
}

/** @internal The machine's private state a checkpoint records (the rest is public on the machine). */
export interface MachineCheckpointState {
  phaseEnded: boolean;
  rngs: ReadonlyMap<string, { getState(): RngState }>;
  stats: RunStats;
  /** Metrics-log records to keep on resume. */
  records: number;
}

/** @internal The name of a parameter that holds NaN or Inf (a checkpoint must not keep it). */
export function nonFiniteParameter(model: ModelAdapter): string | undefined {
  for (const [name, p] of model.namedParameters()) {
    if (p.dtype !== 'int32' && !Number.isFinite(E.sumOfSquares(p))) return name;
  }
  return undefined;
}

/** @internal Writes a checkpoint of `machine` at its current step into its run folder. */
export function writeMachineCheckpoint(machine: MachineView, runDir: string, run: MachineCheckpointState): CheckpointInfo {
  const { model, optimizer, controller, schedule } = machine;
  const step = controller.currentStep;
  const named = model.namedParameters();
  const nameOf = model.nameOf();
  const name = (p: Tensor) => nameOf.get(p) ?? p.describe();
  const opt = serializeOptimizer(optimizer, name);
  const hooks: Record<string, JsonValue> = {};
  for (const h of machine.hookList) {
    if (!h.saveState) continue;
    if (!h.name) throw new Error('TrainingMachine: a hook with saveState() needs a name');
    hooks[h.name] = h.saveState();
  }
  const dataState = machine.data.saveState?.();
  const phaseIndex = machine.phaseIndex;
  const resolved = machine.resolvedPhase(Math.max(0, phaseIndex));
  const state: TrainingState = {
    step,
    t: controller.t,
    total_steps: controller.totalSteps,
    phase_index: phaseIndex,
    phase_name: phaseIndex >= 0 ? schedule.phases[phaseIndex]!.name : '',
    phase_ended: run.phaseEnded,
    config_hash: machine.parsed.hash,
    config: hashedView(machine.config),
    schedule: schedule.toJSON(),
    rng: { seed: machine.seed, named: Object.fromEntries([...run.rngs].map(([k, r]) => [k, r.getState()])) },
    data_cursor: { step, accumulation_steps: optimizer.accumulationSteps, micro_batches_drawn: run.stats.microBatches, ...(dataState !== undefined ? { source: dataState } : {}) },
    model: {
      config: model.model.config,
      trainable: model.trainableParameters().map(([n]) => n),
      parameters: model.numParameters(),
      stack_births: model.stackBirths(),
    },
    optimizer: {
      kind: opt.kind,
      step: opt.step,
      scalars: opt.scalars,
      groups: optimizer.groups.map((g) => ({ name: g.name, lr_scale: g.lrScale, weight_decay: g.weightDecay, params: g.paramNames })),
    },
    hooks,
    metrics: run.stats.toState(run.records),
    phase_data: { task: resolved.task ?? null, data: (resolved.data ?? null) as JsonValue | null },
  };
  const tokenizer = tokenizerFile(resolved.data, runDir);
  // The model manifest: the model can be built from the checkpoint alone (model-manifest/).
  const manifest = describeModel(model.model, { stackIds: machine.modelPlane?.stackIds() });
  return writeCheckpoint(
    runDir,
    step,
    {
      'model.safetensors': streamTensors(named, { format: 'stackwise' }),
      'optimizer.safetensors': opt.file,
      [MODEL_MANIFEST_FILE]: Buffer.from(JSON.stringify(manifest, null, 1) + '\n', 'utf8'),
      ...(tokenizer ? { [RUN_TOKENIZER_FILE]: new Uint8Array(readFileSync(tokenizer)) } : {}),
    },
    state,
    { keepLast: machine.config.training.keep_last },
  );
}

/** @internal The checkpoint folder a resume target names ('latest', a run folder or a checkpoint folder); undefined = none yet. */
export function resumeTargetPath(target: string, runDir: string | undefined): string | undefined {
  if (target === 'latest') {
    if (!runDir) throw new Error("TrainingMachine: resume 'latest' needs a run folder (training.run_dir or options.runDir)");
    return latestCheckpoint(runDir)?.path;
  }
  if (isRunFolder(target) && !existsSync(join(target, 'checkpoint.json'))) {
    const latest = latestCheckpoint(target);
    if (!latest) throw new CheckpointError('missing', target, `run folder ${target} holds no complete checkpoint`);
    return latest.path;
  }
  return target;
}

/**
 * @internal Reads and verifies checkpoint `path` (a damaged one names the earlier checkpoints to
 * fall back to) and checks it was written by this config (else lists what differs).
 */
export function readResumeCheckpoint(path: string, runDir: string | undefined, parsed: ParsedConfig): LoadedCheckpoint<TrainingState> {
  let loaded;
  try {
    loaded = readCheckpoint<TrainingState>(path);
  } catch (error) {
    const root = runDir ?? join(path, '..', '..');
    const earlier = error instanceof CheckpointError && isRunFolder(root) ? listCheckpoints(root).filter((c) => c.path !== path) : [];
    if (error instanceof CheckpointError && earlier.length > 0) {
      error.message += `; earlier checkpoints: ${earlier.map((c) => c.path).join(', ')} (resume from one of them explicitly)`;
    }
    throw error;
  }
  const state = loaded.manifest.state;
  if (state.config_hash !== parsed.hash) {
    const diffs = diffConfigs(state.config, hashedView(parsed.config));
    const shown = diffs.slice(0, 8).map((d) => `  ${d.path}: checkpoint has ${JSON.stringify(d.a) ?? 'nothing'}, this config has ${JSON.stringify(d.b) ?? 'nothing'}`);
    throw new CheckpointError(
      'config-mismatch',
      path,
      `checkpoint ${path} was written by a different config (${diffs.length} difference${diffs.length === 1 ? '' : 's'}):\n${shown.join('\n')}${diffs.length > 8 ? `\n  … and ${diffs.length - 8} more` : ''}\n` +
        'resume with the same config, or start a new run folder',
    );
  }
  return loaded;
}

/**
 * @internal The model of a checkpoint for its resumed run: built from the checkpoint's model
 * manifest and loaded with its weights as `loadModel` does, the parameters that were training
 * trainable (hooks may change them within a phase), the phase each stack appeared in as saved.
 */
export function modelFromCheckpoint(loaded: LoadedCheckpoint<TrainingState>, path: string, backend: string): ModelAdapter {
  const state = loaded.manifest.state;
  const manifest = manifestOf(loaded, path);
  const model = buildModelFromManifest(manifest, { backend });
  try {
    loadManifestWeights(model, manifest, loaded, path);
    const trainable = new Set(state.model.trainable);
    const params = new Map(model.namedParameters());
    for (const n of trainable) if (!params.has(n)) throw new CheckpointError('incompatible', path, `checkpoint lists trainable parameter '${n}', which the model its manifest describes does not have`);
    for (const [n, p] of params) p.requiresGrad = trainable.has(n);
    const adapter = new ModelAdapter(model);
    adapter.restoreStackBirths(state.model.stack_births);
    return adapter;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/**
 * @internal Gives every hook its saved state (loadState), then calls onResume with the phase the
 * run is in (`ctx`); a hook's state without its hook, or a model plane whose stack identities
 * differ from the manifest's, is refused.
 */
export function restoreHookStates(machine: MachineView, loaded: LoadedCheckpoint<TrainingState>, path: string, ctx: PhaseContext | undefined): void {
  const saved = loaded.manifest.state.hooks;
  const hooks = machine.hookList;
  for (const name of Object.keys(saved)) {
    if (!hooks.some((h) => h.name === name && h.loadState)) {
      throw new CheckpointError('incompatible', path, `checkpoint ${path} holds the state of hook '${name}', which this machine does not have (hooks are code: pass the same hooks as the run that wrote it)`);
    }
  }
  for (const h of hooks) if (h.loadState && h.name && saved[h.name] !== undefined) h.loadState(saved[h.name]!);
  for (const h of hooks) h.onResume?.(machine, ctx);
  const ids = machine.modelPlane?.stackIds();
  const want = manifestOf(loaded, path).rack.stacks.map((s) => s.id);
  if (ids && JSON.stringify(ids) !== JSON.stringify(want)) {
    throw new CheckpointError('incompatible', path, `the model plane restored from checkpoint ${path} gives the stacks ids [${ids.join(', ')}], its model manifest [${want.join(', ')}]`);
  }
}

/** @internal Re-syncs the optimizer to the model's trainable parameters and loads its saved state. */
export function loadOptimizerFromCheckpoint(loaded: LoadedCheckpoint<TrainingState>, path: string, machine: MachineView): void {
  const { model, optimizer } = machine;
  const state = loaded.manifest.state;
  optimizer.sync(model);
  const nameOf = model.nameOf();
  loadOptimizerState(optimizer, loaded.files.get('optimizer.safetensors')!, state.optimizer, (p) => nameOf.get(p) ?? p.describe(), join(path, 'optimizer.safetensors'));
}
