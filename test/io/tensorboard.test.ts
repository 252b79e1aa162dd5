import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TensorBoardWriter,
  TfRecordError,
  crc32c,
  decodeEvent,
  decodeTfRecords,
  encodeEvent,
  encodeTfRecord,
  maskCrc,
  readEventFile,
} from '../../src/io/tensorboard.js';

test('crc32c matches the Castagnoli check value and known vectors', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
});

test('TFRecord framing: length, masked CRCs, payload', () => {
  const data = Buffer.from('hello event');
  const rec = encodeTfRecord(data);
  assert.equal(rec.length, 8 + 4 + data.length + 4);
  const view = new DataView(rec.buffer);
  assert.equal(Number(view.getBigUint64(0, true)), data.length);
  assert.equal(view.getUint32(8, true), maskCrc(crc32c(rec.subarray(0, 8))));
  assert.equal(view.getUint32(12 + data.length, true), maskCrc(crc32c(data)));
  assert.deepEqual(Buffer.from(decodeTfRecords(rec)[0]!), data);
  // The mask rotates right by 15 and adds the constant.
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskCrc(1), ((1 << 17) + 0xa282ead8) >>> 0);
});

test('Event protobuf round-trips: wall time, step (large), file version, scalars', () => {
  const event = { wallTime: 1712345678.25, step: 2 ** 40 + 3, scalars: [{ tag: 'train/loss', value: 1.5 }, { tag: 'lr', value: 0.001 }] };
  const back = decodeEvent(encodeEvent(event));
  assert.equal(back.wallTime, event.wallTime);
  assert.equal(back.step, event.step);
  assert.equal(back.scalars!.length, 2);
  assert.equal(back.scalars![0]!.tag, 'train/loss');
  assert.equal(back.scalars![0]!.value, 1.5);
  assert.equal(back.scalars![1]!.value, Math.fround(0.001));
  const header = decodeEvent(encodeEvent({ wallTime: 1, step: 0, fileVersion: 'brain.Event:2' }));
  assert.equal(header.fileVersion, 'brain.Event:2');
  // Hand-checked bytes of a minimal event: field 1 (double) then field 2 (varint 300).
  const bytes = encodeEvent({ wallTime: 0, step: 300 });
  assert.deepEqual([...bytes], [0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0xac, 0x02]);
});

test('the writer produces a file that decodes with valid CRCs; corruption is detected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-tb-'));
  try {
    const w = new TensorBoardWriter(dir, { wallTime: 1000 });
    w.addScalar('a', 0.5, 1, 1001);
    w.addScalars({ 'b/x': 2, 'b/y': NaN, skipped: undefined }, 2, 1002);
    w.flush();
    w.close();
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^events\.out\.tfevents\.1000\./);
    const events = readEventFile(join(dir, files[0]!));
    assert.equal(events.length, 3);
    assert.equal(events[0]!.fileVersion, 'brain.Event:2');
    assert.deepEqual(events[1]!.scalars, [{ tag: 'a', value: 0.5 }]);
    assert.equal(events[1]!.step, 1);
    assert.equal(events[2]!.scalars!.length, 2);
    assert.ok(Number.isNaN(events[2]!.scalars![1]!.value));
    const path = join(dir, files[0]!);
    const bytes = readFileSync(path);
    bytes[bytes.length - 6] ^= 0xff;
    writeFileSync(path, bytes);
    assert.throws(() => readEventFile(path), (e: unknown) => e instanceof TfRecordError && /bad data CRC/.test(e.message));
    writeFileSync(path, bytes.subarray(0, bytes.length - 3));
    assert.throws(() => readEventFile(path), /truncated/);
    assert.throws(() => w.addScalar('late', 1, 3), /closed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
