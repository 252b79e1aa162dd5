// Strict UTF-8 checking that can say where a file goes wrong.
import { isUtf8 } from 'node:buffer';

/**
 * Byte offset of the first byte that does not start or continue a valid UTF-8 sequence, or -1
 * when the whole buffer is valid. Rejects overlong forms, surrogates and code points > U+10FFFF
 * (the same rules as the WHATWG decoder in fatal mode).
 */
export function findInvalidUtf8(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1; // fast native path for the common case
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let low = 0x80;
    let high = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) need = 1;
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      if (b0 === 0xe0) low = 0xa0; // overlong
      if (b0 === 0xed) high = 0x9f; // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      if (b0 === 0xf0) low = 0x90; // overlong
      if (b0 === 0xf4) high = 0x8f; // > U+10FFFF
    } else return i;
    for (let k = 1; k <= need; k++) {
      if (i + k >= n) return i; // truncated sequence at end of input
      const b = bytes[i + k]!;
      const lo = k === 1 ? low : 0x80;
      const hi = k === 1 ? high : 0xbf;
      if (b < lo || b > hi) return i;
    }
    i += need + 1;
  }
  return -1;
}
