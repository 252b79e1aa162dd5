import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import type { Tensor, QuantFormat, QuantizedWeight } from '../../src/engine/index.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBFloat16Bits, float32ToFloat16Bits } from '../../src/io/half.js';
import { crossCheck, gradCheck, assertThrowsWith, assertClose, hasNative, makeValues, noNativeReason } from './harness.js';

const BACKENDS = E.availableBackends();
const CASES: [QuantFormat, boolean][] = [['nf4', false], ['nf4', true], ['int8', false], ['fp16', false], ['bf16', false]];
const label = (f: QuantFormat, dq: boolean) => `${f}${dq ? '+dq' : ''}`;

/** Weight values with the awkward cases: a zero row, a constant block, exact ties, large and tiny values. */
function weightValues(rows: number, cols: number, seed: number): Float32Array {
  const v = Float32Array.from(makeValues({ shape: [rows, cols] }, seed));
  const n = v.length;
  if (rows > 2) for (let c = 0; c < cols; c++) v[cols + c] = 0; // a zero row (zero NF4 blocks when cols >= 64)
  for (let i = 0; i < Math.min(n, 5); i++) v[i] = 0.75; // a constant start
  if (n > 70) { v[64] = 1; v[65] = 0.5; v[66] = -1; v[67] = 0.8614784181118011; v[68] = 1e-30; v[69] = -3.5; }
  return v;
}

const created: QuantizedWeight[] = [];
function quantized(w: Tensor, f: QuantFormat, dq = false): QuantizedWeight {
  const q = E.quantizeWeight(w, f, { doubleQuant: dq });
  created.push(q);
  return q;
}
function disposeCreated(): void {
  for (const q of created.splice(0)) q.dispose();
}

function partsOf(q: QuantizedWeight): number[][] {
  return q.tensors().map((t) => Array.from(t.toArray()));
}

function bitsOf(a: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(a).buffer);
}

test('formats: supported list, validation and refusal of unimplemented formats', () => {
  assert.deepEqual([...E.SUPPORTED_QUANT_FORMATS], ['nf4', 'int8', 'fp16', 'bf16']);
  for (const f of E.SUPPORTED_QUANT_FORMATS) assert.equal(E.validateQuantFormat(f, 'x'), f);
  for (const bad of ['fp4', 'fp8', 'nvfp4']) {
    assertThrowsWith(() => E.validateQuantFormat(bad, 'trunk.quantization'), /trunk\.quantization/, new RegExp(`'${bad}' is not implemented`), /supported formats: nf4, int8, fp16, bf16/);
  }
  assertThrowsWith(() => E.validateQuantFormat('NF4', 'cfg.q'), /cfg\.q/, /did you mean 'nf4'/);
  assertThrowsWith(() => E.validateQuantFormat('q3_k', 'cfg.q'), /unknown quantization format 'q3_k'/, /supported formats/);
  assertThrowsWith(() => E.validateQuantFormat(4, 'cfg.q'), /cfg\.q: expected a quantization format name, found number/);
  assertThrowsWith(() => E.validateQuantFormat(null, 'cfg.q'), /found null/);
  const w = E.randn([4, 8], { seed: 1 });
  assertThrowsWith(() => E.quantizeWeight(w, 'fp8'), /op 'quantize': format/, /'fp8' is not implemented/);
  w.dispose();
});

