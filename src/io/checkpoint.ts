// Run folders and checkpoint folders on disk.
//
// A run folder carries a marker file `.stackwise-run` (JSON), which proves the folder is ours: a
// non-empty folder without it is refused, so a typo in run_dir never writes into (or prunes)
// someone else's files.
//
//   <run>/.stackwise-run
//   <run>/checkpoints/step-00000120/checkpoint.json   manifest: step, state, size + sha256 of each file
//   <run>/checkpoints/step-00000120/<files>           e.g. model.safetensors, optimizer.safetensors
//   <run>/checkpoints/latest                          name of the newest complete checkpoint
//
// A checkpoint is written into a temporary folder, every file fsynced, the manifest written last,
// then the folder is renamed into place (atomic). Reading verifies the manifest and the size and
// sha256 of every file, so a truncated or corrupted checkpoint is refused, never half-loaded.
// Pruning (keep_last) only ever removes complete checkpoints older than the newest N, each first
// renamed out of the `step-N` namespace (atomic) so a kill mid-delete leaves a dotted leftover.
// Leftovers of a killed process (temporary folders, `.latest.*.tmp`, a half-deleted `step-N/`
// without its manifest) are removed when a run folder is opened and whenever pruning runs.
// A failed write (full disk, no permission, read-only folder) names the file and the last good
// checkpoint, which is left intact.

import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { temporaryPathFor } from '../data/atomic-write.js';
import { writeFileAtomic } from '../data/atomic-write.js';

export const RUN_MARKER = '.stackwise-run';
export const RUN_FORMAT = 'stackwise-run';
export const CHECKPOINT_FORMAT = 'stackwise-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const MANIFEST = 'checkpoint.json';
const CHECKPOINTS = 'checkpoints';
const LATEST = 'latest';

export type CheckpointProblem = 'not-ours' | 'missing' | 'corrupt' | 'truncated' | 'incompatible' | 'config-mismatch' | 'exists' | 'write-failed' | 'read-only';

export class CheckpointError extends Error {
  constructor(
    readonly problem: CheckpointProblem,
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface RunMarker {
  format: typeof RUN_FORMAT;
  version: number;
  created: string;
  /** Free-form facts about the run (e.g. its config hash). */
  [key: string]: unknown;
}

function readMarker(dir: string): RunMarker | null {
  const path = join(dir, RUN_MARKER);
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as RunMarker;
    return m && m.format === RUN_FORMAT ? m : null;
  } catch {
    return null;
  }
}

/** What a file-system error code means, in words (for messages that name the file as well). */
export function fsErrorWords(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOSPC': return 'no space left on the device';
    case 'EDQUOT': return 'the disk quota is exhausted';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    case 'EROFS': return 'the file system is read-only';
    case 'EMFILE':
    case 'ENFILE': return 'too many open files';
    case 'EIO': return 'an input/output error (failing disk?)';
    case 'ENOTDIR': return 'a path component is not a folder';
    case 'EISDIR': return 'it is a folder';
    case 'ENOENT': return 'a folder on the way does not exist (removed while running?)';
    default: {
      if (!e?.code) return String((error as Error)?.message ?? error);
      // Node's text is "CODE: what, syscall 'path'": keep the words (the caller names the file).
      const what = /^[A-Z0-9_]+: ([^,]+)/.exec(e.message)?.[1];
      return what ? `${what} (${e.code})` : e.code;
    }
  }
}

function isNotWritable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

/**
 * Throws a CheckpointError ('read-only') unless files can be created in `dir` (probed by
 * creating and removing a temporary file: permission bits alone do not tell, e.g. for root or
 * on a read-only mount).
 */
export function assertWritableFolder(dir: string, purpose: string): void {
  const probe = temporaryPathFor(join(dir, 'write-probe'));
  try {
    accessSync(dir, fsConstants.W_OK);
    closeSync(openSync(probe, 'wx'));
    rmSync(probe, { force: true });
  } catch (error) {
    throw new CheckpointError(isNotWritable(error) ? 'read-only' : 'write-failed', dir,
      `run folder ${dir} is not writable (${fsErrorWords(error)}); ${purpose} needs to write there — make it writable, or copy the run to a writable place and use that copy`);
  }
}

