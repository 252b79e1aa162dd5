/**
 * The machine's measured matrix-multiply rate, which `stackwise plan` turns into step times and
 * `stackwise info` prints: float32 GEMM (x · Wᵀ through the engine's linear, as every projection
 * runs) and the same product through an NF4 weight (dequantized tile by tile, as a quantized trunk
 * runs). Median of a few repetitions on N×N×N products; about half a second in all.
 */
import * as E from '../../engine/index.js';

export interface GemmRate {
  /** Float32 x · Wᵀ, GFLOP/s. */
  fp32Gflops: number;
  /** The same product through an NF4 (double-quantized) weight, GFLOP/s. */
  nf4Gflops: number;
  /** Side of the square products. */
  size: number;
}

function medianMs(fn: () => E.Tensor, reps: number): number {
  const ts: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    fn().dispose();
    if (r > 0) ts.push(performance.now() - t0);
  }
  return E.median(ts);
}

export function measureGemmRate(size = 512, reps = 5): GemmRate {
  return E.tidy(() => {
    const w = E.randn([size, size], { seed: 1, std: 0.02 });
    const x = E.randn([size, size], { seed: 2 });
    const q = E.quantizeWeight(w, 'nf4', { doubleQuant: true });
    try {
      const flop = 2 * size ** 3;
      const fp32 = medianMs(() => E.linear(x, w), reps);
      const nf4 = medianMs(() => E.quantizedLinear(x, q), reps);
      return { fp32Gflops: flop / (fp32 / 1000) / 1e9, nf4Gflops: flop / (nf4 / 1000) / 1e9, size };
    } finally {
      q.dispose();
    }
  });
}
