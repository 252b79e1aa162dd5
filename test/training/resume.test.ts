import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { CheckpointError, listCheckpoints, readJsonl } from '../../src/io/index.js';
import { TrainingMachine, type TrainResult } from '../../src/training/index.js';
import { growHook, tinyConfig, weightsDigest } from './machine-helpers.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-resume-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const EXTRA = { training: { checkpoint_every: 4, eval_every: 3 } };

let straightCache: { result: TrainResult; digest: string } | undefined;
function straight(): { result: TrainResult; digest: string } {
  if (!straightCache) {
    const m = new TrainingMachine(tinyConfig(join(tempDir(), 'straight'), EXTRA), { hooks: [growHook()] });
    const result = m.train();
    straightCache = { result, digest: weightsDigest(m) };
  }
  return straightCache;
}

test('N steps straight = k steps + checkpoint + resume in a fresh machine, bit for bit (mid-phase, at and after the phase change)', () => {
  const ref = straight();
  for (const k of [3, 6, 7, 9]) {
    const run = join(tempDir(), `k${k}`);
    const first = new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()] });
    const firstLosses: number[] = [];
    for (let i = 0; i < k; i++) firstLosses.push(first.trainStep().loss);
    const ck = first.saveCheckpoint();
    first.dispose();
    assert.deepEqual(firstLosses, ref.result.losses.slice(0, k));

    const hook = growHook();
    const second = new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [hook], resume: ck.path });
    const r = second.train();
    assert.equal(r.resumed_from, k);
    assert.deepEqual(r.losses, ref.result.losses.slice(k), `losses after resuming at step ${k}`);
    assert.equal(weightsDigest(second), ref.digest, `weights after resuming at step ${k}`);
    assert.deepEqual(r.phases.map((p) => [p.steps, p.mean_loss, p.tokens]), ref.result.phases.map((p) => [p.steps, p.mean_loss, p.tokens]));
    assert.equal(r.tokens_seen, ref.result.tokens_seen);
    assert.equal(r.final_eval!.loss, ref.result.final_eval!.loss);
    // No phase hook is replayed: the model came from the checkpoint's manifest; the hook is told
    // the phase the run is in, then runs live for the phases entered after the checkpoint.
    assert.deepEqual(hook.calls, k <= 6 ? ['grow'] : [], `hook calls for k = ${k}`);
    assert.deepEqual(hook.resumed, [k < 6 ? 0 : k === 6 ? 0 : 1], `onResume for k = ${k}`);
    const steps = readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['type'] === 'step').map((x) => x['step']);
    assert.deepEqual(steps, [...Array(12).keys()], 'each step logged once');
  }
});