/** The resolved config a run folder keeps (written by the trainer). */
export const RUN_CONFIG_FILE = 'config.yaml';

/**
 * True when `path` holds a file only a StackWise run or checkpoint folder has (checkpoint.json,
 * .stackwise-run or config.yaml): such a folder is never read as a Hugging Face folder.
 */
export function hasStackWiseMarkers(path: string): boolean {
  return [MANIFEST, RUN_MARKER, RUN_CONFIG_FILE].some((f) => existsSync(join(path, f)));
}

/** True when `dir` exists and carries a valid run marker. */
export function isRunFolder(dir: string): boolean {
  return existsSync(dir) && readMarker(dir) !== null;
}

/**
 * Makes sure `dir` is a run folder: a missing or empty folder becomes one (marker written, with
 * `facts`); an existing run folder is returned as is; anything else is refused.
 */
export function openRunFolder(dir: string, facts: Record<string, unknown> = {}): RunMarker {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new CheckpointError('not-ours', dir, `run folder ${dir} exists and is not a folder`);
    const marker = readMarker(dir);
    if (marker) {
      assertWritableFolder(dir, 'training');
      removeStaleFiles(dir, { atStartUp: true });
      return marker;
    }
    const entries = readdirSync(dir);
    if (entries.length > 0) {
      const markerState = entries.includes(RUN_MARKER) ? `its ${RUN_MARKER} marker is not valid` : `it has no ${RUN_MARKER} marker`;
      throw new CheckpointError(
        'not-ours',
        dir,
        `run folder ${dir} is not a StackWise run folder (${markerState}, and it holds ${entries.length} other entr${entries.length === 1 ? 'y' : 'ies'}: ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); ` +
          'choose a new or empty folder so nothing in it is overwritten',
      );
    }
  }
  try {
    mkdirSync(dir, { recursive: true });
    const marker: RunMarker = { ...facts, format: RUN_FORMAT, version: 1, created: new Date().toISOString() };
    writeFileAtomic(join(dir, RUN_MARKER), JSON.stringify(marker, null, 1) + '\n');
    return marker;
  } catch (error) {
    throw new CheckpointError(isNotWritable(error) ? 'read-only' : 'write-failed', dir, `cannot create run folder ${dir}: ${fsErrorWords(error)}`);
  }
}

/** Throws unless `dir` is a run folder. */
export function assertRunFolder(dir: string): RunMarker {
  if (!existsSync(dir)) throw new CheckpointError('missing', dir, `run folder ${dir} does not exist`);
  const marker = readMarker(dir);
  if (!marker) throw new CheckpointError('not-ours', dir, `${dir} is not a StackWise run folder (no valid ${RUN_MARKER} marker)`);
  return marker;
}

// ---- writing --------------------------------------------------------------------------------------

export interface FileDigest {
  bytes: number;
  sha256: string;
}

export interface CheckpointManifest<S = unknown> {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  step: number;
  created: string;
  files: Record<string, FileDigest>;
  state: S;
}

export interface CheckpointInfo {
  name: string;
  step: number;
  path: string;
}

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A checkpoint file written piece by piece (a model's weights tensor by tensor), so that its
 * bytes never exist whole in memory: `stream` hands each piece to `write`, in file order.
 */
export interface StreamedFile {
  stream(write: (chunk: Uint8Array) => void): void;
}

/** Writes a file (whole or streamed) and syncs it; returns its size and sha256. */
function writeSynced(path: string, content: Uint8Array | StreamedFile): FileDigest {
  const fd = openSync(path, 'wx');
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    const write = (chunk: Uint8Array) => {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, Math.min(1 << 30, chunk.length - done));
      hash.update(chunk);
      bytes += chunk.length;
    };
    if (content instanceof Uint8Array) write(content);
    else content.stream(write);
    fsyncSync(fd);
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not every platform can fsync a folder; the files themselves are already synced
  }
}

export interface WriteCheckpointOptions {
  /** Keep only the newest N complete checkpoints (the one written is always kept). */
  keepLast?: number;
}

/**
 * Writes a checkpoint of `step` with the given files and state (see the file comment). An
 * existing checkpoint of the same step is replaced only once the new one is complete.
 */
