/** The model manifest every checkpoint holds, and `loadModel`, which builds a checkpoint's model from it alone. */
export * from './manifest.js';
export * from './load-model.js';
export * from './exported.js';
