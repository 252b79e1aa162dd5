/** The `stackwise` command line. Each subcommand lives in its own file. */
import { Command, CommanderError } from 'commander';
import { registerInfoCommand } from './info.js';
import { registerBenchCommand } from './bench.js';
import { registerDemoCommand } from './demo.js';
import { registerInspectCommand } from './inspect.js';
import { registerForwardCommand } from './forward.js';
import { registerReportCommand } from './report.js';
import { registerExportCommand } from './export.js';
import { registerTrainCommand } from './train.js';
import { registerSampleCommand } from './sample.js';
import { registerEvalCommand } from './eval.js';
import { registerServeCommand } from './serve.js';
import { registerPlanCommand } from './plan.js';
import { registerCompareCommand } from './compare.js';
import { reportParseError } from './output.js';

// `stackwise inspect … | head` closes our stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program
  .name('stackwise')
  .description('Progressive, time-driven training of transformer language models')
  .showHelpAfterError()
  .exitOverride();

registerInfoCommand(program);
registerBenchCommand(program);
registerDemoCommand(program);
registerInspectCommand(program);
registerForwardCommand(program);
registerReportCommand(program);
registerExportCommand(program);
registerTrainCommand(program);
registerSampleCommand(program);
registerEvalCommand(program);
registerServeCommand(program);
registerPlanCommand(program);
registerCompareCommand(program);

// No subcommand: run the main job, `train` on the shipped default config. (Not a commander
// default command, so that an unknown subcommand is reported as unknown instead of being
// passed to the default.)
const argv = process.argv.length <= 2 ? [...process.argv, 'train'] : process.argv;
try {
  await program.parseAsync(argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(reportParseError(e, argv));
  process.stderr.write(`stackwise: ${(e as Error).message}\n`);
  process.exit(1);
}
