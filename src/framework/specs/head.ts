// HeadSpec: what sits on top of the rack (token logits for LM/MLM, or sequence classes).

import {
  FieldReader,
  POSITIVE_INT,
  specCodec,
  type SpecIssue,
} from './fields.js';

import { HEAD_KINDS, POOLINGS, type ClassificationHeadSpec, type HeadKind, type HeadSpec, type Pooling, type TokenHeadSpec } from '../../nn/index.js';

// Defined in nn (kinds.ts, spec.ts); re-exported under the names specs have always used.
export { HEAD_KINDS, POOLINGS, type ClassificationHeadSpec, type HeadKind, type HeadSpec, type Pooling, type TokenHeadSpec };


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
