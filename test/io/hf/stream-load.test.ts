// Hugging Face weights streamed tensor by tensor: the folder here is written with plain JavaScript
// arrays (no engine memory), so the engine's buffer accounting in this fresh test process sees
// only what loading allocates. Bad layouts are refused naming the tensor and the file before any
// weight memory exists; loading never reads more than one tensor at once and its peak stays near
// the final model plus one tensor, for fp32 and for NF4 alike.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { loadHF } from '../../../src/io/hf/index.js';
import { fromFloat32, fromInt32, writeSafetensors, type SafeTensor } from '../../../src/io/index.js';

const work = mkdtempSync(join(tmpdir(), 'sw-hf-stream-'));
after(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = () => { const d = join(work, `d${n++}`); mkdirSync(d); return d; };

// A llama whose projections dominate its bytes, so NF4 storage is far below the file's size.
const V = 96, D = 64, FF = 192, L = 3, H = 4, KV = 2;
const config = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: D, intermediate_size: FF, num_attention_heads: H,
  num_key_value_heads: KV, num_hidden_layers: L, vocab_size: V, max_position_embeddings: 64, rms_norm_eps: 1e-6, tie_word_embeddings: false, hidden_act: 'silu',
};

function randomTensors(): Map<string, SafeTensor> {
  let s = 12345;
  const rand = (count: number, scale: number) => Float32Array.from({ length: count }, () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return ((s / 2 ** 32) - 0.5) * scale; });
  const t = new Map<string, SafeTensor>();
  const put = (name: string, shape: number[], scale = 0.2) => t.set(name, fromFloat32(rand(shape.reduce((a, b) => a * b, 1), scale), shape));
  put('model.embed_tokens.weight', [V, D], 1);
  const hd = D / H;
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    t.set(`${p}.input_layernorm.weight`, fromFloat32(new Float32Array(D).fill(1), [D]));
    t.set(`${p}.post_attention_layernorm.weight`, fromFloat32(new Float32Array(D).fill(1), [D]));
    put(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    put(`${p}.self_attn.k_proj.weight`, [KV * hd, D]);
    put(`${p}.self_attn.v_proj.weight`, [KV * hd, D]);
    put(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    put(`${p}.mlp.gate_proj.weight`, [FF, D]);
    put(`${p}.mlp.up_proj.weight`, [FF, D]);
    put(`${p}.mlp.down_proj.weight`, [D, FF]);
  }
  t.set('model.norm.weight', fromFloat32(new Float32Array(D).fill(1), [D]));
  put('lm_head.weight', [V, D]);
  return t;
}

const tensors = randomTensors();
const largestTensor = Math.max(...[...tensors.values()].map((t) => t.data.length));

/** The folder as one file, or as shards of the given tensor groups + index. */
function writeFolder(groups?: string[][], edit?: (file: string, t: Map<string, SafeTensor>) => void, index?: (map: Record<string, string>) => void): string {
  const d = fresh();
  writeFileSync(join(d, 'config.json'), JSON.stringify(config));
  if (!groups) {
    const t = new Map(tensors);
    edit?.('model.safetensors', t);
    writeSafetensors(join(d, 'model.safetensors'), t, { format: 'pt' });
    return d;
  }
  const map: Record<string, string> = {};
  groups.forEach((names, i) => {
    const file = `model-0000${i + 1}-of-0000${groups.length}.safetensors`;
    const t = new Map(names.map((k) => [k, tensors.get(k)!]));
    edit?.(file, t);
    writeSafetensors(join(d, file), t, { format: 'pt' });
    for (const k of names) map[k] = file;
  });
  index?.(map);
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: map }));
  return d;
}

const names = [...tensors.keys()];
const thirds = [names.slice(0, 10), names.slice(10, 20), names.slice(20)];

test('a bad layout is refused naming the tensor and the file, before weight memory exists', () => {
  const before = E.memoryInfo();
  const missing = writeFolder(thirds, (file, t) => { if (file.startsWith('model-00002')) t.delete(thirds[1]![0]!); });
  assert.throws(() => loadHF(missing), (e: Error) => e.message.includes(`tensor '${thirds[1]![0]}' is missing`) && e.message.includes(join(missing, 'model-00002-of-00003.safetensors')) && e.message.includes('model.safetensors.index.json'));
  const absent = writeFolder(thirds);
  unlinkSync(join(absent, 'model-00003-of-00003.safetensors'));
  assert.throws(() => loadHF(absent), (e: Error) => /shard model-00003-of-00003\.safetensors is absent/.test(e.message) && e.message.includes(thirds[2]![0]!));
  const q = 'model.layers.1.self_attn.q_proj.weight';
  const wrongDtype = writeFolder(thirds, (_f, t) => { if (t.has(q)) t.set(q, fromInt32(new Int32Array(D * D), [D, D])); });
  const holder = `model-0000${thirds.findIndex((g) => g.includes(q)) + 1}-of-00003.safetensors`;
  assert.throws(() => loadHF(wrongDtype), (e: Error) => e.message.includes(`'${q}' in ${join(wrongDtype, holder)}`) && /expected a floating tensor .* found I32/.test(e.message));
  const wrongShape = writeFolder(undefined, (_f, t) => t.set(q, fromFloat32(new Float32Array(D * 8), [8, D])));
  assert.throws(() => loadHF(wrongShape), (e: Error) => e.message.includes(`'${q}' in ${join(wrongShape, 'model.safetensors')}: shape mismatch, expected [${D}, ${D}], found [8, ${D}]`));
  const noFile = writeFolder(thirds, undefined, (map) => { map[q] = '../elsewhere.safetensors'; });
  assert.throws(() => loadHF(noFile), /weight_map\['model\.layers\.1\.self_attn\.q_proj\.weight'\]: expected a file name in the folder/);
  const after = E.memoryInfo();
  // Nothing stayed allocated, and nothing the size of a weight was ever allocated.
  assert.equal(after.bytes, before.bytes);
  assert.ok(after.peakBytes - before.bytes < largestTensor / 4, `peak grew by ${after.peakBytes - before.bytes} bytes while refusing`);
});

