// The training objectives a batch can be built for.

export const OBJECTIVES = ['clm', 'mlm', 'diffusion'] as const;
/** clm: next-token prediction; mlm: BERT-style masked LM; diffusion: masked diffusion at ratio r. */
export type Objective = (typeof OBJECTIVES)[number];

/** Objectives that corrupt inputs with [MASK] and so need a mask token and bidirectional attention. */
export function isMaskingObjective(objective: Objective): boolean {
  return objective === 'mlm' || objective === 'diffusion';
}
