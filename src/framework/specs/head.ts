// HeadSpec: what sits on top of the rack (token logits for LM/MLM, or sequence classes).

import {
  FieldReader,
  POSITIVE_INT,
  specCodec,
  type SpecIssue,
} from './fields.js';

export const HEAD_KINDS = ['lm', 'mlm', 'classification'] as const;
export type HeadKind = (typeof HEAD_KINDS)[number];
export const POOLINGS = ['cls', 'mean'] as const;
export type Pooling = (typeof POOLINGS)[number];

/** Per-token vocabulary logits. 'mlm' is the BERT head (dense + norm before the decoder). */
export interface TokenHeadSpec {
  kind: 'lm' | 'mlm';
  d_model: number;
  vocab_size: number;
  /** Decoder weight shared with the token embedding. */
  tied: boolean;
  bias: boolean;
}

/** One label per sequence, from a pooled hidden state. */
export interface ClassificationHeadSpec {
  kind: 'classification';
  d_model: number;
  n_classes: number;
  pooling: Pooling;
  bias: boolean;
}

export type HeadSpec = TokenHeadSpec | ClassificationHeadSpec;

export function readHeadSpec(value: unknown, path: string, issues: SpecIssue[]): HeadSpec {
  const r = new FieldReader(value, path, issues);
  const kind = r.choice('kind', HEAD_KINDS);
  const d_model = r.number('d_model', POSITIVE_INT);
  let spec: HeadSpec;
  if (kind === 'classification') {
    spec = {
      kind,
      d_model,
      n_classes: r.number('n_classes', { integer: true, min: 2 }),
      pooling: r.choice('pooling', POOLINGS, 'cls'),
      bias: r.boolean('bias', true),
    };
  } else {
    spec = {
      kind,
      d_model,
      vocab_size: r.number('vocab_size', POSITIVE_INT),
      tied: r.boolean('tied', false),
      bias: r.boolean('bias', false),
    };
  }
  if (r.valid) r.finish();
  return spec;
}

const headCodec = specCodec(readHeadSpec, 'head');
/** Checks a head spec and returns a normalised copy; throws SpecValidationError listing every issue. */
export const validateHeadSpec = headCodec.validate;
export const headSpecToJSON = headCodec.toJSON;
/** Accepts JSON text or parsed JSON; validates. */
export const headSpecFromJSON = headCodec.fromJSON;
