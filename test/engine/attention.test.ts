import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { benchAttention } from '../../src/engine/ops/attention-bench.js';
import { crossCheck, gradCheck, assertThrowsWith, hasNative, assertClose, type InputSpec, noNativeReason } from './harness.js';

/** A [B, Sk] key mask: batch 0 random holes, batch 1 padding at the start, batch 2 fully
 * padded, batch 3 padding at the end; further batches all visible. */
function maskValues(B: number, Sk: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < Sk; j++) {
      let keep = 1;
      if (b === 0) keep = (j * 7 + 3) % 5 === 0 ? 0 : 1;
      else if (b === 1) keep = j < Math.ceil(Sk / 3) ? 0 : 1;
      else if (b === 2) keep = 0;
      else if (b === 3) keep = j >= Sk - Math.ceil(Sk / 4) ? 0 : 1;
      out.push(keep);
    }
  }
  return out;
}

interface Case { B: number; S: number; Sk: number; H: number; Hkv: number; D: number }

function specs({ B, S, Sk, H, Hkv, D }: Case, mask: 'none' | 'int' | 'float'): InputSpec[] {
  const s: InputSpec[] = [{ shape: [B, S, H, D] }, { shape: [B, Sk, Hkv, D] }, { shape: [B, Sk, Hkv, D] }];
  if (mask === 'int') s.push({ shape: [B, Sk], intHigh: 2, values: maskValues(B, Sk) });
  if (mask === 'float') s.push({ shape: [B, Sk], values: maskValues(B, Sk), grad: false });
  return s;
}

const attn = (causal: boolean, scale?: number) => (q: E.Tensor, k: E.Tensor, v: E.Tensor, m?: E.Tensor) =>
  E.attention(q, k, v, { causal, keyMask: m ?? null, scale });

test('attention: native matches reference (MHA / GQA / MQA, causal, masks, partial tiles)', (t) => {
  const cases: Case[] = [
    { B: 2, S: 7, Sk: 7, H: 4, Hkv: 4, D: 8 },     // MHA
    { B: 3, S: 33, Sk: 33, H: 4, Hkv: 2, D: 16 },  // GQA
    { B: 4, S: 1, Sk: 9, H: 2, Hkv: 1, D: 8 },     // MQA, one query (decode step)
    { B: 2, S: 130, Sk: 130, H: 2, Hkv: 1, D: 64 }, // partial second / third tile
    { B: 4, S: 33, Sk: 70, H: 4, Hkv: 2, D: 16 },  // S < Sk (KV cache)
    { B: 2, S: 40, Sk: 20, H: 2, Hkv: 2, D: 8 },   // S > Sk: early causal rows see no key
    { B: 1, S: 70, Sk: 70, H: 4, Hkv: 1, D: 16 },  // one kv head: backward splits its group into chunks
    { B: 2, S: 150, Sk: 150, H: 3, Hkv: 1, D: 20 }, // 3 key blocks (online softmax), D not a multiple of 16 (packed rows), 3:1 groups
    { B: 1, S: 67, Sk: 131, H: 2, Hkv: 2, D: 5 },   // odd sizes everywhere, S < Sk across blocks
    { B: 1, S: 129, Sk: 129, H: 1, Hkv: 1, D: 96 }, // D = 96: micro-tiles of 4 and 2 vectors
  ];
  for (const c of cases) {
    for (const causal of [true, false]) {
      for (const mask of ['none', 'int', 'float'] as const) {
        if (mask === 'float' && c.D !== 16) continue;
        const name = `attention B${c.B} S${c.S} Sk${c.Sk} H${c.H}/${c.Hkv} D${c.D} ${causal ? 'causal' : 'bidir'} mask=${mask}`;
        crossCheck(t, name, specs(c, mask), attn(causal), { atol: 2e-4, rtol: 2e-4 });
      }
    }
  }
  crossCheck(t, 'attention custom scale', specs({ B: 2, S: 9, Sk: 9, H: 2, Hkv: 1, D: 8 }, 'int'), attn(true, 0.7));
});

test('attention: gradients match finite differences (float64, reference)', () => {
  const small: Case[] = [
    { B: 2, S: 3, Sk: 3, H: 2, Hkv: 2, D: 3 },
    { B: 2, S: 3, Sk: 5, H: 4, Hkv: 2, D: 2 },
    { B: 1, S: 4, Sk: 3, H: 2, Hkv: 1, D: 3 },
  ];
  for (const c of small) {
    for (const causal of [true, false]) {
      gradCheck(`attention grad ${JSON.stringify(c)} causal=${causal}`, specs(c, 'none'), attn(causal));
    }
  }
  // Mask with holes, padding at the start, a fully padded batch and padding at the end.
  gradCheck('attention grad mask', specs({ B: 4, S: 3, Sk: 4, H: 2, Hkv: 1, D: 2 }, 'int'), attn(true));
  gradCheck('attention grad mask bidir', specs({ B: 4, S: 2, Sk: 4, H: 4, Hkv: 2, D: 2 }, 'float'), attn(false));
});

