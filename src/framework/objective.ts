// The training objective seam (re-exported by training/objective.ts): how a batch of raw token windows becomes model inputs, targets and
// per-token loss weights. The TrainingMachine only knows this interface; CLM lives here, MLM and
// masked diffusion live in ./objectives/ and register themselves with `registerObjective`.
//
// Contract (kept stable; other modules implement it):
// - `batch.ids` holds `batch.batch` rows of `batch.seqLen` token ids, row-major, uncorrupted.
//   `batch.sampleIds[b]` is a stable id of row b's sample (its position in the token stream), so
//   corruption can be deterministic from (sample id, r, seed).
// - `prepare` returns `inputIds` and `targets` of the same length as `batch.ids` (the model sees
//   [batch, seqLen]); `targets` holds -100 at unscored positions (IGNORE_INDEX). `weights`, when
//   present, has the same length and multiplies each position's negative log-likelihood.
// - The loss the machine minimises: without weights, the mean cross-entropy over scored
//   positions; with weights, Σ wᵢ·nllᵢ (reduction 'sum'): the weights carry the whole
//   normalisation (MDLM's 1/r and the 1/N of the mean), as src/training/objectives/loss.ts does.
// - `prepare` must be a pure function of its arguments (no hidden random state): exact resume
//   and evaluation replay depend on it. It must not modify `batch.ids`.

import type { MaskRatioSpec } from './specs/batch.js';
import type { Objective as ObjectiveKind } from './specs/objective.js';

/** The objectives' names (OBJECTIVES in specs/objective.ts), as the objective registry knows them. */
export type ObjectiveName = ObjectiveKind;

/** Targets equal to this are not scored (the PyTorch convention). */
export const IGNORE_INDEX = -100;

export interface ObjectiveBatch {
  /** [batch, seqLen] token ids, row-major. */
  ids: Int32Array;
  batch: number;
  seqLen: number;
  /** One stable id per row (e.g. the window's start in the token stream). */
  sampleIds: number[];
}

export interface ObjectiveContext {
  /** Global normalized time of the step, in [0, 1]. */
  t: number;
  /** Global training step (evaluation passes the step it runs at). */
  step: number;
  /** Seed for corruption; constant over a run (derived from training.seed). */
  seed: number;
  /** The [MASK] id (required by mlm and diffusion). */
  maskTokenId?: number;
  vocabSize: number;
  /**
   * Time-as-depth: the index, in the final rack, of the stack being trained (set by the machine
   * when the model grows; a `{ kind: 'depth' }` mask reads its noise level from it).
   */
  depthStack?: number;
}

export interface PreparedBatch {
  /** What the model reads, [batch, seqLen]. */
  inputIds: Int32Array;
  /** What it is scored against, [batch, seqLen]; IGNORE_INDEX (-100) where not scored. */
  targets: Int32Array;
  /** Per-position loss weights, [batch, seqLen] (optional). */
  weights?: Float32Array;
  /**
   * The noise (mask) ratio r of each row, [batch] (masked diffusion): what a model with a time
   * embedding (time-as-input) reads alongside the ids.
   */
  ratios?: ArrayLike<number>;
}

export interface Objective {
  readonly name: ObjectiveName;
  prepare(batch: ObjectiveBatch, ctx: ObjectiveContext): PreparedBatch;
}

/** What a factory receives: the data plane of the current phase, resolved. */
export interface ObjectiveFactoryOptions {
  /** Mask ratio spec of the data plane (mlm/diffusion; defaulted by the config). */
  mask?: MaskRatioSpec;
  maskTokenId?: number;
  vocabSize: number;
  /** Every other field of the resolved data plane, for objective-specific settings. */
  data?: Readonly<Record<string, unknown>>;
}

export type ObjectiveFactory = (options: ObjectiveFactoryOptions) => Objective;

/**
 * Causal language modelling: the model reads the window and predicts each next token; the last
 * position of a row has no next token inside the window and is not scored.
 */
export class ClmObjective implements Objective {
  readonly name = 'clm' as const;

