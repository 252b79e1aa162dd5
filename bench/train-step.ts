/**
 * `bench train-step`: the engine issue's reference shape — a LLaMA-style decoder (vocab 4096,
 * d_model 256, 4 layers, 4 heads, RMSNorm, RoPE, SwiGLU FFN 688, untied head), seq 128,
 * batch 8, AdamW lr 1e-3, random tokens from a fixed seed. The model is written directly with
 * engine ops so the benchmark measures the engine alone.
 */
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { AdamW } from '../src/optim/index.js';
import { emit, median, peakRssMb, round } from './stats.js';

export interface TrainStepShape {
  vocab: number; dModel: number; layers: number; heads: number; kvHeads: number; ffn: number; seq: number; batch: number;
}

export const REFERENCE_SHAPE: TrainStepShape = { vocab: 4096, dModel: 256, layers: 4, heads: 4, kvHeads: 4, ffn: 688, seq: 128, batch: 8 };

interface Layer { attnNorm: Tensor; wq: Tensor; wk: Tensor; wv: Tensor; wo: Tensor; ffnNorm: Tensor; wGate: Tensor; wUp: Tensor; wDown: Tensor }

export class BenchLlama {
  readonly embed: Tensor;
  readonly layers: Layer[] = [];
  readonly norm: Tensor;
  readonly head: Tensor;

  constructor(readonly s: TrainStepShape, seed = 0) {
    let k = seed * 1000;
    const p = (shape: number[]) => { const t = E.keep(E.randn(shape, { seed: k++, std: 0.02 })); t.requiresGrad = true; return t; };
    const ones = (n: number) => { const t = E.keep(E.ones([n])); t.requiresGrad = true; return t; };
    const hd = s.dModel / s.heads;
    this.embed = p([s.vocab, s.dModel]);
    for (let i = 0; i < s.layers; i++) {
      this.layers.push({
        attnNorm: ones(s.dModel), wq: p([s.dModel, s.dModel]), wk: p([s.kvHeads * hd, s.dModel]), wv: p([s.kvHeads * hd, s.dModel]),
        wo: p([s.dModel, s.dModel]), ffnNorm: ones(s.dModel), wGate: p([s.ffn, s.dModel]), wUp: p([s.ffn, s.dModel]), wDown: p([s.dModel, s.ffn]),
      });
    }
    this.norm = ones(s.dModel);
    this.head = p([s.vocab, s.dModel]);
  }

  parameters(): Tensor[] {
    return [this.embed, ...this.layers.flatMap((l) => Object.values(l)), this.norm, this.head];
  }

  /** Mean next-token cross-entropy of `targets` given `inputs` (both int32 [B, S]). */
  loss(inputs: Tensor, targets: Tensor): Tensor {
    const { batch: B, seq: S, heads: H, kvHeads: Hkv, dModel: D } = this.s;
    const hd = D / H;
    let x = E.embedding(this.embed, inputs); // [B, S, D]
    for (const l of this.layers) {
      const h = E.rmsNorm(x, l.attnNorm, 1e-6);
      const q = E.rope(E.reshape(E.linear(h, l.wq), [B, S, H, hd]), { theta: 10000 });
      const k = E.rope(E.reshape(E.linear(h, l.wk), [B, S, Hkv, hd]), { theta: 10000 });
      const v = E.reshape(E.linear(h, l.wv), [B, S, Hkv, hd]);
      const a = E.reshape(E.attention(q, k, v, { causal: true }), [B, S, D]);
      x = E.add(x, E.linear(a, l.wo));
      const h2 = E.rmsNorm(x, l.ffnNorm, 1e-6);
      x = E.add(x, E.linear(E.swiglu(E.linear(h2, l.wGate), E.linear(h2, l.wUp)), l.wDown));
    }
    const logits = E.linear(E.rmsNorm(x, this.norm, 1e-6), this.head); // [B, S, V]
    return E.crossEntropy(E.reshape(logits, [B * S, this.s.vocab]), E.reshape(targets, [B * S]));
  }
}

