// Command-line knobs shared by the examples: `--tiny` (seconds, for the test), `--steps N`,
// `--out DIR` (the run folder; replaced on each run).
import { parseArgs } from 'node:util';
import { rmSync } from 'node:fs';

export interface ExampleArgs {
  tiny: boolean;
  steps: number | undefined;
  out: string;
  /** Positional arguments (e.g. a Hugging Face folder). */
  rest: string[];
}

export function exampleArgs(defaultOut: string): ExampleArgs {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { tiny: { type: 'boolean', default: false }, steps: { type: 'string' }, out: { type: 'string', default: defaultOut } },
  });
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  if (steps !== undefined && !(Number.isInteger(steps) && steps > 0)) throw new Error(`--steps: expected a positive integer, found '${values.steps}'`);
  const out = values.out!;
  rmSync(out, { recursive: true, force: true });
  return { tiny: values.tiny!, steps, out, rest: positionals };
}