  prepare(batch: ObjectiveBatch, _ctx?: ObjectiveContext): PreparedBatch {
    const { ids, batch: B, seqLen: S } = batch;
    checkObjectiveBatch(batch, 'clm');
    const targets = new Int32Array(B * S);
    for (let b = 0; b < B; b++) {
      const row = b * S;
      for (let i = 0; i + 1 < S; i++) targets[row + i] = ids[row + i + 1]!;
      targets[row + S - 1] = IGNORE_INDEX;
    }
    return { inputIds: ids.slice(), targets };
  }
}

/** Checks the shape fields of a batch; objectives call it first. */
export function checkObjectiveBatch(batch: ObjectiveBatch, who: string): void {
  const { ids, batch: B, seqLen: S, sampleIds } = batch;
  if (!Number.isInteger(B) || B < 1 || !Number.isInteger(S) || S < 1) {
    throw new RangeError(`objective '${who}': batch and seqLen must be positive integers, found ${B} and ${S}`);
  }
  if (!(ids instanceof Int32Array) || ids.length !== B * S) {
    throw new RangeError(`objective '${who}': ids must be an Int32Array of batch × seqLen = ${B * S} ids, found ${ids instanceof Int32Array ? ids.length : typeof ids}`);
  }
  if (!Array.isArray(sampleIds) || sampleIds.length !== B) {
    throw new RangeError(`objective '${who}': sampleIds must hold one id per row (${B}), found ${Array.isArray(sampleIds) ? sampleIds.length : typeof sampleIds}`);
  }
}

/** Checks what an objective returned against its batch (the machine calls this every step). */
export function checkPreparedBatch(prepared: PreparedBatch, batch: ObjectiveBatch, who: string): void {
  const n = batch.batch * batch.seqLen;
  const where = `objective '${who}'`;
  if (!(prepared.inputIds instanceof Int32Array) || prepared.inputIds.length !== n) {
    throw new Error(`${where}: inputIds must be an Int32Array of ${n} ids (batch ${batch.batch} × seqLen ${batch.seqLen})`);
  }
  if (!(prepared.targets instanceof Int32Array) || prepared.targets.length !== n) {
    throw new Error(`${where}: targets must be an Int32Array of ${n} ids (batch ${batch.batch} × seqLen ${batch.seqLen})`);
  }
  if (prepared.weights !== undefined && (!(prepared.weights instanceof Float32Array) || prepared.weights.length !== n)) {
    throw new Error(`${where}: weights must be a Float32Array of ${n} values when given`);
  }
  if (prepared.ratios !== undefined) {
    if (prepared.ratios.length !== batch.batch) throw new Error(`${where}: ratios must hold one noise ratio per row (${batch.batch}), found ${prepared.ratios.length}`);
    for (let b = 0; b < batch.batch; b++) {
      const r = prepared.ratios[b]!;
      if (!(r >= 0 && r <= 1)) throw new Error(`${where}: ratios[${b}] must be a noise ratio in [0, 1], found ${r}`);
    }
  }
}

const factories = new Map<ObjectiveName, ObjectiveFactory>([['clm', () => new ClmObjective()]]);

/** Makes an objective available by name (the objectives module registers mlm and diffusion). */
export function registerObjective(name: ObjectiveName, factory: ObjectiveFactory): void {
  factories.set(name, factory);
}

export function hasObjective(name: ObjectiveName): boolean {
  return factories.has(name);
}

/** Builds the named objective; `extra` factories (e.g. given to a TrainingMachine) win over registered ones. */
export function createObjective(
  name: ObjectiveName,
  options: ObjectiveFactoryOptions,
  extra?: Partial<Record<ObjectiveName, ObjectiveFactory>>,
): Objective {
  const factory = extra?.[name] ?? factories.get(name);
  if (!factory) {
    const known = [...new Set([...factories.keys(), ...Object.keys(extra ?? {})])].join(', ');
    throw new Error(
      `objective '${name}' has no implementation registered (available: ${known}); ` +
        `import the objectives module (src/training/objectives) or pass a factory in the machine's 'objectives' option`,
    );
  }
  const objective = factory(options);
  if (objective.name !== name) throw new Error(`objective factory for '${name}' returned an objective named '${objective.name}'`);
  return objective;
}
