/**
 * Child process of `bench quant` (one variant per process, so that peak RSS is its own):
 *   node dist/bench/quant-rss.js <fp32|nf4|int8> [--steps N] [--dmodel D] [--seq S] [--batch B]
 *
 * Builds a LLaMA-style model of 8 stacks × 1 block with the nn presets (d_model 1024, 8 heads,
 * SwiGLU FFN 2816, vocab 2048, untied head), freezes everything but the last stack and trains it
 * with AdamW for a few steps on random tokens. The trunk (stacks 0–6) is either fp32, or
 * quantized layer by layer (NF4 with double quantization, or int8) as it is filled, so that its
 * fp32 copy never exists as a whole (what loading a quantized checkpoint does). Weights are
 * uniform with std 0.02 from fixed seeds: the same values in every variant. Prints one JSON line.
 */
import { pathToFileURL } from 'node:url';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { deriveSeed, Linear, llamaConfig, Model, withoutRandomInit } from '../src/nn/index.js';
import { QuantizedLinear, quantizationSummary, replaceModule } from '../src/nn/quantized-linear.js';
import { AdamW } from '../src/optim/index.js';
import { median, peakRssMb, round } from './stats.js';

export type RssVariant = 'fp32' | 'nf4' | 'int8';

export interface RssOptions {
  steps?: number;
  dModel?: number;
  seq?: number;
  batch?: number;
}

/** Writes uniform values (std `std`) into t in chunks: no full-size JS array is ever made. */
function fillUniform(t: Tensor, seed: number, std = 0.02): void {
  const a = std * Math.sqrt(3);
  const rand = E.seededRandom(seed);
  const chunk = new Float32Array(Math.min(t.size, 1 << 18));
  for (let off = 0; off < t.size; off += chunk.length) {
    const view = chunk.subarray(0, Math.min(chunk.length, t.size - off));
    for (let i = 0; i < view.length; i++) view[i] = (2 * rand() - 1) * a;
    t.write(view, off);
  }
}

const rssNowMb = () => process.memoryUsage().rss / 1048576;

export function runRssVariant(variant: RssVariant, opts: RssOptions = {}): Record<string, unknown> {
  const steps = opts.steps ?? 3, dModel = opts.dModel ?? 1024, seq = opts.seq ?? 128, batch = opts.batch ?? 2;
  const vocab = 2048, nStacks = 8;
  const config = llamaConfig({ vocabSize: vocab, dModel, nLayers: nStacks, nHeads: 8, stacks: nStacks, maxPositions: seq });
  const baselineRss = rssNowMb();
  const t0 = performance.now();
  // Zero-initialised parameters are fresh calloc'd pages: nothing is resident until written.
  const model = withoutRandomInit(() => Model.fromConfig(config, { seed: 1 }));
  const inTrunk = (path: string) => new RegExp(`^rack\\.stacks\\.[0-${nStacks - 2}]\\.`).test(path);
  let trunkParams = 0, trunkBytes = 0;
  // One fp32 scratch weight per shape, refilled layer after layer (no allocator churn).
  const scratch = new Map<string, Tensor>();
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof Linear) || !inTrunk(path)) continue;
    const seed = deriveSeed(1, `${path}.weight`);
    trunkParams += m.weight.size;
    if (variant === 'fp32') {
      fillUniform(m.weight, seed);
      trunkBytes += m.weight.bytes;
    } else {
      const key = m.weight.shape.join('x');
      if (!scratch.has(key)) scratch.set(key, E.zeros([...m.weight.shape]));
      const w = scratch.get(key)!;
      fillUniform(w, seed);
      const qw = E.quantizeWeight(w, variant, { doubleQuant: variant === 'nf4' });
      replaceModule(model, path, QuantizedLinear.adopt(m, qw));
      m.weight.dispose();
      trunkBytes += qw.bytes();
    }
  }
  for (const t of scratch.values()) t.dispose();
  for (const [name, t] of model.namedParameters()) {
    if (inTrunk(name) || /norm\.weight$/.test(name) || t.dtype !== 'float32') continue;
    fillUniform(t, deriveSeed(1, name));
  }
  model.freeze();
  model.rack.stacks.at(nStacks - 1).unfreeze();
  const trainable = model.trainableParameters().map(([, t]) => t);
  const opt = new AdamW(trainable, { lr: 1e-4 });
  const buildMs = performance.now() - t0;
  const rssAfterBuild = rssNowMb();
  const peakAfterBuild = peakRssMb();
  const ids = E.randInt([batch, seq], vocab, { seed: 3 });
  const losses: number[] = [];
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const ts = performance.now();
    const loss = E.tidy(() => {
      const l = model.loss(model.forward(ids).logits, ids);
      l.backward();
      return l.item();
    });
    opt.step();
    model.zeroGrad();
    times.push(performance.now() - ts);
    losses.push(loss);
  }
  const summary = variant === 'fp32' ? null : quantizationSummary(model);
  const mem = E.memoryInfo();
  const out = {
    bench: 'quant-rss',
    variant,
    model: `llama d=${dModel} ff=${config.stacks[0].block.dFF} vocab=${vocab}, ${nStacks} stacks x 1 block, trunk = stacks 0-${nStacks - 2} frozen${variant === 'fp32' ? ' fp32' : ` ${variant}${variant === 'nf4' ? '+dq' : ''}`}, last stack trained (AdamW)`,
    batch, seq, steps,
    trunk_params: trunkParams,
    trunk_mb: round(trunkBytes / 1048576, 1),
    trunk_bits_per_param: round((8 * trunkBytes) / trunkParams, 4),
    trainable_params: trainable.reduce((n, t) => n + t.size, 0),
    model_param_mb: round(model.numBytes() / 1048576, 1),
    bits_per_param_quantized: summary ? round(summary.bitsPerParameter, 4) : null,
    build_ms: Math.round(buildMs),
    rss_before_build_mb: round(baselineRss),
    rss_after_build_mb: round(rssAfterBuild),
    peak_rss_after_build_mb: round(peakAfterBuild),
    peak_rss_mb: round(peakRssMb()),
    native_live_mb: round(mem.bytes / 1048576, 1),
    step_ms: Math.round(median(times.slice(1).length ? times.slice(1) : times)),
    losses: losses.map((l) => round(l, 5)),
  };
  ids.dispose();
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [variant, ...rest] = process.argv.slice(2);
  if (variant !== 'fp32' && variant !== 'nf4' && variant !== 'int8') {
    process.stderr.write('usage: node dist/bench/quant-rss.js <fp32|nf4|int8> [--steps N] [--dmodel D] [--seq S] [--batch B]\n');
    process.exit(2);
  }
  const flag = (f: string): number | undefined => {
    const i = rest.indexOf(f);
    return i >= 0 ? Number(rest[i + 1]) : undefined;
  };
  const r = runRssVariant(variant, { steps: flag('--steps'), dModel: flag('--dmodel'), seq: flag('--seq'), batch: flag('--batch') });
  process.stdout.write(JSON.stringify(r) + '\n');
}
