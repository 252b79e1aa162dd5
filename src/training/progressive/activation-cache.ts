/**
 * Activation cache for frozen prefixes. When the embedding and the first k stacks are frozen,
 * their output for a given input row never changes, so it is computed once and reused:
 * `CachedPrefixForward` runs the prefix only for rows it has not seen, then the rest of the rack
 * and the head as usual (the backward pass never enters the prefix, which has no trainable
 * parameter).
 *
 * Staleness: entries are keyed by (sample id, a 64-bit hash of the row's input ids and padding
 * mask) under a *prefix version*: a fingerprint of the prefix's structure (stack count, module
 * types, parameter names, shapes, dtypes, tensor identities, LoRA state, ramp gates, attention
 * modes) and of its weights' *write versions* (`Tensor.writeVersion`: the engine changes it on
 * every in-place write — `Tensor.write`/`Backend.upload`, hence loadStateDict, LoRA merge and
 * unmerge, checkpoint loads; in-place ops such as the optimizer updates — and never on a read).
 * Any change gives a new version, so a changed trunk never serves stale activations, and checking
 * costs a walk over the prefix's parameters, not a read of their contents. Hashing the contents
 * too (`checkContent: true`) remains as an opt-in verification.
 *
 * Growing trunk: the version is a *lineage*, one version per depth (embedding, then each stack in
 * turn, each hashed over the one before). An entry remembers the depth it was computed at, and a
 * version change keeps the entries whose depth's version is unchanged: when stack k freezes and
 * joins the prefix, an entry of the old prefix of k stacks is still the exact output of those k
 * stacks, so the next miss on it runs stack k alone over it ("advancing" it) instead of the
 * embedding and all k + 1 stacks. Training one stack at a time over a frozen trunk then costs one
 * trunk stack per row per phase, not the whole trunk, however deep the model grows.
 *
 * Time-as-input: a model with a time embedding adds an embedding of each row's noise ratio r to
 * the embedding output, so every prefix output depends on r (drawn afresh for every batch), not
 * only on the row's tokens: such a model is never served from the cache (prefix of 0 stacks).
 *
 * Memory: entries live in memory up to `memoryBudgetBytes`; beyond it the least recently used
 * are spilled to files in a private temporary folder (removed by `dispose()` and at exit), and
 * beyond `diskBudgetBytes` the oldest spilled entries are dropped.
 */
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { ForwardContext, Model, Module, ModelOutput } from '../../nn/index.js';
import { isLinearLike } from './linear-like.js';
import { RampedStack } from './ramp.js';

type FloatArray = Float32Array | Float64Array;

export interface ActivationCacheOptions {
  /** Bytes of activations kept in memory before spilling to disk. */
  memoryBudgetBytes: number;
  /** Bytes allowed on disk (default unlimited); beyond it the oldest spilled entries are dropped. */
  diskBudgetBytes?: number;
  /** Parent folder of the spill folder (default the OS temp folder). */
  spillDir?: string;
}

export interface ActivationCacheStats {
  hits: number;
  misses: number;
  entries: number;
  memoryEntries: number;
  diskEntries: number;
  memoryBytes: number;
  diskBytes: number;
  /** Entries written to disk so far. */
  spills: number;
  /** Entries dropped because the disk budget was exceeded. */
  evictions: number;
  /** Times the version changed and entries were dropped. */
  invalidations: number;
  /** Lookups that found an entry of a shallower, still valid depth (to be advanced, not recomputed). */
  advances: number;
}

/** A stored entry and the prefix depth (stacks run after the embedding) it was computed at. */
export interface CacheEntry {
  data: FloatArray;
  depth: number;
}

const liveDirs = new Set<string>();
let exitHook = false;
function registerDir(dir: string): void {
  liveDirs.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => { for (const d of liveDirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } } });
  }
}

interface DiskEntry { file: string; bytes: number; f64: boolean; depth: number }

/**
 * A byte-budgeted key → float array store that spills to disk. Entries carry a depth; a lineage
 * change drops those whose depth's version changed and keeps the rest.
 */
