// Child process of resume.test.ts (not a test file): `kill <runDir> <step>` trains and SIGKILLs
// itself right after step <step> is logged; `resume <runDir> <out.json>` resumes and finishes.
import { writeFileSync } from 'node:fs';
import { TrainingMachine } from '../../src/training/index.js';
import { growHook, tinyConfig, weightsDigest } from './machine-helpers.js';

const [mode, runDir, arg] = process.argv.slice(2);
const config = tinyConfig(runDir, { training: { checkpoint_every: 4 } });
if (mode === 'kill') {
  const at = Number(arg);
  const m = new TrainingMachine(config, { hooks: [growHook()], callbacks: [{ onStep: (s) => { if (s.step === at) process.kill(process.pid, 'SIGKILL'); } }] });
  m.train();
  process.exit(3); // never reached
} else if (mode === 'resume') {
  const m = new TrainingMachine(config, { hooks: [growHook()], resume: true });
  const r = m.train();
  writeFileSync(arg!, JSON.stringify({ losses: r.losses, resumed_from: r.resumed_from, digest: weightsDigest(m), phases: r.phases, tokens: r.tokens_seen }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
