// DataAdapter: token streams + the data plane of a phase → deterministic batches prepared by the
// objective, and the BatchSpec / DataSpec they satisfy. BatchSource is the seam the machine draws
// batches through; DataAdapter is its built-in implementation.

import { combineSeeds, rngFor, type TokenStream } from '../data/index.js';
import { checkPreparedBatch, createObjective, type Objective, type ObjectiveContext, type ObjectiveFactory, type ObjectiveName } from './objective.js';
import { DEFAULT_DIFFUSION_MASK, DEFAULT_MLM_MASK, type BatchSpec, type MaskRatioSpec } from './specs/batch.js';
import type { DataSpec } from './specs/data.js';
import type { Objective as ObjectiveKind } from './specs/objective.js';
import type { TokenData } from './data-source.js';
import type { JsonValue } from './json.js';

/** What the data plane of a phase asks for (the resolved `data` config has these fields). */
export interface DataPlaneSettings {
  seq_len: number;
  batch_size: number;
  objective: ObjectiveKind;
  mask?: MaskRatioSpec;
  mask_token_id?: number;
  eval_batches?: number;
  /** Training window starts: any position ('random', default) or multiples of seq_len ('aligned'). */
  windows?: 'random' | 'aligned';
  [key: string]: unknown;
}

/** One prepared batch, as arrays (the machine turns them into tensors inside the step scope). */
export interface DataBatch {
  batch: number;
  seqLen: number;
  inputIds: Int32Array;
  targets: Int32Array;
  weights?: Float32Array;
  /**
   * The noise (mask) ratio of each row (masked diffusion): a model with a time embedding reads
   * them (ForwardContext.timeRatios); ModelAdapter leaves them out for a model without one.
   */
  ratios?: ArrayLike<number>;
  sampleIds: number[];
  /** Input tokens in the batch (batch × seqLen). */
  tokens: number;
  /** Positions with a target (not -100). */
  scored: number;
}

/** Anything the machine can draw batches from. DataAdapter is the built-in one. */
export interface BatchSource {
  getBatchSpec(): BatchSpec;
  getDataSpec?(): DataSpec;
  /** Micro-batch `micro` of training step `step` at time t; must be deterministic in (step, micro). */
  trainBatch(step: number, micro: number, t: number): DataBatch;
  /** Validation batches (deterministic); empty when there is no validation data. */
  evalBatches?(step: number, t: number): DataBatch[];
  /** Called at each phase start with the phase's resolved data plane (optional). */
  withPlane?(plane: DataPlaneSettings): BatchSource;
  /** State saved in checkpoints, for sources with a cursor (DataAdapter has none: batches are functions of the step). */
  saveState?(): JsonValue;
  loadState?(state: JsonValue): void;
}

export interface DataAdapterOptions {
  /** Run seed; batches and corruption derive their seeds from it. */
  seed: number;
  /** Objective factories that win over the registered ones. */
  objectives?: Partial<Record<ObjectiveName, ObjectiveFactory>>;
  /** A ready objective (used instead of building one from the plane's objective name). */
  objective?: Objective;
  /**
   * Time-as-depth: the final-rack index of the stack being trained, read at every batch (the
   * machine passes its model plane's newest stack); undefined when the model does not grow.
   */
  depthStack?: () => number | undefined;
}

function countScored(targets: Int32Array): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] !== -100) n++;
  return n;
}

/** Batches of random windows from token streams, prepared by the plane's objective. */
export class DataAdapter implements BatchSource {
  readonly source: TokenData;
  readonly plane: DataPlaneSettings;
  readonly objective: Objective;
  readonly maskTokenId: number | undefined;
  private readonly options: DataAdapterOptions;
  private readonly dataSeed: number;
  private readonly objectiveSeed: number;

  constructor(source: TokenData, plane: DataPlaneSettings, options: DataAdapterOptions) {
    this.source = source;
    this.plane = { ...plane };
    this.options = options;
    this.dataSeed = combineSeeds(options.seed, 0xda7a);
    this.objectiveSeed = combineSeeds(options.seed, 0x0b1e);
    this.maskTokenId = plane.mask_token_id ?? source.maskTokenId;
    if (this.maskTokenId !== undefined && !(this.maskTokenId >= 0 && this.maskTokenId < source.vocabSize)) {
      throw new RangeError(`data.mask_token_id: expected a token id below the vocabulary size ${source.vocabSize}, found ${this.maskTokenId}`);
    }
    const mask = plane.objective === 'clm' ? undefined : (plane.mask ?? (plane.objective === 'mlm' ? DEFAULT_MLM_MASK : DEFAULT_DIFFUSION_MASK));
    if (mask) this.plane.mask = mask;
    this.objective = options.objective ?? createObjective(plane.objective, {
      ...(mask ? { mask } : {}),
      ...(this.maskTokenId !== undefined ? { maskTokenId: this.maskTokenId } : {}),
      vocabSize: source.vocabSize,
      data: this.plane,
    }, options.objectives);
    // One batch of distinct windows (next-token targets need one token more): a smaller corpus
    // would train on the same few tokens repeated in every row and pass for a real run.
    const oneBatch = plane.batch_size * plane.seq_len + (plane.objective === 'clm' ? 1 : 0);
    if (source.train.length < oneBatch) {
      throw new RangeError(`data: the training split has ${source.train.length} tokens, fewer than one batch needs: ` +
        `batch_size ${plane.batch_size} × seq_len ${plane.seq_len}${plane.objective === 'clm' ? ' + 1 (the next-token targets)' : ''} = ${oneBatch}; ` +
        'use a larger corpus, or lower data.batch_size / data.seq_len');
    }
  }

