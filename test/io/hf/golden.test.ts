// Golden parity with Hugging Face transformers / PEFT: every fixture folder in
// test/fixtures/hf (made by its generate.py) is loaded through our import and run on its case inputs, float32 on the
// default backend (native when built). Tolerances (the targets):
//   logits, merged_logits, every hidden state: |ours - HF| <= 1e-4 absolute;
//   loss: |ours - HF| <= 1e-5 · |HF|;
//   gradients: |ours - HF| <= 1e-4 · max(1, |HF|) per element (absolute for small values: some
//   HF gradients that are analytically 0 hold ~1e-11 rounding noise).
// Nothing here knows the fixtures' shapes: the same code runs whatever folders exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { forwardCase } from '../../../src/io/hf/index.js';
import { isLoraParamName } from '../../../src/nn/index.js';
import { readSafetensors, toFloat32 } from '../../../src/io/index.js';
import { FIXTURES_DIR, FIXTURE_INPUT_NAMES as INPUT_NAMES, fixtureFolders, goldenTolerance as tolerance } from '../support.js';

const folders = fixtureFolders();

test('fixtures are present', { skip: folders.length === 0 ? `no fixtures at ${FIXTURES_DIR}` : false }, () => {
  assert.ok(folders.length > 0);
});

for (const folder of folders) {
  test(`golden: ${folder} matches Hugging Face (backend ${E.getDefaultBackend().name}, float32)`, (t) => {
    const dir = join(FIXTURES_DIR, folder);
    const ref = readSafetensors(join(dir, 'case.safetensors')).tensors;
    const { tensors, loaded } = forwardCase(dir, join(dir, 'case.safetensors'));
    const worst: Record<string, number> = {};
    const failures: string[] = [];
    let compared = 0;
    for (const [name, st] of ref) {
      if (INPUT_NAMES.has(name)) continue;
      const mine = tensors.get(name);
      if (!mine) { failures.push(`${name}: not produced by our forward`); continue; }
      assert.deepEqual(mine.shape, st.shape, `${name}: shape`);
      const r = toFloat32(st);
      const tol = tolerance(name);
      let maxErr = 0;
      let bad = -1;
      for (let i = 0; i < r.length; i++) {
        const err = Math.abs(mine.data[i] - r[i]);
        if (!(err <= maxErr)) maxErr = Number.isNaN(err) ? Infinity : err;
        if (bad < 0 && !(err <= tol(r[i]))) bad = i;
      }
      const kind = name.startsWith('grad.') ? 'grad' : name.startsWith('hidden_states.') ? 'hidden_states' : name;
      worst[kind] = Math.max(worst[kind] ?? 0, maxErr);
      if (bad >= 0) failures.push(`${name}[${bad}]: ours ${mine.data[bad]}, HF ${r[bad]} (max |err| ${maxErr})`);
      compared++;
    }
    // Every trainable parameter's gradient must be in the fixture (and no extra ones).
    const ourGrads = [...tensors.keys()].filter((k) => k.startsWith('grad.'));
    const refGrads = [...ref.keys()].filter((k) => k.startsWith('grad.'));
    assert.deepEqual(ourGrads.sort(), refGrads.sort(), 'the same set of gradients');
    if (loaded.adapter) {
      assert.ok(loaded.model.trainableParameters().every(([n]) => isLoraParamName(n)), 'with an adapter only the adapter trains');
    }
    t.diagnostic(`${folder}: ${compared} tensors compared, max |err| ${JSON.stringify(worst)}`);
    assert.deepEqual(failures, []);
    loaded.model.dispose();
  });
}