test('NF4 levels and the double-quantization map', () => {
  assert.equal(E.NF4_LEVELS.length, 16);
  assert.equal(E.NF4_LEVELS[0], -1);
  assert.equal(E.NF4_LEVELS[7], 0);
  assert.equal(E.NF4_LEVELS[15], 1);
  assert.equal(E.NF4_LEVELS[14], Math.fround(0.7229568362236023));
  assert.equal(E.NF4_LEVELS[1], Math.fround(-0.6961928009986877));
  for (let i = 1; i < 16; i++) assert.ok(E.NF4_LEVELS[i] > E.NF4_LEVELS[i - 1]);
  assert.ok(Math.abs(E.NF4_HALF_MAX_GAP - (1 - 0.6961928009986877) / 2) < 1e-7);
  const code = E.dynamicQuantCode();
  assert.equal(code.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(code[i] > code[i - 1], `dynamic map sorted and unique at ${i}`);
  assert.equal(code[255], 1);
  assert.ok(code.includes(0));
  assert.ok(Math.abs(code[0] + 0.99296875) < 1e-6);
});

test('quantize/dequantize: native and reference are bit-identical (all formats, awkward shapes)', { skip: noNativeReason ?? false }, () => {
  // [1,1]: one element; [3,7]: odd count, partial block; [130,300]: 610 blocks = 3 scale blocks;
  // [2, 16400]: 513 blocks (a second-level block of one scale); [257, 64]: int8 rows, parallel paths.
  const shapes: [number, number][] = [[1, 1], [3, 7], [130, 300], [2, 16400], [257, 64]];
  for (const [rows, cols] of shapes) {
    const v = weightValues(rows, cols, rows * 7 + cols);
    for (const [f, dq] of CASES) {
      const res = BACKENDS.map((be) => E.tidy(() => {
        const q = quantized(E.tensor(v, [rows, cols], { backend: be }), f, dq);
        return { parts: partsOf(q), deq: q.dequantize().toArray() };
      }));
      const [nat, ref] = [res[BACKENDS.indexOf('native')], res[BACKENDS.indexOf('reference')]];
      assert.deepEqual(nat.parts, ref.parts, `${label(f, dq)} [${rows}, ${cols}]: packed data and scales`);
      assert.deepEqual(bitsOf(nat.deq), bitsOf(ref.deq), `${label(f, dq)} [${rows}, ${cols}]: dequantized values`);
    }
  }
  // Degenerate weights: all zero (zero scales) and constant (every scale equals the mean).
  for (const [v, what] of [[new Float32Array(4 * 64), 'zeros'], [new Float32Array(4 * 64).fill(-0.5), 'constant']] as const) {
    for (const [f, dq] of CASES) {
      const res = BACKENDS.map((be) => {
        const q = quantized(E.tensor(v, [4, 64], { backend: be }), f, dq);
        return { parts: partsOf(q), deq: Array.from(q.dequantize().toArray()) };
      });
      assert.deepEqual(res[0], res[res.length - 1], `${what} ${label(f, dq)}`);
      assert.deepEqual(res[0].deq, Array.from(v), `${what} ${label(f, dq)} round-trips exactly`);
    }
  }
  disposeCreated();
});

test('quantize reads float32 values: a float64 reference weight quantizes like its float32 rounding', () => {
  const v = weightValues(9, 70, 3);
  for (const [f, dq] of CASES) {
    const a = quantized(E.tensor(Float64Array.from(v), [9, 70], { backend: 'reference', dtype: 'float64' }), f, dq);
    const b = quantized(E.tensor(v, [9, 70], { backend: 'reference' }), f, dq);
    assert.deepEqual(partsOf(a), partsOf(b), label(f, dq));
    assert.deepEqual(Array.from(a.dequantize('float64').toArray()), Array.from(b.dequantize().toArray()));
  }
  disposeCreated();
});

/** The scales dequantization uses, per NF4 block (recomputed from the stored pieces). */
function nf4Scales(q: QuantizedWeight): Float32Array {
  const p = q.parts;
  if (!q.doubleQuant) return Float32Array.from(p.scales!.toArray());
  const qs = new Uint8Array((p.qscales!.toArray() as Int32Array).buffer);
  const a2 = p.scales2!.toArray(), off = p.offset!.toArray()[0], code = E.dynamicQuantCode();
  const nb = Math.ceil(q.numel / 64);
  return Float32Array.from({ length: nb }, (_, b) => Math.fround(Math.fround(code[qs[b]] * a2[Math.floor(b / 256)]) + off));
}

test('round-trip error: NF4 within the bin width, int8 within absmax/127, fp16/bf16 exact round-to-nearest', () => {
  const backend = hasNative ? 'native' : 'reference';
  const rows = 96, cols = 320;
  const v = weightValues(rows, cols, 11);
  const n = v.length;
  const nb = Math.ceil(n / 64);
  const absmax = new Float32Array(nb);
  for (let i = 0; i < n; i++) absmax[Math.floor(i / 64)] = Math.max(absmax[Math.floor(i / 64)], Math.abs(v[i]));
  E.tidy(() => {
    const w = E.tensor(v, [rows, cols], { backend });
    for (const dq of [false, true]) {
      const q = quantized(w, 'nf4', dq);
      const d = q.dequantize().toArray();
      const used = nf4Scales(q);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const b = Math.floor(i / 64), a = absmax[b], s = used[b];
        // Rounding to the nearest level costs at most half the widest gap (× the scale); with
        // double quantization the scale itself differs from the absmax by |a - s|.
        const bound = E.NF4_HALF_MAX_GAP * Math.max(a, Math.abs(s)) + Math.abs(a - s) + 1e-6 * a;
        const err = Math.abs(d[i] - v[i]);
        assert.ok(err <= bound, `nf4${dq ? '+dq' : ''} element ${i}: error ${err} > bound ${bound} (absmax ${a}, scale ${s})`);
        worst = Math.max(worst, a > 0 ? err / a : 0);
        if (!dq) assert.equal(used[b], a, 'nf4 stores the exact block absmax');
      }
      assert.ok(worst <= E.NF4_HALF_MAX_GAP * 1.05, `nf4${dq ? '+dq' : ''}: worst error / absmax = ${worst}`);
      // The levels really are the NF4 table: every dequantized value is level × scale.
      for (let i = 0; i < n; i += 37) {
        const s = used[Math.floor(i / 64)];
        assert.ok(E.NF4_LEVELS.some((l) => Math.fround(l * s) === d[i]), `element ${i} is a scaled NF4 level`);
      }
    }
    const q8 = quantized(w, 'int8');
    const d8 = q8.dequantize().toArray();
    for (let r = 0; r < rows; r++) {
      let a = 0;
      for (let c = 0; c < cols; c++) a = Math.max(a, Math.abs(v[r * cols + c]));
      for (let c = 0; c < cols; c++) {
        const err = Math.abs(d8[r * cols + c] - v[r * cols + c]);
        assert.ok(err <= a / 127, `int8 [${r}, ${c}]: error ${err} > absmax/127 = ${a / 127}`);
        assert.ok(err <= (a / 127) * 0.5 * (1 + 1e-6) + 1e-12, `int8 [${r}, ${c}]: error ${err} exceeds half a step`);
      }
    }
    const d16 = quantized(w, 'fp16').dequantize().toArray();
    const db16 = quantized(w, 'bf16').dequantize().toArray();
    for (let i = 0; i < n; i++) {
      assert.equal(d16[i], float16BitsToFloat32(float32ToFloat16Bits(v[i])), `fp16 element ${i}`);
      assert.equal(db16[i], bfloat16BitsToFloat32(float32ToBFloat16Bits(v[i])), `bf16 element ${i}`);
    }
  });
  // fp16 subnormals and the top of its range; ties to even.
  const special = Float32Array.from([65504, -65519, 6e-8, -3e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 0]);
  for (const be of BACKENDS) {
    const d = quantized(E.tensor(special, [2, 4], { backend: be }), 'fp16').dequantize().toArray();
    assert.deepEqual(Array.from(d), Array.from(special, (x) => float16BitsToFloat32(float32ToFloat16Bits(x))), be);
    assert.equal(d[1], -65504);
    assert.equal(d[4], 1);
    assert.equal(d[5], 1 + 2 ** -9);
  }
  disposeCreated();
});

