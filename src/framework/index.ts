// Public face of the framework layer: specs, config schema, the objective seam, adapters and factories.
export * from './json.js';
export * from './specs/index.js';
export * from './config/index.js';
// `Objective` here is the objective *name* (specs); the interface is TrainingObjective (training/ exports it as Objective).
export {
  IGNORE_INDEX,
  ClmObjective,
  checkObjectiveBatch,
  checkPreparedBatch,
  registerObjective,
  hasObjective,
  createObjective,
  type ObjectiveName,
  type ObjectiveBatch,
  type ObjectiveContext,
  type PreparedBatch,
  type ObjectiveFactoryOptions,
  type ObjectiveFactory,
  type Objective as TrainingObjective,
} from './objective.js';
export * from './data-source.js';
export * from './data-adapter.js';
export * from './model-adapter.js';
export * from './optimizer-adapter.js';
export * from './factories.js';
export * from './adapter-helpers.js';
