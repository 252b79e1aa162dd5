/**
 * What a run folder says about itself: its status (running / finished / interrupted / failed),
 * read from the records the training machine writes into metrics.jsonl, and a one-line summary of
 * its config.yaml.
 *
 * The records that end a session (src/training/machine.ts, src/cli/train.ts):
 *   {type: 'checkpoint', reason: 'final'}    the run reached total_steps      → finished
 *   {type: 'diverged', reason}                a non-finite loss or gradient   → failed
 *   {type: 'checkpoint', reason: 'manual'}   last record: stopped on Ctrl-C   → interrupted
 *   {type: 'resume'}                          a new session: what came before no longer ends the run
 * A process that dies without a word (killed, out of memory) leaves none of these; a run whose file
 * has not grown for much longer than its steps take is then reported interrupted, with that reason.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { MetricsRecord } from '../metrics-jsonl.js';

export type RunState = 'running' | 'finished' | 'interrupted' | 'failed';
export const RUN_STATES: readonly RunState[] = ['running', 'finished', 'interrupted', 'failed'];

export interface RunStatus {
  state: RunState;
  /** Why, in words (e.g. "diverged at step 412: the loss is NaN"). */
  detail: string;
}

/** A run is presumed stopped after this long without a record, at least. */
export const STALE_AFTER_MIN_MS = 120_000;
/** …or this many times its recent median step time, whichever is longer. */
const STALE_STEP_FACTOR = 50;

const kindOf = (r: MetricsRecord): string => String(r['type'] ?? r['kind'] ?? '');
const numberOf = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The status of a run from its records and when its metrics file last changed. */
export function runStatus(records: readonly MetricsRecord[], lastChangeMs: number, nowMs: number): RunStatus {
  let lastStep = -1;
  const stepMs: number[] = [];
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    const kind = kindOf(r);
    if (kind === 'step') {
      if (lastStep < 0) lastStep = numberOf(r['step']) ?? -1;
      const ms = numberOf(r['step_ms']);
      if (ms !== undefined) stepMs.push(ms);
      if (stepMs.length >= 20) break;
      continue;
    }
    if (kind === 'resume') break;
    if (lastStep >= 0) continue; // an end-of-session record followed by more steps ended nothing
    if (kind === 'diverged') {
      const at = numberOf(r['step']);
      return { state: 'failed', detail: `diverged${at !== undefined ? ` at step ${at}` : ''}${typeof r['reason'] === 'string' ? `: ${r['reason']}` : ''}` };
    }
    if (kind === 'checkpoint' && r['reason'] === 'final') return { state: 'finished', detail: `finished at step ${numberOf(r['step']) ?? '?'}` };
    if (kind === 'checkpoint' && r['reason'] === 'manual' && i === records.length - 1) {
      return { state: 'interrupted', detail: `stopped at step ${numberOf(r['step']) ?? '?'} with a checkpoint (continue with stackwise train --resume)` };
    }
  }
  stepMs.sort((a, b) => a - b);
  const median = stepMs.length ? stepMs[Math.floor(stepMs.length / 2)]! : 0;
  const staleAfter = Math.max(STALE_AFTER_MIN_MS, STALE_STEP_FACTOR * median);
  const idle = nowMs - lastChangeMs;
  if (lastChangeMs > 0 && idle > staleAfter) {
    return { state: 'interrupted', detail: `no record for ${Math.round(idle / 60_000)} min: the process stopped before the run's end (no final checkpoint)` };
  }
  return { state: 'running', detail: lastStep >= 0 ? `at step ${lastStep + 1}` : 'starting' };
}

export interface RunConfigSummary {
  /** One line: preset, width, depth, steps, objective, optimizer, phases. */
  text: string;
  total_steps: number | null;
}

const CONFIG_FILE = 'config.yaml';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/** The summary of a run folder's config.yaml (text '' when there is none or it cannot be read). */
export function readConfigSummary(runDir: string): RunConfigSummary {
  const path = `${runDir}/${CONFIG_FILE}`;
  if (!existsSync(path) || statSync(path).size > 1 << 20) return { text: '', total_steps: null };
  let config: Obj;
  try {
    config = obj(parseYaml(readFileSync(path, 'utf8')));
  } catch {
    return { text: `${CONFIG_FILE} unreadable`, total_steps: null };
  }
  const model = obj(config['model']);
  const data = obj(config['data']);
  const training = obj(config['training']);
  const optimizer = obj(config['optimizer']);
  const parts: string[] = [];
  const preset = typeof model['preset'] === 'string' ? model['preset'] : 'custom';
  parts.push(`${preset}${numberOf(model['d_model']) !== undefined ? ` d${model['d_model']}` : ''}`);
  const stacks = numberOf(model['n_stacks']);
  const blocks = numberOf(model['blocks_per_stack']);
  if (stacks !== undefined) parts.push(`${stacks} stack${stacks === 1 ? '' : 's'}${blocks !== undefined ? ` × ${blocks} block${blocks === 1 ? '' : 's'}` : ''}`);
  const mode = training['mode'];
  const modeName = typeof mode === 'string' ? mode : typeof obj(mode)['kind'] === 'string' ? obj(mode)['kind'] as string : undefined;
  if (modeName) parts.push(modeName);
  const total = numberOf(training['total_steps']) ?? null;
  if (total !== null) parts.push(`${total} steps`);
  const corpus = typeof data['corpus'] === 'string' ? data['corpus'] : obj(data['corpus'])['kind'];
  const objective = data['objective'];
  if (typeof objective === 'string' || typeof corpus === 'string') parts.push([objective, corpus].filter((x) => typeof x === 'string').join(' on '));
  const opt = typeof optimizer['type'] === 'string' ? optimizer['type'] : '';
  const lr = numberOf(optimizer['lr']) ?? numberOf(obj(optimizer['lr_schedule'])['lr']);
  if (opt || lr !== undefined) parts.push(`${opt}${lr !== undefined ? ` lr ${lr}` : ''}`.trim());
  const schedule = Array.isArray(config['schedule']) ? config['schedule'].length : 0;
  if (schedule > 1) parts.push(`${schedule} phases`);
  return { text: parts.join(' · '), total_steps: total };
}
