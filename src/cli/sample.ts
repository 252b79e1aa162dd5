/**
 * `stackwise sample <run-dir|checkpoint> --prompt "…"`: loads a trained model (the newest
 * checkpoint of a run folder, or a given checkpoint folder) with its tokenizer and generates text:
 * left-to-right for CLM models, [MASK] filling for MLM (`--mode mlm`, masks written as [MASK] in
 * the prompt), masked-diffusion sampling (`--mode diffusion`).
 *
 * Also exports `loadRun`, the loader `stackwise eval` uses.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { Model, type ModelConfig } from '../nn/index.js';
import { ModelAdapter, attentionFor } from '../framework/index.js';
import { isHFModelFolder, loadPretrained } from '../io/hf/index.js';
import { Gpt2Tokenizer, loadHfTokenizer, loadTokenizer, runTokenizerPath, type Tokenizer } from '../data/index.js';
import { CheckpointError, isRunFolder, latestCheckpoint, readCheckpoint } from '../io/checkpoint.js';
import { ArrayTokenStream } from '../data/index.js';
import type { TokenData } from '../framework/index.js';
import { TrainingMachine } from '../training/machine.js';
import { loadModelWeights } from '../training/checkpoint-io.js';
import { loadConfig } from '../training/config/load.js';
import { usesProgressivePlane } from '../training/progressive/config.js';
import type { ParsedConfig, ResolvedPhase } from '../training/config/resolve.js';
import type { TrainingState } from '../training/machine.js';
import { depthUnrollSample, diffusionSample, fillMask, generate } from '../training/sampling/index.js';
import { NoiseSchedule } from '../training/objectives/noise.js';
import { UsageError, parseChoice, parseNonNegativeInt, parsePositiveInt, printJson, runCommand } from './output.js';

export type Objective = 'clm' | 'mlm' | 'diffusion';

/** A trained model ready for inference, with what it was trained on. */
export interface LoadedRun {
  runDir: string;
  checkpoint: string;
  step: number;
  /** The training config; undefined for a Hugging Face folder. */
  parsed: ParsedConfig | undefined;
  /** The last phase's planes (what the final model was trained with). */
  phase: ResolvedPhase;
  objective: Objective;
  model: Model;
  /** undefined for a corpus of raw ids (synthetic): prompts are then ids separated by spaces. */
  tokenizer: Tokenizer | undefined;
  vocabSize: number;
  maskTokenId: number | undefined;
}

/** The checkpoint folder a target names (a run folder → its newest checkpoint) and its run folder. */
export function resolveCheckpoint(target: string): { checkpoint: string; runDir: string } {
  if (!existsSync(target)) throw new Error(`${target}: no such run folder or checkpoint`);
  if (!statSync(target).isDirectory()) throw new Error(`${target}: not a folder (expected a run folder or a checkpoint folder)`);
  if (existsSync(join(target, 'checkpoint.json'))) return { checkpoint: target, runDir: resolve(target, '..', '..') };
  if (!isRunFolder(target) && !existsSync(join(target, 'config.yaml'))) throw new Error(`${target}: not a StackWise run folder (no .stackwise-run / config.yaml) nor a checkpoint (no checkpoint.json)`);
  const latest = latestCheckpoint(target);
  if (!latest) throw new Error(`${target}: the run folder holds no complete checkpoint yet`);
  return { checkpoint: latest.path, runDir: target };
}

/** The tokenizer of a run, checked against the model's vocabulary. */
function runTokenizer(phase: ResolvedPhase, runDir: string, vocab: number): Tokenizer | undefined {
  const tok = phase.data?.tokenizer;
  if (!tok || tok.kind === 'none') return undefined;
  let tokenizer: Tokenizer;
  let where: string;
  if (tok.kind === 'gpt2') {
    tokenizer = new Gpt2Tokenizer();
    where = 'the GPT-2 tokenizer';
  } else if (tok.kind === 'hf' && !existsSync(runTokenizerPath(runDir))) {
    tokenizer = loadHfTokenizer(tok.path);
    where = `tokenizer ${tok.path}`;
  } else {
    const path = (tok.kind === 'bpe' ? tok.path : undefined) ?? runTokenizerPath(runDir);
    if (!existsSync(path)) throw new Error(`${path}: the run's tokenizer file is missing`);
    tokenizer = loadTokenizer(path);
    where = `tokenizer ${path}`;
  }
  if (tokenizer.vocabSize !== vocab) {
    throw new Error(`${where} has a vocabulary of ${tokenizer.vocabSize} tokens, but the model's embedding has ${vocab}: they do not belong together`);
  }
  return tokenizer;
}

