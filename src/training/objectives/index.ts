/** Training objectives (CLM, BERT MLM, masked diffusion), noise schedules and the loss contract. */
import { CausalLMObjective, type ClmOptions } from './clm.js';
import { MaskedLMObjective, type MlmOptions } from './mlm.js';
import { MaskedDiffusionObjective, type DiffusionOptions } from './diffusion.js';
import { ObjectiveError, type BatchObjective } from './types.js';
import { OBJECTIVES } from '../../framework/index.js';

export * from './types.js';
export * from './noise.js';
export * from './masking.js';
export * from './clm.js';
export * from './mlm.js';
export * from './diffusion.js';
export * from './loss.js';

export type ObjectiveOptions =
  | ({ name: 'clm' } & ClmOptions)
  | ({ name: 'mlm' } & MlmOptions)
  | ({ name: 'diffusion' } & DiffusionOptions);

/** Builds an objective by name. */
export function makeObjective(opts: ObjectiveOptions): BatchObjective {
  switch (opts.name) {
    case 'clm': return new CausalLMObjective(opts);
    case 'mlm': return new MaskedLMObjective(opts);
    case 'diffusion': return new MaskedDiffusionObjective(opts);
    default: throw new ObjectiveError(`makeObjective: unknown objective '${String((opts as { name: unknown }).name)}' (expected one of ${OBJECTIVES.map((o) => `'${o}'`).join(', ')})`);
  }
}
