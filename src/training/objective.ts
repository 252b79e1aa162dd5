// The Objective interface (CLM here; MLM and masked diffusion in ./objectives/ register
// themselves). Defined in framework/objective.ts so the data adapter, one layer down, can use it.
export * from '../framework/objective.js';
