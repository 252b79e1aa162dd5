/**
 * The plan of a run, from its config alone (nothing is built or allocated): for every phase, the
 * parameters (trainable / frozen / adapters), bytes of weights by storage format, gradients,
 * optimizer state, activations saved for backward per micro-batch, the activation cache in memory
 * and on disk, workspace, the predicted peak resident memory, training FLOPs per token with and
 * without the cache, and the step time at a given GEMM rate.
 *
 * Which stacks train follows the ProgressiveRackBuilder's rules (builder.ts, freeze.ts): the new
 * stacks are those the latest growth added (every stack before the first growth); the trunk is
 * the rest, stored in `trunk_format`; a named freeze policy trains the embedding and the head
 * while there is no trunk yet. A run without model.progressive trains everything.
 *
 * Memory model (float32 everywhere but quantized storage; B·S = T tokens per micro-batch):
 *  - saved activations of a block that backward passes through (it trains, or something upstream
 *    of it trains): ACT_PER_TOKEN (per d, per FFN width, per head width) · T · 4 bytes plus the
 *    attention's log-sum-exp (B·H·S); blocks before the first trainable module run detached and
 *    keep nothing; with training.recompute, only each such block's input (T·d floats) plus the
 *    largest one block's activations (alive while backward recomputes it), and the backward FLOPs
 *    gain one forward of those blocks;
 *  - workspace: two logits chunks of the fused loss, the FFN's activation gradients and a second
 *    copy of the biggest trained matrix's gradient (backward adds into .grad);
 *  - peak = process baseline + weights + gradients + optimizer state + saved activations +
 *    workspace + cache in memory; at build time, one float32 stack is alive while it is quantized.
 * The coefficients were measured on the engine (test/training/plan checks the prediction against
 * the engine's peak bytes at tiny size; `bench scale` against the peak RSS at 1.1 B and 7 B).
 */
import type { ModelConfig } from '../../nn/index.js';
import { DQ_BLOCK_SIZE, NF4_BLOCK_SIZE, INT8_STATE_BLOCK, defaultChunkSize } from '../../engine/index.js';
import { INT8_MIN_SIZE } from '../../optim/index.js';
import { loadHfTokenizer } from '../../data/index.js';
import { modelConfigFromPlane, type ModelPlaneConfig } from '../../framework/index.js';
import type { ParsedConfig, ResolvedPhase } from '../config/resolve.js';
import { freezePolicyOf, growthSpecOf, headLoraOf, progressiveOf, stackLoraOf, type ProgressiveConfig } from '../progressive/config.js';
import { insidePositions } from '../progressive/operators.js';
import { initialStacksOf } from '../init-from.js';
import { loraRankFor } from '../progressive/lora.js';
import { defaultFreezePolicy, resolveFreezePlan, withHeadMode, type FreezePlan, type PartState } from '../progressive/freeze.js';
import type { LoraTarget } from '../../framework/index.js';
import { blockForwardFlops, blockLoraParams, blockLoraTensorSizes, blockStages, blockTensorSizes, type LoraRanks, blockParams, modelShape, projectionParams, type BlockShape, type ModelShape } from './shape.js';

export type StorageFormat = 'fp32' | 'nf4' | 'int8' | 'fp16' | 'bf16';
export type OptimizerStateFormat = 'fp32' | 'int8';

/** Resident memory of the process before any model: Node, V8, the addon and OpenBLAS (measured). */
export const BASELINE_RSS_BYTES = 110 * 2 ** 20;
/** Saved activations per token of a block that backward passes through, in floats: a·d + b·d_ff + c·(heads·head_dim). */
export const ACT_PER_TOKEN = { d: 6, ff: 3, heads: 3, kvHeads: 3 } as const;
/** Floats per token per d_model kept by the embedding output, the final norm and the fused loss. */
export const HEAD_ACT_PER_TOKEN = 5;

/** Bytes of a [out, in] weight in a storage format (nf4 with double quantization, as quantizeTrunk stores it). */
export function weightBytes(n: number, rows: number, format: StorageFormat): number {
  switch (format) {
    case 'fp32': return 4 * n;
    case 'fp16': case 'bf16': return 2 * n;
    case 'int8': return n + 4 * rows;
    case 'nf4': {
      const blocks = Math.ceil(n / NF4_BLOCK_SIZE);
      return Math.ceil(n / 2) + blocks + 4 * Math.ceil(blocks / DQ_BLOCK_SIZE) + 4;
    }
  }
}

