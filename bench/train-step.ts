/**
 * `bench train-step [--shape reference|gpt2-small|llama-1b-layer]`: a LLaMA-style decoder
 * (RMSNorm, RoPE, SwiGLU, untied head) trained with AdamW lr 1e-3 on random tokens from a fixed
 * seed. Shapes: the engine issue's reference (vocab 4096, d_model 256, 4 layers, 4 heads, FFN
 * 688, seq 128, batch 8); gpt2-small-sized (d 768, 12 layers, 12 heads, FFN 2048, vocab 32000,
 * seq 512, batch 1); one LLaMA-1.1B-shaped block plus head (d 2048, 32 heads, 4 kv heads, FFN
 * 5632, vocab 32000, seq 512, batch 1). The model is written directly with engine ops (the same
 * fused ops the nn blocks use) so the benchmark measures the engine alone. Prints the FLOPs per
 * token, the achieved GFLOP/s and its fraction of the GEMM peak measured in the same process.
 */
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { AdamW } from '../src/optim/index.js';
import { emit, median, peakRssMb, round, GEMM_OPS } from './stats.js';

export interface TrainStepShape {
  vocab: number; dModel: number; layers: number; heads: number; kvHeads: number; ffn: number; seq: number; batch: number;
}

export const REFERENCE_SHAPE: TrainStepShape = { vocab: 4096, dModel: 256, layers: 4, heads: 4, kvHeads: 4, ffn: 688, seq: 128, batch: 8 };

/** The shapes `--shape` accepts. */
export const TRAIN_STEP_SHAPES: Record<string, TrainStepShape> = {
  reference: REFERENCE_SHAPE,
  'gpt2-small': { vocab: 32000, dModel: 768, layers: 12, heads: 12, kvHeads: 12, ffn: 2048, seq: 512, batch: 1 },
  'llama-1b-layer': { vocab: 32000, dModel: 2048, layers: 1, heads: 32, kvHeads: 4, ffn: 5632, seq: 512, batch: 1 },
};

export function trainStepShape(name: string): TrainStepShape {
  const s = TRAIN_STEP_SHAPES[name];
  if (!s) throw new Error(`bench train-step: unknown --shape '${name}' (expected ${Object.keys(TRAIN_STEP_SHAPES).join(', ')})`);
  return s;
}

/**
 * Training FLOPs per token of the step (forward + backward, the usual 3× forward): every matmul
 * (projections, FFN, head) 6·params, plus causal attention at the FlashAttention convention
 * (forward 4·seq·d per layer halved for the causal mask, backward 2.5× the forward). The embedding
 * gather, norms and elementwise work are not counted.
 */
