/** The `stackwise` command line. Each subcommand lives in its own file. */
import { Command, CommanderError } from 'commander';
import { registerInfoCommand } from './info.js';
import { registerBenchCommand } from './bench.js';

const program = new Command();
program
  .name('stackwise')
  .description('Progressive, time-driven training of transformer language models')
  .showHelpAfterError()
  .exitOverride();

registerInfoCommand(program);
registerBenchCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  process.stderr.write(`stackwise: ${(e as Error).message}\n`);
  process.exit(1);
}
