// kill -9 of `stackwise train` at any moment — mid-run, inside checkpoint writes and pruning,
// right after the final checkpoint (while the report is written) — leaves a run that
// `stackwise train --resume` completes with exit 0: the final checkpoint bit-identical to a
// straight run, every step logged once with the same loss, the report written, and no stale
// file (temporary files, a `step-N/` without manifest) left in the folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, stackwise } from './support.js';

const STEPS = 24;

function config(dir: string): string {
  const path = join(dir, 'kill.yaml');
  writeFileSync(path, [
    'model: { preset: llama, d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 1 }',
    'data: { corpus: { kind: synthetic, vocab_size: 32, tokens: 4000 }, seq_len: 16, batch_size: 4, eval_batches: 2 }',
    'optimizer: { lr: 0.01 }',
    `training: { total_steps: ${STEPS}, checkpoint_every: 2, keep_last: 2, eval_every: 8 }`,
    'schedule:',
    '  - { name: one, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
    '  - { name: two, start_t: 0.5, end_t: 1 }',
  ].join('\n'));
  return path;
}

interface Outcome { digest: string; losses: number[]; valLoss: unknown }

/** The final checkpoint's model digest (from its manifest), the logged step losses, the final validation loss. */
function outcome(run: string, result: Record<string, unknown>): Outcome {
  const ck = join(run, 'checkpoints', `step-${String(STEPS).padStart(8, '0')}`);
  const manifest = JSON.parse(readFileSync(join(ck, 'checkpoint.json'), 'utf8')) as { files: Record<string, { sha256: string }> };
  const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).map((l) => JSON.parse(l) as { step: number; loss: number });
  assert.deepEqual(steps.map((s) => s.step), [...Array(STEPS).keys()], 'every step logged exactly once');
  return { digest: manifest.files['model.safetensors']!.sha256, losses: steps.map((s) => s.loss), valLoss: result['val_loss'] };
}

/** Stale names a killed write leaves: temporary files/folders and checkpoint folders without a manifest. */
function staleFiles(run: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (/\.tmp$|^\.tmp-|^\.old-/.test(name)) out.push(path);
      if (statSync(path).isDirectory()) {
        if (/^step-\d+$/.test(name) && !existsSync(join(path, 'checkpoint.json'))) out.push(path);
        walk(path);
      }
    }
  };
  walk(run);
  return out;
}

/** Starts a training child; kills it with SIGKILL when `when(stdout)` is true, or after `delayMs` past its start line. */
function trainAndKill(cfg: string, run: string, kill: { onLine?: RegExp; delayMs?: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'train', cfg, '--run-dir', run, '--json'], { cwd: ROOT, env: { ...process.env, STACKWISE_DEBUG: '' } });
    let out = '';
    let armed = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (kill.onLine && kill.onLine.test(out)) child.kill('SIGKILL');
      if (!armed && kill.delayMs !== undefined && out.includes('"type":"start"')) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), kill.delayMs);
      }
    });
    child.stderr.resume();
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

test('kill -9 at any moment, including after the final checkpoint: --resume completes bit-identical, exit 0, no stale file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-kill-'));
  try {
    const cfg = config(dir);
    const straightRun = join(dir, 'straight');
    const straight = stackwise('train', cfg, '--run-dir', straightRun, '--json');
    assert.equal(straight.status, 0, straight.stderr);
    const ref = outcome(straightRun, JSON.parse(straight.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>);

    // Seeded delays spread over the run (they land in steps, checkpoint writes, pruning, evaluation).
    let seed = 7;
    const delay = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % 900);
    const kills: { name: string; kill: { onLine?: RegExp; delayMs?: number } }[] = [
      { name: 'after the final checkpoint (report not yet written)', kill: { onLine: /"type":"checkpoint"[^\n]*"reason":"final"/ } },
      { name: 'right after a periodic checkpoint', kill: { onLine: /"type":"checkpoint"[^\n]*"step":10,/ } },
      { name: 'at an early random moment', kill: { delayMs: delay() } },
      { name: 'at a random moment', kill: { delayMs: delay() } },
    ];
    let killed = 0;
    for (const [i, k] of kills.entries()) {
      const run = join(dir, `killed-${i}`);
      const first = await trainAndKill(cfg, run, k.kill);
      if (first.signal === 'SIGKILL') killed++;
      else assert.equal(first.code, 0, `${k.name}: finished before the kill`);
      const resumed = stackwise('train', '--resume', run, '--json');
      assert.equal(resumed.status, 0, `${k.name}: ${resumed.stderr}`);
      const result = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
      assert.equal(result['type'], 'result', k.name);
      assert.equal(result['steps'], STEPS, k.name);
      const got = outcome(run, result);
      assert.equal(got.digest, ref.digest, `${k.name}: final weights bit-identical`);
      assert.deepEqual(got.losses, ref.losses, `${k.name}: losses bit-identical`);
      assert.equal(got.valLoss, ref.valLoss, `${k.name}: final validation loss`);
      assert.ok(existsSync(join(run, 'report.html')), `${k.name}: the report is written`);
      assert.deepEqual(staleFiles(run), [], `${k.name}: no stale file`);
    }
    t.diagnostic(`${killed} of ${kills.length} runs were killed before finishing`);
    assert.ok(killed >= 2, 'the deterministic kills happened');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
