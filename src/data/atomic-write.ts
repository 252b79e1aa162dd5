// Whole-file writes that never leave a half-written file behind: write a temporary file in the
// same folder, flush it to disk, then rename it over the target (rename is atomic on POSIX).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A temporary path next to `path` (same file system, so the final rename is atomic). */
export function temporaryPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  writeFileAtomicWith(path, (fd) => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
  });
}

/**
 * Lets `write` fill an open temporary file descriptor, then publishes it at `path`. If `write`
 * throws, the temporary file is removed and the target is left untouched.
 */
export function writeFileAtomicWith(path: string, write: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = temporaryPathFor(path);
  const fd = openSync(temporary, 'w');
  let published = false;
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporary, path);
    published = true;
  } finally {
    if (!published) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      rmSync(temporary, { force: true });
    }
  }
}
