/**
 * The data a run report is drawn from: a plain, JSON-serialisable object. Times are normalized
 * training time t ∈ [0, 1] (step k of T has t = k / T). Fields use the same snake_case names as
 * the metrics JSONL.
 */

/** What a stack is doing over an interval of t. */
export type StackState = 'trainable' | 'frozen' | 'adapted' | 'quantized';
export const STACK_STATES: readonly StackState[] = ['trainable', 'frozen', 'adapted', 'quantized'];

/** The model-plane events drawn as vertical lines. */
export type RunEventKind = 'grow' | 'freeze' | 'adapters' | 'quantize';
export const RUN_EVENT_KINDS: readonly RunEventKind[] = ['grow', 'freeze', 'adapters', 'quantize'];

export interface ReportPhase {
  name: string;
  /** Half-open interval [start_t, end_t). */
  start_t: number;
  end_t: number;
}

export interface ReportStep {
  step: number;
  t: number;
  phase?: string | null;
  /** Training loss (NaN/Infinity are shown as divergence markers). */
  loss?: number | null;
  lr?: number | null;
  tokens_per_s?: number | null;
}

export interface ReportEval {
  t: number;
  step?: number | null;
  val_loss: number | null;
  val_ppl?: number | null;
  /** Bits per UTF-8 byte of the validation text (causal runs with a tokenizer): compares runs across tokenizers. */
  val_bpb?: number | null;
  /** Masked diffusion: the NELBO perplexity bound and its standard error. */
  val_ppl_bound?: number | null;
  val_ppl_bound_se?: number | null;
}

export interface ReportEvent {
  t: number;
  kind: RunEventKind;
  description: string;
  step?: number | null;
}

export interface ReportStackEntry {
  index: number;
  /** One state, or several at once (e.g. a quantized trunk that carries LoRA adapters). */
  state: StackState | StackState[];
}

/** From `t` until the next entry (or the end of the run), the rack looks like this. */
export interface ReportStackSnapshot {
  t: number;
  stacks: ReportStackEntry[];
}

export type SummaryValue = string | number | boolean | null;

/**
 * Memory and compute of one phase (a progressive run's `resources` record): parameters, bytes and
 * FLOPs per token. A value the record lacks is null.
 */
export interface ReportResources {
  phase: string;
  t: number;
  step?: number | null;
  stacks: number | null;
  trainable_params: number | null;
  frozen_params: number | null;
  adapter_params: number | null;
  weights_bytes: number | null;
  grads_bytes: number | null;
  optimizer_state_bytes: number | null;
  cached_activations_memory_bytes: number | null;
  cached_activations_disk_bytes: number | null;
  total_bytes: number | null;
  /** Training FLOPs per token (forward + backward), without and with the activation cache. */
  train_flops_per_token: number | null;
  train_cached_flops_per_token: number | null;
  cached_prefix_stacks?: number | null;
  optimizer?: string | null;
  /** Activation cache hits so far, at the phase's end (the cached bytes are then the phase end's too). */
  cache_hits?: number | null;
}

export interface RunReportData {
  run_name: string;
  phases: ReportPhase[];
  steps: ReportStep[];
  evals: ReportEval[];
  events: ReportEvent[];
  stack_timeline: ReportStackSnapshot[];
  /** Per-phase memory and compute (progressive runs), in t order. */
  resources?: ReportResources[];
  /** Shown as a key/value table at the top of the report (in insertion order). */
  summary: Record<string, SummaryValue>;
  /** Optional notes printed under the summary (e.g. what the reader had to guess). */
  notes?: string[];
  /** ISO date shown in the footer (default: now). */
  generated_at?: string;
}

/** An empty report data object for `run_name`. */
export function emptyRunReportData(run_name: string): RunReportData {
  return { run_name, phases: [], steps: [], evals: [], events: [], stack_timeline: [], summary: {} };
}
