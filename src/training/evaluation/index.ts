// Evaluation of trained models on text: loss, perplexity and bits per byte.
export * from './text-eval.js';
