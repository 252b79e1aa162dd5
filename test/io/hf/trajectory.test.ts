// A multi-step golden trajectory: the llama-gqa fixture trained for 10 full-batch AdamW steps by
// PyTorch (test/fixtures/hf/generate.py writes trajectory.json) and by us from the same weights,
// on the same inputs. One forward/backward is already checked tensor by tensor (golden.test.ts);
// this checks that the optimizer (decoupled weight decay, bias correction, eps placement) and the
// repeated steps agree too: every step's loss within 2e-5 relative, float32 on both sides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../../src/engine/index.js';
import { AdamW } from '../../../src/optim/index.js';
import { loadHF, readCaseInputs } from '../../../src/io/hf/index.js';
import { FIXTURES_DIR } from '../support.js';

interface Trajectory {
  optimizer: string;
  steps: number;
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  losses: number[];
  final_loss: number;
}

const dir = join(FIXTURES_DIR, 'llama-gqa');
const file = join(dir, 'trajectory.json');
const REL_TOL = 2e-5;

test('10 AdamW steps on llama-gqa follow PyTorch loss for loss', { skip: existsSync(file) ? false : `no ${file}` }, (t) => {
  const ref = JSON.parse(readFileSync(file, 'utf8')) as Trajectory;
  assert.equal(ref.optimizer, 'adamw');
  assert.equal(ref.losses.length, ref.steps);
  const { model } = loadHF(dir);
  model.eval(); // no dropout on either side
  const inputs = readCaseInputs(join(dir, 'case.safetensors'), model.backend);
  const params = model.trainableParameters().map(([, p]) => p);
  const opt = new AdamW(params, { lr: ref.lr, beta1: ref.betas[0], beta2: ref.betas[1], eps: ref.eps, weightDecay: ref.weight_decay });
  const lossOf = (train: boolean): number => E.tidy(() => {
    const { logits } = model.forward(inputs.inputIds, { attentionMask: inputs.attentionMask ?? null });
    const loss = model.loss(logits, inputs.labels!);
    const value = loss.toArray()[0]!;
    if (train) loss.backward();
    return value;
  });
  const ours: number[] = [];
  for (let k = 0; k < ref.steps; k++) {
    opt.zeroGrad();
    ours.push(lossOf(true));
    opt.step();
  }
  const final = E.noGrad(() => lossOf(false));
  const rel = [...ours, final].map((v, i) => Math.abs(v - (i < ref.steps ? ref.losses[i]! : ref.final_loss)) / Math.abs(ref.losses[0]!));
  t.diagnostic(`ours ${ours.map((v) => v.toFixed(6)).join(' ')} → ${final.toFixed(6)}; max relative difference ${Math.max(...rel).toExponential(2)}`);
  rel.forEach((r, i) => assert.ok(r <= REL_TOL, `step ${i}: ours ${i < ref.steps ? ours[i] : final}, PyTorch ${i < ref.steps ? ref.losses[i] : ref.final_loss} (relative ${r.toExponential(2)} > ${REL_TOL})`));
  // The run must have moved: a trajectory that stays put would match a constant.
  assert.ok(ref.losses[0]! - ref.final_loss > 0.5, 'the reference loss falls over the 10 steps');
  opt.dispose();
  for (const x of Object.values(inputs)) (x as E.Tensor).dispose();
  model.dispose();
});
