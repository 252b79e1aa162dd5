/** `bench matmul`: GFLOP/s of the engine's matmul at the sizes, next to the same
 * OpenBLAS sgemm called from plain C (built on the fly when a C compiler and OpenBLAS exist). */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../src/engine/index.js';
import { emit, median, round } from './stats.js';

export const MATMUL_SIZES: [number, number, number][] = [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048], [1024, 1024, 256]];

function engineGflops(m: number, n: number, k: number, transA = false, transB = false): number {
  const a = E.randn(transA ? [k, m] : [m, k], { seed: 1 });
  const b = E.randn(transB ? [n, k] : [k, n], { seed: 2 });
  const flop = 2 * m * n * k;
  const reps = flop > 4e9 ? 5 : flop > 2e8 ? 15 : 60;
  const times: number[] = [];
  for (let r = 0; r < reps + 2; r++) {
    const t0 = performance.now();
    const c = E.matmul(a, b, { transA, transB });
    const dt = performance.now() - t0;
    c.dispose();
    if (r >= 2) times.push(dt);
  }
  a.dispose();
  b.dispose();
  return flop / (median(times) / 1000) / 1e9;
}

function cBaseline(root: string, sizes: [number, number, number][]): Map<string, number> {
  const out = new Map<string, number>();
  const bin = join(root, 'build', 'sgemm_bench');
  try {
    if (!existsSync(bin)) {
      mkdirSync(join(root, 'build'), { recursive: true });
      execFileSync('cc', ['-O2', join(root, 'native', 'bench', 'sgemm_bench.c'), '-lopenblas', '-o', bin], { stdio: 'pipe' });
    }
    const text = execFileSync(bin, sizes.flat().map(String), { encoding: 'utf8', env: process.env });
    for (const line of text.trim().split('\n')) {
      const r = JSON.parse(line) as { m: number; n: number; k: number; gflops: number; core: string };
      out.set(`${r.m}x${r.n}x${r.k}`, r.gflops);
      emit({ ...r });
    }
  } catch (e) {
    emit({ bench: 'sgemm-c', skipped: `C baseline unavailable: ${(e as Error).message.split('\n')[0]}` });
  }
  return out;
}

export function benchMatmul(root: string): void {
  const info = E.engineInfo();
  emit({ bench: 'engine-info', ...info });
  // M=1024, K=256, N=1024: [m, n, k] = [1024, 1024, 256]
  const baseline = cBaseline(root, MATMUL_SIZES);
  for (const [m, n, k] of MATMUL_SIZES) {
    const g = engineGflops(m, n, k);
    const c = baseline.get(`${m}x${n}x${k}`);
    emit({ bench: 'matmul', m, n, k, gflops: round(g), c_gflops: c ?? null, ratio_to_c: c ? round(g / c, 3) : null, core: info.openblasCore });
  }
  for (const [tA, tB] of [[true, false], [false, true]] as const) {
    emit({ bench: 'matmul', m: 1024, n: 1024, k: 1024, transA: tA, transB: tB, gflops: round(engineGflops(1024, 1024, 1024, tA, tB)), core: info.openblasCore });
  }
}
