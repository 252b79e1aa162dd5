import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IncompatibleSpecsError,
  assertCompatible,
  checkCompatibility,
  validateBatchSpec,
  validateDataSpec,
  validateEmbeddingSpec,
  validateHeadSpec,
  validateOptimizerSpec,
  validateRackSpec,
  type TrainingSpecs,
} from '../../src/framework/index.js';

/** A compatible GPT-2-like CLM set; each test breaks one thing. */
function gpt2Like(): TrainingSpecs {
  return {
    batch: validateBatchSpec({ batch_size: 4, seq_len: 128, vocab_size: 1000, objective: 'clm' }),
    embedding: validateEmbeddingSpec({ vocab_size: 1000, d_model: 64, positional: 'learned', max_positions: 256 }),
    rack: validateRackSpec({
      d_model: 64,
      n_stacks: 2,
      stacks: [0, 1].map(() => ({ n_blocks: 2, n_heads: 4, d_ff: 256, attention: 'causal', positional: 'none', norm: 'layernorm', ffn: 'gelu' })),
    }),
    head: validateHeadSpec({ kind: 'lm', d_model: 64, vocab_size: 1000, tied: true }),
    optimizer: validateOptimizerSpec({ type: 'adamw', lr_schedule: { kind: 'constant', lr: 1e-3 } }),
    data: validateDataSpec({ corpus: 'moby-dick', tokenizer: 'gpt2', objective: 'clm' }),
  };
}

/** A compatible BERT-like MLM set. */
function bertLike(): TrainingSpecs {
  return {
    batch: validateBatchSpec({ batch_size: 4, seq_len: 64, vocab_size: 500, objective: 'mlm', mask_token_id: 3, pad_token_id: 0 }),
    embedding: validateEmbeddingSpec({ vocab_size: 500, d_model: 32, positional: 'rope' }),
    rack: validateRackSpec({ d_model: 32, n_stacks: 1, stacks: [{ n_blocks: 2, n_heads: 4, n_kv_heads: 2, d_ff: 64, attention: 'bidirectional' }] }),
    head: validateHeadSpec({ kind: 'mlm', d_model: 32, vocab_size: 500 }),
  };
}

