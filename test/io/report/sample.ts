// A realistic progressive run, for the report tests and for looking at the charts (not a test file).
import type { RunReportData, ReportStackSnapshot } from '../../../src/io/report/index.js';

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A three-phase run grown from 1 to 3 stacks: T steps, evals every `evalEvery` steps. */
export function sampleRun(T = 600, evalEvery = 50): RunReportData {
  const rand = rng(7);
  const phases = [
    { name: 'warm-up: 1 stack', start_t: 0, end_t: 0.3 },
    { name: 'grow: 2 stacks, trunk frozen', start_t: 0.3, end_t: 0.7 },
    { name: 'QLoRA on trunk + new stack', start_t: 0.7, end_t: 1 },
  ];
  const phaseAt = (t: number) => phases.find((p) => t >= p.start_t && t < p.end_t) ?? phases[phases.length - 1]!;
  const steps: RunReportData['steps'] = [];
  for (let k = 0; k < T; k++) {
    const t = k / T;
    const p = phaseAt(t);
    const bump = t >= 0.3 && t < 0.33 ? 0.4 * (1 - (t - 0.3) / 0.03) : t >= 0.7 && t < 0.72 ? 0.25 * (1 - (t - 0.7) / 0.02) : 0;
    const loss = 3.1 + 2.6 * Math.exp(-5 * t) + bump + (rand() - 0.5) * 0.35;
    const warm = Math.min(1, t / 0.05);
    const lr = 3e-4 * warm * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * t)));
    const stacks = t < 0.3 ? 1 : t < 0.7 ? 2 : 3;
    const tps = (14000 / stacks) * (0.92 + rand() * 0.16);
    steps.push({ step: k, t, phase: p.name, loss, lr, tokens_per_s: tps });
  }
  const evals: RunReportData['evals'] = [];
  for (let k = evalEvery; k <= T; k += evalEvery) {
    const t = k / T;
    const v = 3.3 + 2.4 * Math.exp(-5 * t) + (rand() - 0.5) * 0.05;
    evals.push({ t, step: k, val_loss: v, val_ppl: Math.exp(v) });
  }
  const timeline: ReportStackSnapshot[] = [
    { t: 0, stacks: [{ index: 0, state: 'trainable' }] },
    { t: 0.3, stacks: [{ index: 0, state: 'frozen' }, { index: 1, state: 'trainable' }] },
    { t: 0.7, stacks: [{ index: 0, state: ['adapted', 'quantized'] }, { index: 1, state: 'quantized' }, { index: 2, state: 'trainable' }] },
  ];
  return {
    run_name: 'llama-tiny-progressive',
    phases,
    steps,
    evals,
    events: [
      { t: 0.3, step: Math.round(0.3 * T), kind: 'grow', description: 'appended stack 1 (2 blocks, copy-top init)' },
      { t: 0.3, step: Math.round(0.3 * T), kind: 'freeze', description: 'froze stack 0' },
      { t: 0.7, step: Math.round(0.7 * T), kind: 'grow', description: 'appended stack 2 (identity init)' },
      { t: 0.7, step: Math.round(0.7 * T), kind: 'quantize', description: 'stacks 0–1 stored as NF4 (double quantization)' },
      { t: 0.7, step: Math.round(0.7 * T), kind: 'adapters', description: 'LoRA r=8 on q, v of stack 0' },
    ],
    stack_timeline: timeline,
    summary: { config: 'configs/default.yaml', model: 'llama, d=256, 3 stacks × 2 blocks', seed: 1234, 'wall time': '6m 12s', device: 'native, 2 threads' },
    generated_at: '2025-01-01T00:00:00.000Z',
  };
}