  /** The same streams under another phase's data plane. */
  withPlane(plane: DataPlaneSettings): DataAdapter {
    return new DataAdapter(this.source, plane, { ...this.options, objective: undefined });
  }

  getBatchSpec(): BatchSpec {
    const spec: BatchSpec = {
      batch_size: this.plane.batch_size,
      seq_len: this.plane.seq_len,
      vocab_size: this.source.vocabSize,
      objective: this.plane.objective,
    };
    if (this.plane.mask) spec.mask = this.plane.mask;
    if (this.source.padTokenId !== undefined) spec.pad_token_id = this.source.padTokenId;
    if (this.maskTokenId !== undefined && (this.maskTokenId !== spec.pad_token_id)) spec.mask_token_id = this.maskTokenId;
    return spec;
  }

  getDataSpec(): DataSpec {
    return { corpus: this.source.corpusName, tokenizer: this.source.tokenizerName, split: 'train', objective: this.plane.objective };
  }

  private prepare(stream: TokenStream, starts: number[], step: number, t: number): DataBatch {
    const S = this.plane.seq_len;
    const B = starts.length;
    const ids = new Int32Array(B * S);
    starts.forEach((start, b) => ids.set(stream.window(start, S), b * S));
    const batch = { ids, batch: B, seqLen: S, sampleIds: starts };
    const depthStack = this.options.depthStack?.();
    const ctx: ObjectiveContext = { t, step, seed: this.objectiveSeed, vocabSize: this.source.vocabSize, ...(this.maskTokenId !== undefined ? { maskTokenId: this.maskTokenId } : {}), ...(depthStack !== undefined ? { depthStack } : {}) };
    const prepared = this.objective.prepare(batch, ctx);
    checkPreparedBatch(prepared, batch, this.objective.name);
    const out: DataBatch = {
      batch: B,
      seqLen: S,
      inputIds: prepared.inputIds,
      targets: prepared.targets,
      sampleIds: starts,
      tokens: B * S,
      scored: countScored(prepared.targets),
    };
    if (prepared.weights) out.weights = prepared.weights;
    if (prepared.ratios) out.ratios = prepared.ratios;
    return out;
  }

  /**
   * Random windows; the starts depend only on (seed, step, micro), so resuming needs no state.
   * 'aligned' windows start at multiples of seq_len: a fixed set of samples (a sample's id is its
   * start), drawn with replacement.
   */
  trainBatch(step: number, micro: number, t: number): DataBatch {
    const S = this.plane.seq_len;
    const stream = this.source.train;
    const rng = rngFor(this.dataSeed, step, micro);
    const aligned = this.plane.windows === 'aligned';
    const positions = aligned ? Math.floor(stream.length / S) : stream.length - S + 1;
    const starts = Array.from({ length: this.plane.batch_size }, () => rng.nextInt(positions) * (aligned ? S : 1));
    return this.prepare(stream, starts, step, t);
  }

  /**
   * The first `eval_batches` batches of consecutive windows of the validation split. Batch j is
   * corrupted as if at step j, whatever step the evaluation runs at: a noise ratio drawn from the
   * training step would mask each evaluation differently and make them incomparable (ratios
   * still differ from batch to batch, so a uniform mask spec is covered). `t` still applies (a
   * mask schedule in t, time-as-depth).
   */
  evalBatches(_step: number, t: number): DataBatch[] {
    const val = this.source.validation;
    const S = this.plane.seq_len;
    if (!val || val.length < S) return [];
    const out: DataBatch[] = [];
    const max = this.plane.eval_batches ?? 8;
    let start = 0;
    while (out.length < max && start + S <= val.length) {
      const starts: number[] = [];
      while (starts.length < this.plane.batch_size && start + S <= val.length) {
        starts.push(start);
        start += S;
      }
      out.push(this.prepare(val, starts, out.length, t));
    }
    return out;
  }
}
