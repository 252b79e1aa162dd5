// Public face of the io layer.

export * from './safetensors.js';
export * from './safetensors-lazy.js';
export * from './hf/index.js';
export * from './checkpoint.js';
export * from './tensorboard.js';
export * from './metrics-jsonl.js';
export * from './quantized-checkpoint.js';
