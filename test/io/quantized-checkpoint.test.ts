import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import { applyLora, Linear, llama, type Model } from '../../src/nn/index.js';
import { QuantizedLinear, quantizeModule } from '../../src/nn/quantized-linear.js';
import {
  CHECKSUM_META_KEY, loadQuantizedCheckpoint, QUANT_META_KEY, QuantizedCheckpointError, saveQuantizedCheckpoint,
  serializeQuantizedCheckpoint,
} from '../../src/io/quantized-checkpoint.js';
import { parseSafetensors, serializeSafetensors, type SafeFile } from '../../src/io/safetensors.js';

const config = { vocabSize: 40, dModel: 64, nLayers: 4, nHeads: 4, nKvHeads: 2, dFF: 96, stacks: 4 };

/** A model whose four stacks use the four formats (nf4 with double quantization, int8, fp16,
 * bf16 and plain nf4 on the FFN of the first), with adapters on a few layers. */
function quantizedModel(seed: number): Model {
  const m = llama({ ...config, seed });
  applyLora(m.rack.stacks.at(1), { rank: 2, alpha: 4, targets: ['q', 'down'], seed: 3, init: 'random', freezeOthers: false });
  m.freeze();
  m.rack.stacks.at(3).unfreeze();
  quantizeModule(m, 'nf4', { doubleQuant: true, filter: (p) => p.startsWith('rack.stacks.0.blocks.0.attn') });
  quantizeModule(m, 'nf4', { filter: (p) => p.startsWith('rack.stacks.0.') });
  quantizeModule(m, 'int8', { filter: (p) => p.startsWith('rack.stacks.1.') });
  quantizeModule(m, 'fp16', { filter: (p) => p.startsWith('rack.stacks.2.blocks.0.attn') });
  quantizeModule(m, 'bf16', { filter: (p) => p.startsWith('rack.stacks.2.') });
  return m;
}

function snapshot(m: Model): Map<string, { dtype: string; bits: number[] }> {
  return new Map(m.namedParameters().map(([n, t]) => {
    const a = t.toArray();
    return [n, { dtype: t.dtype, bits: Array.from(new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4)) }];
  }));
}

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'sw-qckpt-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('quantized checkpoint: save and load into a fresh fp32 model is bit-exact (every format, adapters, trainable stack)', () => {
  withDir((dir) => {
    const src = quantizedModel(1);
    const ids = E.randInt([2, 5], 40, { seed: 2 });
    const logits = src.forward(ids).logits.toArray();
    const path = join(dir, 'model.safetensors');
    saveQuantizedCheckpoint(path, src, { note: 'test' });
    const file = parseSafetensors(readFileSync(path));
    const meta = JSON.parse(file.metadata[QUANT_META_KEY]) as { version: number; layers: Record<string, { format: string; double_quant: boolean; block_size: number }> };
    assert.equal(meta.version, 1);
    assert.equal(Object.keys(meta.layers).length, 3 * 7);
    assert.deepEqual(meta.layers['rack.stacks.0.blocks.0.attn.q'], { format: 'nf4', shape: [64, 64], double_quant: true, block_size: 64, dq_block_size: 256, dq_code: 'bnb-dynamic-signed-8bit', bias: false });
    assert.equal(meta.layers['rack.stacks.1.blocks.0.ffn.up'].format, 'int8');
    assert.equal(meta.layers['rack.stacks.1.blocks.0.ffn.up'].block_size, 64);
    assert.equal(file.metadata.note, 'test');
    const packed = file.tensors.get('rack.stacks.0.blocks.0.attn.q.weight_packed')!;
    assert.deepEqual([packed.dtype, packed.shape], ['U8', [64 * 64 / 2]]);
    assert.deepEqual(file.tensors.get('rack.stacks.0.blocks.0.attn.q.weight_qscales')!.shape, [64]);
    assert.equal(file.tensors.get('rack.stacks.2.blocks.0.ffn.up.weight_packed')!.data.length, 2 * 96 * 64);

    const dst = llama({ ...config, seed: 99 });
    applyLora(dst.rack.stacks.at(1), { rank: 2, alpha: 4, targets: ['q', 'down'], seed: 5, freezeOthers: false });
    const res = loadQuantizedCheckpoint(path, dst);
    assert.equal(res.quantized.length, 21);
    assert.ok(dst.getModule('rack.stacks.1.blocks.0.attn.q') instanceof QuantizedLinear);
    assert.ok(dst.getModule('rack.stacks.3.blocks.0.attn.q') instanceof Linear);
    assert.deepEqual(snapshot(dst), snapshot(src), 'every tensor, packed pieces included, bit for bit');
    assert.deepEqual(Array.from(dst.forward(ids).logits.toArray()), Array.from(logits), 'identical logits');
    // Loading again into the now-quantized model (formats already in place) is also exact.
    loadQuantizedCheckpoint(readFileSync(path), dst);
    assert.deepEqual(snapshot(dst), snapshot(src));
    // Bytes in, bytes out: re-serializing gives the same file.
    assert.deepEqual(serializeQuantizedCheckpoint(dst, { note: 'test' }), new Uint8Array(readFileSync(path)));
    src.dispose();
    dst.dispose();
  });
});

