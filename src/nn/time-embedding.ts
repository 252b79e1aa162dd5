/**
 * Time embedding for time-as-input masked diffusion: the mask ratio r of each row is encoded
 * (sinusoidal features of 1000·r, as in DDPM/MDLM timestep embeddings), passed through a small MLP
 * and added to every position of the embedding output. The last projection starts at zero, so
 * attaching a time embedding does not change the model's function.
 *
 * A Model owns it as its child 'time' (config `timeEmbedding`, `model.time_embedding` in a run
 * config): its parameters are in the model's parameters, state dict and checkpoints as `time.*`.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { Linear } from './layers.js';
import { deriveSeed, type TensorPlacement } from './init.js';
import type { TimeEmbeddingConfig } from './config.js';

export interface TimeEmbeddingOptions extends TensorPlacement {
  /** Width of the model's residual stream. */
  dModel: number;
  /** Sinusoidal feature count (even), default 64. */
  features?: number;
  /** Hidden width of the MLP, default dModel. */
  hidden?: number;
  seed?: number;
}

/** The resolved sizes of a time embedding: features (even, default 64) and hidden (default dModel). */
export function resolveTimeEmbeddingConfig(dModel: number, opts: Partial<TimeEmbeddingConfig> = {}): TimeEmbeddingConfig {
  const features = opts.features ?? 64;
  if (!Number.isInteger(features) || features < 2 || features % 2 !== 0) throw new Error(`TimeEmbedding: features must be an even integer ≥ 2, found ${features}`);
  const hidden = opts.hidden ?? dModel;
  if (!Number.isInteger(hidden) || hidden < 1) throw new Error(`TimeEmbedding: hidden must be a positive integer, found ${hidden}`);
  return { features, hidden };
}

/** r ∈ [0, 1] per row → [B, dModel]: Linear(features → hidden) → SiLU → Linear(hidden → dModel, zero-init). Children 'proj', 'out'. */
export class TimeEmbedding extends Module {
  readonly dModel: number;
  readonly features: number;
  readonly hidden: number;
  readonly proj: Linear;
  readonly out: Linear;

  constructor(opts: TimeEmbeddingOptions) {
    super();
    const { features, hidden } = resolveTimeEmbeddingConfig(opts.dModel, opts);
    this.dModel = opts.dModel;
    this.features = features;
    this.hidden = hidden;
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.proj = this.registerModule('proj', new Linear(features, hidden, { ...place, seed: deriveSeed(seed, 'proj') }));
    this.out = this.registerModule('out', new Linear(hidden, opts.dModel, { ...place, seed: deriveSeed(seed, 'out'), init: { kind: 'constant', value: 0 } }));
  }

  /** The TimeEmbeddingConfig describing this module. */
  get config(): TimeEmbeddingConfig {
    return { features: this.features, hidden: this.hidden };
  }

  /** Sinusoidal features [B, features] of 1000·r. */
  featuresOf(ratios: ArrayLike<number>): Tensor {
    const B = ratios.length;
    const half = this.features / 2;
    const data = new Float64Array(B * this.features);
    for (let b = 0; b < B; b++) {
      const x = 1000 * ratios[b]!;
      for (let i = 0; i < half; i++) {
        const a = x * Math.exp((-Math.log(10000) * i) / half);
        data[b * this.features + i] = Math.sin(a);
        data[b * this.features + half + i] = Math.cos(a);
      }
    }
    const dtype = this.proj.weight.dtype;
    return E.tensor(dtype === 'float64' ? data : Float32Array.from(data), [B, this.features], { dtype, backend: this.proj.weight.backend });
  }

  /** [B, dModel] embeddings of the rows' ratios. */
  forward(ratios: ArrayLike<number>): Tensor {
    return this.out.forward(E.silu(this.proj.forward(this.featuresOf(ratios))));
  }
}

/**
 * Checks per-row noise ratios against a batch of B rows: one finite value in [0, 1] per row.
 * `who` names the caller in messages.
 */
export function checkTimeRatios(ratios: ArrayLike<number>, B: number, who: string): void {
  if (ratios.length !== B) throw new Error(`${who}: timeRatios holds ${ratios.length} ratio(s) for ${B} row(s); pass one noise ratio r per row`);
  for (let b = 0; b < B; b++) {
    const r = ratios[b]!;
    if (!(r >= 0 && r <= 1)) throw new Error(`${who}: timeRatios[${b}] must be a noise ratio in [0, 1], found ${r}`);
  }
}
