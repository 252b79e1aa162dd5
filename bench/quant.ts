/**
 * `bench quant`: quantized frozen weights.
 *  - quant-matmul: GFLOP/s of y = x · dequant(W)ᵀ (forward) and dx = dy · dequant(W) (input
 *    gradient) at M = N = K = 1024 for nf4 (± double quantization), int8, fp16, bf16, next to the
 *    fp32 linear / matmul on the same shapes; plus small-M latencies (decoding-like).
 *  - quant-error: bits per parameter and round-trip error of each format on a 1024×1024 N(0, 0.02)
 *    weight (max error relative to its bound, relative RMS error).
 *  - quant-logits: logit gap between an fp32 model and the same model with its trunk quantized.
 *  - quant-rss: peak RSS of training the last stack of an 8-stack model with an fp32, an int8 and an
 *    NF4 trunk, each in its own child process (bench/quant-rss.ts).
 */
import { fileURLToPath } from 'node:url';
import * as E from '../src/engine/index.js';
import type { QuantFormat, Tensor } from '../src/engine/index.js';
import { llama } from '../src/nn/index.js';
import { quantizeModule } from '../src/nn/quantized-linear.js';
import { emit, median, round, runChildJson } from './stats.js';

const CASES: [QuantFormat, boolean][] = [['nf4', true], ['nf4', false], ['int8', false], ['fp16', false], ['bf16', false]];
const name = (f: QuantFormat, dq: boolean) => `${f}${dq ? '+dq' : ''}`;

function timeMs(fn: () => Tensor, reps: number): number {
  const ts: number[] = [];
  for (let r = 0; r < reps + 2; r++) {
    const t0 = performance.now();
    const y = fn();
    const dt = performance.now() - t0;
    y.dispose();
    if (r >= 2) ts.push(dt);
  }
  return median(ts);
}

/** Median times of two computations measured alternately (both see the same machine load). */
function pairedMs(a: () => Tensor, b: () => Tensor, reps: number): [number, number] {
  const ta: number[] = [], tb: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    for (const [fn, ts] of [[a, ta], [b, tb]] as const) {
      const t0 = performance.now();
      const y = fn();
      const dt = performance.now() - t0;
      y.dispose();
      if (r > 0) ts.push(dt);
    }
  }
  return [median(ta), median(tb)];
}

function matmulBench(): void {
  const M = 1024, N = 1024, K = 1024, flop = 2 * M * N * K, reps = 11;
  const gf = (ms: number) => round(flop / (ms / 1000) / 1e9);
  const w = E.randn([N, K], { seed: 1, std: 0.02 });
  const x = E.randn([M, K], { seed: 2 });
  const dy = E.randn([M, N], { seed: 3 });
  for (const [f, dq] of CASES) {
    const q = E.quantizeWeight(w, f, { doubleQuant: dq });
    const qIn = [...q.tensors(), ...(dq ? [E.dynamicQuantCodeTensor(q.backend)] : [])];
    // Each quantized product is timed alternately with its fp32 counterpart.
    const [fwd32, fwd] = pairedMs(() => E.linear(x, w), () => E.quantizedLinear(x, q), reps);
    const [bwd32, bwd] = pairedMs(() => E.matmul(dy, w), () => E.runOp('quantizedLinearGradInput', [dy, ...qIn], { format: f, doubleQuant: dq, rows: N, cols: K })[0], reps);
    const deq = timeMs(() => q.dequantize(), 20);
    emit({
      bench: 'quant-matmul', format: name(f, dq), m: M, n: N, k: K,
      fwd_gflops: gf(fwd), fp32_fwd_gflops: gf(fwd32), fwd_ratio_to_fp32: round(fwd32 / fwd, 3),
      dx_gflops: gf(bwd), fp32_dx_gflops: gf(bwd32), dx_ratio_to_fp32: round(bwd32 / bwd, 3),
      dequantize_whole_ms: round(deq, 3),
    });
    q.dispose();
  }
  // Few rows (decoding): the weight's memory traffic dominates.
  const q = E.quantizeWeight(w, 'nf4', { doubleQuant: true });
  const q8 = E.quantizeWeight(w, 'int8');
  for (const m of [1, 16, 64]) {
    const xs = E.randn([m, K], { seed: 4 });
    emit({
      bench: 'quant-matmul-small', m, n: N, k: K,
      fp32_ms: round(timeMs(() => E.linear(xs, w), 30), 3),
      nf4dq_ms: round(timeMs(() => E.quantizedLinear(xs, q), 30), 3),
      int8_ms: round(timeMs(() => E.quantizedLinear(xs, q8), 30), 3),
    });
    xs.dispose();
  }
  for (const t of [q, q8]) t.dispose();
  for (const t of [w, x, dy]) t.dispose();
}