/** Bytes of optimizer state per trainable float for `slots` state tensors. */
export function stateBytesPerParam(slots: number, format: OptimizerStateFormat): number {
  return format === 'int8' ? slots * (1 + 4 / INT8_STATE_BLOCK) : slots * 4;
}

export interface PhaseParams {
  total: number;
  trainable: number;
  frozen: number;
  adapters: number;
  adaptersTrainable: number;
}

export interface PhasePlan {
  index: number;
  name: string;
  startT: number;
  endT: number;
  steps: number;
  nStacks: number;
  blocks: number;
  /** Rack positions of the stacks that train as new stacks, and the trunk's storage format. */
  newStacks: number[];
  trunkFormat: StorageFormat;
  parts: FreezePlan;
  seqLen: number;
  microBatch: number;
  accumulation: number;
  optimizer: string;
  stateFormat: OptimizerStateFormat;
  /** training.recompute: saved activations are each block's input plus one block recomputed; backward FLOPs include the recomputed forward. */
  recompute: boolean;
  params: PhaseParams;
  bytes: {
    /** Weight bytes by storage format. */
    weightsByFormat: Partial<Record<StorageFormat, number>>;
    weights: number;
    grads: number;
    optimizerState: number;
    /** Saved for backward, per micro-batch. */
    activations: number;
    cacheMemory: number;
    cacheDisk: number;
    workspace: number;
    /** One float32 stack alive while it is quantized (build, growth). */
    buildTransient: number;
    baseline: number;
    /** Predicted peak resident memory. */
    peak: number;
  };
  /** The largest contributor to `peak` (for messages). */
  largest: { what: string; bytes: number };
  flopsPerToken: { forward: number; backward: number; train: number; forwardCached: number; trainCached: number };
  cachedPrefixStacks: number;
  /** Rows the activation cache holds (memory and disk) at the phase's end: this phase's and those
   * kept from earlier phases whose prefix it extends (a growing trunk advances them). */
  cachedRows: number;
  tokensPerStep: number;
  /** Predicted seconds per optimizer step at the given GEMM rate (null without one). */
  stepSeconds: number | null;
}

export interface RunPlan {
  source?: string;
  preset: string;
  params: number;
  phases: PhasePlan[];
  /** The phase with the highest peak. */
  peak: { phase: string; bytes: number; largest: { what: string; bytes: number } };
  gemmGflops: number | null;
}

export interface PlanOptions {
  /** Measured fp32 GEMM rate (GFLOP/s) for step times. */
  gemmGflops?: number;
  /** Rate of matmuls through quantized weights (default: gemmGflops). */
  quantGemmGflops?: number;
}

/** The vocabulary a data plane gives the model when model.vocab_size is absent. */
function vocabOf(phase: ResolvedPhase): number | undefined {
  const d = phase.data;
  if (!d) return undefined;
  const tok = d.tokenizer;
  if (tok?.kind === 'bpe') return tok.vocab_size;
  if (tok?.kind === 'gpt2') return 50261;
  if (tok?.kind === 'hf') return loadHfTokenizer(tok.path).vocabSize;
  const corpus = d.corpus as { kind: string; vocab_size?: number };
  if (corpus.kind === 'synthetic') return corpus.vocab_size;
  return undefined;
}

function modelConfigOf(parsed: ParsedConfig, phase: ResolvedPhase): ModelConfig {
  const plane = phase.model as ModelPlaneConfig;
  const maxSeqLen = Math.max(...parsed.phases.map((p) => p.data?.seq_len ?? 0));
  return modelConfigFromPlane(plane, { vocabSize: plane.vocab_size ?? vocabOf(phase), maxSeqLen: maxSeqLen > 0 ? maxSeqLen : undefined });
}

interface StackState { base: PartState; format: StorageFormat; lora: LoraRanks }

const ranksOf = (rank: number, targets: readonly LoraTarget[]): LoraRanks => Object.fromEntries(targets.map((t) => [t, rank]));
const hasLora = (l: LoraRanks): boolean => Object.values(l).some((r) => (r ?? 0) > 0);
const loraRankSum = (l: LoraRanks): number => Object.values(l).reduce((a: number, r) => a + (r ?? 0), 0);