export function writeCheckpoint<S>(
  runDir: string,
  step: number,
  files: Record<string, Uint8Array | StreamedFile>,
  state: S,
  options: WriteCheckpointOptions = {},
): CheckpointInfo {
  assertRunFolder(runDir);
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`writeCheckpoint: step must be a non-negative integer, found ${step}`);
  for (const file of Object.keys(files)) {
    if (file === MANIFEST || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
      throw new Error(`writeCheckpoint: invalid file name '${file}'`);
    }
  }
  const root = join(runDir, CHECKPOINTS);
  const name = checkpointName(step);
  const final = join(root, name);
  const lastGood = latestCheckpoint(runDir);
  // Every file-system failure below names the file and the last good checkpoint (kept intact).
  let writing = root;
  const failed = (error: unknown): CheckpointError => new CheckpointError(
    isNotWritable(error) ? 'read-only' : 'write-failed',
    writing,
    `could not write checkpoint ${final}: ${fsErrorWords(error)} (writing ${writing}); nothing was half-written — ` +
      (lastGood ? `the last good checkpoint is ${lastGood.path}, left intact` : 'there is no earlier checkpoint'),
  );
  let temp: string | undefined;
  try {
    mkdirSync(root, { recursive: true });
    temp = join(root, `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    writing = temp;
    mkdirSync(temp);
    const digests: Record<string, FileDigest> = {};
    for (const [file, content] of Object.entries(files)) {
      writing = join(final, file); // what the user will look for (written under the temporary name first)
      digests[file] = writeSynced(join(temp, file), content);
    }
    const manifest: CheckpointManifest<S> = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step, created: new Date().toISOString(), files: digests, state };
    writing = join(final, MANIFEST);
    writeSynced(join(temp, MANIFEST), Buffer.from(JSON.stringify(manifest) + '\n', 'utf8'));
    fsyncDir(temp);
    writing = final;
    if (existsSync(final)) {
      const old = join(root, `.old-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
      renameSync(final, old);
      renameSync(temp, final);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(temp, final);
    }
    fsyncDir(root);
  } catch (error) {
    if (temp !== undefined) rmSync(temp, { recursive: true, force: true });
    throw (error as NodeJS.ErrnoException)?.code ? failed(error) : error;
  }
  try {
    writing = join(root, LATEST);
    writeFileAtomic(writing, name + '\n');
  } catch (error) {
    // The checkpoint itself is complete (readers find the newest by listing); say so.
    throw new CheckpointError(isNotWritable(error) ? 'read-only' : 'write-failed', writing,
      `checkpoint ${final} is complete, but its pointer ${writing} could not be written: ${fsErrorWords(error)}`);
  }
  if (options.keepLast !== undefined) pruneCheckpoints(runDir, options.keepLast, name);
  return { name, step, path: final };
}

