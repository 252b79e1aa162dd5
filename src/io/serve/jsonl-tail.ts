/**
 * Following a growing JSONL file without re-reading it: `JsonlTail.poll()` reads only the bytes
 * appended since the last call (it keeps the byte offset), returns the complete new records and
 * keeps a half-written last line for the next call. A line that is not a JSON object is skipped and
 * counted (`malformed`), never thrown. When the file is replaced or shrinks (a resumed run rewrites
 * it atomically after cutting what came after its checkpoint), the tail starts over and says so.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { decodeJsonlRecord, type MetricsRecord } from '../metrics-jsonl.js';

/** Bytes read per read() call. */
const CHUNK_BYTES = 1 << 20;
/** A line longer than this is dropped (counted as malformed) instead of being buffered without end. */
export const MAX_LINE_BYTES = 4 << 20;
const NEWLINE = 0x0a;

export interface TailUpdate {
  /** Complete records appended since the last poll (all of them again after a reset). */
  records: MetricsRecord[];
  /** True when the file was replaced or truncated: the caller must drop what it had. */
  reset: boolean;
}

export class JsonlTail {
  /** Bytes consumed so far (complete lines plus the buffered partial line). */
  offset = 0;
  /** Lines skipped because they were not a JSON object (or were too long). */
  malformed = 0;
  /** Complete lines read (records + malformed; blank lines excluded). */
  lines = 0;
  /** The last file modification time seen (ms since the epoch; 0 before the file exists). */
  mtimeMs = 0;
  private partial: Buffer = Buffer.alloc(0);
  /** Dropping the rest of an over-long line until its newline. */
  private skippingLongLine = false;
  private identity = '';

  constructor(readonly path: string) {}

  /** Bytes of a half-written last line waiting for its newline. */
  get pendingBytes(): number {
    return this.partial.length;
  }

  poll(): TailUpdate {
    let st;
    try {
      st = statSync(this.path);
    } catch {
      // Not there (yet, or any more): forget what was read if there was something.
      const reset = this.offset > 0;
      if (reset) this.restart('');
      return { records: [], reset };
    }
    if (!st.isFile()) return { records: [], reset: false };
    const identity = `${st.dev}:${st.ino}`;
    let reset = false;
    if (identity !== this.identity || st.size < this.offset) {
      reset = this.offset > 0 || this.identity !== '';
      this.restart(identity);
    }
    this.mtimeMs = st.mtimeMs;
    if (st.size === this.offset) return { records: [], reset };
    const records: MetricsRecord[] = [];
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(CHUNK_BYTES, st.size - this.offset));
      while (this.offset < st.size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, st.size - this.offset), this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.consume(buf.subarray(0, n), records);
      }
    } finally {
      closeSync(fd);
    }
    return { records, reset };
  }

  private restart(identity: string): void {
    this.identity = identity;
    this.offset = 0;
    this.malformed = 0;
    this.lines = 0;
    this.partial = Buffer.alloc(0);
    this.skippingLongLine = false;
  }

  private consume(chunk: Buffer, out: MetricsRecord[]): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.skippingLongLine) {
        this.skippingLongLine = false;
        this.partial = Buffer.alloc(0);
        continue;
      }
      const line = this.partial.length ? Buffer.concat([this.partial, piece]) : piece;
      this.partial = Buffer.alloc(0);
      this.line(line, out);
    }
    if (start < chunk.length && !this.skippingLongLine) {
      // Copy: the chunk buffer is reused by the next read.
      this.partial = Buffer.concat([this.partial, chunk.subarray(start)]);
      if (this.partial.length > MAX_LINE_BYTES) {
        this.malformed++;
        this.lines++;
        this.partial = Buffer.alloc(0);
        this.skippingLongLine = true;
      }
    }
  }

  private line(bytes: Buffer, out: MetricsRecord[]): void {
    const text = bytes.toString('utf8');
    if (text.trim() === '') return;
    this.lines++;
    try {
      const record = decodeJsonlRecord(text) as unknown;
      if (record && typeof record === 'object' && !Array.isArray(record)) {
        out.push(record as MetricsRecord);
        return;
      }
    } catch { /* counted below */ }
    this.malformed++;
  }
}