export class ActivationCache {
  readonly memoryBudgetBytes: number;
  readonly diskBudgetBytes: number;
  private readonly parent: string;
  private dir: string | null = null;
  private fileCounter = 0;
  private lineage: readonly string[] = [];
  private readonly memory = new Map<string, CacheEntry>();
  private readonly disk = new Map<string, DiskEntry>();
  private memBytes = 0;
  private diskBytes = 0;
  private readonly counters = { hits: 0, misses: 0, spills: 0, evictions: 0, invalidations: 0, advances: 0 };
  private disposed = false;

  constructor(opts: ActivationCacheOptions) {
    if (!(Number.isFinite(opts.memoryBudgetBytes) && opts.memoryBudgetBytes >= 0)) {
      throw new Error(`ActivationCache: memoryBudgetBytes must be a non-negative number, found ${opts.memoryBudgetBytes}`);
    }
    const disk = opts.diskBudgetBytes ?? Infinity;
    if (!(disk >= 0)) throw new Error(`ActivationCache: diskBudgetBytes must be a non-negative number, found ${opts.diskBudgetBytes}`);
    this.memoryBudgetBytes = opts.memoryBudgetBytes;
    this.diskBudgetBytes = disk;
    this.parent = opts.spillDir ?? tmpdir();
  }

  /** The version of the current depth (null before the first setLineage / setVersion). */
  get version(): string | null {
    return this.lineage.length > 0 ? this.lineage[this.lineage.length - 1]! : null;
  }

  /** The depth entries are stored at by default: the last of the lineage. */
  get depth(): number {
    return Math.max(0, this.lineage.length - 1);
  }

  /** The folder spilled entries go to (null until the first spill). */
  get spillFolder(): string | null {
    return this.dir;
  }

  /** A lineage of one version: any change drops every entry. Returns true when it changed. */
  setVersion(version: string): boolean {
    return this.setLineage([version]);
  }

  /**
   * Sets the lineage (`lineage[j]`: the version of the prefix of depth j). Entries whose depth's
   * version differs from the old lineage's, or is beyond the new one, are dropped; the rest stay,
   * at their depth. Returns true when the lineage changed.
   */
  setLineage(lineage: readonly string[]): boolean {
    this.live();
    if (lineage.length === 0) throw new Error('ActivationCache.setLineage: the lineage needs at least one version');
    const old = this.lineage;
    // Depths below the first that differs keep their entries.
    let same = 0;
    while (same < old.length && same < lineage.length && old[same] === lineage[same]) same++;
    if (same === old.length && same === lineage.length) return false;
    const valid = (depth: number) => depth < same;
    let dropped = 0;
    for (const [k, e] of [...this.memory]) if (!valid(e.depth)) { this.delete(k); dropped++; }
    for (const [k, e] of [...this.disk]) if (!valid(e.depth)) { this.delete(k); dropped++; }
    if (dropped > 0) this.counters.invalidations++;
    this.lineage = [...lineage];
    return true;
  }

  has(key: string): boolean {
    return this.memory.has(key) || this.disk.has(key);
  }

  /** The stored array, whatever its depth (see lookup). */
  get(key: string): FloatArray | undefined {
    return this.lookup(key)?.data;
  }

  /**
   * The stored entry and its depth (a hit moves an in-memory entry to most recently used). Counted
   * as a hit at the current depth, an advance at a shallower one, a miss when absent.
   */
  lookup(key: string): CacheEntry | undefined {
    this.live();
    const m = this.memory.get(key);
    if (m) {
      this.memory.delete(key);
      this.memory.set(key, m);
      this.count(m.depth);
      return m;
    }
    const d = this.disk.get(key);
    if (d) {
      const buf = readFileSync(d.file);
      const copy = new ArrayBuffer(buf.byteLength);
      new Uint8Array(copy).set(buf);
      this.count(d.depth);
      return { data: d.f64 ? new Float64Array(copy) : new Float32Array(copy), depth: d.depth };
    }
    this.counters.misses++;
    return undefined;
  }

  private count(depth: number): void {
    if (depth === this.depth) this.counters.hits++;
    else this.counters.advances++;
  }

  /** Stores `data` under `key` at `depth` (default the current depth), replacing what was there. */
  set(key: string, data: FloatArray, depth = this.depth): void {
    this.live();
    this.delete(key);
    this.memory.set(key, { data, depth });
    this.memBytes += data.byteLength;
    while (this.memBytes > this.memoryBudgetBytes && this.memory.size > 0) {
      const [k, v] = this.memory.entries().next().value as [string, CacheEntry];
      this.memory.delete(k);
      this.memBytes -= v.data.byteLength;
      this.spill(k, v);
    }
  }