test('attention: rows without a visible key give zero outputs and zero gradients', () => {
  for (const backend of hasNative ? ['native', 'reference'] : ['reference']) {
    E.tidy(() => {
      const B = 3, S = 5, Sk = 3, H = 2, D = 4;
      const q = E.randn([B, S, H, D], { seed: 1, backend }), k = E.randn([B, Sk, H, D], { seed: 2, backend });
      const v = E.randn([B, Sk, H, D], { seed: 3, backend });
      for (const t of [q, k, v]) t.requiresGrad = true;
      const mask = E.tensor(Int32Array.from([1, 1, 1, 0, 0, 0, 0, 1, 1]), [B, Sk], { backend });
      const out = E.attention(q, k, v, { causal: true, keyMask: mask });
      E.sumToShape(E.square(out), []).backward();
      const o = out.toArray(), dq = q.grad!.toArray(), dk = k.grad!.toArray(), dv = v.grad!.toArray();
      assert.ok(o.every(Number.isFinite) && dq.every(Number.isFinite), `${backend}: finite`);
      const row = (b: number, i: number) => Array.from(o.subarray(((b * S + i) * H) * D, ((b * S + i + 1) * H) * D));
      const grow = (b: number, i: number) => Array.from(dq.subarray(((b * S + i) * H) * D, ((b * S + i + 1) * H) * D));
      // S - Sk = 2: queries 0 and 1 see no key (causal); batch 1 has every key padded;
      // batch 2 hides key 0, so query 2 (which sees only key 0) is empty too.
      for (const [b, i] of [[0, 0], [0, 1], [1, 0], [1, 3], [1, 4], [2, 0], [2, 1], [2, 2]]) {
        assert.deepEqual(row(b, i), new Array(H * D).fill(0), `${backend}: output row ${b},${i}`);
        assert.deepEqual(grow(b, i), new Array(H * D).fill(0), `${backend}: dq row ${b},${i}`);
      }
      assert.ok(row(2, 3).some((x) => x !== 0));
      // Batch 1's keys get no gradient; batch 2's key 0 neither.
      assert.ok(dk.subarray(Sk * H * D, 2 * Sk * H * D).every((x) => x === 0) && dv.subarray(Sk * H * D, 2 * Sk * H * D).every((x) => x === 0));
      assert.ok(dk.subarray(2 * Sk * H * D, 2 * Sk * H * D + H * D).every((x) => x === 0));
    });
  }
});

test('attention: GQA equals MHA with repeated kv heads; single visible key copies v', () => {
  E.tidy(() => {
    const B = 2, S = 6, H = 4, Hkv = 2, D = 5;
    const be = 'reference';
    const q = E.randn([B, S, H, D], { seed: 4, backend: be }), k = E.randn([B, S, Hkv, D], { seed: 5, backend: be });
    const v = E.randn([B, S, Hkv, D], { seed: 6, backend: be });
    const rep = (t: E.Tensor) => {
      const a = t.toArray(), out = new Float32Array(B * S * H * D);
      for (let r = 0; r < B * S; r++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) out[(r * H + h) * D + d] = a[(r * Hkv + Math.floor(h / 2)) * D + d];
      return E.tensor(out, [B, S, H, D], { backend: be });
    };
    const gqa = E.attention(q, k, v, { causal: true }).toArray();
    const mha = E.attention(q, rep(k), rep(v), { causal: true }).toArray();
    assertClose(gqa, mha, 'gqa vs mha', 1e-6, 1e-6);
    // Query 0 sees only key 0 under causal masking: its output is v[:, 0].
    const vv = v.toArray();
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
      assert.ok(Math.abs(gqa[((b * S) * H + h) * D + d] - vv[((b * S) * Hkv + Math.floor(h / 2)) * D + d]) < 1e-6);
    }
  });
});

test('attention: native backward is deterministic across thread counts (split kv groups)', { skip: noNativeReason ?? false }, () => {
  const threads = E.engineInfo().threads ?? 1;
  const run = () => E.tidy(() => {
    const be = 'native';
    const q = E.randn([1, 200, 4, 32], { seed: 7, backend: be }), k = E.randn([1, 200, 1, 32], { seed: 8, backend: be });
    const v = E.randn([1, 200, 1, 32], { seed: 9, backend: be });
    for (const t of [q, k, v]) t.requiresGrad = true;
    const out = E.attention(q, k, v, { causal: true });
    E.sumToShape(E.mul(out, E.randn(out.shape, { seed: 10, backend: be })), []).backward();
    return [q, k, v].map((t) => t.grad!.toArray());
  });
  const a = run();
  E.setNumThreads(1);
  let b: ReturnType<typeof run>;
  try { b = run(); } finally { E.setNumThreads(threads); }
  a.forEach((g, i) => assert.deepEqual(Array.from(g), Array.from(b[i]), `gradient ${i} differs between thread counts`));
});