/** Random token batches from a fixed seed: inputs = tokens[0..S), targets = tokens[1..S]. */
export function randomBatch(s: TrainStepShape, step: number, seed = 1234): { inputs: Tensor; targets: Tensor } {
  const rand = E.seededRandom(seed + step * 7919);
  const ins = new Int32Array(s.batch * s.seq), tgs = new Int32Array(s.batch * s.seq);
  for (let b = 0; b < s.batch; b++) {
    let prev = Math.floor(rand() * s.vocab);
    for (let t = 0; t < s.seq; t++) {
      const next = Math.floor(rand() * s.vocab);
      ins[b * s.seq + t] = prev;
      tgs[b * s.seq + t] = next;
      prev = next;
    }
  }
  return { inputs: E.tensor(ins, [s.batch, s.seq], { dtype: 'int32' }), targets: E.tensor(tgs, [s.batch, s.seq], { dtype: 'int32' }) };
}

export interface TrainStepResult {
  tokensPerS: number; msPerStepMedian: number; peakRssMb: number; lossFirst: number; lossLast: number; gemmMs: number; nonGemmMs: number; otherMs: number;
  kernels: Record<string, number>;
}

export function runTrainSteps(shape: TrainStepShape, steps: number, warmup: number): TrainStepResult {
  const model = new BenchLlama(shape, 0);
  const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.0 });
  const times: number[] = [];
  let lossFirst = NaN, lossLast = NaN;
  const step = (i: number): number => E.tidy(() => {
    const { inputs, targets } = randomBatch(shape, i);
    opt.zeroGrad();
    const loss = model.loss(inputs, targets);
    loss.backward();
    opt.step();
    return loss.item();
  });
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    const loss = step(i);
    const dt = performance.now() - t0;
    if (i === 0) lossFirst = loss;
    if (i >= warmup) { times.push(dt); lossLast = loss; }
  }
  // One extra profiled step: kernel time by op, GEMM (matmul/linear) vs the rest.
  E.startProfiling();
  const t0 = performance.now();
  step(warmup + steps);
  const total = performance.now() - t0;
  const prof = E.stopProfiling();
  let gemm = 0, other = 0;
  const kernels: Record<string, number> = {};
  for (const [op, t] of prof) {
    kernels[op] = round(t.ms, 2);
    if (op === 'matmul' || op === 'linear') gemm += t.ms; else other += t.ms;
  }
  opt.zeroGrad();
  opt.dispose();
  for (const p of model.parameters()) p.dispose();
  const ms = median(times);
  return {
    tokensPerS: (shape.batch * shape.seq) / (ms / 1000), msPerStepMedian: ms, peakRssMb: peakRssMb(), lossFirst, lossLast,
    gemmMs: gemm, nonGemmMs: other, otherMs: total - gemm - other, kernels,
  };
}

export function benchTrainStep(args: { steps?: number; warmup?: number; threads?: number } = {}): void {
  if (args.threads) E.setNumThreads(args.threads);
  const r = runTrainSteps(REFERENCE_SHAPE, args.steps ?? 20, args.warmup ?? 3);
  const profiled = r.gemmMs + r.nonGemmMs + r.otherMs;
  emit({
    bench: 'train-step', engine: 'stackwise', backend: E.getDefaultBackend().name, threads: E.engineInfo().threads, core: E.engineInfo().openblasCore,
    ...REFERENCE_SHAPE, tokens_per_s: round(r.tokensPerS), ms_per_step_median: round(r.msPerStepMedian), peak_rss_mb: round(r.peakRssMb),
    loss_first: round(r.lossFirst, 4), loss_last: round(r.lossLast, 4),
    profiled_step_ms: round(profiled), gemm_ms: round(r.gemmMs), non_gemm_kernel_ms: round(r.nonGemmMs), js_overhead_ms: round(r.otherMs),
    non_gemm_fraction: round(r.nonGemmMs / profiled, 3), kernels_ms: r.kernels,
  });
}
