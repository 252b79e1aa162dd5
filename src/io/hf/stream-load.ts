/**
 * Loading HF weights into a model tensor by tensor, converting each to its final storage as it
 * is read (the `load_in_4bit` idea). The model is built with `withoutWeights` (no weight memory),
 * every tensor is checked by header first — present, floating, the right shape, in the file the
 * index names — and only then read, one at a time (a float32 tensor in pieces straight into its
 * engine tensor): a linear weight of the rack is quantized straight into `loadFormat` (its
 * float32 copy freed at once), every other tensor put in place. The peak is the final model plus
 * about one tensor, whatever the files' size.
 *
 * What `loadFormat` stores quantized: the linear projections of the rack's blocks (attention
 * q/k/v/o, FFN gate/up/down). What stays float32: embeddings, norms, biases and the head (an
 * untied lm_head, BERT's MLM / classification head), as bitsandbytes keeps lm_head in full
 * precision; a checkpoint's storage format is per stack, and the head is not in a stack.
 */
import * as E from '../../engine/index.js';
import type { StorageFormat, Tensor } from '../../engine/index.js';
import { Linear, QuantizedLinear, placeholderShape, replaceModule, type Model } from '../../nn/index.js';
import { nonFiniteCount } from '../safetensors.js';
import { safeError } from '../safetensors-types.js';
import { fromHFTensor, type FamilyMapping, type MapEntry } from './mapping.js';
import type { HFTensorInfo, HFWeightReader } from './shards.js';
import { HFFormatError, hostOf, tensorOfHost } from './weights.js';

export interface StreamLoadOptions {
  /** Unknown tensors in the files are errors (default true); otherwise they are returned in `skipped`. */
  strict?: boolean;
  dtype?: 'float32' | 'float64';
  /** Storage of the rack's linear weights (default fp32). */
  loadFormat?: StorageFormat;
  /** NF4 double quantization (default true, as a quantized trunk). */
  doubleQuant?: boolean;
  /** Load tensors holding NaN/Inf (and list them) instead of refusing them. */
  allowNonFinite?: boolean;
  /**
   * The largest single read, in bytes (a multiple of 8; default 16 MiB): a float32 tensor is read
   * in pieces of this size straight into its engine tensor; other dtypes and GPT-2's fused or
   * transposed tensors are read whole (one tensor).
   */
  readChunkBytes?: number;
}

export interface StreamLoadResult {
  /** HF tensors not loaded (buffers, tied aliases, unknown ones when not strict). */
  skipped: string[];
  /** Tensors holding NaN or Inf (only with allowNonFinite). */
  nonFinite: { name: string; file: string; count: number; total: number }[];
  /** Our linear layers stored in `loadFormat` (empty for fp32). */
  quantized: string[];
  /** Tensors read, bytes read, and the largest single read (one tensor's bytes). */
  stats: { tensors: number; bytesRead: number; largestRead: number; files: number };
}

const FLOATING = new Set(['F32', 'F16', 'BF16', 'F64']);

