/**
 * The parameters and per-token compute of a model, counted from its plain description (an nn
 * ModelConfig) without building it: nothing is allocated, so a config of any size can be planned.
 * The counts are the ones Model.fromConfig would create (a test checks them against built models
 * of every preset).
 *
 * A block is described as its modules in data-flow order (pre-norm: norm → q/k/v → attention core
 * → o → norm → gate/up → down); each projection as [in, out] so that a storage format and a LoRA
 * adapter can be priced per matrix.
 */
import type { BlockConfig, EmbeddingConfig, HeadConfig, ModelConfig, NormConfig } from '../../nn/index.js';
import type { LoraTarget } from '../../framework/index.js';

export interface Projection {
  name: LoraTarget;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}

export interface BlockShape {
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  dFF: number;
  causal: boolean;
  normPosition: 'pre' | 'post';
  /** Attention projections (q, k, v, o) then FFN projections (gate, up, down). */
  projections: Projection[];
  /** Norm parameters (two norms) — never quantized. */
  normParams: number;
}

const normSize = (n: NormConfig | { kind: string } | null | undefined, d: number): number => (!n ? 0 : n.kind === 'layernorm' ? 2 * d : d);

export function blockShape(dModel: number, b: BlockConfig): BlockShape {
  if (b.attentionKind && b.attentionKind !== 'standard') {
    throw new Error(`plan: attention kind '${b.attentionKind}' is not priced by the planner (standard softmax attention only)`);
  }
  const headDim = b.headDim ?? dModel / b.nHeads;
  const kv = b.nKvHeads ?? b.nHeads;
  const qw = b.nHeads * headDim, kvw = kv * headDim;
  const projections: Projection[] = [
    { name: 'q', inFeatures: dModel, outFeatures: qw, bias: b.qkvBias },
    { name: 'k', inFeatures: dModel, outFeatures: kvw, bias: b.qkvBias },
    { name: 'v', inFeatures: dModel, outFeatures: kvw, bias: b.qkvBias },
    { name: 'o', inFeatures: qw, outFeatures: dModel, bias: b.outBias },
  ];
  if (b.ffn === 'swiglu') projections.push({ name: 'gate', inFeatures: dModel, outFeatures: b.dFF, bias: b.ffnBias });
  projections.push({ name: 'up', inFeatures: dModel, outFeatures: b.dFF, bias: b.ffnBias }, { name: 'down', inFeatures: b.dFF, outFeatures: dModel, bias: b.ffnBias });
  return { dModel, nHeads: b.nHeads, nKvHeads: kv, headDim, dFF: b.dFF, causal: b.attention === 'causal', normPosition: b.normPosition, projections, normParams: 2 * normSize({ kind: b.norm }, dModel) };
}

/** Parameters of one projection (weight + bias). */
export const projectionParams = (p: Projection): number => p.inFeatures * p.outFeatures + (p.bias ? p.outFeatures : 0);

/** Sizes of a block's tensors: each projection's weight (and bias), each norm's tensors. */
export function blockTensorSizes(s: BlockShape): number[] {
  return [...s.projections.flatMap((p) => [p.inFeatures * p.outFeatures, ...(p.bias ? [p.outFeatures] : [])]), ...Array<number>(s.normParams / s.dModel).fill(s.dModel)];
}

export function blockParams(s: BlockShape): number {
  return s.projections.reduce((a, p) => a + projectionParams(p), 0) + s.normParams;
}

/** The LoRA rank on each adapted projection of a block (absent: none). */
export type LoraRanks = Partial<Record<LoraTarget, number>>;

/** LoRA parameters of a block's adapters (A: r×in, B: out×r). */
export function blockLoraParams(s: BlockShape, lora: LoraRanks): number {
  return s.projections.reduce((a, p) => a + (lora[p.name] ?? 0) * (p.inFeatures + p.outFeatures), 0);
}

/** Sizes of a block's adapter tensors (A: r×in, B: out×r on each adapted projection). */
export function blockLoraTensorSizes(s: BlockShape, lora: LoraRanks): number[] {
  return s.projections.flatMap((p) => { const r = lora[p.name] ?? 0; return r > 0 ? [r * p.inFeatures, p.outFeatures * r] : []; });
}

/**
 * Forward FLOPs per token of a block at sequence length S (multiply-adds count 2): projections
 * 2·in·out, attention scores and values 4·S_eff·H·hd with S_eff = (S+1)/2 when causal.
 */
export function blockForwardFlops(s: BlockShape, S: number, lora: LoraRanks = {}): { projections: number; core: number; lora: number } {
  const projections = s.projections.reduce((a, p) => a + 2 * p.inFeatures * p.outFeatures, 0);
  const core = 4 * (s.causal ? (S + 1) / 2 : S) * s.nHeads * s.headDim;
  return { projections, core, lora: 2 * blockLoraParams(s, lora) };
}

export interface EmbeddingShape {
  /** Token table (vocab × d): the tied head's decoder when tied. */
  tokenParams: number;
  /** Positions, token types and the norm. */
  otherParams: number;
}