test('bits per parameter: NF4+DQ ≈ 4.127, NF4 = 4.5, int8 = 8 + 32/in, fp16/bf16 = 16; bytes are really allocated', () => {
  const backend = hasNative ? 'native' : 'reference';
  const be = E.getBackend(backend);
  const w = E.randn([1024, 1024], { seed: 5, backend, std: 0.02 });
  const expected: Record<string, number> = { 'nf4': 4.5, 'int8': 8 + 32 / 1024, 'fp16': 16, 'bf16': 16 };
  for (const [f, dq] of CASES) {
    const before = be.memory().bytes;
    const q = E.quantizeWeight(w, f, { doubleQuant: dq });
    const allocated = be.memory().bytes - before;
    const bits = q.bitsPerParameter();
    if (dq) {
      assert.ok(Math.abs(bits - 4.127) / 4.127 < 0.01, `nf4+dq: ${bits} bits/param, expected within 1 % of 4.127`);
      assert.ok(Math.abs(bits - (4 + 8 / 64 + 32 / (64 * 256) + 32 / 2 ** 20)) < 1e-12);
    } else {
      assert.equal(bits, expected[f], `${f}: bits/param`);
    }
    assert.equal(q.storageBytes(), q.bytes(), `${label(f, dq)}: no padding at this size`);
    // The packed tensors are all that was allocated (the shared 1 KiB dynamic map aside).
    assert.ok(allocated >= q.bytes() && allocated <= q.bytes() + 1024, `${label(f, dq)}: allocated ${allocated} bytes for ${q.bytes()}`);
    q.dispose();
    assert.ok(q.isDisposed);
  }
  // Sizes that do not fill the last word are padded in storage only.
  const odd = E.quantizeWeight(E.randn([3, 7], { seed: 2, backend }), 'nf4');
  assert.equal(odd.bytes(), 11 + 4 * 1);
  assert.equal(odd.storageBytes(), 12 + 4 * 1);
  odd.dispose();
  w.dispose();
});

