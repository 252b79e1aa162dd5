/**
 * `bench scale`: big models on small hardware. For each LLaMA shape of configs/scale (default
 * 125M and 1.1B; `--shapes 125m,1b,7b`), a child process (bench/scale-child.ts) builds the model
 * with every stack but the last frozen in NF4 and trains the last stack a few steps on Moby-Dick
 * with the activation cache on, and prints one JSON line: plan's predicted peak RSS beside the
 * measured one, build seconds, tokens/s, the loss of each step. The 32000-token BPE is trained
 * once here (cached in the OS temp folder) so that it does not count in any child's peak.
 */
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadDataPlane } from '../src/framework/index.js';
import { parseConfig } from '../src/training/index.js';
import { scaleConfig } from './scale-child.js';
import { emit, runChildJson } from './stats.js';

export interface ScaleBenchOptions {
  shapes?: string[];
  steps?: number;
  seq?: number;
  batch?: number;
}

export function benchScale(root: string, o: ScaleBenchOptions = {}): void {
  const shapes = o.shapes ?? ['125m', '1b'];
  const cacheDir = join(tmpdir(), 'stackwise-bench-scale');
  mkdirSync(cacheDir, { recursive: true });
  const opts = { steps: o.steps ?? 4, seq: o.seq ?? 64, batch: o.batch ?? 2, distinct: 2, cacheMb: 64 };
  const child = join(dirname(fileURLToPath(import.meta.url)), 'scale-child.js');
  for (const shape of shapes) {
    const path = join(root, 'configs', 'scale', `llama-${shape}.yaml`);
    // The tokenizer (and the token cache) once, outside the children.
    loadDataPlane(parseConfig(scaleConfig(path, opts)).phases[1]!.data!, cacheDir);
    const t0 = performance.now();
    const r = runChildJson(process.execPath, [child, path, '--cache-dir', cacheDir, '--steps', String(opts.steps), '--seq', String(opts.seq), '--batch', String(opts.batch), '--distinct', String(opts.distinct), '--cache-mb', String(opts.cacheMb)]);
    if (typeof r === 'string') emit({ bench: 'scale', config: `configs/scale/llama-${shape}.yaml`, error: r });
    else emit({ ...r, wall_s: Math.round((performance.now() - t0) / 1000) });
  }
}