  delete(key: string): void {
    const m = this.memory.get(key);
    if (m) { this.memory.delete(key); this.memBytes -= m.data.byteLength; }
    const d = this.disk.get(key);
    if (d) { this.disk.delete(key); this.diskBytes -= d.bytes; try { unlinkSync(d.file); } catch { /* gone */ } }
  }

  private spill(key: string, entry: CacheEntry): void {
    const v = entry.data;
    if (v.byteLength > this.diskBudgetBytes) { this.counters.evictions++; return; }
    if (!this.dir) {
      this.dir = mkdtempSync(join(this.parent, 'stackwise-actcache-'));
      registerDir(this.dir);
    }
    const file = join(this.dir, `${this.fileCounter++}.bin`);
    writeFileSync(file, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    this.disk.set(key, { file, bytes: v.byteLength, f64: v instanceof Float64Array, depth: entry.depth });
    this.diskBytes += v.byteLength;
    this.counters.spills++;
    while (this.diskBytes > this.diskBudgetBytes && this.disk.size > 0) {
      const [k] = this.disk.keys();
      this.delete(k!);
      this.counters.evictions++;
    }
  }

  /** Drops every entry (memory and disk); the version stays. */
  clear(): void {
    this.memory.clear();
    this.memBytes = 0;
    for (const d of this.disk.values()) { try { unlinkSync(d.file); } catch { /* gone */ } }
    this.disk.clear();
    this.diskBytes = 0;
  }

  get stats(): ActivationCacheStats {
    return {
      ...this.counters,
      entries: this.memory.size + this.disk.size,
      memoryEntries: this.memory.size,
      diskEntries: this.disk.size,
      memoryBytes: this.memBytes,
      diskBytes: this.diskBytes,
    };
  }

  /** Drops everything and removes the spill folder; the cache cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.clear();
    if (this.dir) {
      rmSync(this.dir, { recursive: true, force: true });
      liveDirs.delete(this.dir);
      this.dir = null;
    }
    this.disposed = true;
  }

  private live(): void {
    if (this.disposed) throw new Error('ActivationCache: used after dispose()');
  }
}

// ---- hashing ------------------------------------------------------------------------------------

/**
 * Running state of `hashWords`: two independent 32-bit FNV/murmur-style hashes, each over four
 * interleaved lanes (word i goes to lane i mod 4) so that the multiply chains run in parallel —
 * hashing weights (`checkContent`) or a batch's rows is on the critical path of a step.
 */
interface HashState { a: Int32Array; b: Int32Array; words: number; open: boolean }

function hashInit(h1: number, h2: number): HashState {
  const a = new Int32Array(4), b = new Int32Array(4);
  for (let l = 0; l < 4; l++) { a[l] = h1 + Math.imul(l, 0x27d4eb2f); b[l] = h2 + Math.imul(l, 0x165667b1); }
  return { a, b, words: 0, open: true };
}

/** Feeds 32-bit words; only the last update of a stream may have a length that is not a multiple of 4. */
function hashUpdate(st: HashState, words: Uint32Array): void {
  if (!st.open) throw new Error('hashUpdate: the stream was already ended by an update of a length that is not a multiple of 4');
  let a0 = st.a[0]!, a1 = st.a[1]!, a2 = st.a[2]!, a3 = st.a[3]!;
  let b0 = st.b[0]!, b1 = st.b[1]!, b2 = st.b[2]!, b3 = st.b[3]!;
  const n = words.length, n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    const w0 = words[i]!, w1 = words[i + 1]!, w2 = words[i + 2]!, w3 = words[i + 3]!;
    a0 = Math.imul(a0 ^ w0, 0x01000193); a1 = Math.imul(a1 ^ w1, 0x01000193);
    a2 = Math.imul(a2 ^ w2, 0x01000193); a3 = Math.imul(a3 ^ w3, 0x01000193);
    b0 = Math.imul(b0 ^ w0, 0x5bd1e995); b0 ^= b0 >>> 15;
    b1 = Math.imul(b1 ^ w1, 0x5bd1e995); b1 ^= b1 >>> 15;
    b2 = Math.imul(b2 ^ w2, 0x5bd1e995); b2 ^= b2 >>> 15;
    b3 = Math.imul(b3 ^ w3, 0x5bd1e995); b3 ^= b3 >>> 15;
  }
  if (i < n) {
    const r = n - i;
    const w0 = words[i]!, w1 = r > 1 ? words[i + 1]! : 0, w2 = r > 2 ? words[i + 2]! : 0;
    a0 = Math.imul(a0 ^ w0, 0x01000193); b0 = Math.imul(b0 ^ w0, 0x5bd1e995); b0 ^= b0 >>> 15;
    if (r > 1) { a1 = Math.imul(a1 ^ w1, 0x01000193); b1 = Math.imul(b1 ^ w1, 0x5bd1e995); b1 ^= b1 >>> 15; }
    if (r > 2) { a2 = Math.imul(a2 ^ w2, 0x01000193); b2 = Math.imul(b2 ^ w2, 0x5bd1e995); b2 ^= b2 >>> 15; }
    st.open = false;
  }
  st.a[0] = a0; st.a[1] = a1; st.a[2] = a2; st.a[3] = a3;
  st.b[0] = b0; st.b[1] = b1; st.b[2] = b2; st.b[3] = b3;
  st.words += n;
}

/** Folds the lanes and the length, feeds the trailing bytes (fewer than 4), then mixes; 16 hex digits. */
function hashFinal(st: HashState, tail?: Uint8Array): string {
  let h1 = st.words | 0, h2 = Math.imul(st.words, 0x85ebca6b);
  for (let l = 0; l < 4; l++) {
    h1 = Math.imul(h1 ^ st.a[l]!, 0x01000193); h1 ^= h1 >>> 13;
    h2 = Math.imul(h2 ^ st.b[l]!, 0x5bd1e995); h2 ^= h2 >>> 15;
  }
  if (tail) for (const b of tail) { h1 = Math.imul(h1 ^ b, 0x01000193); h2 = Math.imul(h2 ^ b, 0x5bd1e995); }
  h1 ^= h1 >>> 16; h1 = Math.imul(h1, 0x85ebca6b); h1 ^= h1 >>> 13;
  h2 ^= h2 >>> 16; h2 = Math.imul(h2, 0xc2b2ae35); h2 ^= h2 >>> 13;
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/** Two independent 32-bit FNV/murmur-style hashes of the 32-bit words of an array, as 16 hex digits. */
export function hashWords(data: ArrayBufferView, h1 = 0x811c9dc5, h2 = 0x9e3779b9): string {
  const st = hashInit(h1, h2);
  hashUpdate(st, new Uint32Array(data.buffer, data.byteOffset, data.byteLength >>> 2));
  const tail = data.byteLength & 3;
  return hashFinal(st, tail ? new Uint8Array(data.buffer, data.byteOffset + data.byteLength - tail, tail) : undefined);
}

const HASH_CHUNK_WORDS = 1 << 16;
let hashScratch: Uint32Array | null = null;

/**
 * `hashWords(t.toArray())` without the full-size copy: a native tensor is read through a small
 * reusable buffer (hashing the frozen prefix's weights on every step, with `checkContent`, would
 * otherwise allocate their whole size in JavaScript memory each time).
 */
export function hashTensorContent(t: Tensor): string {
  const addon = (t.backend as { addon?: { read?: (h: object, into: ArrayBufferView, byteOffset?: number) => void } }).addon;
  const handle = (t.storage as { handle?: object }).handle;
  if (!addon?.read || !handle || t.bytes % 4 !== 0) return hashWords(t.toArray());
  hashScratch ??= new Uint32Array(HASH_CHUNK_WORDS);
  const st = hashInit(0x811c9dc5, 0x9e3779b9);
  const words = t.bytes >>> 2;
  for (let off = 0; off < words; off += HASH_CHUNK_WORDS) {
    const view = hashScratch.subarray(0, Math.min(HASH_CHUNK_WORDS, words - off));
    addon.read(handle, view, off * 4);
    hashUpdate(st, view);
  }
  return hashFinal(st);
}

/**
 * A fingerprint of modules' structure and weights: parameter identities (`Tensor.id`) with their
 * write versions, which change on every in-place write, so equal fingerprints mean equal weights
 * without reading them. `content` also hashes every weight's elements (a costly verification,
 * for weights changed behind the engine's back).
 */
export function moduleFingerprint(modules: readonly Module[], opts: { content?: boolean } = {}): string {
  const parts: string[] = [];
  modules.forEach((root, i) => {
    parts.push(`#${i}:${root.typeName}`);
    for (const [path, m] of root.namedModules()) {
      let extra = '';
      if (isLinearLike(m) && m.lora) extra = `lora(${m.lora.rank},${m.lora.alpha},${m.lora.scale},${m.isMerged})`;
      if (m instanceof RampedStack) extra = `gate(${m.gate})`;
      const attn = (m as Module & { causal?: unknown }).causal;
      if (typeof attn === 'boolean') extra += attn ? 'causal' : 'bidir';
      parts.push(`${path}|${m.typeName}|${extra}`);
      for (const [n, t] of m.ownParameters()) {
        parts.push(`${n}:${t.dtype}[${t.shape.join(',')}]@${t.backend.name}#${t.id}v${t.writeVersion}${t.requiresGrad ? '!' : ''}${opts.content ? `=${hashTensorContent(t)}` : ''}`);
      }
    }
  });
  return hashWords(new TextEncoder().encode(parts.join('\n')));
}

// ---- the cached forward -----------------------------------------------------------------------

export interface CachedPrefixOptions {
  cache: ActivationCache;
  /**
   * Stacks in the cached prefix: a number, a getter, or 'auto' (default): the longest run of
   * leading stacks that, with the embedding, has no trainable parameter; 0 for a model with a
   * time embedding (its prefix output depends on each row's noise ratio).
   */
  prefixStacks?: number | 'auto' | (() => number);
  /**
   * Also hash the prefix weights' contents into the version on every call (default false: the
   * weights' write versions already make the staleness check exact; hashing reads every weight,
   * a verification for code that writes tensor memory outside the engine).
   */
  checkContent?: boolean;
}

export interface CachedForwardInputs {
  /** [B, S] padding mask (1 = token); part of each row's key. */
  attentionMask?: Tensor | null;
  /** Seed of the dropout masks after the prefix. */
  seed?: number;
  /** Noise ratio of each row, for a model with a time embedding (then run without the cache). */
  timeRatios?: ArrayLike<number> | null;
}

export interface CachedForwardResult extends ModelOutput {
  /** Stacks served from the cache (0 = plain forward). */
  prefixStacks: number;
  /** Rows computed from the token ids (misses), reused (hits) and advanced from a shallower depth. */
  computedRows: number;
  reusedRows: number;
  advancedRows: number;
}

/** CachedPrefixForward.forwardHidden: the rack's output instead of the logits. */
export interface CachedHiddenResult extends Omit<CachedForwardResult, 'logits'> {
  hidden: Tensor;
}

/** Runs a model with its frozen prefix (embedding + first k stacks) served from an ActivationCache. */
export class CachedPrefixForward {
  readonly model: Model;
  readonly cache: ActivationCache;
  private readonly prefix: CachedPrefixOptions['prefixStacks'];
  private readonly checkContent: boolean;

  constructor(model: Model, opts: CachedPrefixOptions) {
    this.model = model;
    this.cache = opts.cache;
    this.prefix = opts.prefixStacks ?? 'auto';
    this.checkContent = opts.checkContent ?? false;
  }

  /** The number of leading stacks that will be served from the cache now. */
  prefixStacks(): number {
    const stacks = this.model.rack.stacks.toArray();
    const frozen = (m: Module) => m.parameters().every((t) => !t.requiresGrad);
    let k: number;
    if (typeof this.prefix === 'number') k = this.prefix;
    else if (typeof this.prefix === 'function') k = this.prefix();
    else if (this.model.timeEmbedding) return 0;
    else {
      if (!frozen(this.model.embedding)) return 0;
      k = 0;
      while (k < stacks.length && frozen(stacks[k]!)) k++;
    }
    if (!Number.isInteger(k) || k < 0 || k > stacks.length) throw new Error(`CachedPrefixForward: prefix of ${k} stacks is outside [0, ${stacks.length}]`);
    const bad = [this.model.embedding, ...stacks.slice(0, k)].find((m) => !frozen(m));
    if (k > 0 && bad) throw new Error(`CachedPrefixForward: the cached prefix (embedding + ${k} stacks) has trainable parameters (${bad.typeName}); only a frozen prefix can be cached`);
    if (k > 0 && this.model.timeEmbedding) {
      throw new Error(`CachedPrefixForward: a prefix of ${k} stacks cannot be cached for a model with a time embedding (its output depends on each row's noise ratio, not only on the tokens); use prefix 0 or 'auto'`);
    }
    return k;
  }

  /**
   * The versions of the prefixes of depth 0..k (embedding, then each stack hashed over the ones
   * before): what the cache is keyed by. An entry of depth j stays valid while lineage[j] does.
   */
  prefixLineage(k = this.prefixStacks()): string[] {
    const content = { content: this.checkContent };
    const stacks = this.model.rack.stacks.toArray().slice(0, k);
    const out = [`0:${moduleFingerprint([this.model.embedding], content)}`];
    stacks.forEach((s, j) => {
      out.push(`${j + 1}:${hashWords(new TextEncoder().encode(`${out[j]}\n${moduleFingerprint([s], content)}`))}`);
    });
    return out;
  }

  /** The version of the current prefix of k stacks (the last of its lineage). */
  prefixVersion(k = this.prefixStacks()): string {
    return this.prefixLineage(k)[k]!;
  }

  /** The model's logits on `ids`, with the prefix served from the cache. */
  forward(ids: Tensor, sampleIds: readonly number[], inputs: CachedForwardInputs = {}): CachedForwardResult {
    const { hidden, ...counts } = this.forwardHidden(ids, sampleIds, inputs);
    return { logits: this.model.head.forward(hidden, { keyMask: inputs.attentionMask ?? null, seed: inputs.seed }), ...counts };
  }

  /**
   * The rack's output [B, S, d] on `ids` (before the head), with the prefix served from the cache:
   * what Model.lossFromHidden (the fused head + loss) or a ModelAdapter's hiddenOverride reads.
   * Rows found at a shallower depth run only the stacks they lack.
   */
  forwardHidden(ids: Tensor, sampleIds: readonly number[], inputs: CachedForwardInputs = {}): CachedHiddenResult {
    const model = this.model;
    if (ids.dtype !== 'int32' || ids.rank !== 2) throw new Error(`CachedPrefixForward: ids must be int32 [B, S], got ${ids.describe()}`);
    const [B, S] = ids.shape;
    if (sampleIds.length !== B) throw new Error(`CachedPrefixForward: ${sampleIds.length} sample ids for ${B} rows`);
    const mask = inputs.attentionMask ?? null;
    if (mask && (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== S)) throw new Error(`CachedPrefixForward: attentionMask ${mask.describe()} must be [${B}, ${S}] like the ids`);
    const k = this.prefixStacks();
    if (k === 0) return { hidden: model.forwardHidden(ids, { attentionMask: mask, seed: inputs.seed, timeRatios: inputs.timeRatios }), prefixStacks: 0, computedRows: B, reusedRows: 0, advancedRows: 0 };
    // k > 0 only for a model without a time embedding (prefixStacks), which takes no ratios.
    if (inputs.timeRatios !== undefined && inputs.timeRatios !== null) throw new Error('CachedPrefixForward: timeRatios were given, but the model has no time embedding (model.time_embedding); leave them out');

    this.cache.setLineage(this.prefixLineage(k));
    const d = model.rack.dModel;
    const f64 = model.dtype === 'float64';
    const idData = ids.toArray() as Int32Array;
    const maskData = mask ? Float64Array.from(mask.toArray()) : null;
    const keys: string[] = [];
    const rows: (FloatArray | undefined)[] = [];
    // Rows to compute, grouped by the depth they start from (-1: from the token ids).
    const todo = new Map<number, { rows: number[]; from: FloatArray[] }>();
    for (let b = 0; b < B; b++) {
      const rowIds = idData.subarray(b * S, (b + 1) * S);
      const key = `${sampleIds[b]}:${S}:${hashWords(rowIds)}${maskData ? `:${hashWords(maskData.subarray(b * S, (b + 1) * S))}` : ''}`;
      keys.push(key);
      const hit = this.cache.lookup(key);
      if (hit && hit.depth === k) { rows.push(hit.data); continue; }
      rows.push(undefined);
      const from = hit ? hit.depth : -1;
      const group = todo.get(from) ?? { rows: [], from: [] };
      group.rows.push(b);
      if (hit) group.from.push(hit.data);
      todo.set(from, group);
    }
    let computedRows = 0, advancedRows = 0;
    for (const [from, group] of [...todo].sort((a, b) => a[0] - b[0])) {
      const out = this.runPrefix(from, k, idData, maskData, group, S);
      group.rows.forEach((b, j) => {
        const row = out.slice(j * S * d, (j + 1) * S * d);
        rows[b] = row;
        this.cache.set(keys[b]!, row, k);
      });
      if (from < 0) computedRows += group.rows.length;
      else advancedRows += group.rows.length;
    }
    const all = f64 ? new Float64Array(B * S * d) : new Float32Array(B * S * d);
    rows.forEach((r, b) => all.set(r!, b * S * d));
    const h0 = E.tensor(all, [B, S, d], { dtype: model.dtype, backend: model.backend });
    const ctx: ForwardContext = { keyMask: mask, seed: inputs.seed };
    let h = h0;
    const stacks = model.rack.stacks.toArray();
    for (let i = k; i < stacks.length; i++) h = stacks[i]!.forward(h, ctx);
    return { hidden: h, prefixStacks: k, computedRows, reusedRows: B - computedRows - advancedRows, advancedRows };
  }

  /**
   * The prefix up to depth k (eval mode, no gradients) on the given rows, from the token ids
   * (`from` = -1: embedding + stacks 0..k-1) or from their cached outputs at depth `from` (stacks
   * from..k-1 only); a flat [n, S, d] array.
   */
  private runPrefix(from: number, k: number, ids: Int32Array, mask: Float64Array | null, group: { rows: number[]; from: FloatArray[] }, S: number): FloatArray {
    const model = this.model;
    const rows = group.rows;
    const n = rows.length;
    const stacks = model.rack.stacks.toArray();
    const modules: Module[] = from < 0 ? [model.embedding, ...stacks.slice(0, k)] : stacks.slice(from, k);
    const modes = modules.flatMap((m) => m.namedModules().map(([, x]) => [x, x.training] as const));
    for (const m of modules) m.eval();
    try {
      return E.tidy(() => E.noGrad(() => {
        let keyMask: Tensor | null = null;
        if (mask) {
          const m = new Float64Array(n * S);
          rows.forEach((b, j) => m.set(mask.subarray(b * S, (b + 1) * S), j * S));
          keyMask = E.tensor(model.dtype === 'float64' ? m : Float32Array.from(m), [n, S], { dtype: model.dtype, backend: model.backend });
        }
        const ctx: ForwardContext = { keyMask };
        // Each stage in its own scope: only one stage's intermediates are alive at a time.
        let h: Tensor;
        if (from < 0) {
          const sub = new Int32Array(n * S);
          rows.forEach((b, j) => sub.set(ids.subarray(b * S, (b + 1) * S), j * S));
          const idsT = E.tensor(sub, [n, S], { dtype: 'int32', backend: model.backend });
          h = E.tidy(() => model.embedding.forward(idsT));
        } else {
          const d = model.rack.dModel;
          const start = model.dtype === 'float64' ? new Float64Array(n * S * d) : new Float32Array(n * S * d);
          group.from.forEach((r, j) => start.set(r, j * S * d));
          h = E.tensor(start, [n, S, d], { dtype: model.dtype, backend: model.backend });
        }
        for (let i = Math.max(from, 0); i < k; i++) {
          const x = h;
          h = E.tidy(() => stacks[i]!.forward(x, ctx));
          x.dispose();
        }
        return h.toArray() as FloatArray;
      }));
    } finally {
      for (const [m, t] of modes) m.training = t;
    }
  }
}

/** Bytes of one cached row: seqLen × dModel × element size. */
export function cachedRowBytes(model: Model, seqLen: number): number {
  return seqLen * model.rack.dModel * (model.dtype === 'float64' ? 8 : 4);
}

