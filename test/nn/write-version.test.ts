// In-place writes into parameters (loadStateDict, LoRA merge/unmerge) change their write
// versions; forward and backward passes never do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as E from '../../src/engine/index.js';
import { Linear } from '../../src/nn/index.js';

test('loadStateDict writes (and versions) only the parameters it is given', () => {
  E.tidy(() => {
    const l = new Linear(3, 2, { seed: 1 });
    const w0 = l.weight.writeVersion, b0 = l.bias!.writeVersion;
    l.loadStateDict(new Map([['weight', E.mulScalar(l.weight, 2)]]), { strict: false });
    assert.ok(l.weight.writeVersion > w0, 'the loaded weight has a new version');
    assert.equal(l.bias!.writeVersion, b0, 'the bias was not in the state dict');
    const w1 = l.weight.writeVersion;
    l.loadStateDict(l.stateDict());
    assert.equal(l.weight.writeVersion, w1, 'loading a tensor into itself writes nothing');
    assert.throws(() => l.loadStateDict(new Map([['weight', E.zeros([2, 2])]]), { strict: false }), /shape mismatch/);
    assert.equal(l.weight.writeVersion, w1, 'a refused load writes nothing');
  });
});

test('LoRA merge and unmerge write the weight; forward and backward leave every parameter', () => {
  E.tidy(() => {
    const l = new Linear(4, 3, { seed: 2 }).addLora({ rank: 2, alpha: 4, seed: 3, init: 'random', freezeBase: false });
    const params = l.parameters();
    const versions = () => params.map((t) => t.writeVersion);
    const v0 = versions();
    const x = E.randn([2, 4], { seed: 4 });
    E.sum(l.forward(x)).backward();
    l.eval();
    E.noGrad(() => l.forward(x));
    assert.deepEqual(versions(), v0, 'forward and backward only read the parameters');
    const before = l.weight.writeVersion;
    l.merge();
    assert.ok(l.weight.writeVersion > before, 'merge writes W + scale·B A into the weight');
    assert.equal(l.loraA!.writeVersion, v0[params.indexOf(l.loraA!)], 'merge only reads the adapter');
    const merged = l.weight.writeVersion;
    l.merge();
    assert.equal(l.weight.writeVersion, merged, 'merging twice is a no-op');
    l.unmerge();
    assert.ok(l.weight.writeVersion > merged, 'unmerge writes the old weight back');
    for (const t of params) t.grad?.dispose();
  });
});
