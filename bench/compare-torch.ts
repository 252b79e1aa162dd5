/**
 * `bench train-step --compare-torch [--shape S] [--rounds N] [--load]`: PyTorch and StackWise on
 * the same training step, side by side in one run, alternating (torch, stackwise, torch, …) so
 * both see the same machine load. PyTorch runs ../shared/bench/torch_bench.py with the python
 * named by STACKWISE_PYTHON (default python3; it needs torch and transformers); each StackWise
 * round runs in a fresh child process like the PyTorch one.
 *
 * StackWise runs with its default adaptive thread count (auto, at most --threads); `--load`
 * starts one competing busy process pinned to one core (taskset -c 0) for the whole run and also
 * measures StackWise with a fixed 1 and a fixed --threads threads, so the line says whether 2
 * threads beat 1 under load and how each compares to PyTorch under the same load.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { emit, median, round, runChildJson } from './stats.js';
import { trainStepShape } from './train-step.js';

interface Line { tokens_per_s: number; ms_per_step_median: number; peak_rss_mb: number; gflops?: number; fraction_of_peak?: number; non_gemm_fraction?: number }

function runJson(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Line | string {
  const out = runChildJson(cmd, args, env);
  if (typeof out !== 'string') process.stdout.write(JSON.stringify(out) + '\n');
  return out as Line | string;
}

/** One busy process on core 0 (a spin loop in node), or null where taskset is missing. */
function startLoad(): ChildProcess | null {
  if (spawnSync('taskset', ['--version']).status !== 0) return null;
  return spawn('taskset', ['-c', '0', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' });
}

export interface CompareTorchOptions { steps?: number; rounds?: number; threads?: number; shape?: string; load?: boolean }

export function benchCompareTorch(root: string, opts: CompareTorchOptions): void {
  const shapeName = opts.shape ?? 'reference';
  const shape = trainStepShape(shapeName);
  const big = shapeName !== 'reference';
  const steps = String(opts.steps ?? (big ? 4 : 20)), warmup = big ? '1' : '3';
  const threads = String(opts.threads ?? 2), rounds = opts.rounds ?? 2;
  const python = process.env.STACKWISE_PYTHON || 'python3';
  const script = join(root, '..', 'shared', 'bench', 'torch_bench.py');
  const self = fileURLToPath(new URL('./main.js', import.meta.url));
  const torchArgs = [script, '--steps', steps, '--warmup', warmup, '--threads', threads, '--d-model', String(shape.dModel), '--layers', String(shape.layers),
    '--heads', String(shape.heads), '--kv-heads', String(shape.kvHeads), '--ffn', String(shape.ffn), '--vocab', String(shape.vocab),
    '--seq', String(shape.seq), '--batch', String(shape.batch)];
  const ours = (t: string) => [self, 'train-step', '--shape', shapeName, '--steps', steps, '--warmup', warmup, '--threads', t];
  // The adaptive default, capped at --threads.
  const oursAuto = () => { const a = ours('auto'); return { args: a, env: { ...process.env, OMP_NUM_THREADS: threads, STACKWISE_THREADS: 'auto' } }; };
  const load = opts.load ? startLoad() : null;
  if (opts.load && !load) emit({ bench: 'train-step-compare', load_skipped: 'taskset not found: cannot pin a competing process' });
  const torch: Line[] = [], stackwise: Line[] = [], single: Line[] = [], fixed: Line[] = [];
  const load1 = loadavg()[0];
  try {
    for (let r = 0; r < rounds; r++) {
      if (existsSync(script)) {
        const t = runJson(python, torchArgs);
        if (typeof t === 'string') emit({ bench: 'train-step-compare', torch_skipped: `${python}: ${t}` });
        else torch.push(t);
      } else if (r === 0) emit({ bench: 'train-step-compare', torch_skipped: `${script} not found` });
      const a = oursAuto();
      const s = runJson(process.execPath, a.args, a.env);
      if (typeof s !== 'string') stackwise.push(s);
      else emit({ bench: 'train-step-compare', stackwise_failed: s });
      if (load && threads !== '1') {
        const s1 = runJson(process.execPath, ours('1'));
        if (typeof s1 !== 'string') single.push(s1);
        const sn = runJson(process.execPath, ours(threads));
        if (typeof sn !== 'string') fixed.push(sn);
      }
    }
  } finally {
    load?.kill();
  }
  const med = (xs: Line[], k: keyof Line) => (xs.length ? round(median(xs.map((x) => x[k] as number)), 3) : null);
  const oursTps = med(stackwise, 'tokens_per_s'), torchTps = med(torch, 'tokens_per_s'), oneTps = med(single, 'tokens_per_s');
  const fixedTps = med(fixed, 'tokens_per_s');
  emit({
    bench: 'train-step-compare', shape: shapeName, rounds, threads: `auto (max ${threads})`, load: load !== null,
    loadavg_1min_start: round(load1, 2), loadavg_1min_end: round(loadavg()[0], 2),
    stackwise_tokens_per_s: oursTps, torch_tokens_per_s: torchTps,
    ratio: oursTps && torchTps ? round(oursTps / torchTps, 3) : null,
    ratio_per_round: torch.length === stackwise.length ? stackwise.map((s, i) => round(s.tokens_per_s / torch[i].tokens_per_s, 3)) : null,
    stackwise_gflops: med(stackwise, 'gflops'), stackwise_fraction_of_peak: med(stackwise, 'fraction_of_peak'), stackwise_non_gemm_fraction: med(stackwise, 'non_gemm_fraction'),
    ...(load ? {
      stackwise_1thread_tokens_per_s: oneTps, [`stackwise_${threads}threads_fixed_tokens_per_s`]: fixedTps,
      auto_over_one_thread: oursTps && oneTps ? round(oursTps / oneTps, 3) : null,
      fixed_over_one_thread: fixedTps && oneTps ? round(fixedTps / oneTps, 3) : null,
    } : {}),
    stackwise_peak_rss_mb: med(stackwise, 'peak_rss_mb'), torch_peak_rss_mb: med(torch, 'peak_rss_mb'),
  });
}
