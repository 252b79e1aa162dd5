/**
 * `stackwise compare [config]`: a progressive config against the same final model trained end to
 * end for equal estimated training FLOPs, over seeds 0..N-1; writes compare.html (validation
 * curves against FLOPs, final losses, the verdict) and compare.json into the output folder.
 */
import { type Command } from 'commander';
import { VARIANT_LABEL } from '../io/report/index.js';
import { runComparison, type CompareOptions } from '../training/run/index.js';
import { collect, humanCount, humanDuration, parsePositiveInt, printJson, runCommand } from './output.js';

interface CompareCommandOptions {
  set?: string[];
  seeds?: number;
  steps?: number;
  out?: string;
  json?: boolean;
}

export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('train a progressive config and its final model end to end for equal estimated FLOPs, over seeds; report which is better and how sure')
    .argument('[config]', 'a progressive config (default: configs/default.yaml of the package)')
    .option('--seeds <n>', 'seeds 0..n-1 (training.seed) for both runs (default 1; 3 or more to judge the spread)', parsePositiveInt)
    .option('--set <key=value>', 'override a config value for both runs (repeatable), like `stackwise train`', collect)
    .option('--steps <n>', 'steps of the progressive run (overrides training.total_steps); end to end gets the steps of equal FLOPs', parsePositiveInt)
    .option('--out <dir>', 'output folder (default runs/compare-<config>-<time>)')
    .option('--json', 'print one JSON object (the comparison, as in compare.json) instead of text')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stackwise compare --seeds 3                     # the default run (about 2 × 5 minutes per seed on 2 cores)',
      '  stackwise compare my.yaml --steps 200 --set data.batch_size=8 --out runs/cmp',
      '',
      'The output folder holds compare.html, compare.json and seed-<s>/{progressive,end-to-end}/ (each a run folder).',
      'Exit codes: 0 ok, 1 failure (bad or non-progressive config, a run failed), 2 usage error.',
    ].join('\n'))
    .action(async (config: string | undefined, opts: CompareCommandOptions) => {
      await runCommand('compare', opts, () => {
        const json = opts.json === true;
        const lib: CompareOptions = {
          ...(opts.set ? { set: opts.set } : {}),
          ...(opts.seeds !== undefined ? { seeds: opts.seeds } : {}),
          ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
          ...(opts.out !== undefined ? { out: opts.out } : {}),
          onRunStart: (r) => { if (!json) process.stderr.write(`seed ${r.seed}: ${VARIANT_LABEL[r.variant]}, ${r.steps} steps → ${r.run_dir}\n`); },
          onRunEnd: (r) => {
            if (!json) process.stderr.write(`seed ${r.seed}: ${VARIANT_LABEL[r.variant]} done in ${humanDuration(r.wall_s)}, ${humanCount(r.flops)} FLOPs, final validation loss ${r.final_val_loss === null ? 'n/a' : r.final_val_loss.toFixed(4)}\n`);
          },
        };
        const result = runComparison(config, lib);
        if (json) {
          printJson({ ok: true, ...result });
          return;
        }
        const lines = [result.verdict.text];
        lines.push(`equal FLOPs: progressive ${result.progressive_steps} steps, end to end ${result.end_to_end_steps} steps (FLOPs ratio ${result.flops_ratios.map((r) => r.toFixed(3)).join(', ')})`);
        lines.push(`report: ${result.html}`);
        lines.push(`data:   ${result.json}`);
        process.stdout.write(lines.join('\n') + '\n');
      });
    });
}
