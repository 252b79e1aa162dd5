// Looking at the machine without moving it: the state of the current step and the planes
// (Data_t, Model_t, Optimizer_t) any step would run with. Nothing here advances time, draws a
// random number the run uses, steps the optimizer or changes the model, so a run that is
// inspected trains exactly as one that is not (test/training/machine-inspect.test.ts).
//
// Kept apart from machine.ts, which is the loop; these are read-only views over its parts.

import type {
  BatchSource,
  BatchSpec,
  DataBatch,
  EmbeddingSpec,
  HeadSpec,
  ModelAdapter,
  OptimizerAdapter,
  OptimizerSpec,
  RackSpec,
} from '../framework/index.js';
import { optimizerSpecOf } from '../framework/index.js';
import { makeLrSchedule } from '../optim/index.js';
import type { ResolvedPhase } from './config/resolve.js';
import type { Phase } from './schedule/phase.js';

/** The three specs of the live model. */
export interface ModelSpecs {
  embedding: EmbeddingSpec;
  rack: RackSpec;
  head: HeadSpec;
}

/** `TrainingMachine.getCurrentState()`: where the run is and the specs of its live planes. */
export interface MachineState {
  /** The next step to run (the number of steps done). */
  step: number;
  t: number;
  totalSteps: number;
  complete: boolean;
  /** The phase of the current step, and its index in the schedule. */
  phase: string;
  phaseIndex: number;
  /** Whether that phase has been entered yet (its planes assembled; false before the first step). */
  phaseEntered: boolean;
  data: BatchSpec;
  model: ModelSpecs;
  optimizer: OptimizerSpec;
}

/** The optimizer plane of a step: its spec, the lr it would set, and the live adapter when it is the phase in force. */
export interface OptimizerPlane {
  spec: OptimizerSpec;
  /** The base lr at the step's t (groups scale it by their lr_scale). */
  lr: number;
  /** The live optimizer when the step falls in the phase the machine is in; undefined for a phase not yet entered. */
  adapter: OptimizerAdapter | undefined;
}

/** `TrainingMachine.assemblePlanes(step)`: (Data_t, Model_t, Optimizer_t) of one step. */
export interface AssembledPlanes {
  step: number;
  t: number;
  phase: Phase;
  phaseIndex: number;
  /**
   * True when the step falls in the phase the machine is in, so `model` and `optimizer.adapter`
   * are exactly the objects the step trains. For a phase not entered yet the model is what its
   * onPhaseStart hooks (growth, freezing, adapters) will start from, and `resolved.model` says
   * what they will make of it.
   */
  current: boolean;
  /** Data_t: the batch source of the step's phase; `batch(micro)` is the micro-batch the step draws. */
  data: { source: BatchSource; spec: BatchSpec; batch(micro?: number): DataBatch };
  /** Model_t: the live model adapter. */
  model: ModelAdapter;
  optimizer: OptimizerPlane;
  /** The phase's resolved config (every plane), as written to the run folder's phases/. */
  resolved: ResolvedPhase;
}

/** The specs of a live model. */
export function modelSpecs(model: ModelAdapter): ModelSpecs {
  return { embedding: model.getEmbeddingSpec(), rack: model.getRackSpec(), head: model.getHeadSpec() };
}

/** What assemblePlanes needs from the machine (read-only). */
export interface InspectedMachine {
  step: number;
  stepT(step: number): number;
  totalSteps: number;
  phaseAtStep(step: number): { phase: Phase; index: number };
  currentPhase: number;
  resolved(index: number): ResolvedPhase;
  data: BatchSource;
  /** The batch source a phase not entered yet would use (built, not installed). */
  dataFor(resolved: ResolvedPhase): BatchSource;
  model: ModelAdapter;
  optimizer: OptimizerAdapter;
  /** Whether the caller's built optimizer keeps its own settings (no optimizer section in the config). */
  optimizerFromCaller: boolean;
}

/** The planes of `step` (see AssembledPlanes); no side effect on the run. */
export function assemblePlanesOf(m: InspectedMachine, step: number): AssembledPlanes {
  if (!Number.isInteger(step) || step < 0 || step >= m.totalSteps) {
    throw new RangeError(`assemblePlanes: step must be an integer in [0, ${m.totalSteps - 1}] (training.total_steps = ${m.totalSteps}), found ${step}`);
  }
  const t = m.stepT(step);
  const { phase, index } = m.phaseAtStep(step);
  const resolved = m.resolved(index);
  // Before the first step the machine holds phase 0's planes without having entered it.
  const inForce = m.currentPhase >= 0 ? m.currentPhase : 0;
  const current = index === inForce;
  const source = current ? m.data : m.dataFor(resolved);
  // The optimizer of a phase is in force once the phase is entered (enterPhase applies its spec).
  const entered = index === m.currentPhase;
  const spec = entered || m.optimizerFromCaller ? m.optimizer.getSpec() : optimizerSpecOf(resolved.optimizer);
  const localT = phase.localT(t);
  const lr = entered ? m.optimizer.lrAt(t, localT) : makeLrSchedule(spec.lr_schedule)(spec.lr_time === 'phase' ? localT : t);
  return {
    step,
    t,
    phase,
    phaseIndex: index,
    current,
    data: { source, spec: source.getBatchSpec(), batch: (micro = 0) => source.trainBatch(step, micro, t) },
    model: m.model,
    optimizer: { spec, lr, adapter: current ? m.optimizer : undefined },
    resolved,
  };
}