/**
 * The model of a checkpoint rebuilt by a TrainingMachine (no run folder: nothing is written): the
 * phase hooks (progressive plane: growth, adapters, quantization) are replayed, then the weights
 * loaded. The data plane gets a tiny stand-in stream, so no corpus is read and no tokenizer trained.
 */
function rebuildWithMachine(parsed: ParsedConfig, checkpoint: string, vocabSize: number, backend?: string): Model {
  const maxSeq = Math.max(...parsed.phases.map((p) => p.data?.seq_len ?? 1));
  const maxBatch = Math.max(...parsed.phases.map((p) => p.data?.batch_size ?? 1));
  const ids = new Int32Array(4 * (maxSeq + 1) * maxBatch);
  const stand_in: TokenData = { vocabSize, train: new ArrayTokenStream(ids, vocabSize), maskTokenId: vocabSize - 1, padTokenId: 0, corpusName: 'checkpoint', tokenizerName: 'checkpoint' };
  const machine = new TrainingMachine(parsed, { data: stand_in, log: () => {} });
  machine.resumeFrom(checkpoint);
  const model = machine.model.model;
  machine.optimizer.dispose();
  // The machine builds on the default backend; --backend moves the rebuilt model.
  if (backend !== undefined && model.backend.name !== backend) model.to(backend);
  return model;
}

/**
 * A Hugging Face folder as a LoadedRun: its model and tokenizer; no training config, so the
 * phase has no data plane (evaluation needs --text files).
 */
function loadPretrainedAsRun(folder: string, opts: { backend?: string }): LoadedRun {
  const p = loadPretrained(folder, opts.backend ? { backend: opts.backend } : {});
  p.model.eval();
  const phase = { index: 0, name: 'pretrained', start_t: 0, end_t: 1 } as ResolvedPhase;
  return { runDir: folder, checkpoint: folder, step: 0, parsed: undefined, phase, objective: p.objective, model: p.model, tokenizer: p.tokenizer, vocabSize: p.model.embedding.vocabSize, maskTokenId: p.tokenizer?.special.MASK };
}

