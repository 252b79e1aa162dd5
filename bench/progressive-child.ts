/**
 * Child process of `bench progressive` (one variant per process, so that peak RSS is its own):
 *   node dist/bench/progressive-child.js <full|frozen|cached> [--steps N] [--batches N] [--chunk N] [--no-profile]
 *
 * The model is the engine's reference shape built with the nn presets, as 8 stacks × 1 block:
 * LLaMA-style (vocab 4096, d_model 256, 4 heads, RMSNorm, RoPE, SwiGLU FFN 688, untied head with
 * final norm), seq 128, batch 8, AdamW lr 1e-3, causal-LM loss. "Training the last stack":
 *  - full:   every parameter trains (backprop through all 8 stacks, embedding and head);
 *  - frozen: embedding and stacks 0–6 frozen; stack 7 and the head (final norm + output
 *            projection) train. Model.forward runs the frozen prefix without a tape, in its own
 *            scope (Rack.forward), so its activations are freed at once;
 *  - cached: as frozen, but the prefix output comes from an ActivationCache
 *            (CachedPrefixForward, exact staleness check on by default).
 * Every variant scores the batch with the fused head + loss (Model.forwardLoss / lossFromHidden:
 * E.linearCrossEntropy, no [B, S, V] logits; `--chunk N` sets its rows per chunk).
 * The data is a fixed set of `batches` random-token batches cycled in order; the first pass over
 * them is the warm-up (it fills the cache in the cached variant) and is reported separately, the
 * median ms/step is taken over the later steps (all cache hits). Prints one JSON line.
 */
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { llamaConfig, Model } from '../src/nn/index.js';
import { AdamW } from '../src/optim/index.js';
import { ActivationCache, CachedPrefixForward } from '../src/training/progressive/activation-cache.js';
import { median, peakRssMb, round, GEMM_OPS } from './stats.js';

export type ProgressiveVariant = 'full' | 'frozen' | 'cached';
export const VARIANTS: readonly ProgressiveVariant[] = ['full', 'frozen', 'cached'];

export const SHAPE = { vocab: 4096, dModel: 256, heads: 4, ffn: 688, stacks: 8, seq: 128, batch: 8 } as const;

export interface ChildOptions { steps?: number; batches?: number; profile?: boolean; /** Rows per chunk of the fused loss. */ chunk?: number }

const rssNowMb = () => process.memoryUsage().rss / 1048576;