export function trainFlopsPerToken(s: TrainStepShape): { total: number; gemm: number; attention: number } {
  const hd = s.dModel / s.heads;
  const perLayer = s.dModel * s.dModel * 2 + 2 * s.dModel * s.kvHeads * hd + 3 * s.dModel * s.ffn;
  const gemm = 6 * (s.layers * perLayer + s.vocab * s.dModel);
  const attention = s.layers * 4 * s.seq * s.dModel * 0.5 * 3.5;
  return { total: gemm + attention, gemm, attention };
}

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

  /** Mean next-token cross-entropy of `targets` given `inputs` (both int32 [B, S]); `recompute`: each layer through E.checkpoint. */
  loss(inputs: Tensor, targets: Tensor, opts: { recompute?: boolean } = {}): Tensor {
    let x = E.embedding(this.embed, inputs); // [B, S, D]
    for (const l of this.layers) x = opts.recompute ? E.checkpoint((y) => this.layer(l, y), x, Object.values(l)) : this.layer(l, x);
    // As Model.forwardLoss: the head's projection fused into the loss (no [B, S, V] logits).
    return E.linearCrossEntropy(E.rmsNorm(x, this.norm, 1e-6), this.head, targets);
  }

  /** One pre-norm LLaMA block (as the nn block: the attention's residual add fused into the FFN norm). */
  private layer(l: Layer, x: Tensor): Tensor {
    const { batch: B, seq: S, heads: H, kvHeads: Hkv, dModel: D } = this.s;
    const hd = D / H;
    const h = E.rmsNorm(x, l.attnNorm, 1e-6);
    const [qf, kf, vf] = E.linearGroup(h, [l.wq, l.wk, l.wv]);
    const q = E.rope(E.reshape(qf, [B, S, H, hd]), { theta: 10000 });
    const k = E.rope(E.reshape(kf, [B, S, Hkv, hd]), { theta: 10000 });
    const v = E.reshape(vf, [B, S, Hkv, hd]);
    const a = E.reshape(E.attention(q, k, v, { causal: true }), [B, S, D]);
    const [x1, h2] = E.addRmsNorm(x, E.linear(a, l.wo), l.ffnNorm, 1e-6);
    const [g, u] = E.linearGroup(h2, [l.wGate, l.wUp]);
    return E.add(x1, E.linear(E.swiglu(g, u), l.wDown));
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

/** `profiled` extra steps run under the profiler after the timed ones; the kernel times are their
 * sums (one step's split is noisy on a busy machine). */
export function runTrainSteps(shape: TrainStepShape, steps: number, warmup: number, profiled = 1): TrainStepResult {
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
  // Extra profiled steps: kernel time by op, GEMM (matmul/linear) vs the rest.
  E.startProfiling();
  const t0 = performance.now();
  for (let i = 0; i < profiled; i++) step(warmup + steps + i);
  const total = (performance.now() - t0) / profiled;
  const prof = E.stopProfiling();
  let gemm = 0, other = 0;
  const kernels: Record<string, number> = {};
  for (const [op, t] of prof) {
    kernels[op] = round(t.ms / profiled, 2);
    if (GEMM_OPS.has(op)) gemm += t.ms / profiled; else other += t.ms / profiled;
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

export interface BenchTrainStepArgs { steps?: number; warmup?: number; threads?: number | 'auto'; shape?: string }

export function benchTrainStep(args: BenchTrainStepArgs = {}): void {
  if (args.threads) E.setNumThreads(args.threads);
  const threadsAuto = E.engineInfo().threadsAuto;
  const shapeName = args.shape ?? 'reference';
  const shape = trainStepShape(shapeName);
  const big = shapeName !== 'reference';
  const peak = E.measureGemmPeak(big ? { sizes: [[1024, 768, 768], [512, 2048, 2048]], reps: 3 } : {});
  const profiledSteps = big ? 1 : 5;
  const r = runTrainSteps(shape, args.steps ?? (big ? 4 : 20), args.warmup ?? (big ? 1 : 3), profiledSteps);
  const profiled = r.gemmMs + r.nonGemmMs + r.otherMs;
  const flops = trainFlopsPerToken(shape);
  const achieved = (flops.total * r.tokensPerS) / 1e9;
  const attnMs = (r.kernels['attention'] ?? 0) + (r.kernels['attentionGradOut'] ?? 0);
  const attnFlops = flops.attention * shape.batch * shape.seq;
  emit({
    bench: 'train-step', engine: 'stackwise', shape: shapeName, backend: E.getDefaultBackend().name, threads: threadsAuto ? 'auto' : E.engineInfo().threads,
    cpu: E.engineInfo().cpu, core: E.engineInfo().openblasCore, simd: E.engineInfo().simd,
    ...shape, tokens_per_s: round(r.tokensPerS), ms_per_step_median: round(r.msPerStepMedian), peak_rss_mb: round(r.peakRssMb),
    loss_first: round(r.lossFirst, 4), loss_last: round(r.lossLast, 4),
    flops_per_token: Math.round(flops.total), gflops: round(achieved), gemm_peak_gflops: round(peak.gflops), fraction_of_peak: round(achieved / peak.gflops, 3),
    attention_gflops: attnMs > 0 ? round(attnFlops / (attnMs * 1e6)) : null, attention_fraction_of_peak: attnMs > 0 ? round(attnFlops / (attnMs * 1e6) / peak.gflops, 3) : null,
    profiled_steps: profiledSteps, profiled_step_ms: round(profiled), gemm_ms: round(r.gemmMs), non_gemm_kernel_ms: round(r.nonGemmMs), js_overhead_ms: round(r.otherMs),
    non_gemm_fraction: round(r.nonGemmMs / profiled, 3), kernels_ms: r.kernels,
  });
}