test('quantizedLinear: native matches reference (outputs, input and bias gradients), every format', { skip: noNativeReason ?? false }, (t) => {
  const shapes: [number[], number, boolean][] = [
    [[5, 300], 257, true], // 3 row tiles of 128, 3 column tiles: parallel paths
    [[2, 3, 70], 33, false], // batch dims, odd sizes
    [[1, 1], 1, true],
    [[130, 64], 200, true], // many rows
  ];
  for (const [f, dq] of CASES) {
    for (const [xs, outF, bias] of shapes) {
      const inF = xs[xs.length - 1];
      const specs = [{ shape: xs }, { shape: [outF, inF], grad: false }, ...(bias ? [{ shape: [outF] }] : [])];
      crossCheck(t, `quantizedLinear ${label(f, dq)} x${xs} out ${outF}`, specs, (x, w, b) => E.quantizedLinear(x, quantized(w, f, dq), b), { atol: 2e-4, rtol: 2e-4 });
    }
  }
  disposeCreated();
});

test('quantizedLinear: gradient w.r.t. input and bias matches finite differences; the weight gets none', () => {
  for (const [f, dq] of CASES) {
    gradCheck(`quantizedLinear ${label(f, dq)}`, [{ shape: [3, 70] }, { shape: [9, 70], grad: false }, { shape: [9] }],
      (x, w, b) => E.quantizedLinear(x, quantized(w, f, dq), b));
    gradCheck(`quantizedLinear ${label(f, dq)} 3-D`, [{ shape: [2, 2, 5] }, { shape: [4, 5], grad: false }],
      (x, w) => E.quantizedLinear(x, quantized(w, f, dq)));
  }
  disposeCreated();
  for (const backend of BACKENDS) {
    E.tidy(() => {
      const w = E.randn([40, 96], { seed: 3, backend });
      const q = quantized(w, 'nf4', true);
      const x = E.randn([6, 96], { seed: 4, backend, requiresGrad: true });
      const y = E.quantizedLinear(x, q);
      assert.ok(y.requiresGrad);
      for (const t of q.tensors()) assert.equal(t.requiresGrad, false);
      const dy = E.randn([6, 40], { seed: 5, backend });
      y.backward(dy);
      const expected = E.matmul(dy, q.dequantize());
      assertClose(x.grad!.toArray(), expected.toArray(), `${backend}: dx = dy · dequant(W)`, 1e-5, 1e-5);
      for (const t of q.tensors()) assert.equal(t.grad, null);
      x.grad!.dispose();
      x.grad = null;
      // Without anything requiring a gradient, no tape.
      assert.equal(E.quantizedLinear(E.randn([2, 96], { seed: 1, backend }), q).requiresGrad, false);
    });
  }
  disposeCreated();
});

