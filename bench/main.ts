/** Benchmark entry point: `npm run bench -- <name> [--steps N] [--threads N]`. Each measurement
 * is one JSON line on stdout. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchMatmul } from './matmul.js';
import { benchTrainStep } from './train-step.js';
import { benchCompareTorch } from './compare-torch.js';
import { benchPresets } from '../src/nn/index.js';
import { emit, round } from './stats.js';
import * as E from '../src/engine/index.js';
import { benchQuant } from './quant.js';
import { benchTokenizer } from '../src/data/index.js';
import { benchAttention } from '../src/engine/ops/attention-bench.js';
import { benchProgressive } from './progressive.js';
import { benchScale } from './scale.js';
import { benchHFLoad } from './hf-load.js';
import { benchBackwardMemory } from './backward-memory.js';
import { benchOptim } from './optim.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const [name, ...rest] = process.argv.slice(2);
const flag = (f: string): number | undefined => {
  const i = rest.indexOf(f);
  return i >= 0 ? Number(rest[i + 1]) : undefined;
};
const text = (f: string): string | undefined => {
  const i = rest.indexOf(f);
  return i >= 0 ? rest[i + 1] : undefined;
};

const threads = (): number | 'auto' | undefined => (text('--threads') === 'auto' ? 'auto' : flag('--threads'));

const benches: Record<string, () => void | Promise<void>> = {
  quant: () => benchQuant(),
  tokenizer: () => emit({ bench: 'tokenizer', ...benchTokenizer() }),
  attention: () => {
    // The attention kernels' rate next to the GEMM peak measured in the same process: the
    // reference shape (seq 128) and seq 1024, causal, and the reference shape bidirectional.
    const peak = E.measureGemmPeak();
    for (const o of [{ B: 8, S: 128, H: 4, D: 64, causal: true }, { B: 2, S: 1024, H: 4, D: 64, causal: true }, { B: 8, S: 128, H: 4, D: 64, causal: false }]) {
      const r = benchAttention({ ...o, runs: flag('--runs') ?? 10 });
      emit({ bench: 'attention', ...r, cpu: E.engineInfo().cpu, simd: E.engineInfo().simd, gemm_peak_gflops: round(peak.gflops), fraction_of_peak: round(r.gflops / peak.gflops, 3) });
    }
  },
  progressive: () => benchProgressive({ rounds: flag('--rounds'), steps: flag('--steps'), threads: flag('--threads') }),
  model: () => { for (const r of benchPresets({ steps: flag('--steps') })) emit({ ...r, bench: 'model' }); },
  matmul: () => benchMatmul(root),
  optim: () => benchOptim({ params: flag('--params') }),
  'backward-memory': () => benchBackwardMemory({ shape: text('--shape') }),
  scale: () => {
    const i = rest.indexOf('--shapes');
    benchScale(root, { shapes: i >= 0 ? rest[i + 1]!.split(',') : undefined, steps: flag('--steps'), seq: flag('--seq'), batch: flag('--batch') });
  },
  'hf-load': () => benchHFLoad(root, {
    shapes: text('--shapes')?.split(','), formats: text('--formats')?.split(','), maxShardSize: text('--max-shard-size'),
  }),
  'train-step': () => rest.includes('--compare-torch') || rest.includes('--load')
    ? benchCompareTorch(root, { steps: flag('--steps'), rounds: flag('--rounds'), threads: flag('--threads'), shape: text('--shape'), load: rest.includes('--load') })
    : benchTrainStep({ steps: flag('--steps'), warmup: flag('--warmup'), threads: threads(), shape: text('--shape') }),
};

const usage = `usage: stackwise bench <${Object.keys(benches).join('|')}> [--steps N] [--warmup N] [--threads N|auto] [--shape reference|gpt2-small|llama-1b-layer] [--compare-torch [--rounds N]] [--load] [--shapes 125m,1b,7b] [--formats fp32,nf4] [--max-shard-size 200MB] [--params N] (or npm run bench -- <name> …)`;
if (!name) {
  process.stderr.write(`${usage}\n`);
  process.exit(0);
}
if (!(name in benches)) {
  process.stderr.write(`bench: unknown benchmark '${name}'; expected one of ${Object.keys(benches).join(', ')}\n${usage}\n`);
  process.exit(2);
}
await benches[name]();
