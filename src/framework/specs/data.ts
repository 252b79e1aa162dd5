// DataSpec: where tokens come from (corpus, tokenizer, split) and which objective they feed.

import { FieldReader, specCodec, type SpecIssue } from './fields.js';
import { OBJECTIVES, type Objective } from './objective.js';

export const DATA_SPLITS = ['train', 'validation', 'test'] as const;
export type DataSplit = (typeof DATA_SPLITS)[number];

export interface DataSpec {
  /** Corpus name as the data layer registers it (e.g. 'moby-dick'). */
  corpus: string;
  /** Tokenizer name as the data layer registers it (e.g. 'gpt2'). */
  tokenizer: string;
  split: DataSplit;
  objective: Objective;
}

export function readDataSpec(value: unknown, path: string, issues: SpecIssue[]): DataSpec {
  const r = new FieldReader(value, path, issues);
  const spec: DataSpec = {
    corpus: r.string('corpus'),
    tokenizer: r.string('tokenizer'),
    split: r.choice('split', DATA_SPLITS, 'train'),
    objective: r.choice('objective', OBJECTIVES),
  };
  if (r.valid) r.finish();
  return spec;
}

const dataCodec = specCodec(readDataSpec, 'data');
/** Checks a data spec and returns a normalised copy; throws SpecValidationError listing every issue. */
export const validateDataSpec = dataCodec.validate;
export const dataSpecToJSON = dataCodec.toJSON;
/** Accepts JSON text or parsed JSON; validates. */
export const dataSpecFromJSON = dataCodec.fromJSON;