test('quantizedLinear: large tiled product matches the dense matmul on the dequantized weight, whatever the thread count', { skip: noNativeReason ?? false }, () => {
  const threads = E.engineInfo().threads ?? 1;
  const runs: { y: Uint32Array; dx: Uint32Array }[] = [];
  E.tidy(() => {
    const w = E.randn([1000, 520], { seed: 8, std: 0.05 });
    const b = E.randn([1000], { seed: 9 });
    for (const [f, dq] of CASES) {
      const q = quantized(w, f, dq);
      const x = E.randn([37, 520], { seed: 10 });
      const dense = E.linear(x, q.dequantize(), b);
      const y = E.quantizedLinear(x, q, b);
      assertClose(y.toArray(), dense.toArray(), `${label(f, dq)} tiled vs dense`, 1e-4, 1e-4);
      const dy = E.randn([37, 1000], { seed: 11 });
      const dx = E.runOp('quantizedLinearGradInput', [dy, ...q.tensors(), ...(dq ? [E.dynamicQuantCodeTensor(q.backend)] : [])], { format: f, doubleQuant: dq, rows: 1000, cols: 520 })[0];
      assertClose(dx.toArray(), E.matmul(dy, q.dequantize()).toArray(), `${label(f, dq)} dx tiled vs dense`, 1e-4, 1e-4);
    }
    // Long rows: smaller row tiles (96 rows for 20000 columns) so that scratch stays bounded.
    const wl = E.randn([150, 20000], { seed: 14, std: 0.05 });
    const xl = E.randn([3, 20000], { seed: 15 });
    for (const [f, dq] of [['nf4', true], ['int8', false]] as const) {
      const ql = quantized(wl, f, dq);
      assertClose(E.quantizedLinear(xl, ql).toArray(), E.linear(xl, ql.dequantize()).toArray(), `${f} long rows`, 1e-4, 1e-4);
      const dyl = E.randn([3, 150], { seed: 16 });
      const dxl = E.runOp('quantizedLinearGradInput', [dyl, ...ql.tensors(), ...(dq ? [E.dynamicQuantCodeTensor(ql.backend)] : [])], { format: f, doubleQuant: dq, rows: 150, cols: 20000 })[0];
      assertClose(dxl.toArray(), E.matmul(dyl, ql.dequantize()).toArray(), `${f} long rows dx`, 1e-4, 1e-4);
    }
    const q = quantized(w, 'nf4', true);
    const x = E.randn([64, 520], { seed: 12, requiresGrad: true });
    const dy = E.randn([64, 1000], { seed: 13 });
    for (const t of [1, 2]) {
      E.setNumThreads(t);
      try {
        const y = E.quantizedLinear(x, q, b);
        y.backward(dy);
        runs.push({ y: new Uint32Array(y.toArray().buffer), dx: new Uint32Array(x.grad!.toArray().buffer) });
        x.grad!.dispose();
        x.grad = null;
      } finally {
        E.setNumThreads(threads);
      }
    }
  });
  assert.deepEqual(runs[0].y, runs[1].y, 'forward identical with 1 and 2 threads');
  assert.deepEqual(runs[0].dx, runs[1].dx, 'input gradient identical with 1 and 2 threads');
  disposeCreated();
});

test('QuantizedWeight: moving between backends is bit-exact; dispose frees; toString', () => {
  const w = E.randn([20, 130], { seed: 21, backend: 'reference' });
  for (const [f, dq] of CASES) {
    const q = quantized(w, f, dq);
    for (const be of BACKENDS) {
      const moved = q.toBackend(be);
      assert.equal(moved.backend.name, be);
      assert.deepEqual(partsOf(moved), partsOf(q));
      assert.deepEqual(bitsOf(moved.dequantize().toArray()), bitsOf(q.dequantize().toArray()));
      moved.dispose();
      assert.ok(moved.isDisposed);
      assertThrowsWith(() => moved.dequantize(), /op 'dequantize'/, /disposed/);
    }
    assert.match(String(q), new RegExp(`QuantizedWeight\\(${f}${dq ? '\\+dq' : ''} \\[20, 130\\]`));
  }
  disposeCreated();
  w.dispose();
});

