/**
 * `bench hf-load`: loading a Hugging Face folder of a LLaMA shape of configs/scale (default 125M;
 * `--shapes 125m,1b`) in each storage format (`--formats fp32,nf4` by default): a random model of
 * the shape is exported once as an HF folder in shards (`--max-shard-size`, default 200MB, cached
 * in the OS temp folder), then a fresh child process per format loads it (bench/hf-load-child.ts)
 * and prints one JSON line: seconds, peak RSS, the engine's peak, the model's and the files' bytes,
 * the largest tensor and single read, and the RSS held beyond the model. A last line sets the
 * formats side by side.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { modelConfigFromPlane, type ModelPlaneConfig } from '../src/framework/index.js';
import { Model } from '../src/nn/index.js';
import { parseShardSize, saveHF } from '../src/io/hf/index.js';
import { parseConfig, parseConfigText } from '../src/training/index.js';
import { emit, round, runChildJson } from './stats.js';

export interface HFLoadBenchOptions {
  shapes?: string[];
  formats?: string[];
  maxShardSize?: string;
}

/** A random model of the shape, exported once into the temp folder (in shards). */
function exportedShape(root: string, shape: string, maxShardSize: number): string {
  const path = join(root, 'configs', 'scale', `llama-${shape}.yaml`);
  const folder = join(tmpdir(), 'stackwise-bench-hf-load', `llama-${shape}-${maxShardSize}`);
  if (existsSync(join(folder, 'config.json'))) return folder;
  const raw = parseConfigText(readFileSync(path, 'utf8'), path) as Record<string, Record<string, unknown>>;
  // The shape's vocabulary (the tokenizer's 32000), no corpus needed: only the model is built.
  const vocab = (raw['data']!['tokenizer'] as { vocab_size: number }).vocab_size;
  const parsed = parseConfig({ ...raw, model: { ...raw['model'], vocab_size: vocab, progressive: undefined } }, { source: path });
  const config = modelConfigFromPlane(parsed.phases[0]!.model as ModelPlaneConfig, { maxSeqLen: 256 });
  const model = Model.fromConfig(config, { seed: 0 });
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  try {
    saveHF(model, folder, { maxShardSize });
  } catch (e) {
    rmSync(folder, { recursive: true, force: true });
    throw e;
  } finally {
    model.dispose();
  }
  return folder;
}

export function benchHFLoad(root: string, o: HFLoadBenchOptions = {}): void {
  const child = join(dirname(fileURLToPath(import.meta.url)), 'hf-load-child.js');
  const maxShardSize = parseShardSize(o.maxShardSize ?? '200MB');
  for (const shape of o.shapes ?? ['125m']) {
    const folder = exportedShape(root, shape, maxShardSize);
    const rows: Record<string, Record<string, unknown>> = {};
    for (const format of o.formats ?? ['fp32', 'nf4']) {
      const r = runChildJson(process.execPath, [child, folder, format]);
      if (typeof r === 'string') { emit({ bench: 'hf-load', shape, format, error: r }); continue; }
      rows[format] = r;
      emit({ ...r, shape: `configs/scale/llama-${shape}.yaml` });
    }
    const fp32 = rows['fp32'], nf4 = rows['nf4'];
    if (fp32 && nf4) {
      emit({
        bench: 'hf-load-compare', shape: `configs/scale/llama-${shape}.yaml`,
        peak_rss_mb: { fp32: fp32['peak_rss_mb'], nf4: nf4['peak_rss_mb'] },
        seconds: { fp32: fp32['seconds'], nf4: nf4['seconds'] },
        nf4_over_fp32_peak_rss: round((nf4['peak_rss_mb'] as number) / (fp32['peak_rss_mb'] as number), 3),
        files_mb: fp32['files_mb'],
        model_mb: { fp32: fp32['model_mb'], nf4: nf4['model_mb'] },
        transient_rss_mb: { fp32: fp32['transient_rss_mb'], nf4: nf4['transient_rss_mb'] },
        largest_tensor_mb: fp32['largest_tensor_mb'],
      });
    }
  }
}
