/**
 * Throughput of the presets: forward and forward+backward tokens per second for llama, gpt2 and
 * bert at one stated size. Used by `npm run bench -- model` (the bench entry point prints each
 * result as a JSON line).
 */
import * as E from '../engine/index.js';
import type { Model } from './model.js';
import { bert, gpt2, llama, type PresetName } from './presets.js';

export interface ModelBenchSize {
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  dFF: number;
  batch: number;
  seq: number;
}

/** The stated size: vocab 4096, d_model 256, 4 layers, 4 heads (LLaMA: 2 kv heads), FFN 688 (gpt2/bert: 1024), batch 8 × seq 128. */
export const MODEL_BENCH_SIZE: ModelBenchSize = { vocabSize: 4096, dModel: 256, nLayers: 4, nHeads: 4, dFF: 688, batch: 8, seq: 128 };

export interface ModelBenchResult {
  bench: 'model';
  preset: PresetName;
  backend: string;
  parameters: number;
  batch: number;
  seq: number;
  forwardTokensPerSec: number;
  trainTokensPerSec: number;
  forwardMsMedian: number;
  trainMsMedian: number;
}

export function benchPresetModel(preset: PresetName, opts: { size?: Partial<ModelBenchSize>; steps?: number; warmup?: number } = {}): ModelBenchResult {
  const s = { ...MODEL_BENCH_SIZE, ...opts.size };
  const steps = opts.steps ?? 5, warmup = opts.warmup ?? 2;
  let model: Model;
  if (preset === 'llama') model = llama({ ...s, nKvHeads: Math.max(1, s.nHeads / 2), seed: 1, maxPositions: s.seq });
  else if (preset === 'gpt2') model = gpt2({ ...s, dFF: 4 * s.dModel, maxPositions: s.seq, seed: 1 });
  else model = bert({ ...s, dFF: 4 * s.dModel, maxPositions: s.seq, seed: 1 });
  const ids = E.keep(E.randInt([s.batch, s.seq], s.vocabSize, { seed: 2 }));
  const time = (fn: () => void) => {
    const out: number[] = [];
    for (let i = 0; i < warmup + steps; i++) {
      const t0 = performance.now();
      fn();
      if (i >= warmup) out.push(performance.now() - t0);
    }
    return E.median(out);
  };
  const fwd = time(() => E.tidy(() => { E.noGrad(() => model.forward(ids).logits.toArray()); }));
  const train = time(() => {
    E.tidy(() => {
      const { logits } = model.forward(ids);
      model.loss(logits, ids).backward();
    });
    model.zeroGrad();
  });
  const tokens = s.batch * s.seq;
  const result: ModelBenchResult = {
    bench: 'model',
    preset,
    backend: model.backend.name,
    parameters: model.numParameters(),
    batch: s.batch,
    seq: s.seq,
    forwardTokensPerSec: Math.round(tokens / (fwd / 1000)),
    trainTokensPerSec: Math.round(tokens / (train / 1000)),
    forwardMsMedian: Math.round(fwd * 10) / 10,
    trainMsMedian: Math.round(train * 10) / 10,
  };
  ids.dispose();
  model.dispose();
  return result;
}

/** All three presets at the stated size. */
export function benchPresets(opts: { steps?: number; warmup?: number; size?: Partial<ModelBenchSize> } = {}): ModelBenchResult[] {
  return (['llama', 'gpt2', 'bert'] as const).map((p) => benchPresetModel(p, opts));
}
