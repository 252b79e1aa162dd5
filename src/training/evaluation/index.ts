/** Evaluation of trained models: the masked-diffusion NELBO bound and sample quality. */
export * from './nelbo.js';
export * from './sample-quality.js';
