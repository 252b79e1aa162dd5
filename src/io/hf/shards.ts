/**
 * Hugging Face weight files read and written tensor by tensor: `model.safetensors`, or shards
 * `model-0000k-of-0000n.safetensors` listed by `model.safetensors.index.json` (transformers'
 * format: `metadata.total_size` and `weight_map`, tensor name → shard file).
 *
 * Reading opens every file's header (no tensor data) and checks the whole layout first: every
 * file the index names exists, every tensor the index names is in its shard, no name is held
 * twice. Only then are tensors read, one at a time by byte range, so a loader can convert or
 * quantize each before reading the next and never holds more than one tensor of the files.
 *
 * Writing lays the tensors out in shards of at most `maxShardSize` bytes (a tensor bigger than
 * that gets a shard of its own, as transformers does), computes every header from dtypes and
 * shapes alone, then streams each tensor into its file as the caller produces it. Files are
 * written under temporary names and renamed only when all of them are complete.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSafetensors, type SafetensorsReader } from '../safetensors-lazy.js';
import { writeAll } from '../safetensors.js';
import { encodeHeader } from '../safetensors-header.js';
import { DTYPE_SIZE, type SafeDType, type SafeTensor } from '../safetensors-types.js';
import { HFFormatError, readJson } from './weights.js';

/** What a weight file's header says about one tensor. */
export interface HFTensorInfo {
  name: string;
  /** The file holding it (full path). */
  file: string;
  dtype: SafeDType;
  shape: readonly number[];
  bytes: number;
}

/** The weights of an HF folder, opened by header: read tensor by tensor. */
export interface HFWeightReader {
  /** The weight files (full paths), in index order. */
  readonly files: readonly string[];
  /** The index file when the weights are sharded. */
  readonly index: string | undefined;
  /** Every tensor by name. */
  readonly tensors: ReadonlyMap<string, HFTensorInfo>;
  /** Reads one tensor's bytes (its byte range only). */
  read(name: string): SafeTensor;
  /** Reads one tensor in pieces of at most `chunkBytes` into one reused buffer (see SafetensorsReader.readChunked). */
  readChunked(name: string, chunkBytes: number, onChunk: (bytes: Uint8Array, offset: number) => void): void;
  /** The largest single read so far, in bytes (a tensor or a chunk of one, never a file). */
  readonly largestRead: number;
  /** Bytes of tensor data read so far. */
  readonly bytesRead: number;
  close(): void;
}

