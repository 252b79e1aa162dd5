/**
 * Building a model whose leading stacks start frozen without ever holding the whole model in
 * float32: each frozen stack is created (same weights as Model.fromConfig, same seeds), quantized
 * into its storage format at once and its float32 weights freed before the next stack is made,
 * so the build's peak is the stored model plus one float32 stack, not the float32 model. This is
 * what stack-wise training of a big model needs (every stack but the trained one frozen in NF4),
 * the `load_in_4bit` idea applied to a fresh model.
 */
import { deriveSeed } from './init.js';
import { Rack, Stack } from './block.js';
import { EmbeddingBlock, type BuildOptions } from './embedding-block.js';
import { makeHead } from './heads.js';
import { Model } from './model.js';
import type { ModelConfig } from './config.js';
import { TimeEmbedding } from './time-embedding.js';
import { quantizeTrunk, validateQuantFormat, type QuantFormat } from './quantized-linear.js';

export interface FrozenBuildOptions extends BuildOptions {
  /** Which stacks start frozen: the first N, or a test on the stack index. */
  frozenStacks: number | ((index: number) => boolean);
  /** Storage of the frozen stacks' projections: 'fp32' (frozen float32) or a quantized format. */
  format: QuantFormat | 'fp32';
  /** NF4 double quantization (default true, as quantizeTrunk). */
  doubleQuant?: boolean;
  /** Freeze the embedding (default: when stack 0 starts frozen, as a frozen prefix). */
  freezeEmbedding?: boolean;
  /** Freeze the head (default false). */
  freezeHead?: boolean;
  /** Called after each stack is built (index, whether it is frozen): progress and memory probes. */
  onStack?: (index: number, frozen: boolean) => void;
}

/**
 * Model.fromConfig with the chosen stacks frozen in `format` from the start, one stack at a time.
 * The weights are the ones Model.fromConfig(config, {seed}) draws (quantized where frozen).
 */
export function buildModelWithFrozenStacks(config: ModelConfig, opts: FrozenBuildOptions): Model {
  const format = opts.format === 'fp32' ? 'fp32' : validateQuantFormat(opts.format, 'buildModelWithFrozenStacks: format');
  const frozen = typeof opts.frozenStacks === 'number' ? ((n: number) => (i: number) => i < n)(opts.frozenStacks) : opts.frozenStacks;
  const seed = opts.seed ?? 0;
  const place = { dtype: opts.dtype, backend: opts.backend };
  const embedding = new EmbeddingBlock(config.vocabSize, config.dModel, config.embedding, { ...place, seed: deriveSeed(seed, 'embedding') });
  const rackSeed = deriveSeed(seed, 'rack');
  const stacks: Stack[] = [];
  try {
    config.stacks.forEach((sc, i) => {
      const stack = Stack.create(config.dModel, sc, { ...place, seed: deriveSeed(rackSeed, i) });
      stacks.push(stack);
      if (frozen(i)) {
        stack.freeze();
        if (format !== 'fp32') quantizeTrunk(stack, format, { doubleQuant: opts.doubleQuant });
      }
      opts.onStack?.(i, frozen(i));
    });
  } catch (e) {
    for (const s of stacks) s.dispose();
    embedding.dispose();
    throw e;
  }
  const rack = new Rack(config.dModel, stacks);
  const head = makeHead(config.head, config.dModel, config.vocabSize, embedding, { ...place, seed });
  const time = config.timeEmbedding ? new TimeEmbedding({ dModel: config.dModel, ...config.timeEmbedding, ...place, seed: deriveSeed(seed, 'time') }) : null;
  const model = new Model(config, embedding, rack, head, time);
  if (opts.freezeEmbedding ?? (config.stacks.length > 0 && frozen(0))) {
    embedding.freeze();
    time?.freeze();
  }
  if (opts.freezeHead) head.freeze();
  return model;
}