function errorBench(): void {
  const w = E.randn([1024, 1024], { seed: 5, std: 0.02 });
  const v = w.toArray();
  const n = v.length;
  for (const [f, dq] of CASES) {
    const q = E.quantizeWeight(w, f, { doubleQuant: dq });
    const d = q.dequantize().toArray();
    let se = 0, sr = 0, worstRatio = 0;
    const bound = new Float64Array(n);
    if (f === 'nf4') {
      for (let b = 0; b < n / 64; b++) {
        let a = 0;
        for (let i = b * 64; i < (b + 1) * 64; i++) a = Math.max(a, Math.abs(v[i]));
        for (let i = b * 64; i < (b + 1) * 64; i++) bound[i] = E.NF4_HALF_MAX_GAP * a;
      }
    } else if (f === 'int8') {
      for (let r = 0; r < 1024; r++) {
        let a = 0;
        for (let c = 0; c < 1024; c++) a = Math.max(a, Math.abs(v[r * 1024 + c]));
        for (let c = 0; c < 1024; c++) bound[r * 1024 + c] = a / 127;
      }
    }
    for (let i = 0; i < n; i++) {
      const e = d[i] - v[i];
      se += e * e;
      sr += v[i] * v[i];
      if (bound[i] > 0) worstRatio = Math.max(worstRatio, Math.abs(e) / bound[i]);
    }
    emit({
      bench: 'quant-error', format: name(f, dq), shape: [1024, 1024],
      bits_per_param: round(q.bitsPerParameter(), 4), bytes: q.bytes(),
      rel_rms_error: round(Math.sqrt(se / sr), 5),
      max_error_over_bound: f === 'nf4' || f === 'int8' ? round(worstRatio, 4) : null,
      bound: f === 'nf4' ? 'half the widest NF4 gap x block absmax' : f === 'int8' ? 'row absmax / 127' : 'exact round-to-nearest-even',
    });
    q.dispose();
  }
  w.dispose();
}

function logitsBench(): void {
  const cfg = { vocabSize: 1024, dModel: 256, nLayers: 8, nHeads: 4, stacks: 8, seed: 11 };
  const ids = E.randInt([2, 64], 1024, { seed: 12 });
  const ref = E.tidy(() => llama(cfg).forward(ids).logits.toArray());
  for (const [f, dq] of CASES) {
    const m = llama(cfg);
    m.freeze();
    m.rack.stacks.at(7).unfreeze();
    quantizeModule(m, f, { doubleQuant: dq });
    const y = E.tidy(() => m.forward(ids).logits.toArray());
    let se = 0, sr = 0, mx = 0, mr = 0;
    for (let i = 0; i < y.length; i++) {
      se += (y[i] - ref[i]) ** 2;
      sr += ref[i] ** 2;
      mx = Math.max(mx, Math.abs(y[i] - ref[i]));
      mr = Math.max(mr, Math.abs(ref[i]));
    }
    emit({
      bench: 'quant-logits', format: name(f, dq), model: 'llama d=256 (random init, std 0.02), 8 stacks x 1 block, trunk = stacks 0-6',
      rel_rms_gap: round(Math.sqrt(se / sr), 5), max_abs_gap: round(mx, 5), max_abs_logit: round(mr, 4),
    });
    m.dispose();
  }
  ids.dispose();
}

function rssBench(): void {
  const script = fileURLToPath(new URL('./quant-rss.js', import.meta.url));
  const results = new Map<string, Record<string, unknown>>();
  for (const variant of ['fp32', 'int8', 'nf4']) {
    const res = runChildJson(process.execPath, [script, variant]);
    if (typeof res === 'string') {
      emit({ bench: 'quant-rss', variant, error: res });
      continue;
    }
    results.set(variant, res);
    emit(res);
  }
  const fp = results.get('fp32');
  for (const v of ['int8', 'nf4']) {
    const q = results.get(v);
    if (!fp || !q) continue;
    emit({
      bench: 'quant-rss-compare', variant: v,
      peak_rss_mb: q.peak_rss_mb, fp32_peak_rss_mb: fp.peak_rss_mb,
      peak_rss_ratio: round((q.peak_rss_mb as number) / (fp.peak_rss_mb as number), 3),
      saved_mb: round((fp.peak_rss_mb as number) - (q.peak_rss_mb as number)),
      trunk_mb: q.trunk_mb, fp32_trunk_mb: fp.trunk_mb,
      loss_gap_step0: round(Math.abs((q.losses as number[])[0] - (fp.losses as number[])[0]), 5),
    });
  }
}

export function benchQuant(): void {
  emit({ bench: 'engine-info', ...E.engineInfo() });
  matmulBench();
  errorBench();
  logitsBench();
  rssBench();
}
