// DataSpec: where tokens come from (corpus, tokenizer, split) and which objective they feed.

import { FieldReader, parseSpecJSON, specToJSON, throwIfIssues, type SpecIssue } from './fields.js';
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

export function validateDataSpec(value: unknown, path = 'data'): DataSpec {
  const issues: SpecIssue[] = [];
  const spec = readDataSpec(value, path, issues);
  throwIfIssues(issues);
  return spec;
}

export function dataSpecToJSON(spec: DataSpec): DataSpec {
  return specToJSON(spec);
}

export function dataSpecFromJSON(json: unknown): DataSpec {
  return validateDataSpec(parseSpecJSON(json, 'data'));
}
