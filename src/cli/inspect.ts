/**
 * `stackwise inspect <folder>`: the module tree of a Hugging Face folder (config.json +
 * model.safetensors, optionally a PEFT adapter) as our import builds it — embedding, stacks,
 * blocks, head — with parameter counts, bytes, dtypes and trainable/frozen state.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { inspectHF, readHFModelConfig, readJson, type LoadHFOptions } from '../io/hf/index.js';
import { decodeHeader, readHeaderLength } from '../io/safetensors-header.js';
import { numBlocks, stackSizes, type ModuleInfo } from '../nn/index.js';
import {
  UsageError, formatTable, humanBytes, humanCount, parseNonNegativeInt, parseStacks, printJson, requireFolder, runCommand,
} from './output.js';

/** One weight file's header facts (read without loading the tensors). */
export interface WeightFileInfo {
  file: string;
  tensors: number;
  bytes: number;
  /** Element count per safetensors dtype. */
  dtypes: Record<string, number>;
}

export interface InspectReport {
  folder: string;
  modelType: string;
  family: string;
  architectures: string[];
  layers: number;
  /** Blocks per stack. */
  stacks: number[];
  adapter: null | { type: string; r: number | null; alpha: number | null; targetModules: unknown; modules: string[]; linears: string[] };
  weights: WeightFileInfo[];
  totals: { parameters: number; trainable: number; frozen: number; bytes: number; dtypes: Record<string, number> };
  /** Tensors of the checkpoint that were not loaded (buffers, tied aliases). */
  skipped: string[];
  notes: string[];
  tree: ModuleInfo;
}

export interface InspectOptions {
  stacks?: number | number[];
  /** Apply a PEFT adapter found in the folder (default true). */
  adapter?: boolean;
  backend?: string;
}

/** Header facts of a safetensors file: tensor count, data bytes and elements per dtype. */
export function weightFileInfo(path: string): WeightFileInfo {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = new Uint8Array(Math.min(8, size));
    readSync(fd, prefix, 0, prefix.length, 0);
    const headerLength = readHeaderLength(prefix, size, path);
    const header = new Uint8Array(headerLength);
    let done = 0;
    while (done < headerLength) {
      const n = readSync(fd, header, done, headerLength - done, 8 + done);
      if (n === 0) break;
      done += n;
    }
    const layout = decodeHeader(header, size - 8 - headerLength, path);
    const dtypes: Record<string, number> = {};
    let bytes = 0;
    for (const e of layout.entries) {
      const numel = e.shape.reduce((a, b) => a * b, 1);
      dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + numel;
      bytes += e.end - e.begin;
    }
    return { file: basename(path), tensors: layout.entries.length, bytes, dtypes };
  } finally {
    closeSync(fd);
  }
}

/** The weight files of an HF folder (single file or shards, plus a PEFT adapter). */
function weightFiles(folder: string, withAdapter: boolean): string[] {
  const files: string[] = [];
  if (existsSync(join(folder, 'model.safetensors'))) files.push(join(folder, 'model.safetensors'));
  else if (existsSync(join(folder, 'model.safetensors.index.json'))) {
    const idx = readJson(join(folder, 'model.safetensors.index.json'));
    const map = idx.weight_map;
    if (map && typeof map === 'object') {
      for (const shard of new Set(Object.values(map as Record<string, unknown>))) {
        if (typeof shard === 'string' && !shard.includes('/') && !shard.includes('\\')) files.push(join(folder, shard));
      }
    }
  }
  if (withAdapter && existsSync(join(folder, 'adapter_model.safetensors'))) files.push(join(folder, 'adapter_model.safetensors'));
  return files;
}

/**
 * Errors of the HF config parser name the field as "config.json: 'key' …"; give the full path
 * of the file instead so the message can be acted upon.
 */
export function withConfigPath(folder: string, error: unknown): unknown {
  if (error instanceof Error && error.name === 'HFConfigError' && error.message.startsWith('config.json')) {
    const e = new Error(`${join(folder, 'config.json')}${error.message.slice('config.json'.length)}`);
    e.name = error.name;
    return e;
  }
  return error;
}

