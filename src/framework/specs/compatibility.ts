// Cross-plane compatibility: do this batch, embedding, rack, head (and data) fit together?
// Every rule reports a CompatibilityProblem naming both fields, so the user can fix either side.
// The specs are assumed individually valid (run validateX first); this only compares them.

import type { BatchSpec } from './batch.js';
import type { DataSpec } from './data.js';
import type { EmbeddingSpec } from './embedding.js';
import type { HeadSpec } from './head.js';
import { isMaskingObjective } from './objective.js';
import type { OptimizerSpec } from './optimizer.js';
import { conflict, IncompatibleSpecsError, type CompatibilityProblem } from './problems.js';
import { rackShapeProblems, type RackSpec } from './rack.js';

export interface TrainingSpecs {
  batch: BatchSpec;
  embedding: EmbeddingSpec;
  rack: RackSpec;
  head: HeadSpec;
  /** Accepted so callers can pass the whole plane set; no cross-plane optimizer rule exists yet. */
  optimizer?: OptimizerSpec;
  data?: DataSpec;
}

/** Every incompatibility found, in a stable order; an empty list means the specs fit. */
export function checkCompatibility(specs: TrainingSpecs): CompatibilityProblem[] {
  const { batch, embedding, rack, head, data } = specs;
  const problems: CompatibilityProblem[] = [];
  const side = <T extends object, K extends keyof T & string>(name: string, spec: T, key: K) => ({
    path: `${name}.${key}`,
    value: spec[key] as unknown,
  });

  // Vocabulary: batch ids index the embedding table; a token head scores the same vocabulary.
  if (batch.vocab_size !== embedding.vocab_size) {
    problems.push(
      conflict('vocab_size', side('embedding', embedding, 'vocab_size'), side('batch', batch, 'vocab_size'),
        'the same value as embedding.vocab_size', 'batch token ids index the embedding table'),
    );
  }
  if (head.kind !== 'classification' && head.vocab_size !== embedding.vocab_size) {
    problems.push(
      conflict('vocab_size', side('embedding', embedding, 'vocab_size'), side('head', head, 'vocab_size'),
        'the same value as embedding.vocab_size', head.tied ? 'a tied head shares the embedding table' : 'the head scores the input vocabulary'),
    );
  }

  // Sequence length: a learned position table has max_positions rows.
  if (embedding.positional === 'learned' && embedding.max_positions !== undefined && batch.seq_len > embedding.max_positions) {
    problems.push(
      conflict('seq_len', side('embedding', embedding, 'max_positions'), side('batch', batch, 'seq_len'),
        `at most embedding.max_positions`, 'learned positions have no row beyond max_positions'),
    );
  }

  // Width: the residual stream has one d_model from embedding through head.
  if (rack.d_model !== embedding.d_model) {
    problems.push(conflict('d_model', side('embedding', embedding, 'd_model'), side('rack', rack, 'd_model'), 'the same value as embedding.d_model'));
  }
  if (head.d_model !== rack.d_model) {
    problems.push(conflict('d_model', side('rack', rack, 'd_model'), side('head', head, 'd_model'), 'the same value as rack.d_model'));
  }

  // Objective vs head: all three objectives score tokens, so they need per-token vocabulary logits.
  const objective = side('batch', batch, 'objective');
  if (head.kind === 'classification') {
    problems.push(
      conflict('kind', objective, side('head', head, 'kind'), `'lm' or 'mlm' for objective '${batch.objective}'`,
        'a classification head gives one label per sequence, not per-token logits'),
    );
  }

  // Time-as-input: the time embedding reads each row's noise ratio, which only diffusion batches have.
  if (embedding.time_embedding === true && batch.objective !== 'diffusion') {
    problems.push(
      conflict('objective', side('embedding', embedding, 'time_embedding'), objective, "'diffusion' (model.time_embedding needs a noise ratio per row)",
        `objective '${batch.objective}' gives no noise ratio r to embed`),
    );
  }

  // Masking objectives replace tokens by [MASK]: the id must exist and fit the embedding table.
  if (isMaskingObjective(batch.objective) && batch.mask_token_id === undefined) {
    problems.push(
      conflict('mask_token_id', objective, side('batch', batch, 'mask_token_id'),
        `a mask token id (objective '${batch.objective}' replaces tokens by [MASK])`),
    );
  }
  for (const key of ['mask_token_id', 'pad_token_id'] as const) {
    const id = batch[key];
    if (id !== undefined && id >= embedding.vocab_size) {
      problems.push(
        conflict(key, side('embedding', embedding, 'vocab_size'), side('batch', batch, key), 'a token id below embedding.vocab_size'),
      );
    }
  }

  // Attention mode vs objective, and positions: checked per stack.
  const wantAttention = batch.objective === 'clm' ? 'causal' : 'bidirectional';
  const wantPositional = embedding.positional === 'rope' ? 'rope' : 'none';
  rack.stacks.forEach((stack, i) => {
    const at = `rack.stacks[${i}]`;
    if (stack.attention !== wantAttention) {
      problems.push(
        conflict('attention', objective, { path: `${at}.attention`, value: stack.attention }, `'${wantAttention}' for objective '${batch.objective}'`,
          batch.objective === 'clm' ? 'next-token prediction must not see later tokens' : 'masked tokens are predicted from both sides'),
      );
    }
    if (stack.positional !== wantPositional) {
      problems.push(
        conflict('positional', side('embedding', embedding, 'positional'), { path: `${at}.positional`, value: stack.positional }, `'${wantPositional}'`,
          wantPositional === 'rope' ? 'the embedding adds no positions, so every stack must rotate q and k' : 'positions must be encoded exactly once'),
      );
    }
  });
  problems.push(...rackShapeProblems(rack));

  if (data !== undefined && data.objective !== batch.objective) {
    problems.push(conflict('objective', objective, side('data', data, 'objective'), 'the same value as batch.objective'));
  }
  return problems;
}

/** Throws IncompatibleSpecsError listing every problem, or returns quietly. */
export function assertCompatible(specs: TrainingSpecs): void {
  const problems = checkCompatibility(specs);
  if (problems.length > 0) throw new IncompatibleSpecsError(problems);
}
