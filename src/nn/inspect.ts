/** A printable tree of a model: modules with their parameter counts, bytes and dtypes. */
import { formatBytes, type DType } from '../engine/index.js';
import { Module } from './module.js';
import { Block, Rack, Stack } from './block.js';
import { LatentAttention, LinearAttention } from './attention.js';
import { ClassificationHead, TokenHead } from './heads.js';

export interface ParameterInfo {
  name: string;
  shape: number[];
  dtype: DType;
  numel: number;
  bytes: number;
  trainable: boolean;
  /** The name under which a shared (tied) tensor was first listed, when this is an alias. */
  aliasOf?: string;
}

export interface ModuleInfo {
  /** Dotted path ('' for the root). */
  path: string;
  type: string;
  /** Parameters of the whole subtree (shared tensors counted once). */
  numParameters: number;
  trainableParameters: number;
  bytes: number;
  /** Parameter count per dtype in the subtree. */
  dtypes: Partial<Record<DType, number>>;
  frozen: boolean;
  /** Extra facts: block/stack counts, attention mode, LoRA… */
  attributes: Record<string, string | number | boolean>;
  parameters: ParameterInfo[];
  children: ModuleInfo[];
}

export function inspectModel(model: Module): ModuleInfo {
  const firstName = new Map(model.namedParameters().map(([n, t]) => [t, n]));
  const build = (m: Module, path: string): ModuleInfo => {
    const params: ParameterInfo[] = m.ownParameters().map(([n, t]) => {
      const name = path ? `${path}.${n}` : n;
      const first = firstName.get(t);
      const info: ParameterInfo = { name, shape: [...t.shape], dtype: t.dtype, numel: t.size, bytes: t.bytes, trainable: t.requiresGrad };
      if (first !== undefined && first !== name) info.aliasOf = first;
      return info;
    });
    const children = m.namedChildren().map(([n, c]) => build(c, path ? `${path}.${n}` : n));
    const dtypes: Partial<Record<DType, number>> = {};
    for (const t of m.parameters()) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + t.size;
    const attributes: Record<string, string | number | boolean> = {};
    if (m instanceof Rack) { attributes.stacks = m.numStacks; attributes.blocks = m.numBlocks; }
    if (m instanceof Stack) attributes.blocks = m.length;
    if (m instanceof Block) {
      attributes.attention = m.attn.causal ? 'causal' : 'bidirectional';
      attributes.attentionKind = m.attn.kind;
      if (m.attn instanceof LinearAttention) {
        attributes.featureMap = m.attn.featureMap;
        if (m.attn.featureMap === 'favor') attributes.features = m.attn.features;
      }
      if (m.attn instanceof LatentAttention) { attributes.kvRank = m.attn.kvRank; if (m.attn.ropeDim > 0) attributes.ropeDim = m.attn.ropeDim; }
      attributes.heads = m.attn.nHeads;
      attributes.kvHeads = m.attn.nKvHeads;
      attributes.norm = `${m.config.norm}/${m.config.normPosition}`;
      attributes.ffn = m.config.ffn;
      const lora = [...m.loraTargets()].filter(([, l]) => l.lora).map(([t]) => t);
      if (lora.length) attributes.lora = lora.join(',');
    }
    // A head trained through LoRA: the adapter on its decoder (token heads) or classifier.
    if (m instanceof TokenHead && m.lora) attributes.lora = `decoder r=${m.lora.rank} alpha=${m.lora.alpha}`;
    if (m instanceof ClassificationHead && m.classifier.lora) attributes.lora = `classifier r=${m.classifier.lora.rank} alpha=${m.classifier.lora.alpha}`;
    return {
      path,
      type: m.typeName,
      numParameters: m.numParameters(),
      trainableParameters: m.numParameters({ trainableOnly: true }),
      bytes: m.numBytes(),
      dtypes,
      frozen: m.isFrozen,
      attributes,
      parameters: params,
      children,
    };
  };
  return build(model, '');
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/**
 * Text rendering of inspectModel's tree, down to `depth` levels (default: to the blocks);
 * parameters are listed only with `parameters: true`.
 */
export function formatModelTree(info: ModuleInfo, opts: { depth?: number; parameters?: boolean } = {}): string {
  const lines: string[] = [];
  const maxDepth = opts.depth ?? Infinity;
  const walk = (m: ModuleInfo, depth: number, indent: string) => {
    const dt = Object.entries(m.dtypes).map(([d, n]) => `${d}:${human(n!)}`).join(' ');
    const attrs = Object.entries(m.attributes).map(([k, v]) => `${k}=${v}`).join(' ');
    const name = m.path === '' ? '(model)' : m.path.split('.').pop();
    lines.push(`${indent}${name} ${m.type}  params=${human(m.numParameters)} trainable=${human(m.trainableParameters)} ${formatBytes(m.bytes)} ${dt}${m.frozen ? ' frozen' : ''}${attrs ? '  ' + attrs : ''}`);
    if (opts.parameters) {
      for (const p of m.parameters) lines.push(`${indent}  · ${p.name.split('.').pop()} ${p.dtype}[${p.shape.join(', ')}]${p.trainable ? '' : ' frozen'}${p.aliasOf ? ` (= ${p.aliasOf})` : ''}`);
    }
    if (depth + 1 > maxDepth) return;
    for (const c of m.children) walk(c, depth + 1, indent + '  ');
  };
  walk(info, 0, '');
  return lines.join('\n');
}
