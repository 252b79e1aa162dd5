/**
 * `stackwise export <source> --format hf --out <folder>`: writes a model as a Hugging Face folder
 * (see src/training/run/export.ts: sources, atomic write). Parses the flags, calls the library
 * (exportModel), prints.
 */
import type { Command } from 'commander';
import { EXPORT_DTYPES, exportModel, type ExportOptions } from '../training/run/index.js';
import { parseChoice, parseStacks, printJson, runCommand } from './output.js';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('export a model as a Hugging Face folder (config.json + model.safetensors [+ PEFT adapter] + tokenizer.json, tokenizer_config.json, special_tokens_map.json) that transformers loads')
    .argument('<source>', 'model to export: a run folder (newest checkpoint), a checkpoint folder or a Hugging Face folder')
    .requiredOption('--out <folder>', 'folder to write (created; replaced only with --force)')
    .option('--format <format>', 'output format (only hf)', parseChoice(['hf'] as const), 'hf')
    .option('--dtype <dtype>', 'weight dtype in the file: F32 / float32 (default), F16 / float16 or BF16 / bfloat16; quantized (NF4, int8, …) layers are dequantized to it', parseChoice(EXPORT_DTYPES))
    .option('--adapters <mode>', 'LoRA adapters: separate (PEFT files, default), merge (fold into the weights) or drop', parseChoice(['separate', 'merge', 'drop'] as const))
    .option('--stacks <K|a,b,…>', 'stack grouping used while loading an HF folder (does not change the export)', parseStacks)
    .option('--max-shard-size <size>', 'largest weight file, as transformers writes it (2GB, 500MB, bytes; default 5GB): a bigger model is written as shards model-0000k-of-0000n.safetensors + model.safetensors.index.json')
    .option('--force', 'replace a non-empty --out folder')
    .option('--json', 'print one JSON object describing what was written')
    .addHelpText('after', '\nExit codes: 0 ok, 1 unreadable/unsupported source or write failure, 2 usage error.')
    .action(async (source: string, opts: ExportOptions & { json?: boolean }) => {
      await runCommand('export', opts, () => {
        const r = exportModel(source, opts);
        if (opts.json) printJson({ ok: true, ...r });
        else process.stdout.write(`exported ${r.source} (${r.sourceKind}) to ${r.out}: ${r.files.join(', ')}\n`);
      });
    });
}
