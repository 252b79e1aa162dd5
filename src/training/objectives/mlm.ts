/**
 * BERT masked LM: select 15 % of the non-special positions (at least one per sequence); of the
 * selected, 80 % become [MASK], 10 % a random token, 10 % stay; only the selected are scored.
 */
import { drawRatios, type DrawOptions, type NoiseSpec } from './noise.js';
import { eligiblePositions, maskRng, randomToken, selectPositions, type SelectionMode } from './masking.js';
import {
  checkBatch, IGNORE_INDEX, ObjectiveError, resolveMaskId,
  type BatchObjective, type ObjectiveBatch, type ObjectiveContext, type PreparedBatch,
} from './types.js';

export interface MlmOptions {
  /** [MASK] id; default ctx.maskTokenId. */
  maskTokenId?: number;
  /** Selection ratio (default 0.15); may be a schedule in t like any NoiseSpec. */
  ratio?: NoiseSpec;
  /** How a ratio range is sampled (per batch by default). */
  per?: DrawOptions['per'];
  /** Of the selected: share replaced by [MASK] (0.8) and by a random token (0.1); the rest is kept. */
  maskProb?: number;
  randomProb?: number;
  /** 'bernoulli' (default, as BERT / Hugging Face) or 'exact' (⌈r·L⌉ positions). */
  selection?: SelectionMode;
  /** Tokens never selected and never drawn as random replacements ([PAD], [CLS], [SEP]…). */
  specialIds?: number[];
  /** Also key the mask by the step, so a sample seen again gets a new mask (default false: static). */
  dynamic?: boolean;
}

/** What MLM returns besides the PreparedBatch fields. */
export interface MlmPrepared extends PreparedBatch {
  /** Per row: selected, [MASK]ed, randomised and kept counts. */
  counts: { selected: number; masked: number; random: number; kept: number }[];
}

const MLM_TAG = 0x4d4c4d31; // 'MLM1'

function checkProb(p: number, what: string): void {
  if (!(p >= 0 && p <= 1)) throw new ObjectiveError(`mlm: ${what} must be in [0, 1], found ${p}`);
}

export class MaskedLMObjective implements BatchObjective {
  readonly name = 'mlm' as const;
  readonly options: Readonly<Required<Omit<MlmOptions, 'maskTokenId'>>> & { maskTokenId?: number };

  constructor(opts: MlmOptions = {}) {
    const maskProb = opts.maskProb ?? 0.8;
    const randomProb = opts.randomProb ?? 0.1;
    checkProb(maskProb, 'maskProb');
    checkProb(randomProb, 'randomProb');
    if (maskProb + randomProb > 1 + 1e-12) throw new ObjectiveError(`mlm: maskProb + randomProb = ${maskProb + randomProb} exceeds 1`);
    const selection = opts.selection ?? 'bernoulli';
    if (selection !== 'exact' && selection !== 'bernoulli') throw new ObjectiveError(`mlm: selection must be 'exact' or 'bernoulli', found '${String(selection)}'`);
    const ratio = opts.ratio ?? 0.15;
    if (typeof ratio === 'number' && !(ratio > 0 && ratio <= 1)) throw new ObjectiveError(`mlm: ratio must be in (0, 1], found ${ratio}`);
    this.options = {
      maskTokenId: opts.maskTokenId,
      ratio,
      per: opts.per ?? 'batch',
      maskProb,
      randomProb,
      selection,
      specialIds: [...(opts.specialIds ?? [])],
      dynamic: opts.dynamic ?? false,
    };
  }

  prepare(batch: ObjectiveBatch, ctx: ObjectiveContext): MlmPrepared {
    checkBatch('mlm', batch, ctx);
    const mask = resolveMaskId('mlm', this.options.maskTokenId, ctx);
    const { ids, batch: B, seqLen: S, sampleIds } = batch;
    const o = this.options;
    const special = new Set([...o.specialIds, mask]);
    if (o.randomProb > 0 && special.size >= ctx.vocabSize) throw new ObjectiveError(`mlm: every token of the vocabulary (${ctx.vocabSize}) is special; no random replacement exists`);
    const ratios = drawRatios(o.ratio, ctx, sampleIds, { per: o.per }, 'mlm');
    const inputIds = ids.slice();
    const targets = new Int32Array(B * S).fill(IGNORE_INDEX);
    const counts: MlmPrepared['counts'] = [];
    for (let b = 0; b < B; b++) {
      const off = b * S;
      const r = ratios[b]!;
      const rng = o.dynamic ? maskRng(ctx.seed, MLM_TAG, sampleIds[b]!, r, ctx.step) : maskRng(ctx.seed, MLM_TAG, sampleIds[b]!, r);
      const chosen = selectPositions(eligiblePositions(ids, off, S, special), r, o.selection, rng);
      const c = { selected: chosen.length, masked: 0, random: 0, kept: 0 };
      for (const i of chosen) {
        const orig = ids[off + i]!;
        targets[off + i] = orig;
        const v = rng.nextFloat();
        if (v < o.maskProb) {
          inputIds[off + i] = mask;
          c.masked++;
        } else if (v < o.maskProb + o.randomProb) {
          inputIds[off + i] = randomToken(ctx.vocabSize, special, rng);
          c.random++;
        } else c.kept++;
      }
      counts.push(c);
    }
    return { inputIds, targets, counts };
  }
}