test('NF4 load: peak engine memory is the NF4 model plus about one tensor, never the file; the reader reads one tensor at a time', () => {
  const d = writeFolder(thirds);
  const fileBytes = thirds.reduce((k, _g, i) => k + statSync(join(d, `model-0000${i + 1}-of-00003.safetensors`)).size, 0);
  const before = E.memoryInfo();
  const loaded = loadHF(d, { loadFormat: 'nf4' });
  const after = E.memoryInfo();
  const modelBytes = loaded.model.numBytes();
  // Beyond the model: only the 256-entry table of double quantization, made once per process.
  assert.ok(after.bytes - before.bytes - modelBytes <= 1024, `${after.bytes - before.bytes - modelBytes} bytes left beyond the model`);
  const peak = after.peakBytes - before.bytes;
  assert.ok(peak <= modelBytes + largestTensor + 4096, `peak ${peak} > model ${modelBytes} + largest tensor ${largestTensor}`);
  assert.ok(peak < fileBytes * 0.6, `peak ${peak} should stay well below the files' ${fileBytes} bytes`);
  assert.equal(loaded.load!.largestRead, largestTensor);
  assert.equal(loaded.load!.files, 3);
  assert.equal(loaded.load!.tensors, tensors.size);
  assert.equal(loaded.load!.quantized.length, 7 * L);
  assert.ok(loaded.notes.some((s) => /load format nf4: 21 linear layers of the rack stored in nf4 .*embeddings, norms, biases and the head stay float32/.test(s)), loaded.notes.join('\n'));
  assert.equal(loaded.model.getParameter('embedding.token.weight').dtype, 'float32');
  assert.equal(loaded.model.getParameter('head.weight').dtype, 'float32');
  loaded.model.dispose();
});

test('fp32 load: the peak is the model plus about one tensor', () => {
  const d = writeFolder();
  const before = E.memoryInfo();
  const loaded = loadHF(d);
  const after = E.memoryInfo();
  const modelBytes = loaded.model.numBytes();
  assert.equal(after.bytes - before.bytes, modelBytes);
  assert.ok(after.peakBytes - before.bytes <= modelBytes + largestTensor + 4096, `peak ${after.peakBytes - before.bytes} > model ${modelBytes} + one tensor ${largestTensor}`);
  assert.equal(loaded.load!.largestRead, largestTensor);
  assert.ok(loaded.load!.largestRead < statSync(join(d, 'model.safetensors')).size / 4);
  loaded.model.dispose();
});

test('sharded and single-file folders load bit for bit alike; a NaN in a shard names the tensor and the shard', () => {
  const single = loadHF(writeFolder()).model;
  const sharded = loadHF(writeFolder(thirds)).model;
  const x = E.randInt([2, 7], V, { seed: 4 });
  assert.deepEqual(Array.from(sharded.forward(x).logits.toArray()), Array.from(single.forward(x).logits.toArray()));
  const name = thirds[2]![1]!;
  const bad = writeFolder(thirds, (_f, t) => {
    const v = t.get(name);
    if (!v) return;
    const values = new Float32Array(v.data.buffer.slice(v.data.byteOffset, v.data.byteOffset + v.data.byteLength));
    values[3] = NaN;
    t.set(name, fromFloat32(values, [...v.shape]));
  });
  for (const readChunkBytes of [undefined, 64]) {
    assert.throws(() => loadHF(bad, readChunkBytes ? { readChunkBytes } : {}), (e: Error) => e.message.includes(join(bad, 'model-00003-of-00003.safetensors')) && e.message.includes(`"${name}"`) && /1 of \d+ values are NaN or Inf/.test(e.message));
  }
  single.dispose(); sharded.dispose();
});

test('float32 tensors are read in pieces straight into the engine: the largest read is one chunk, the model the same bit for bit', () => {
  const d = writeFolder(thirds);
  const whole = loadHF(d);
  const pieces = loadHF(d, { readChunkBytes: 1024 });
  assert.equal(whole.load!.largestRead, largestTensor);
  assert.equal(pieces.load!.largestRead, 1024);
  assert.equal(pieces.load!.bytesRead, whole.load!.bytesRead);
  for (const [name, p] of whole.model.namedParameters()) assert.deepEqual(Array.from(pieces.model.getParameter(name).toArray()), Array.from(p.toArray()), name);
  const nf4 = loadHF(d, { readChunkBytes: 1024, loadFormat: 'nf4' });
  const ref = loadHF(d, { loadFormat: 'nf4' });
  const x = E.randInt([1, 5], V, { seed: 2 });
  assert.deepEqual(Array.from(nf4.model.forward(x).logits.toArray()), Array.from(ref.model.forward(x).logits.toArray()));
  assert.throws(() => loadHF(d, { readChunkBytes: 1004 }), /chunk size must be a positive multiple of 8 bytes, found 1004/);
  for (const m of [whole, pieces, nf4, ref]) m.model.dispose();
});
