// Metrics as JSON Lines: one JSON object per line, appended as the run goes.
//
// JSON has no NaN or Infinity, so non-finite numbers are written as null and named in a
// `nonfinite` field ({"loss": null, "nonfinite": {"loss": "NaN"}}), which `readJsonl` turns back
// into numbers. Each record is written with a single append, so a killed process leaves at most
// one partial last line; `readJsonl` skips such a line and `truncateJsonl` removes it.

import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../data/atomic-write.js';
import { fsErrorWords } from './checkpoint.js';

export type MetricsRecord = Record<string, unknown>;

/** The JSON line for a record (no newline). */
export function encodeJsonlRecord(record: MetricsRecord): string {
  const nonfinite: Record<string, string> = {};
  const line = JSON.stringify(record, function (this: unknown, key: string, value: unknown) {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      if (this === record) nonfinite[key] = String(value);
      return null;
    }
    return value;
  });
  if (Object.keys(nonfinite).length === 0) return line;
  return JSON.stringify({ ...JSON.parse(line), nonfinite });
}

/** One JSON line back to its record (non-finite numbers restored); throws on invalid JSON. */
export function decodeJsonlRecord(line: string): MetricsRecord {
  const record = JSON.parse(line) as MetricsRecord;
  const nonfinite = record['nonfinite'];
  if (nonfinite && typeof nonfinite === 'object') {
    for (const [k, v] of Object.entries(nonfinite as Record<string, string>)) record[k] = Number(v);
    delete record['nonfinite'];
  }
  return record;
}

export class JsonlWriter {
  private fd: number | null;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  write(record: MetricsRecord): void {
    if (this.fd === null) throw new Error(`JsonlWriter: ${this.path} is closed`);
    const bytes = Buffer.from(encodeJsonlRecord(record) + '\n', 'utf8');
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
    } catch (error) {
      // Name the file (Node's "ENOSPC: no space left on device, write" names none).
      throw new Error(`could not append to ${this.path}: ${fsErrorWords(error)}`, { cause: error });
    }
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}

/** Appends one record to a file (opening and closing it). */
export function appendJsonl(path: string, record: MetricsRecord): void {
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, encodeJsonlRecord(record) + '\n');
}

/** Every complete record of a file ([] when the file does not exist); a partial last line is skipped. */
export function readJsonl(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const out: MetricsRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const last = i === lines.length - 1; // no newline after it: possibly cut by a crash
    try {
      out.push(decodeJsonlRecord(line));
    } catch (error) {
      if (last) return;
      throw new Error(`${path}:${i + 1}: invalid JSON line (${(error as Error).message})`);
    }
  });
  return out;
}

/**
 * Keeps only the records for which `keep` is true (and drops a partial last line), rewriting the
 * file atomically. Used on resume to forget what a crashed run logged after its last checkpoint.
 * Returns the number of records removed.
 */
export function truncateJsonl(path: string, keep: (record: MetricsRecord) => boolean): number {
  if (!existsSync(path)) return 0;
  const records = readJsonl(path);
  const kept = records.filter(keep);
  const text = kept.map((r) => encodeJsonlRecord(r) + '\n').join('');
  if (text !== readFileSync(path, 'utf8')) writeFileAtomic(path, text);
  return records.length - kept.length;
}
