/** `stackwise demo`: shows what the engine runs on and trains the engine's reference LLaMA-style
 * model for a few steps, printing the benchmark lines. */
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('engine demo: engine info, matmul GFLOP/s and the reference training step')
    .action(() => {
      const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'main.js');
      for (const name of ['matmul', 'train-step']) {
        const r = spawnSync(process.execPath, [main, name], { stdio: 'inherit' });
        if (r.status !== 0) { process.exitCode = r.status ?? 1; return; }
      }
    });
}
