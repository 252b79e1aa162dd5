// Causal-LM batches from a token stream: windows of seqLen + 1 tokens, inputs = first seqLen,
// targets = the same window shifted by one.
import { rngFor } from './rng.js';
import type { TokenStream } from './token-stream.js';

export interface CausalBatch {
  batchSize: number;
  seqLen: number;
  /** [batchSize, seqLen], row-major. */
  inputs: Int32Array;
  /** [batchSize, seqLen], row-major: targets[b, i] = inputs[b, i + 1] within the window. */
  targets: Int32Array;
  /** Where each row's window starts in the stream (for debugging and exact replays). */
  starts: number[];
}

export interface CausalSamplerOptions {
  batchSize: number;
  seqLen: number;
  seed: number;
}

/**
 * Uniformly random windows. Batch k depends only on (seed, k), not on what was drawn before,
 * so resuming at step k needs no saved generator state: call batchAt(k) or setStep(k).
 */
export class CausalBatchSampler {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly seed: number;
  private step = 0;

  constructor(
    private readonly stream: TokenStream,
    options: CausalSamplerOptions,
  ) {
    const { batchSize, seqLen, seed } = options;
    for (const [name, value] of [['batchSize', batchSize], ['seqLen', seqLen]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`CausalBatchSampler: ${name} must be a positive integer, got ${value}`);
    }
    if (!Number.isInteger(seed)) throw new RangeError(`CausalBatchSampler: seed must be an integer, got ${seed}`);
    if (stream.length < seqLen + 1) {
      throw new RangeError(`CausalBatchSampler: the stream has ${stream.length} tokens, fewer than seqLen + 1 = ${seqLen + 1}`);
    }
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.seed = seed;
  }

  /** The step the next call to next() will produce. */
  get currentStep(): number {
    return this.step;
  }

  setStep(step: number): void {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`CausalBatchSampler: step must be a non-negative integer, got ${step}`);
    this.step = step;
  }

  next(): CausalBatch {
    return this.batchAt(this.step++);
  }

  batchAt(step: number): CausalBatch {
    const rng = rngFor(this.seed, step);
    const positions = this.stream.length - this.seqLen; // valid window starts: [0, positions)
    const starts: number[] = [];
    for (let b = 0; b < this.batchSize; b++) starts.push(rng.nextInt(positions));
    return windowsToBatch(this.stream, starts, this.seqLen);
  }
}

/**
 * Consecutive non-overlapping windows covering the stream once, in order (for evaluation).
 * The last batch may have fewer rows; a tail shorter than seqLen + 1 tokens is left out.
 */
export function* sequentialCausalBatches(
  stream: TokenStream,
  options: { batchSize: number; seqLen: number },
): Generator<CausalBatch> {
  const { batchSize, seqLen } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(seqLen) || seqLen < 1) {
    throw new RangeError(`sequentialCausalBatches: batchSize and seqLen must be positive integers, got ${batchSize} and ${seqLen}`);
  }
  let starts: number[] = [];
  // Windows share their boundary token: window k covers [k*seqLen, (k+1)*seqLen], so every
  // token except the first is predicted exactly once.
  for (let start = 0; start + seqLen + 1 <= stream.length; start += seqLen) {
    starts.push(start);
    if (starts.length === batchSize) {
      yield windowsToBatch(stream, starts, seqLen);
      starts = [];
    }
  }
  if (starts.length > 0) yield windowsToBatch(stream, starts, seqLen);
}

function windowsToBatch(stream: TokenStream, starts: number[], seqLen: number): CausalBatch {
  const rows = starts.length;
  const inputs = new Int32Array(rows * seqLen);
  const targets = new Int32Array(rows * seqLen);
  starts.forEach((start, b) => {
    const window = stream.window(start, seqLen + 1);
    inputs.set(window.subarray(0, seqLen), b * seqLen);
    targets.set(window.subarray(1), b * seqLen);
  });
  return { batchSize: rows, seqLen, inputs, targets, starts };
}
