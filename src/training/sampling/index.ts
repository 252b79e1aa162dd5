/** Sampling: CLM generation, MLM fill-in, masked-diffusion sampling and the time-as-depth unroll. */
export * from './logits.js';
export { inference } from './common.js';
export * from './clm.js';
export * from './mlm.js';
export * from './diffusion.js';
