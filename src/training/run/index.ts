/**
 * Runs as a library (`stackwise/run`): loading a trained run (`loadRun`, over `loadModel`) or a
 * Hugging Face folder, sampling, evaluation (perplexity and bits per byte on a split or on the
 * user's files, masked-token accuracy, the NELBO bound of masked-diffusion runs, sample quality,
 * the sentiment probe), inspecting and exporting checkpoints, and the entry points of `stackwise
 * train` and `stackwise compare`. The CLI commands parse flags, call these and print.
 */
export * from './errors.js';
export * from './load-run.js';
export * from './sample.js';
export * from './eval-lm.js';
export * from './eval-samples.js';
export * from './eval-text.js';
export * from './probe.js';
export * from './eval.js';
export * from './train.js';
export * from './inspect.js';
export * from './export.js';
export * from './compare.js';
