// A user's own loss through `trainStep(lossFn)`: label-smoothed cross-entropy for a causal LM,
// written with the engine's differentiable ops. The machine does everything else as usual —
// phases, lr schedule, clipping, accumulation, evaluation (with the objective's own loss),
// checkpoints.
//
//   npm run build && node dist/examples/custom-objective.js [--tiny] [--steps N] [--out DIR]
import { join } from 'node:path';
import * as E from 'stackwise/engine';
import { TrainingMachine, type LossFn } from 'stackwise/training';
import { exampleArgs } from './args.js';

const args = exampleArgs('runs/example-custom-objective');
const size = args.tiny ? { vocab: 300, d: 32, heads: 2, seq: 16, batch: 4, steps: 16 } : { vocab: 2048, d: 128, heads: 4, seq: 64, batch: 16, steps: 800 };
const totalSteps = args.steps ?? size.steps;

/**
 * (1 − ε)·CE(logits, targets) + ε·(mean over the vocabulary of −log p), averaged over the
 * positions that have a target (targets of −100 are skipped, as the built-in loss does).
 */
function labelSmoothed(epsilon: number): LossFn {
  return ({ model, batch, inputIds, step, seed }) => {
    const backend = inputIds.backend;
    const logits = model.forward(inputIds, { seed, step }); // [B, S, V]
    const targets = E.tensor(batch.targets, [batch.batch, batch.seqLen], { dtype: 'int32', backend });
    const nll = E.crossEntropy(logits, targets);
    const scored = Float32Array.from(batch.targets, (t) => (t === -100 ? 0 : 1));
    const mask = E.tensor(scored, [batch.batch, batch.seqLen], { backend });
    const meanLogP = E.mean(E.logSoftmax(logits), -1); // [B, S]
    const uniform = E.mulScalar(E.sum(E.mul(meanLogP, mask)), -1 / batch.scored);
    return E.add(E.mulScalar(nll, 1 - epsilon), E.mulScalar(uniform, epsilon));
  };
}

const config = {
  model: { preset: 'llama', d_model: size.d, n_heads: size.heads, n_stacks: 2, blocks_per_stack: 1 },
  data: { corpus: 'sotu', tokenizer: { kind: 'bpe', vocab_size: size.vocab }, seq_len: size.seq, batch_size: size.batch, objective: 'clm', eval_batches: 4 },
  optimizer: { lr: 3e-3, lr_schedule: { kind: 'warmup', warmup_fraction: 0.1, after: { kind: 'cosine', final_fraction: 0.1 } }, clip_norm: 1 },
  training: { total_steps: totalSteps, seed: 0, progress: 'off', run_dir: join(args.out, 'run') },
};

const machine = new TrainingMachine(config);
const loss = labelSmoothed(0.1);
const every = Math.max(1, Math.floor(totalSteps / 8));
const losses: number[] = [];
while (!machine.isComplete) {
  const m = machine.trainStep(loss);
  losses.push(m.loss);
  if (m.step % every === 0 || machine.isComplete) console.log(`step ${m.step}  t ${m.t.toFixed(3)}  label-smoothed loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}`);
}
const ev = machine.evaluate('final');
machine.saveCheckpoint('final');
machine.dispose();
console.log(`validation cross-entropy ${ev?.loss.toFixed(4)} (perplexity ${ev?.perplexity.toFixed(1)})`);
console.log(JSON.stringify({ example: 'custom-objective', steps: losses.length, first_loss: losses[0], final_loss: losses.at(-1), val_loss: ev?.loss ?? null }));
