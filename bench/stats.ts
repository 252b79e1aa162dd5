/** Small helpers shared by the benchmarks: medians, peak RSS, JSON lines. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export { median } from '../src/engine/index.js';

/** Runs a child process that prints JSON lines: its last JSON line, or why there is none. */
export function runChildJson(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Record<string, unknown> | string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) return `child exited with ${r.status}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}`;
  return JSON.parse(line) as Record<string, unknown>;
}

/** Peak resident set size of this process in MB (VmHWM), or the current RSS elsewhere. */
export function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss / 1048576;
}

export function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The ops whose profiled time counts as GEMM time in the benchmarks' GEMM / non-GEMM split. The
 * fused head + loss counts as GEMM: its three GEMMs per chunk (logits, dHidden, dWeight) dominate
 * it; its softmax work (one exp per logit) is inside it too. */
export const GEMM_OPS: ReadonlySet<string> = new Set(['matmul', 'linear', 'linearGroup', 'linearGroupGradInput', 'linearCrossEntropy']);
