/** Progressive rack building: growth operators, freeze policies, dual LoRA, groups, reports, activation cache. */
export * from './errors.js';
export * from './ramp.js';
export * from './operators.js';
export * from './lora.js';
export * from './freeze.js';
export * from './roles.js';
export * from './groups.js';
export * from './report.js';
export * from './builder.js';
export * from './activation-cache.js';
export * from './resource-record.js';
export * from './cached-training.js';
export * from './config.js';
