/**
 * EmbeddingBlock: token embedding plus optional learned positions and token types, norm and
 * dropout — the model's first stage. Also BuildOptions, the seed + placement every builder takes.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { EmbeddingSpec } from './spec.js';
import { Module } from './module.js';
import { applyDropout, DropoutSeeds, Embedding, makeNorm, type Norm } from './layers.js';
import { deriveSeed, type TensorPlacement } from './init.js';
import type { EmbeddingConfig } from './config.js';

export interface BuildOptions extends TensorPlacement {
  /** Seed of every random initialisation (default 0). */
  seed?: number;
}

export interface EmbeddingInputs {
  /** int32 [B, S] segment ids (default: all 0 when a token-type table exists). */
  tokenTypeIds?: Tensor | null;
  /** int32 [S] or [B, S] position ids (default 0..S-1 + positionOffset). */
  positions?: Tensor | null;
  positionOffset?: number;
  seed?: number;
}

/**
 * Token embedding plus optional learned positions and token types, then an optional norm and
 * dropout. Children: 'token', 'position', 'token_type', 'norm'.
 */
export class EmbeddingBlock extends Module {
  readonly vocabSize: number;
  readonly dModel: number;
  readonly config: EmbeddingConfig;
  readonly token: Embedding;
  readonly position: Embedding | null;
  readonly tokenType: Embedding | null;
  readonly norm: Norm | null;
  private readonly seeds: DropoutSeeds;

  constructor(vocabSize: number, dModel: number, config: EmbeddingConfig, opts: BuildOptions = {}) {
    super();
    this.vocabSize = vocabSize;
    this.dModel = dModel;
    this.config = structuredClone(config);
    const seed = opts.seed ?? 0;
    const place = { dtype: opts.dtype, backend: opts.backend };
    this.token = this.registerModule('token', new Embedding(vocabSize, dModel, { ...place, seed: deriveSeed(seed, 'token') }));
    if (config.positional === 'learned') {
      if (!config.maxPositions) throw new Error('EmbeddingBlock: learned positions need maxPositions');
      this.position = this.registerModule('position', new Embedding(config.maxPositions, dModel, { ...place, seed: deriveSeed(seed, 'position') }));
    } else {
      this.position = null;
    }
    this.tokenType = config.typeVocabSize
      ? this.registerModule('token_type', new Embedding(config.typeVocabSize, dModel, { ...place, seed: deriveSeed(seed, 'token_type') }))
      : null;
    this.norm = config.norm ? this.registerModule('norm', makeNorm(config.norm.kind, dModel, { ...place, eps: config.norm.eps })) : null;
    this.seeds = new DropoutSeeds(deriveSeed(seed, 'dropout'));
  }

  forward(ids: Tensor, inputs: EmbeddingInputs = {}): Tensor {
    if (ids.dtype !== 'int32' || ids.rank !== 2) throw new Error(`EmbeddingBlock: ids must be int32 [B, S], got ${ids.describe()}`);
    const [B, S] = ids.shape;
    let h = this.token.forward(ids);
    if (this.tokenType) {
      if (inputs.tokenTypeIds) {
        const t = inputs.tokenTypeIds;
        if (t.rank !== 2 || t.shape[0] !== B || t.shape[1] !== S) throw new Error(`EmbeddingBlock: tokenTypeIds ${t.describe()} must be int32 [${B}, ${S}] like the ids`);
        h = E.add(h, this.tokenType.forward(t));
      } else {
        h = E.add(h, E.narrow(this.tokenType.weight, 0, 0, 1));
      }
    }
    if (this.position) {
      const offset = inputs.positionOffset ?? 0;
      const max = this.position.numEmbeddings;
      let pos = inputs.positions ?? null;
      if (!pos) {
        if (offset + S > max) throw new Error(`EmbeddingBlock: positions ${offset}..${offset + S - 1} exceed the learned position table (max_positions ${max})`);
        pos = E.tensor(Int32Array.from({ length: S }, (_, i) => i + offset), [S], { backend: ids.backend });
      }
      h = E.add(h, this.position.forward(pos));
    }
    if (this.norm) h = this.norm.forward(h);
    return applyDropout(h, this.config.dropout ?? 0, this.training, this.seeds, inputs.seed);
  }

  /** The EmbeddingSpec (framework/specs/embedding.ts) of this block. */
  getSpec(): EmbeddingSpec {
    const spec: EmbeddingSpec = {
      vocab_size: this.vocabSize,
      d_model: this.dModel,
      positional: this.config.positional,
      type_vocab_size: this.config.typeVocabSize ?? 0,
    };
    if (this.config.positional !== 'none' && this.config.maxPositions !== undefined) spec.max_positions = this.config.maxPositions;
    return spec;
  }
}