/**
 * Checks that `stacks` fits the folder's layer count; a misfit is a usage error (exit 2).
 * Returns the layer count.
 */
export function checkStacksOption(folder: string, stacks: number | number[] | undefined): number {
  let layers: number;
  try {
    layers = numBlocks(readHFModelConfig(folder));
  } catch (e) {
    throw withConfigPath(folder, e);
  }
  if (stacks !== undefined) {
    try {
      stackSizes(layers, stacks);
    } catch (e) {
      throw new UsageError(`--stacks ${Array.isArray(stacks) ? stacks.join(',') : stacks}: ${(e as Error).message.replace(/^stacks: /, '')}`);
    }
  }
  return layers;
}

/** Everything `inspect` prints, as data. */
export function inspectFolder(folder: string, opts: InspectOptions = {}): InspectReport {
  requireFolder(folder, 'model folder');
  if (!existsSync(join(folder, 'config.json'))) throw new Error(`${join(folder, 'config.json')}: not found (a Hugging Face model folder holds config.json and model.safetensors)`);
  const layers = checkStacksOption(folder, opts.stacks);
  const loadOpts: LoadHFOptions = { adapter: opts.adapter ?? true, allowNonFinite: true }; // NaN/Inf tensors are shown as notes
  if (opts.stacks !== undefined) loadOpts.stacks = opts.stacks;
  if (opts.backend !== undefined) loadOpts.backend = opts.backend;
  let result;
  try {
    result = inspectHF(folder, loadOpts);
  } catch (e) {
    throw withConfigPath(folder, e);
  }
  const { info, loaded } = result;
  try {
    const cfg = loaded.hfConfig;
    const rack = loaded.model.rack;
    const stacks = rack.stacks.toArray().map((s) => s.length);
    let adapter: InspectReport['adapter'] = null;
    if (loaded.adapter) {
      const c = loaded.adapter.config;
      adapter = {
        type: typeof c.peft_type === 'string' ? c.peft_type : 'LORA',
        r: typeof c.r === 'number' ? c.r : null,
        alpha: typeof c.lora_alpha === 'number' ? c.lora_alpha : null,
        targetModules: c.target_modules ?? null,
        modules: loaded.adapter.modules,
        linears: loaded.adapter.linears,
      };
    }
    const dtypes: Record<string, number> = {};
    for (const [k, v] of Object.entries(info.dtypes)) if (v !== undefined) dtypes[k] = v;
    return {
      folder: resolve(folder),
      modelType: String(cfg.model_type ?? ''),
      family: loaded.family,
      architectures: Array.isArray(cfg.architectures) ? cfg.architectures.map(String) : [],
      layers,
      stacks,
      adapter,
      weights: weightFiles(folder, loaded.adapter !== undefined).map(weightFileInfo),
      totals: {
        parameters: info.numParameters,
        trainable: info.trainableParameters,
        frozen: info.numParameters - info.trainableParameters,
        bytes: info.bytes,
        dtypes,
      },
      skipped: loaded.skipped,
      notes: loaded.notes,
      tree: info,
    };
  } finally {
    loaded.model.dispose();
  }
}

// ---- text rendering ------------------------------------------------------------------------------

/** A node of the displayed tree: ModuleLists are collapsed into their parent. */
interface ViewNode {
  label: string;
  info: ModuleInfo;
  /** Global layer index of a Block (its HF layer number). */
  layer?: number;
  children: ViewNode[];
}

