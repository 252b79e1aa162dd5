/**
 * Hugging Face config.json ↔ our ModelConfig for the LLaMA, GPT-2 and BERT families.
 * Anything in the HF config that changes the computation and that we do not implement is
 * refused with an error naming the field (never silently ignored).
 */
import type { Activation, BlockConfig, ModelConfig, ModelSizeFieldName } from '../../nn/index.js';
import { HF_LAYER_COUNT, bertConfig, gpt2Config, hfSizeName, llamaConfig, sizeDefault } from '../../nn/index.js';
import type { ModelPreset } from '../../nn/index.js';

export type HFConfig = Record<string, unknown>;
/** The families Hugging Face import and export map (nn/kinds.ts MODEL_PRESETS). */
export type HFFamily = ModelPreset;

/** Each size field's config.json name per family (the one table: nn/size-fields.ts). */
const LLAMA = (name: ModelSizeFieldName) => hfSizeName('llama', name);
const GPT2 = (name: ModelSizeFieldName) => hfSizeName('gpt2', name);
const BERT = (name: ModelSizeFieldName) => hfSizeName('bert', name);

export class HFConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HFConfigError';
  }
}

function num(cfg: HFConfig, key: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new HFConfigError(`config.json: '${key}' is required (a number), found ${v === null ? 'null' : 'nothing'}`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HFConfigError(`config.json: '${key}' must be a number, found ${JSON.stringify(v)}`);
  return v;
}

function int(cfg: HFConfig, key: string, fallback?: number): number {
  const v = num(cfg, key, fallback);
  if (!Number.isInteger(v) || v < 0) throw new HFConfigError(`config.json: '${key}' must be a non-negative integer, found ${v}`);
  return v;
}

function bool(cfg: HFConfig, key: string, fallback: boolean): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new HFConfigError(`config.json: '${key}' must be true or false, found ${JSON.stringify(v)}`);
  return v;
}

function refuse(cfg: HFConfig, key: string, ok: (v: unknown) => boolean, why: string): void {
  const v = cfg[key];
  if (v !== undefined && v !== null && !ok(v)) throw new HFConfigError(`config.json: '${key}' = ${JSON.stringify(v)} is not supported (${why})`);
}

/** Which family a config belongs to (model_type, else architectures). */
export function hfFamilyOf(cfg: HFConfig): HFFamily {
  const t = cfg.model_type;
  if (t === 'llama' || t === 'gpt2' || t === 'bert') return t;
  const arch = Array.isArray(cfg.architectures) ? String(cfg.architectures[0] ?? '') : '';
  if (arch.startsWith('Llama')) return 'llama';
  if (arch.startsWith('GPT2')) return 'gpt2';
  if (arch.startsWith('Bert')) return 'bert';
  throw new HFConfigError(`config.json: model_type ${JSON.stringify(t)} is not supported (expected 'llama', 'gpt2' or 'bert')`);
}

const HF_ACTIVATIONS: Record<string, Activation> = {
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  relu: 'relu',
  silu: 'silu',
  swish: 'silu',
  tanh: 'tanh',
};

function activationOf(cfg: HFConfig, key: string, fallback: string): Activation {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'string' || !(v in HF_ACTIVATIONS)) throw new HFConfigError(`config.json: '${key}' = ${JSON.stringify(v)} is not supported (expected one of ${Object.keys(HF_ACTIVATIONS).join(', ')})`);
  return HF_ACTIVATIONS[v];
}

function ropeThetaOf(cfg: HFConfig): number {
  const params = cfg.rope_parameters as Record<string, unknown> | undefined | null;
  const scaling = cfg.rope_scaling as Record<string, unknown> | undefined | null;
  for (const [key, p] of [['rope_parameters', params], ['rope_scaling', scaling]] as const) {
    if (p && typeof p === 'object') {
      const type = p.rope_type ?? p.type;
      if (type !== undefined && type !== 'default') throw new HFConfigError(`config.json: '${key}.rope_type' = ${JSON.stringify(type)} is not supported (only 'default' RoPE)`);
    }
  }
  const key = LLAMA('rope_theta');
  if (params && typeof params === 'object' && typeof params[key] === 'number') return params[key];
  return num(cfg, key, sizeDefault('llama', 'rope_theta'));
}

