// model.attention_kind end to end: each kind (standard as MHA, GQA and MQA; mla; linear with elu1
// and with FAVOR+) parsed from config, built into every block, trained at tiny size through a
// progressive run (1 → 2 stacks; loss must fall), described in the rack spec, inspect and the
// per-phase resource report; bad settings refused with the field named; Hugging Face export
// refused for the kinds Hugging Face has not.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJsonl } from '../../src/io/index.js';
import { saveHF } from '../../src/io/hf/index.js';
import { LatentAttention, LinearAttention, inspectModel, type ModuleInfo } from '../../src/nn/index.js';
import { TrainingMachine, parseConfig, resourceLine, type ResourceRecord } from '../../src/training/index.js';

const work = mkdtempSync(join(tmpdir(), 'sw-attention-kinds-'));
after(() => rmSync(work, { recursive: true, force: true }));
let runs = 0;

type Obj = Record<string, unknown>;

function config(model: Obj): Obj {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 4, n_stacks: 1, blocks_per_stack: 1, progressive: {}, ...model },
    data: { corpus: { kind: 'synthetic', vocab_size: 32, tokens: 4000 }, seq_len: 12, batch_size: 8, eval_batches: 1 },
    optimizer: { lr: 1e-2, clip_norm: 1, weight_decay: 0.01 },
    training: { total_steps: 40, progress: 'off', seed: 3, tensorboard: false, run_dir: join(work, `run-${runs++}`) },
    schedule: [
      { name: 'one', start_t: 0, end_t: 0.5 },
      { name: 'two', start_t: 0.5, end_t: 1, overrides: { model: { n_stacks: 2 } } },
    ],
  };
}

const KINDS: { name: string; model: Obj; check: (attn: unknown) => void; spec?: Obj; report?: string }[] = [
  { name: 'standard MHA', model: {}, check: (a) => assert.equal((a as LinearAttention).nKvHeads, 4) },
  { name: 'standard GQA', model: { n_kv_heads: 2, attention_kind: 'standard' }, check: (a) => assert.equal((a as LinearAttention).nKvHeads, 2) },
  { name: 'standard MQA', model: { n_kv_heads: 1 }, check: (a) => assert.equal((a as LinearAttention).nKvHeads, 1) },
  {
    name: 'mla', model: { attention_kind: { kind: 'mla', kv_rank: 6 } }, spec: { attention_kind: 'mla' }, report: 'mla',
    check: (a) => { assert.ok(a instanceof LatentAttention); assert.equal(a.kvRank, 6); assert.equal(a.ropeDim, 2); },
  },
  {
    name: 'linear elu1', model: { attention_kind: 'linear' }, spec: { attention_kind: 'linear', feature_map: 'elu1' }, report: 'linear:elu1',
    check: (a) => { assert.ok(a instanceof LinearAttention); assert.equal(a.featureMap, 'elu1'); },
  },
  {
    name: 'linear favor', model: { attention_kind: { kind: 'linear', feature_map: 'favor', n_features: 16 } }, spec: { attention_kind: 'linear', feature_map: 'favor' }, report: 'linear:favor',
    check: (a) => { assert.ok(a instanceof LinearAttention); assert.equal(a.featureMap, 'favor'); assert.equal(a.features, 16); },
  },
];

function blocksOf(info: ModuleInfo): ModuleInfo[] {
  return info.type === 'Block' ? [info] : info.children.flatMap(blocksOf);
}

const flops = new Map<string, ResourceRecord[]>();

for (const kind of KINDS) {
  test(`attention_kind ${kind.name}: built from config, trained (loss falls), described everywhere`, (t) => {
    const c = config(kind.model);
    const runDir = String((c['training'] as Obj)['run_dir']);
    const m = new TrainingMachine(c);
    const losses: number[] = [];
    m.addCallback({ onStep: (s) => { losses.push(s.loss); } });
    m.train();
    const model = m.model.model;
    assert.equal(model.rack.numStacks, 2);
    for (const s of model.rack.stacks.toArray()) for (const b of s.blocks.toArray()) kind.check(b.attn);
    // Loss falls: the last 5 steps average well below the first 5.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(losses.slice(0, 5)), last = mean(losses.slice(-5));
    t.diagnostic(`loss: first 5 steps ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`);
    assert.ok(losses.every(Number.isFinite), 'finite losses');
    assert.ok(last < first - 0.3, `loss falls: first 5 steps ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`);
    // The rack spec, inspect and the resource report say what the blocks are.
    for (const st of model.rack.toSpec().stacks) {
      for (const [k, v] of Object.entries(kind.spec ?? {})) assert.equal((st as unknown as Obj)[k], v, `spec ${k}`);
      if (!kind.spec) assert.equal(st.attention_kind, undefined);
    }
    const blocks = blocksOf(inspectModel(model));
    assert.equal(blocks.length, 2);
    for (const b of blocks) assert.equal(b.attributes['attentionKind'], kind.spec?.['attention_kind'] ?? 'standard');
    const records = (readJsonl(join(runDir, 'metrics.jsonl')) as Obj[])
      .filter((r) => r['kind'] === 'resources') as unknown as ResourceRecord[];
    assert.equal(records.length, 2, 'one resources record per phase');
    for (const r of records) {
      for (const s of r.per_stack) assert.equal(s.attention, kind.report);
      if (kind.report) assert.ok(resourceLine(r).includes(`(${kind.report} attention)`), resourceLine(r));
    }
    flops.set(kind.name, records);
    m.dispose();
  });
}

