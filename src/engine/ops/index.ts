// The public op functions, one family per file.
export * from './creation.js';
export * from './shape-ops.js';
export * from './binary.js';
export * from './unary.js';
export * from './matmul.js';
export * from './reduce.js';
export * from './layout.js';
export * from './softmax.js';
export * from './optim.js';
export * from './optim8.js';
export * from './norm.js';
export * from './rope.js';
export * from './embedding.js';
export * from './dropout.js';
export * from './attention.js';
export * from './quant.js';
export * from './linear-cross-entropy.js';
