// Registers the masking objectives of ./objectives/ under the Objective seam, so a config's
// `objective: mlm | diffusion` finds them. CLM is built in (framework/objective.ts).
import { registerObjective, type ObjectiveFactoryOptions } from '../framework/objective.js';
import { makeObjective } from './objectives/index.js';

function specialIds(o: ObjectiveFactoryOptions): number[] {
  const pad = o.data?.['pad_token_id'];
  return typeof pad === 'number' ? [pad] : [];
}

registerObjective('mlm', (o) =>
  makeObjective({ name: 'mlm', ...(o.maskTokenId !== undefined ? { maskTokenId: o.maskTokenId } : {}), ...(o.mask ? { ratio: o.mask } : {}), specialIds: specialIds(o) }),
);
registerObjective('diffusion', (o) =>
  makeObjective({ name: 'diffusion', ...(o.maskTokenId !== undefined ? { maskTokenId: o.maskTokenId } : {}), ...(o.mask ? { noise: o.mask } : {}), specialIds: specialIds(o) }),
);
