// Child process of load-model.test.ts (not a test file): `<checkpoint> <ids.json> <out.bin>` loads
// the checkpoint's model with loadModel (nothing but the checkpoint folder is reachable) and
// writes its logits on the ids as raw float32 bytes.
import { readFileSync, writeFileSync } from 'node:fs';
import * as E from '../../../src/engine/index.js';
import { loadModel } from '../../../src/training/model-manifest/index.js';

const [checkpoint, idsFile, out] = process.argv.slice(2);
const { rows, ratios } = JSON.parse(readFileSync(idsFile!, 'utf8')) as { rows: number[][]; ratios: number[] | null };
const { model } = loadModel(checkpoint!);
const logits = E.tidy(() => E.noGrad(() => {
  const ids = E.tensor(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length], { dtype: 'int32' });
  return Float32Array.from(model.forward(ids, ratios ? { timeRatios: ratios } : {}).logits.toArray());
}));
writeFileSync(out!, new Uint8Array(logits.buffer));
model.dispose();
