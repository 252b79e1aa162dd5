/**
 * Masked-diffusion LM (MDLM-style absorbing-state diffusion): at mask ratio r, tokens are replaced
 * by [MASK] (⌈r·L⌉ of them, or each with probability r), only the masked tokens are scored, and
 * the loss is weighted by 1/r. With the loss contract of ./types.ts (Σ wᵢ·CEᵢ):
 * - 'bernoulli': wᵢ = 1 / (r_b · L_b · B), MDLM's estimator: the mean over rows of
 *   Σ_masked CE / (r_b · L_b), an unbiased estimate of the per-token negative ELBO (L_b = maskable
 *   positions of row b; E[Σᵢ wᵢ] = 1 per row). When the draw masks nothing, one position is
 *   masked anyway (every row is corrupted) but weighted 0: counting it at 1/(r·L) would bias the
 *   loss upwards at small r (by ≈ ln(1/(r_min·L))/L, 11 % for L = 32).
 * - 'exact': n_b = ⌈r_b·L_b⌉ positions, wᵢ = 1 / (n_b · B): the realised ratio n_b/L_b in place of
 *   r_b, the discrete (any-order) form of the same ELBO — each row's weights sum to 1/B, where
 *   1/(r·L) would over-weight rows by ⌈r·L⌉/(r·L) (up to L× at small r).
 */
import { drawRatios, type DrawOptions, type NoiseSpec } from './noise.js';
import { eligiblePositions, maskRng, selectPositionsDetailed, type SelectionMode } from './masking.js';
import {
  checkBatch, IGNORE_INDEX, ObjectiveError, resolveMaskId,
  type BatchObjective, type ObjectiveBatch, type ObjectiveContext, type PreparedBatch,
} from './types.js';
import { DEFAULT_DIFFUSION_MASK } from '../../framework/index.js';

export interface DiffusionOptions {
  maskTokenId?: number;
  /**
   * Where r comes from: a fixed ratio, a MaskRatioSpec (default uniform (0.001, 1]:
   * time-as-input), or `{ kind: 'depth', schedule, stack }` (time-as-depth).
   */
  noise?: NoiseSpec;
  /** A ratio range is sampled once per batch (default) or per sequence (stratified). */
  per?: DrawOptions['per'];
  /** 'bernoulli' (default, as MDLM) or 'exact' (⌈r·L⌉ positions). Both mask ≥ 1 token. */
  selection?: SelectionMode;
  /** 'mdlm' (default): per-token weights ∝ 1/r (see the file comment); 'none': no weights (plain mean over masked). */
  weighting?: 'mdlm' | 'none';
  /** Tokens never masked (e.g. [PAD]). */
  specialIds?: number[];
}

export interface DiffusionPrepared extends PreparedBatch {
  /** The mask ratio of each row. */
  ratios: Float64Array;
  /** Number of masked tokens of each row. */
  maskedCounts: number[];
}

const DIFFUSION_TAG = 0x4d444c4d; // 'MDLM'

export class MaskedDiffusionObjective implements BatchObjective {
  readonly name = 'diffusion' as const;
  readonly noise: NoiseSpec;
  readonly per: 'batch' | 'sequence';
  readonly selection: SelectionMode;
  readonly weighting: 'mdlm' | 'none';
  private readonly maskTokenId: number | undefined;
  private readonly special: number[];

  constructor(opts: DiffusionOptions = {}) {
    this.noise = opts.noise ?? { ...DEFAULT_DIFFUSION_MASK };
    if (typeof this.noise === 'number' && !(this.noise > 0 && this.noise <= 1)) throw new ObjectiveError(`diffusion: a mask ratio must be in (0, 1], found ${this.noise}`);
    this.per = opts.per ?? 'batch';
    this.selection = opts.selection ?? 'bernoulli';
    if (this.selection !== 'exact' && this.selection !== 'bernoulli') throw new ObjectiveError(`diffusion: selection must be 'exact' or 'bernoulli', found '${String(this.selection)}'`);
    this.weighting = opts.weighting ?? 'mdlm';
    if (this.weighting !== 'mdlm' && this.weighting !== 'none') throw new ObjectiveError(`diffusion: weighting must be 'mdlm' or 'none', found '${String(this.weighting)}'`);
    this.maskTokenId = opts.maskTokenId;
    this.special = [...(opts.specialIds ?? [])];
  }

  prepare(batch: ObjectiveBatch, ctx: ObjectiveContext): DiffusionPrepared {
    checkBatch('diffusion', batch, ctx);
    const mask = resolveMaskId('diffusion', this.maskTokenId, ctx);
    const { ids, batch: B, seqLen: S, sampleIds } = batch;
    const special = new Set([...this.special, mask]);
    const ratios = drawRatios(this.noise, ctx, sampleIds, { per: this.per }, 'diffusion');
    const inputIds = ids.slice();
    const targets = new Int32Array(B * S).fill(IGNORE_INDEX);
    const weights = this.weighting === 'mdlm' ? new Float32Array(B * S) : undefined;
    const maskedCounts: number[] = [];
    for (let b = 0; b < B; b++) {
      const off = b * S;
      const r = ratios[b]!;
      const eligible = eligiblePositions(ids, off, S, special);
      const { positions: chosen, forced } = selectPositionsDetailed(eligible, r, this.selection, maskRng(ctx.seed, DIFFUSION_TAG, sampleIds[b]!, r));
      const w = this.selection === 'exact' ? 1 / (chosen.length * B) : 1 / (r * eligible.length * B);
      for (const i of chosen) {
        targets[off + i] = ids[off + i]!;
        inputIds[off + i] = mask;
        if (weights) weights[off + i] = i === forced ? 0 : w;
      }
      maskedCounts.push(chosen.length);
    }
    return weights ? { inputIds, targets, weights, ratios, maskedCounts } : { inputIds, targets, ratios, maskedCounts };
  }
}
