/**
 * `stackwise forward <hf-folder> --inputs <case.safetensors> --out <result.safetensors>`: loads a
 * Hugging Face folder through our import (a PEFT adapter in the folder is applied, base frozen),
 * runs the inputs (input_ids, and attention_mask / token_type_ids / labels / position_ids when
 * present) forward and backward, and writes — atomically — what our model computes under the
 * names the golden fixtures use: logits, hidden_states.{i}, loss, grad.{hf_parameter_name} for
 * every trainable parameter (and merged_logits with an adapter). Compare the file with what
 * transformers computes to check parity on your own models.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeForwardCase, type LoadHFOptions } from '../io/hf/index.js';
import { checkStacksOption, withConfigPath } from '../training/run/index.js';
import { UsageError, parseChoice, parseStacks, printJson, requireFile, requireFolder, runCommand } from './output.js';

export interface ForwardOptions {
  inputs: string;
  out: string;
  stacks?: number | number[];
  adapter?: boolean;
  backend?: string;
  dtype?: 'float32' | 'float64';
}

export interface ForwardSummary {
  folder: string;
  inputs: string;
  out: string;
  family: string;
  adapter: boolean;
  backend: string;
  dtype: string;
  /** The loss, when the inputs hold labels. */
  loss: number | null;
  tensors: { name: string; shape: number[] }[];
  seconds: number;
}

/** Runs the case and writes the result file; returns what was written. */
export function runForward(folder: string, opts: ForwardOptions): ForwardSummary {
  requireFolder(folder, 'model folder');
  if (!existsSync(join(folder, 'config.json'))) throw new Error(`${join(folder, 'config.json')}: not found (a Hugging Face model folder holds config.json and model.safetensors)`);
  requireFile(opts.inputs, 'inputs file');
  if (existsSync(opts.out) && statSync(opts.out).isDirectory()) throw new UsageError(`--out ${opts.out}: is a folder; give the path of the .safetensors file to write`);
  checkStacksOption(folder, opts.stacks);
  const loadOpts: LoadHFOptions = { adapter: opts.adapter ?? true };
  if (opts.stacks !== undefined) loadOpts.stacks = opts.stacks;
  if (opts.backend !== undefined) loadOpts.backend = opts.backend;
  if (opts.dtype !== undefined) loadOpts.dtype = opts.dtype;
  mkdirSync(dirname(resolve(opts.out)), { recursive: true });
  const started = performance.now();
  let result;
  try {
    result = writeForwardCase(folder, opts.inputs, opts.out, loadOpts);
  } catch (e) {
    throw withConfigPath(folder, e);
  }
  const seconds = (performance.now() - started) / 1000;
  const { tensors, loaded } = result;
  const loss = tensors.get('loss');
  const summary: ForwardSummary = {
    folder: resolve(folder),
    inputs: resolve(opts.inputs),
    out: resolve(opts.out),
    family: loaded.family,
    adapter: loaded.adapter !== undefined,
    backend: loaded.model.backend.name,
    dtype: loaded.model.dtype,
    loss: loss ? Number(loss.data[0]) : null,
    tensors: [...tensors].map(([name, h]) => ({ name, shape: [...h.shape] })),
    seconds,
  };
  loaded.model.dispose();
  return summary;
}

function describeSummary(s: ForwardSummary): string {
  const names = s.tensors.map((t) => t.name);
  const hidden = names.filter((n) => n.startsWith('hidden_states.'));
  const grads = names.filter((n) => n.startsWith('grad.'));
  const shape = (n: string) => `[${s.tensors.find((t) => t.name === n)?.shape.join(', ')}]`;
  const lines = [
    `wrote ${s.tensors.length} tensors to ${s.out} (${s.family}${s.adapter ? ' + PEFT adapter' : ''}, ${s.backend} backend, ${s.dtype}, ${s.seconds.toFixed(2)} s)`,
  ];
  if (names.includes('logits')) lines.push(`  logits ${shape('logits')}`);
  if (hidden.length) lines.push(`  hidden_states.0 … hidden_states.${hidden.length - 1} ${shape(hidden[0]!)}`);
  if (s.loss !== null) lines.push(`  loss ${s.loss}`);
  else lines.push('  no labels in the inputs: no loss, no gradients');
  if (grads.length) lines.push(`  ${grads.length} gradients (grad.<hf name>)`);
  if (names.includes('merged_logits')) lines.push(`  merged_logits ${shape('merged_logits')} (adapter merged into the base weights)`);
  return lines.join('\n');
}

export function registerForwardCommand(program: Command): void {
  program
    .command('forward')
    .description('run a Hugging Face model folder on a case file and write logits, hidden states, loss and gradients (fixture names) to a safetensors file')
    .argument('<hf-folder>', 'folder with config.json and model.safetensors (a PEFT adapter in it is applied)')
    .requiredOption('--inputs <case.safetensors>', 'safetensors file with input_ids (and attention_mask, token_type_ids, labels, position_ids when present)')
    .requiredOption('--out <result.safetensors>', 'file to write (atomically): logits, hidden_states.{i}, loss, grad.{hf_name}')
    .option('--stacks <K|a,b,…>', 'group the blocks into K equal stacks, or give blocks per stack (the result does not depend on it)', parseStacks)
    .option('--no-adapter', 'ignore a PEFT adapter in the folder')
    .option('--backend <name>', 'engine backend (default: native when built)')
    .option('--dtype <dtype>', 'parameter dtype: float32 (default) or float64 (reference backend)', parseChoice(['float32', 'float64'] as const))
    .option('--json', 'print one JSON object describing what was written')
    .addHelpText('after', '\nOutput names: logits, hidden_states.0 … hidden_states.N (embeddings, then each layer; the last one after the final norm\nwhere Hugging Face does so), loss (when labels are given), grad.<hf parameter name> for every trainable parameter\n(adapter tensors by their adapter_model.safetensors keys), merged_logits (with an adapter).\n\nExit codes: 0 ok, 1 unreadable/unsupported input, 2 usage error.')
    .action(async (folder: string, opts: ForwardOptions & { json?: boolean }) => {
      await runCommand('forward', opts, () => {
        const summary = runForward(folder, opts);
        if (opts.json) printJson({ ok: true, ...summary });
        else process.stdout.write(describeSummary(summary) + '\n');
      });
    });
}
