// The byte-level alphabet of GPT-2 and of Hugging Face's ByteLevel pre-tokenizer/decoder: every
// byte is written as one printable Unicode character, so a token's bytes become a string that
// JSON can hold and whitespace cannot split. Printable Latin-1 bytes map to themselves; the
// other 68 bytes (controls, space, NBSP, soft hyphen, …) map to U+0100 onwards, in byte order.

const BYTE_TO_CHAR: string[] = [];
const CHAR_TO_BYTE = new Map<string, number>();

(function buildTables(): void {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    const code = printable(b) ? b : 256 + next++;
    const ch = String.fromCharCode(code);
    BYTE_TO_CHAR.push(ch);
    CHAR_TO_BYTE.set(ch, b);
  }
})();

/** The byte-level string of some bytes (one character per byte). */
export function bytesToByteLevel(bytes: ArrayLike<number>): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!]!;
  return out;
}

/** The bytes of a byte-level string, or null when a character is outside the byte-level alphabet. */
export function byteLevelToBytes(text: string): Uint8Array | null {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const b = CHAR_TO_BYTE.get(text[i]!);
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}

/** The character that stands for byte `b` (0 ≤ b < 256). */
export function byteLevelChar(b: number): string {
  return BYTE_TO_CHAR[b]!;
}
