/**
 * Child process of `bench scale` (one shape per process, so that its peak RSS is its own):
 *   node dist/bench/scale-child.js <config.yaml> --cache-dir DIR [--steps N] [--seq S] [--batch B] [--distinct K]
 *
 * Builds the config's LLaMA shape with every stack but the last frozen in NF4 (created directly
 * in NF4, one stack at a time: nn/buildModelWithFrozenStacks), freezes the embedding with the
 * trunk, and trains the last stack and the head with AdamW for a few steps on Moby-Dick (the
 * config's BPE asked for 32000 tokens, which stops at 16343 on Moby-Dick; trained once by the
 * parent into DIR; the model keeps the shape's 32000 rows) with the activation cache
 * serving the frozen prefix. Batches cycle over K distinct aligned windows, so after the first K
 * steps the prefix comes from the cache. Prints one JSON line: plan's prediction (the same state
 * as phase 2 of a two-phase stack-wise config) beside the measured peak RSS, build time, tokens/s,
 * the loss of each step (and which batch it was on: from step K on, a batch already trained on)
 * and the loss of a batch never trained on, before and after the steps.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import * as E from '../src/engine/index.js';
import { loadDataPlane, modelConfigFromPlane, type ModelPlaneConfig } from '../src/framework/index.js';
import { buildModelWithFrozenStacks } from '../src/nn/index.js';
import { AdamW } from '../src/optim/index.js';
import { ActivationCache, CachedPrefixForward, measureGemmRate, parseConfig, parseConfigText, planRun } from '../src/training/index.js';
import { peakRssMb, round } from './stats.js';

export interface ScaleOptions {
  steps: number;
  seq: number;
  batch: number;
  distinct: number;
  cacheMb: number;
}

/** The bench's state as a config: phase 1 the trunk (N−1 stacks), phase 2 the last stack over the frozen NF4 trunk. */
export function scaleConfig(path: string, o: ScaleOptions): Record<string, unknown> {
  const raw = parseConfigText(readFileSync(path, 'utf8'), path) as Record<string, Record<string, unknown>>;
  const model = raw['model']!;
  const n = model['n_stacks'] as number;
  return {
    ...raw,
    // The shape's vocabulary: the tokenizer's vocab_size (32000) unless the config names one.
    model: { ...model, vocab_size: model['vocab_size'] ?? (raw['data']!['tokenizer'] as { vocab_size: number }).vocab_size, progressive: { freeze: 'frozen_trunk', trunk_format: 'nf4', activation_cache: { memory_budget_mb: o.cacheMb } } },
    // Moby-Dick: its BPE stops at 16343 tokens (no pair left to merge), all inside the shape's 32000 rows.
    data: { ...raw['data'], corpus: 'moby-dick', seq_len: o.seq, batch_size: o.batch },
    optimizer: { lr: 1e-3, weight_decay: 0 },
    training: { ...raw['training'], total_steps: 2 * o.distinct, memory_check: false },
    schedule: [
      { name: 'trunk', start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: n - 1 } } },
      { name: 'last-stack', start_t: 0.5, end_t: 1 },
    ],
  };
}

