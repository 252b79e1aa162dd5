// `stackwise serve` over HTTP: only files of run folders (every traversal, encoding and symlink
// variant is a 404), bounded and read-only responses, the Host check, malformed and half-written
// metrics lines skipped and counted, live deltas over server-sent events, and the CLI.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_FILE_BYTES, RunServer, isLoopbackHost, type RunView } from '../../../src/io/serve/index.js';
import { BIN, ROOT } from '../../cli/support.js';

const SECRET = 'TOP SECRET outside the runs';
let base = '';
let root = '';
let server: RunServer;
let port = 0;

const step = (i: number) => JSON.stringify({ type: 'step', step: i, t: i / 10, phase: 'one', loss: 3 - i * 0.1, lr: 0.01, lrs: { default: 0.01 }, tokens_seen: 64 * (i + 1), flops_seen: 1000 * (i + 1), tokens_per_s: 1000, step_ms: 5 });

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'sw-serve-http-'));
  root = join(base, 'runs');
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), SECRET);
  writeFileSync(join(outside, 'metrics.jsonl'), `${step(0)}\n`);
  const run = join(root, 'run-a');
  mkdirSync(join(run, 'phases'), { recursive: true });
  writeFileSync(join(run, 'config.yaml'), 'model: { preset: llama, d_model: 16, n_stacks: 2 }\ntraining: { total_steps: 10 }\n');
  writeFileSync(join(run, 'phases', '00-one.yaml'), 'name: one\n');
  writeFileSync(join(run, 'report.html'), '<!DOCTYPE html><p>report</p>');
  // Three good steps, two malformed lines between them and a half-written fourth step.
  const half = step(3).slice(0, 25);
  writeFileSync(join(run, 'metrics.jsonl'), [step(0), '{"type":"step",', step(1), 'not json at all', step(2)].join('\n') + '\n' + half);
  symlinkSync(join(outside, 'secret.txt'), join(run, 'leak'));
  symlinkSync(outside, join(run, 'outdir'));
  symlinkSync('config.yaml', join(run, 'inner'));
  const fd = openSync(join(run, 'big.bin'), 'w');
  ftruncateSync(fd, MAX_FILE_BYTES + 1);
  closeSync(fd);
  symlinkSync(outside, join(root, 'evil'));
  mkdirSync(join(root, 'not-a-run'));
  writeFileSync(join(root, 'not-a-run', 'notes.txt'), SECRET);
  writeFileSync(join(root, 'loose.txt'), SECRET);
  server = new RunServer({ root, port: 0, pollMs: 50 });
  port = Number(new URL(await server.start()).port);
});

after(async () => {
  await server.close();
  rmSync(base, { recursive: true, force: true });
});

interface Reply { status: number; body: string; headers: IncomingHttpHeaders }

/** A request with the path sent exactly as written (no client-side normalisation). */
function get(path: string, opts: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', fail);
    req.end();
  });
}

test('binds to loopback by default and serves the pages, the list and a run folder\'s files', async () => {
  assert.equal(server.host, '127.0.0.1');
  assert.ok(server.url.startsWith('http://127.0.0.1:'));
  assert.ok(isLoopbackHost('localhost') && isLoopbackHost('::1') && isLoopbackHost('127.0.0.2'));
  assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('192.168.1.5'));
  const home = await get('/');
  assert.equal(home.status, 200);
  assert.match(home.body, /data-page="list"/);
  assert.match(String(home.headers['content-security-policy']), /script-src 'self'/);
  const list = JSON.parse((await get('/api/runs')).body) as { runs: { name: string; config: string; steps: number }[] };
  assert.deepEqual(list.runs.map((r) => r.name), ['run-a'], 'only real run folders: not a symlink out, not a folder without metrics or config');
  assert.equal(list.runs[0]!.config, 'llama d16 · 2 stacks · 10 steps');
  assert.equal((await get('/static/uplot.js')).status, 200);
  for (const path of ['/files/run-a/config.yaml', '/files/run-a/inner', '/files/run-a/phases/00-one.yaml', '/files/run-a/c%6Fnfig.yaml']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.match(r.body, /preset: llama|name: one/, path);
  }
  const report = await get('/files/run-a/report.html');
  assert.equal(report.status, 200);
  assert.match(String(report.headers['content-security-policy']), /^sandbox/, 'a run\'s HTML runs no script in the dashboard\'s origin');
  assert.equal((await get('/run/run-a')).status, 200);
  assert.equal((await get('/run/nope')).status, 404);
});

