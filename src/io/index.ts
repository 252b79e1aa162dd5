// Public face of the io layer.

export * from './safetensors.js';
export * from './hf/index.js';
