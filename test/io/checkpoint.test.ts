import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointError,
  RUN_MARKER,
  assertRunFolder,
  isRunFolder,
  latestCheckpoint,
  listCheckpoints,
  openRunFolder,
  readCheckpoint,
  writeCheckpoint,
} from '../../src/io/checkpoint.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'sw-ckpt-'));
}

function problemIs(problem: string, pattern: RegExp) {
  return (e: unknown) => e instanceof CheckpointError && e.problem === problem && pattern.test(e.message);
}

test('a run folder is created with a marker; a foreign non-empty folder is refused and left untouched', () => {
  const root = tmp();
  try {
    const run = join(root, 'run');
    const marker = openRunFolder(run, { config_hash: 'abc' });
    assert.equal(marker.format, 'stackwise-run');
    assert.equal(marker['config_hash'], 'abc');
    assert.ok(isRunFolder(run));
    assert.equal(openRunFolder(run).created, marker.created, 'reopening keeps the marker');
    const empty = join(root, 'empty');
    mkdirSync(empty);
    openRunFolder(empty);
    assert.ok(existsSync(join(empty, RUN_MARKER)));

    const foreign = join(root, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'thesis.tex'), 'precious');
    assert.throws(() => openRunFolder(foreign), problemIs('not-ours', /not a StackWise run folder.*no \.stackwise-run marker.*thesis\.tex/));
    assert.deepEqual(readdirSync(foreign), ['thesis.tex']);
    writeFileSync(join(foreign, RUN_MARKER), 'not json');
    assert.throws(() => openRunFolder(foreign), problemIs('not-ours', /marker is not valid/));
    assert.throws(() => assertRunFolder(join(root, 'nope')), problemIs('missing', /does not exist/));
    assert.throws(() => writeCheckpoint(foreign, 1, {}, {}), problemIs('not-ours', /not a StackWise run folder/));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('checkpoints are written whole, listed, verified on read and pruned to keep_last', () => {
  const run = tmp();
  try {
    openRunFolder(run);
    for (const step of [2, 4, 6, 8]) {
      writeCheckpoint(run, step, { 'a.bin': Uint8Array.of(step, 1, 2), 'b.bin': new Uint8Array(100).fill(step) }, { step, note: 'x' }, { keepLast: 2 });
    }
    assert.deepEqual(listCheckpoints(run).map((c) => c.step), [6, 8]);
    assert.equal(latestCheckpoint(run)!.name, 'step-00000008');
    assert.equal(readFileSync(join(run, 'checkpoints', 'latest'), 'utf8').trim(), 'step-00000008');
    const loaded = readCheckpoint<{ step: number }>(latestCheckpoint(run)!.path);
    assert.equal(loaded.manifest.step, 8);
    assert.equal(loaded.manifest.state.step, 8);
    assert.deepEqual([...loaded.files.get('a.bin')!], [8, 1, 2]);
    // Re-writing a step replaces it only once complete.
    writeCheckpoint(run, 8, { 'a.bin': Uint8Array.of(42) }, { step: 8, again: true }, { keepLast: 2 });
    assert.deepEqual([...readCheckpoint(latestCheckpoint(run)!.path).files.get('a.bin')!], [42]);
    assert.ok(!readdirSync(join(run, 'checkpoints')).some((n) => n.startsWith('.')), 'no temporary folders left');
    assert.throws(() => writeCheckpoint(run, 9, { 'checkpoint.json': Uint8Array.of(1) }, {}), /invalid file name/);
    assert.equal(listCheckpoints(run).length, 2, 'a failed write leaves nothing behind');
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('truncated, corrupt, incomplete and missing checkpoints are refused; nothing earlier is lost', () => {
  const run = tmp();
  try {
    openRunFolder(run);
    const a = writeCheckpoint(run, 1, { 'w.bin': new Uint8Array(64).fill(7) }, { ok: true });
    const b = writeCheckpoint(run, 2, { 'w.bin': new Uint8Array(64).fill(9) }, { ok: true });
    truncateSync(join(b.path, 'w.bin'), 10);
    assert.throws(() => readCheckpoint(b.path), problemIs('truncated', /w\.bin is 10 bytes, the manifest says 64/));
    writeFileSync(join(b.path, 'w.bin'), new Uint8Array(64).fill(8));
    assert.throws(() => readCheckpoint(b.path), problemIs('corrupt', /w\.bin is corrupt \(sha256/));
    writeFileSync(join(b.path, 'checkpoint.json'), '{"format": "stackwise-checkpoint", "fil');
    assert.throws(() => readCheckpoint(b.path), problemIs('corrupt', /not valid JSON/));
    rmSync(join(b.path, 'checkpoint.json'));
    assert.throws(() => readCheckpoint(b.path), problemIs('truncated', /no checkpoint\.json \(the write never finished\)/));
    assert.throws(() => readCheckpoint(join(run, 'checkpoints', 'step-00000077')), problemIs('missing', /does not exist/));
    // The earlier checkpoint is intact, and an incomplete folder is not listed.
    assert.deepEqual(listCheckpoints(run).map((c) => c.step), [1]);
    assert.deepEqual([...readCheckpoint(a.path).files.get('w.bin')!.subarray(0, 2)], [7, 7]);
    writeFileSync(join(a.path, 'checkpoint.json'), JSON.stringify({ format: 'stackwise-checkpoint', version: 99, files: {} }));
    assert.throws(() => readCheckpoint(a.path), problemIs('incompatible', /format version 99/));
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});