test('the resource report costs each attention kind: parameters and FLOPs per token', () => {
  const last = (name: string) => flops.get(name)!.at(-1)!;
  const std = last('standard MHA'), gqa = last('standard GQA'), mqa = last('standard MQA');
  assert.ok(gqa.params.total < std.params.total && mqa.params.total < gqa.params.total, 'fewer kv heads, fewer k/v parameters');
  // Per block: k and v lose (4 - kv)·4 output rows of 16 inputs each.
  assert.equal(std.params.total - gqa.params.total, 2 * 2 * (2 * 4 * 16), 'GQA saves 2 kv heads of k and v in 2 blocks');
  // Linear attention's core does not grow with S; here (S 12, head_dim 4) elu1 costs 4·D·width
  // per block instead of softmax's 4·(S+1)/2·width.
  const width = 16;
  const core = (r: ResourceRecord) => r.flops_per_token.forward;
  assert.equal(core(std) - core(last('linear elu1')), 2 * (4 * 6.5 * width - 4 * 4 * width), 'elu1 core vs causal softmax core, 2 blocks');
  assert.equal(core(last('linear favor')) - core(last('linear elu1')), 2 * (8 * 16 * width - 4 * 4 * width), 'favor: projections and 16 features');
});

test('model.attention_kind: bad settings name the field, what was expected and what was found', () => {
  const bad = (model: Obj, ...parts: (string | RegExp)[]) => {
    let message = '';
    try {
      const m = new TrainingMachine(config(model));
      m.dispose();
    } catch (e) {
      message = (e as Error).message;
    }
    for (const p of parts) assert.ok(typeof p === 'string' ? message.includes(p) : p.test(message), `message ${JSON.stringify(message)} lacks ${p}`);
  };
  bad({ attention_kind: 'sparse' }, 'model.attention_kind', "'standard'", "'mla'", "'linear'");
  bad({ attention_kind: { kind: 'linear', feature_map: 'relu' } }, 'model.attention_kind.feature_map', "'elu1'", "'favor'");
  bad({ attention_kind: { kind: 'linear', n_features: 8 } }, 'model.attention_kind.n_features', "feature_map 'elu1'", 'found 8');
  bad({ attention_kind: { kind: 'mla' }, n_kv_heads: 2 }, 'model.n_kv_heads', 'latent', 'found n_kv_heads 2');
  bad({ attention_kind: { kind: 'mla', rope_dim: 3 } }, 'model.attention_kind.rope_dim', 'even', 'found 3');
  bad({ attention_kind: { kind: 'mla', kv_rank: 0 } }, 'model.attention_kind.kv_rank');
  // A phase may not change the attention kind: the live model is never rebuilt.
  const c = config({});
  (c['schedule'] as Obj[])[1]!['overrides'] = { model: { n_stacks: 2, attention_kind: 'linear' } };
  assert.throws(() => parseConfig(c), /attention_kind/);
});

test('Hugging Face export refuses the attention kinds Hugging Face has not, naming them', () => {
  for (const [model, named] of [
    [{ attention_kind: { kind: 'mla', kv_rank: 6 } }, "attention kind 'mla'"],
    [{ attention_kind: 'linear' }, "attention kind 'linear' (feature map 'elu1')"],
    [{ attention_kind: { kind: 'linear', feature_map: 'favor' } }, "attention kind 'linear' (feature map 'favor')"],
  ] as const) {
    const m = new TrainingMachine({ ...config(model), schedule: undefined, model: { preset: 'llama', d_model: 16, n_heads: 4, n_stacks: 1, blocks_per_stack: 1, ...model } });
    assert.throws(() => saveHF(m.model.model, join(work, `hf-${runs++}`)), (e: Error) => e.message.includes(named) && e.message.includes("'standard' attention only"));
    m.dispose();
  }
});
