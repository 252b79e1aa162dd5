// Shared helpers for the CLI tests (not a test file itself).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

/** The repository root: the nearest folder above this file whose package.json is "stackwise". */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'stackwise') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root (package.json of stackwise) not found');
    dir = parent;
  }
}

export const ROOT = repoRoot();
export const BIN = join(ROOT, 'bin', 'stackwise.js');
/** Golden Hugging Face fixtures: <repo>/../shared/fixtures/hf. */
export const FIXTURES_DIR = join(ROOT, '..', 'shared', 'fixtures', 'hf');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/stackwise.js ...args` and returns its exit status and output. */
export function stackwise(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, STACKWISE_DEBUG: '' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