/** Part states of a phase (ProgressiveRackBuilder.planOf). */
function partsOf(prog: ProgressiveConfig | undefined, hasTrunk: boolean): FreezePlan {
  if (!prog) return { new_stack: 'train', trunk: 'train', embedding: 'train', head: 'train' };
  const policy = freezePolicyOf(prog.freeze) ?? defaultFreezePolicy(prog.direction);
  const plan = resolveFreezePlan(policy, prog.direction, prog.stack_lora?.train_base ?? true);
  return withHeadMode(typeof policy === 'string' && !hasTrunk ? { ...plan, embedding: 'train', head: 'train' } : plan, prog.head);
}

/** Plans every phase of a parsed config. */
export function planRun(parsed: ParsedConfig, opts: PlanOptions = {}): RunPlan {
  const total = parsed.config.training.total_steps;
  const phases: PhasePlan[] = [];
  let prevStacks = 0, newCount = 0, hasTrunk = false, finalShape: ModelShape | null = null;
  for (const phase of parsed.phases) {
    const plane = phase.model as ModelPlaneConfig | undefined;
    if (!plane || !phase.data) throw new Error(`plan: phase '${phase.name}' has no ${!plane ? 'model' : 'data'} plane; the planner needs both`);
    const config = modelConfigOf(parsed, phase);
    const shape = modelShape(config);
    finalShape = shape;
    const n = plane.n_stacks;
    const prog = progressiveOf(phase);
    // A pretrained model (model.init.from) starts with its own stacks: a first phase with more grows them.
    const before = prevStacks === 0 ? initialStacksOf(plane) : prevStacks;
    let inside: number[] | undefined;
    if (before === undefined || (prevStacks === 0 && n === before)) newCount = n;
    else if (n > before) {
      newCount = n - before;
      hasTrunk = true;
      inside = insidePositions(growthSpecOf(prog?.growth ?? { kind: 'fresh' }).kind, before, newCount);
    }
    prevStacks = Math.max(prevStacks, n);
    const parts = partsOf(prog, hasTrunk);
    const direction = prog?.direction ?? 'append';
    const newStacks = inside ?? Array.from({ length: Math.min(newCount, n) }, (_, i) => (direction === 'append' ? n - newCount + i : i));
    const trunkFormat = (prog?.trunk_format ?? 'fp32') as StorageFormat;
    const stackLora = prog?.stack_lora ? stackLoraOf(prog.stack_lora) : null;
    const states: StackState[] = shape.stacks.map((_, i) => {
      const isNew = newStacks.includes(i);
      const finalIndex = direction === 'append' ? i : (prog?.target_stacks ?? n) - n + i;
      const stackAd = stackLora ? ranksOf(loraRankFor(stackLora.strategy, finalIndex).rank, stackLora.targets) : {};
      if (isNew) return { base: parts.new_stack, format: 'fp32', lora: stackAd };
      // Progressive LoRA replaces (folds) the stack adapter on its targets; the others keep theirs.
      const pl = prog?.progressive_lora;
      return { base: parts.trunk, format: trunkFormat, lora: pl ? { ...stackAd, ...ranksOf(pl.rank, pl.targets) } : stackAd };
    });
    phases.push(planPhase(parsed, phase, shape, states, parts, newStacks, trunkFormat, total, opts, phases.at(-1)?.cachedRows ?? 0));
  }
  const worst = phases.reduce((a, p) => (p.bytes.peak > a.bytes.peak ? p : a), phases[0]!);
  return {
    ...(parsed.source ? { source: parsed.source } : {}),
    preset: (parsed.phases[0]?.model as ModelPlaneConfig | undefined)?.preset ?? '?',
    params: finalShape ? finalShape.embedding.tokenParams + finalShape.embedding.otherParams + finalShape.timeParams + finalShape.head.params + finalShape.stacks.reduce((a, s) => a + s.nBlocks * blockParams(s.block), 0) : 0,
    phases,
    peak: { phase: worst.name, bytes: worst.bytes.peak, largest: worst.largest },
    gemmGflops: opts.gemmGflops ?? null,
  };
}

