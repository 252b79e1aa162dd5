// Shared by the TrainingMachine tests and the child process of the kill -9 resume test.
import { createHash } from 'node:crypto';
import { Stack, deriveSeed } from '../../src/nn/index.js';
import type { TrainingHooks, TrainingMachine } from '../../src/training/index.js';

/** A tiny run: 2 stacks, grown to 3 at t = 0.5 (step 6 of 12) by `growHook`. */
export function tinyConfig(runDir?: string, extra: { training?: Record<string, unknown>; optimizer?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 },
    data: { corpus: { kind: 'synthetic', vocab_size: 64, tokens: 3000 }, seq_len: 8, batch_size: 4, eval_batches: 2 },
    optimizer: {
      lr: 3e-3,
      lr_schedule: { kind: 'warmup', warmup_fraction: 0.2, after: { kind: 'cosine', final_fraction: 0.1 } },
      clip_norm: 1,
      weight_decay: 0.01,
      param_groups: [{ name: 'no_decay' }, { name: 'new_stack', lr_scale: 2 }, { name: 'trunk', lr_scale: 0.5 }],
      ...extra.optimizer,
    },
    training: { total_steps: 12, progress: 'off', seed: 5, ...(runDir ? { run_dir: runDir } : {}), ...extra.training },
    schedule: [
      { name: 'base', start_t: 0, end_t: 0.5 },
      { name: 'grow', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 3 }, optimizer: { lr: 2e-3, lr_time: 'phase' } } },
    ],
  };
}

/**
 * Appends a fresh stack at phase 'grow' and freezes the first stack (deterministic: seeded).
 * `calls` lists the phases it was called for; `resumed` the phase index of each onResume.
 */
export function growHook(): TrainingHooks & { calls: string[]; resumed: (number | undefined)[] } {
  const calls: string[] = [];
  const resumed: (number | undefined)[] = [];
  return {
    name: 'grow',
    calls,
    resumed,
    onResume(_machine, ctx) {
      resumed.push(ctx?.index);
    },
    onPhaseStart(phase, machine) {
      calls.push(phase.name);
      if (phase.name !== 'grow') return;
      const model = machine.model.model;
      const first = model.config.stacks[0]!;
      model.rack.appendStack(Stack.create(model.rack.dModel, first, { seed: deriveSeed(machine.seed, 'grown'), backend: model.backend }));
      model.rack.stacks.at(0).freeze();
    },
  };
}

/** sha256 over every parameter (name and bytes). */
export function weightsDigest(machine: TrainingMachine): string {
  const h = createHash('sha256');
  for (const [name, t] of machine.model.namedParameters()) {
    const a = t.toArray();
    h.update(name).update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  return h.digest('hex');
}
