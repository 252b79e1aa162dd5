// --load-format (sample, eval, inspect) and --max-shard-size (export) through the CLI, on the
// committed llama fixture: a bad value is a usage error (exit 2) naming the flag; the NF4 load
// samples and inspects; a sharded export is read back by sample.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../io/support.js';
import { stackwise } from './support.js';

const src = join(FIXTURES_DIR, 'llama-gqa');
const noFixture = existsSync(join(src, 'config.json')) ? false : `no fixture at ${src}`;
const dir = mkdtempSync(join(tmpdir(), 'sw-load-format-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('--load-format and --max-shard-size', { skip: noFixture }, () => {
  const bad = stackwise('sample', src, '--prompt', '1 2 3', '--load-format', 'fp8');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--load-format/);
  const s = stackwise('sample', src, '--prompt', '1 2 3', '--max-tokens', '4', '--temperature', '0', '--load-format', 'nf4', '--json');
  assert.equal(s.status, 0, s.stderr);
  const sample = JSON.parse(s.stdout) as { samples: { ids: number[] }[] };
  assert.equal(sample.samples[0]!.ids.length, 7);
  const i = stackwise('inspect', src, '--load-format', 'int8', '--json');
  assert.equal(i.status, 0, i.stderr);
  const report = JSON.parse(i.stdout) as { notes: string[]; totals: { dtypes: Record<string, number> } };
  assert.ok(report.notes.some((n) => /load format int8: 28 linear layers of the rack stored in int8/.test(n)), report.notes.join('\n'));
  assert.ok((report.totals.dtypes['int32'] ?? 0) > 0, 'packed int8 codes');
  const out = join(dir, 'sharded');
  const badSize = stackwise('export', src, '--out', out, '--max-shard-size', 'lots');
  assert.equal(badSize.status, 2, badSize.stderr);
  assert.match(badSize.stderr, /--max-shard-size: expected a size such as 2GB/);
  const e = stackwise('export', src, '--out', out, '--max-shard-size', '60KB', '--json');
  assert.equal(e.status, 0, e.stderr);
  const files = (JSON.parse(e.stdout) as { files: string[] }).files;
  assert.ok(files.includes('model.safetensors.index.json') && files.includes('model.json') && files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 2, files.join(', '));
  const again = stackwise('sample', out, '--prompt', '1 2 3', '--max-tokens', '4', '--temperature', '0', '--json');
  assert.equal(again.status, 0, again.stderr);
  const fp32 = stackwise('sample', src, '--prompt', '1 2 3', '--max-tokens', '4', '--temperature', '0', '--json');
  assert.deepEqual((JSON.parse(again.stdout) as typeof sample).samples[0]!.ids, (JSON.parse(fp32.stdout) as typeof sample).samples[0]!.ids, 'the sharded export samples as the source does');
});
