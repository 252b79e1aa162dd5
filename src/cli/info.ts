/** `stackwise info`: what the engine runs on (backend, BLAS, OpenBLAS core, threads). */
import type { Command } from 'commander';
import * as E from '../engine/index.js';
import { measureGemmRate } from '../training/plan/index.js';

export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('show the engine backend, BLAS library, OpenBLAS core type, SIMD path, thread count and measured GEMM peak')
    .option('--json', 'print one JSON object')
    .option('--no-peak', 'skip measuring the GEMM peak (about a second)')
    .action((opts: { json?: boolean; peak: boolean }) => {
      const info = E.engineInfo();
      const peak = opts.peak ? E.measureGemmPeak() : null;
      // The measured GEMM rate `stackwise plan` turns into step times (about half a second).
      const gemm = opts.peak && info.native ? measureGemmRate() : null;
      const rates = gemm ? { gemm_gflops: Math.round(gemm.fp32Gflops * 10) / 10, nf4_gemm_gflops: Math.round(gemm.nf4Gflops * 10) / 10 } : { gemm_gflops: null, nf4_gemm_gflops: null };
      if (opts.json) { process.stdout.write(JSON.stringify({ ...info, gemmPeakGflops: peak ? Math.round(peak.gflops * 10) / 10 : null, ...rates }) + '\n'); return; }
      const rows: [string, string][] = [
        ['CPU', info.cpu],
        ['backend', info.defaultBackend],
        ['native addon', info.native ? 'loaded' : 'not available'],
        ['BLAS', info.blas ?? '-'],
        ['OpenBLAS core', info.openblasCore ?? '-'],
        ['OPENBLAS_CORETYPE', `${info.openblasCoretypeEnv ?? '(unset)'}${info.coretypeSetByStackwise ? ' (set by stackwise: AVX-512 CPU)' : ''}`],
        ['threads', String(info.threads ?? '-')],
        ['BLAS threading', info.blasThreading ?? '-'],
        ['SIMD kernels', info.simd ?? '-'],
        ['GEMM rate', gemm ? `${rates.gemm_gflops} GFLOP/s fp32, ${rates.nf4_gemm_gflops} GFLOP/s through NF4 weights (${gemm.size}³, measured now)` : '-'],
      ];
      if (peak) rows.push(['GEMM peak', `${peak.gflops.toFixed(1)} GFLOP/s float32 (measured now at ${peak.shape.join('×')}, ${info.threads ?? 1} threads)`]);
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(20)}${v}\n`);
    });
}
