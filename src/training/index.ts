// Public face of the training layer: schedule and time, the TrainingMachine, config loading,
// objectives, progressive building, sampling and checkpoints.
export * from './schedule/index.js';
export * from './objective.js';
export * from './config/index.js';
export * from './hooks.js';
export * from './machine.js';
export * from './metrics.js';
export * from './checkpoint-io.js';
export * from './objectives/index.js';
export * from './progressive/index.js';
export * from './sampling/index.js';
export * from './progressive-plane.js';
export * from './progressive-trainer.js';
export * from './model-manifest/index.js';
export * from './plan/index.js';
export * from './evaluation/index.js';
export * from './init-from.js';
