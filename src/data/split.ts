// Deterministic train/val/test split by document.
import type { Document } from './corpora.js';
import { hashString32 } from './rng.js';

export interface SplitOptions {
  /** Fraction of documents for validation, in [0, 1). Default 0.05. */
  val?: number;
  /** Fraction of documents for test, in [0, 1). Default 0.05. */
  test?: number;
  /** Different seeds give different (but each reproducible) splits. Default 0. */
  seed?: number;
}

export interface DocumentSplits<D extends Document = Document> {
  train: D[];
  val: D[];
  test: D[];
}

export type SplitName = keyof DocumentSplits;

/**
 * Which split a document id falls in. Depends only on (seed, id), never on the other documents
 * or their order, so adding or removing documents never moves the others.
 */
export function splitOf(id: string, options: SplitOptions = {}): SplitName {
  const { val, test, seed } = checkedOptions(options);
  const u = hashString32(id, seed) / 4294967296;
  if (u < test) return 'test';
  if (u < test + val) return 'val';
  return 'train';
}

/**
 * Splits documents into train/val/test, keeping their input order within each split. The
 * fractions are expectations: with few documents a split can be empty or off by a few.
 */
export function splitDocuments<D extends Document>(docs: readonly D[], options: SplitOptions = {}): DocumentSplits<D> {
  const checked = checkedOptions(options);
  const splits: DocumentSplits<D> = { train: [], val: [], test: [] };
  for (const doc of docs) splits[splitOf(doc.id, checked)].push(doc);
  return splits;
}

function checkedOptions(options: SplitOptions): Required<SplitOptions> {
  const { val = 0.05, test = 0.05, seed = 0 } = options;
  for (const [name, value] of [['val', val], ['test', test]] as const) {
    if (!(value >= 0 && value < 1)) throw new RangeError(`splitDocuments: ${name} fraction must be in [0, 1), got ${value}`);
  }
  if (val + test >= 1) throw new RangeError(`splitDocuments: val + test = ${val + test} leaves nothing to train on`);
  if (!Number.isInteger(seed)) throw new RangeError(`splitDocuments: seed must be an integer, got ${seed}`);
  return { val, test, seed };
}
