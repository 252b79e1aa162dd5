// The config.yaml a run writes is what `train --resume <run>` reads back: for every shipped config
// and recipe, loading it again must give the same config and hash (a resumed run refuses a config
// whose hash differs, and a config that does not load cannot be resumed at all).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, writeResolvedConfigs } from '../../src/training/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled to dist/test/training: the configs stay at the repository root.
const ROOT = [resolve(here, '../../..'), resolve(here, '../..')].find((p) => existsSync(join(p, 'recipes')))!;

function yamlFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []);
}

const FILES = [...yamlFiles('configs'), ...yamlFiles('recipes')]
  // These start from a pretrained folder (model.init.from or `train --from`) that must exist;
  // test/training/init-from.test.ts resumes such a run from its own config.yaml.
  .filter((f) => !/pretrained|finetune/.test(f));

test('every shipped config and recipe: the written config.yaml loads again with the same hash', () => {
  assert.ok(FILES.length >= 10, `found only ${FILES.length} config files under ${ROOT}`);
  const dir = mkdtempSync(join(tmpdir(), 'sw-reload-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [i, file] of FILES.entries()) {
    const parsed = loadConfig(join(ROOT, file));
    const runDir = join(dir, String(i));
    writeResolvedConfigs(runDir, parsed);
    let again;
    try {
      again = loadConfig(join(runDir, 'config.yaml'));
    } catch (e) {
      assert.fail(`${file}: its written config.yaml does not load: ${(e as Error).message}`);
    }
    assert.equal(again.hash, parsed.hash, `${file}: the hash changed on reloading config.yaml`);
    assert.deepEqual(again.phases, parsed.phases, `${file}: the phases changed on reloading config.yaml`);
  }
});