/** Loads the model of a run folder (newest checkpoint), of a checkpoint folder, or of a Hugging Face folder. */
export function loadRun(target: string, opts: { backend?: string } = {}): LoadedRun {
  if (isHFModelFolder(target)) return loadPretrainedAsRun(target, opts);
  const { checkpoint, runDir } = resolveCheckpoint(target);
  const configPath = join(runDir, 'config.yaml');
  if (!existsSync(configPath)) throw new Error(`${configPath}: missing (the checkpoint's run folder must hold the config it was trained with)`);
  const parsed = loadConfig(configPath);
  const loaded = readCheckpoint<TrainingState>(checkpoint);
  const state = loaded.manifest.state;
  const phase = parsed.phases[Math.max(0, Math.min(state.phase_index, parsed.phases.length - 1))]!;
  const objective = (phase.task ?? phase.data?.objective ?? 'clm') as Objective;
  let model = Model.fromConfig(state.model.config as ModelConfig, { seed: 0, ...(opts.backend ? { backend: opts.backend } : {}) });
  try {
    // A progressive run's structure (adapters, quantized stacks, ramp gates — the gates have no
    // weights, so a plain load would silently open them fully) comes from replaying its phases:
    // rebuild it the way training did. Other runs load plainly, or are rebuilt when they do not fit.
    let rebuild = usesProgressivePlane(parsed);
    if (!rebuild) {
      try {
        loadModelWeights(new ModelAdapter(model), loaded.files.get('model.safetensors')!, join(checkpoint, 'model.safetensors'));
      } catch (error) {
        if (!(error instanceof CheckpointError)) throw error;
        rebuild = true;
      }
    }
    if (rebuild) {
      const vocab = model.embedding.vocabSize;
      model.dispose();
      model = rebuildWithMachine(parsed, checkpoint, vocab, opts.backend);
    }
    const mode = phase.model && phase.model.attention !== 'auto' ? phase.model.attention : attentionFor(objective);
    model.setAttentionMode(mode);
    model.eval();
    const vocabSize = model.embedding.vocabSize;
    const tokenizer = runTokenizer(phase, runDir, vocabSize);
    const maskTokenId = phase.data?.mask_token_id ?? tokenizer?.special.MASK ?? (tokenizer ? undefined : vocabSize - 1);
    return { runDir, checkpoint, step: state.step, parsed, phase, objective, model, tokenizer, vocabSize, maskTokenId };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

const MASK_TEXT = '[MASK]';

/** Prompt text → ids: with the tokenizer (each literal [MASK] becomes the mask id), or ids separated by spaces. */
export function encodePrompt(run: LoadedRun, prompt: string): number[] {
  if (!run.tokenizer) {
    const parts = prompt.trim().split(/[\s,]+/).filter((s) => s !== '');
    return parts.map((p) => {
      if (p === MASK_TEXT && run.maskTokenId !== undefined) return run.maskTokenId;
      const n = Number(p);
      if (!Number.isInteger(n) || n < 0 || n >= run.vocabSize) throw new UsageError(`--prompt: this model reads token ids (its corpus has no tokenizer): expected ids in [0, ${run.vocabSize}) separated by spaces, found '${p}'`);
      return n;
    });
  }
  const tok = run.tokenizer;
  const pieces = prompt.split(MASK_TEXT);
  const out: number[] = [];
  pieces.forEach((piece, i) => {
    if (i > 0) out.push(run.maskTokenId!);
    if (piece !== '') out.push(...tok.encode(piece));
  });
  return out;
}

export function decodeIds(run: LoadedRun, ids: readonly number[]): string {
  if (!run.tokenizer) return ids.join(' ');
  return run.tokenizer.decode(ids);
}

/** How `sample` generates: the three objectives, and `depth` (the time-as-depth single-pass unroll). */
export type SampleMode = Objective | 'depth';

/**
 * The noise ladder of the depth unroll: the levels the run trained with (a `kind: depth` mask),
 * else the default ladder resampled to the rack's stacks.
 */
export function depthScheduleOf(run: LoadedRun): NoiseSchedule {
  const n = run.model.rack.numStacks;
  const mask = run.phase.data?.mask;
  if (mask?.kind === 'depth') {
    if (mask.levels.length !== n) throw new Error(`the run's time-as-depth ladder has ${mask.levels.length} levels but its model has ${n} stacks (one level per stack)`);
    return new NoiseSchedule(mask.levels);
  }
  return NoiseSchedule.ladder(n);
}

export interface SampleOptions {
  prompt?: string;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  mode?: SampleMode;
  steps?: number;
  count?: number;
  backend?: string;
  json?: boolean;
}

export interface SampleResult {
  checkpoint: string;
  step: number;
  mode: SampleMode;
  prompt: string;
  samples: { text: string; ids: number[]; generated: string }[];
}

export function runSample(target: string, opts: SampleOptions): SampleResult {
  const run = loadRun(target, opts.backend ? { backend: opts.backend } : {});
  try {
    const mode = opts.mode ?? run.objective;
    const prompt = opts.prompt ?? '';
    const count = opts.count ?? 1;
    const sampling = {
      ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
      ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
    };
    const special = run.tokenizer ? [run.tokenizer.special.PAD, run.tokenizer.special.MASK, run.tokenizer.special.CLS, run.tokenizer.special.SEP].filter((x) => x !== undefined) : [];
    const samples: SampleResult['samples'] = [];
    for (let c = 0; c < count; c++) {
      const seed = (opts.seed ?? 0) + c;
      if (mode === 'clm') {
        if (run.model.timeEmbedding) throw new UsageError('--mode clm: this model has a time embedding (time-as-input, trained by masked diffusion) and cannot generate left to right; use --mode diffusion, mlm or depth');
        let ids = encodePrompt(run, prompt);
        if (ids.length === 0) {
          if (!run.tokenizer) throw new UsageError('--prompt: give at least one token id');
          ids = [run.tokenizer.special.EOS]; // documents are separated by EOS: start a new one
        }
        if (run.maskTokenId !== undefined && ids.includes(run.maskTokenId) && run.tokenizer) throw new UsageError(`--prompt: ${MASK_TEXT} only makes sense with --mode mlm or diffusion`);
        const r = generate(run.model, [ids], { maxNewTokens: opts.maxTokens ?? 64, seed, excludeIds: special, ...sampling, ...(run.tokenizer ? { eosTokenId: run.tokenizer.special.EOS } : {}) });
        const gen = r.generated[0]!.filter((t) => !run.tokenizer || t !== run.tokenizer.special.EOS);
        samples.push({ text: decodeIds(run, [...(prompt === '' ? [] : encodePrompt(run, prompt)), ...gen]), ids: r.sequences[0]!, generated: decodeIds(run, gen) });
      } else {
        if (run.maskTokenId === undefined) throw new Error('this run has no [MASK] token: it cannot fill masks');
        let ids = encodePrompt(run, prompt);
        const hasMask = ids.includes(run.maskTokenId);
        if (mode === 'mlm') {
          if (!hasMask) throw new UsageError(`--prompt: write ${MASK_TEXT} where tokens should be filled in, e.g. --prompt "The ${MASK_TEXT} of the Union"`);
          const r = fillMask(run.model, ids, { maskTokenId: run.maskTokenId, seed, mode: 'iterative', ...sampling });
          samples.push({ text: decodeIds(run, r.ids), ids: r.ids, generated: decodeIds(run, r.filled.map((f) => f.token)) });
        } else {
          if (!hasMask) ids = [...ids, ...new Array<number>(opts.maxTokens ?? 32).fill(run.maskTokenId)];
          if (mode === 'depth' && opts.steps !== undefined) throw new UsageError('--steps: the depth unroll takes one step per stack; leave --steps out with --mode depth');
          const r = mode === 'depth'
            ? depthUnrollSample(run.model, { template: ids, maskTokenId: run.maskTokenId, seed, schedule: depthScheduleOf(run), ...sampling })
            : diffusionSample(run.model, { template: ids, maskTokenId: run.maskTokenId, seed, ...(opts.steps !== undefined ? { steps: opts.steps } : {}), ...sampling });
          // Generated = the tokens written where the input had [MASK] (anywhere, not only after the prompt).
          const filled = ids.flatMap((t, i) => (t === run.maskTokenId ? [r.ids[i]!] : []));
          samples.push({ text: decodeIds(run, r.ids), ids: r.ids, generated: decodeIds(run, filled) });
        }
      }
    }
    return { checkpoint: resolve(run.checkpoint), step: run.step, mode, prompt, samples };
  } finally {
    run.model.dispose();
  }
}

function parseNumber(name: string, min: number, max = Infinity, minExclusive = false) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (minExclusive ? n <= min : n < min) || n > max) {
      throw new InvalidArgumentError(`${name}: expected a number ${minExclusive ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}, found '${value}'`);
    }
    return n;
  };
}