/** Shard file names as transformers writes them: model-00001-of-00003.safetensors. */
export function shardFileName(stem: string, index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${stem}-${pad(index)}-of-${pad(count)}.safetensors`;
}

const SHARD_NAME = /^(.+)-(\d{5})-of-(\d{5})\.safetensors$/;

/**
 * Opens an HF folder's weights (single file, else the index and its shards) by header. Refused
 * before any tensor is read: no weights, an index naming a missing file or a tensor its shard
 * does not hold, a shard file name with a path in it, a tensor in two files.
 */
export function openHFWeights(folder: string, stem = 'model'): HFWeightReader {
  const single = join(folder, `${stem}.safetensors`);
  const indexPath = join(folder, `${stem}.safetensors.index.json`);
  const readers = new Map<string, SafetensorsReader>();
  const tensors = new Map<string, HFTensorInfo>();
  const open = (file: string): SafetensorsReader => {
    let r = readers.get(file);
    if (!r) { r = openSafetensors(file); readers.set(file, r); }
    return r;
  };
  let index: string | undefined;
  try {
    if (existsSync(single)) {
      const r = open(single);
      for (const name of r.names) tensors.set(name, { name, file: single, ...r.info(name) });
    } else if (existsSync(indexPath)) {
      index = indexPath;
      const idx = readJson(indexPath);
      const map = idx.weight_map;
      if (!map || typeof map !== 'object' || Array.isArray(map)) throw new HFFormatError(`${indexPath}: no 'weight_map' object (tensor name → shard file)`);
      const byFile = new Map<string, string[]>();
      for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
        if (typeof shard !== 'string' || shard === '' || shard.includes('/') || shard.includes('\\') || shard === '.' || shard === '..') {
          throw new HFFormatError(`${indexPath}: weight_map['${name}']: expected a file name in the folder, found ${JSON.stringify(shard)}`);
        }
        const list = byFile.get(shard) ?? [];
        list.push(name);
        byFile.set(shard, list);
      }
      // Every file first, so that an absent shard is named before any header is decoded.
      for (const [shard, names] of byFile) {
        const file = join(folder, shard);
        if (!existsSync(file)) {
          throw new HFFormatError(`${indexPath}: shard ${shard} is absent from ${folder} (it should hold ${names.length} tensor(s): ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''})`);
        }
      }
      for (const [shard, names] of byFile) {
        const file = join(folder, shard);
        const r = open(file);
        const held = new Set(r.names);
        for (const name of names) {
          if (!held.has(name)) throw new HFFormatError(`${file}: tensor '${name}' is missing (${indexPath} says this shard holds it)`);
          tensors.set(name, { name, file, ...r.info(name) });
        }
      }
    } else {
      if (existsSync(join(folder, 'pytorch_model.bin'))) throw new HFFormatError(`${folder}: only safetensors weights are supported (found pytorch_model.bin; convert it with safetensors first)`);
      throw new HFFormatError(`${folder}: no ${stem}.safetensors (or ${stem}.safetensors.index.json) found`);
    }
  } catch (error) {
    for (const r of readers.values()) r.close();
    throw error;
  }
  let largestRead = 0;
  let bytesRead = 0;
  return {
    files: [...readers.keys()],
    index,
    tensors,
    read(name) {
      const info = tensors.get(name);
      if (!info) throw new HFFormatError(`${index ?? single}: no tensor named '${name}'`);
      const t = readers.get(info.file)!.read(name);
      largestRead = Math.max(largestRead, t.data.length);
      bytesRead += t.data.length;
      return t;
    },
    readChunked(name, chunkBytes, onChunk) {
      const info = tensors.get(name);
      if (!info) throw new HFFormatError(`${index ?? single}: no tensor named '${name}'`);
      readers.get(info.file)!.readChunked(name, chunkBytes, (bytes, offset) => {
        largestRead = Math.max(largestRead, bytes.length);
        bytesRead += bytes.length;
        onChunk(bytes, offset);
      });
    },
    get largestRead() { return largestRead; },
    get bytesRead() { return bytesRead; },
    close() { for (const r of readers.values()) r.close(); },
  };
}

/**
 * Every tensor of an HF folder's weights: model.safetensors, or the shards listed by
 * model.safetensors.index.json (PyTorch .bin checkpoints are refused). Reads everything: for
 * small files (adapters, tests); loaders read tensor by tensor with openHFWeights.
 */
export function readHFWeights(folder: string, stem = 'model'): Map<string, SafeTensor> {
  const r = openHFWeights(folder, stem);
  try {
    return new Map([...r.tensors.keys()].map((k) => [k, r.read(k)]));
  } finally {
    r.close();
  }
}

// ---- writing --------------------------------------------------------------------------------------

/** transformers' save_pretrained default shard size. */
export const DEFAULT_MAX_SHARD_SIZE = 5_000_000_000;

/**
 * A shard size as transformers writes it: bytes, or a number with KB / MB / GB (powers of 1000)
 * or KiB / MiB / GiB (powers of 1024). `what` names the option in errors.
 */
export function parseShardSize(value: string | number, what = '--max-shard-size'): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value;
    throw new HFFormatError(`${what}: expected a positive number of bytes, found ${value}`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$/i.exec(value);
  const units: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };
  const bytes = m ? Math.floor(Number(m[1]) * units[(m[2] ?? 'B').toUpperCase()]!) : NaN;
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw new HFFormatError(`${what}: expected a size such as 2GB, 500MB or 10000000 (bytes), found '${value}'`);
  return bytes;
}

/** One tensor to write: its header facts now, its bytes when `data()` is called (once). */
export interface PlannedTensor {
  name: string;
  dtype: SafeDType;
  shape: readonly number[];
  data: () => Uint8Array;
}

export interface ShardLayout {
  /** File name → tensor names, in file order. */
  files: { file: string; names: string[]; bytes: number }[];
  totalSize: number;
}

/** How transformers groups tensors (in the order given) into shards of at most `maxShardSize` bytes. */
export function planShards(tensors: readonly { name: string; dtype: SafeDType; shape: readonly number[] }[], maxShardSize: number, stem = 'model'): ShardLayout {
  const groups: { names: string[]; bytes: number }[] = [];
  let current: { names: string[]; bytes: number } | null = null;
  let total = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];
    total += bytes;
    if (!current || (current.names.length > 0 && current.bytes + bytes > maxShardSize)) {
      current = { names: [], bytes: 0 };
      groups.push(current);
    }
    current.names.push(t.name);
    current.bytes += bytes;
  }
  if (groups.length <= 1) return { files: [{ file: `${stem}.safetensors`, names: groups[0]?.names ?? [], bytes: total }], totalSize: total };
  return { files: groups.map((g, i) => ({ file: shardFileName(stem, i + 1, groups.length), ...g })), totalSize: total };
}

/**
 * Writes `tensors` into `folder` as model.safetensors, or as shards + model.safetensors.index.json
 * when they exceed `maxShardSize`, producing each tensor's bytes only when its turn comes. Every
 * file is written under a temporary name; the renames happen once all are complete, and weight
 * files of the other layout left in the folder (an older model.safetensors, index or shards) are
 * removed so that the folder holds one set of weights. Returns the file names written.
 */
export function writeHFWeights(folder: string, tensors: readonly PlannedTensor[], opts: { maxShardSize?: number; stem?: string; metadata?: Record<string, string> } = {}): string[] {
  const stem = opts.stem ?? 'model';
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const layout = planShards(tensors, opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE, stem);
  const temps: [string, string][] = [];
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    for (const shard of layout.files) {
      const path = join(folder, shard.file);
      // Headers from dtypes and shapes only: no tensor data exists yet.
      const specs = new Map(shard.names.map((n) => {
        const t = byName.get(n)!;
        return [n, { dtype: t.dtype, shape: [...t.shape], byteLength: t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype] }];
      }));
      const { prefix, ordered } = encodeHeader(specs, opts.metadata ?? { format: 'pt' }, path);
      const temp = join(folder, `.${shard.file}.${tag}.tmp`);
      temps.push([temp, path]);
      const fd = openSync(temp, 'wx');
      try {
        writeAll(fd, prefix);
        for (const [name] of ordered) {
          const t = byName.get(name)!;
          const bytes = t.data();
          const want = specs.get(name)!.byteLength;
          if (bytes.length !== want) throw new HFFormatError(`${path}: tensor '${name}' gave ${bytes.length} bytes, its header says ${want}`);
          writeAll(fd, bytes);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    const names = layout.files.map((f) => f.file);
    let indexTemp: string | undefined;
    const indexName = `${stem}.safetensors.index.json`;
    if (layout.files.length > 1) {
      const weightMap: Record<string, string> = {};
      for (const f of layout.files) for (const n of f.names) weightMap[n] = f.file;
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      indexTemp = join(folder, `.${indexName}.${tag}.tmp`);
      temps.push([indexTemp, join(folder, indexName)]);
      writeFileSync(indexTemp, JSON.stringify({ metadata: { total_size: layout.totalSize }, weight_map: sorted }, null, 2) + '\n', { flag: 'wx' });
      names.push(indexName);
    }
    // Shards first, the index last: a reader never sees an index naming a file not there yet.
    for (const [temp, path] of temps) renameSync(temp, path);
    temps.length = 0;
    // Weight files of another layout would be read instead of (or beside) the new ones.
    const keep = new Set(names);
    for (const f of readdirSync(folder)) {
      const stale = f === `${stem}.safetensors` || f === indexName || (SHARD_NAME.exec(f)?.[1] === stem);
      if (stale && !keep.has(f)) unlinkSync(join(folder, f));
    }
    return names;
  } finally {
    for (const [temp] of temps) { try { unlinkSync(temp); } catch { /* never written */ } }
  }
}

