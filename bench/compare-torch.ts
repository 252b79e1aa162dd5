/**
 * `bench train-step --compare-torch`: PyTorch and StackWise on the same reference step, side by
 * side in one run, alternating (torch, stackwise, torch, stackwise, …) so both see the same
 * machine load. PyTorch runs ../shared/bench/torch_bench.py (needs python3 with torch and
 * transformers); each StackWise round runs in a fresh child process like the PyTorch one.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emit, median, round, runChildJson } from './stats.js';

interface Line { tokens_per_s: number; ms_per_step_median: number; peak_rss_mb: number }

function runJson(cmd: string, args: string[]): Line | string {
  const out = runChildJson(cmd, args);
  if (typeof out !== 'string') process.stdout.write(JSON.stringify(out) + '\n');
  return out as Line | string;
}

export function benchCompareTorch(root: string, opts: { steps?: number; rounds?: number; threads?: number }): void {
  const steps = String(opts.steps ?? 20), threads = String(opts.threads ?? 2), rounds = opts.rounds ?? 2;
  const script = join(root, '..', 'shared', 'bench', 'torch_bench.py');
  const self = fileURLToPath(new URL('./main.js', import.meta.url));
  const torch: Line[] = [], ours: Line[] = [];
  for (let r = 0; r < rounds; r++) {
    if (existsSync(script)) {
      const t = runJson('python3', [script, '--steps', steps, '--threads', threads]);
      if (typeof t === 'string') emit({ bench: 'train-step-compare', torch_skipped: t });
      else torch.push(t);
    }
    const s = runJson(process.execPath, [self, 'train-step', '--steps', steps, '--threads', threads]);
    if (typeof s !== 'string') ours.push(s);
  }
  const med = (xs: Line[], k: keyof Line) => (xs.length ? round(median(xs.map((x) => x[k]))) : null);
  const oursTps = med(ours, 'tokens_per_s'), torchTps = med(torch, 'tokens_per_s');
  emit({
    bench: 'train-step-compare', rounds, threads: Number(threads),
    stackwise_tokens_per_s: oursTps, torch_tokens_per_s: torchTps,
    ratio: oursTps && torchTps ? round(oursTps / torchTps, 3) : null,
    stackwise_peak_rss_mb: med(ours, 'peak_rss_mb'), torch_peak_rss_mb: med(torch, 'peak_rss_mb'),
  });
}
