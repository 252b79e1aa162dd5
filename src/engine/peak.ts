/**
 * The machine's measured GEMM peak: what a training step's FLOP rate is compared against.
 * float32 matmul at a few square-ish sizes (the shapes a transformer step's GEMMs have), the
 * best median rate; measured, not nominal, because a shared or throttled machine never reaches
 * the nominal FMA rate.
 */
import { noGrad } from './autograd.js';
import { tidy } from './scope.js';
import { matmul } from './ops/matmul.js';
import { randn } from './ops/creation.js';
import { median } from './profiler.js';

export interface GemmPeak {
  /** Best median GFLOP/s over the sizes. */
  gflops: number;
  /** The [M, N, K] that gave it. */
  shape: [number, number, number];
  /** GFLOP/s per size, in the order measured. */
  bySize: { shape: [number, number, number]; gflops: number }[];
}

/** Sizes measured by default: 512³ and the 1024×1024×256 shape of a d-256 step's projections. */
export const GEMM_PEAK_SIZES: [number, number, number][] = [[512, 512, 512], [1024, 1024, 256], [1024, 768, 768]];

/** Measures the float32 GEMM rate of the default backend with its current thread count
 * (median of `reps` calls per size after one warm-up call). */
export function measureGemmPeak(opts: { sizes?: [number, number, number][]; reps?: number } = {}): GemmPeak {
  const sizes = opts.sizes ?? GEMM_PEAK_SIZES;
  const reps = opts.reps ?? 7;
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`measureGemmPeak: reps must be a positive integer, found ${reps}`);
  const bySize = noGrad(() => sizes.map(([m, n, k]) => tidy(() => {
    const a = randn([m, k], { seed: 1 }), b = randn([k, n], { seed: 2 });
    const times: number[] = [];
    for (let r = 0; r <= reps; r++) {
      tidy(() => {
        const t0 = performance.now();
        matmul(a, b);
        if (r > 0) times.push(performance.now() - t0);
      });
    }
    return { shape: [m, n, k] as [number, number, number], gflops: (2 * m * n * k) / (median(times) * 1e6) };
  })));
  const best = bySize.reduce((x, y) => (y.gflops > x.gflops ? y : x));
  return { gflops: best.gflops, shape: best.shape, bySize };
}