/** config.json field holding our stack grouping (block counts per stack), written by export. */
export const STACKS_FIELD = 'stackwise_stacks';

/** A dropout probability field (0 when absent); kept only when > 0. */
function prob(cfg: HFConfig, key: string): number {
  const v = cfg[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new HFConfigError(`config.json: '${key}' must be a probability in [0, 1), found ${JSON.stringify(v)}`);
  return v;
}

export interface FromHFOptions {
  /** K equal stacks or explicit block counts per stack (default: the config's stackwise_stacks, else 1 stack). */
  stacks?: number | number[];
}

/** Our ModelConfig for an HF config. */
export function modelConfigFromHF(cfg: HFConfig, opts: FromHFOptions = {}): ModelConfig {
  const family = hfFamilyOf(cfg);
  if (family === 'llama') return llamaFromHF(cfg, opts);
  if (family === 'gpt2') return gpt2FromHF(cfg, opts);
  return bertFromHF(cfg, opts);
}

/** Block counts per stack: the caller's, else those the export recorded, else one stack. */
function stacksOf(opts: FromHFOptions, cfg: HFConfig): number | number[] {
  const saved = cfg[STACKS_FIELD];
  const fromFile = Array.isArray(saved) && saved.every((n) => typeof n === 'number') ? (saved as number[]) : undefined;
  return opts.stacks ?? fromFile ?? 1;
}

function llamaFromHF(cfg: HFConfig, opts: FromHFOptions): ModelConfig {
  const d = int(cfg, LLAMA('d_model'));
  const nHeads = int(cfg, LLAMA('n_heads'));
  const headDim = int(cfg, 'head_dim', d / nHeads);
  const act = activationOf(cfg, 'hidden_act', 'silu');
  if (act !== 'silu') throw new HFConfigError(`config.json: 'hidden_act' = ${JSON.stringify(cfg.hidden_act)} is not supported for llama (SwiGLU uses silu)`);
  refuse(cfg, 'pretraining_tp', (v) => v === 1, 'tensor-parallel slicing changes rounding only; set it to 1');
  const maxPos = cfg[LLAMA('max_positions')];
  return llamaConfig({
    vocabSize: int(cfg, LLAMA('vocab_size')),
    dModel: d,
    nLayers: int(cfg, HF_LAYER_COUNT.llama),
    nHeads,
    nKvHeads: int(cfg, LLAMA('n_kv_heads'), nHeads),
    ...(headDim !== d / nHeads ? { headDim } : {}),
    ropeTheta: ropeThetaOf(cfg),
    normEps: num(cfg, LLAMA('norm_eps'), sizeDefault('llama', 'norm_eps')),
    dFF: int(cfg, LLAMA('d_ff')),
    attentionBias: bool(cfg, 'attention_bias', false),
    mlpBias: bool(cfg, 'mlp_bias', false),
    tieEmbeddings: bool(cfg, LLAMA('tie_embeddings'), sizeDefault('llama', 'tie_embeddings')),
    ...(typeof maxPos === 'number' ? { maxPositions: maxPos } : {}),
    stacks: stacksOf(opts, cfg),
  });
}

function gpt2FromHF(cfg: HFConfig, opts: FromHFOptions): ModelConfig {
  const d = int(cfg, GPT2('d_model'));
  refuse(cfg, 'scale_attn_by_inverse_layer_idx', (v) => v === false, 'per-layer attention scaling is not implemented');
  refuse(cfg, 'scale_attn_weights', (v) => v === true, 'unscaled attention scores are not implemented');
  refuse(cfg, 'add_cross_attention', (v) => v === false, 'cross-attention is not implemented');
  return gpt2Config({
    vocabSize: int(cfg, GPT2('vocab_size')),
    dModel: d,
    nLayers: int(cfg, HF_LAYER_COUNT.gpt2),
    nHeads: int(cfg, GPT2('n_heads')),
    dFF: int(cfg, GPT2('d_ff'), 4 * d),
    activation: activationOf(cfg, 'activation_function', 'gelu_new'),
    normEps: num(cfg, GPT2('norm_eps'), sizeDefault('gpt2', 'norm_eps')),
    maxPositions: int(cfg, GPT2('max_positions'), sizeDefault('gpt2', 'max_positions')),
    dropout: prob(cfg, 'resid_pdrop'),
    embeddingDropout: prob(cfg, 'embd_pdrop'),
    tieEmbeddings: bool(cfg, GPT2('tie_embeddings'), sizeDefault('gpt2', 'tie_embeddings')),
    stacks: stacksOf(opts, cfg),
  });
}

/** BERT head kind from the architectures list. */
export function bertHeadKind(cfg: HFConfig): 'mlm' | 'classification' {
  const arch = Array.isArray(cfg.architectures) ? String(cfg.architectures[0] ?? '') : 'BertForMaskedLM';
  if (arch === 'BertForMaskedLM' || arch === '') return 'mlm';
  if (arch === 'BertForSequenceClassification') return 'classification';
  throw new HFConfigError(`config.json: architecture '${arch}' is not supported for bert (expected BertForMaskedLM or BertForSequenceClassification)`);
}

function numLabels(cfg: HFConfig): number {
  if (typeof cfg.num_labels === 'number') return cfg.num_labels;
  if (cfg.id2label && typeof cfg.id2label === 'object') return Object.keys(cfg.id2label).length;
  return 2;
}

function bertFromHF(cfg: HFConfig, opts: FromHFOptions): ModelConfig {
  refuse(cfg, 'position_embedding_type', (v) => v === 'absolute', 'only absolute learned positions are implemented');
  refuse(cfg, 'is_decoder', (v) => v === false, 'BERT as a decoder is not implemented');
  refuse(cfg, 'add_cross_attention', (v) => v === false, 'cross-attention is not implemented');
  const hidden = prob(cfg, 'hidden_dropout_prob');
  const kind = bertHeadKind(cfg);
  return bertConfig({
    vocabSize: int(cfg, BERT('vocab_size')),
    dModel: int(cfg, BERT('d_model')),
    nLayers: int(cfg, HF_LAYER_COUNT.bert),
    nHeads: int(cfg, BERT('n_heads')),
    dFF: int(cfg, BERT('d_ff')),
    activation: activationOf(cfg, 'hidden_act', 'gelu'),
    normEps: num(cfg, BERT('norm_eps'), sizeDefault('bert', 'norm_eps')),
    maxPositions: int(cfg, BERT('max_positions'), sizeDefault('bert', 'max_positions')),
    typeVocabSize: int(cfg, 'type_vocab_size', 2),
    dropout: hidden,
    head: kind,
    ...(kind === 'classification' ? { nClasses: numLabels(cfg) } : {}),
    classifierDropout: cfg.classifier_dropout === undefined || cfg.classifier_dropout === null ? hidden : prob(cfg, 'classifier_dropout'),
    tieEmbeddings: bool(cfg, BERT('tie_embeddings'), sizeDefault('bert', 'tie_embeddings')),
    stacks: stacksOf(opts, cfg),
  });
}

// ---- export -----------------------------------------------------------------------------------

const ACT_TO_HF: Record<Activation, string> = { gelu: 'gelu', gelu_tanh: 'gelu_new', relu: 'relu', silu: 'silu', tanh: 'tanh' };

function uniformBlock(config: ModelConfig): BlockConfig {
  const blocks = config.stacks.map((s) => s.block);
  if (blocks.length === 0) throw new HFConfigError('export: the model has no stacks');
  const first = JSON.stringify(blocks[0]);
  blocks.forEach((b, i) => {
    if (JSON.stringify(b) !== first) throw new HFConfigError(`export: stack ${i} has a different block configuration from stack 0; a Hugging Face config describes identical layers`);
  });
  return blocks[0];
}

/** One architectural requirement of a Hugging Face class: [holds, what ours is, what theirs is]. */
type Requirement = [boolean, string, string];

/** Throws naming every requirement that fails: "export: <ours>; Hugging Face <class> <theirs>". */
function requireAll(hfClass: string, requirements: Requirement[]): void {
  const failed = requirements.filter(([ok]) => !ok).map(([, ours, theirs]) => `${ours}; Hugging Face ${hfClass} ${theirs}`);
  if (failed.length > 0) throw new HFConfigError(`export: ${failed.join('. ')}`);
}

/** Requirements every family shares: the block layout and attention. */
function blockRequirements(block: BlockConfig, want: { ffn: string; norm: string; normPosition: string; positional: string; attention: string }, objective?: string): Requirement[] {
  const why = objective !== undefined ? ` (objective ${objective})` : '';
  return [
    [block.ffn === want.ffn, `the feed-forward is ${block.ffn}`, `uses ${want.ffn}`],
    [block.norm === want.norm, `normalization is ${block.norm}`, `uses ${want.norm}`],
    [block.normPosition === want.normPosition, `normalization is ${block.normPosition}-sublayer`, `normalizes ${want.normPosition}-sublayer`],
    [block.positional === want.positional, `attention positions are ${block.positional === 'rope' ? 'rotary (RoPE)' : 'not rotary'}`, want.positional === 'rope' ? 'uses RoPE' : 'has no rotary positions'],
    [block.attention === want.attention, `attention is ${block.attention}${why}`, `is ${want.attention}`],
  ];
}

/** Options of hfConfigFromModel. */
export interface HFExportContext {
  /** The training objective, named when attention does not fit (e.g. "diffusion"). */
  objective?: string;
}

/**
 * An HF config.json for `config`. Fields of `base` (the config the model was imported from)
 * are kept unless they describe the architecture, which is always written from `config`.
 */
export function hfConfigFromModel(config: ModelConfig, base: HFConfig = {}, context: HFExportContext = {}): HFConfig {
  const block = uniformBlock(config);
  const nLayers = config.stacks.reduce((n, s) => n + s.nBlocks, 0);
  const out: HFConfig = { ...base };
  const d = config.dModel;
  if ((block.attentionKind ?? 'standard') !== 'standard') {
    const kind = block.attentionKind === 'linear' ? `'linear' (feature map '${block.linear?.featureMap ?? 'elu1'}')` : `'${block.attentionKind}'`;
    throw new HFConfigError(`export: attention kind ${kind} (model.attention_kind) has no Hugging Face ${config.family} equivalent; Hugging Face ${config.family} has 'standard' attention only (n_kv_heads for GQA/MQA)`);
  }
  if (config.timeEmbedding) throw new HFConfigError(`export: a time embedding (time-as-input, model.time_embedding) has no Hugging Face ${config.family} equivalent`);
  switch (config.family) {
    case 'llama': {
      const cls = 'LlamaForCausalLM';
      requireAll(cls, [
        ...blockRequirements(block, { ffn: 'swiglu', norm: 'rmsnorm', normPosition: 'pre', positional: 'rope', attention: 'causal' }, context.objective),
        [config.head.kind === 'lm', `the head is ${config.head.kind}`, 'has an LM head'],
        [config.embedding.positional === 'rope', `the embedding adds ${config.embedding.positional} positions`, 'has no position table (RoPE only)'],
      ]);
      const head = config.head as Extract<ModelConfig['head'], { kind: 'lm' }>;
      requireAll(cls, [
        [!head.bias, 'the LM head has a bias', 'has none'],
        [block.qkvBias === block.outBias, `q/k/v ${block.qkvBias ? 'have' : 'have no'} bias but o ${block.outBias ? 'has' : 'has none'}`, 'has one attention_bias setting for all four'],
      ]);
      Object.assign(out, {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        [LLAMA('vocab_size')]: config.vocabSize,
        [LLAMA('d_model')]: d,
        [LLAMA('d_ff')]: block.dFF,
        [HF_LAYER_COUNT.llama]: nLayers,
        [LLAMA('n_heads')]: block.nHeads,
        [LLAMA('n_kv_heads')]: block.nKvHeads ?? block.nHeads,
        head_dim: block.headDim ?? d / block.nHeads,
        hidden_act: 'silu',
        [LLAMA('norm_eps')]: block.normEps,
        attention_bias: block.qkvBias,
        mlp_bias: block.ffnBias,
        [LLAMA('tie_embeddings')]: head.tied,
        [LLAMA('max_positions')]: config.embedding.maxPositions ?? (base[LLAMA('max_positions')] as number | undefined) ?? 2048,
        [LLAMA('rope_theta')]: block.ropeTheta ?? sizeDefault('llama', 'rope_theta'),
        rope_parameters: { [LLAMA('rope_theta')]: block.ropeTheta ?? sizeDefault('llama', 'rope_theta'), rope_type: 'default' },
        attention_dropout: 0.0,
        pretraining_tp: 1,
      });
      delete out.rope_scaling;
      if (!(LLAMA('rope_theta') in base) && 'rope_parameters' in base) delete out[LLAMA('rope_theta')];
      break;
    }
    case 'gpt2': {
      const cls = 'GPT2LMHeadModel';
      requireAll(cls, [
        ...blockRequirements(block, { ffn: 'gelu', norm: 'layernorm', normPosition: 'pre', positional: 'none', attention: 'causal' }, context.objective),
        [block.qkvBias && block.outBias && block.ffnBias, 'some linear layers have no bias', 'has biases everywhere'],
        [(block.nKvHeads ?? block.nHeads) === block.nHeads, `attention has ${block.nKvHeads} key/value heads for ${block.nHeads} query heads`, 'is multi-head (as many key/value heads as query heads)'],
        [(block.headDim ?? d / block.nHeads) === d / block.nHeads, `the head dimension is ${block.headDim}`, `uses d_model / n_heads = ${d / block.nHeads}`],
        [config.head.kind === 'lm', `the head is ${config.head.kind}`, 'has an LM head'],
        [config.embedding.positional === 'learned', `the embedding has ${config.embedding.positional} positions`, 'has a learned position table'],
        [!config.embedding.norm && !config.embedding.typeVocabSize, 'the embedding has a norm or token types', 'has neither'],
      ]);
      const head = config.head as Extract<ModelConfig['head'], { kind: 'lm' }>;
      requireAll(cls, [[!head.bias, 'the LM head has a bias', 'has none']]);
      Object.assign(out, {
        architectures: ['GPT2LMHeadModel'],
        model_type: 'gpt2',
        [GPT2('vocab_size')]: config.vocabSize,
        [GPT2('d_model')]: d,
        [HF_LAYER_COUNT.gpt2]: nLayers,
        [GPT2('n_heads')]: block.nHeads,
        // null means 4·n_embd in HF; keep the original spelling when it still holds.
        [GPT2('d_ff')]: base[GPT2('d_ff')] === null && block.dFF === 4 * d ? null : block.dFF,
        [GPT2('max_positions')]: config.embedding.maxPositions,
        [GPT2('norm_eps')]: block.normEps,
        activation_function: ACT_TO_HF[block.activation ?? 'gelu_tanh'],
        [GPT2('tie_embeddings')]: head.tied,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        add_cross_attention: false,
        resid_pdrop: block.dropout ?? 0,
        embd_pdrop: config.embedding.dropout ?? 0,
      });
      // Defaults of GPT2Config that do not describe a model of ours: attention dropout (we have
      // none) and token ids 50256 beyond a small vocabulary.
      if (!('attn_pdrop' in base)) out.attn_pdrop = 0;
      for (const k of ['bos_token_id', 'eos_token_id']) if (!(k in base) && config.vocabSize <= 50256) out[k] = null;
      break;
    }
    case 'bert': {
      const h = config.head;
      const cls = h.kind === 'classification' ? 'BertForSequenceClassification' : 'BertForMaskedLM';
      requireAll(cls, [
        ...blockRequirements(block, { ffn: 'gelu', norm: 'layernorm', normPosition: 'post', positional: 'none', attention: 'bidirectional' }, context.objective),
        [block.qkvBias && block.outBias && block.ffnBias, 'some linear layers have no bias', 'has biases everywhere'],
        [(block.nKvHeads ?? block.nHeads) === block.nHeads, `attention has ${block.nKvHeads} key/value heads for ${block.nHeads} query heads`, 'is multi-head (as many key/value heads as query heads)'],
        [config.embedding.positional === 'learned', `the embedding has ${config.embedding.positional} positions`, 'has a learned position table'],
        [config.embedding.norm?.kind === 'layernorm', 'the embedding has no LayerNorm', 'normalizes the embedding with LayerNorm'],
      ]);
      Object.assign(out, {
        architectures: [h.kind === 'mlm' ? 'BertForMaskedLM' : 'BertForSequenceClassification'],
        model_type: 'bert',
        [BERT('vocab_size')]: config.vocabSize,
        [BERT('d_model')]: d,
        [HF_LAYER_COUNT.bert]: nLayers,
        [BERT('n_heads')]: block.nHeads,
        [BERT('d_ff')]: block.dFF,
        hidden_act: ACT_TO_HF[block.activation ?? 'gelu'],
        [BERT('norm_eps')]: block.normEps,
        [BERT('max_positions')]: config.embedding.maxPositions,
        type_vocab_size: config.embedding.typeVocabSize ?? 0,
        position_embedding_type: 'absolute',
        is_decoder: false,
        hidden_dropout_prob: block.dropout ?? 0,
      });
      if (!('attention_probs_dropout_prob' in base)) out.attention_probs_dropout_prob = 0;
      if (h.kind === 'mlm') out[BERT('tie_embeddings')] = h.tied;
      else if (h.kind === 'classification') {
        requireAll(cls, [[h.pooling === 'cls' && h.pooler, `the classification head pools by ${h.pooling}${h.pooler ? '' : ' without a pooler'}`, "pools the [CLS] position through a pooler"]]);
        if (Object.keys((base.id2label as object | undefined) ?? {}).length !== h.nClasses) {
          out.id2label = Object.fromEntries(Array.from({ length: h.nClasses }, (_, i) => [String(i), `LABEL_${i}`]));
          out.label2id = Object.fromEntries(Array.from({ length: h.nClasses }, (_, i) => [`LABEL_${i}`, i]));
        }
      } else throw new HFConfigError('export: a bert model needs an MLM or classification head');
      break;
    }
    default:
      throw new HFConfigError(`export: model family '${config.family}' has no Hugging Face equivalent (expected llama, gpt2 or bert)`);
  }
  if (out.dtype === undefined && out.torch_dtype === undefined) out.dtype = 'float32';
  // Our grouping of the layers into stacks (HF ignores the extra field; our import reads it).
  const sizes = config.stacks.map((s) => s.nBlocks);
  if (sizes.length > 1) out[STACKS_FIELD] = sizes;
  else delete out[STACKS_FIELD];
  return out;
}
