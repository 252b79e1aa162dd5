#!/usr/bin/env node
// The README table of "Growing a pretrained model": perplexity and bits per byte on the old corpus
// (the State of the Union, which the default run trained on) and on the new one (Moby-Dick), for
// the pretrained model and for each run that grew it and trained on the new corpus. Every model
// reads the same tokenizer (the default run's), so the perplexities compare.
//
//   node scripts/measure-pretrained-growth.mjs <default-run> <grown-run> [<grown-run> …]
//
// Prints one JSON line per model and corpus, then a Markdown table. Needs `npm run build` first.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { loadRun, evalLm } = await import(join(root, 'dist', 'src', 'training', 'run', 'index.js'));

const [base, ...grown] = process.argv.slice(2);
if (!base || grown.length === 0) {
  process.stderr.write('usage: node scripts/measure-pretrained-growth.mjs <default-run> <grown-run> [<grown-run> …]\n');
  process.exit(2);
}

/** The test split of `corpus` (the run's own split settings, seq_len and batch size) scored by the run's model. */
function score(run, corpus) {
  const data = { ...run.data, corpus: { kind: corpus } };
  return evalLm({ ...run, data }, { split: 'test' });
}

const rows = [];
for (const dir of [base, ...grown]) {
  const run = loadRun(dir);
  const row = { run: dir, stacks: run.model.rack.numStacks };
  for (const corpus of ['sotu', 'moby-dick']) {
    const r = score(run, corpus);
    row[corpus] = { perplexity: r.perplexity, bits_per_byte: r.bits_per_byte, tokens: r.scored };
    process.stdout.write(`${JSON.stringify({ measure: 'pretrained-growth', run: dir, stacks: row.stacks, corpus, split: 'test', perplexity: r.perplexity, bits_per_byte: r.bits_per_byte, tokens: r.scored })}\n`);
  }
  run.model.dispose();
  rows.push(row);
}
const f = (x) => `${x.perplexity.toFixed(1)} (${x.bits_per_byte.toFixed(3)})`;
process.stdout.write('\n| model | stacks | SOTU test: perplexity (bits/byte) | Moby-Dick test: perplexity (bits/byte) |\n|---|---|---|---|\n');
for (const r of rows) process.stdout.write(`| ${r.run} | ${r.stacks} | ${f(r['sotu'])} | ${f(r['moby-dick'])} |\n`);