test('quantized checkpoint: loading replaces layers quantized differently', () => {
  const src = quantizedModel(1);
  const bytes = serializeQuantizedCheckpoint(src);
  const dst = llama({ ...config, seed: 4 });
  applyLora(dst.rack.stacks.at(1), { rank: 2, alpha: 4, targets: ['q', 'down'], seed: 5, freezeOthers: false });
  dst.freeze();
  quantizeModule(dst, 'int8', { filter: (p) => p.startsWith('rack.stacks.0.') });
  loadQuantizedCheckpoint(bytes, dst);
  assert.equal((dst.getModule('rack.stacks.0.blocks.0.attn.q') as QuantizedLinear).format, 'nf4');
  assert.deepEqual(snapshot(dst), snapshot(src));
  src.dispose();
  dst.dispose();
});

/** Re-encodes a parsed file after `edit`, recomputing checksums unless told not to. */
function rewrite(file: SafeFile, edit: (f: SafeFile) => void, resum = true): Uint8Array {
  const copy: SafeFile = { tensors: new Map([...file.tensors].map(([k, t]) => [k, { ...t, data: t.data.slice() }])), metadata: { ...file.metadata } };
  edit(copy);
  if (resum) {
    const sums: Record<string, string> = {};
    for (const [k, t] of copy.tensors) sums[k] = createHash('sha256').update(t.data).digest('hex');
    copy.metadata[CHECKSUM_META_KEY] = JSON.stringify(sums);
  }
  return serializeSafetensors(copy.tensors, copy.metadata);
}

function editMeta(f: SafeFile, path: string, patch: Record<string, unknown>): void {
  const meta = JSON.parse(f.metadata[QUANT_META_KEY]) as { layers: Record<string, Record<string, unknown>> };
  Object.assign(meta.layers[path], patch);
  f.metadata[QUANT_META_KEY] = JSON.stringify(meta);
}