test('kill -9 after a checkpoint, resume in a fresh process: identical losses and weights', () => {
  const ref = straight();
  const run = join(tempDir(), 'killed');
  const child = join(dirname(fileURLToPath(import.meta.url)), 'resume-child.js');
  // Checkpoints at 4 and 8 (after the growth at step 6); killed after step 9 was logged.
  const killed = spawnSync(process.execPath, [child, 'kill', run, '9'], { encoding: 'utf8' });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(listCheckpoints(run).map((c) => c.step), [4, 8]);
  assert.equal(readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['type'] === 'step').length, 10);
  const out = join(run, '..', 'out.json');
  const resumed = spawnSync(process.execPath, [child, 'resume', run, out], { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  const r = JSON.parse(readFileSync(out, 'utf8')) as { losses: number[]; resumed_from: number; digest: string; tokens: number };
  assert.equal(r.resumed_from, 8);
  assert.deepEqual(r.losses, ref.result.losses.slice(8));
  assert.equal(r.digest, ref.digest);
  assert.equal(r.tokens, ref.result.tokens_seen);
  const steps = readJsonl(join(run, 'metrics.jsonl')).filter((x) => x['type'] === 'step');
  assert.deepEqual(steps.map((x) => x['step']), [...Array(12).keys()], 'what the killed run logged after its checkpoint was dropped');
  assert.deepEqual(steps.map((x) => x['loss']), ref.result.losses);
});

test('a checkpoint from a different config is refused with what differs', () => {
  const run = join(tempDir(), 'run');
  const m = new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()] });
  for (let i = 0; i < 4; i++) m.trainStep();
  const otherLr = tinyConfig(run, { ...EXTRA, optimizer: { lr: 5e-3 } }) as Record<string, any>;
  otherLr.schedule[1].end_t = 1;
  otherLr.training.total_steps = 16;
  assert.throws(
    () => new TrainingMachine(otherLr, { hooks: [growHook()], resume: true }).train(),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError && e.problem === 'config-mismatch', String(e));
      assert.match(e.message, /was written by a different config \(2 differences\)/);
      assert.match(e.message, /optimizer\.lr_schedule\.after\.lr: checkpoint has 0\.003, this config has 0\.005/);
      assert.match(e.message, /training\.total_steps: checkpoint has 12, this config has 16/);
      return true;
    },
  );
  // Resuming after the growth without the growth hook: the model comes from the checkpoint's
  // manifest, so the hook that grew it is not needed; the run ends as the straight run does.
  const late = join(tempDir(), 'late');
  const lm = new TrainingMachine(tinyConfig(late, EXTRA), { hooks: [growHook()] });
  for (let i = 0; i < 8; i++) lm.trainStep();
  const rest = new TrainingMachine(tinyConfig(late, EXTRA), { resume: true });
  assert.deepEqual(rest.train().losses, straight().result.losses.slice(8));
  assert.equal(weightsDigest(rest), straight().digest);
  // A hook whose saved state the resumed machine lacks (or the reverse) is refused by name.
  const stateful = (name: string) => ({ name, saveState: () => 1, loadState: () => {} });
  const named = join(tempDir(), 'named');
  const nm = new TrainingMachine(tinyConfig(named, EXTRA), { hooks: [growHook(), stateful('counter')] });
  for (let i = 0; i < 4; i++) nm.trainStep();
  assert.throws(() => new TrainingMachine(tinyConfig(named, EXTRA), { hooks: [growHook()], resume: true }).train(), /holds the state of hook 'counter', which this machine does not have/);
});

test('corrupt or truncated checkpoints are refused; earlier checkpoints still resume', () => {
  const ref = straight();
  const run = join(tempDir(), 'run');
  const m = new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()] });
  for (let i = 0; i < 9; i++) m.trainStep();
  const [c4, c8] = listCheckpoints(run);
  const weights = join(c8!.path, 'model.safetensors');
  const bytes = readFileSync(weights);
  bytes[bytes.length - 5] ^= 0x40;
  writeFileSync(weights, bytes);
  assert.throws(() => new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()], resume: true }).train(),
    (e: unknown) => e instanceof CheckpointError && e.problem === 'corrupt' && /model\.safetensors is corrupt/.test(e.message));
  bytes[bytes.length - 5] ^= 0x40;
  writeFileSync(weights, bytes);
  truncateSync(join(c8!.path, 'optimizer.safetensors'), 100);
  assert.throws(() => new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()], resume: c8!.path }).train(),
    (e: unknown) => e instanceof CheckpointError && e.problem === 'truncated' && /optimizer\.safetensors is 100 bytes/.test(e.message));
  assert.deepEqual(readdirSync(join(run, 'checkpoints')).filter((n) => n.startsWith('step-')), ['step-00000004', 'step-00000008'], 'nothing deleted');
  const r = new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()], resume: c4!.path }).train();
  assert.deepEqual(r.losses, ref.result.losses.slice(4));
  assert.throws(() => new TrainingMachine(tinyConfig(run, EXTRA), { resume: join(run, 'nope') }).train(), /does not exist/);
});

test('resumeRun continues from the folder alone (its recorded config and newest checkpoint)', () => {
  const ref = straight();
  const run = join(tempDir(), 'run');
  const m = new TrainingMachine(tinyConfig(run, EXTRA), { hooks: [growHook()] });
  for (let i = 0; i < 9; i++) m.trainStep();
  const r = TrainingMachine.resumeRun(run, { hooks: [growHook()] }).train();
  assert.equal(r.resumed_from, 8);
  assert.deepEqual(r.losses, ref.result.losses.slice(8));
  assert.throws(() => TrainingMachine.resumeRun(join(tempDir(), 'empty')), /has no config\.yaml/);
});
