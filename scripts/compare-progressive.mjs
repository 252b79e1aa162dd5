// Compute-matched comparison (a script, not a test): the shipped default run, grown left→right
// 1 → 2 → 4 stacks, against the same 4-stack model trained end to end for as many steps as give
// the same estimated training FLOPs. Prints one JSON line per run and a summary line.
//
//   node scripts/compare-progressive.mjs [config.yaml]      (after `npm run build`)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { TrainingMachine, defineConfig } from '../dist/src/training/index.js';

const configPath = process.argv[2] ?? new URL('../configs/default.yaml', import.meta.url).pathname;
const raw = YAML.parse(readFileSync(configPath, 'utf8'));

function run(name, rawConfig) {
  const dir = mkdtempSync(join(tmpdir(), `stackwise-compare-${name}-`));
  try {
    const machine = new TrainingMachine(defineConfig(rawConfig), { runDir: join(dir, 'run') });
    const r = machine.train();
    machine.dispose?.();
    const line = {
      bench: 'progressive-vs-end-to-end', variant: name, steps: r.total_steps, flops: r.flops, tokens: r.tokens_seen,
      wall_s: Math.round(r.wall_time_s * 10) / 10, val_loss: r.final_eval?.loss ?? null, val_ppl: r.final_eval?.perplexity ?? null,
    };
    process.stdout.write(JSON.stringify(line) + '\n');
    return { r, line };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const progressive = run('progressive', raw);
// The end-to-end model is the progressive run's final model from step 0: its cost per step is
// the last phase's, so equal FLOPs means total FLOPs / (last phase FLOPs per step) steps.
const last = progressive.r.phases.at(-1);
const steps = Math.round(progressive.r.flops / (last.flops / last.steps));
const e2eRaw = structuredClone(raw);
delete e2eRaw.schedule;
delete e2eRaw.model.progressive;
e2eRaw.training.total_steps = steps;
const e2e = run('end-to-end', e2eRaw);
process.stdout.write(JSON.stringify({
  bench: 'progressive-vs-end-to-end-summary', flops_ratio: e2e.line.flops / progressive.line.flops,
  progressive_val_loss: progressive.line.val_loss, end_to_end_val_loss: e2e.line.val_loss,
  winner: progressive.line.val_loss < e2e.line.val_loss ? 'progressive' : 'end-to-end',
}) + '\n');