/** Complete checkpoints (a manifest present), oldest first. Temporary folders are ignored. */
export function listCheckpoints(runDir: string): CheckpointInfo[] {
  const root = join(runDir, CHECKPOINTS);
  if (!existsSync(root)) return [];
  const out: CheckpointInfo[] = [];
  for (const name of readdirSync(root)) {
    const m = /^step-(\d+)$/.exec(name);
    if (!m) continue;
    const path = join(root, name);
    if (!existsSync(join(path, MANIFEST))) continue;
    out.push({ name, step: Number(m[1]), path });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint, if any. */
export function latestCheckpoint(runDir: string): CheckpointInfo | undefined {
  const all = listCheckpoints(runDir);
  return all[all.length - 1];
}

/**
 * Deletes complete checkpoints beyond the newest `keepLast` (never `protect`), and what killed
 * processes left behind (see removeStaleFiles). Each checkpoint is first renamed out of the
 * `step-N` namespace, so a kill while its files are deleted leaves a `.old-*` leftover that the
 * next cleaning removes, never a `step-N/` that lost its manifest but kept its weights.
 */
export function pruneCheckpoints(runDir: string, keepLast: number, protect?: string): string[] {
  if (!Number.isInteger(keepLast) || keepLast < 1) throw new RangeError(`pruneCheckpoints: keepLast must be a positive integer, found ${keepLast}`);
  assertRunFolder(runDir);
  const all = listCheckpoints(runDir);
  const removed: string[] = [];
  const root = join(runDir, CHECKPOINTS);
  for (const c of all.slice(0, Math.max(0, all.length - keepLast))) {
    if (c.name === protect) continue;
    const doomed = join(root, `.old-${c.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(c.path, doomed);
    rmSync(doomed, { recursive: true, force: true });
    removed.push(c.name);
  }
  removeStaleFiles(runDir, { atStartUp: false });
  return removed;
}

/** False only when process `pid` surely no longer exists. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The writing process of a temporary name (`.tmp-step-…-PID-hex`, `.NAME.PID.hex.tmp`), if it is one. */
function temporaryOwner(name: string): number | undefined {
  const m = /^\.(?:tmp|old)-.+-(\d+)-[0-9a-f]+$/.exec(name) ?? /^\..+\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Removes what a killed process left in a run folder: temporary files and folders of atomic
 * writes (in the folder, `phases/` and `checkpoints/`) whose writer is gone — or is this process
 * at start-up, when nothing of ours is in flight — and `checkpoints/step-N/` folders without a
 * manifest (a checkpoint is only ever renamed into place complete, so such a folder is the rest
 * of an interrupted deletion). Returns the paths removed.
 */
export function removeStaleFiles(runDir: string, options: { atStartUp: boolean }): string[] {
  const removed: string[] = [];
  const checkpoints = join(runDir, CHECKPOINTS);
  for (const dir of [runDir, join(runDir, 'phases'), checkpoints]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const owner = temporaryOwner(name);
      const stale = owner !== undefined
        ? (owner === process.pid ? options.atStartUp : !processAlive(owner))
        : dir === checkpoints && /^step-\d+$/.test(name) && !existsSync(join(path, MANIFEST));
      if (!stale) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}

// ---- reading --------------------------------------------------------------------------------------

export interface LoadedCheckpoint<S = unknown> {
  path: string;
  manifest: CheckpointManifest<S>;
  /** The verified bytes of every file. */
  files: Map<string, Uint8Array>;
}

/**
 * Reads and verifies a checkpoint folder: the manifest must parse and every listed file must have
 * its recorded size and sha256. Throws CheckpointError ('missing', 'corrupt', 'truncated').
 */
export function readCheckpoint<S = unknown>(path: string): LoadedCheckpoint<S> {
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new CheckpointError('missing', path, `checkpoint ${path} does not exist`);
  const manifestPath = join(path, MANIFEST);
  if (!existsSync(manifestPath)) {
    throw new CheckpointError('truncated', path, `checkpoint ${path} is incomplete: it has no ${MANIFEST} (the write never finished)`);
  }
  let manifest: CheckpointManifest<S>;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as CheckpointManifest<S>;
  } catch (error) {
    throw new CheckpointError('corrupt', path, `checkpoint ${path}: ${MANIFEST} is not valid JSON (${(error as Error).message})`);
  }
  if (!manifest || manifest.format !== CHECKPOINT_FORMAT || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new CheckpointError('corrupt', path, `checkpoint ${path}: ${MANIFEST} is not a StackWise checkpoint manifest`);
  }
  if (manifest.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError('incompatible', path, `checkpoint ${path} has format version ${String(manifest.version)}; this build reads version ${CHECKPOINT_VERSION}`);
  }
  const files = new Map<string, Uint8Array>();
  for (const [file, digest] of Object.entries(manifest.files)) {
    const fp = join(path, file);
    if (!existsSync(fp)) throw new CheckpointError('truncated', path, `checkpoint ${path}: ${file} is missing`);
    const bytes = new Uint8Array(readFileSync(fp));
    if (bytes.length !== digest.bytes) {
      throw new CheckpointError('truncated', path, `checkpoint ${path}: ${file} is ${bytes.length} bytes, the manifest says ${digest.bytes} (truncated or overwritten)`);
    }
    if (sha256(bytes) !== digest.sha256) {
      throw new CheckpointError('corrupt', path, `checkpoint ${path}: ${file} is corrupt (sha256 differs from the manifest)`);
    }
    files.set(file, bytes);
  }
  return { path, manifest, files };
}