function viewTree(info: ModuleInfo): ViewNode {
  let layer = 0;
  const build = (m: ModuleInfo, label: string): ViewNode => {
    const children: ViewNode[] = [];
    // Blocks are numbered in order of appearance (pre-order): the HF layer index.
    const self = m.type === 'Block' ? layer++ : undefined;
    for (const c of m.children) {
      const name = c.path.split('.').pop() ?? c.path;
      if (c.type === 'ModuleList') {
        for (const g of c.children) {
          const idx = g.path.split('.').pop() ?? '';
          const l = g.type === 'Stack' ? `stack ${idx}` : g.type === 'Block' ? `block ${idx}` : `${name}.${idx}`;
          children.push(build(g, l));
        }
      } else {
        children.push(build(c, name));
      }
    }
    const node: ViewNode = { label, info: m, children };
    if (self !== undefined) node.layer = self;
    return node;
  };
  return build(info, 'model');
}

function dtypeText(d: Partial<Record<string, number>>): string {
  const entries = Object.entries(d).filter(([, n]) => (n ?? 0) > 0);
  if (entries.length === 0) return '-';
  if (entries.length === 1) return entries[0]![0];
  return entries.map(([k, n]) => `${k}:${humanCount(n!)}`).join(' ');
}

function stateText(m: ModuleInfo): string {
  if (m.numParameters === 0) return '';
  if (m.trainableParameters === 0) return 'frozen';
  if (m.trainableParameters === m.numParameters) return 'trainable';
  return 'partial';
}

function detailsText(m: ModuleInfo, layer: number | undefined): string {
  const a = m.attributes;
  const parts: string[] = [];
  const rest = { ...a };
  if (m.type === 'Rack') {
    parts.push(`${a.stacks} stack${a.stacks === 1 ? '' : 's'}, ${a.blocks} block${a.blocks === 1 ? '' : 's'}`);
    delete rest.stacks; delete rest.blocks;
  } else if (m.type === 'Stack') {
    parts.push(`${a.blocks} block${a.blocks === 1 ? '' : 's'}`);
    delete rest.blocks;
  } else if (m.type === 'Block') {
    if (layer !== undefined) parts.push(`layer ${layer}`);
    if (a.attention !== undefined) parts.push(String(a.attention));
    if (a.attentionKind !== undefined && a.attentionKind !== 'standard') parts.push(String(a.attentionKind));
    if (a.heads !== undefined) parts.push(a.kvHeads !== undefined && a.kvHeads !== a.heads ? `${a.heads} heads/${a.kvHeads} kv` : `${a.heads} heads`);
    if (a.norm !== undefined) parts.push(String(a.norm).replace('/', ' '));
    if (a.ffn !== undefined) parts.push(String(a.ffn));
    if (a.lora !== undefined) parts.push(`lora ${a.lora}`);
    for (const k of ['attention', 'attentionKind', 'heads', 'kvHeads', 'norm', 'ffn', 'lora']) delete rest[k];
  }
  for (const [k, v] of Object.entries(rest)) parts.push(`${k}=${v}`);
  return parts.join(', ');
}

export interface FormatInspectOptions {
  /** Levels of the (collapsed) tree to show: 1 = embedding/rack/head, 3 = blocks (default), Infinity = all. */
  depth?: number;
  /** List every parameter with its shape, dtype and state. */
  parameters?: boolean;
}

