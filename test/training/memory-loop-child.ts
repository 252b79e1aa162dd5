// Child process of memory-loop.test.ts (not a test file): runs `steps` TrainingMachine steps in a
// loop that never yields to the event loop and prints the resident memory after the warm-up and
// at the end (after a full GC), as JSON.
import { TrainingMachine } from '../../src/training/index.js';
import * as E from '../../src/engine/index.js';

const steps = Number(process.argv[2] ?? 2000);
const warmup = Number(process.argv[3] ?? 300);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const machine = new TrainingMachine({
  model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 },
  data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 1 },
  optimizer: { lr: 1e-3 },
  training: { total_steps: steps, progress: 'off', eval_every: 0 },
});
for (let i = 0; i < warmup; i++) machine.trainStep();
gc();
const before = { rss: process.memoryUsage().rss, buffers: E.getDefaultBackend().memory().buffers };
while (!machine.isComplete) machine.trainStep();
gc();
const after = { rss: process.memoryUsage().rss, buffers: E.getDefaultBackend().memory().buffers };
process.stdout.write(JSON.stringify({ before, after }) + '\n');
