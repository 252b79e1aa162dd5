// createSimpleSchedule: a schedule plus its TimeController from phases that may be written in
// steps (start_step / end_step) or in t. Steps are converted by the controller, so this is still
// the only place steps become t.

import { describeValue, isPlainObject } from '../../framework/index.js';
import { ScheduleError, phaseLabel, type PhaseInit } from './phase.js';
import { PhaseSchedule } from './phase-schedule.js';
import { TimeController } from './time-controller.js';

/** A phase bounded by t or by step, one of the two for each end. */
export type SimplePhaseInit = Omit<PhaseInit, 'start_t' | 'end_t'> & {
  start_t?: number;
  end_t?: number;
  start_step?: number;
  end_step?: number;
};

export interface SimpleSchedule {
  schedule: PhaseSchedule;
  controller: TimeController;
}

/**
 * Builds the controller for `totalSteps`, converts step bounds to t, validates the schedule and
 * checks that every phase gets at least one training step.
 */
export function createSimpleSchedule(totalSteps: number, phases: readonly SimplePhaseInit[]): SimpleSchedule {
  const controller = new TimeController(totalSteps);
  if (!Array.isArray(phases)) throw new ScheduleError([`expected a list of phases, found ${describeValue(phases)}`]);
  const problems: string[] = [];
  const inits = phases.map((p, index): PhaseInit => {
    if (!isPlainObject(p as unknown)) return p as unknown as PhaseInit; // PhaseSchedule reports it
    const { start_step, end_step, ...rest } = p;
    const init = { ...rest } as PhaseInit;
    for (const [tKey, stepKey, step] of [
      ['start_t', 'start_step', start_step],
      ['end_t', 'end_step', end_step],
    ] as const) {
      if (step === undefined) continue;
      if (rest[tKey] !== undefined) {
        problems.push(`${phaseLabel(index, p.name)}: give ${tKey} or ${stepKey}, not both`);
      } else {
        try {
          init[tKey] = controller.tOf(step);
        } catch {
          problems.push(`${phaseLabel(index, p.name)}: ${stepKey} must be an integer in [0, ${totalSteps}], found ${describeValue(step)}`);
        }
      }
    }
    return init;
  });
  if (problems.length > 0) throw new ScheduleError(problems);
  const schedule = new PhaseSchedule(inits);
  controller.assertEveryPhaseHasSteps(schedule);
  return { schedule, controller };
}
