/**
 * `bench optim [--params N]`: one AdamW step over a float32 parameter of N elements (default
 * 16 Mi) with float32 moments and with 8-bit block-wise moments (optimizer.state_format: int8),
 * the median of five steps after a warm-up; nanoseconds per parameter. The 8-bit update is the
 * one a stack-wise run of a large model pays on every trained parameter each step.
 */
import * as E from '../src/engine/index.js';
import { AdamW } from '../src/optim/index.js';
import { emit, median, round } from './stats.js';

export function benchOptim(opts: { params?: number } = {}): void {
  const n = opts.params ?? 16 * 1024 * 1024;
  if (!(Number.isInteger(n) && n >= 4096)) throw new Error(`bench optim: --params must be an integer of at least 4096, got ${n}`);
  for (const stateFormat of ['fp32', 'int8'] as const) {
    const p = E.keep(E.randn([n], { seed: 1, std: 0.02 }));
    p.requiresGrad = true;
    const opt = new AdamW([p], { lr: 1e-3, weightDecay: 0.1, stateFormat });
    const times: number[] = [];
    for (let s = 0; s < 6; s++) {
      p.grad = E.keep(E.randn([n], { seed: 100 + s, std: 0.01 }));
      const t0 = performance.now();
      opt.step();
      if (s > 0) times.push(performance.now() - t0);
      p.grad.dispose();
      p.grad = null;
    }
    const ms = median(times);
    emit({
      bench: 'optim', optimizer: 'adamw', state_format: stateFormat, params: n, threads: E.engineInfo().threads, cpu: E.engineInfo().cpu,
      ms_per_step: round(ms, 2), ns_per_param: round((ms * 1e6) / n, 2),
    });
    opt.dispose();
    p.dispose();
  }
}
