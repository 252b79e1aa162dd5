/**
 * Presets reproducing three real families at any size, blocks grouped as K stacks × M blocks:
 * - llama: RMSNorm pre-norm, GQA, RoPE (rotate-half), SwiGLU, no biases, untied head + final norm.
 * - gpt2: learned positions, LayerNorm pre-norm, MHA with biases, GELU-tanh MLP, ln_f, tied head.
 * - bert: word + position + token-type embeddings with LayerNorm, post-norm encoder, exact-GELU
 *   MLP, bidirectional attention; MLM head (transform + LayerNorm + tied decoder + bias) or a
 *   sequence-classification head (pooler + classifier).
 */
import { Model } from './model.js';
import type { BuildOptions } from './embedding-block.js';
import { stackSizes, type BlockConfig, type ModelConfig } from './config.js';
import { sizeDefault, type ModelSizeOptions } from './size-fields.js';

/** The size options every preset takes (their config names, types and defaults: size-fields.ts). */
export interface CommonPresetOptions extends Required<Pick<ModelSizeOptions, 'vocabSize' | 'dModel' | 'nHeads'>>, Pick<ModelSizeOptions, 'dFF'> {
  /** Blocks in all (n_stacks × blocks_per_stack). */
  nLayers: number;
  /** K equal stacks, or explicit block counts per stack (default 1 stack). */
  stacks?: number | number[];
}

function positiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`preset: ${name} must be a positive integer, found ${v}`);
}

function checkCommon(o: CommonPresetOptions): void {
  positiveInt(o.vocabSize, 'vocabSize');
  positiveInt(o.dModel, 'dModel');
  positiveInt(o.nLayers, 'nLayers');
  positiveInt(o.nHeads, 'nHeads');
  if (o.dFF !== undefined) positiveInt(o.dFF, 'dFF');
}

function stacksOf(nLayers: number, stacks: number | number[] | undefined, block: BlockConfig) {
  return stackSizes(nLayers, stacks ?? 1).map((nBlocks) => ({ nBlocks, block: structuredClone(block) }));
}

/** maxPositions: the context limit recorded in the spec/config (RoPE has no table). */
export interface LlamaOptions extends CommonPresetOptions, Pick<ModelSizeOptions, 'nKvHeads' | 'ropeTheta' | 'normEps' | 'tieEmbeddings' | 'maxPositions'> {
  headDim?: number;
  /** Attention variant inside the LLaMA block (default standard softmax). */
  attentionKind?: BlockConfig['attentionKind'];
  mla?: BlockConfig['mla'];
  /** Biases on q/k/v/o (HF attention_bias) and on the MLP (mlp_bias); LLaMA has none. */
  attentionBias?: boolean;
  mlpBias?: boolean;
}

export function llamaConfig(o: LlamaOptions): ModelConfig {
  checkCommon(o);
  const block: BlockConfig = {
    nHeads: o.nHeads,
    nKvHeads: o.nKvHeads ?? o.nHeads,
    headDim: o.headDim,
    attention: 'causal',
    attentionKind: o.attentionKind,
    mla: o.mla,
    positional: 'rope',
    ropeTheta: o.ropeTheta ?? sizeDefault('llama', 'rope_theta'),
    qkvBias: o.attentionBias ?? false,
    outBias: o.attentionBias ?? false,
    dFF: o.dFF ?? defaultLlamaFF(o.dModel),
    ffn: 'swiglu',
    ffnBias: o.mlpBias ?? false,
    norm: 'rmsnorm',
    normEps: o.normEps ?? sizeDefault('llama', 'norm_eps'),
    normPosition: 'pre',
  };
  if (block.headDim === undefined) delete block.headDim;
  if (block.attentionKind === undefined) delete block.attentionKind;
  if (block.mla === undefined) delete block.mla;
  return {
    family: 'llama',
    vocabSize: o.vocabSize,
    dModel: o.dModel,
    embedding: { positional: 'rope', ...(o.maxPositions ? { maxPositions: o.maxPositions } : {}) },
    stacks: stacksOf(o.nLayers, o.stacks, block),
    head: { kind: 'lm', tied: o.tieEmbeddings ?? sizeDefault('llama', 'tie_embeddings'), bias: false, finalNorm: { kind: 'rmsnorm', eps: o.normEps ?? sizeDefault('llama', 'norm_eps') } },
  };
}

/** LLaMA's FFN size rule: 2/3 · 4d rounded up to a multiple of 256 (for small d: of 8). */
function defaultLlamaFF(d: number): number {
  const raw = Math.floor((2 * 4 * d) / 3);
  const m = d >= 1024 ? 256 : 8;
  return Math.ceil(raw / m) * m;
}

