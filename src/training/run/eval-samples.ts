/**
 * `--task samples`: N samples drawn with the run's own sampler (causal: left to right after EOS;
 * time-as-depth: the depth unroll; other diffusion runs: masked-diffusion steps), judged by a
 * causal run — generative perplexity and unigram entropy, beside the same figures for windows of
 * real text from the run's split (the yardstick).
 */
import { resolve } from 'node:path';
import { generateSamples, sampleQuality, type SampleQuality, type SamplerKind } from '../evaluation/index.js';
import { UsageError } from './errors.js';
import { splitTokens, type EvalOptions } from './eval-lm.js';
import { depthScheduleOf, loadRun, type LoadedRun } from './load-run.js';

export interface SamplesEvalResult extends SampleQuality {
  task: 'samples';
  checkpoint: string;
  step: number;
  sampler: SamplerKind;
  /** Diffusion: denoising steps (null: one token per step); depth: the stacks. */
  steps: number | null;
  temperature: number;
  judge: string;
  /** The same figures for windows of real text (the split), as the yardstick. */
  reference: SampleQuality & { split: string };
}

function samplerOf(run: LoadedRun): SamplerKind {
  if (run.objective === 'clm') return 'clm';
  if (run.objective === 'diffusion') return run.data?.mask?.kind === 'depth' ? 'depth' : 'diffusion';
  throw new Error('--task samples: an MLM run is not a generative model; give a causal or masked-diffusion run');
}

export function evalSamples(run: LoadedRun, opts: EvalOptions): SamplesEvalResult {
  if (!opts.judge) throw new UsageError('--task samples needs --judge <causal run folder or checkpoint>');
  if (!run.tokenizer) throw new Error('--task samples needs a run trained on text (with a tokenizer): the judge reads the samples as text');
  const sampler = samplerOf(run);
  if (sampler !== 'diffusion' && opts.steps !== undefined) throw new UsageError(`--steps applies to masked-diffusion sampling; this run samples with the ${sampler === 'clm' ? 'causal' : 'depth-unroll'} sampler`);
  const judgeRun = loadRun(opts.judge, opts.backend ? { backend: opts.backend } : {});
  try {
    if (judgeRun.objective !== 'clm' || judgeRun.model.timeEmbedding) throw new Error(`--judge ${opts.judge}: the judge must be a causal LM run (its objective is ${judgeRun.objective})`);
    if (!judgeRun.tokenizer) throw new Error(`--judge ${opts.judge}: the judge must read text (it has no tokenizer)`);
    const judgeSeqLen = judgeRun.data?.seq_len ?? judgeRun.model.config.embedding.maxPositions ?? 1024;
    const judge = { model: judgeRun.model, tokenizer: judgeRun.tokenizer, seqLen: judgeSeqLen, startTokenId: judgeRun.tokenizer.special.EOS };
    const count = opts.samples ?? 16;
    const length = opts.sampleLength ?? run.data!.seq_len;
    const temperature = opts.temperature ?? 1;
    const tok = run.tokenizer;
    const special = [tok.special.PAD, tok.special.MASK, tok.special.CLS, tok.special.SEP, tok.special.BOS].filter((x, i, a) => x !== tok.special.EOS && a.indexOf(x) === i);
    const samples = generateSamples(run.model, {
      sampler, count, length, temperature, seed: opts.seed ?? 0, excludeIds: special,
      ...(sampler === 'clm' ? { startTokenId: tok.special.EOS } : { maskTokenId: run.maskTokenId! }),
      ...(sampler === 'depth' ? { schedule: depthScheduleOf(run) } : {}),
      ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
    });
    const source = { tokenizer: tok, separatorId: tok.special.EOS };
    const split = opts.split ?? 'val';
    const ids = splitTokens(run, split);
    if (ids.length < count * length) throw new Error(`the ${split} split holds ${ids.length} tokens, fewer than ${count} reference windows of ${length}`);
    const stride = Math.floor(ids.length / count);
    const real = Array.from({ length: count }, (_, c) => [...ids.subarray(c * stride, c * stride + length)]);
    return {
      task: 'samples', checkpoint: resolve(run.checkpoint), step: run.step, sampler,
      steps: sampler === 'diffusion' ? (opts.steps ?? null) : sampler === 'depth' ? run.model.rack.numStacks : null,
      temperature, judge: resolve(judgeRun.checkpoint),
      ...sampleQuality(samples, judge, source),
      reference: { split, ...sampleQuality(real, judge, source) },
    };
  } finally {
    judgeRun.model.dispose();
  }
}
