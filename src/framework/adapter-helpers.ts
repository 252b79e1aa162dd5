// The seed's adapter helpers, by name: each wraps a thing built in code in the adapter the
// TrainingMachine drives (DataAdapter, ModelAdapter, OptimizerAdapter). They are the factories
// (factories.ts) narrowed to that one job, so there is still one way to build each plane.

import { DataAdapter, type DataAdapterOptions, type DataPlaneSettings } from './data-adapter.js';
import type { TokenData } from './data-source.js';
import { buildModel, buildOptimizer, type BuildModelOptions } from './factories.js';
import type { ModelAdapter } from './model-adapter.js';
import type { OptimizerAdapter } from './optimizer-adapter.js';
import type { ModelPlaneConfig, OptimizerPlaneConfig } from './config/schema.js';
import type { OptimizerSpec } from './specs/optimizer.js';
import type { Model } from '../nn/index.js';
import type { Optimizer } from '../optim/index.js';

/** Data_t over token streams: batches of the plane's shape and objective, deterministic in (seed, step, micro); seed 0 by default. */
export function createDataAdapter(tokens: TokenData, plane: DataPlaneSettings, options: Partial<DataAdapterOptions> = {}): DataAdapter {
  return new DataAdapter(tokens, plane, { ...options, seed: options.seed ?? 0 });
}

/** Model_t over a built model (or built from a model plane config). */
export function createModelAdapter(model: Model | ModelPlaneConfig, options: BuildModelOptions = {}): ModelAdapter {
  return buildModel(model, options);
}

/**
 * Optimizer_t over the model's trainable parameters: from an optimizer spec or plane config
 * (type, lr, schedule, groups, …) or an optimizer built in code.
 */
export function createOptimizerAdapter(source: OptimizerSpec | OptimizerPlaneConfig | Optimizer, model: ModelAdapter): OptimizerAdapter {
  return buildOptimizer(source, model);
}
