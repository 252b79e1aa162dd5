/**
 * Parameter-name mapping between Hugging Face checkpoints and our Module tree, per family.
 * An entry says how one HF tensor is made of our parameters:
 * - copy:      same layout;
 * - transpose: HF Conv1D weight [in, out] ↔ our Linear weight [out, in] (GPT-2);
 * - concat:    HF fused tensor = our parts joined along axis 0 (then transposed for Conv1D),
 *              e.g. GPT-2 c_attn = q | k | v.
 * Linear modules are listed too (HF module name ↔ our Linear path(s)), for PEFT adapters.
 */
import type { ModelConfig } from '../../nn/index.js';
import { HFConfigError } from './config.js';

export type MapEntry =
  | { kind: 'copy'; hf: string; ours: string }
  | { kind: 'transpose'; hf: string; ours: string }
  | { kind: 'concat'; hf: string; ours: string[]; transpose: boolean };

export interface LinearMap {
  /** HF module name, e.g. 'model.layers.0.self_attn.q_proj'. */
  hf: string;
  /** Our Linear path(s); several when HF fuses them (GPT-2 c_attn → q, k, v). */
  ours: string[];
  /** HF stores the weight as Conv1D [in, out]. */
  conv1d: boolean;
}

export interface FamilyMapping {
  entries: MapEntry[];
  linears: LinearMap[];
  /** HF keys that may appear in checkpoints but carry no parameter we need (buffers, aliases). */
  ignorable: RegExp[];
  /** HF key prefixes that may be missing in some checkpoints (e.g. 'transformer.' in gpt2). */
  optionalPrefix?: string;
}

/** Our block path for HF layer i (layers numbered across stacks). */
export function blockPaths(config: ModelConfig): string[] {
  const out: string[] = [];
  config.stacks.forEach((s, si) => {
    for (let j = 0; j < s.nBlocks; j++) out.push(`rack.stacks.${si}.blocks.${j}`);
  });
  return out;
}

function lin(entries: MapEntry[], linears: LinearMap[], hf: string, ours: string, bias: boolean, conv1d = false): void {
  entries.push(conv1d ? { kind: 'transpose', hf: `${hf}.weight`, ours: `${ours}.weight` } : { kind: 'copy', hf: `${hf}.weight`, ours: `${ours}.weight` });
  if (bias) entries.push({ kind: 'copy', hf: `${hf}.bias`, ours: `${ours}.bias` });
  linears.push({ hf, ours: [ours], conv1d });
}

function norm(entries: MapEntry[], hf: string, ours: string, bias: boolean): void {
  entries.push({ kind: 'copy', hf: `${hf}.weight`, ours: `${ours}.weight` });
  if (bias) entries.push({ kind: 'copy', hf: `${hf}.bias`, ours: `${ours}.bias` });
}

