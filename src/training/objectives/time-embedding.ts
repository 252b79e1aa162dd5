/**
 * Optional time embedding for time-as-input masked diffusion: the mask ratio r of each row is
 * encoded (sinusoidal features of 1000·r, as in DDPM/MDLM timestep embeddings), passed through a
 * small MLP and added to every position of the embedding output. The last projection starts at
 * zero, so attaching a time embedding does not change the model's function.
 *
 * The module lives beside the model (its parameters are not in the Model tree): give them to the
 * optimizer and save them with the checkpoint alongside the model.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { deriveSeed, Linear, Module, type ForwardContext, type Model, type ModelOutput, type TensorPlacement } from '../../nn/index.js';
import { ObjectiveError } from './types.js';

export interface TimeEmbeddingOptions extends TensorPlacement {
  /** Width of the model's residual stream. */
  dModel: number;
  /** Sinusoidal feature count (even), default 64. */
  features?: number;
  /** Hidden width of the MLP, default dModel. */
  hidden?: number;
  seed?: number;
}

/** r ∈ (0, 1] per row → [B, dModel]: Linear(features → hidden) → SiLU → Linear(hidden → dModel, zero-init). */
export class TimeEmbedding extends Module {
  readonly dModel: number;
  readonly features: number;
  readonly proj: Linear;
  readonly out: Linear;

  constructor(opts: TimeEmbeddingOptions) {
    super();
    const f = opts.features ?? 64;
    if (!Number.isInteger(f) || f < 2 || f % 2 !== 0) throw new ObjectiveError(`TimeEmbedding: features must be an even integer ≥ 2, found ${f}`);
    this.dModel = opts.dModel;
    this.features = f;
    const hidden = opts.hidden ?? opts.dModel;
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.proj = this.registerModule('proj', new Linear(f, hidden, { ...place, seed: deriveSeed(seed, 'proj') }));
    this.out = this.registerModule('out', new Linear(hidden, opts.dModel, { ...place, seed: deriveSeed(seed, 'out'), init: { kind: 'constant', value: 0 } }));
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

/** Model forward with the time embedding added to the embedding output (time-as-input). */
export function forwardWithTime(model: Model, time: TimeEmbedding, ids: Tensor, ratios: ArrayLike<number>, inputs: { attentionMask?: Tensor | null; seed?: number } = {}): ModelOutput {
  if (ids.rank !== 2) throw new ObjectiveError(`forwardWithTime: ids must be [B, S], got ${ids.describe()}`);
  const [B] = ids.shape;
  if (ratios.length !== B) throw new ObjectiveError(`forwardWithTime: ${ratios.length} ratios for ${B} rows`);
  if (time.dModel !== model.rack.dModel) throw new ObjectiveError(`forwardWithTime: time embedding width ${time.dModel} differs from the model's d_model ${model.rack.dModel}`);
  const keyMask = inputs.attentionMask ?? null;
  const h0 = model.embedding.forward(ids, { seed: inputs.seed });
  const h = E.add(h0, E.reshape(time.forward(ratios), [B, 1, time.dModel]));
  const ctx: ForwardContext = { keyMask, seed: inputs.seed };
  const logits = model.head.forward(model.rack.forward(h, ctx), { keyMask, seed: inputs.seed });
  return { logits };
}
