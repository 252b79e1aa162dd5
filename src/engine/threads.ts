/**
 * The thread count that adapts when cores are taken. On a machine where other processes keep
 * some cores busy, a team of as many threads as cores waits at every barrier for the member that
 * shares its core with another process: a training step measured slower with 2 threads than
 * with 1 under one competing busy process. In auto mode (the default, unless OMP_NUM_THREADS,
 * STACKWISE_THREADS=N or setNumThreads(n) fixes a count) the engine samples, at most every
 * quarter second between kernels, how much CPU the rest of the machine uses (/proc/stat minus
 * this process's own time) and runs with the cores left, applied once two samples in a row agree
 * (no flapping). A core counts as taken once others use more than CONTENDED_CORE of it: a busy
 * process that shares a core with one of our threads gets only about half of that core, so its
 * usage understates its demand (with round(), 2 threads stayed on under one such process).
 * Time of niced processes (the nice column) is left out while this process runs at normal
 * priority: they yield their core to our threads, so a team of all cores still pays.
 *
 * Results do not depend on it: every kernel splits its work by shape, not by thread count, and
 * OpenBLAS does not split the summed dimension, so losses are the same bit for bit.
 */
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';

export interface ThreadControl {
  /** Sets the OpenMP + BLAS team size. */
  set(n: number): void;
}

const SAMPLE_MS = 250;
/** Fraction of a core that other processes must use before it counts as taken. */
const CONTENDED_CORE = 0.25;
const TICKS_PER_S = 100;  // USER_HZ: /proc/stat counts in 1/100 s on Linux

let control: ThreadControl | null = null;
let auto = false;
let maxThreads = 1;
let defaultMax = 1;
let current = 1;
let last: { wall: number; busyTicks: number; selfUs: number } | null = null;
let nextSample = 0;
let proposed = 0;  // a new count is applied when two samples in a row propose it
let selfNiced = false;

/** Whether this process runs at a nice value above 0 (then its own time is in the nice column). */
function selfIsNiced(): boolean {
  try {
    return getPriority() > 0;
  } catch {
    return false;
  }
}

/** Busy ticks of all CPUs together (user, system, irq, softirq, steal, and nice when `withNice`),
 * or null off Linux. */
function machineBusyTicks(withNice = true): number | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return f[0] + (withNice ? f[1] : 0) + f[2] + f[5] + f[6] + (f[7] ?? 0);
  } catch {
    return null;
  }
}

/** The team size for `others` cores' worth of CPU used by other processes. */
export function threadsForLoad(maxThreads: number, others: number): number {
  return Math.max(1, Math.min(maxThreads, maxThreads - Math.max(0, Math.ceil(others - CONTENDED_CORE))));
}

function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Called by the engine at start-up with its thread control and the default team size. */
export function initThreads(ctl: ThreadControl, defaultThreads: number): void {
  control = ctl;
  selfNiced = selfIsNiced();
  maxThreads = defaultMax = Math.max(1, defaultThreads);
  current = maxThreads;
  const env = process.env.STACKWISE_THREADS;
  if (env !== undefined && env !== '' && env !== 'auto') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`STACKWISE_THREADS must be 'auto' or an integer >= 1, found '${env}'`);
    fixThreads(n);
    return;
  }
  // An explicit OpenMP setting is the user's choice; keep it fixed.
  auto = env === 'auto' || process.env.OMP_NUM_THREADS === undefined;
  if (auto && machineBusyTicks() === null) auto = false;
}

/** A fixed team size (turns auto mode off). */
export function fixThreads(n: number): void {
  if (!control) throw new Error('setNumThreads: the native backend is not loaded');
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNumThreads: expected an integer >= 1, found ${n}`);
  auto = false;
  current = n;
  control.set(n);
}

/** Auto mode with at most `max` threads (default: the team size the process started with,
 * OMP_NUM_THREADS or the number of CPUs). */
export function autoThreads(max = defaultMax): void {
  if (!control) throw new Error('setNumThreads: the native backend is not loaded');
  if (!Number.isInteger(max) || max < 1) throw new Error(`setNumThreads('auto'): the maximum must be an integer >= 1, found ${max}`);
  if (machineBusyTicks() === null) { fixThreads(max); return; }
  auto = true;
  maxThreads = max;
  last = null;
  nextSample = 0;
  current = max;
  control.set(max);
}

export function threadsAreAuto(): boolean {
  return auto;
}

/** Between kernels: in auto mode, at most every SAMPLE_MS, re-sizes the team to the free cores. */
export function adaptThreads(): void {
  if (!auto || maxThreads === 1) return;
  const now = performance.now();
  if (now < nextSample) return;
  nextSample = now + SAMPLE_MS;
  const busy = machineBusyTicks(selfNiced);
  if (busy === null) return;
  const sample = { wall: now, busyTicks: busy, selfUs: selfCpuUs() };
  const prev = last;
  last = sample;
  if (!prev) return;
  const wallS = (sample.wall - prev.wall) / 1000;
  if (wallS <= 0) return;
  const others = ((sample.busyTicks - prev.busyTicks) / TICKS_PER_S - (sample.selfUs - prev.selfUs) / 1e6) / wallS;
  const n = threadsForLoad(maxThreads, others);
  if (n !== current && n === proposed) {
    current = n;
    control!.set(n);
  }
  proposed = n;
}
