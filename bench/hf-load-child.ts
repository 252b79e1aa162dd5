/**
 * Child process of `bench hf-load` (one load per process, so that its peak RSS is its own):
 *   node dist/bench/hf-load-child.js <hf-folder> <fp32|fp16|bf16|nf4|int8>
 * Loads the folder with loadHF (tensor by tensor, quantize-on-load) and prints one JSON line:
 * seconds, RSS before and peak RSS, the engine's peak bytes, the model's bytes, the files' bytes,
 * the largest tensor and the largest single read, and what the load held beyond the model.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import * as E from '../src/engine/index.js';
import { loadHF, openHFWeights } from '../src/io/hf/index.js';
import type { StorageFormat } from '../src/engine/index.js';
import { peakRssMb, round } from './stats.js';

export function runHFLoad(folder: string, format: StorageFormat): Record<string, unknown> {
  const files = readdirSync(folder).filter((f) => f.endsWith('.safetensors'));
  const fileBytes = files.reduce((n, f) => n + statSync(join(folder, f)).size, 0);
  const headers = openHFWeights(folder);
  const largestTensor = Math.max(...[...headers.tensors.values()].map((t) => t.bytes));
  headers.close();
  const rssBefore = process.memoryUsage().rss / 2 ** 20;
  const engineBefore = E.memoryInfo().bytes;
  const t0 = performance.now();
  const loaded = loadHF(folder, { loadFormat: format });
  const seconds = (performance.now() - t0) / 1000;
  const peak = peakRssMb();
  const mb = (b: number) => round(b / 2 ** 20);
  const out = {
    bench: 'hf-load',
    format,
    params: loaded.model.numParameters(),
    weight_files: files.length,
    files_mb: mb(fileBytes),
    model_mb: mb(loaded.model.numBytes()),
    seconds: round(seconds, 2),
    rss_before_load_mb: round(rssBefore),
    peak_rss_mb: round(peak),
    engine_peak_mb: mb(E.memoryInfo().peakBytes - engineBefore),
    // What the load held beyond the model it built: read buffers not yet collected, allocator slack.
    transient_rss_mb: round(peak - rssBefore - loaded.model.numBytes() / 2 ** 20),
    largest_tensor_mb: mb(largestTensor),
    transient_over_largest_tensor: round((peak - rssBefore - loaded.model.numBytes() / 2 ** 20) / (largestTensor / 2 ** 20), 2),
    largest_read_mb: mb(loaded.load!.largestRead),
    read_mb: mb(loaded.load!.bytesRead),
    quantized_layers: loaded.load!.quantized.length,
    load_avg_1m: round(loadavg()[0]!, 2),
  };
  loaded.model.dispose();
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [folder, format] = process.argv.slice(2);
  if (!folder || !format) {
    process.stderr.write('usage: node dist/bench/hf-load-child.js <hf-folder> <fp32|fp16|bf16|nf4|int8>\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(runHFLoad(folder, format as StorageFormat)) + '\n');
}