export function runVariant(variant: ProgressiveVariant, opts: ChildOptions = {}): Record<string, unknown> {
  const steps = opts.steps ?? 12, nBatches = opts.batches ?? 4;
  const { vocab, dModel, heads, ffn, stacks, seq, batch } = SHAPE;
  const rssStart = rssNowMb();
  const model = Model.fromConfig(llamaConfig({ vocabSize: vocab, dModel, nLayers: stacks, nHeads: heads, dFF: ffn, stacks, maxPositions: seq }), { seed: 1 });
  if (variant !== 'full') {
    model.freeze();
    model.rack.stacks.at(stacks - 1).unfreeze();
    model.head.unfreeze();
  }
  const trainable = model.trainableParameters().map(([, t]) => t);
  const opt = new AdamW(trainable, { lr: 1e-3, weightDecay: 0 });
  const cache = variant === 'cached' ? new ActivationCache({ memoryBudgetBytes: 256 << 20 }) : null;
  const cached = cache ? new CachedPrefixForward(model, { cache }) : null;
  const data: Tensor[] = Array.from({ length: nBatches }, (_, i) => E.keep(E.randInt([batch, seq], vocab, { seed: 100 + i })));
  const sampleIds = (i: number) => Array.from({ length: batch }, (_, r) => i * batch + r);
  // The build's JavaScript garbage (random-init arrays) is not training memory: collect it now
  // (the parent runs children with --expose-gc) so that no variant's peak depends on when V8
  // happens to free it.
  (globalThis as { gc?: () => void }).gc?.();
  const rssBuilt = rssNowMb();
  const peakBuilt = peakRssMb();

  let prefixStacks = 0;
  const step = (s: number): number => {
    const i = s % nBatches;
    const loss = E.tidy(() => {
      const ids = data[i]!;
      let l: Tensor;
      if (cached) {
        const r = cached.forwardHidden(ids, sampleIds(i));
        prefixStacks = r.prefixStacks;
        l = model.lossFromHidden(r.hidden, ids, { chunkSize: opts.chunk });
      } else {
        l = model.forwardLoss(ids, ids, { chunkSize: opts.chunk });
      }
      l.backward();
      return l.item();
    });
    opt.step();
    model.zeroGrad();
    return loss;
  };

  const warmTimes: number[] = [], times: number[] = [], losses: number[] = [];
  for (let s = 0; s < nBatches + steps; s++) {
    const t0 = performance.now();
    losses.push(step(s));
    const dt = performance.now() - t0;
    (s < nBatches ? warmTimes : times).push(dt);
  }
  const peak = peakRssMb();

  // One extra profiled step (after the peak was read): kernel time by op vs the rest.
  let profile: Record<string, unknown> = {};
  if (opts.profile !== false) {
    E.startProfiling();
    const t0 = performance.now();
    step(nBatches + steps);
    const total = performance.now() - t0;
    const prof = E.stopProfiling();
    let gemm = 0, other = 0;
    const kernels: Record<string, number> = {};
    for (const [op, t] of [...prof].sort((a, b) => b[1].ms - a[1].ms)) {
      kernels[op] = round(t.ms, 2);
      if (GEMM_OPS.has(op)) gemm += t.ms; else other += t.ms;
    }
    profile = { profiled_step_ms: round(total), gemm_ms: round(gemm), non_gemm_kernel_ms: round(other), js_overhead_ms: round(total - gemm - other), kernels_ms: kernels };
  }

  // What the cache's exact staleness check (the prefix's structure and write versions) costs per step.
  let versionMs: number | null = null;
  if (cached) {
    const ts: number[] = [];
    for (let r = 0; r < 5; r++) { const t0 = performance.now(); cached.prefixVersion(); ts.push(performance.now() - t0); }
    versionMs = median(ts);
  }

  const ms = median(times);
  const tokens = batch * seq;
  const trainableParams = trainable.reduce((n, t) => n + t.size, 0);
  const out = {
    bench: 'progressive',
    variant,
    model: `llama vocab=${vocab} d=${dModel} heads=${heads} ffn=${ffn} (swiglu), ${stacks} stacks x 1 block, untied head`,
    trains: variant === 'full' ? 'everything' : `stack ${stacks - 1} + head (final norm, output projection); embedding and stacks 0-${stacks - 2} frozen`,
    seq, batch, steps, distinct_batches: nBatches,
    loss_path: 'fused linearCrossEntropy', loss_chunk_rows: opts.chunk ?? E.defaultChunkSize(batch * seq, vocab),
    threads: E.engineInfo().threads,
    // Other processes on the machine: with as many OpenMP threads as cores, every parallel region
    // waits for a descheduled thread, and the many small kernels of full backprop suffer most.
    load_avg_1m: round(loadavg()[0]!, 2),
    tokens_per_s: round(tokens / (ms / 1000)),
    ms_per_step_median: round(ms),
    warmup_ms_per_step_median: round(median(warmTimes)),
    peak_rss_mb: round(peak),
    rss_start_mb: round(rssStart),
    rss_after_build_mb: round(rssBuilt),
    peak_rss_after_build_mb: round(peakBuilt),
    rss_end_mb: round(rssNowMb()),
    native_peak_mb: round(E.memoryInfo().peakBytes / 1048576),
    trainable_params: trainableParams,
    total_params: model.numParameters(),
    prefix_stacks_cached: cached ? prefixStacks : 0,
    cache: cache ? cache.stats : null,
    prefix_version_check_ms: versionMs === null ? null : round(versionMs, 2),
    loss_first: round(losses[0]!, 4),
    loss_last: round(losses[losses.length - 1]!, 4),
    ...profile,
  };
  cache?.dispose();
  opt.dispose();
  for (const d of data) d.dispose();
  model.dispose();
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [variant, ...rest] = process.argv.slice(2);
  if (!VARIANTS.includes(variant as ProgressiveVariant)) {
    process.stderr.write(`usage: node dist/bench/progressive-child.js <${VARIANTS.join('|')}> [--steps N] [--batches N] [--threads N] [--chunk N] [--no-profile]\n`);
    process.exit(2);
  }
  const flag = (f: string): number | undefined => {
    const i = rest.indexOf(f);
    return i >= 0 ? Number(rest[i + 1]) : undefined;
  };
  const threads = flag('--threads');
  if (threads) E.setNumThreads(threads);
  const r = runVariant(variant as ProgressiveVariant, { steps: flag('--steps'), batches: flag('--batches'), chunk: flag('--chunk'), profile: !rest.includes('--no-profile') });
  process.stdout.write(JSON.stringify(r) + '\n');
}