test('path traversal, absolute paths, encoded variants and symlinks out are all 404', async () => {
  const abs = encodeURIComponent(join(base, 'outside', 'secret.txt'));
  const refused = [
    '/files/run-a/../../outside/secret.txt',
    '/files/run-a/../../../../../../etc/passwd',
    '/files/run-a/%2e%2e/%2e%2e/outside/secret.txt',
    '/files/run-a/%2E%2E/%2E%2E/outside/secret.txt',
    '/files/run-a/..%2f..%2foutside%2fsecret.txt',
    '/files/run-a/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt',
    '/files/run-a/..%5c..%5coutside%5csecret.txt',
    '/files/run-a/%252e%252e/%252e%252e/outside/secret.txt',
    '/files/run-a/./config.yaml',
    '/files/%2e%2e/outside/secret.txt',
    '/files/../outside/secret.txt',
    '/files//etc/passwd',
    '/files/run-a//etc/passwd',
    '/files/run-a/%2fetc%2fpasswd',
    `/files/run-a/${abs}`,
    `/files/${abs}`,
    '/files/run-a/leak',
    '/files/run-a/outdir/secret.txt',
    '/files/evil/secret.txt',
    '/files/evil/metrics.jsonl',
    '/files/not-a-run/notes.txt',
    '/files/loose.txt',
    '/files/run-a/config.yaml%00.txt',
    '/files/run-a/%',
    '/files/run-a/%zz',
    '/files/run-a/phases',
    '/files/run-a',
    '/run/..%2fevil',
    '/api/runs/..',
    '/api/runs/%2e%2e',
    '/api/runs/evil',
    '/static/../package.json',
    '/static/%2e%2e/app.js',
  ];
  for (const path of refused) {
    const r = await get(path);
    assert.equal(r.status, 404, `${path} → ${r.status}`);
    assert.ok(!r.body.includes(SECRET) && !r.body.includes('root:'), path);
  }
});

test('responses are bounded, the server is read-only and checks the Host header', async () => {
  const big = await get('/files/run-a/big.bin');
  assert.equal(big.status, 413);
  assert.match(big.body, /larger than/);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await get('/api/runs', { method });
    assert.equal(r.status, 405, method);
  }
  assert.equal((await get('/', { host: 'attacker.example' })).status, 403, 'DNS rebinding: a foreign Host is refused');
  assert.equal((await get('/', { host: `localhost:${port}` })).status, 200);
  assert.equal((await get('/', { host: `127.0.0.1:${port + 1}` })).status, 403);
});

test('malformed lines are skipped and counted; a half-written line arrives live once complete', async () => {
  const view = JSON.parse((await get('/api/runs/run-a')).body) as RunView;
  assert.deepEqual(view.steps.step, [0, 1, 2]);
  assert.equal(view.counts.malformed, 2);
  assert.ok(view.counts.pending_bytes > 0, 'the half-written line waits');
  assert.deepEqual(view.steps.tokens, [64, 128, 192]);
  assert.deepEqual(view.steps.lrs, { default: [0.01, 0.01, 0.01] });

  // Server-sent events: the whole view first, then only the new step once its line is complete.
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const stream = await new Promise<import('node:http').IncomingMessage>((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/stream?runs=run-a' }, ok);
    req.on('error', fail);
    req.end();
  });
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
    }
  });
  const waitFor = async (pred: () => boolean, what: string) => {
    const until = Date.now() + 5000;
    while (!pred()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await waitFor(() => events.length >= 1, 'the first event');
    const first = events[0]!.data as { steps: { from: number; step: number[] }; counts: { malformed: number } };
    assert.equal(first.steps.from, 0);
    assert.deepEqual(first.steps.step, [0, 1, 2]);
    appendFileSync(join(root, 'run-a', 'metrics.jsonl'), `${step(3).slice(25)}\n{"broken"\n`);
    await waitFor(() => events.length >= 2, 'the update');
    const next = events[1]!.data as { steps: { from: number; step: number[]; loss: number[] }; counts: { malformed: number; pending_bytes: number } };
    assert.equal(next.steps.from, 3, 'only the new point is sent');
    assert.deepEqual(next.steps.step, [3]);
    assert.equal(next.counts.malformed, 3);
    assert.equal(next.counts.pending_bytes, 0);
    assert.ok(!('phases' in next) || Array.isArray(next['phases' as never]));
  } finally {
    stream.destroy();
  }
});

test('stackwise serve: prints the URL, serves, stops on Ctrl-C with exit 0', async () => {
  const child = spawn(process.execPath, [BIN, 'serve', root, '--port', '0', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => { out += c; });
    const until = Date.now() + 15_000;
    while (!out.includes('\n')) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`no listening line; stdout ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const listening = JSON.parse(out.split('\n')[0]!) as { type: string; url: string; host: string; runs: number };
    assert.equal(listening.type, 'listening');
    assert.equal(listening.host, '127.0.0.1');
    assert.equal(listening.runs, 1);
    const res = await fetch(new URL('api/runs', listening.url));
    assert.equal(res.status, 200);
    const code = new Promise<number | null>((ok) => child.on('exit', (c) => ok(c)));
    child.kill('SIGINT');
    assert.equal(await code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
