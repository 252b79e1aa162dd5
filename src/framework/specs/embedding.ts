// EmbeddingSpec: the token (and optionally position / token-type) embedding in front of the rack.

import {
  FieldReader,
  NON_NEGATIVE_INT,
  POSITIVE_INT,
  specCodec,
  type SpecIssue,
} from './fields.js';

import { EMBEDDING_POSITIONALS, type EmbeddingPositional, type EmbeddingSpec } from '../../nn/index.js';

// Defined in nn (kinds.ts, spec.ts); re-exported under the names specs have always used.
export { EMBEDDING_POSITIONALS, type EmbeddingPositional, type EmbeddingSpec };


export function readEmbeddingSpec(value: unknown, path: string, issues: SpecIssue[]): EmbeddingSpec {
  const r = new FieldReader(value, path, issues);
  const spec: EmbeddingSpec = {
    vocab_size: r.number('vocab_size', POSITIVE_INT),
    d_model: r.number('d_model', POSITIVE_INT),
    positional: r.choice('positional', EMBEDDING_POSITIONALS),
    type_vocab_size: r.number('type_vocab_size', NON_NEGATIVE_INT, 0),
  };
  if (r.has('time_embedding') && r.boolean('time_embedding')) spec.time_embedding = true;
  if (r.has('max_positions')) {
    spec.max_positions = r.number('max_positions', POSITIVE_INT);
  } else if (spec.positional === 'learned' && r.valid) {
    r.issue('max_positions', 'a positive integer (learned positions need a table size)', undefined);
  }
  if (spec.positional === 'none' && spec.max_positions !== undefined) {
    r.issue('max_positions', "nothing when positional is 'none'", spec.max_positions);
  }
  if (r.valid) r.finish();
  return spec;
}

const embeddingCodec = specCodec(readEmbeddingSpec, 'embedding');
/** Checks a embedding spec and returns a normalised copy; throws SpecValidationError listing every issue. */
export const validateEmbeddingSpec = embeddingCodec.validate;
export const embeddingSpecToJSON = embeddingCodec.toJSON;
/** Accepts JSON text or parsed JSON; validates. */
export const embeddingSpecFromJSON = embeddingCodec.fromJSON;