export function embeddingShape(vocab: number, d: number, e: EmbeddingConfig): EmbeddingShape {
  const positions = e.positional === 'learned' ? (e.maxPositions ?? 0) * d : 0;
  return { tokenParams: vocab * d, otherParams: positions + (e.typeVocabSize ?? 0) * d + normSize(e.norm, d) };
}

export interface HeadShape {
  /** Parameters the head owns (a tied decoder is the embedding's). */
  params: number;
  /** Sizes of the tensors it owns (sum: params), in build order. */
  tensors: number[];
  /** Its final norm's share of `params`. */
  finalNormParams: number;
  /** Forward FLOPs per token (decoder 2·d·V plus a transform). */
  forwardFlops: number;
  /** Rows × columns of its decoder (for the fused loss's chunk). */
  vocab: number;
  tied: boolean;
}

export function headShape(vocab: number, d: number, h: HeadConfig): HeadShape {
  const finalNormParams = normSize(h.finalNorm, d);
  const norm = Array<number>(finalNormParams / d).fill(d);
  const shaped = (tensors: number[], forwardFlops: number, rows: number, tied: boolean): HeadShape =>
    ({ params: tensors.reduce((a, b) => a + b, 0), tensors: tensors.filter((n) => n > 0), finalNormParams, forwardFlops, vocab: rows, tied });
  switch (h.kind) {
    case 'lm':
      return shaped([...norm, h.tied ? 0 : vocab * d, h.bias ? vocab : 0], 2 * d * vocab, vocab, h.tied);
    case 'mlm':
      return shaped([...norm, d * d, d, d, d, h.tied ? 0 : vocab * d, vocab], 2 * d * d + 2 * d * vocab, vocab, h.tied);
    case 'classification':
      return shaped([...norm, ...(h.pooler ? [d * d, d] : []), h.nClasses * d, h.bias ? h.nClasses : 0], 2 * d * h.nClasses, h.nClasses, false);
  }
}

export interface ModelShape {
  vocab: number;
  dModel: number;
  embedding: EmbeddingShape;
  /** Time embedding parameters (time-as-input), 0 without one. */
  timeParams: number;
  /** Blocks per stack and the block shape of every stack. */
  stacks: { nBlocks: number; block: BlockShape }[];
  head: HeadShape;
}

export function modelShape(c: ModelConfig): ModelShape {
  const t = c.timeEmbedding;
  return {
    vocab: c.vocabSize,
    dModel: c.dModel,
    embedding: embeddingShape(c.vocabSize, c.dModel, c.embedding),
    // features → hidden (+bias) → d (+bias)
    timeParams: t ? t.features * t.hidden + t.hidden + t.hidden * c.dModel + c.dModel : 0,
    stacks: c.stacks.map((s) => ({ nBlocks: s.nBlocks, block: blockShape(c.dModel, s.block) })),
    head: headShape(c.vocabSize, c.dModel, c.head),
  };
}

/** Every parameter Model.fromConfig(config) creates. */
export function totalParams(s: ModelShape): number {
  return s.embedding.tokenParams + s.embedding.otherParams + s.timeParams + s.head.params + s.stacks.reduce((a, st) => a + st.nBlocks * blockParams(st.block), 0);
}

/** One stage of a block's data flow (as training/progressive/report.ts prices the live model). */
export interface StageCost { fwd: number; wgrad: number; inputGrad: number; trainable: boolean }

/**
 * The stages of a block in data-flow order: pre-norm [norm, q/k/v, attention core, o, norm,
 * gate/up, down], post-norm [q/k/v, core, o, norm, gate/up, down, norm]. A projection costs
 * 2·in·out per token (+ 2·r·(in+out) for an adapter); its input gradient costs its forward; the
 * core's input gradient twice its forward. `trainsBase`: the weights and norms train;
 * `trainsLora`: the adapters train.
 */
export function blockStages(s: BlockShape, S: number, lora: LoraRanks, trainsBase: boolean, trainsLora: boolean): StageCost[] {
  const group = (names: string[]): StageCost => {
    let fwd = 0, wgrad = 0, adapted = false;
    for (const p of s.projections.filter((q) => names.includes(q.name))) {
      const base = 2 * p.inFeatures * p.outFeatures;
      fwd += base;
      if (trainsBase) wgrad += base;
      const r = lora[p.name] ?? 0;
      if (r > 0) {
        const a = 2 * r * (p.inFeatures + p.outFeatures);
        fwd += a;
        adapted = true;
        if (trainsLora) wgrad += a;
      }
    }
    return { fwd, wgrad, inputGrad: fwd, trainable: trainsBase || (trainsLora && adapted) };
  };
  const coreFwd = 4 * (s.causal ? (S + 1) / 2 : S) * s.nHeads * s.headDim;
  const core: StageCost = { fwd: coreFwd, wgrad: 0, inputGrad: 2 * coreFwd, trainable: false };
  const norm: StageCost = { fwd: 0, wgrad: 0, inputGrad: 0, trainable: trainsBase };
  const attnIn = group(['q', 'k', 'v']), out = group(['o']), ffnIn = group(['gate', 'up']), down = group(['down']);
  return s.normPosition === 'pre' ? [norm, attnIn, core, out, norm, ffnIn, down] : [attnIn, core, out, norm, ffnIn, down, norm];
}
