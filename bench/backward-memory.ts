/**
 * `bench backward-memory [--shape reference|gpt2-small|llama-1b-layer]`: the engine's peak of
 * live native bytes during one training step (forward + backward) of the bench LLaMA, with the
 * saved activations held until the step's scope ends (`keep`), freed as backward consumes each
 * node (`free`, `backward(…, { freeSaved: true })`), and freed with every layer recomputed in
 * backward (`recompute`, E.checkpoint: training.recompute). Each mode runs in its own process,
 * because the native peak counter only grows: the step's peak is the process peak minus the bytes
 * live before it (weights; no optimizer state). The gradients of all runs are compared bit for bit.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as E from '../src/engine/index.js';
import { BenchLlama, randomBatch, trainStepShape } from './train-step.js';
import { emit, peakRssMb, round, runChildJson } from './stats.js';

const MB = 1048576;

type Mode = 'keep' | 'free' | 'recompute';

function child(shapeName: string, mode: Mode): void {
  const freeSaved = mode !== 'keep';
  const shape = trainStepShape(shapeName);
  const model = new BenchLlama(shape, 0);
  const be = E.getDefaultBackend();
  const before = be.memory().bytes;
  const loss = E.tidy(() => {
    const { inputs, targets } = randomBatch(shape, 0);
    const l = model.loss(inputs, targets, { recompute: mode === 'recompute' });
    const v = l.item();
    l.backward(undefined, { freeSaved });
    return v;
  });
  const mem = be.memory();
  const hash = createHash('sha256');
  for (const p of model.parameters()) hash.update(new Uint8Array((p.grad!.toArray() as Float32Array).buffer));
  emit({ mode, loss, weights_mb: round(before / MB), grads_mb: round((mem.bytes - before) / MB), step_peak_mb: round((mem.peakBytes - before) / MB), peak_rss_mb: round(peakRssMb()), grad_sha256: hash.digest('hex').slice(0, 16) });
}

export function benchBackwardMemory(opts: { shape?: string }): void {
  const shape = opts.shape ?? 'reference';
  trainStepShape(shape);
  const self = fileURLToPath(import.meta.url);
  const runs = (['keep', 'free', 'recompute'] as const).map((mode) => runChildJson(process.execPath, [self, '--child', shape, mode]));
  for (const r of runs) if (typeof r === 'string') throw new Error(`bench backward-memory: ${r}`);
  const [keep, free, recompute] = runs as Record<string, unknown>[];
  emit({
    bench: 'backward-memory', shape, ...trainStepShape(shape), threads: E.engineInfo().threads,
    weights_mb: keep!['weights_mb'], grads_mb: keep!['grads_mb'],
    step_peak_mb_keep: keep!['step_peak_mb'], step_peak_mb_free: free!['step_peak_mb'], step_peak_mb_recompute: recompute!['step_peak_mb'],
    peak_fall_free: round(1 - Number(free!['step_peak_mb']) / Number(keep!['step_peak_mb']), 3),
    peak_fall_recompute: round(1 - Number(recompute!['step_peak_mb']) / Number(keep!['step_peak_mb']), 3),
    peak_rss_mb_keep: keep!['peak_rss_mb'], peak_rss_mb_free: free!['peak_rss_mb'], peak_rss_mb_recompute: recompute!['peak_rss_mb'],
    same_gradients: keep!['grad_sha256'] === free!['grad_sha256'] && keep!['grad_sha256'] === recompute!['grad_sha256'],
    same_loss: keep!['loss'] === free!['loss'] && keep!['loss'] === recompute!['loss'],
  });
}

if (process.argv[2] === '--child') child(process.argv[3]!, process.argv[4] as Mode);
