/** Micro-benchmark of the fused attention op (forward and backward kernels). */
import '../setup.js'; // registers the backends and kernels when this module is imported alone
import { getBackend, availableBackends, getDefaultBackend } from '../backend-registry.js';
import { noGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import { runOp } from '../run-op.js';
import type { Backend } from '../backend.js';
import { randn } from './creation.js';
import type { AttentionAttrs } from './attention.js';
import { median } from '../profiler.js';

export interface AttentionBenchResult {
  /** Median time of one forward call (ms). */
  forwardMs: number;
  /** Median time of one backward call (the fused gradient kernel, ms). */
  backwardMs: number;
  /** Useful GFLOP/s of forward + backward together. Counts 4·B·H·S·Sk·D flops forward and 2.5×
   * that backward, halved for causal masking (the FlashAttention convention). */
  gflops: number;
  shape: { B: number; S: number; H: number; D: number; causal: boolean };
  backend: string;
}

export interface AttentionBenchOptions {
  B?: number;
  S?: number;
  H?: number;
  D?: number;
  causal?: boolean;
  runs?: number;
  backend?: Backend | string;
}

/** Times attention on [B, S, H, D] (default B=8, S=128, H=4, D=64, causal), median of `runs`
 * (default 20) after two warm-up runs, on the native backend when it is available. */
export function benchAttention(opts: AttentionBenchOptions = {}): AttentionBenchResult {
  const { B = 8, S = 128, H = 4, D = 64, causal = true, runs = 20 } = opts;
  const backend = opts.backend === undefined
    ? (availableBackends().includes('native') ? getBackend('native') : getDefaultBackend())
    : typeof opts.backend === 'string' ? getBackend(opts.backend) : opts.backend;
  const attrs: AttentionAttrs = { causal, scale: 1 / Math.sqrt(D) };
  const fwd: number[] = [], bwd: number[] = [];
  noGrad(() => tidy(() => {
    const [q, k, v, dOut] = [0, 1, 2, 3].map((i) => randn([B, S, H, D], { backend, seed: 1234 + i }));
    for (let r = 0; r < runs + 2; r++) {
      tidy(() => {
        const t0 = performance.now();
        const [out, lse] = runOp<AttentionAttrs>('attention', [q, k, v], attrs, backend);
        const t1 = performance.now();
        runOp<AttentionAttrs>('attentionGradOut', [q, k, v, out, lse, dOut], attrs, backend);
        const t2 = performance.now();
        if (r >= 2) { fwd.push(t1 - t0); bwd.push(t2 - t1); }
      });
    }
  }));
  const forwardMs = median(fwd), backwardMs = median(bwd);
  const flopsFwd = 4 * B * H * S * S * D * (causal ? 0.5 : 1);
  const gflops = (flopsFwd * 3.5) / ((forwardMs + backwardMs) * 1e6);
  return { forwardMs, backwardMs, gflops, shape: { B, S, H, D, causal }, backend: backend.name };
}