/** The text `stackwise inspect` prints. */
export function formatInspect(report: InspectReport, opts: FormatInspectOptions = {}): string {
  const depth = opts.depth ?? 3;
  const out: string[] = [];
  const t = report.totals;
  const arch = report.architectures.length ? ` (${report.architectures.join(', ')})` : '';
  const head: string[][] = [
    ['folder', report.folder],
    ['model', `${report.modelType}${arch}: ${report.layers} layers in ${report.stacks.length} stack${report.stacks.length === 1 ? '' : 's'} [${report.stacks.join(', ')}]`],
  ];
  if (report.adapter) {
    const a = report.adapter;
    const targets = Array.isArray(a.targetModules) ? a.targetModules.join(', ') : a.targetModules !== null ? String(a.targetModules) : '?';
    head.push(['adapter', `PEFT ${a.type} r=${a.r ?? '?'} alpha=${a.alpha ?? '?'} on ${targets} (${a.modules.length} modules; base frozen)`]);
  }
  for (const w of report.weights) {
    head.push(['weights', `${w.file}: ${w.tensors} tensors, ${humanBytes(w.bytes)}, ${Object.entries(w.dtypes).map(([k, n]) => (Object.keys(w.dtypes).length > 1 ? `${k}:${humanCount(n)}` : k)).join(' ')}`]);
  }
  head.push(['parameters', `${humanCount(t.parameters)} (${t.parameters}); trainable ${humanCount(t.trainable)}, frozen ${humanCount(t.frozen)}; ${humanBytes(t.bytes)} in memory as ${dtypeText(t.dtypes)}`]);
  if (report.skipped.length) head.push(['skipped', report.skipped.join(', ')]);
  for (const n of report.notes) head.push(['note', n]);
  out.push(formatTable(head));
  out.push('');

  const rows: string[][] = [['module', 'type', 'params', 'trainable', 'bytes', 'dtype', 'state', 'details']];
  const walk = (n: ViewNode, prefix: string, childPrefix: string, level: number) => {
    const m = n.info;
    rows.push([prefix + n.label, m.type, humanCount(m.numParameters), humanCount(m.trainableParameters), humanBytes(m.bytes), dtypeText(m.dtypes), stateText(m), detailsText(m, n.layer)]);
    const kids: { label: string; node?: ViewNode; param?: ModuleInfo['parameters'][number] }[] = [];
    if (opts.parameters) for (const p of m.parameters) kids.push({ label: p.name.split('.').pop() ?? p.name, param: p });
    if (level < depth) for (const c of n.children) kids.push({ label: c.label, node: c });
    kids.forEach((k, i) => {
      const last = i === kids.length - 1;
      const branch = childPrefix + (last ? '└─ ' : '├─ ');
      const next = childPrefix + (last ? '   ' : '│  ');
      if (k.node) walk(k.node, branch, next, level + 1);
      else {
        const p = k.param!;
        rows.push([`${branch}· ${k.label}`, `[${p.shape.join(', ')}]`, humanCount(p.numel), p.trainable ? humanCount(p.numel) : '0', humanBytes(p.bytes), p.dtype, p.trainable ? 'trainable' : 'frozen', p.aliasOf ? `tied to ${p.aliasOf}` : '']);
      }
    });
  };
  walk(viewTree(report.tree), '', '', 0);
  out.push(formatTable(rows, ['l', 'l', 'r', 'r', 'r', 'l', 'l', 'l']));
  return out.join('\n');
}

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('show the embedding / stacks / blocks / head tree of a Hugging Face model folder with parameter counts, bytes, dtypes and trainable/frozen state')
    .argument('<folder>', 'folder with config.json and model.safetensors (and optionally adapter_config.json + adapter_model.safetensors)')
    .option('--stacks <K|a,b,…>', 'group the blocks into K equal stacks, or give blocks per stack (default: 1 stack)', parseStacks)
    .option('--depth <n>', 'tree levels to show: 1 = embedding/rack/head, 3 = blocks (default 3), 0 = everything', parseNonNegativeInt)
    .option('--parameters', 'list every parameter with its shape, dtype and state')
    .option('--no-adapter', 'ignore a PEFT adapter in the folder')
    .option('--backend <name>', 'engine backend to build the model on (default: native when built)')
    .option('--json', 'print one JSON object (the whole tree) instead of text')
    .addHelpText('after', '\nExit codes: 0 ok, 1 unreadable/unsupported model folder, 2 usage error.')
    .action(async (folder: string, opts: { stacks?: number | number[]; depth?: number; parameters?: boolean; adapter: boolean; backend?: string; json?: boolean }) => {
      await runCommand('inspect', opts, () => {
        const report = inspectFolder(folder, { stacks: opts.stacks, adapter: opts.adapter, backend: opts.backend });
        if (opts.json) printJson({ ok: true, ...report });
        else process.stdout.write(formatInspect(report, { depth: opts.depth === 0 ? Infinity : opts.depth, parameters: opts.parameters }) + '\n');
      });
    });
}
