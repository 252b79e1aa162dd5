/** `stackwise info`: what the engine runs on (backend, BLAS, OpenBLAS core, threads). */
import type { Command } from 'commander';
import * as E from '../engine/index.js';

export function registerInfoCommand(program: Command): void {
  program
    .command('info')
    .description('show the engine backend, BLAS library, OpenBLAS core type and thread count')
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean }) => {
      const info = E.engineInfo();
      if (opts.json) { process.stdout.write(JSON.stringify(info) + '\n'); return; }
      const rows: [string, string][] = [
        ['backend', info.defaultBackend],
        ['native addon', info.native ? 'loaded' : 'not available'],
        ['BLAS', info.blas ?? '-'],
        ['OpenBLAS core', info.openblasCore ?? '-'],
        ['OPENBLAS_CORETYPE', `${info.openblasCoretypeEnv ?? '(unset)'}${info.coretypeSetByStackwise ? ' (set by stackwise: AVX-512 CPU)' : ''}`],
        ['threads', String(info.threads ?? '-')],
        ['BLAS threading', info.blasThreading ?? '-'],
      ];
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(20)}${v}\n`);
    });
}
