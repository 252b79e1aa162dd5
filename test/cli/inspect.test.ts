// `stackwise inspect`: the tree (in process) and the command's output and exit codes (child processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatInspect } from '../../src/cli/inspect.js';
import { inspectFolder, weightFileInfo } from '../../src/training/run/index.js';
import { FIXTURES_DIR, stackwise } from './support.js';

const have = (f: string) => existsSync(join(FIXTURES_DIR, f, 'config.json'));
const LLAMA_LORA = join(FIXTURES_DIR, 'llama-gqa-lora');
const GPT2 = join(FIXTURES_DIR, 'gpt2');

test('inspectFolder: stacks, blocks, counts, trainable/frozen with a PEFT adapter', { skip: !have('llama-gqa-lora') }, () => {
  const r = inspectFolder(LLAMA_LORA, { stacks: 2 });
  assert.equal(r.family, 'llama');
  assert.deepEqual(r.stacks, [2, 2]);
  assert.equal(r.layers, 4);
  assert.ok(r.adapter);
  assert.equal(r.adapter.r, 4);
  assert.equal(r.adapter.modules.length, 8);
  // Only the adapters train: 4 layers × (q: A[4,32] + B[32,4], v: A[4,32] + B[16,4]).
  assert.equal(r.totals.trainable, 4 * (128 + 128 + 128 + 64));
  assert.equal(r.totals.frozen, r.totals.parameters - r.totals.trainable);
  assert.equal(r.totals.bytes, 4 * r.totals.parameters);
  assert.deepEqual(Object.keys(r.totals.dtypes), ['float32']);
  assert.deepEqual(r.weights.map((w) => w.file), ['model.safetensors', 'adapter_model.safetensors']);
  assert.deepEqual(Object.keys(r.weights[0]!.dtypes), ['F32']);
  const text = formatInspect(r);
  for (const s of ['stack 0', 'stack 1', 'block 1', 'layer 3', 'lora q,v', 'PEFT LORA r=4 alpha=8', '├─ embedding', '└─ head', 'frozen', 'partial']) {
    assert.ok(text.includes(s), `output has '${s}':\n${text}`);
  }
  assert.ok(!text.includes('lora_A'), 'parameters only with --parameters');
  const full = formatInspect(r, { depth: Infinity, parameters: true });
  assert.ok(full.includes('· lora_A') && full.includes('[4, 32]'));
  const noAdapter = inspectFolder(LLAMA_LORA, { adapter: false });
  assert.equal(noAdapter.adapter, null);
  assert.equal(noAdapter.totals.trainable, noAdapter.totals.parameters);
  assert.equal(noAdapter.totals.parameters, r.totals.parameters - r.totals.trainable);
});

test('inspectFolder: tied weights counted once; explicit blocks per stack', { skip: !have('gpt2') }, () => {
  const r = inspectFolder(GPT2, { stacks: [1, 3] });
  assert.deepEqual(r.stacks, [1, 3]);
  const head = r.tree.children.find((c) => c.type === 'LMHead')!;
  const tied = head.parameters.find((p) => p.aliasOf);
  assert.equal(tied?.aliasOf, 'embedding.token.weight');
  const sum = r.tree.children.reduce((n, c) => n + c.numParameters, 0);
  assert.equal(r.totals.parameters, sum - tied!.numel, 'the tied weight is counted once in the total');
  assert.equal(weightFileInfo(join(GPT2, 'model.safetensors')).tensors, r.weights[0]!.tensors);
});

test('stackwise inspect: text, --json and exit codes', { skip: !have('gpt2') }, () => {
  let r = stackwise('inspect', GPT2, '--stacks', '2');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /gpt2 \(GPT2LMHeadModel\): 4 layers in 2 stacks \[2, 2\]/);
  assert.match(r.stdout, /stack 1 +Stack/);
  r = stackwise('inspect', GPT2, '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { ok: boolean; stacks: number[]; tree: { children: { type: string }[] }; totals: { parameters: number } };
  assert.equal(j.ok, true);
  assert.deepEqual(j.stacks, [4]);
  assert.deepEqual(j.tree.children.map((c) => c.type), ['EmbeddingBlock', 'Rack', 'LMHead']);

  const tmp = mkdtempSync(join(tmpdir(), 'sw-inspect-'));
  try {
    const noConfig = join(tmp, 'no-config'); mkdirSync(noConfig);
    const mistral = join(tmp, 'mistral'); mkdirSync(mistral);
    writeFileSync(join(mistral, 'config.json'), JSON.stringify({ model_type: 'mistral' }));
    const corrupt = join(tmp, 'corrupt'); mkdirSync(corrupt);
    copyFileSync(join(GPT2, 'config.json'), join(corrupt, 'config.json'));
    writeFileSync(join(corrupt, 'model.safetensors'), readFileSync(join(GPT2, 'model.safetensors')).subarray(0, 4000));
    const badJson = join(tmp, 'bad-json'); mkdirSync(badJson);
    writeFileSync(join(badJson, 'config.json'), '{"model_type": "gpt2",');
    const cases: [string[], number, RegExp][] = [
      [[join(tmp, 'missing')], 1, /missing: no such model folder/],
      [[noConfig], 1, /no-config\/config\.json: not found/],
      [[mistral], 1, /mistral\/config\.json: model_type "mistral" is not supported/],
      [[corrupt], 1, /corrupt\/model\.safetensors: .*(truncated|past the end)/],
      [[badJson], 1, /bad-json\/config\.json: invalid JSON/],
      [[GPT2, '--stacks', '3'], 2, /--stacks 3: 4 layers cannot be split into 3 equal stacks/],
      [[GPT2, '--stacks', 'x'], 2, /--stacks/],
      [[GPT2, '--depth', '-1'], 2, /--depth/],
      [[GPT2, '--frobnicate'], 2, /unknown option '--frobnicate'/],
      [[], 2, /missing required argument 'folder'/],
    ];
    for (const [args, code, message] of cases) {
      const res = stackwise('inspect', ...args);
      assert.equal(res.status, code, `inspect ${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, message, `inspect ${args.join(' ')}`);
    }
    const res = stackwise('inspect', mistral, '--json');
    assert.equal(res.status, 1);
    const err = JSON.parse(res.stdout) as { ok: boolean; command: string; error: { type: string; message: string; exitCode: number } };
    assert.deepEqual([err.ok, err.command, err.error.exitCode], [false, 'inspect', 1]);
    assert.match(err.error.message, /model_type/);
    assert.equal(stackwise('frobnicate').status, 2, 'unknown subcommand');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
