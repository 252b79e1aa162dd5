// A Hugging Face folder in, a LoRA fine-tune, a PEFT folder out: the model and its tokenizer
// come from the folder (config.json + model.safetensors + tokenizer.json), adapters go on the
// attention projections with the base frozen, training runs on the SOTU addresses tokenized by
// the folder's own tokenizer, and the adapters are written as adapter_config.json +
// adapter_model.safetensors, which PEFT loads onto the same base model.
//
//   npm run build && node dist/examples/hf-finetune.js <hf-folder> [--tiny] [--steps N] [--out DIR]
import { join } from 'node:path';
import { applyLora } from 'stackwise/nn';
import { loadPretrained, savePeftAdapter } from 'stackwise/io';
import { TrainingMachine } from 'stackwise/training';
import { exampleArgs } from './args.js';

const args = exampleArgs('runs/example-hf-finetune');
const folder = args.rest[0];
if (!folder) {
  process.stderr.write('usage: node dist/examples/hf-finetune.js <hf-folder> [--tiny] [--steps N] [--out DIR]\n(a Hugging Face causal LM folder with config.json, model.safetensors and a byte-level BPE tokenizer.json, e.g. one written by `stackwise export`)\n');
  process.exit(2);
}

// The pretrained model and tokenizer.
const pretrained = loadPretrained(folder);
if (pretrained.objective !== 'clm') throw new Error(`${folder}: this example fine-tunes a causal LM; the folder holds a ${pretrained.objective} model`);
const model = pretrained.model;
const before = model.numParameters();

// LoRA on q and v (PEFT semantics: every other parameter is frozen).
const adapted = applyLora(model, { rank: 8, alpha: 16, targets: ['q', 'v'], seed: 0 });
console.log(`${folder}: ${before} parameters; LoRA on ${adapted.length} layers, ${model.numParameters({ trainableOnly: true })} trainable`);

// The data plane tokenizes with the folder's tokenizer (kind hf); the machine trains the model given.
const seqLen = Math.min(args.tiny ? 16 : 128, model.config.embedding.maxPositions ?? 128);
const config = {
  data: { corpus: 'sotu', tokenizer: { kind: 'hf', path: folder }, seq_len: seqLen, batch_size: args.tiny ? 4 : 16, objective: 'clm', eval_batches: 4 },
  optimizer: { lr: 1e-3, lr_schedule: { kind: 'warmup', warmup_fraction: 0.1, after: { kind: 'cosine', final_fraction: 0.1 } }, weight_decay: 0, clip_norm: 1 },
  training: { total_steps: args.steps ?? (args.tiny ? 12 : 400), seed: 0, progress: 'off', eval_at_phase_end: true, run_dir: join(args.out, 'run') },
};
const machine = new TrainingMachine(config, { model });
const first = machine.evaluate('manual');
const result = machine.train();
machine.dispose();
console.log(`validation loss ${first?.loss.toFixed(4)} → ${result.final_eval?.loss.toFixed(4)} after ${result.steps_run} steps`);

// The adapters as a PEFT folder.
const peft = join(args.out, 'peft');
const info = savePeftAdapter(model, peft, { baseModelName: folder });
console.log(`PEFT adapter written to ${peft} (${info.modules.length} modules: ${info.modules.slice(0, 4).join(", ")}${info.modules.length > 4 ? ", …" : ""})`);
console.log(JSON.stringify({ example: 'hf-finetune', steps: result.steps_run, val_loss_before: first?.loss ?? null, val_loss_after: result.final_eval?.loss ?? null, peft, peft_modules: info.modules.length, trainable: model.numParameters({ trainableOnly: true }) }));