export function registerSampleCommand(program: Command): void {
  program
    .command('sample')
    .description('generate text with a trained model (a run folder\'s newest checkpoint, or a checkpoint folder)')
    .argument('<model>', 'run folder (newest checkpoint), checkpoint folder, or Hugging Face folder (config.json + safetensors + tokenizer.json)')
    .option('--prompt <text>', 'text to continue (CLM) or a text with [MASK] to fill (mlm / diffusion)', '')
    .option('--max-tokens <n>', 'tokens to generate (CLM; diffusion without [MASK]: masks appended), default 64 (CLM) / 32', parsePositiveInt)
    .option('--temperature <T>', 'sampling temperature; 0 = greedy (default 1 for CLM, 0 for mlm/diffusion)', parseNumber('--temperature', 0))
    .option('--top-k <k>', 'keep only the k most likely tokens (0 = all)', parseNonNegativeInt)
    .option('--top-p <p>', 'nucleus sampling: keep the most likely tokens up to probability p', parseNumber('--top-p', 0, 1, true))
    .option('--seed <n>', 'random seed (default 0)', parseNonNegativeInt)
    .option('--count <n>', 'number of samples (seeds seed, seed+1, …)', parsePositiveInt)
    .option('--mode <mode>', 'clm | mlm | diffusion | depth (the time-as-depth unroll: one pass through the stacks, each unmasking down to the next noise level; default: the objective the model was trained with)', parseChoice(['clm', 'mlm', 'diffusion', 'depth'] as const))
    .option('--steps <n>', 'denoising steps (diffusion; default one token per step)', parsePositiveInt)
    .option('--backend <name>', 'engine backend (default: native when built)')
    .option('--json', 'print one JSON object with the samples')
    .addHelpText('after', [
      '',
      'Examples:',
      '  stackwise sample runs/default-… --prompt "The state of the Union is" --max-tokens 80 --temperature 0.8 --top-k 40',
      '  stackwise sample runs/mlm --mode mlm --prompt "We must [MASK] our [MASK]."',
      '  stackwise sample runs/right-to-left --mode depth --max-tokens 24',
      '',
      'Exit codes: 0 ok, 1 missing/corrupt run or checkpoint, tokenizer not matching the model, 2 usage error.',
    ].join('\n'))
    .action(async (target: string, opts: SampleOptions) => {
      await runCommand('sample', opts, () => {
        const r = runSample(target, opts);
        if (opts.json) { printJson({ ok: true, ...r }); return; }
        process.stderr.write(`${r.checkpoint} (step ${r.step}, ${r.mode})\n`);
        r.samples.forEach((s, i) => {
          if (r.samples.length > 1) process.stdout.write(`--- sample ${i + 1}\n`);
          process.stdout.write(`${s.text}\n`);
        });
      });
    });
}
