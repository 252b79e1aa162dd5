// The progressive system in code: a ProgressiveRackBuilder grows a 2-stack model to 4 stacks,
// each new stack with its own LoRA adapters (rank growing with depth) and the frozen trunk
// carrying progressive LoRA; ProgressiveTrainer trains one phase per stack count on one
// TrainingMachine; then the trunk is quantized to NF4 and the model measured before and after.
//
//   npm run build && node dist/examples/progressive-system.js [--tiny] [--steps N] [--out DIR]
import { join } from 'node:path';
import { Model, llamaConfig, quantizeTrunk } from 'stackwise/nn';
import { createDataAdapter, createModelAdapter, loadTokenData } from 'stackwise/framework';
import { ProgressiveDataLoader, ProgressiveRackBuilder, ProgressiveTrainer } from 'stackwise/training';
import { exampleArgs } from './args.js';
import { validationLoss } from './eval-helper.js';

const args = exampleArgs('runs/example-progressive-system');
const size = args.tiny ? { vocab: 300, d: 32, heads: 2, seq: 16, batch: 4, steps: 24 } : { vocab: 2048, d: 128, heads: 4, seq: 64, batch: 16, steps: 1200 };

const tokens = loadTokenData({ kind: 'sotu' }, { kind: 'bpe', vocab_size: size.vocab }, { runDir: join(args.out, 'data') });
const plane = { seq_len: size.seq, batch_size: size.batch, objective: 'clm' as const, eval_batches: 4 };

// 2 stacks of 2 blocks now; the builder grows the rack to 4.
const model = Model.fromConfig(llamaConfig({ vocabSize: tokens.vocabSize, dModel: size.d, nHeads: size.heads, nLayers: 4, stacks: 2, maxPositions: size.seq }), { seed: 0 });
const builder = new ProgressiveRackBuilder(model, {
  targetStacks: 4,
  growth: { kind: 'fresh' },
  // The trunk's base weights freeze; its adapters train.
  freeze: 'adapters_only_trunk',
  stackLora: { strategy: { kind: 'growing', rank: 4, alpha: 8, maxRank: 16 }, targets: ['q', 'k', 'v', 'o'] },
  progressiveLora: { rank: 8, alpha: 16, targets: ['q', 'v', 'o', 'down'] },
  // How a trunk stack is stored once the format is not fp32 (the model library's NF4/int8/fp16/bf16).
  quantizeTrunk: (stack, format) => void quantizeTrunk(stack, format),
  seed: 0,
});

const loader = new ProgressiveDataLoader(tokens, plane, { seed: 0 });
const trainer = new ProgressiveTrainer({
  totalSteps: args.steps ?? size.steps,
  optimizer: { lr: 2e-3, lr_schedule: { kind: 'warmup', warmup_fraction: 0.05, after: { kind: 'cosine', final_fraction: 0.1 } }, clip_norm: 1 },
  training: { seed: 0, eval_at_phase_end: true, run_dir: join(args.out, 'run') },
  callbacks: [{ onPhaseStart: (phase, m) => console.log(`phase ${phase.name}: ${m.model.model.rack.numStacks} stacks, ${m.model.numParameters(true)} of ${m.model.numParameters()} parameters train`) }],
});
const { result, stacks } = trainer.trainRack(builder, loader);
console.log(`grew ${stacks.join(' → ')} stacks; growth events: ${builder.history.map((e) => `${e.operator}@${e.position}${e.stackLora ? ` (LoRA r${e.stackLora.rank})` : ''}`).join(', ')}`);

// Then the trunk (every stack but the newest) goes to NF4: 4-bit blocks with double-quantized scales.
const data = createDataAdapter(tokens, plane, { seed: 0 });
const adapter = createModelAdapter(model);
const before = validationLoss(adapter, data);
builder.setTrunkWeightFormat('nf4');
const after = validationLoss(adapter, data);
const quantized = model.rack.stacks.toArray().map((_, i) => builder.isQuantized(i));
console.log(`trunk quantized to NF4 (stacks ${quantized.map((q, i) => (q ? i : null)).filter((i) => i !== null).join(', ')}): validation loss ${before.toFixed(4)} → ${after.toFixed(4)}`);
console.log(JSON.stringify({ example: 'progressive-system', stacks, final_loss: result.final_loss, val_loss_fp32: before, val_loss_nf4: after, quantized }));
