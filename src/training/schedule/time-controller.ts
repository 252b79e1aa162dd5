// TimeController: the one place that converts between steps and normalized time.
//
// A run has T = total_steps training steps, numbered 0 … T−1; step k runs at t = k / T. After the
// last step the controller stands at step T, t = 1 (complete). Everything else in the project
// speaks t; anything that needs a step number asks this class.

import { describeValue, type JsonObject } from '../../framework/index.js';
import { ScheduleError, phaseLabel, type Phase } from './phase.js';
import type { PhaseSchedule } from './phase-schedule.js';

/** The training steps a phase runs: [first_step, end_step). */
export interface PhaseStepRange {
  index: number;
  phase: Phase;
  first_step: number;
  /** Exclusive. */
  end_step: number;
  steps: number;
}

export interface TimeControllerJSON extends JsonObject {
  total_steps: number;
  current_step: number;
}

export class TimeController {
  readonly totalSteps: number;
  private step: number;

  constructor(totalSteps: number, startStep = 0) {
    if (typeof totalSteps !== 'number' || !Number.isSafeInteger(totalSteps) || totalSteps < 1) {
      throw new RangeError(`TimeController: total_steps must be a positive integer, found ${describeValue(totalSteps)}`);
    }
    this.totalSteps = totalSteps;
    this.step = this.checkStep(startStep, 'start step');
  }

  private checkStep(step: number, what: string): number {
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0 || step > this.totalSteps) {
      throw new RangeError(`TimeController: ${what} must be an integer in [0, ${this.totalSteps}], found ${describeValue(step)}`);
    }
    return step;
  }

  /** t of step k: k / total_steps. */
  tOf(step: number): number {
    return this.checkStep(step, 'step') / this.totalSteps;
  }

  /**
   * The first step whose t is ≥ the given t (so stepOf(tOf(k)) = k, and stepOf(1) = total_steps).
   * Computed against the same division tOf uses, so the two never disagree by rounding.
   */
  stepOf(t: number): number {
    if (typeof t !== 'number' || !(t >= 0 && t <= 1)) {
      throw new RangeError(`TimeController: t must be a number in [0, 1], found ${describeValue(t)}`);
    }
    const T = this.totalSteps;
    let k = Math.ceil(t * T);
    while (k > 0 && (k - 1) / T >= t) k--;
    while (k / T < t) k++;
    return k;
  }

  // --- the run's cursor ------------------------------------------------------------------

  get currentStep(): number {
    return this.step;
  }

  /** t of the current step. */
  get t(): number {
    return this.step / this.totalSteps;
  }

  get isComplete(): boolean {
    return this.step >= this.totalSteps;
  }

  get remainingSteps(): number {
    return this.totalSteps - this.step;
  }

  /** Moves the cursor forward; refuses to go past total_steps (that would make t > 1). */
  advance(n = 1): number {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`TimeController.advance: n must be a non-negative integer, found ${describeValue(n)}`);
    }
    if (this.step + n > this.totalSteps) {
      throw new RangeError(
        `TimeController.advance: cannot advance ${n} step(s) from step ${this.step}; the run has ${this.totalSteps} steps`,
      );
    }
    this.step += n;
    return this.step;
  }

  /** Puts the cursor at `step` (resume). */
  seek(step: number): void {
    this.step = this.checkStep(step, 'step');
  }

  // --- phases in steps --------------------------------------------------------------------

  /** The phase the given step runs in. */
  phaseAtStep(schedule: PhaseSchedule, step: number): Phase {
    return schedule.phaseAt(this.tOf(step));
  }

  /**
   * The steps of each phase: phase i runs steps k with start_t ≤ k/T < end_t. The final state
   * (step T, t = 1) belongs to the last phase but is not a training step. A range can be empty
   * when a phase is shorter than one step; `assertEveryPhaseHasSteps` rejects that.
   */
  phaseStepRanges(schedule: PhaseSchedule): PhaseStepRange[] {
    return schedule.phases.map((phase, index) => {
      const first_step = this.stepOf(phase.start_t);
      const end_step = Math.max(first_step, this.stepOf(phase.end_t));
      return { index, phase, first_step, end_step, steps: end_step - first_step };
    });
  }

  /** Steps at which a new phase begins (the first step of every phase after the first). */
  boundarySteps(schedule: PhaseSchedule): number[] {
    return this.phaseStepRanges(schedule).slice(1).map((r) => r.first_step);
  }

  /** Throws ScheduleError naming each phase that gets no training step with this total_steps. */
  assertEveryPhaseHasSteps(schedule: PhaseSchedule): void {
    const T = this.totalSteps;
    const problems = this.phaseStepRanges(schedule)
      .filter((r) => r.steps === 0)
      .map((r) => {
        const before = r.first_step - 1;
        const nearest =
          before >= 0
            ? `step ${before} runs at t = ${before / T} and step ${r.first_step} at t = ${r.first_step / T}`
            : `step 0 runs at t = 0`;
        return `${phaseLabel(r.index, r.phase.name)} [${r.phase.start_t}, ${r.phase.end_t}) gets no training step with total_steps = ${T} (${nearest}); use more steps or a longer phase`;
      });
    if (problems.length > 0) throw new ScheduleError(problems);
  }

  toJSON(): TimeControllerJSON {
    return { total_steps: this.totalSteps, current_step: this.step };
  }

  static fromJSON(json: unknown): TimeController {
    const o = (typeof json === 'object' && json !== null ? json : {}) as Partial<TimeControllerJSON>;
    return new TimeController(o.total_steps as number, o.current_step as number);
  }
}
