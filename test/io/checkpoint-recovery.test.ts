// What a killed process leaves in a run folder is cleaned when the folder is opened and when
// checkpoints are pruned; pruning never leaves a `step-N/` without its manifest; a failed write
// names the file and the last good checkpoint; a read-only run folder is reported as such.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, writeSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  fsErrorWords,
  listCheckpoints,
  openRunFolder,
  pruneCheckpoints,
  removeStaleFiles,
  writeCheckpoint,
} from '../../src/io/checkpoint.js';
import { JsonlWriter } from '../../src/io/metrics-jsonl.js';

function withRun(check: (run: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'sw-ckpt-rec-'));
  try {
    const run = join(root, 'run');
    openRunFolder(run);
    check(run);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A pid that surely belongs to no live process (the largest pid the kernel allows, plus one). */
const DEAD_PID = 4_194_305;

const files = (n: number) => ({ 'model.safetensors': new Uint8Array(n).fill(7) });

test('a killed write leaves nothing behind once the run folder is reopened: temporary files and folders, a step-N/ without manifest', () => {
  withRun((run) => {
    writeCheckpoint(run, 2, files(8), { step: 2 });
    const ck = join(run, 'checkpoints');
    // What kill -9 leaves at each point of a checkpoint write, a pointer write, a prune, a config write.
    mkdirSync(join(ck, `.tmp-step-00000004-${DEAD_PID}-0badc0de`));
    writeFileSync(join(ck, `.tmp-step-00000004-${DEAD_PID}-0badc0de`, 'model.safetensors'), 'partial');
    mkdirSync(join(ck, `.old-step-00000001-${DEAD_PID}-12345678`));
    writeFileSync(join(ck, `.latest.${DEAD_PID}.a1b2c3d4.tmp`), 'step-000');
    mkdirSync(join(ck, 'step-00000001'));
    writeFileSync(join(ck, 'step-00000001', 'optimizer.safetensors'), new Uint8Array(64)); // manifest already deleted
    writeFileSync(join(run, `.config.yaml.${DEAD_PID}.deadbeef.tmp`), 'model:');
    mkdirSync(join(run, 'phases'), { recursive: true });
    writeFileSync(join(run, 'phases', `.00-one.yaml.${DEAD_PID}.deadbeef.tmp`), 'x');
    // A temporary file of a live process (this one, seen from a pruning) is left alone.
    const live = join(ck, `.latest.${process.pid}.feedf00d.tmp`);
    writeFileSync(live, 'in flight');
    assert.deepEqual(removeStaleFiles(run, { atStartUp: false }).length, 6);
    assert.ok(existsSync(live));
    // At start-up nothing of ours can be in flight.
    openRunFolder(run);
    assert.deepEqual(readdirSync(ck).sort(), ['latest', 'step-00000002']);
    assert.deepEqual(readdirSync(run).sort(), ['.stackwise-run', 'checkpoints', 'phases']);
    assert.deepEqual(readdirSync(join(run, 'phases')), []);
    assert.deepEqual(listCheckpoints(run).map((c) => c.step), [2]);
  });
});

test('pruning removes a checkpoint by renaming it out of step-N first, and cleans leftovers of an earlier kill', () => {
  withRun((run) => {
    for (const step of [1, 2, 3]) writeCheckpoint(run, step, files(16), { step });
    const ck = join(run, 'checkpoints');
    mkdirSync(join(ck, 'step-00000000')); // the rest of a deletion killed before this fix
    writeFileSync(join(ck, 'step-00000000', 'model.safetensors'), 'x');
    assert.deepEqual(pruneCheckpoints(run, 1), ['step-00000001', 'step-00000002']);
    assert.deepEqual(readdirSync(ck).sort(), ['latest', 'step-00000003']);
    writeCheckpoint(run, 4, files(16), { step: 4 }, { keepLast: 1 });
    assert.deepEqual(readdirSync(ck).sort(), ['latest', 'step-00000004']);
  });
});

test('the words for a real full disk (/dev/full) and for permission errors', { skip: !existsSync('/dev/full') }, () => {
  const fd = openSync('/dev/full', 'w');
  try {
    assert.throws(() => writeSync(fd, new Uint8Array(1)), (e: unknown) => fsErrorWords(e) === 'no space left on the device');
  } finally {
    closeSync(fd);
  }
  // The metrics log on a full disk names its file.
  const log = new JsonlWriter('/dev/full');
  assert.throws(() => log.write({ type: 'step' } as never), /could not append to \/dev\/full: no space left on the device/);
  log.close();
  assert.equal(fsErrorWords(Object.assign(new Error('x'), { code: 'EACCES' })), 'permission denied');
  assert.equal(fsErrorWords(Object.assign(new Error('x'), { code: 'EROFS' })), 'the file system is read-only');
});

test('a failed checkpoint write names the file it was writing and the last good checkpoint, and leaves it intact', () => {
  withRun((run) => {
    const good = writeCheckpoint(run, 4, files(8), { step: 4 });
    // A file the file system refuses to create (its name is too long), after one it wrote.
    const tooLong = `${'x'.repeat(300)}.safetensors`;
    assert.throws(() => writeCheckpoint(run, 8, { ...files(8), [tooLong]: new Uint8Array(4) }, { step: 8 }), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, String(e));
      assert.equal(e.problem, 'write-failed');
      assert.match(e.message, /could not write checkpoint .*step-00000008: name too long \(ENAMETOOLONG\) \(writing .*checkpoints\/step-00000008\/xxxx+\.safetensors\); nothing was half-written — the last good checkpoint is .*step-00000004, left intact/);
      return true;
    });
    assert.deepEqual(listCheckpoints(run).map((c) => c.path), [good.path]);
    assert.ok(!readdirSync(join(run, 'checkpoints')).some((n) => n.startsWith('.tmp-')), 'no temporary folder left');
  });
});

/** A read-only run folder, as a user who cannot write it sees it (root ignores permission bits: run the check as nobody). */
test('a read-only run folder is reported as read-only, not as a missing file', { skip: process.platform === 'win32' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'sw-ckpt-ro-'));
  try {
    chmodSync(root, 0o755);
    const run = join(root, 'run');
    openRunFolder(run);
    writeCheckpoint(run, 1, files(8), { step: 1 });
    chmodSync(run, 0o555);
    chmodSync(join(run, 'checkpoints'), 0o555);
    const module = new URL('../../src/io/checkpoint.js', import.meta.url).href;
    const script = `import(${JSON.stringify(module)}).then((m) => { try { m.openRunFolder(${JSON.stringify(run)}); console.log('opened'); } catch (e) { console.log(e.problem + ': ' + e.message); } });`;
    const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', ...asOther, cwd: fileURLToPath(new URL('.', import.meta.url)) });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^read-only: run folder .*run is not writable \(permission denied\); training needs to write there/);
  } finally {
    chmodSync(root, 0o755);
    rmSync(root, { recursive: true, force: true });
  }
});