/** tieEmbeddings: the decoder tied to the token embedding (default true, as GPT-2). */
export interface Gpt2Options extends CommonPresetOptions, Pick<ModelSizeOptions, 'maxPositions' | 'normEps' | 'tieEmbeddings'> {
  /** MLP activation (GPT-2: 'gelu_tanh' = gelu_new). */
  activation?: BlockConfig['activation'];
  /** Residual dropout (resid_pdrop), also the embedding's unless embeddingDropout is given. */
  dropout?: number;
  /** Embedding dropout (embd_pdrop); default `dropout`. */
  embeddingDropout?: number;
}

export function gpt2Config(o: Gpt2Options): ModelConfig {
  checkCommon(o);
  const eps = o.normEps ?? sizeDefault('gpt2', 'norm_eps');
  const block: BlockConfig = {
    nHeads: o.nHeads,
    nKvHeads: o.nHeads,
    attention: 'causal',
    positional: 'none',
    qkvBias: true,
    outBias: true,
    dFF: o.dFF ?? 4 * o.dModel,
    ffn: 'gelu',
    activation: o.activation ?? 'gelu_tanh',
    ffnBias: true,
    norm: 'layernorm',
    normEps: eps,
    normPosition: 'pre',
    ...(o.dropout ? { dropout: o.dropout } : {}),
  };
  const embDropout = o.embeddingDropout ?? o.dropout;
  return {
    family: 'gpt2',
    vocabSize: o.vocabSize,
    dModel: o.dModel,
    embedding: { positional: 'learned', maxPositions: o.maxPositions ?? sizeDefault('gpt2', 'max_positions'), ...(embDropout ? { dropout: embDropout } : {}) },
    stacks: stacksOf(o.nLayers, o.stacks, block),
    head: { kind: 'lm', tied: o.tieEmbeddings ?? sizeDefault('gpt2', 'tie_embeddings'), bias: false, finalNorm: { kind: 'layernorm', eps } },
  };
}

/** tieEmbeddings: the MLM decoder tied to the token embedding (default true, as BERT). */
export interface BertOptions extends CommonPresetOptions, Pick<ModelSizeOptions, 'maxPositions' | 'normEps' | 'tieEmbeddings'> {
  typeVocabSize?: number;
  activation?: BlockConfig['activation'];
  dropout?: number;
  /** 'mlm' (default): BertForMaskedLM; 'classification': BertForSequenceClassification. */
  head?: 'mlm' | 'classification';
  nClasses?: number;
  /** Dropout of the classification head (HF classifier_dropout); default `dropout`. */
  classifierDropout?: number;
}

export function bertConfig(o: BertOptions): ModelConfig {
  checkCommon(o);
  const eps = o.normEps ?? sizeDefault('bert', 'norm_eps');
  const act = o.activation ?? 'gelu';
  const block: BlockConfig = {
    nHeads: o.nHeads,
    nKvHeads: o.nHeads,
    attention: 'bidirectional',
    positional: 'none',
    qkvBias: true,
    outBias: true,
    dFF: o.dFF ?? 4 * o.dModel,
    ffn: 'gelu',
    activation: act,
    ffnBias: true,
    norm: 'layernorm',
    normEps: eps,
    normPosition: 'post',
    ...(o.dropout ? { dropout: o.dropout } : {}),
  };
  const clsDropout = o.classifierDropout ?? o.dropout;
  const head: ModelConfig['head'] = (o.head ?? 'mlm') === 'mlm'
    ? { kind: 'mlm', tied: o.tieEmbeddings ?? sizeDefault('bert', 'tie_embeddings'), activation: act, normEps: eps }
    : { kind: 'classification', nClasses: o.nClasses ?? 2, pooling: 'cls', pooler: true, bias: true, ...(clsDropout ? { dropout: clsDropout } : {}) };
  if (head.kind === 'classification') positiveInt(head.nClasses, 'nClasses');
  return {
    family: 'bert',
    vocabSize: o.vocabSize,
    dModel: o.dModel,
    embedding: {
      positional: 'learned',
      maxPositions: o.maxPositions ?? sizeDefault('bert', 'max_positions'),
      typeVocabSize: o.typeVocabSize ?? 2,
      norm: { kind: 'layernorm', eps },
      ...(o.dropout ? { dropout: o.dropout } : {}),
    },
    stacks: stacksOf(o.nLayers, o.stacks, block),
    head,
  };
}

export function llama(o: LlamaOptions & BuildOptions): Model {
  return Model.fromConfig(llamaConfig(o), o);
}

export function gpt2(o: Gpt2Options & BuildOptions): Model {
  return Model.fromConfig(gpt2Config(o), o);
}

export function bert(o: BertOptions & BuildOptions): Model {
  return Model.fromConfig(bertConfig(o), o);
}

export const PRESETS = { llama: llamaConfig, gpt2: gpt2Config, bert: bertConfig } as const;
export type PresetName = keyof typeof PRESETS;
