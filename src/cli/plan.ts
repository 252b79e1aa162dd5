/**
 * `stackwise plan [config] [--set k=v …] [--json]`: what a run will need before it runs, per phase
 * (training/plan): parameters (trainable / frozen / adapters), weight bytes by storage format,
 * gradients, optimizer state, activations saved for backward per micro-batch, the activation
 * cache in memory and on disk, workspace, the predicted peak resident memory, training FLOPs per
 * token with and without the cache, and the step time at this machine's measured GEMM rate.
 * Nothing is built: a 70 B config plans in milliseconds.
 */
import { formatBytes } from '../engine/index.js';
import { totalmem } from 'node:os';
import type { Command } from 'commander';
import { loadConfig } from '../training/config/load.js';
import { describeConfigSource } from '../training/config/resolve.js';
import { measureGemmRate, planRun, type PhasePlan, type RunPlan } from '../training/plan/index.js';
import { collect, formatTable, humanCount, humanDuration, printJson, reportError } from './output.js';
import { defaultConfigPath } from '../training/run/index.js';

interface PlanCommandOptions {
  set?: string[];
  json?: boolean;
  gemmGflops?: string;
  measure?: boolean;
}


function formats(p: PhasePlan): string {
  return Object.entries(p.bytes.weightsByFormat).filter(([, b]) => (b ?? 0) > 0).map(([f, b]) => `${f} ${formatBytes(b!)}`).join(' + ');
}

const flops = (n: number) => `${humanCount(n)}`;

/** The per-phase table (one row per phase). */
export function planTable(plan: RunPlan): string {
  const head = ['phase', 'stacks', 'trainable', 'frozen', 'adapters', 'weights', 'grads', 'optim', 'act/µbatch', 'cache mem/disk', 'workspace', 'peak RSS', 'train FLOP/tok', 'cached', 'step'];
  const rows = plan.phases.map((p) => [
    p.name, `${p.nStacks}${p.trunkFormat !== 'fp32' && p.nStacks > p.newStacks.length ? ` (${p.trunkFormat} trunk)` : ''}`,
    humanCount(p.params.trainable), humanCount(p.params.frozen), humanCount(p.params.adapters), formats(p),
    formatBytes(p.bytes.grads), `${formatBytes(p.bytes.optimizerState)}${p.stateFormat === 'int8' ? ' (int8)' : ''}`, `${formatBytes(p.bytes.activations)}${p.recompute ? ' (recompute)' : ''}`,
    p.cachedPrefixStacks > 0 ? `${formatBytes(p.bytes.cacheMemory)} / ${formatBytes(p.bytes.cacheDisk)}` : '-',
    formatBytes(p.bytes.workspace), formatBytes(p.bytes.peak), flops(p.flopsPerToken.train),
    p.cachedPrefixStacks > 0 ? flops(p.flopsPerToken.trainCached) : '-',
    p.stepSeconds === null ? '-' : p.stepSeconds < 1 ? `${(p.stepSeconds * 1000).toFixed(0)} ms` : humanDuration(p.stepSeconds),
  ]);
  return formatTable([head, ...rows], ['l', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

export function registerPlanCommand(program: Command): void {
  program
    .command('plan')
    .description('predict, per phase, the memory (weights, gradients, optimizer state, activations, cache, peak RSS) and compute (FLOPs per token, step time) of a run, without running it')
    .argument('[config]', 'config file (default: configs/default.yaml of the package)')
    .option('--set <key=value>', 'override a config value (repeatable)', collect)
    .option('--gemm-gflops <rate>', 'GEMM rate for step times (default: measured now, about half a second)')
    .option('--no-measure', 'do not measure the GEMM rate (no step times)')
    .option('--json', 'print the plan as one JSON object')
    .action((configArg: string | undefined, opts: PlanCommandOptions) => {
      try {
        const parsed = loadConfig(configArg ?? defaultConfigPath(), { set: opts.set ?? [] });
        let rate: { fp32Gflops: number; nf4Gflops: number } | null = null;
        if (opts.gemmGflops !== undefined) {
          const r = Number(opts.gemmGflops);
          if (!(r > 0)) throw new Error(`--gemm-gflops: expected a positive number, found ${JSON.stringify(opts.gemmGflops)}`);
          rate = { fp32Gflops: r, nf4Gflops: r };
        } else if (opts.measure !== false) rate = measureGemmRate();
        const plan = planRun(parsed, rate ? { gemmGflops: rate.fp32Gflops, quantGemmGflops: rate.nf4Gflops } : {});
        const machine = totalmem();
        if (opts.json) {
          printJson({ ...plan, machine_memory_bytes: machine, fits: plan.peak.bytes <= machine, nf4_gemm_gflops: rate?.nf4Gflops ?? null });
          return;
        }
        const lines = [
          `${describeConfigSource(parsed) ?? 'config'}: ${plan.preset}, ${humanCount(plan.params)} parameters when fully grown, ${plan.phases.length} phase(s)`,
          '',
          planTable(plan),
          '',
          `peak ${formatBytes(plan.peak.bytes)} in phase '${plan.peak.phase}' (largest part: ${plan.peak.largest.what}, ${formatBytes(plan.peak.largest.bytes)}); this machine has ${formatBytes(machine)}: ${plan.peak.bytes <= machine ? 'fits' : 'does NOT fit (training refuses it unless --no-memory-check)'}`,
          rate ? `step times at ${rate.fp32Gflops.toFixed(1)} GFLOP/s fp32 GEMM, ${rate.nf4Gflops.toFixed(1)} GFLOP/s through NF4 weights (measured now${opts.gemmGflops ? ': given' : ''})` : 'no GEMM rate: no step times',
          'act/µbatch: activations saved for backward per micro-batch; FLOP/tok: forward + backward per token (cached: with the activation cache serving the frozen prefix)',
        ];
        process.stdout.write(lines.join('\n') + '\n');
      } catch (error) {
        process.exitCode = reportError('plan', error, opts);
      }
    });
}
