// The TrainingMachine from code: the three planes built by hand (Data_t, Model_t, Optimizer_t),
// a three-phase schedule in normalized time, the run, and its metrics read back.
//
//   npm run build && node dist/examples/training-machine.js [--tiny] [--steps N] [--out DIR]
import { join } from 'node:path';
import { Model, llamaConfig } from 'stackwise/nn';
import { createDataAdapter, createModelAdapter, createOptimizerAdapter, loadTokenData, validateOptimizerSpec } from 'stackwise/framework';
import { METRICS_FILE, TrainingMachine, type TrainingHooks } from 'stackwise/training';
import { readJsonl } from 'stackwise/io';
import { exampleArgs } from './args.js';

const args = exampleArgs('runs/example-training-machine');
const size = args.tiny ? { vocab: 300, d: 32, heads: 2, seq: 16, batch: 4, steps: 12 } : { vocab: 1024, d: 128, heads: 4, seq: 64, batch: 16, steps: 600 };
const totalSteps = args.steps ?? size.steps;

// Data_t: the State of the Union addresses (shipped in an npm package), a byte-level BPE trained
// on the training split and cached beside the run (out/data), causal-LM batches.
const tokens = loadTokenData({ kind: 'sotu' }, { kind: 'bpe', vocab_size: size.vocab }, { runDir: join(args.out, 'data') });
const data = createDataAdapter(tokens, { seq_len: size.seq, batch_size: size.batch, objective: 'clm', eval_batches: 4 }, { seed: 0 });

// Model_t: a LLaMA-style model of 2 stacks × 1 block.
const model = createModelAdapter(
  Model.fromConfig(llamaConfig({ vocabSize: tokens.vocabSize, dModel: size.d, nHeads: size.heads, nLayers: 2, stacks: 2, maxPositions: size.seq }), { seed: 0 }),
);

// Optimizer_t: AdamW with warmup + cosine, no weight decay on norms and biases.
const optimizer = createOptimizerAdapter(
  validateOptimizerSpec({
    type: 'adamw',
    lr_schedule: { kind: 'warmup', warmup_fraction: 0.1, after: { kind: 'cosine', lr: 3e-3, final_fraction: 0.1 } },
    weight_decay: 0.1,
    clip_norm: 1,
    param_groups: [{ name: 'no_decay' }],
  }),
  model,
);

// The schedule: three phases in t. Planes built in code keep their settings across phases (a
// config's phases override config sections); what changes here is done by a hook at each phase
// start: from t = 0.4 the bottom stack is frozen (the optimizer drops its parameters, the others
// keep their AdamW state), from t = 0.8 the embedding too. A hook is code: on resume the machine
// replays it to rebuild the same structure.
const config = {
  training: { total_steps: totalSteps, seed: 0, eval_at_phase_end: true, progress: 'off' },
  schedule: [
    { name: 'all', start_t: 0, end_t: 0.4 },
    { name: 'top', start_t: 0.4, end_t: 0.8 },
    { name: 'anneal', start_t: 0.8, end_t: 1 },
  ],
};
const freezer: TrainingHooks = {
  name: 'freezer',
  onPhaseStart(phase, m) {
    if (phase.name === 'top' || phase.name === 'anneal') m.model.model.rack.stacks.at(0).freeze();
    if (phase.name === 'anneal') m.model.model.embedding.freeze();
  },
};

const machine = new TrainingMachine(config, {
  model,
  data,
  optimizer,
  hooks: [freezer],
  callbacks: [{ onPhaseStart: (phase, m) => console.log(`t = ${m.t.toFixed(2)}: phase '${phase.name}' trains ${m.model.numParameters(true)} parameters`) }],
  runDir: join(args.out, 'run'),
});
const before = machine.getCurrentState();
console.log(`step ${before.step} of ${before.totalSteps}, phase '${before.phase}', batch ${before.data.batch_size} × ${before.data.seq_len}, ${before.model.rack.stacks.length} stacks`);
// The planes of any step, without running it: its phase, lr and first micro-batch.
const last = machine.assemblePlanes(totalSteps - 1);
console.log(`step ${last.step} will run phase '${last.phase.name}' at lr ${last.optimizer.lr.toExponential(2)}; its batch starts with ids [${[...last.data.batch().inputIds.slice(0, 6)].join(', ')}, …]`);

const result = machine.train();
machine.dispose();
for (const p of result.phases) console.log(`phase ${p.name}: ${p.steps} steps, mean loss ${p.mean_loss.toFixed(3)}, val loss ${p.eval?.loss.toFixed(3) ?? '-'}`);

// Read the metrics back from the run folder: one JSON record per step, eval, phase and checkpoint.
const records = readJsonl(join(args.out, 'run', METRICS_FILE));
const steps = records.filter((r) => r['type'] === 'step');
const evals = records.filter((r) => r['type'] === 'eval');
console.log(`metrics.jsonl: ${steps.length} steps, ${evals.length} evaluations; first loss ${Number(steps[0]!['loss']).toFixed(3)}, last ${Number(steps.at(-1)!['loss']).toFixed(3)}`);
console.log(JSON.stringify({ example: "training-machine", steps: result.steps_run, first_loss: Number(steps[0]!["loss"]), final_loss: result.final_loss, final_val_loss: result.final_eval?.loss ?? null }));
