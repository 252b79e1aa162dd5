// One phase's resolved config: its own module (types only) so that the progressive config reader
// can name it without importing the config parser, which imports the progressive schemas.
import type { Objective } from '../../framework/index.js';
import type { DataPlaneConfig, ModelPlaneConfig, OptimizerPlaneConfig } from '../../framework/config/schema.js';

/** The config of every plane during one phase, validated, defaults filled in. */
export interface ResolvedPhase {
  index: number;
  name: string;
  start_t: number;
  end_t: number;
  task?: Objective;
  data?: DataPlaneConfig;
  model?: ModelPlaneConfig;
  optimizer: OptimizerPlaneConfig;
}
