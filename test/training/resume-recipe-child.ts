// Child process of resume-recipes.test.ts (not a test file): `<recipe> <runDir> <out.json>`
// resumes the run from its newest checkpoint in a fresh process, trains it to the end and writes
// its losses, where it resumed from and its weights' digest.
import { writeFileSync } from 'node:fs';
import { TrainingMachine } from '../../src/training/index.js';
import { weightsDigest } from './machine-helpers.js';
import { recipeConfig } from './recipe-sets.js';

const [name, runDir, out] = process.argv.slice(2);
const m = new TrainingMachine(recipeConfig(name!, runDir!), { resume: true, log: () => {} });
const r = m.train();
writeFileSync(out!, JSON.stringify({ losses: r.losses, resumed_from: r.resumed_from, digest: weightsDigest(m), stacks: m.model.model.rack.numStacks }));
m.dispose();
