/**
 * Which file a `/files/<run>/<path>` request may read. The raw request path is split on '/' before
 * any decoding, each segment is percent-decoded once, and a segment that is empty, '.', '..', or
 * holds a slash, a backslash or a NUL after decoding refuses the request (so `..`, `%2e%2e`,
 * `..%2f`, absolute paths and `//` all fail the same way). The real path (symlinks resolved) must
 * then lie inside the real path of a run folder the server lists: a symlink that leads out of the
 * run folder is refused too. Every refusal is the same "not found".
 */
import { realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

/** The decoded segments of a raw URL path (without its query), or null when one is not acceptable. */
export function decodeSegments(rawPath: string): string[] | null {
  if (rawPath === '') return null;
  const out: string[] = [];
  for (const raw of rawPath.split('/')) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg === '' || seg === '.' || seg === '..' || /[/\\\0]/.test(seg)) return null;
    out.push(seg);
  }
  return out;
}

/**
 * The real path of the regular file `segments` names inside run folder `segments[0]` of `root`, or
 * null. `isRun` says whether a name is a run folder the server lists.
 */
export function resolveRunFile(root: string, isRun: (name: string) => boolean, segments: string[]): string | null {
  if (segments.length < 2 || !isRun(segments[0]!)) return null;
  try {
    const realRoot = realpathSync(root);
    const runDir = realpathSync(join(root, segments[0]!));
    // The run folder itself must be a real folder of the root (not a symlink elsewhere).
    if (runDir !== join(realRoot, segments[0]!)) return null;
    const target = realpathSync(join(runDir, ...segments.slice(1)));
    if (!target.startsWith(runDir + sep)) return null;
    if (!statSync(target).isFile()) return null;
    return target;
  } catch {
    return null;
  }
}