export function familyMapping(config: ModelConfig): FamilyMapping {
  const entries: MapEntry[] = [];
  const linears: LinearMap[] = [];
  const blocks = blockPaths(config);
  // A time embedding (time-as-input) has no Hugging Face tensors: mapping the rest would drop it.
  if (config.timeEmbedding) throw new HFConfigError(`a time embedding (time-as-input, model.time_embedding) has no Hugging Face ${config.family} equivalent`);
  switch (config.family) {
    case 'llama': {
      entries.push({ kind: 'copy', hf: 'model.embed_tokens.weight', ours: 'embedding.token.weight' });
      blocks.forEach((b, i) => {
        const block = blockConfigAt(config, i);
        const p = `model.layers.${i}`;
        norm(entries, `${p}.input_layernorm`, `${b}.attn_norm`, false);
        for (const [h, o] of [['q_proj', 'q'], ['k_proj', 'k'], ['v_proj', 'v']] as const) lin(entries, linears, `${p}.self_attn.${h}`, `${b}.attn.${o}`, block.qkvBias);
        lin(entries, linears, `${p}.self_attn.o_proj`, `${b}.attn.o`, block.outBias);
        norm(entries, `${p}.post_attention_layernorm`, `${b}.ffn_norm`, false);
        for (const [h, o] of [['gate_proj', 'gate'], ['up_proj', 'up'], ['down_proj', 'down']] as const) lin(entries, linears, `${p}.mlp.${h}`, `${b}.ffn.${o}`, block.ffnBias);
      });
      entries.push({ kind: 'copy', hf: 'model.norm.weight', ours: 'head.final_norm.weight' });
      if (config.head.kind === 'lm' && !config.head.tied) lin(entries, linears, 'lm_head', 'head', false);
      return { entries, linears, ignorable: [/\.rotary_emb\.inv_freq$/, ...(config.head.kind === 'lm' && config.head.tied ? [/^lm_head\.weight$/] : [])] };
    }
    case 'gpt2': {
      entries.push({ kind: 'copy', hf: 'transformer.wte.weight', ours: 'embedding.token.weight' });
      entries.push({ kind: 'copy', hf: 'transformer.wpe.weight', ours: 'embedding.position.weight' });
      blocks.forEach((b, i) => {
        const p = `transformer.h.${i}`;
        norm(entries, `${p}.ln_1`, `${b}.attn_norm`, true);
        const qkv = ['q', 'k', 'v'].map((n) => `${b}.attn.${n}`);
        entries.push({ kind: 'concat', hf: `${p}.attn.c_attn.weight`, ours: qkv.map((n) => `${n}.weight`), transpose: true });
        entries.push({ kind: 'concat', hf: `${p}.attn.c_attn.bias`, ours: qkv.map((n) => `${n}.bias`), transpose: false });
        linears.push({ hf: `${p}.attn.c_attn`, ours: qkv, conv1d: true });
        lin(entries, linears, `${p}.attn.c_proj`, `${b}.attn.o`, true, true);
        norm(entries, `${p}.ln_2`, `${b}.ffn_norm`, true);
        lin(entries, linears, `${p}.mlp.c_fc`, `${b}.ffn.up`, true, true);
        lin(entries, linears, `${p}.mlp.c_proj`, `${b}.ffn.down`, true, true);
      });
      norm(entries, 'transformer.ln_f', 'head.final_norm', true);
      if (config.head.kind === 'lm' && !config.head.tied) lin(entries, linears, 'lm_head', 'head', false);
      return {
        entries,
        linears,
        ignorable: [/\.attn\.(masked_)?bias$/, ...(config.head.kind === 'lm' && config.head.tied ? [/^lm_head\.weight$/] : [])],
        optionalPrefix: 'transformer.',
      };
    }
    case 'bert': {
      const e = 'bert.embeddings';
      entries.push({ kind: 'copy', hf: `${e}.word_embeddings.weight`, ours: 'embedding.token.weight' });
      entries.push({ kind: 'copy', hf: `${e}.position_embeddings.weight`, ours: 'embedding.position.weight' });
      if (config.embedding.typeVocabSize) entries.push({ kind: 'copy', hf: `${e}.token_type_embeddings.weight`, ours: 'embedding.token_type.weight' });
      norm(entries, `${e}.LayerNorm`, 'embedding.norm', true);
      blocks.forEach((b, i) => {
        const p = `bert.encoder.layer.${i}`;
        for (const [h, o] of [['query', 'q'], ['key', 'k'], ['value', 'v']] as const) lin(entries, linears, `${p}.attention.self.${h}`, `${b}.attn.${o}`, true);
        lin(entries, linears, `${p}.attention.output.dense`, `${b}.attn.o`, true);
        norm(entries, `${p}.attention.output.LayerNorm`, `${b}.attn_norm`, true);
        lin(entries, linears, `${p}.intermediate.dense`, `${b}.ffn.up`, true);
        lin(entries, linears, `${p}.output.dense`, `${b}.ffn.down`, true);
        norm(entries, `${p}.output.LayerNorm`, `${b}.ffn_norm`, true);
      });
      const ignorable = [/^bert\.embeddings\.position_ids$/];
      if (config.head.kind === 'mlm') {
        lin(entries, linears, 'cls.predictions.transform.dense', 'head.dense', true);
        norm(entries, 'cls.predictions.transform.LayerNorm', 'head.norm', true);
        entries.push({ kind: 'copy', hf: 'cls.predictions.bias', ours: 'head.bias' });
        if (!config.head.tied) entries.push({ kind: 'copy', hf: 'cls.predictions.decoder.weight', ours: 'head.weight' });
        else ignorable.push(/^cls\.predictions\.decoder\.weight$/);
        ignorable.push(/^cls\.predictions\.decoder\.bias$/, /^bert\.pooler\./, /^cls\.seq_relationship\./);
      } else if (config.head.kind === 'classification') {
        lin(entries, linears, 'bert.pooler.dense', 'head.pooler', true);
        lin(entries, linears, 'classifier', 'head.classifier', config.head.bias);
        ignorable.push(/^cls\./);
      } else {
        throw new HFConfigError('bert: an LM head has no Hugging Face BERT equivalent');
      }
      return { entries, linears, ignorable };
    }
    default:
      throw new HFConfigError(`model family '${config.family}' has no Hugging Face mapping (expected llama, gpt2 or bert)`);
  }
}