test('bad inputs are refused with messages naming the op, the shapes and the problem', () => {
  for (const backend of BACKENDS) {
    E.tidy(() => {
      assertThrowsWith(() => E.quantizeWeight(E.randn([8], { seed: 1, backend }), 'nf4'), /op 'quantize'/, /must be 2-D \[out, in\]/, /\[8\]/);
      assertThrowsWith(() => E.quantizeWeight(E.zeros([2, 2], { backend, dtype: 'int32' }), 'int8'), /op 'quantize'/, /float tensor/);
      assertThrowsWith(() => E.quantizeWeight(E.randn([2, 64], { seed: 1, backend }), 'int8', { doubleQuant: true }), /doubleQuant applies to nf4 only/);
      assertThrowsWith(() => E.quantizeWeight(E.zeros([0, 4], { backend }), 'nf4'), /empty/);
      for (const [f] of CASES) {
        const v = new Float32Array(3 * 70);
        v[2 * 70 + 5] = NaN;
        assertThrowsWith(() => E.quantizeWeight(E.tensor(v, [3, 70], { backend }), f), /quantize/, /element 145 \(row 2, column 5\) is NaN/, /finite/);
        v[2 * 70 + 5] = 0;
        v[69] = -Infinity;
        assertThrowsWith(() => E.quantizeWeight(E.tensor(v, [3, 70], { backend }), f), /element 69 \(row 0, column 69\) is -Infinity/);
      }
      const big = E.tensor([1, 70000, -65519, 3], [2, 2], { backend });
      assertThrowsWith(() => E.quantizeWeight(big, 'fp16'), /element 1 \(row 0, column 1\)/, /overflows fp16/, /use bf16/);
      assert.equal(E.quantizeWeight(big, 'bf16').dequantize().toArray()[1], 70144);
      const q = quantized(E.randn([5, 6], { seed: 2, backend }), 'nf4');
      const x = E.randn([3, 6], { seed: 3, backend });
      assertThrowsWith(() => E.quantizedLinear(E.randn([3, 7], { seed: 1, backend }), q), /op 'quantizedLinear'/, /input \[3, 7\] does not end in 6/, /\[5, 6\]/);
      assertThrowsWith(() => E.quantizedLinear(E.zeros([3, 6], { backend, dtype: 'int32' }), q), /op 'quantizedLinear'/, /float tensor/);
      assertThrowsWith(() => E.quantizedLinear(x, q, E.zeros([6], { backend })), /op 'quantizedLinear'/, /bias \[6\] must be \[5\]/);
      assertThrowsWith(() => E.quantizedLinear(x, {} as QuantizedWeight), /expected a QuantizedWeight/);
      const other = BACKENDS.find((b) => b !== backend);
      if (other) assertThrowsWith(() => E.quantizedLinear(E.randn([3, 6], { seed: 1, backend: other }), q), /op 'quantizedLinear'/, new RegExp(`input lives on backend '${other}'`));
      if (backend === 'reference') {
        assertThrowsWith(() => E.quantizedLinear(x, q, E.zeros([5], { backend, dtype: 'float64' })), /bias .* and input .* must have one dtype/);
      }
      assertThrowsWith(() => new E.QuantizedWeight({ format: 'nf4', shape: [5, 6], doubleQuant: false }, { data: q.parts.data }), /missing part 'scales'/);
      assertThrowsWith(() => new E.QuantizedWeight({ format: 'nf4', shape: [5, 7], doubleQuant: false }, { ...q.parts }), /part 'data' is #\d+ int32\[4\], expected int32\[5\]/);
      assertThrowsWith(() => new E.QuantizedWeight({ format: 'fp8' as QuantFormat, shape: [5, 6], doubleQuant: false }, { ...q.parts }), /'fp8' is not implemented/);
      assertThrowsWith(() => new E.QuantizedWeight({ format: 'int8', shape: [5, 6], doubleQuant: true }, { ...q.parts }), /double quantization applies to nf4 only/);
      assertThrowsWith(() => new E.QuantizedWeight({ format: 'fp16', shape: [5, 6], doubleQuant: false }, { data: E.zeros([15], { backend, dtype: 'int32' }), scales: q.parts.scales }), /unexpected part 'scales'/);
      q.dispose();
      assertThrowsWith(() => E.quantizedLinear(x, q), /op 'quantizedLinear'/, /disposed/);
    });
  }
  if (hasNative) {
    E.tidy(() => {
      const q = E.quantizeWeight(E.randn([4, 4], { seed: 1, backend: 'native' }), 'int8');
      assertThrowsWith(() => q.dequantize('float64'), /native backend computes float32/);
      q.dispose();
    });
  }
  disposeCreated();
});
