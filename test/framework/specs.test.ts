import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SpecValidationError,
  batchSpecFromJSON,
  batchSpecToJSON,
  dataSpecFromJSON,
  dataSpecToJSON,
  embeddingSpecFromJSON,
  embeddingSpecToJSON,
  headSpecFromJSON,
  headSpecToJSON,
  maskRatioAt,
  optimizerSpecFromJSON,
  optimizerSpecToJSON,
  rackSpecFromJSON,
  rackSpecToJSON,
  uniformRackSpec,
  validateBatchSpec,
  validateDataSpec,
  validateEmbeddingSpec,
  validateHeadSpec,
  validateOptimizerSpec,
  validateRackSpec,
} from '../../src/framework/index.js';

function assertInvalid(fn: () => unknown, ...fragments: string[]) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SpecValidationError, `expected SpecValidationError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

const stack = { n_blocks: 2, n_heads: 4, d_ff: 256, attention: 'causal' };

// ------------------------------------------------------------------------------------------ batch

test('BatchSpec: defaults, mask defaults per objective, JSON round trip', () => {
  const clm = validateBatchSpec({ batch_size: 4, seq_len: 128, vocab_size: 1000, objective: 'clm' });
  assert.deepEqual(clm, { batch_size: 4, seq_len: 128, vocab_size: 1000, objective: 'clm' });
  const mlm = validateBatchSpec({ batch_size: 4, seq_len: 128, vocab_size: 1000, objective: 'mlm', mask_token_id: 4 });
  assert.deepEqual(mlm.mask, { kind: 'constant', ratio: 0.15 });
  const diff = validateBatchSpec({ batch_size: 4, seq_len: 128, vocab_size: 1000, objective: 'diffusion', mask_token_id: 4, pad_token_id: 0 });
  assert.deepEqual(diff.mask, { kind: 'uniform', min: 1e-3, max: 1 });
  for (const spec of [clm, mlm, diff]) {
    assert.deepEqual(batchSpecFromJSON(JSON.stringify(batchSpecToJSON(spec))), spec);
    assert.deepEqual(batchSpecFromJSON(batchSpecToJSON(spec)), spec);
  }
});

test('BatchSpec errors', () => {
  const ok = { batch_size: 4, seq_len: 128, vocab_size: 1000, objective: 'mlm' };
  assertInvalid(() => validateBatchSpec({ ...ok, batch_size: 0 }), 'batch.batch_size: expected a positive integer, found 0');
  assertInvalid(() => validateBatchSpec({ ...ok, seq_len: 1.5 }), 'batch.seq_len: expected a positive integer, found 1.5');
  assertInvalid(() => validateBatchSpec({ ...ok, vocab_size: undefined }), 'batch.vocab_size: expected a positive integer, found nothing');
  assertInvalid(() => validateBatchSpec({ ...ok, objective: 'mln' }), "batch.objective: expected one of 'clm', 'mlm', 'diffusion', found \"mln\" (did you mean 'mlm'?)");
  assertInvalid(() => validateBatchSpec({ ...ok, mask: { kind: 'constant', ratio: 0 } }), 'batch.mask.ratio: expected a number in (0, 1], found 0');
  assertInvalid(() => validateBatchSpec({ ...ok, mask: { kind: 'uniform', min: 0.8, max: 0.2 } }), 'batch.mask.min: expected at most batch.mask.max (0.2), found 0.8');
  assertInvalid(() => validateBatchSpec({ ...ok, objective: 'clm', mask: { kind: 'constant', ratio: 0.15 } }), "batch.mask: expected no mask ratio for objective 'clm'");
  assertInvalid(() => validateBatchSpec({ ...ok, mask_token_id: 1000 }), 'batch.mask_token_id: expected a token id below batch.vocab_size (1000), found 1000');
  assertInvalid(() => validateBatchSpec({ ...ok, mask_token_id: 3, pad_token_id: 3 }), 'batch.mask_token_id: expected a token id different from batch.pad_token_id, found 3');
  assertInvalid(() => validateBatchSpec({ ...ok, batchsize: 4 }), "batch.batchsize: expected a known field", "found unknown field 'batchsize'", "did you mean 'batch_size'?");
  assertInvalid(() => validateBatchSpec([1, 2]), 'batch: expected an object, found [1,2]');
  assertInvalid(() => batchSpecFromJSON('{"batch_size": 4,'), 'batch: expected valid JSON text, found a parse error');
});

test('BatchSpec reports every problem at once', () => {
  assert.throws(
    () => validateBatchSpec({ batch_size: -1, seq_len: 0, vocab_size: 10, objective: 'clm' }),
    (err: unknown) => err instanceof SpecValidationError && err.issues.length === 2 && /^2 problems:/.test(err.message),
  );
});

test('maskRatioAt: constant, uniform and scheduled ratios over t', () => {
  assert.deepEqual(maskRatioAt({ kind: 'constant', ratio: 0.15 }, 0.3), { min: 0.15, max: 0.15 });
  assert.deepEqual(maskRatioAt({ kind: 'uniform', min: 0.1, max: 0.9 }, 0.3), { min: 0.1, max: 0.9 });
  for (const shape of ['linear', 'cosine', 'exponential'] as const) {
    const at = (t: number) => maskRatioAt({ kind: 'schedule', shape, start: 0.1, end: 0.8 }, t).min;
    assert.ok(Math.abs(at(0) - 0.1) < 1e-12, shape);
    assert.equal(at(1), 0.8, shape);
    let prev = 0;
    for (let i = 0; i <= 100; i++) {
      const r = at(i / 100);
      assert.ok(r >= prev - 1e-15 && r >= 0.1 - 1e-12 && r <= 0.8 + 1e-12, `${shape} at ${i / 100}: ${r}`);
      prev = r;
    }
  }
  assert.throws(() => maskRatioAt({ kind: 'constant', ratio: 0.1 }, 2), /t must be a number in \[0, 1\], found 2/);
});

// -------------------------------------------------------------------------------------- embedding

test('EmbeddingSpec: learned positions need max_positions; round trip', () => {
  const e = validateEmbeddingSpec({ vocab_size: 1000, d_model: 64, positional: 'learned', max_positions: 512 });
  assert.deepEqual(e, { vocab_size: 1000, d_model: 64, positional: 'learned', max_positions: 512, type_vocab_size: 0 });
  assert.deepEqual(embeddingSpecFromJSON(JSON.stringify(embeddingSpecToJSON(e))), e);
  const rope = validateEmbeddingSpec({ vocab_size: 1000, d_model: 64, positional: 'rope' });
  assert.equal(rope.max_positions, undefined);
  assertInvalid(
    () => validateEmbeddingSpec({ vocab_size: 1000, d_model: 64, positional: 'learned' }),
    'embedding.max_positions: expected a positive integer (learned positions need a table size), found nothing',
  );
  assertInvalid(() => validateEmbeddingSpec({ vocab_size: 1000, d_model: -3, positional: 'rope' }), 'embedding.d_model: expected a positive integer, found -3');
  assertInvalid(() => validateEmbeddingSpec({ vocab_size: 1000, d_model: 8, positional: 'none', max_positions: 8 }), "embedding.max_positions: expected nothing when positional is 'none', found 8");
  assertInvalid(() => validateEmbeddingSpec({ vocab_size: 10, d_model: 8, positional: 'rope', type_vocab_size: -1 }), 'embedding.type_vocab_size: expected a non-negative integer, found -1');
});

// ------------------------------------------------------------------------------------------- rack

test('RackSpec: stack defaults and round trip', () => {
  const rack = validateRackSpec({ d_model: 64, n_stacks: 2, stacks: [stack, { ...stack, n_kv_heads: 2, frozen: true, weight_format: 'nf4', lora: { rank: 4 } }] });
  assert.deepEqual(rack.stacks[0], {
    n_blocks: 2, n_heads: 4, n_kv_heads: 4, d_ff: 256, attention: 'causal', norm: 'rmsnorm', norm_position: 'pre',
    ffn: 'swiglu', positional: 'rope', rope_theta: 10000, frozen: false, weight_format: 'fp32',
  });
  assert.deepEqual(rack.stacks[1]!.lora, { rank: 4, alpha: 4, targets: ['q', 'k', 'v', 'o'] });
  assert.deepEqual(rackSpecFromJSON(JSON.stringify(rackSpecToJSON(rack))), rack);
  const uniform = uniformRackSpec({ d_model: 64, n_stacks: 3, stack: { ...stack, attention: 'bidirectional' } });
  assert.equal(uniform.stacks.length, 3);
  assert.notEqual(uniform.stacks[0], uniform.stacks[1]);
});

test('RackSpec errors name the stack and field', () => {
  assertInvalid(() => validateRackSpec({ d_model: -3, n_stacks: 1, stacks: [stack] }), 'rack.d_model: expected a positive integer, found -3');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 2, stacks: [stack] }), 'rack.stacks: expected one entry per stack (2), found "1 stack(s)" (rack.n_stacks = 2)');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, n_heads: 6 }] }), 'rack.stacks[0].n_heads: expected a divisor of rack.d_model, found 6 (rack.d_model = 64)');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, n_kv_heads: 3 }] }), 'rack.stacks[0].n_kv_heads: expected a divisor of rack.stacks[0].n_heads, found 3 (rack.stacks[0].n_heads = 4)');
  assertInvalid(() => validateRackSpec({ d_model: 12, n_stacks: 1, stacks: [{ ...stack, n_heads: 4 }] }), 'rack.stacks[0].n_heads: expected a head count giving an even head dimension for RoPE, found 4', 'head dimension = 3');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, attention: 'full' }] }), "rack.stacks[0].attention: expected one of 'causal', 'bidirectional', found \"full\"");
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, weight_format: 'fp4' }] }), "rack.stacks[0].weight_format: expected one of 'fp32', 'nf4', 'int8', 'fp16', 'bf16', found \"fp4\"");
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, weight_format: 'int8' }] }), 'rack.stacks[0].weight_format: expected a trainable format (fp32, fp16, bf16) for a stack that is not frozen, found "int8"');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, ffn: 'gelu', lora: { rank: 2, targets: ['gate'] } }] }), "rack.stacks[0].lora.targets: expected no 'gate' target for a 'gelu' FFN");
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, lora: { rank: 2, targets: ['q', 'x'] } }] }), "rack.stacks[0].lora.targets[1]: expected one of 'q', 'k', 'v', 'o', 'gate', 'up', 'down', found \"x\"");
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, lora: { rank: 0 } }] }), 'rack.stacks[0].lora.rank: expected a positive integer, found 0');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, positional: 'none', rope_theta: 1e4 }] }), "rack.stacks[0].rope_theta: expected nothing when positional is 'none', found 10000");
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: 'x' }), 'rack.stacks: expected a list, found "x"');
  assertInvalid(() => validateRackSpec({ d_model: 64, n_stacks: 1, stacks: [{ ...stack, n_head: 4 }] }), "rack.stacks[0].n_head", "did you mean 'n_heads'?");
});

// ------------------------------------------------------------------------------------------- head

test('HeadSpec: token and classification heads, round trip and errors', () => {
  const lm = validateHeadSpec({ kind: 'lm', d_model: 64, vocab_size: 1000, tied: true });
  assert.deepEqual(lm, { kind: 'lm', d_model: 64, vocab_size: 1000, tied: true, bias: false });
  const cls = validateHeadSpec({ kind: 'classification', d_model: 64, n_classes: 3 });
  assert.deepEqual(cls, { kind: 'classification', d_model: 64, n_classes: 3, pooling: 'cls', bias: true });
  for (const h of [lm, cls]) assert.deepEqual(headSpecFromJSON(JSON.stringify(headSpecToJSON(h))), h);
  assertInvalid(() => validateHeadSpec({ kind: 'classification', d_model: 64, n_classes: 1 }), 'head.n_classes: expected an integer ≥ 2, found 1');
  assertInvalid(() => validateHeadSpec({ kind: 'classification', d_model: 64, n_classes: 3, tied: true }), "head.tied: expected a known field", "found unknown field 'tied'");
  assertInvalid(() => validateHeadSpec({ kind: 'lm', d_model: 64 }), 'head.vocab_size: expected a positive integer, found nothing');
  assertInvalid(() => validateHeadSpec({ kind: 'lm', d_model: 64, vocab_size: 10, tied: 'yes' }), 'head.tied: expected true or false, found "yes"');
});

// -------------------------------------------------------------------------------------- optimizer

test('OptimizerSpec: defaults and round trip', () => {
  const o = validateOptimizerSpec({
    type: 'adamw',
    lr_schedule: { kind: 'warmup', warmup_fraction: 0.05, after: { kind: 'cosine', lr: 3e-4, final_fraction: 0.1 } },
    clip_norm: 1,
    param_groups: [{ name: 'trunk', lr_scale: 0.1 }, { name: 'no_decay', weight_decay: 0 }],
  });
  assert.deepEqual(o, {
    type: 'adamw',
    lr_schedule: { kind: 'warmup', warmup_fraction: 0.05, start_fraction: 0, after: { kind: 'cosine', lr: 3e-4, final_fraction: 0.1 } },
    lr_time: 'global',
    weight_decay: 0,
    betas: [0.9, 0.95],
    eps: 1e-8,
    momentum: 0,
    nesterov: false,
    accumulation_steps: 1,
    param_groups: [{ name: 'trunk', lr_scale: 0.1 }, { name: 'no_decay', lr_scale: 1, weight_decay: 0 }],
    clip_norm: 1,
  });
  assert.deepEqual(optimizerSpecFromJSON(JSON.stringify(optimizerSpecToJSON(o))), o);
});

test('OptimizerSpec errors, including nested lr schedule paths', () => {
  const ok = { type: 'sgd', lr_schedule: { kind: 'constant', lr: 0.1 } };
  assertInvalid(() => validateOptimizerSpec({ ...ok, type: 'adam' }), "optimizer.type: expected one of 'adamw', 'sgd', found \"adam\" (did you mean 'adamw'?)");
  assertInvalid(() => validateOptimizerSpec({ ...ok, lr_schedule: { kind: 'cosine', lr: -1 } }), 'optimizer.lr_schedule.lr: expected a positive number, found -1');
  assertInvalid(() => validateOptimizerSpec({ type: 'sgd' }), 'optimizer.lr_schedule: expected an lr schedule object, found nothing');
  assertInvalid(() => validateOptimizerSpec({ ...ok, betas: [0.9] }), 'optimizer.betas: expected a list of 2 numbers [beta1, beta2], found [0.9]');
  assertInvalid(() => validateOptimizerSpec({ ...ok, betas: [0.9, 1] }), 'optimizer.betas[1]: expected a number in [0, 1), found 1');
  assertInvalid(() => validateOptimizerSpec({ ...ok, weight_decay: -0.1 }), 'optimizer.weight_decay: expected a non-negative number, found -0.1');
  assertInvalid(() => validateOptimizerSpec({ ...ok, eps: 0 }), 'optimizer.eps: expected a positive number, found 0');
  assertInvalid(() => validateOptimizerSpec({ ...ok, clip_norm: 0 }), 'optimizer.clip_norm: expected a positive number, found 0');
  assertInvalid(() => validateOptimizerSpec({ ...ok, accumulation_steps: 0 }), 'optimizer.accumulation_steps: expected a positive integer, found 0');
  assertInvalid(() => validateOptimizerSpec({ ...ok, momentum: 1 }), 'optimizer.momentum: expected a number in [0, 1), found 1');
  assertInvalid(() => validateOptimizerSpec({ ...ok, nesterov: true }), 'optimizer.nesterov: expected false when momentum is 0');
  assertInvalid(() => validateOptimizerSpec({ ...ok, lr_time: 'local' }), "optimizer.lr_time: expected one of 'global', 'phase'");
  assertInvalid(() => validateOptimizerSpec({ ...ok, param_groups: [{ name: 'trunk' }, { name: 'trunk' }] }), "optimizer.param_groups[1].name: expected a group name not used before (param_groups[0] is already 'trunk')");
  assertInvalid(() => validateOptimizerSpec({ ...ok, param_groups: [{ name: 'no_decay', weight_decay: 0.1 }] }), "optimizer.param_groups[0].weight_decay: expected 0 (or nothing) for the 'no_decay' group, found 0.1");
  assertInvalid(() => validateOptimizerSpec({ ...ok, param_groups: [{ name: 'stack', lr_scale: -1 }] }), "optimizer.param_groups[0].name: expected one of", 'optimizer.param_groups[0].lr_scale: expected a non-negative number, found -1');
});

// ------------------------------------------------------------------------------------------- data

test('DataSpec: defaults, round trip, errors', () => {
  const d = validateDataSpec({ corpus: 'moby-dick', tokenizer: 'gpt2', objective: 'clm' });
  assert.deepEqual(d, { corpus: 'moby-dick', tokenizer: 'gpt2', split: 'train', objective: 'clm' });
  assert.deepEqual(dataSpecFromJSON(JSON.stringify(dataSpecToJSON(d))), d);
  assertInvalid(() => validateDataSpec({ corpus: '', tokenizer: 'gpt2', objective: 'clm' }), 'data.corpus: expected a non-empty string, found ""');
  assertInvalid(() => validateDataSpec({ corpus: 'x', tokenizer: 'gpt2', objective: 'clm', split: 'val' }), "data.split: expected one of 'train', 'validation', 'test', found \"val\"");
});

test('validation does not mutate its input and a custom root path is used in messages', () => {
  const input = { batch_size: 4, seq_len: 8, vocab_size: 10, objective: 'mlm' };
  const copy = structuredClone(input);
  validateBatchSpec(input);
  assert.deepEqual(input, copy);
  assertInvalid(() => validateBatchSpec({ ...input, seq_len: 0 }, 'phases[1].batch'), 'phases[1].batch.seq_len: expected a positive integer, found 0');
});