// The 8-wide (AVX2) micro-kernels run where AVX-512 is missing; force them here in a child
// process (the path is chosen once per process) and run the cross-check and determinism tests.
test('attention: the AVX2 micro-kernel path matches the reference too', { skip: !hasNative || process.env.STACKWISE_SIMD !== undefined }, () => {
  const r = spawnSync(process.execPath, ['--test', '--test-name-pattern=native matches reference|deterministic across thread', fileURLToPath(import.meta.url)],
    { encoding: 'utf8', env: { ...process.env, STACKWISE_SIMD: 'avx2', NODE_TEST_CONTEXT: undefined } });
  assert.equal(r.status, 0, `avx2 run failed:\n${(r.stdout + r.stderr).split('\n').filter((l) => /not ok|Error|expected|actual/.test(l)).slice(0, 20).join('\n')}`);
  assert.match(r.stdout, /# pass [1-9]/);
  assert.match(r.stdout, /# fail 0/);
});

test('attention: STACKWISE_SIMD with a bad value is an error naming the variable', { skip: !hasNative }, () => {
  const script = `import('${new URL('../../src/engine/index.js', import.meta.url).href}').then((E) => E.engineInfo())`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, STACKWISE_SIMD: 'sse9' } });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /STACKWISE_SIMD must be auto, avx2 or avx512, found 'sse9'/);
});

test('attention: bad input names the op and the shapes', () => {
  const q = E.zeros([2, 5, 4, 8]), k = E.zeros([2, 6, 2, 8]), v = E.zeros([2, 6, 2, 8]);
  assertThrowsWith(() => E.attention(q, E.zeros([3, 6, 2, 8]), E.zeros([3, 6, 2, 8]), { causal: true }), /attention/, /batch sizes differ/, /\[2, 5, 4, 8\]/, /\[3, 6, 2, 8\]/);
  assertThrowsWith(() => E.attention(q, E.zeros([2, 6, 2, 4]), E.zeros([2, 6, 2, 4]), { causal: true }), /attention/, /head dims differ: 8, 4/);
  assertThrowsWith(() => E.attention(q, k, E.zeros([2, 7, 2, 8]), { causal: false }), /attention/, /key lengths differ: 6 vs 7/);
  assertThrowsWith(() => E.attention(q, k, E.zeros([2, 6, 1, 8]), { causal: false }), /attention/, /head counts differ: 2 vs 1/);
  assertThrowsWith(() => E.attention(q, E.zeros([2, 6, 3, 8]), E.zeros([2, 6, 3, 8]), { causal: false }), /attention/, /query heads 4 must be a multiple of kv heads 3/);
  assertThrowsWith(() => E.attention(E.zeros([2, 5, 32]), k, v, { causal: true }), /attention/, /4-D/, /\[2, 5, 32\]/);
  assertThrowsWith(() => E.attention(q, k, v, { causal: true, keyMask: E.ones([2, 5]) }), /attention/, /keyMask must be \[2, 6\]/, /keyMask \[2, 5\]/);
  assertThrowsWith(() => E.attention(q, k, v, { causal: true, keyMask: E.ones([6]) }), /attention/, /keyMask must be \[2, 6\]/);
  assertThrowsWith(() => E.attention(q, k, v, { causal: true, scale: Number.NaN }), /attention/, /scale/);
  assertThrowsWith(() => E.attention(q, k, v, {} as unknown as E.AttentionOptions), /attention/, /causal must be a boolean/);
  const ids = E.zeros([2, 5, 4, 8], { dtype: 'int32' });
  assertThrowsWith(() => E.attention(ids, k, v, { causal: true }), /attention/, /expected float q, k, v/);
  const q64 = E.zeros([2, 5, 4, 8], { dtype: 'float64', backend: 'reference' });
  assertThrowsWith(() => E.attention(q64, E.zeros([2, 6, 2, 8], { backend: 'reference' }), E.zeros([2, 6, 2, 8], { backend: 'reference' }), { causal: true }), /attention/, /one dtype/);
  if (hasNative) {
    const kr = E.zeros([2, 6, 2, 8], { backend: 'reference' });
    assertThrowsWith(() => E.attention(E.zeros([2, 5, 4, 8], { backend: 'native' }), kr, kr, { causal: true }), /attention/, /different backends/);
  }
});

test('attention: benchAttention reports timings', () => {
  const r = benchAttention({ B: 1, S: 16, H: 2, D: 8, runs: 3 });
  assert.ok(r.forwardMs >= 0 && r.backwardMs >= 0 && Number.isFinite(r.gflops) && r.gflops > 0);
});