function onlyProblem(specs: TrainingSpecs) {
  const problems = checkCompatibility(specs);
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.map((p) => p.message).join('\n')}`);
  return problems[0]!;
}

test('compatible sets have no problems', () => {
  assert.deepEqual(checkCompatibility(gpt2Like()), []);
  assert.deepEqual(checkCompatibility(bertLike()), []);
  assertCompatible(gpt2Like());
});

test('vocab size: batch vs embedding, embedding vs head', () => {
  const a = gpt2Like();
  a.batch.vocab_size = 1200;
  const p = onlyProblem(a);
  assert.equal(p.field, 'vocab_size');
  assert.equal(p.left.path, 'embedding.vocab_size');
  assert.equal(p.right.path, 'batch.vocab_size');
  assert.equal(p.message, 'batch.vocab_size: expected the same value as embedding.vocab_size, found 1200 (embedding.vocab_size = 1000; batch token ids index the embedding table)');

  const b = gpt2Like();
  b.head = { kind: 'lm', d_model: 64, vocab_size: 1024, tied: true, bias: false };
  assert.match(onlyProblem(b).message, /^head\.vocab_size: expected the same value as embedding\.vocab_size, found 1024 \(embedding\.vocab_size = 1000; a tied head shares the embedding table\)$/);
});

test('seq_len vs learned max_positions (not checked for rope)', () => {
  const a = gpt2Like();
  a.batch.seq_len = 512;
  assert.equal(onlyProblem(a).message, 'batch.seq_len: expected at most embedding.max_positions, found 512 (embedding.max_positions = 256; learned positions have no row beyond max_positions)');
  const b = bertLike();
  b.batch.seq_len = 100_000;
  assert.deepEqual(checkCompatibility(b), []);
});

test('d_model: embedding vs rack, rack vs head', () => {
  const a = gpt2Like();
  a.embedding.d_model = 48;
  const p = onlyProblem(a);
  assert.equal(p.field, 'd_model');
  assert.equal(p.message, 'rack.d_model: expected the same value as embedding.d_model, found 64 (embedding.d_model = 48)');
  const b = gpt2Like();
  b.head.d_model = 128;
  assert.equal(onlyProblem(b).message, 'head.d_model: expected the same value as rack.d_model, found 128 (rack.d_model = 64)');
});

test('objective vs head kind: a classification head cannot train token objectives', () => {
  const a = gpt2Like();
  a.head = { kind: 'classification', d_model: 64, n_classes: 2, pooling: 'cls', bias: true };
  const p = onlyProblem(a);
  assert.equal(p.left.path, 'batch.objective');
  assert.equal(p.right.path, 'head.kind');
  assert.match(p.message, /^head\.kind: expected 'lm' or 'mlm' for objective 'clm', found "classification" \(batch\.objective = "clm"; a classification head gives one label per sequence/);
  const b = bertLike();
  b.head = { kind: 'classification', d_model: 32, n_classes: 2, pooling: 'mean', bias: true };
  assert.match(onlyProblem(b).message, /expected 'lm' or 'mlm' for objective 'mlm'/);
  const c = bertLike();
  c.head = { kind: 'lm', d_model: 32, vocab_size: 500, tied: false, bias: false };
  assert.deepEqual(checkCompatibility(c), [], 'an lm head may train mlm');
});

test('mask token: required for mlm and diffusion, and must fit the embedding table', () => {
  const a = bertLike();
  delete a.batch.mask_token_id;
  const p = onlyProblem(a);
  assert.equal(p.field, 'mask_token_id');
  assert.equal(p.message, "batch.mask_token_id: expected a mask token id (objective 'mlm' replaces tokens by [MASK]), found nothing (batch.objective = \"mlm\")");
  const d = bertLike();
  d.batch = validateBatchSpec({ batch_size: 4, seq_len: 64, vocab_size: 500, objective: 'diffusion' });
  assert.match(onlyProblem(d).message, /objective 'diffusion' replaces tokens by \[MASK\]/);
  // Built in code without validation: the id lies outside the embedding table.
  const b = bertLike();
  b.batch.mask_token_id = 500;
  assert.equal(onlyProblem(b).message, 'batch.mask_token_id: expected a token id below embedding.vocab_size, found 500 (embedding.vocab_size = 500)');
  const c = bertLike();
  c.batch.pad_token_id = 777;
  assert.equal(onlyProblem(c).field, 'pad_token_id');
});

test('attention mode vs objective, per stack', () => {
  const a = gpt2Like();
  a.rack.stacks[1]!.attention = 'bidirectional';
  const p = onlyProblem(a);
  assert.equal(p.message, "rack.stacks[1].attention: expected 'causal' for objective 'clm', found \"bidirectional\" (batch.objective = \"clm\"; next-token prediction must not see later tokens)");
  const b = bertLike();
  b.rack.stacks[0]!.attention = 'causal';
  assert.match(onlyProblem(b).message, /^rack\.stacks\[0\]\.attention: expected 'bidirectional' for objective 'mlm', found "causal"/);
});

test('positions are encoded exactly once', () => {
  const a = gpt2Like();
  a.rack.stacks[0]!.positional = 'rope';
  a.rack.stacks[0]!.rope_theta = 10000;
  assert.match(onlyProblem(a).message, /^rack\.stacks\[0\]\.positional: expected 'none', found "rope" \(embedding\.positional = "learned"; positions must be encoded exactly once\)/);
  const b = bertLike();
  b.rack.stacks[0]!.positional = 'none';
  assert.match(onlyProblem(b).message, /expected 'rope', found "none" \(embedding\.positional = "rope"; the embedding adds no positions/);
});

test('head counts: n_heads divides d_model, n_kv_heads divides n_heads (specs built in code)', () => {
  const a = bertLike();
  a.rack.stacks[0]!.n_heads = 5;
  a.rack.stacks[0]!.n_kv_heads = 5;
  assert.equal(onlyProblem(a).message, 'rack.stacks[0].n_heads: expected a divisor of rack.d_model, found 5 (rack.d_model = 32)');
  const b = bertLike();
  b.rack.stacks[0]!.n_kv_heads = 3;
  assert.equal(onlyProblem(b).message, 'rack.stacks[0].n_kv_heads: expected a divisor of rack.stacks[0].n_heads, found 3 (rack.stacks[0].n_heads = 4)');
});

test('data objective vs batch objective', () => {
  const a = gpt2Like();
  a.data = validateDataSpec({ corpus: 'x', tokenizer: 'gpt2', objective: 'mlm' });
  assert.equal(onlyProblem(a).message, 'data.objective: expected the same value as batch.objective, found "mlm" (batch.objective = "clm")');
});

test('several problems are all listed, and assertCompatible throws them', () => {
  const a = gpt2Like();
  a.batch.vocab_size = 7;
  a.head.d_model = 8;
  a.rack.stacks[0]!.attention = 'bidirectional';
  assert.equal(checkCompatibility(a).length, 3);
  assert.throws(() => assertCompatible(a), (err: unknown) => {
    assert.ok(err instanceof IncompatibleSpecsError);
    assert.equal(err.problems.length, 3);
    assert.match(err.message, /^incompatible specs \(3 problems\):/);
    assert.match(err.message, /batch\.vocab_size/);
    assert.match(err.message, /head\.d_model/);
    assert.match(err.message, /rack\.stacks\[0\]\.attention/);
    return true;
  });
});
