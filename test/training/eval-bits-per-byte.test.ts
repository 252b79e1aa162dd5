// The periodic evaluation records bits per byte (causal runs with a tokenizer), and the HTML
// report shows it: checked against a computation of its own from the model's logits.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import { DataAdapter } from '../../src/framework/index.js';
import { readJsonl } from '../../src/io/index.js';
import { derivedSummary, metricsToReportData, readRunReportData, renderReportHtml } from '../../src/io/report/index.js';
import { TrainingMachine } from '../../src/training/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sw-eval-bpb-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TRAINING = { total_steps: 4, eval_every: 0, checkpoint_every: 0, progress: 'off', tensorboard: false };
const MODEL = { preset: 'llama', d_model: 16, n_heads: 2, d_ff: 32, n_stacks: 1, blocks_per_stack: 1 };

test('eval records carry bytes and bits per byte, equal to an independent count from the logits', () => {
  const run = join(dir, 'sotu');
  const m = new TrainingMachine({
    model: MODEL, data: { corpus: 'sotu', tokenizer: { kind: 'bpe', vocab_size: 300 }, seq_len: 16, batch_size: 3, objective: 'clm', eval_batches: 2 },
    optimizer: { lr: 3e-3 }, training: TRAINING,
  }, { runDir: run });
  m.train();
  const ev = readJsonl(join(run, 'metrics.jsonl')).filter((r) => r['type'] === 'eval').at(-1)!;
  assert.equal(typeof ev['bits_per_byte'], 'number');
  // Independently: log-softmax of every scored text target, its bytes from the decoded token.
  const data = m.data as DataAdapter;
  const tok = data.source.tokenizer!;
  const special = new Set(Object.values(tok.special));
  const model = m.model.model;
  model.eval();
  let nats = 0;
  let bytes = 0;
  for (const b of data.evalBatches(m.step, 1)) {
    const logits = E.tidy(() => E.noGrad(() => Float64Array.from(model.forward(E.tensor(b.inputIds, [b.batch, b.seqLen], { dtype: 'int32', backend: model.backend })).logits.toArray())));
    const V = logits.length / b.targets.length;
    b.targets.forEach((id, i) => {
      if (id === -100 || special.has(id)) return;
      const row = logits.subarray(i * V, (i + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      nats += lse - row[id]!;
      bytes += Buffer.byteLength(tok.decode([id]), 'utf8');
    });
  }
  m.dispose();
  assert.equal(ev['bytes'], bytes);
  const want = nats / Math.LN2 / bytes;
  assert.ok(Math.abs((ev['bits_per_byte'] as number) - want) <= 1e-5 * want, `bits per byte ${String(ev['bits_per_byte'])} vs ${want}`);
  // The report reads it and shows it.
  const report = readRunReportData(run);
  assert.equal(report.evals.at(-1)!.val_bpb, ev['bits_per_byte']);
  assert.equal(derivedSummary(report)['final val bits per byte'], ev['bits_per_byte']);
  assert.match(renderReportHtml(report), /final val bits per byte/);
});

test('no tokenizer (raw ids), no bits per byte; the report reads the usual aliases', () => {
  const run = join(dir, 'synthetic');
  const m = new TrainingMachine({
    model: MODEL, data: { corpus: { kind: 'synthetic', vocab_size: 40, tokens: 2000 }, seq_len: 8, batch_size: 2, eval_batches: 1 },
    optimizer: { lr: 3e-3 }, training: TRAINING,
  }, { runDir: run });
  m.train();
  m.dispose();
  const ev = readJsonl(join(run, 'metrics.jsonl')).filter((r) => r['type'] === 'eval').at(-1)!;
  assert.ok(!('bits_per_byte' in ev) && !('bytes' in ev));
  assert.ok(!('final val bits per byte' in derivedSummary(readRunReportData(run))));
  const data = metricsToReportData([{ type: 'eval', t: 0.5, step: 5, val_loss: 2, val_bpb: 1.25 }]);
  assert.equal(data.evals[0]!.val_bpb, 1.25);
});