function planPhase(
  parsed: ParsedConfig, phase: ResolvedPhase, shape: ModelShape, states: StackState[], parts: FreezePlan,
  newStacks: number[], trunkFormat: StorageFormat, totalSteps: number, opts: PlanOptions, rowsBefore: number,
): PhasePlan {
  const data = phase.data!;
  const prog = progressiveOf(phase);
  const S = data.seq_len, B = data.batch_size, T = B * S;
  const d = shape.dModel;
  const optPlane = phase.optimizer as { type: string; momentum?: number; accumulation_steps?: number; state_format?: OptimizerStateFormat };
  const slots = optPlane.type === 'sgd' ? ((optPlane.momentum ?? 0) > 0 ? 1 : 0) : 2;
  const stateFormat: OptimizerStateFormat = optPlane.state_format ?? 'fp32';
  const accumulation = optPlane.accumulation_steps ?? 1;

  // ---- parameters and weight bytes
  const byFormat: Partial<Record<StorageFormat, number>> = {};
  const addBytes = (f: StorageFormat, b: number) => { byFormat[f] = (byFormat[f] ?? 0) + b; };
  let total = 0, trainable = 0, adapters = 0, adaptersTrainable = 0;
  // Trainable floats whose AdamW moments go 8-bit under state_format int8 (optim/adamw.ts
  // int8StateEligible: tensors of INT8_MIN_SIZE elements or more, never the embedding).
  let int8Sized = 0;
  const addInt8 = (sizes: number[]) => { for (const n of sizes) if (n >= INT8_MIN_SIZE) int8Sized += n; };
  const embTrains = parts.embedding === 'train';
  // A tied decoder is the embedding's table: it trains only when both parts train ("frozen wins").
  const headTrains = parts.head === 'train';
  const embParams = shape.embedding.tokenParams + shape.embedding.otherParams + shape.timeParams;
  total += embParams; addBytes('fp32', 4 * embParams);
  if (embTrains && (!shape.head.tied || headTrains)) trainable += embParams;
  else if (embTrains) trainable += embParams - shape.embedding.tokenParams;
  total += shape.head.params; addBytes('fp32', 4 * shape.head.params);
  if (headTrains) { trainable += shape.head.params; addInt8(shape.head.tensors); }
  // model.progressive.head: lora — A [r, d] and B [rows, r] on the decoder (or classifier); they train when the head's part is 'adapters'.
  const headLora = prog ? headLoraOf(prog) : null;
  const headAdapterSizes = headLora ? [headLora.rank * d, shape.head.vocab * headLora.rank] : [];
  const headAdapters = headAdapterSizes.reduce((a, b) => a + b, 0);
  total += headAdapters; adapters += headAdapters; addBytes('fp32', 4 * headAdapters);
  if (headLora && parts.head === 'adapters') { trainable += headAdapters; adaptersTrainable += headAdapters; addInt8(headAdapterSizes); }
  // Backward goes through the decoder weight when the head trains, directly or through its adapter.
  const headGrads = parts.head !== 'frozen';
  let buildTransient = 0;
  shape.stacks.forEach((st, i) => {
    const s = states[i]!;
    const blk = st.block;
    for (let j = 0; j < st.nBlocks; j++) {
      for (const p of blk.projections) {
        const w = p.inFeatures * p.outFeatures;
        total += projectionParams(p);
        addBytes(s.format, weightBytes(w, p.outFeatures, s.format));
        if (p.bias) addBytes('fp32', 4 * p.outFeatures);
      }
      total += blk.normParams; addBytes('fp32', 4 * blk.normParams);
      if (s.base === 'train' && s.format === 'fp32') { trainable += blockParams(blk); addInt8(blockTensorSizes(blk)); }
      if (hasLora(s.lora)) {
        const a = blockLoraParams(blk, s.lora);
        adapters += a; total += a; addBytes('fp32', 4 * a);
        if (s.base !== 'frozen') { adaptersTrainable += a; trainable += a; addInt8(blockLoraTensorSizes(blk, s.lora)); }
      }
    }
    if (s.format !== 'fp32') buildTransient = Math.max(buildTransient, 4 * st.nBlocks * blockParams(blk));
  });
  const weights = Object.values(byFormat).reduce((a, b) => a + (b ?? 0), 0);
  const grads = 4 * trainable;
  const optimizerState = stateFormat === 'int8'
    ? Math.ceil(int8Sized * stateBytesPerParam(slots, 'int8') + (trainable - int8Sized) * stateBytesPerParam(slots, 'fp32'))
    : trainable * stateBytesPerParam(slots, 'fp32');

  // ---- compute, in data-flow order; a module needs backward once something upstream trains
  const stageTrains = [embTrains, ...states.flatMap((s, i) => Array(shape.stacks[i]!.nBlocks).fill(s.base === 'train' && s.format === 'fp32' || (s.base !== 'frozen' && hasLora(s.lora))) as boolean[]), headGrads];
  let upstream = false, backward = 0, forward = 0, activations = 0, prefixFwd = 0, cachedPrefixStacks = 0;
  const cacheOn = !!prog?.activation_cache && !embTrains;
  let stillPrefix = cacheOn;
  upstream = stageTrains[0]!;
  let blockIndex = 0, quantFlops = 0, quantPrefixFlops = 0;
  // training.recompute: blocks backward passes through keep their input only and run their forward twice.
  const recompute = parsed.config.training.recompute === true;
  let recomputePeak = 0, recomputeFlops = 0;
  shape.stacks.forEach((st, i) => {
    const s = states[i]!;
    const stackTrains = stageTrains[1 + blockIndex]!;
    if (stillPrefix && !stackTrains) cachedPrefixStacks++;
    else stillPrefix = false;
    for (let j = 0; j < st.nBlocks; j++, blockIndex++) {
      const trainsBase = s.base === 'train' && s.format === 'fp32';
      const trainsLora = s.base !== 'frozen' && hasLora(s.lora);
      const stages = blockStages(st.block, S, s.lora, trainsBase, trainsLora);
      const fwd = stages.reduce((a, c) => a + c.fwd, 0);
      forward += fwd;
      if (i < cachedPrefixStacks) prefixFwd += fwd;
      if (trainsBase || trainsLora || upstream) {
        const act = blockActivations(st.block, T, B, S, trainsLora ? loraRankSum(s.lora) : 0);
        if (recompute) {
          // Only the block's input stays; its activations live again while backward recomputes it, one block at a time.
          activations += 4 * T * d;
          recomputePeak = Math.max(recomputePeak, act);
          recomputeFlops += fwd;
        } else {
          activations += act;
        }
      }
      // A stage's input gradient is needed once something upstream of it (in this block too) trains.
      const projFwd = blockForwardFlops(st.block, S).projections;
      let quantBackward = false;
      for (const c of stages) {
        backward += c.wgrad + (upstream ? c.inputGrad : 0);
        if (upstream && c.inputGrad > 0) quantBackward = true;
        upstream ||= c.trainable;
      }
      if (s.format !== 'fp32') {
        quantFlops += projFwd * (quantBackward ? 2 : 1);
        if (i < cachedPrefixStacks) quantPrefixFlops += projFwd;
      }
    }
  });
  activations += recomputePeak;
  backward += recomputeFlops;
  const headFwd = shape.head.forwardFlops;
  forward += headFwd;
  // A trained head's final norm needs the gradient through the decoder, as does anything upstream.
  backward += (headGrads ? headFwd : 0) + (upstream || (headTrains && shape.head.finalNormParams > 0) ? headFwd : 0);
  upstream ||= headGrads;
  // A head adapter's merged decoder weight W + (α/r)·B A is kept for backward.
  if (headLora && parts.head === 'adapters') activations += 4 * shape.head.vocab * d;
  // The embedding output, the final norm's input and output, the fused loss's hidden gradient.
  if (upstream) activations += HEAD_ACT_PER_TOKEN * T * d * 4;
  // Two chunks of logits and their gradient in the fused loss; the FFN's gradients in backward.
  const chunk = defaultChunkSize(T, shape.head.vocab);
  const maxFF = Math.max(0, ...shape.stacks.map((s) => s.block.dFF));
  // Backward adds each gradient into the parameter's .grad: the biggest trainable matrix's gradient exists twice for a moment.
  const trainedMatrices = [
    (headTrains && !shape.head.tied) || parts.head === 'adapters' ? shape.head.vocab * d : 0,
    embTrains ? shape.embedding.tokenParams : 0,
    ...shape.stacks.flatMap((st, i) => (states[i]!.base === 'train' && states[i]!.format === 'fp32' ? st.block.projections.map((p) => p.inFeatures * p.outFeatures) : [])),
  ];
  const workspace = upstream ? 4 * (2 * chunk * shape.head.vocab + 2 * T * maxFF + Math.max(0, ...trainedMatrices)) : 0;

  // ---- the activation cache: rows computed in this phase and kept from earlier ones (entries of
  // a shorter prefix stay when the trunk grows, to be advanced; counted as distinct rows, an upper
  // bound), up to the memory budget
  const phaseSteps = Math.max(0, Math.round(phase.end_t * totalSteps) - Math.round(phase.start_t * totalSteps));
  let cacheMemory = 0, cacheDisk = 0, cachedRows = 0;
  if (cacheOn && cachedPrefixStacks > 0) {
    const rows = rowsBefore + phaseSteps * B * accumulation;
    cachedRows = rows;
    const bytes = rows * S * d * 4;
    const budget = (prog!.activation_cache!.memory_budget_mb ?? 256) * 2 ** 20;
    cacheMemory = Math.min(bytes, budget);
    const diskBudget = prog!.activation_cache!.disk_budget_mb;
    cacheDisk = Math.min(bytes - cacheMemory, diskBudget !== undefined ? diskBudget * 2 ** 20 : Infinity);
  }

  const contributors: [string, number][] = [
    ['weights', weights], ['gradients', grads], ['optimizer state', optimizerState],
    ['activations saved for backward', activations], ['activation cache', cacheMemory], ['workspace', workspace],
  ];
  const trainPeak = BASELINE_RSS_BYTES + weights + grads + optimizerState + activations + workspace + cacheMemory;
  const peak = Math.max(trainPeak, BASELINE_RSS_BYTES + weights + buildTransient);
  const largest = contributors.reduce((a, c) => (c[1] > a[1] ? c : a));
  const train = forward + backward;
  const forwardCached = forward - prefixFwd;
  const tokensPerStep = T * accumulation;
  const rate = opts.gemmGflops ? opts.gemmGflops * 1e9 : null;
  const quantRate = (opts.quantGemmGflops ?? opts.gemmGflops ?? 0) * 1e9;
  const cached = cacheOn && cachedPrefixStacks > 0;
  const stepFlops = cached ? forwardCached + backward : train;
  const stepQuant = cached ? quantFlops - quantPrefixFlops : quantFlops;
  return {
    index: phase.index, name: phase.name, startT: phase.start_t, endT: phase.end_t, steps: phaseSteps,
    nStacks: shape.stacks.length, blocks: shape.stacks.reduce((a, s) => a + s.nBlocks, 0),
    newStacks, trunkFormat, parts, seqLen: S, microBatch: B, accumulation,
    optimizer: optPlane.type === 'sgd' ? (slots ? 'sgd-momentum' : 'sgd') : 'adamw', stateFormat, recompute,
    params: { total, trainable, frozen: total - trainable, adapters, adaptersTrainable },
    bytes: { weightsByFormat: byFormat, weights, grads, optimizerState, activations, cacheMemory, cacheDisk, workspace, buildTransient, baseline: BASELINE_RSS_BYTES, peak },
    largest: { what: largest[0], bytes: largest[1] },
    flopsPerToken: { forward, backward, train, forwardCached, trainCached: forwardCached + backward },
    cachedPrefixStacks: cacheOn ? cachedPrefixStacks : 0,
    cachedRows,
    tokensPerStep,
    stepSeconds: rate ? tokensPerStep * ((stepFlops - stepQuant) / rate + stepQuant / quantRate) : null,
  };
}

/** Bytes a block keeps for backward for T = B·S tokens (float32), `loraRanks` = Σ adapter ranks. */
export function blockActivations(b: BlockShape, T: number, B: number, S: number, loraRanks = 0): number {
  const floats = T * (ACT_PER_TOKEN.d * b.dModel + ACT_PER_TOKEN.ff * b.dFF + ACT_PER_TOKEN.heads * b.nHeads * b.headDim + ACT_PER_TOKEN.kvHeads * b.nKvHeads * b.headDim + loraRanks)
    + B * b.nHeads * S; // log-sum-exp of the attention rows
  return 4 * floats;
}
