// `stackwise serve` end to end in a real browser: Debian's chromium driven by playwright-core.
// A tiny progressive run trains in this process step by step while the run page is open: the loss
// chart gains points without a reload, the phase bands and the growth marker appear, the status
// turns finished; then the compare page overlays it with an end-to-end run on several x axes.
// Skipped (with the reason) only when the browser cannot start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { RunServer } from '../../../src/io/serve/index.js';
import { TrainingMachine } from '../../../src/training/index.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let base = '';
let context: BrowserContext | null = null;
let skipReason = '';
let server: RunServer;
let url = '';

function config(progressive: boolean, totalSteps: number): Record<string, unknown> {
  return {
    model: { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 2, blocks_per_stack: 1, ...(progressive ? { progressive: { growth: 'copy_top' } } : {}) },
    data: { corpus: { kind: 'synthetic', vocab_size: 32, tokens: 4000 }, seq_len: 16, batch_size: 4, eval_batches: 1 },
    optimizer: { lr: 0.01 },
    training: { total_steps: totalSteps, checkpoint_every: 0, eval_every: 8 },
    ...(progressive ? { schedule: [{ name: 'one', start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }, { name: 'two', start_t: 0.5, end_t: 1 }] } : {}),
  };
}

before(async () => {
  base = mkdtempSync(join(tmpdir(), 'sw-serve-browser-'));
  server = new RunServer({ root: base, port: 0, pollMs: 100 });
  url = await server.start();
  if (!existsSync(CHROMIUM)) {
    skipReason = `no browser at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium; CHROMIUM_PATH names another)`;
    return;
  }
  try {
    // A fresh profile folder each time (playwright passes it as --user-data-dir).
    context = await chromium.launchPersistentContext(mkdtempSync(join(base, '.profile-')), { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1100, height: 900 }, timeout: 20_000 });
  } catch (e) {
    skipReason = `chromium could not start: ${(e as Error).message.split('\n')[0]}`;
  }
});

after(async () => {
  await context?.close();
  await server.close();
  rmSync(base, { recursive: true, force: true });
});

/** Lets the server's poll timer and the page run between training steps. */
const pause = (ms = 20) => new Promise((r) => setTimeout(r, ms));

async function dataset(page: Page, selector: string): Promise<Record<string, string>> {
  return page.locator(selector).evaluate((e) => ({ ...(e as HTMLElement).dataset }) as Record<string, string>);
}

async function waitForData(page: Page, selector: string, pred: (d: Record<string, string>) => boolean, what: string): Promise<Record<string, string>> {
  const until = Date.now() + 10_000;
  for (;;) {
    const d = await dataset(page, selector);
    if (pred(d)) return d;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; ${selector} has ${JSON.stringify(d)}`);
    await pause(50);
  }
}

test('the run page follows a training live: points arrive, a phase band and a growth marker appear', async (t) => {
  if (!context) { t.skip(skipReason); return; }
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const machine = new TrainingMachine(config(true, 32), { runDir: join(base, 'progressive') });
  try {
    for (let i = 0; i < 4; i++) machine.trainStep();
    await pause(300); // the server lists the new folder at its next scan
    await page.goto(`${url}run/progressive`);
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 42; });
    const early = await waitForData(page, '#loss-chart', (d) => Number(d['points']) >= 4, 'the first points');
    assert.equal(early['phases'], '1', 'phase one is drawn as a band');
    assert.equal(early['growMarkers'], '0');
    assert.equal(await page.locator('#status [data-state]').getAttribute('data-state'), 'running');

    // Steps arrive while the page is open.
    for (let i = 0; i < 6; i++) { machine.trainStep(); await pause(); }
    const later = await waitForData(page, '#loss-chart', (d) => Number(d['points']) >= 10, 'more points');
    assert.ok(Number(later['points']) > Number(early['points']));

    // Across t = 0.5 the model grows: a second band and a growth marker.
    while (machine.step < 20) { machine.trainStep(); await pause(); }
    await waitForData(page, '#loss-chart', (d) => d['growMarkers'] === '1' && d['phases'] === '2' && Number(d['points']) >= 20, 'the growth marker');
    assert.equal(await page.locator('#loss-chart .phase-band').count(), 2);
    assert.equal(await page.locator('#loss-chart .marker.grow').count(), 1);
    assert.match(String(await page.locator('#loss-chart .marker.grow').getAttribute('title')), /grow at t 0\.5.*2 stacks/);
    assert.ok(await page.locator('#events tr[data-kind="grow"]').count() >= 1, 'the events table lists the growth');

    machine.train(); // the rest, the final evaluation and checkpoint
    await waitForData(page, '#loss-chart', (d) => d['points'] === '32' && Number(d['evals']) >= 4, 'the whole run');
    await page.locator('#status [data-state="finished"]').waitFor({ timeout: 10_000 });
    assert.ok(await page.locator('#stack-chart svg').count() === 1, 'the stack timeline is drawn');
    assert.ok(await page.locator('#resources .bar-row').count() === 2, 'memory per phase: one bar per phase');
    assert.equal(await page.evaluate(() => (window as unknown as { marker: number }).marker), 42, 'the page was never reloaded');
    assert.equal(await page.locator('#counts').getAttribute('data-malformed'), '0');
    assert.deepEqual(errors, []);
  } finally {
    machine.dispose();
    await page.close();
  }
});

test('the compare page overlays two runs against step, tokens and training FLOPs', async (t) => {
  if (!context) { t.skip(skipReason); return; }
  const machine = new TrainingMachine(config(false, 16), { runDir: join(base, 'end-to-end') });
  machine.train();
  machine.dispose();
  await pause(300);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(`${url}compare?runs=progressive,end-to-end&x=step`);
    const counts = (d: Record<string, string>) => Object.fromEntries((d['runs'] ?? '').split(';').filter(Boolean).map((s) => { const [n, p, e] = s.split(':'); return [n, [Number(p), Number(e)]]; }));
    const both = (d: Record<string, string>) => { const c = counts(d); return c['progressive']?.[0] === 32 && c['end-to-end']?.[0] === 16; };
    let d = await waitForData(page, '#compare-chart', both, 'both runs on the step axis');
    assert.equal(d['x'], 'step');
    for (const x of ['tokens', 'flops', 't']) {
      await page.selectOption('#x-axis', x);
      d = await waitForData(page, '#compare-chart', (v) => v['x'] === x && both(v), `both runs on the ${x} axis`);
      assert.ok(counts(d)['progressive']![1] >= 3 && counts(d)['end-to-end']![1] >= 2, 'validation points too');
    }
    assert.match(page.url(), /x=t(&|$)/, 'the URL remembers the axis');
    assert.equal(await page.locator('#compare-notes').textContent(), '');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});
