/**
 * `stackwise inspect <folder>`: the module tree of a Hugging Face folder or of a StackWise run /
 * checkpoint — embedding, stacks, blocks, head — with parameter counts, bytes, dtypes and
 * trainable/frozen state. The report comes from the library (src/training/run/inspect.ts:
 * inspectFolder); this file renders it as text and registers the command.
 */
import type { Command } from 'commander';
import { formatBytes, STORAGE_FORMATS, type StorageFormat } from '../engine/index.js';
import type { ModuleInfo } from '../nn/index.js';
import { inspectFolder, type InspectReport } from '../training/run/index.js';
import { formatTable, humanCount, parseChoice, parseNonNegativeInt, parseStacks, printJson, runCommand } from './output.js';

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
    head.push(['weights', `${w.file}: ${w.tensors} tensors, ${formatBytes(w.bytes)}, ${Object.entries(w.dtypes).map(([k, n]) => (Object.keys(w.dtypes).length > 1 ? `${k}:${humanCount(n)}` : k)).join(' ')}`]);
  }
  head.push(['parameters', `${humanCount(t.parameters)} (${t.parameters}); trainable ${humanCount(t.trainable)}, frozen ${humanCount(t.frozen)}; ${formatBytes(t.bytes)} in memory as ${dtypeText(t.dtypes)}`]);
  if (report.skipped.length) head.push(['skipped', report.skipped.join(', ')]);
  for (const n of report.notes) head.push(['note', n]);
  out.push(formatTable(head));
  out.push('');

  const rows: string[][] = [['module', 'type', 'params', 'trainable', 'bytes', 'dtype', 'state', 'details']];
  const walk = (n: ViewNode, prefix: string, childPrefix: string, level: number) => {
    const m = n.info;
    rows.push([prefix + n.label, m.type, humanCount(m.numParameters), humanCount(m.trainableParameters), formatBytes(m.bytes), dtypeText(m.dtypes), stateText(m), detailsText(m, n.layer)]);
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
        rows.push([`${branch}· ${k.label}`, `[${p.shape.join(', ')}]`, humanCount(p.numel), p.trainable ? humanCount(p.numel) : '0', formatBytes(p.bytes), p.dtype, p.trainable ? 'trainable' : 'frozen', p.aliasOf ? `tied to ${p.aliasOf}` : '']);
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
    .description('show the embedding / stacks / blocks / head tree of a Hugging Face model folder or a StackWise run / checkpoint with parameter counts, bytes, dtypes and trainable/frozen state')
    .argument('<folder>', 'folder with config.json and model.safetensors (and optionally adapter_config.json + adapter_model.safetensors), or a StackWise run folder (newest checkpoint) or checkpoint folder')
    .option('--stacks <K|a,b,…>', 'group the blocks into K equal stacks, or give blocks per stack (default: 1 stack)', parseStacks)
    .option('--depth <n>', 'tree levels to show: 1 = embedding/rack/head, 3 = blocks (default 3), 0 = everything', parseNonNegativeInt)
    .option('--parameters', 'list every parameter with its shape, dtype and state')
    .option('--no-adapter', 'ignore a PEFT adapter in the folder')
    .option('--backend <name>', 'engine backend to build the model on (default: native when built)')
    .option('--load-format <format>', 'storage of the rack\'s linear weights: fp32 | fp16 | bf16 | nf4 | int8, converted tensor by tensor as a Hugging Face folder is read (embeddings, norms, biases and the head stay float32; a checkpoint\'s float32 stacks are quantized once loaded). Default: as stored', parseChoice(STORAGE_FORMATS))
    .option('--json', 'print one JSON object (the whole tree) instead of text')
    .addHelpText('after', '\nExit codes: 0 ok, 1 unreadable/unsupported model folder, 2 usage error.')
    .action(async (folder: string, opts: { stacks?: number | number[]; depth?: number; parameters?: boolean; adapter: boolean; backend?: string; loadFormat?: StorageFormat; json?: boolean }) => {
      await runCommand('inspect', opts, () => {
        const report = inspectFolder(folder, { stacks: opts.stacks, adapter: opts.adapter, backend: opts.backend, loadFormat: opts.loadFormat });
        if (opts.json) printJson({ ok: true, ...report });
        else process.stdout.write(formatInspect(report, { depth: opts.depth === 0 ? Infinity : opts.depth, parameters: opts.parameters }) + '\n');
      });
    });
}