interface Step {
  entry: MapEntry;
  /** The tensor's name in the files (with or without the optional prefix). */
  name: string;
  info: HFTensorInfo;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** The HF tensor shape `entry` expects, from our parameters' shapes. */
function expectedHFShape(entry: MapEntry, shapeOf: (ours: string) => readonly number[] | undefined): readonly number[] | string {
  const names = entry.kind === 'concat' ? entry.ours : [entry.ours];
  const shapes = names.map(shapeOf);
  const absent = names.filter((_, i) => !shapes[i]);
  if (absent.length) return `maps to '${absent[0]}', which the model does not have`;
  const s = shapes as (readonly number[])[];
  switch (entry.kind) {
    case 'copy': return s[0]!;
    case 'transpose': return [...s[0]!].reverse();
    case 'concat': {
      const joined = [s.reduce((n, x) => n + x[0]!, 0), ...s[0]!.slice(1)];
      return entry.transpose ? joined.reverse() : joined;
    }
  }
}

/**
 * Checks every tensor the mapping needs against the files' headers, before anything is read:
 * present, floating, the shape our model expects. Returns the reading plan (biases before their
 * weights, so a quantized layer is built with its bias in place) and the tensors left unread.
 */
function planLoad(model: Model, mapping: FamilyMapping, reader: HFWeightReader, strict: boolean): { steps: Step[]; skipped: string[] } {
  const params = new Map(model.namedParameters());
  const shapeOf = (ours: string) => { const p = params.get(ours); return p ? placeholderShape(p) ?? p.shape : undefined; };
  const where = reader.index ? `${reader.index} and its shards` : reader.files[0]!;
  const problems: string[] = [];
  const steps: Step[] = [];
  const used = new Set<string>();
  const covered = new Set<string>();
  for (const entry of mapping.entries) {
    let name = entry.hf;
    let info = reader.tensors.get(name);
    if (!info && mapping.optionalPrefix && name.startsWith(mapping.optionalPrefix)) {
      name = name.slice(mapping.optionalPrefix.length);
      info = reader.tensors.get(name);
    }
    if (!info) { problems.push(`'${entry.hf}': missing from the checkpoint (${where})`); continue; }
    used.add(name);
    if (!FLOATING.has(info.dtype)) { problems.push(`'${name}' in ${info.file}: expected a floating tensor (F32, F16, BF16 or F64), found ${info.dtype}`); continue; }
    const want = expectedHFShape(entry, shapeOf);
    if (typeof want === 'string') { problems.push(`'${entry.hf}' ${want}`); continue; }
    if (want.length !== info.shape.length || want.some((d, i) => d !== info!.shape[i])) {
      const ours = entry.kind === 'concat' ? entry.ours.join(' | ') : entry.ours;
      problems.push(`'${name}' in ${info.file}: shape mismatch, expected ${shapeStr(want)}, found ${shapeStr(info.shape)} (for our '${ours}'${entry.kind === 'copy' ? '' : ` ${entry.kind === 'transpose' ? 'transposed' : 'joined'}`})`);
      continue;
    }
    for (const n of entry.kind === 'concat' ? entry.ours : [entry.ours]) covered.add(n);
    steps.push({ entry, name, info });
  }
  const skipped: string[] = [];
  const unknown: string[] = [];
  for (const k of reader.tensors.keys()) {
    if (used.has(k)) continue;
    if (mapping.ignorable.some((r) => r.test(k) || (mapping.optionalPrefix !== undefined && r.test(mapping.optionalPrefix + k)))) skipped.push(k);
    else unknown.push(k);
  }
  if (strict && unknown.length) problems.push(...unknown.map((k) => `'${k}': unexpected tensor in ${reader.tensors.get(k)!.file} (no parameter of the ${model.config.family} model maps to it)`));
  else skipped.push(...unknown);
  if (problems.length === 0) for (const [name] of params) if (!covered.has(name)) problems.push(`our parameter '${name}' receives no value from the checkpoint`);
  if (problems.length) {
    throw new HFFormatError(problems.length === 1 ? `Hugging Face import: ${problems[0]}` : `Hugging Face import: ${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
  // A bias goes right before the weight of its layer.
  const rank = new Map<Step, number>();
  const pos = new Map(steps.map((s, i) => [s.entry.hf, i]));
  steps.forEach((s, i) => {
    const w = s.entry.hf.endsWith('.bias') ? pos.get(`${s.entry.hf.slice(0, -'.bias'.length)}.weight`) : undefined;
    rank.set(s, w !== undefined ? w - 0.5 : i);
  });
  steps.sort((a, b) => rank.get(a)! - rank.get(b)!);
  return { steps, skipped };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The largest single read by default: a float32 tensor bigger than this is read in pieces. */
export const DEFAULT_READ_CHUNK_BYTES = 16 * 2 ** 20;

/**
 * Fills `model` (built under `withoutWeights`, or a normal model whose values are overwritten)
 * from `reader`, one tensor at a time; see the file comment.
 */
export function streamHFWeights(model: Model, mapping: FamilyMapping, reader: HFWeightReader, opts: StreamLoadOptions = {}): StreamLoadResult {
  const format = opts.loadFormat ?? 'fp32';
  const dtype = opts.dtype ?? 'float32';
  const { steps, skipped } = planLoad(model, mapping, reader, opts.strict ?? true);
  const nonFinite: StreamLoadResult['nonFinite'] = [];
  const quantized: string[] = [];
  const sizes = (entry: MapEntry) => entry.kind === 'concat'
    ? entry.ours.map((n) => { const p = model.getParameter(n); return (placeholderShape(p) ?? p.shape)[0]!; })
    : undefined;
  /** Puts `t` (taken over) in place of our parameter `ours`, or stores it quantized. */
  const install = (ours: string, t: Tensor) => {
    const p = model.getParameter(ours);
    const layerPath = ours.endsWith('.weight') ? ours.slice(0, -'.weight'.length) : null;
    const layer = layerPath !== null ? model.getModule(layerPath) : null;
    if (format !== 'fp32' && layer instanceof Linear && layerPath!.startsWith('rack.')) {
      let qw;
      try {
        qw = E.noGrad(() => E.quantizeWeight(t, format, { doubleQuant: format === 'nf4' ? opts.doubleQuant ?? true : false }));
      } finally {
        t.dispose();
      }
      replaceModule(model, layerPath!, QuantizedLinear.adopt(layer, qw));
      p.dispose();
      quantized.push(layerPath!);
    } else if (placeholderShape(p)) {
      model.replaceTensor(p, t);
    } else {
      try {
        p.write(t.toArray());
      } finally {
        t.dispose();
      }
    }
  };
  const checkFinite = (step: Step, bad: number) => {
    if (bad === 0) return;
    const total = step.info.shape.reduce((a, b) => a * b, 1);
    if (!opts.allowNonFinite) throw safeError(step.info.file, step.name, `${bad} of ${total} values are NaN or Inf; these weights are broken (a diverged run, or a corrupted file) and would only compute NaN`);
    nonFinite.push({ name: step.name, file: step.info.file, count: bad, total });
  };
  const chunkBytes = opts.readChunkBytes ?? DEFAULT_READ_CHUNK_BYTES;
  for (const step of steps) {
    if (step.entry.kind === 'copy' && step.info.dtype === 'F32' && dtype === 'float32' && LITTLE_ENDIAN) {
      // Straight from the file into the tensor, a chunk at a time: no host copy of the tensor.
      const t = E.zeros([...step.info.shape], { backend: model.backend });
      let bad = 0;
      try {
        reader.readChunked(step.name, chunkBytes, (bytes, offset) => {
          bad += nonFiniteCount({ dtype: 'F32', shape: [bytes.length / 4], data: bytes });
          t.write(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), offset / 4);
        });
        checkFinite(step, bad);
      } catch (error) {
        t.dispose();
        throw error;
      }
      install(step.entry.ours, t);
      continue;
    }
    const st = reader.read(step.name);
    checkFinite(step, nonFiniteCount(st));
    const host = hostOf(st, step.name, dtype);
    for (const [ours, h] of fromHFTensor(step.entry, host, sizes(step.entry))) install(ours, tensorOfHost(h, { backend: model.backend, dtype }));
  }
  const left = model.namedParameters().filter(([, t]) => placeholderShape(t));
  if (left.length) throw new HFFormatError(`Hugging Face import: ${left.map(([n]) => `'${n}'`).join(', ')} received no value`);
  return { skipped, nonFinite, quantized, stats: { tensors: steps.length, bytesRead: reader.bytesRead, largestRead: reader.largestRead, files: reader.files.length } };
}