export function runScale(path: string, cacheDir: string, o: ScaleOptions): Record<string, unknown> {
  const parsed = parseConfig(scaleConfig(path, o), { source: path });
  const phase = parsed.phases[1]!;
  const gemm = measureGemmRate();
  const plan = planRun(parsed, { gemmGflops: gemm.fp32Gflops, quantGemmGflops: gemm.nf4Gflops }).phases[1]!;
  const data = loadDataPlane(phase.data!, cacheDir);
  const plane = phase.model as ModelPlaneConfig;
  // The shape's vocabulary (32000 rows); the tokenizer's ids (fewer on Moby-Dick) all index into it.
  if (plane.vocab_size === undefined || data.vocabSize > plane.vocab_size) throw new Error(`${path}: model.vocab_size ${plane.vocab_size} must hold the tokenizer's ${data.vocabSize} ids`);
  const config = modelConfigFromPlane(plane, { maxSeqLen: o.seq });
  const n = plane.n_stacks;
  const rssBeforeBuild = process.memoryUsage().rss / 2 ** 20;
  const t0 = performance.now();
  const model = buildModelWithFrozenStacks(config, { seed: 0, frozenStacks: n - 1, format: 'nf4' });
  const buildS = (performance.now() - t0) / 1000;
  const peakAfterBuild = peakRssMb();
  const trainable = model.trainableParameters().map(([, t]) => t);
  const opt = new AdamW(trainable, { lr: 1e-3, weightDecay: 0 });
  const cache = new ActivationCache({ memoryBudgetBytes: o.cacheMb * 2 ** 20 });
  const cached = new CachedPrefixForward(model, { cache });
  const losses: number[] = [], stepS: number[] = [], reused: number[] = [];
  const { seq: S, batch: B } = o;
  const batchIds = (k: number) => {
    const sampleIds = Array.from({ length: B }, (_, b) => k * B + b);
    const ids = new Int32Array(B * S);
    sampleIds.forEach((id, b) => ids.set(data.train.window(id * S, S), b * S));
    return { sampleIds, ids };
  };
  // The batches cycle, so the loss of step ≥ distinct is on a batch already trained on: after a
  // first AdamW step (sign descent: every trained weight moves by lr), a repeated batch's targets
  // lead by tens of logits at d ≥ 2048 and its loss drops towards 0. The loss of batch `distinct`
  // (never trained on) before and after the steps says what was learnt beyond memorising.
  const heldOutLoss = (): number => {
    const { ids } = batchIds(o.distinct);
    return E.tidy(() => E.noGrad(() => {
      const x = E.tensor(ids, [B, S], { dtype: 'int32' });
      return model.lossFromHidden(model.forwardHidden(x), x).item();
    }));
  };
  const heldOutBefore = heldOutLoss();
  for (let s = 0; s < o.steps; s++) {
    const k = s % o.distinct;
    const { sampleIds, ids } = batchIds(k);
    const t = performance.now();
    const x = E.tensor(ids, [B, S], { dtype: 'int32' });
    const loss = E.tidy(() => {
      const r = cached.forwardHidden(x, sampleIds);
      reused.push(r.reusedRows);
      const l = model.lossFromHidden(r.hidden, x);
      l.backward();
      return l.item();
    });
    opt.step();
    model.zeroGrad();
    x.dispose();
    stepS.push((performance.now() - t) / 1000);
    losses.push(loss);
  }
  const heldOutAfter = heldOutLoss();
  const missSteps = stepS.filter((_, i) => reused[i] === 0);
  const hitSteps = stepS.filter((_, i) => reused[i] === B);
  const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : null);
  const measured = peakRssMb();
  const predicted = plan.bytes.peak / 2 ** 20;
  const out = {
    bench: 'scale',
    config: path.replace(/^.*configs\//, 'configs/'),
    tokenizer_vocab: data.vocabSize,
    params: model.numParameters(),
    stacks: n,
    trunk: `stacks 0-${n - 2} NF4 (double-quant), frozen with the embedding; stack ${n - 1} and the head train (AdamW fp32)`,
    seq: S, batch: B, steps: o.steps, distinct_batches: o.distinct,
    predicted_peak_rss_mb: round(predicted),
    measured_peak_rss_mb: round(measured),
    plan_error_pct: round((100 * (predicted - measured)) / measured, 1),
    predicted_weights_mb: round(plan.bytes.weights / 2 ** 20),
    measured_weights_mb: round(model.numBytes() / 2 ** 20),
    peak_rss_after_build_mb: round(peakAfterBuild),
    rss_before_build_mb: round(rssBeforeBuild),
    build_s: round(buildS, 1),
    step_s_computed_prefix: mean(missSteps) === null ? null : round(mean(missSteps)!, 2),
    step_s_cached_prefix: mean(hitSteps) === null ? null : round(mean(hitSteps)!, 2),
    predicted_step_s_cached: plan.stepSeconds === null ? null : round(plan.stepSeconds, 2),
    tokens_per_s: round((o.steps * B * S) / stepS.reduce((a, b) => a + b, 0), 1),
    // Four significant digits: a memorised batch's loss is small, not zero.
    losses: losses.map((l) => Number(l.toPrecision(4))),
    loss_batches: losses.map((_, i) => i % o.distinct),
    held_out_loss_before_after: [Number(heldOutBefore.toPrecision(4)), Number(heldOutAfter.toPrecision(4))],
    gemm_gflops: round(gemm.fp32Gflops), nf4_gemm_gflops: round(gemm.nf4Gflops),
    load_avg_1m: round(loadavg()[0]!, 2),
  };
  cache.dispose();
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [path, ...rest] = process.argv.slice(2);
  const flag = (f: string, d: number): number => {
    const i = rest.indexOf(f);
    return i >= 0 ? Number(rest[i + 1]) : d;
  };
  const dirAt = rest.indexOf('--cache-dir');
  if (!path || dirAt < 0) {
    process.stderr.write('usage: node dist/bench/scale-child.js <config.yaml> --cache-dir DIR [--steps N] [--seq S] [--batch B] [--distinct K] [--cache-mb MB]\n');
    process.exit(2);
  }
  const r = runScale(path, rest[dirAt + 1]!, { steps: flag('--steps', 4), seq: flag('--seq', 64), batch: flag('--batch', 2), distinct: flag('--distinct', 2), cacheMb: flag('--cache-mb', 64) });
  process.stdout.write(JSON.stringify(r) + '\n');
}
