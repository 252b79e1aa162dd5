// TensorBoard event files, written by hand (no TensorFlow, no protobuf library).
//
// A file is a sequence of TFRecords:
//   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// with masked_crc = ((crc >>> 15) | (crc << 17)) + 0xa282ead8. Each record's data is an `Event`
// protobuf (tensorflow/core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
// The first event of a file carries file_version "brain.Event:2"; scalars use simple_value,
// which every TensorBoard version reads as a scalar series. The decoder below reads back what the
// writer produces (and skips fields it does not know), for tests and tools.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

// ---- CRC32C (Castagnoli) ------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C of the bytes (crc32c("123456789") = 0xe3069283). */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The TFRecord masking of a CRC (so that CRCs of CRCs do not look like data). */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// ---- protobuf encoding ------------------------------------------------------------------------

class ProtoWriter {
  private chunks: number[] = [];

  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`protobuf varint: expected a non-negative safe integer, found ${value}`);
    let v = value;
    while (v >= 0x80) {
      this.chunks.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.chunks.push(v);
    return this;
  }

  key(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  double(field: number, value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.key(field, 1);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.key(field, 5);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  int64(field: number, value: number): this {
    return this.key(field, 0).varint(value);
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2).varint(data.length);
    for (const x of data) this.chunks.push(x);
    return this;
  }

  string(field: number, text: string): this {
    return this.bytes(field, Buffer.from(text, 'utf8'));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

export interface ScalarValue {
  tag: string;
  value: number;
}

export interface TensorBoardEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars?: ScalarValue[];
}

/** Encodes one Event message. */
export function encodeEvent(event: TensorBoardEvent): Uint8Array {
  const w = new ProtoWriter().double(1, event.wallTime).int64(2, event.step);
  if (event.fileVersion !== undefined) w.string(3, event.fileVersion);
  if (event.scalars && event.scalars.length > 0) {
    const summary = new ProtoWriter();
    for (const { tag, value } of event.scalars) {
      summary.bytes(1, new ProtoWriter().string(1, tag).float(2, value).finish());
    }
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** Frames data as one TFRecord. */
export function encodeTfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskCrc(crc32c(out.subarray(0, 8))), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskCrc(crc32c(data)), true);
  return out;
}

// ---- decoding (for tests and tools) ------------------------------------------------------------

export class TfRecordError extends Error {
  override name = 'TfRecordError';
}

/** Splits a TFRecord file into record payloads, checking both CRCs of every record. */
export function decodeTfRecords(bytes: Uint8Array, source = '<buffer>'): Uint8Array[] {
  const records: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let pos = 0;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) throw new TfRecordError(`${source}: truncated record header at byte ${pos}`);
    const length = Number(view.getBigUint64(pos, true));
    if (view.getUint32(pos + 8, true) !== maskCrc(crc32c(bytes.subarray(pos, pos + 8)))) {
      throw new TfRecordError(`${source}: bad length CRC in the record at byte ${pos}`);
    }
    const start = pos + 12;
    if (start + length + 4 > bytes.length) throw new TfRecordError(`${source}: record at byte ${pos} is truncated (${length} data bytes announced)`);
    const data = bytes.subarray(start, start + length);
    if (view.getUint32(start + length, true) !== maskCrc(crc32c(data))) {
      throw new TfRecordError(`${source}: bad data CRC in the record at byte ${pos}`);
    }
    records.push(data);
    pos = start + length + 4;
  }
  return records;
}

class ProtoReader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.b.length) throw new TfRecordError('protobuf: truncated varint');
      const byte = this.b[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
    }
  }
  fixed(n: number): DataView {
    if (this.pos + n > this.b.length) throw new TfRecordError('protobuf: truncated fixed-width field');
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.pos, n);
    this.pos += n;
    return v;
  }
  lengthDelimited(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.b.length) throw new TfRecordError('protobuf: truncated length-delimited field');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.fixed(8);
    else if (wireType === 2) this.lengthDelimited();
    else if (wireType === 5) this.fixed(4);
    else throw new TfRecordError(`protobuf: unsupported wire type ${wireType}`);
  }
}

/** Decodes an Event (wall_time, step, file_version, simple_value scalars). */
export function decodeEvent(data: Uint8Array): TensorBoardEvent {
  const r = new ProtoReader(data);
  const event: TensorBoardEvent = { wallTime: 0, step: 0 };
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === 1) event.wallTime = r.fixed(8).getFloat64(0, true);
    else if (field === 2 && wire === 0) event.step = r.varint();
    else if (field === 3 && wire === 2) event.fileVersion = Buffer.from(r.lengthDelimited()).toString('utf8');
    else if (field === 5 && wire === 2) {
      const summary = new ProtoReader(r.lengthDelimited());
      const scalars: ScalarValue[] = event.scalars ?? [];
      while (!summary.done) {
        const k = summary.varint();
        if (Math.floor(k / 8) !== 1 || k % 8 !== 2) { summary.skip(k % 8); continue; }
        const value = new ProtoReader(summary.lengthDelimited());
        const s: ScalarValue = { tag: '', value: NaN };
        while (!value.done) {
          const vk = value.varint();
          if (vk === 0x0a) s.tag = Buffer.from(value.lengthDelimited()).toString('utf8');
          else if (vk === 0x15) s.value = value.fixed(4).getFloat32(0, true);
          else value.skip(vk % 8);
        }
        scalars.push(s);
      }
      event.scalars = scalars;
    } else r.skip(wire);
  }
  return event;
}

/** Reads every event of an events file (CRCs checked). */
export function readEventFile(path: string): TensorBoardEvent[] {
  return decodeTfRecords(new Uint8Array(readFileSync(path)), path).map(decodeEvent);
}

// ---- writer -------------------------------------------------------------------------------------

let fileCounter = 0;

/**
 * Appends scalar events to a new events file in `logDir` (TensorBoard reads every
 * `events.out.tfevents.*` file of a folder). Records are written whole with one write call, so
 * a crash leaves at most a truncated last record, which TensorBoard skips.
 */
export class TensorBoardWriter {
  readonly path: string;
  private fd: number | null;

  constructor(logDir: string, options: { wallTime?: number } = {}) {
    mkdirSync(logDir, { recursive: true });
    const wallTime = options.wallTime ?? Date.now() / 1000;
    const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
    this.path = join(logDir, `events.out.tfevents.${Math.floor(wallTime)}.${host}.${process.pid}.${fileCounter++}`);
    this.fd = openSync(this.path, 'a');
    this.write({ wallTime, step: 0, fileVersion: 'brain.Event:2' });
  }

  private write(event: TensorBoardEvent): void {
    if (this.fd === null) throw new Error(`TensorBoardWriter: ${this.path} is closed`);
    const record = encodeTfRecord(encodeEvent(event));
    let done = 0;
    while (done < record.length) done += writeSync(this.fd, record, done, record.length - done);
  }

  /** One scalar at a step. Non-finite values are written as they are (TensorBoard shows NaN). */
  addScalar(tag: string, value: number, step: number, wallTime = Date.now() / 1000): void {
    this.write({ wallTime, step, scalars: [{ tag, value }] });
  }

  /** Several scalars in one event; entries whose value is not a number are skipped. */
  addScalars(values: Record<string, number | undefined | null>, step: number, wallTime = Date.now() / 1000): void {
    const scalars = Object.entries(values)
      .filter((e): e is [string, number] => typeof e[1] === 'number')
      .map(([tag, value]) => ({ tag, value }));
    if (scalars.length > 0) this.write({ wallTime, step, scalars });
  }

  flush(): void {
    if (this.fd !== null) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }
}
