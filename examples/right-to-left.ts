// A right-to-left curriculum with masked diffusion, from code: the rack grows by prepending
// stacks; the suffix already trained is frozen (stored NF4, carrying LoRA) as the anchor, and
// each new leftmost stack is trained at a higher noise level (time-as-depth). Sampling then runs
// once through the stacks, left (noisiest) to right (cleanest), unmasking as it goes.
//
//   npm run build && node dist/examples/right-to-left.js [--tiny] [--steps N] [--out DIR]
import { join } from 'node:path';
import { DataAdapter } from 'stackwise/framework';
import { TrainingMachine, depthUnrollSample } from 'stackwise/training';
import { exampleArgs } from './args.js';

const args = exampleArgs('runs/example-right-to-left');
const size = args.tiny ? { vocab: 300, d: 32, heads: 2, seq: 16, batch: 4, steps: 24 } : { vocab: 2048, d: 128, heads: 4, seq: 64, batch: 16, steps: 2000 };
const levels = [1.0, 0.75, 0.4, 0.15];

const config = {
  model: {
    preset: 'llama',
    d_model: size.d,
    n_heads: size.heads,
    n_stacks: 4,
    blocks_per_stack: 1,
    attention: 'bidirectional',
    progressive: {
      direction: 'prepend',
      target_stacks: 4,
      growth: { kind: 'identity' },
      freeze: 'adapters_only_trunk',
      trunk_format: 'nf4',
      progressive_lora: { rank: 4, alpha: 8, targets: ['q', 'k', 'v', 'o'] },
    },
  },
  data: {
    corpus: 'sotu',
    tokenizer: { kind: 'bpe', vocab_size: size.vocab },
    seq_len: size.seq,
    batch_size: size.batch,
    objective: 'diffusion',
    // Stack k of the final rack is trained at noise levels[k]: leftmost = noisiest.
    mask: { kind: 'depth', levels },
    eval_batches: 2,
  },
  optimizer: { lr: 2e-3, lr_schedule: { kind: 'warmup', warmup_fraction: 0.05, after: { kind: 'constant' } }, lr_time: 'phase', clip_norm: 1 },
  training: { total_steps: args.steps ?? size.steps, seed: 0, progress: 'off', run_dir: join(args.out, 'run') },
  // One phase per stack count: 1 → 2 → 3 → 4, each new stack prepended on the left.
  schedule: [1, 2, 3, 4].map((n, i) => ({ name: `stacks-${n}`, start_t: i / 4, end_t: (i + 1) / 4, overrides: { model: { n_stacks: n } } })),
};

const machine = new TrainingMachine(config, {
  callbacks: [
    {
      onPhaseStart: (phase, m) => {
        const k = m.modelPlane?.trainingStack();
        console.log(`phase ${phase.name}: training final-rack stack ${k} at mask ratio ${k === undefined ? '?' : levels[k]}; ${m.model.numParameters(true)} parameters train`);
      },
      onPhaseEnd: (phase, r) => console.log(`  ${phase.name}: mean loss ${r.mean_loss.toFixed(3)}`),
    },
  ],
});
const result = machine.train();

// Sample: a prompt, then masked positions; one pass through the 4 stacks at their noise levels.
// The machine's data plane holds the run's tokenizer (a BPE trained on the training split).
const tokenizer = machine.data instanceof DataAdapter ? machine.data.source.tokenizer : undefined;
const spec = machine.data.getBatchSpec();
const maskTokenId = spec.mask_token_id!;
const prompt = tokenizer ? [...tokenizer.encode('The state of the Union')] : [];
const sample = depthUnrollSample(machine.model.model, { maskTokenId, prompt, length: size.seq, schedule: levels, temperature: 0, excludeIds: [maskTokenId] });
machine.dispose();
console.log(`depth unroll used ${sample.stacksUsed} stacks; sample: ${tokenizer ? JSON.stringify(tokenizer.decode(sample.ids)) : sample.ids.join(' ')}`);
console.log(JSON.stringify({ example: 'right-to-left', steps: result.steps_run, final_loss: result.final_loss, stacks_used: sample.stacksUsed, sample_length: sample.ids.length }));
