/**
 * Sampling entry points: `sampleRun(run, opts)` generates from a loaded run — left to right (CLM),
 * [MASK] filling (MLM), masked-diffusion sampling, or the time-as-depth single pass through the
 * stacks — and `runSample(target, opts)` loads the run first. The options are the `stackwise
 * sample` flags; a new sampling mode adds a case to SAMPLERS.
 */
import { resolve } from 'node:path';
import type { StorageFormat } from '../../engine/index.js';
import { OBJECTIVES, type ObjectiveName } from '../../framework/index.js';
import { depthUnrollSample, diffusionSample, fillMask, generate } from '../sampling/index.js';
import { UsageError } from './errors.js';
import { MASK_TEXT, decodeIds, depthScheduleOf, encodePrompt, loadRun, type LoadedRun } from './load-run.js';

/** How `sample` generates: the objectives' samplers, and `depth` (the time-as-depth single-pass unroll). */
export type SampleMode = ObjectiveName | 'depth';
export const SAMPLE_MODES: readonly SampleMode[] = [...OBJECTIVES, 'depth'];

export interface SampleOptions {
  prompt?: string;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  mode?: SampleMode;
  steps?: number;
  count?: number;
  backend?: string;
  /** Storage of the rack's linear weights while sampling (see LoadRunOptions.loadFormat). */
  loadFormat?: StorageFormat;
}

export interface Sample {
  text: string;
  ids: number[];
  generated: string;
}

export interface SampleResult {
  checkpoint: string;
  step: number;
  mode: SampleMode;
  prompt: string;
  samples: Sample[];
}

interface SampleContext {
  run: LoadedRun;
  opts: SampleOptions;
  prompt: string;
  seed: number;
  sampling: { temperature?: number; topK?: number; topP?: number };
}

function clmSample({ run, opts, prompt, seed, sampling }: SampleContext): Sample {
  if (run.model.timeEmbedding) throw new UsageError('--mode clm: this model has a time embedding (time-as-input, trained by masked diffusion) and cannot generate left to right; use --mode diffusion, mlm or depth');
  let ids = encodePrompt(run, prompt);
  if (ids.length === 0) {
    if (!run.tokenizer) throw new UsageError('--prompt: give at least one token id');
    ids = [run.tokenizer.special.EOS]; // documents are separated by EOS: start a new one
  }
  if (run.maskTokenId !== undefined && ids.includes(run.maskTokenId) && run.tokenizer) throw new UsageError(`--prompt: ${MASK_TEXT} only makes sense with --mode mlm or diffusion`);
  const special = run.tokenizer ? [run.tokenizer.special.PAD, run.tokenizer.special.MASK, run.tokenizer.special.CLS, run.tokenizer.special.SEP].filter((x) => x !== undefined) : [];
  const r = generate(run.model, [ids], { maxNewTokens: opts.maxTokens ?? 64, seed, excludeIds: special, ...sampling, ...(run.tokenizer ? { eosTokenId: run.tokenizer.special.EOS } : {}) });
  const gen = r.generated[0]!.filter((t) => !run.tokenizer || t !== run.tokenizer.special.EOS);
  return { text: decodeIds(run, [...(prompt === '' ? [] : encodePrompt(run, prompt)), ...gen]), ids: r.sequences[0]!, generated: decodeIds(run, gen) };
}

function maskedIds(run: LoadedRun, prompt: string): { ids: number[]; mask: number; hasMask: boolean } {
  if (run.maskTokenId === undefined) throw new Error('this run has no [MASK] token: it cannot fill masks');
  const ids = encodePrompt(run, prompt);
  return { ids, mask: run.maskTokenId, hasMask: ids.includes(run.maskTokenId) };
}

function mlmSample({ run, prompt, seed, sampling }: SampleContext): Sample {
  const { ids, mask, hasMask } = maskedIds(run, prompt);
  if (!hasMask) throw new UsageError(`--prompt: write ${MASK_TEXT} where tokens should be filled in, e.g. --prompt "The ${MASK_TEXT} of the Union"`);
  const r = fillMask(run.model, ids, { maskTokenId: mask, seed, mode: 'iterative', ...sampling });
  return { text: decodeIds(run, r.ids), ids: r.ids, generated: decodeIds(run, r.filled.map((f) => f.token)) };
}

function denoiseSample(depth: boolean) {
  return ({ run, opts, prompt, seed, sampling }: SampleContext): Sample => {
    const m = maskedIds(run, prompt);
    const ids = m.hasMask ? m.ids : [...m.ids, ...new Array<number>(opts.maxTokens ?? 32).fill(m.mask)];
    if (depth && opts.steps !== undefined) throw new UsageError('--steps: the depth unroll takes one step per stack; leave --steps out with --mode depth');
    const r = depth
      ? depthUnrollSample(run.model, { template: ids, maskTokenId: m.mask, seed, schedule: depthScheduleOf(run), ...sampling })
      : diffusionSample(run.model, { template: ids, maskTokenId: m.mask, seed, ...(opts.steps !== undefined ? { steps: opts.steps } : {}), ...sampling });
    // Generated = the tokens written where the input had [MASK] (anywhere, not only after the prompt).
    const filled = ids.flatMap((t, i) => (t === m.mask ? [r.ids[i]!] : []));
    return { text: decodeIds(run, r.ids), ids: r.ids, generated: decodeIds(run, filled) };
  };
}

/** One sampler per mode. */
export const SAMPLERS: Record<SampleMode, (ctx: SampleContext) => Sample> = {
  clm: clmSample,
  mlm: mlmSample,
  diffusion: denoiseSample(false),
  depth: denoiseSample(true),
};

/** Samples `opts.count` times (seeds seed, seed+1, …) from a loaded run (default mode: its objective). */
export function sampleRun(run: LoadedRun, opts: SampleOptions = {}): SampleResult {
  const mode = opts.mode ?? run.objective;
  const sampler = SAMPLERS[mode];
  if (!sampler) throw new UsageError(`--mode ${String(mode)}: expected one of ${SAMPLE_MODES.join(', ')}`);
  const prompt = opts.prompt ?? '';
  const sampling = {
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
    ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
    ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
  };
  const samples: Sample[] = [];
  for (let c = 0; c < (opts.count ?? 1); c++) samples.push(sampler({ run, opts, prompt, seed: (opts.seed ?? 0) + c, sampling }));
  return { checkpoint: resolve(run.checkpoint), step: run.step, mode, prompt, samples };
}

/** Loads a run folder (newest checkpoint) or checkpoint folder and samples from it (`stackwise sample`). */
export function runSample(target: string, opts: SampleOptions = {}): SampleResult {
  const run = loadRun(target, { ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.loadFormat ? { loadFormat: opts.loadFormat } : {}) });
  try {
    return sampleRun(run, opts);
  } finally {
    run.model.dispose();
  }
}
