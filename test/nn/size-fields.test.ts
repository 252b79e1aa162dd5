// The model's size fields are defined once (nn/size-fields.ts): the config schema, the presets'
// defaults, the fields no phase may change and the Hugging Face config.json mapping all follow the
// table — checked here field by field, so a field added to the table shows up everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HF_LAYER_COUNT, MODEL_PRESETS, MODEL_SIZE_FIELDS, PRESETS, hfSizeName, sizeDefault, type ModelSizeField } from '../../src/nn/index.js';
import { modelSchema } from '../../src/framework/index.js';
import { buildModel } from '../../src/framework/index.js';
import { hfConfigFromModel, modelConfigFromHF } from '../../src/io/index.js';
import { FIXED_MODEL_FIELDS } from '../../src/training/config/resolve.js';

const FIELDS: readonly ModelSizeField[] = MODEL_SIZE_FIELDS;
const BASE = { preset: 'llama', d_model: 16, n_heads: 2, n_stacks: 1, blocks_per_stack: 1 };

test('the model schema has every size field, required or optional as the table says, with its description', () => {
  const shape = modelSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean }; description?: string }>;
  for (const f of FIELDS) {
    const s = shape[f.name];
    assert.ok(s, `model.${f.name} in the schema`);
    assert.equal(s.safeParse(undefined).success, !f.required, `model.${f.name} required: ${f.required}`);
    assert.equal(s.description, f.doc);
    assert.equal(s.safeParse(f.type === 'boolean' ? 1 : true).success, false, `model.${f.name} refuses the wrong type`);
    if (f.type === 'positive_int') assert.equal(s.safeParse(1.5).success, false);
    if (f.type !== 'boolean') assert.equal(s.safeParse(0).success, false);
  }
  assert.deepEqual(FIXED_MODEL_FIELDS.filter((k) => FIELDS.some((f) => f.name === k)), FIELDS.filter((f) => !f.perPhase).map((f) => f.name), 'every size field but n_stacks is fixed for the run');
});

test('a size field a preset has not is refused by name; the others reach the model', () => {
  for (const f of FIELDS.filter((x) => x.presets)) {
    const other = MODEL_PRESETS.find((p) => !f.presets!.includes(p))!;
    const value = f.type === 'boolean' ? true : 4;
    assert.throws(() => buildModel({ ...BASE, preset: other, [f.name]: value } as never, { vocabSize: 20 }), new RegExp(`model\\.${f.name}: the '${other}' preset has no ${f.lacking}`));
  }
  const m = buildModel({ ...BASE, n_kv_heads: 1, d_ff: 24, rope_theta: 500, norm_eps: 1e-3, tie_embeddings: true, max_positions: 32, vocab_size: 20 } as never);
  const c = m.model.config;
  const b = c.stacks[0]!.block;
  assert.deepEqual([b.nKvHeads, b.dFF, b.ropeTheta, b.normEps, c.embedding.maxPositions, c.vocabSize], [1, 24, 500, 1e-3, 32, 20]);
  assert.equal((c.head as { tied: boolean }).tied, true);
  m.model.dispose();
});

test('preset defaults and the Hugging Face mapping follow the table, for every family', () => {
  for (const family of MODEL_PRESETS) {
    const config = PRESETS[family]({ vocabSize: 24, dModel: 16, nHeads: 2, nLayers: 2, stacks: 2 });
    const block = config.stacks[0]!.block;
    const ours: Record<string, number | boolean | undefined> = {
      vocab_size: config.vocabSize, d_model: config.dModel, n_heads: block.nHeads, n_kv_heads: block.nKvHeads, d_ff: block.dFF,
      max_positions: config.embedding.maxPositions, tie_embeddings: 'tied' in config.head ? config.head.tied : undefined,
      rope_theta: block.ropeTheta, norm_eps: block.normEps,
    };
    for (const f of FIELDS) {
      const d = f.defaults?.[family];
      if (d !== undefined) assert.equal(ours[f.name], d, `${family} preset default of ${f.name}`);
      if (d !== undefined) assert.equal(sizeDefault(family, f.name as never), d);
    }
    // Exported with every size set (llama has no position table, so no default size), then read back.
    const sized = PRESETS[family]({ vocabSize: 24, dModel: 16, nHeads: 2, nLayers: 2, stacks: 2, maxPositions: 64 });
    ours['max_positions'] = 64;
    const hf = hfConfigFromModel(sized);
    assert.equal(hf[HF_LAYER_COUNT[family]], 2);
    for (const f of FIELDS) {
      if (!f.hf?.[family]) {
        assert.throws(() => hfSizeName(family, f.name as never), /has no Hugging Face/);
        continue;
      }
      assert.equal(hfSizeName(family, f.name as never), f.hf[family]);
      assert.equal(hf[f.hf[family]!], ours[f.name], `${family} config.json ${f.hf[family]} (model.${f.name})`);
    }
    // …and read back: the same model config.
    assert.deepEqual(modelConfigFromHF(hf), sized);
  }
});