test('quantized checkpoint: corrupt or mismatched files are refused and the model is left unchanged', () => {
  const src = quantizedModel(1);
  const good = serializeQuantizedCheckpoint(src);
  const file = parseSafetensors(good);
  src.dispose();
  const dst = llama({ ...config, seed: 7 });
  applyLora(dst.rack.stacks.at(1), { rank: 2, alpha: 4, targets: ['q', 'down'], seed: 5, freezeOthers: false });
  const before = snapshot(dst);
  const q0 = 'rack.stacks.0.blocks.0.attn.q';
  const refuse = (bytes: Uint8Array, ...patterns: RegExp[]) => {
    assert.throws(() => loadQuantizedCheckpoint(bytes, dst, { source: 'ckpt' }), (e: unknown) => {
      assert.ok(e instanceof Error);
      for (const p of patterns) assert.match(e.message, p);
      return true;
    });
    assert.ok(dst.getModule(q0) instanceof Linear, 'no layer was replaced');
    assert.deepEqual(snapshot(dst), before, 'no value was written');
  };
  // A flipped bit in the packed codes: caught by the checksum.
  const flipped = good.slice();
  const header = Number(new DataView(flipped.buffer).getBigUint64(0, true));
  flipped[8 + header + 100] ^= 0x10;
  refuse(flipped, /ckpt: tensor '.*': sha256 .* does not match/, /corrupt/);
  // Truncated file: refused by the safetensors reader.
  refuse(good.slice(0, good.length - 10), /ckpt/);
  // Unimplemented format in the metadata.
  refuse(rewrite(file, (f) => editMeta(f, q0, { format: 'fp4' })), /ckpt: stackwise\.quantized\.layers\['rack\.stacks\.0\.blocks\.0\.attn\.q'\]\.format/, /'fp4' is not implemented/, /supported formats/);
  refuse(rewrite(file, (f) => editMeta(f, q0, { block_size: 128 })), /block_size is 128; nf4 is stored with block size 64/);
  refuse(rewrite(file, (f) => editMeta(f, q0, { shape: [64, 32] })), /tensor 'rack\.stacks\.0\.blocks\.0\.attn\.q\.weight_packed'|is \[64, 64\] here but \[64, 32\]/);
  refuse(rewrite(file, (f) => editMeta(f, q0, { double_quant: false })), /weight_scales': missing/);
  refuse(rewrite(file, (f) => editMeta(f, 'rack.stacks.1.blocks.0.attn.q', { format: 'fp16', double_quant: true })), /double quantization applies to nf4 only/);
  refuse(rewrite(file, (f) => editMeta(f, q0, { bias: true })), /has bias in the checkpoint but none here/);
  refuse(rewrite(file, (f) => { f.metadata[QUANT_META_KEY] = '{"version": 2, "layers": {}}'; }), /unsupported quantized checkpoint version 2/);
  refuse(rewrite(file, (f) => { delete f.metadata[QUANT_META_KEY]; }), /not a StackWise quantized checkpoint/);
  refuse(rewrite(file, (f) => { delete f.metadata[CHECKSUM_META_KEY]; }, false), /'stackwise\.sha256' is missing/);
  refuse(rewrite(file, (f) => { f.tensors.delete(`${q0}.weight_scales2`); }), /weight_scales2': missing/);
  refuse(rewrite(file, (f) => { f.tensors.set('extra', { dtype: 'F32', shape: [1], data: new Uint8Array(4) }); }), /'extra': unexpected/);
  refuse(rewrite(file, (f) => { f.tensors.delete('head.weight'); }), /'head\.weight': missing from the checkpoint/);
  refuse(rewrite(file, (f) => {
    const t = f.tensors.get(`${q0}.weight_scales2`)!;
    new Float32Array(t.data.buffer, t.data.byteOffset, 1)[0] = NaN;
  }), /second-level absmax 0 is NaN/);
  refuse(rewrite(file, (f) => {
    const t = f.tensors.get('rack.stacks.0.blocks.0.ffn.up.weight_scales')!;
    new Float32Array(t.data.buffer, t.data.byteOffset, 2)[1] = -1;
  }), /absmax 1 is -1/);
  refuse(rewrite(file, (f) => { f.tensors.get('rack.stacks.1.blocks.0.ffn.up.weight_packed')!.data[7] = 0x80; }), /code 7 is -128/);
  refuse(rewrite(file, (f) => { f.tensors.get('rack.stacks.2.blocks.0.attn.q.weight_packed')!.data[3] = 0x7c; }), /element 1 is an fp16 infinity or NaN/);
  refuse(rewrite(file, (f) => {
    const t = f.tensors.get(`${q0}.weight_packed`)!;
    f.tensors.set(`${q0}.weight_packed`, { dtype: 'U8', shape: [t.data.length - 1], data: t.data.slice(1) });
  }), /weight_packed': expected U8\[2048\] for nf4 \[64, 64\], found U8\[2047\]/);
  // A model of another shape.
  const other = llama({ ...config, dModel: 32, seed: 1 });
  assert.throws(() => loadQuantizedCheckpoint(good, other), (e: unknown) => e instanceof QuantizedCheckpointError && /layer .* is \[\d+, 32\] here but \[\d+, 64\] in the checkpoint/.test(e.message));
  other.dispose();
  // A plain safetensors file.
  refuse(serializeSafetensors({ a: { dtype: 'F32', shape: [1], data: new Uint8Array(4) } }), /not a StackWise quantized checkpoint/);
  // The good file still loads.
  withDir((dir) => {
    writeFileSync(join(dir, 'ok.safetensors'), good);
    loadQuantizedCheckpoint(join(dir, 'ok.safetensors'), dst);
  });
  assert.ok(dst.getModule(q0) instanceof QuantizedLinear);
  dst.dispose();
});
