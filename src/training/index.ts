// Public face of the training layer. The TrainingMachine, progressive building, objectives and
// checkpointing (which need the engine) will join the schedule here.
export * from './schedule/index.js';
