// Public face of the optim layer. The engine-backed optimizers (AdamW, SGD, clipping) will be
// exported from here too; the lr schedules are pure and need no engine.
export {
  LR_SCHEDULE_KINDS,
  WSD_DECAY_SHAPES,
  LrScheduleError,
  formatLrScheduleIssue,
  makeLrSchedule,
  peakLr,
  readLrSchedule,
  validateLrSchedule,
} from './lr-schedule.js';
export type {
  ConstantLrSchedule,
  CosineLrSchedule,
  LinearLrSchedule,
  LrSchedule,
  LrScheduleIssue,
  LrScheduleKind,
  LrScheduleSpec,
  WarmupLrSchedule,
  WsdDecayShape,
  WsdLrSchedule,
} from './lr-schedule.js';
export { Optimizer, type ParamGroup, type ParamGroupOptions } from './optimizer.js';
export { AdamW, INT8_MIN_SIZE, int8StateEligible, type AdamWOptions } from './adamw.js';
export { SGD, type SGDOptions } from './sgd.js';
export { clipGradNorm } from './clip.js';
export type { ParamState, NamedOptimizerState } from './optimizer.js';
export {
  PLACE_ROLES,
  ADAPTER_ROLES,
  PROGRESSIVE_GROUPS,
  isEmbeddingParamName,
  type PlaceRole,
  type AdapterRole,
  type ProgressiveGroup,
} from './roles.js';
export {
  PARAM_ROLES,
  DEFAULT_GROUP,
  assignParamGroups,
  paramRoles,
  stackIndexOf,
  type ParamRole,
  type ParamGroupRule,
  type GroupAssignmentOptions,
  type AssignedGroup,
} from './groups.js';
