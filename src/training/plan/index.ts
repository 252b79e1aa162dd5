export * from './shape.js';
export * from './estimate.js';
export * from './fit.js';
export * from './gemm-rate.js';
