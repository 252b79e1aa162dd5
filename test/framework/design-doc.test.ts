// docs/framework.md is kept true by linking each section to the source that implements it:
// every link must resolve, and the names it documents must exist in those files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const doc = join(root, 'docs', 'framework.md');

test('docs/framework.md: every source link resolves', () => {
  const text = readFileSync(doc, 'utf8');
  const links = [...text.matchAll(/\]\((\.\.\/[^)#]+)\)/g)].map((m) => m[1]!);
  assert.ok(links.length >= 20, `the design doc links its sections to the code (${links.length} links)`);
  const missing = links.filter((l) => !existsSync(join(dirname(doc), l)));
  assert.deepEqual(missing, []);
});

test('docs/framework.md: the names it describes exist where it says', () => {
  const has = (file: string, ...names: string[]) => {
    const src = readFileSync(join(root, file), 'utf8');
    for (const n of names) assert.ok(src.includes(n), `${file} defines ${n}`);
  };
  has('src/training/machine.ts', 'trainStep(lossFn', 'getCurrentState()', 'assemblePlanes(', 'enterPhase(');
  has('src/training/hooks.ts', 'onPhaseStart?', 'onStepStart?', 'beforeUpdate?', 'interface ModelPlaneHook');
  has('src/framework/specs/compatibility.ts', 'export function checkCompatibility');
  has('src/framework/specs/fields.ts', 'specCodec');
  has('src/framework/adapter-helpers.ts', 'createDataAdapter', 'createModelAdapter', 'createOptimizerAdapter');
  has('src/training/machine-planes.ts', 'assertCompatiblePlanes');
});