function blockConfigAt(config: ModelConfig, layer: number) {
  let i = layer;
  for (const s of config.stacks) {
    if (i < s.nBlocks) return s.block;
    i -= s.nBlocks;
  }
  throw new Error(`layer ${layer} out of range`);
}

// ---- tensor transforms on host arrays ---------------------------------------------------------

export interface HostTensor {
  shape: number[];
  data: Float32Array | Float64Array;
}

export function transpose2d(t: HostTensor): HostTensor {
  if (t.shape.length !== 2) throw new Error(`transpose: expected a 2-D tensor, got [${t.shape.join(', ')}]`);
  const [r, c] = t.shape;
  const out = new (t.data.constructor as Float32ArrayConstructor)(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { shape: [c, r], data: out };
}

function concat0(parts: HostTensor[]): HostTensor {
  const rest = parts[0].shape.slice(1);
  const rows = parts.reduce((n, p) => n + p.shape[0], 0);
  const out = new (parts[0].data.constructor as Float32ArrayConstructor)(parts.reduce((n, p) => n + p.data.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p.data, off); off += p.data.length; }
  return { shape: [rows, ...rest], data: out };
}

/** The HF tensor of `entry` from our parameters. */
export function toHFTensor(entry: MapEntry, get: (ours: string) => HostTensor): HostTensor {
  switch (entry.kind) {
    case 'copy': return get(entry.ours);
    case 'transpose': return transpose2d(get(entry.ours));
    case 'concat': {
      const joined = concat0(entry.ours.map(get));
      return entry.transpose ? transpose2d(joined) : joined;
    }
  }
}

/**
 * Our parameters from the HF tensor of `entry`; `sizes` gives each part's row count for concat
 * entries (read from the model being loaded).
 */
export function fromHFTensor(entry: MapEntry, t: HostTensor, sizes?: number[]): [string, HostTensor][] {
  switch (entry.kind) {
    case 'copy': return [[entry.ours, t]];
    case 'transpose': return [[entry.ours, transpose2d(t)]];
    case 'concat': {
      const src = entry.transpose ? transpose2d(t) : t;
      const rows = src.shape[0];
      const rowLen = src.data.length / Math.max(1, rows);
      const want = sizes ?? entry.ours.map(() => rows / entry.ours.length);
      const total = want.reduce((a, b) => a + b, 0);
      if (total !== rows) throw new HFConfigError(`'${entry.hf}': fused tensor has ${rows} rows along the split axis, expected ${total} (${want.join(' + ')})`);
      const out: [string, HostTensor][] = [];
      let off = 0;
      entry.ours.forEach((name, i) => {
        const n = want[i];
        out.push([name, { shape: [n, ...src.shape.slice(1)], data: src.data.slice(off * rowLen, (off + n) * rowLen) }]);
        off += n;
      });
      return out;
    }
  }
}
