// FLOPs per token of the resource report against a count by hand for a tiny LLaMA (2 stacks of
// one block, S = 8): forward; and backward = weight gradients of the trainable matrices plus the
// input gradients of every stage downstream of a trainable parameter — inside the first trainable
// block too — with the attention core's input gradient at twice its forward (dQ, dK, dV).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { llama, type Linear, type Model } from '../../../src/nn/index.js';
import { resourceReport } from '../../../src/training/progressive/index.js';

const V = 40, d = 16, kv = 8, ff = 24, S = 8;
// Per token: q, k, v (16→16, 16→8, 16→8), o (16→16), gate + up (16→24), down (24→16), head (16→40).
const QKV = 2 * (d * d + 2 * d * kv);
const O = 2 * d * d;
const FFN_IN = 2 * 2 * d * ff;
const DOWN = 2 * ff * d;
const HEAD = 2 * d * V;
const CORE = 4 * ((S + 1) / 2) * d; // causal: S_eff = (S + 1)/2
const MATRICES = QKV + O + FFN_IN + DOWN;
const BLOCK_FWD = MATRICES + CORE;
/** Backward of a block whose every stage needs its input gradient (something upstream trains). */
const BLOCK_BWD_FULL = MATRICES /* weight grads */ + MATRICES + 2 * CORE /* input grads */;

function model(): Model {
  return llama({ vocabSize: V, dModel: d, nLayers: 2, nHeads: 2, nKvHeads: 1, dFF: ff, stacks: 2, seed: 1 });
}

function freezeAll(m: Model): void {
  for (const t of m.parameters()) t.requiresGrad = false;
}

const flops = (m: Model) => resourceReport(m, new Map(), null, { seqLen: S }).flopsPerToken;

test('forward FLOPs per token: matrices, attention core and head', () => {
  const m = model();
  assert.equal(flops(m).forward, 2 * BLOCK_FWD + HEAD);
  m.dispose();
});

test('backward FLOPs per token, everything trainable: 2× the matrices, 2× the attention core', () => {
  const m = model();
  const f = flops(m);
  assert.equal(f.backward, 2 * BLOCK_BWD_FULL + 2 * HEAD);
  // The usual ≈ 3× forward for training, exactly 3× here (no input gradient below the embedding).
  assert.equal(f.train, 3 * f.forward);
  m.dispose();
});

test('backward FLOPs per token, frozen trunk: the first trainable block still pays for the gradient through its own layers', () => {
  const m = model();
  freezeAll(m);
  for (const t of [...m.rack.stacks.at(1).parameters(), ...m.head.parameters()]) t.requiresGrad = true;
  // Stack 1's attention norm trains, so the gradient must pass q/k/v too: a full block backward.
  assert.equal(flops(m).backward, BLOCK_BWD_FULL + 2 * HEAD);
  // Only the matrices of stack 1 (norms frozen): q/k/v need no input gradient (nothing above them trains).
  for (const [n, t] of m.rack.stacks.at(1).namedParameters()) if (n.endsWith('norm.weight')) t.requiresGrad = false;
  assert.equal(flops(m).backward, MATRICES + (O + 2 * CORE + FFN_IN + DOWN) + 2 * HEAD);
  m.dispose();
});

test('backward FLOPs per token, only the head or only an adapter trains', () => {
  const m = model();
  freezeAll(m);
  m.head.parameters().forEach((t) => { t.requiresGrad = true; });
  // Final norm trainable: the decoder's weight gradient and its input gradient.
  assert.equal(flops(m).backward, 2 * HEAD);
  m.head.finalNorm!.parameters().forEach((t) => { t.requiresGrad = false; });
  assert.equal(flops(m).backward, HEAD, 'the decoder weight alone: no input gradient');
  // A rank-2 LoRA on q of stack 1, everything else frozen.
  freezeAll(m);
  const q = m.rack.stacks.at(1).blocks.at(0).attn.namedChildren().find(([n]) => n === 'q')![1] as Linear;
  q.addLora({ rank: 2, alpha: 4, seed: 3 });
  const LORA = 2 * (2 * d + d * 2);
  const f = flops(m);
  assert.equal(f.forward, 2 * BLOCK_FWD + LORA + HEAD);
  // Weight gradients of A and B, then the input gradients of everything after q in the data flow.
  assert.equal(f.backward, LORA + 2 * CORE + O + FFN_IN + DOWN + HEAD);
  m.dispose();
});

test('bidirectional attention: the core attends over all S positions', () => {
  const m = model();
  m.setAttentionMode('bidirectional');
  const core = 4 * S * d;
  assert.equal(flops(m).forward, 2 * (MATRICES + core) + HEAD);
  assert.equal(flops(m).backward, 2 * (2 * MATRICES + 2 * core) + 2 * HEAD);
  m.dispose();
});
