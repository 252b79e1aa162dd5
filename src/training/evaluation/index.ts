/** Evaluation of trained models: loss, perplexity and bits per byte on text; the masked-diffusion NELBO bound; sample quality. */
export * from './text-eval.js';
export * from './nelbo.js';
export * from './sample-quality.js';
