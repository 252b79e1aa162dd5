/**
 * The memory-fit check run at training start-up, before anything is allocated: the config's plan
 * (planRun) against the machine's memory. A run whose predicted peak exceeds the physical memory
 * is refused with the figure, the phase and the largest contributor; `training.memory_check:
 * false` (or `stackwise train --no-memory-check`) skips the check for those who know better.
 */
import { totalmem } from 'node:os';
import { formatBytes } from '../../engine/index.js';
import { describeConfigSource, type ParsedConfig } from '../config/resolve.js';
import { planRun, type RunPlan } from './estimate.js';

export class MemoryFitError extends Error {
  readonly plan: RunPlan;
  constructor(message: string, plan: RunPlan) {
    super(message);
    this.name = 'MemoryFitError';
    this.plan = plan;
  }
}

/** Whether the config asks for the check (training.memory_check, default true). */
export function memoryCheckEnabled(parsed: ParsedConfig): boolean {
  return (parsed.config.training as { memory_check?: boolean }).memory_check !== false;
}

/**
 * Plans the run and throws MemoryFitError when its predicted peak exceeds `limitBytes` (default
 * the machine's physical memory). Returns the plan otherwise. A config the planner cannot price
 * (an attention kind it does not know) is let through: the check must never block a valid run.
 */
export function checkMemoryFit(parsed: ParsedConfig, limitBytes = totalmem()): RunPlan | null {
  let plan: RunPlan;
  try {
    plan = planRun(parsed);
  } catch {
    return null;
  }
  const worst = plan.phases.find((p) => p.bytes.peak === plan.peak.bytes)!;
  if (!(plan.peak.bytes <= limitBytes)) {
    const source = describeConfigSource(parsed);
    throw new MemoryFitError(
      `${source ? `${source}: ` : ''}this run needs about ${formatBytes(plan.peak.bytes)} of memory at its peak (phase '${worst.name}'), `
      + `more than this machine's ${formatBytes(limitBytes)}; the largest part is ${worst.largest.what} (${formatBytes(worst.largest.bytes)}). `
      + `See \`stackwise plan\` for the breakdown; set training.memory_check: false (or pass --no-memory-check) to train anyway.`,
      plan,
    );
  }
  return plan;
}
