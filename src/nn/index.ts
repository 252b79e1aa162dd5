/** The model library: Module tree, layers, attention family, blocks/stacks/racks, heads, presets, LoRA. */
export * from './module.js';
export * from './init.js';
export * from './layers.js';
export * from './config.js';
export * from './attention.js';
export * from './block.js';
export * from './embedding-block.js';
export * from './heads.js';
export * from './model.js';
export * from './time-embedding.js';
export * from './presets.js';
export * from './lora.js';
export * from './inspect.js';
export * from './bench.js';
export * from './quantized-linear.js';
export * from './frozen-build.js';
