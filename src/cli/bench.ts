/** `stackwise bench <name>`: the same benchmarks as `npm run bench -- <name>`. */
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run a benchmark (matmul, train-step, …); prints one JSON line per measurement')
    .argument('<name>', 'benchmark name')
    .allowUnknownOption()
    .argument('[args...]', 'benchmark options, e.g. --steps 20 --threads 2')
    .action((name: string, args: string[]) => {
      const main = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'main.js');
      const r = spawnSync(process.execPath, [main, name, ...args], { stdio: 'inherit' });
      process.exitCode = r.status ?? 1;
    });
}
